//! Bad input never panics, never hangs, and is always counted or reported:
//! random bytes into every decoder, real packets cut at every length, and
//! broken capture files.

use gatewatch::capture::SourceProblemKind;
use gatewatch::capture::file::read_file;
use gatewatch::decode;
use gatewatch::detect::Engine;
use gatewatch::intel::Snapshot;
use gatewatch::packet::{LinkType, Problems, RawPacket, Reason};
use gatewatch::protocols::{dns, http, tls};
use gatewatch::testkit::{
    Collector, PcapNgWriter, PcapWriter, corpus, gre_packet, ip, no_units, replay_collect,
    snapshot_of, udp_frame,
};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

/// A domain, an address and a URL on one feed; no units, the default
/// internal networks.
fn engine() -> Engine {
    let snap = snapshot_of(
        "t",
        "malware",
        &["google.com", "8.8.8.8", "www.google.com/x"],
        &[],
    );
    gatewatch::testkit::engine(snap, no_units())
}

const LINKS: [LinkType; 6] = [
    LinkType::Ethernet,
    LinkType::RawIp,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
    LinkType::Other(999),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn engine_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300), link in 0usize..6) {
        let mut e = engine();
        let mut sink = Collector::default();
        let pkt = RawPacket { ts_ns: 0, orig_len: data.len() as u32, link: LINKS[link], data: &data };
        e.process(&pkt, &mut sink);
        prop_assert_eq!(e.stats.packets, 1);
    }

    /// Random bytes where a tunnel header is expected, and after a valid
    /// one, so the decapsulation paths see garbage too.
    #[test]
    fn tunnel_payloads_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), kind in 0usize..6) {
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let prefixed = |head: &[u8]| [head, &data].concat();
        let f = match kind {
            0 => udp_frame(a, b, 1000, 4789, None, &data),
            1 => udp_frame(a, b, 1000, 4789, None, &prefixed(&[8, 0, 0, 0, 0, 0, 1, 0])),
            2 => udp_frame(a, b, 1000, 6081, None, &data),
            3 => gre_packet(&data),
            4 => gre_packet(&prefixed(&[0x30, 0, 0x65, 0x58, 0, 0, 0, 1, 0, 0, 0, 2])),
            _ => gre_packet(&prefixed(&[0, 0, 0x22, 0xeb, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
        };
        let mut e = engine();
        let mut sink = Collector::default();
        let pkt = RawPacket { ts_ns: 0, orig_len: f.len() as u32, link: LinkType::Ethernet, data: &f };
        e.process(&pkt, &mut sink);
        prop_assert_eq!(e.stats.packets, 1);
    }

    #[test]
    fn dns_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut st = Problems::default();
        let _ = dns::parse(&data, &mut st);
        dns::parse_tcp(&data, &mut st, |_, _| {});
    }

    #[test]
    fn tls_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = tls::client_hello(&data);
        // Also with a plausible record header in front of the garbage.
        let mut rec = vec![0x16, 3, 1, 2, 0, 1];
        rec.extend_from_slice(&data);
        let _ = tls::client_hello(&rec);
    }

    #[test]
    fn http_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(&data);
        let _ = http::request(&req);
        let _ = http::request(&data);
    }
}

/// Every real packet of the corpus, cut at every length and with each byte
/// flipped in turn in its first 128 bytes: decoded without panic, and every
/// frame is either decoded or counted under a reason.
#[test]
fn real_packets_cut_and_mangled() {
    let files = [
        "suricata-verify/dns-tcp-multirequest-buffer.pcap",
        "suricata-verify/pppoe-session-http.pcap",
        "suricata-verify/TLSv1-Extracted-MaliciousC2.pcap",
        "zeek/http-qinq-0.pcap",
        "zeek/pppoe-over-qinq.pcap",
        "zeek/dns-two-responses.pcap",
        "suricata-verify/geneve-decoder.pcap",
        "zeek/erspanII.pcap",
        "zeek/tunnels__gre-erspan3-dot1q.pcap",
        "zeek/tunnels__gre-sample.pcap",
    ];
    let mut e = engine();
    let mut sink = Collector::default();
    for f in files {
        read_file(&corpus(f), |p| {
            let data = p.data.to_vec();
            for cut in 0..data.len() {
                let pkt = RawPacket {
                    ts_ns: p.ts_ns,
                    orig_len: data.len() as u32,
                    link: p.link,
                    data: &data[..cut],
                };
                e.process(&pkt, &mut sink);
            }
            for i in 0..data.len().min(128) {
                let mut m = data.clone();
                m[i] ^= 0xff;
                let pkt = RawPacket {
                    ts_ns: p.ts_ns,
                    orig_len: m.len() as u32,
                    link: p.link,
                    data: &m,
                };
                e.process(&pkt, &mut sink);
            }
        });
    }
    assert!(e.stats.errors_of(Reason::SnaplenCut) > 1000);
    assert!(e.stats.errors_of(Reason::LinkTruncated) > 0);
    assert!(e.stats.errors_of(Reason::IpTruncated) + e.stats.errors_of(Reason::IpMalformed) > 0);
    // The tunnelled captures, cut inside their tunnel headers.
    for r in [
        Reason::GeneveMalformed,
        Reason::GreMalformed,
        Reason::ErspanMalformed,
    ] {
        assert!(e.stats.errors_of(r) > 0, "{r}");
    }
}

fn tmp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

#[test]
fn truncated_capture_is_reported_with_packet_number() {
    let full = std::fs::read(corpus("zeek/http-qinq-0.pcap")).unwrap();
    let (_d, p) = tmp("cut.pcap", &full[..full.len() - 10]);
    let mut n = 0;
    let rep = read_file(&p, |_| n += 1);
    assert_eq!(n, 13, "all complete packets are still read");
    assert_eq!(rep.problems.len(), 1);
    assert_eq!(rep.problems[0].kind, SourceProblemKind::Truncated);
    assert_eq!(rep.problems[0].packet, 14);
    assert!(rep.problems[0].to_string().contains("cut.pcap: packet 14"));
}

#[test]
fn every_truncation_point_is_safe() {
    let full = std::fs::read(corpus("suricata-verify/TLSv1-Extracted-MaliciousC2.pcap")).unwrap();
    // Offsets where a record ends: cutting there leaves a valid, shorter file.
    let mut ends = vec![24usize];
    while *ends.last().unwrap() < full.len() {
        let at = *ends.last().unwrap();
        let caplen = u32::from_le_bytes(full[at + 8..at + 12].try_into().unwrap()) as usize;
        ends.push(at + 16 + caplen);
    }
    for cut in 0..full.len() {
        let (_d, p) = tmp("c.pcap", &full[..cut]);
        let rep = read_file(&p, |_| {});
        assert_eq!(
            rep.problems.is_empty(),
            ends.contains(&cut),
            "cut at {cut}: {:?}",
            rep.problems
        );
    }
}

#[test]
fn bad_magic_and_missing_file() {
    let (_d, p) = tmp("x.pcap", b"this is not a capture file at all, just text\n");
    let rep = read_file(&p, |_| {});
    assert_eq!(rep.problems[0].kind, SourceProblemKind::BadMagic);
    let rep = read_file(Path::new("/nonexistent/x.pcap"), |_| {});
    assert!(matches!(rep.problems[0].kind, SourceProblemKind::Io(_)));
}

#[test]
fn corrupt_record_length_stops_file_with_report() {
    let mut w = PcapWriter::new(1, 65535);
    w.frame(1, &[0u8; 60], 60);
    let mut bytes = w.bytes.clone();
    // A record header claiming 1 GiB of data.
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0x40]);
    bytes.extend_from_slice(&[0u8; 64]);
    let (_d, p) = tmp("big.pcap", &bytes);
    let mut n = 0;
    let rep = read_file(&p, |_| n += 1);
    assert_eq!(n, 1);
    assert_eq!(rep.problems.len(), 1, "{:?}", rep.problems);
    assert_eq!(rep.problems[0].packet, 2);
}

#[test]
fn snaplen_cut_frames_are_reported_and_inspected() {
    let full = std::fs::read(corpus("zeek/http-vlan-0.pcap")).unwrap();
    let mut w = PcapWriter::new(1, 96);
    read_file(&corpus("zeek/http-vlan-0.pcap"), |p| {
        let n = p.data.len().min(96);
        w.frame(1, &p.data[..n], p.data.len());
    });
    assert!(w.bytes.len() < full.len());
    let (_d, p) = tmp("snap.pcap", &w.bytes);
    let rep = read_file(&p, |_| {});
    let cut = rep
        .problems
        .iter()
        .find(|x| matches!(x.kind, SourceProblemKind::SnaplenCut { .. }));
    assert!(cut.is_some(), "{:?}", rep.problems);
    let r = replay_collect(std::slice::from_ref(&p), Snapshot::empty(), no_units());
    assert!(r.stats.errors_of(Reason::SnaplenCut) > 0);
    // 96 bytes leave only the start of the request line after the headers:
    // the request is still recognised, and counted as truncated.
    assert!(r.stats.http_requests > 0);
    assert!(r.stats.errors_of(Reason::HttpTruncated) > 0);
}

/// The same packets as pcap, pcapng and gzip-compressed pcapng give the
/// same observations.
#[test]
fn pcapng_and_gzip_read_like_pcap() {
    use std::io::Write;
    let src = corpus("zeek/http-qinq-0.pcap");
    let mut ng = PcapNgWriter::new(1);
    read_file(&src, |p| {
        ng.frame((p.ts_ns / 1000) as u64, p.data, p.orig_len as usize);
    });
    let d = tempfile::tempdir().unwrap();
    let ngp = d.path().join("t.pcapng");
    std::fs::write(&ngp, &ng.bytes).unwrap();
    let gzp = d.path().join("t.pcapng.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&gzp).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&ng.bytes).unwrap();
    gz.finish().unwrap();
    let a = replay_collect(&[src], Snapshot::empty(), no_units());
    let b = replay_collect(&[ngp], Snapshot::empty(), no_units());
    let c = replay_collect(&[gzp], Snapshot::empty(), no_units());
    assert!(!a.sink.seen.is_empty());
    assert_eq!(a.sink.seen, b.sink.seen);
    assert_eq!(a.sink.seen, c.sink.seen);
    assert!(
        b.problems.is_empty() && c.problems.is_empty(),
        "{:?} {:?}",
        b.problems,
        c.problems
    );
}

#[test]
fn decode_counts_non_ip_and_vlan() {
    let (mut counts, mut st) = (Default::default(), Problems::default());
    let arp = [
        0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1,
    ];
    let p = RawPacket {
        ts_ns: 0,
        orig_len: 16,
        link: LinkType::Ethernet,
        data: &arp,
    };
    assert!(decode::decode(&p, &mut counts, &mut st).is_none());
    assert_eq!(st.of(Reason::NonIp), 1);
}

type Pkt = (i64, u32, LinkType, Vec<u8>);

fn read_both(p: &Path) -> ((Vec<Pkt>, String), (Vec<Pkt>, String)) {
    let own = |r: &RawPacket<'_>| (r.ts_ns, r.orig_len, r.link, r.data.to_vec());
    let mut a = Vec::new();
    let ra = read_file(p, |r| a.push(own(r)));
    let mut b = Vec::new();
    let rb = gatewatch::capture::file::read_stream(p, |r| b.push(own(r)));
    (
        (a, format!("{:?} {} {}", ra.problems, ra.packets, ra.bytes)),
        (b, format!("{:?} {} {}", rb.problems, rb.packets, rb.bytes)),
    )
}

/// The mmap fast path for classic pcap and pcap-parser's streaming reader
/// agree packet for packet (bytes, timestamps, lengths, link type) and
/// problem for problem, on every capture of the corpus and on damaged ones.
#[test]
fn mapped_reader_equals_streaming_reader() {
    let mut files = Vec::new();
    let mut stack = vec![corpus("")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 20, "{files:?}");
    for f in &files {
        let (mapped, streamed) = read_both(f);
        assert_eq!(mapped, streamed, "{}", f.display());
    }
    // Big-endian and nanosecond pcaps, a snaplen cut, a cut record and a
    // lying record length.
    let full = std::fs::read(corpus("zeek/http-qinq-0.pcap")).unwrap();
    let (_d, p) = tmp("cut.pcap", &full[..full.len() - 10]);
    let (m, s) = read_both(&p);
    assert_eq!(m, s);
    let mut w = PcapWriter::new(1, 65535);
    w.frame(1_500_000, &[7u8; 60], 60).frame(2, &[8u8; 40], 90);
    for (magic, be) in [
        (0xa1b2_c3d4u32, false),
        (0xa1b2_3c4d, false),
        (0xa1b2_c3d4, true),
    ] {
        let mut bytes = w.bytes.clone();
        bytes[..4].copy_from_slice(&magic.to_le_bytes());
        if be {
            // Rewrite every header field big-endian.
            let swap = |b: &mut [u8], at: usize, n: usize| b[at..at + n].reverse();
            swap(&mut bytes, 0, 4);
            swap(&mut bytes, 4, 2);
            swap(&mut bytes, 6, 2);
            for at in [8, 12, 16, 20] {
                swap(&mut bytes, at, 4);
            }
            let mut off = 24;
            while off < bytes.len() {
                for k in 0..4 {
                    swap(&mut bytes, off + 4 * k, 4);
                }
                let cap = u32::from_be_bytes(bytes[off + 8..off + 12].try_into().unwrap());
                off += 16 + cap as usize;
            }
        }
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0x40]);
        let (_d, p) = tmp("v.pcap", &bytes);
        let (m, s) = read_both(&p);
        assert_eq!(m.0.len(), 2, "{magic:x} be={be}: {}", m.1);
        assert_eq!(m, s, "{magic:x} be={be}");
    }
}
