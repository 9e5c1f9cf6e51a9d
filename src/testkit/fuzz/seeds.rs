//! Seeds the fixture kit can build, for targets whose inputs no shared file
//! holds: protocol messages, QUIC inputs in the target's structured form,
//! hand-made pcapng files (power-of-two and decimal time units, several
//! interfaces, offsets), and frame sequences made from captures.
//! `tests/fuzz_corpus.rs` runs them through their targets on every
//! `cargo test`, and writes them out for `fuzz/seed.sh`.

use crate::capture::file::read_file;
use crate::packet::LinkType;
use crate::testkit::{
    PcapNgWriter, PcapWriter, client_hello_record, dhcp_request, dns_query, dns_response, ip,
    mdns_announcement, nbns_registration, sni_ext, tcp_frame, udp_frame,
};
use hickory_proto::rr::RecordType;
use std::net::Ipv4Addr;
use std::path::Path;

/// (target, seed name, bytes) for every built seed.
pub fn built() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |t: &'static str, name: &str, b: Vec<u8>| out.push((t, name.to_string(), b));
    add(
        "proto_dns",
        "query",
        dns_query(7, "evil.example", RecordType::A),
    );
    let answer = dns_response(
        7,
        "www.evil.example",
        &["cdn.c2.test"],
        Ipv4Addr::new(203, 0, 113, 7),
    );
    add("proto_dns", "answer-cname", answer.clone());
    let mut tcp = (answer.len() as u16).to_be_bytes().to_vec();
    tcp.extend_from_slice(&answer);
    add("proto_dns", "answer-over-tcp", tcp);
    let hello = client_hello_record(&[sni_ext("c2.test")]);
    add("proto_tls", "client-hello", hello.clone());
    add(
        "proto_http",
        "get",
        b"GET /a HTTP/1.1\r\nHost: evil.example:8080\r\n\r\n".to_vec(),
    );
    add(
        "proto_http",
        "connect",
        b"CONNECT c2.test:443 HTTP/1.1\r\n\r\n".to_vec(),
    );
    add(
        "proto_http",
        "absolute",
        b"GET http://evil.example/x HTTP/1.0\r\n\r\n".to_vec(),
    );
    let dhcp = dhcp_request(
        [2, 0, 0, 0, 0, 1],
        9,
        Some(Ipv4Addr::new(10, 1, 2, 3)),
        Some("pc-ke-toan"),
        Some("pc-ke-toan.so.gov.vn"),
    );
    add("proto_dhcp", "request", dhcp);
    add(
        "proto_nbns",
        "registration",
        nbns_registration("PC-VAN-THU", Ipv4Addr::new(10, 1, 2, 4)),
    );
    add(
        "proto_mdns",
        "announcement",
        mdns_announcement("may-in", &[ip("10.1.2.5")]),
    );
    for (name, bytes) in quic_inputs(&hello[5..]) {
        add("proto_quic", &name, bytes);
    }
    for (name, bytes) in pcapng_files() {
        add("capture", &name, bytes);
    }
    add("feed_annex", "xlsx", annex_xlsx());
    add("feed_stix", "small-bundle", STIX.as_bytes().to_vec());
    add("feed_misp", "small-event", MISP.as_bytes().to_vec());
    add(
        "engine_sequence",
        "dns-then-connect",
        sequence(&crafted_frames()),
    );
    add(
        "engine_sequence",
        "behaviours",
        sequence(&behaviour_frames()),
    );
    for (k, f) in crafted_frames().into_iter().enumerate() {
        let mut d = vec![0u8];
        d.extend_from_slice(&f);
        add("engine_frame", &format!("crafted-{k}"), d);
    }
    add("snapshot_read", "small", small_snapshot());
    out
}

/// A STIX 2.1 bundle in a few objects: patterns with escapes, AND/OR, a
/// URL, an expired and a revoked indicator, a file hash.
const STIX: &str = r#"{"type":"bundle","id":"bundle--1","objects":[
{"type":"indicator","id":"indicator--1","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z",
 "pattern":"[domain-name:value = 'c2.evil.example'] OR [ipv4-addr:value = '203.0.113.0/24']",
 "description":"C2","external_references":[{"source_name":"x","url":"https://cert.example/1"}]},
{"type":"indicator","id":"indicator--2","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z",
 "pattern":"[url:value = 'http://evil.example/a\'b'] AND [ipv6-addr:value = '2001:db8::1']"},
{"type":"indicator","id":"indicator--3","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z",
 "valid_until":"2021-01-01T00:00:00Z","pattern":"[domain-name:value = 'old.example']"},
{"type":"indicator","id":"indicator--4","pattern_type":"stix","revoked":true,
 "valid_from":"2020-01-01T00:00:00Z","pattern":"[domain-name:value = 'revoked.example']"},
{"type":"indicator","id":"indicator--5","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z",
 "pattern":"[file:hashes.'SHA-256' = 'aa']"}]}"#;

/// A MISP event: attributes of the kinds read and skipped, one in an object.
const MISP: &str = r#"{"Event":{"info":"test","uuid":"e1","Attribute":[
{"type":"domain","value":"c2.evil.example","to_ids":true,"comment":"C2"},
{"type":"ip-dst","value":"203.0.113.7","to_ids":true},
{"type":"ip-dst|port","value":"203.0.113.8|443","to_ids":true},
{"type":"hostname","value":"x.evil.example","to_ids":false},
{"type":"url","value":"http://evil.example/gate.php","to_ids":true},
{"type":"md5","value":"44d88612fea8a8f36de82e1278abb02f","to_ids":true}],
"Object":[{"name":"domain-ip","Attribute":[{"type":"domain","value":"obj.evil.example","to_ids":true}]}]}}"#;

/// A CERT annex as an XLSX workbook: a title row, a Vietnamese header, a
/// domain, an address and a file hash.
fn annex_xlsx() -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    let rows = [
        ["DANH SÁCH IOC", "", ""],
        ["Chỉ số", "Loại", "Ghi chú"],
        ["c2[.]evil.example", "Domain", "C2"],
        ["203.0.113.7", "IP", "Scanner"],
        ["44d88612fea8a8f36de82e1278abb02f", "MD5", "EICAR"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            ws.write_string(r as u32, c as u16, *v).expect("cell");
        }
    }
    wb.save_to_buffer().expect("xlsx")
}

/// QUIC target inputs around the handshake message `hello` (a ClientHello
/// without its record header): whole, split in two CRYPTO frames sent
/// out of order, and under QUIC v2.
fn quic_inputs(hello: &[u8]) -> Vec<(String, Vec<u8>)> {
    let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
    let chunk = |offset: usize, data: &[u8]| {
        let mut c = vec![(offset / 64) as u8];
        c.extend_from_slice(&(data.len() as u16).to_be_bytes());
        c.extend_from_slice(data);
        c
    };
    let head = |v2: bool| (dcid.len() as u8) << 3 | u8::from(v2);
    let whole = [vec![head(false)], dcid.to_vec(), chunk(0, hello)].concat();
    let cut = 64.min(hello.len());
    let split = [
        vec![head(false)],
        dcid.to_vec(),
        chunk(cut, &hello[cut..]),
        chunk(0, &hello[..cut]),
    ]
    .concat();
    let v2 = [vec![head(true)], dcid.to_vec(), chunk(0, hello)].concat();
    vec![
        ("whole".into(), whole),
        ("split-reordered".into(), split),
        ("v2".into(), v2),
    ]
}

/// pcapng files of the shapes real tools write and crafted ones: a
/// power-of-two unit (2^-20 s), nanoseconds, an offset, two interfaces of
/// different link types, and an interface never declared.
fn pcapng_files() -> Vec<(String, Vec<u8>)> {
    let frame = udp_frame(
        ip("10.1.2.3"),
        ip("8.8.8.8"),
        5000,
        53,
        None,
        &dns_query(1, "evil.example", RecordType::A),
    );
    let raw = &frame[14..];
    let mut pow2 = PcapNgWriter::with_options(1, &[(9, vec![0x80 | 20])]);
    pow2.frame_on(0, 1_700_000_000u64 << 20, &frame, frame.len());
    let mut nanos =
        PcapNgWriter::with_options(1, &[(9, vec![9]), (14, 3600i64.to_le_bytes().to_vec())]);
    nanos.frame_on(0, 1_700_000_000_000_000_000, &frame, frame.len());
    let mut two = PcapNgWriter::new(1);
    two.interface(101, &[(9, vec![3])]);
    two.frame_on(0, 1_700_000_000_000_000, &frame, frame.len());
    two.frame_on(1, 1_700_000_000_001, raw, raw.len());
    let mut undeclared = PcapNgWriter::new(1);
    undeclared.frame_on(5, 0, &frame, frame.len());
    let mut cut = PcapWriter::new(1, 64);
    cut.frame(1_700_000_000_000_000, &frame[..64], frame.len());
    vec![
        ("pcapng-pow2-unit".into(), pow2.bytes),
        ("pcapng-nanos-offset".into(), nanos.bytes),
        ("pcapng-two-interfaces".into(), two.bytes),
        ("pcapng-undeclared-interface".into(), undeclared.bytes),
        ("pcap-snaplen-cut".into(), cut.bytes),
    ]
}

/// A host's lookup of a listed name, the answer, a TLS connection to the
/// answer's address and an HTTP request on a second connection.
fn crafted_frames() -> Vec<Vec<u8>> {
    let (host, dns, c2) = (ip("10.1.2.3"), ip("10.1.0.53"), ip("203.0.113.9"));
    let answer = dns_response(3, "www.evil.example", &[], Ipv4Addr::new(203, 0, 113, 9));
    vec![
        udp_frame(
            host,
            dns,
            40000,
            53,
            None,
            &dns_query(3, "www.evil.example", RecordType::A),
        ),
        udp_frame(dns, host, 53, 40000, None, &answer),
        tcp_frame(
            host,
            c2,
            40001,
            443,
            1,
            &client_hello_record(&[sni_ext("c2.test")]),
        ),
        tcp_frame(
            host,
            c2,
            40002,
            80,
            1,
            b"GET / HTTP/1.1\r\nHost: c2.test\r\n\r\n",
        ),
    ]
}

/// What the heuristics judge, a little of each: a scan met with resets,
/// NXDOMAIN answers for random names, encoded query names, repeated
/// connections to one address (the fuzz engine's thresholds are low).
fn behaviour_frames() -> Vec<Vec<u8>> {
    use crate::testkit::behaviour::{dga_names, lookups, scan, tunnel_names};
    use crate::testkit::synth::Rng;
    use hickory_proto::op::ResponseCode;
    let (host, resolver) = (ip("10.1.2.3"), ip("10.1.0.53"));
    let mut rng = Rng::new(1);
    let targets: Vec<_> = (1..6).map(|i| (ip(&format!("10.1.9.{i}")), 445)).collect();
    let again: Vec<_> = (0..5).map(|_| (ip("198.18.0.9"), 8443)).collect();
    let dga = dga_names(&mut rng, 3);
    let tunnel = tunnel_names(&mut rng, "t.exfil.example", 3);
    [
        scan(host, &targets, 0, 1, None, true),
        scan(host, &again, 0, 1, Some(1), false),
        lookups(host, resolver, &dga, ResponseCode::NXDomain, 0, 1),
        lookups(host, resolver, &tunnel, ResponseCode::NoError, 0, 1),
    ]
    .into_iter()
    .flatten()
    .map(|(_, f)| f)
    .collect()
}

/// Frames in the `engine_sequence` input form, one second apart.
pub fn sequence(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let f = &f[..f.len().min(usize::from(u16::MAX))];
        out.push(1);
        out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// The Ethernet frames of a capture file (at most `max`), or none when its
/// link type is another.
pub fn ethernet_frames(path: &Path, max: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    read_file(path, |p| {
        if p.link == LinkType::Ethernet && out.len() < max {
            out.push(p.data.to_vec());
        }
    });
    out
}

/// A small compiled snapshot: each kind of indicator, a note, an
/// allowlist, two feeds.
fn small_snapshot() -> Vec<u8> {
    use crate::intel::indicator::{EntryType, classify};
    use crate::intel::snap::{SigningKey, compile, sign};
    use crate::intel::{FeedMeta, Note, Severity, SnapshotBuilder};
    use std::sync::Arc;
    let f = Arc::new(FeedMeta {
        name: "block".into(),
        category: "malware".into(),
        severity: Severity::High,
    });
    let mut b = SnapshotBuilder::ranked(0);
    for e in [
        "evil.example",
        "c2.test",
        "203.0.113.7",
        "198.51.100.0/24",
        "192.0.2.9:443",
        "2001:db8::1",
        "http://evil.example/gate.php",
    ] {
        let e = classify(e, EntryType::Auto).expect("a valid indicator");
        let note = Note {
            reference: Some("ref-1".into()),
            description: None,
        };
        b.add_noted(e, &f, Some(note));
    }
    let mut allow = SnapshotBuilder::ranked(1);
    allow.allow(classify("ok.evil.example", EntryType::Auto).expect("a domain"));
    let parts = vec![Arc::new(b.build_part()), Arc::new(allow.build_part())];
    let snap = crate::intel::Snapshot::assemble(parts);
    let key = SigningKey::from_pkcs8(&sign::generate().expect("a key")).expect("the key");
    compile(&snap, &[], 1, 1_800_000_000, &key)
}
