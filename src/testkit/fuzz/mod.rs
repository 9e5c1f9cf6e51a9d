//! The fuzz targets' bodies: one function per target, each taking the
//! fuzzer's bytes. `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly) call them,
//! and `tests/fuzz_corpus.rs` (stable `cargo test`) replays the minimised
//! corpus of `tests/corpus/fuzz/<target>/` through the same functions, so a
//! crash found by fuzzing stays fixed without nightly.
//!
//! Every entry point works in memory (no temporary files), so a target runs
//! thousands of inputs a second. Beyond "no panic", some targets check an
//! invariant and panic when it breaks: both capture readers agree on a
//! classic pcap; a QUIC Initial sealed with the real keys is opened again;
//! a snapshot file re-signed after mutation loads or is refused as
//! corrupt or of another format.

pub mod seeds;

use crate::capture::file::read_bytes;
use crate::detect::EngineOptions;
use crate::detect::attribution::Units;
use crate::intel::feeds::{FeedKind, FeedSpec, FeedsConfig, Format};
use crate::intel::snap::{self, Problem, SigningKey};
use crate::packet::{LinkType, Problems, RawPacket};
use crate::protocols::quic::seal::{crypto, seal_raw};
use crate::protocols::quic::{Outcome, QuicAssembler, Version};
use crate::protocols::{dns, hostnames, http, tls};
use crate::tcp::flow::FlowConfig;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// A fuzz target: its name (the file under `fuzz/fuzz_targets/` and the
/// folder of its corpus) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order `fuzz/run-all.sh` runs them.
pub const TARGETS: &[Target] = &[
    ("feed_plain", feed_plain),
    ("feed_hosts", feed_hosts),
    ("feed_csv", feed_csv),
    ("feed_zeek", feed_zeek),
    ("feed_stix", feed_stix),
    ("feed_misp", feed_misp),
    ("feed_maltrail", feed_maltrail),
    ("feed_iprep", feed_iprep),
    ("feed_annex", feed_annex),
    ("config_sensor", config_sensor),
    ("config_feeds", config_feeds),
    ("config_units", config_units),
    ("capture", capture),
    ("capture_gzip", capture_gzip),
    ("proto_dns", proto_dns),
    ("proto_tls", proto_tls),
    ("proto_http", proto_http),
    ("proto_quic", proto_quic),
    ("proto_dhcp", proto_dhcp),
    ("proto_nbns", proto_nbns),
    ("proto_mdns", proto_mdns),
    ("engine_frame", engine_frame),
    ("engine_sequence", engine_sequence),
    ("snapshot_read", snapshot_read),
];

/// The target named `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|t| t.0 == name).map(|t| t.1)
}

fn feed(format: Format, path: &str, bytes: &[u8], categories: Option<&[u8]>) {
    let mut spec = FeedSpec::new("fuzz", path, format);
    spec.kind = FeedKind::Block;
    spec.category = Some("botnet-c2".into());
    let (snap, rep) = crate::intel::feed_from_bytes(&spec, bytes, categories);
    // Duplicates are accepted entries seen again: never more than accepted.
    assert!(
        snap.duplicates <= rep.accepted,
        "more duplicates than entries"
    );
}

pub fn feed_plain(d: &[u8]) {
    feed(Format::Plain, "fuzz.txt", d, None)
}

pub fn feed_hosts(d: &[u8]) {
    feed(Format::Hosts, "hosts", d, None)
}

pub fn feed_csv(d: &[u8]) {
    feed(Format::Csv, "fuzz.csv", d, None)
}

pub fn feed_zeek(d: &[u8]) {
    feed(Format::Zeek, "intel.dat", d, None)
}

pub fn feed_stix(d: &[u8]) {
    feed(Format::Stix, "bundle.json", d, None)
}

pub fn feed_misp(d: &[u8]) {
    feed(Format::Misp, "event.json", d, None)
}

pub fn feed_maltrail(d: &[u8]) {
    feed(Format::Maltrail, "trails.csv", d, None)
}

/// The reputation file, then the categories file after the first NUL.
pub fn feed_iprep(d: &[u8]) {
    let (rep, cats) = split_at_nul(d);
    feed(Format::Iprep, "reputation.list", rep, cats)
}

/// A CSV annex, or a spreadsheet when the bytes start like one.
pub fn feed_annex(d: &[u8]) {
    feed(Format::Annex, "annex.csv", d, None)
}

pub fn config_sensor(d: &[u8]) {
    let text = String::from_utf8_lossy(d);
    let _ = crate::run::config::Config::parse("fuzz.toml", &text, Path::new("/nonexistent"));
}

pub fn config_feeds(d: &[u8]) {
    let text = String::from_utf8_lossy(d);
    let _ = FeedsConfig::parse(Path::new("/nonexistent/feeds.toml"), &text);
}

pub fn config_units(d: &[u8]) {
    let text = String::from_utf8_lossy(d);
    let internal = crate::detect::attribution::default_internal();
    if let Ok(u) = Units::parse("units.csv", &text, &internal) {
        for probe in [[10, 0, 0, 1], [192, 168, 1, 1], [8, 8, 8, 8]] {
            let _ = u.unit_of(IpAddr::V4(Ipv4Addr::from(probe)));
        }
    }
}

/// libfuzzer-sys's panic hook aborts at once, before `catch_unwind` can
/// act; the capture readers contain a known pcap-parser panic (a pcapng
/// block shorter than its header, see `capture::file::read_from`), as a
/// replay does. The default hook lets that containment run; a panic it does
/// not contain still reaches libfuzzer-sys's own `catch_unwind` and aborts.
fn contained_panics_allowed() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| drop(std::panic::take_hook()));
}

/// Both capture readers over the same bytes; on a classic pcap they must
/// hand out the same packets.
pub fn capture(d: &[u8]) {
    contained_panics_allowed();
    let mut mapped = Vec::new();
    let mut streamed = Vec::new();
    let (m, s) = read_bytes(Path::new("fuzz.pcap"), d, |p, from_map| {
        let seen = (p.ts_ns, p.orig_len, p.link, p.data.to_vec());
        if from_map {
            mapped.push(seen)
        } else {
            streamed.push(seen)
        }
    });
    if m.is_some() {
        // The streaming reader stops at a record it cannot buffer where the
        // mmap reader does not; up to there, both agree packet for packet.
        let n = mapped.len().min(streamed.len());
        assert_eq!(mapped[..n], streamed[..n], "the two readers disagree");
        if s.problems.is_empty() {
            assert_eq!(mapped.len(), streamed.len(), "the two readers disagree");
        }
    }
}

/// The input compressed with gzip, then read as a capture file.
pub fn capture_gzip(d: &[u8]) {
    contained_panics_allowed();
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = z.write_all(d);
    let Ok(gz) = z.finish() else { return };
    let _ = read_bytes(Path::new("fuzz.pcap.gz"), &gz, |_, _| {});
}

pub fn proto_dns(d: &[u8]) {
    let mut problems = Problems::default();
    if let Some(m) = dns::parse(d, &mut problems) {
        let _ = m.rcode_str();
    }
    dns::parse_tcp(d, &mut problems, |_, _| {});
}

pub fn proto_tls(d: &[u8]) {
    let _ = tls::client_hello(d);
    let _ = tls::client_hello_message(d);
}

pub fn proto_http(d: &[u8]) {
    let _ = http::request(d);
}

/// A structured QUIC input: a header byte (version, reserved bits), a
/// connection ID, then length-prefixed CRYPTO payloads, each sealed into its
/// own client Initial with the real keys and offered in order, so the
/// assembler's state after decryption is reached. The raw bytes are offered
/// too, for everything before the AEAD.
pub fn proto_quic(d: &[u8]) {
    let _ = quic_sni(d);
}

/// [`proto_quic`], answering the server name the sealed Initials gave.
pub fn quic_sni(d: &[u8]) -> Option<String> {
    let mut a = QuicAssembler::new();
    let _ = a.offer(1, 0, d);
    let (&head, rest) = d.split_first()?;
    let version = if head & 1 == 0 {
        Version::V1
    } else {
        Version::V2
    };
    let cid_len = usize::from(head >> 3).min(20).min(rest.len());
    let (dcid, mut rest) = rest.split_at(cid_len);
    let mut pn = 0u32;
    let mut sni = None;
    while rest.len() >= 3 {
        let offset = usize::from(rest[0]) * 64;
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let len = len.min(4000);
        let frames = crypto(offset, &rest[3..3 + len]);
        let bits = (head >> 1) & 0x0c;
        let pkt = seal_raw(dcid, version, bits, dcid, &[], pn, &frames);
        if let Outcome::Sni(Some(name)) = a.offer(7, i64::from(pn), &pkt) {
            sni = Some(String::from_utf8_lossy(name).into_owned());
        }
        pn += 1;
        rest = &rest[3 + len..];
    }
    sni
}

fn names(src_port: u16, dst_port: u16, d: &[u8]) {
    let mut out = Vec::new();
    let src = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let dst = IpAddr::V4(Ipv4Addr::BROADCAST);
    if let Ok(n) = hostnames::parse(src, dst, src_port, dst_port, d, &mut out) {
        assert_eq!(n, out.len(), "parse counted names it did not push");
    }
}

pub fn proto_dhcp(d: &[u8]) {
    names(68, 67, d)
}

pub fn proto_nbns(d: &[u8]) {
    names(137, 137, d)
}

pub fn proto_mdns(d: &[u8]) {
    names(5353, 5353, d)
}

/// The engine of the engine targets: a few listed domains and addresses,
/// one unit, every stage on, a small flow table. The feeds and units are
/// built once (they are read-only); each input gets a fresh engine and a
/// fresh recipe (whose host-name table carries state), so a crash
/// reproduces from its input alone.
fn fuzz_engine() -> crate::detect::Engine {
    use crate::detect::Recipe;
    use crate::intel::Intel;
    use std::sync::{Arc, OnceLock};
    static SHARED: OnceLock<(Arc<Intel>, Arc<Units>)> = OnceLock::new();
    let (intel, units) = SHARED.get_or_init(|| {
        let block = ["evil.example", "c2.test", "203.0.113.7", "198.51.100.0/24"];
        let snap = super::snapshot_of("ncsc", "botnet-c2", &block, &[]);
        let units = super::one_unit("U1", "Phòng Một", "10.1.0.0/16");
        (Arc::new(Intel::new(snap)), Arc::new(units))
    });
    let options = EngineOptions {
        resolvers: vec![IpAddr::V4(Ipv4Addr::new(10, 1, 0, 53))],
        flows: FlowConfig {
            max_flows: 256,
            reassembly_bytes: 1 << 20,
            ..FlowConfig::default()
        },
        heuristics: fuzz_heuristics(),
        // The retro-hunt's history too, as a sensor with a store keeps it.
        history: true,
        history_entries: 1_024,
        ..EngineOptions::default()
    };
    Recipe::new(intel.clone(), units.clone(), options).engine(0)
}

/// Small tables (a fresh engine per input) and thresholds a short input
/// can reach, so the fuzzer gets into the heuristics' reporting paths.
fn fuzz_heuristics() -> crate::detect::heuristics::Settings {
    let mut h = crate::detect::heuristics::Settings {
        max_tracked: 1_024,
        allow_destinations: vec!["203.0.113.0/29".into(), "allowed.example".into()],
        ..Default::default()
    };
    h.scan.min_addresses = 3;
    h.scan.min_ports = 3;
    h.scan.confirm_ms = 0;
    h.dga.min_domains = 2;
    h.tunnel.min_names = 2;
    h.tunnel.min_bytes = 0;
    h.tunnel.min_span_s = 0;
    h.beacon.min_connections = 4;
    h.beacon.min_period_s = 1;
    h
}

const LINKS: [LinkType; 5] = [
    LinkType::Ethernet,
    LinkType::RawIp,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
];

/// One frame (link type from the first byte) through a fresh engine.
pub fn engine_frame(d: &[u8]) {
    let Some((&l, frame)) = d.split_first() else {
        return;
    };
    let mut e = fuzz_engine();
    let mut sink = super::Collector::default();
    let p = RawPacket {
        ts_ns: 1_700_000_000_000_000_000,
        orig_len: frame.len() as u32,
        link: LINKS[usize::from(l) % LINKS.len()],
        data: frame,
    };
    e.process(&p, &mut sink);
    e.finish(&mut sink);
}

/// Frames as `[seconds step][length: u16 BE][frame]...` through one engine,
/// so flows, reassembly, QUIC assembly, DNS correlation and host names
/// carry state from frame to frame; all Ethernet, times moving forward.
pub fn engine_sequence(d: &[u8]) {
    engine_sequence_hits(d);
}

/// [`engine_sequence`], keeping what the engine found (for the tests of
/// the seeds).
pub fn engine_sequence_hits(d: &[u8]) -> super::Collector {
    let mut e = fuzz_engine();
    let mut sink = super::Collector::default();
    let mut ts_ns = 1_700_000_000_000_000_000i64;
    let mut rest = d;
    while rest.len() >= 3 {
        ts_ns += i64::from(rest[0]) * 1_000_000_000;
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        let p = RawPacket {
            ts_ns,
            orig_len: frame.len() as u32,
            link: LinkType::Ethernet,
            data: frame,
        };
        e.process(&p, &mut sink);
        rest = &rest[3 + len..];
    }
    e.finish(&mut sink);
    sink
}

fn split_at_nul(d: &[u8]) -> (&[u8], Option<&[u8]>) {
    match d.iter().position(|&b| b == 0) {
        Some(i) => (&d[..i], Some(&d[i + 1..])),
        None => (d, None),
    }
}

/// The key `snapshot_read` re-signs with (one per process).
fn fuzz_key() -> &'static SigningKey {
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let der = snap::sign::generate().expect("an ed25519 key");
        SigningKey::from_pkcs8(&der).expect("the key just made")
    })
}

/// A snapshot file: read as it is (mutations never forge a signature, so
/// this covers the checks before it), then re-signed with a fresh payload
/// length and checksum, so the mutated payload reaches the decoder, which
/// must refuse it as corrupt or of another format, or load something that
/// answers lookups.
pub fn snapshot_read(d: &[u8]) {
    let key = fuzz_key();
    let public = key.public();
    let _ = snap::load_bytes(d, &public);
    let mut b = d.to_vec();
    snap::resign(&mut b, key);
    match snap::load_bytes(&b, &public) {
        Err(e) => assert!(
            matches!(e.problem, Problem::Corrupt | Problem::Format),
            "re-signed, yet refused as {}: {}",
            e.problem.as_str(),
            e.message
        ),
        Ok(l) => {
            let s = l.snapshot;
            for name in ["evil.example", "a.evil.example", "c2.test", "x.y"] {
                if let Some(id) = s.match_domain(name) {
                    let _ = s.indicator(id, name);
                }
            }
            for ip in ["203.0.113.7", "198.51.100.9", "2001:db8::1", "10.0.0.1"] {
                let ip = ip.parse().expect("an address");
                if let Some(id) = s.match_ip(ip, Some(443)) {
                    let _ = s.indicator(id, "fuzz");
                }
            }
            if let Some(id) = s.match_pattern(b"evil.example/gate.php?id=1") {
                let _ = s.indicator(id, "evil.example/gate.php");
            }
        }
    }
}
