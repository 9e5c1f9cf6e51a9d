//! A compiled snapshot matches exactly as the snapshot it was compiled
//! from; every kind of damage is refused with its problem; a signed but
//! mangled payload is refused or loads, never panics.

use super::format::{HEADER_LEN, Header, PAYLOAD_AT};
use super::*;
use crate::intel::indicator::{EntryType, classify};
use crate::intel::{FeedMeta, Note, Severity, SnapshotBuilder};
use std::net::IpAddr;

fn signer() -> SigningKey {
    SigningKey::from_pkcs8(&sign::generate().unwrap()).unwrap()
}

fn feed(name: &str, sev: Severity) -> Arc<FeedMeta> {
    Arc::new(FeedMeta {
        name: name.into(),
        category: format!("{name}-cat"),
        severity: sev,
    })
}

/// Three parts: two block feeds that overlap (notes on some entries) and
/// an allowlist.
fn sample(entries: &[String], allow: &[String]) -> Snapshot {
    let mut parts = Vec::new();
    for (rank, sev) in [(0u32, Severity::Medium), (1, Severity::High)] {
        let f = feed(&format!("f{rank}"), sev);
        let mut b = SnapshotBuilder::ranked(rank);
        for (i, e) in entries.iter().enumerate() {
            // The second feed repeats every other entry of the first.
            if rank == 1 && i % 2 == 1 {
                continue;
            }
            let Ok(e) = classify(e, EntryType::Auto) else {
                continue;
            };
            let note = (i % 3 == 0).then(|| Note {
                reference: Some(format!("ref-{i}").into()),
                description: (i % 2 == 0).then(|| "desc".into()),
            });
            b.add_noted(e, &f, note);
        }
        parts.push(Arc::new(b.build_part()));
    }
    let mut b = SnapshotBuilder::ranked(2);
    for a in allow {
        if let Ok(e) = classify(a, EntryType::Auto) {
            b.allow(e);
        }
    }
    parts.push(Arc::new(b.build_part()));
    Snapshot::assemble(parts)
}

fn same_match(a: &Snapshot, b: &Snapshot, id_a: Option<u64>, id_b: Option<u64>, obs: &str) {
    assert_eq!(id_a, id_b, "{obs}");
    if let (Some(x), Some(y)) = (id_a, id_b) {
        let (x, y) = (a.indicator(x, obs), b.indicator(y, obs));
        assert_eq!(
            (&x.value, x.kind, &x.reference, &x.description),
            (&y.value, y.kind, &y.reference, &y.description)
        );
        assert_eq!(x.feed, y.feed);
    }
}

fn assert_same(a: &Snapshot, b: &Snapshot, probes: &[String]) {
    assert_eq!(a.counts, b.counts);
    assert_eq!(a.duplicates, b.duplicates);
    assert_eq!(a.len(), b.len());
    for p in probes {
        if let Ok(ip) = p.parse::<IpAddr>() {
            for port in [None, Some(443), Some(8080)] {
                same_match(a, b, a.match_ip(ip, port), b.match_ip(ip, port), p);
            }
            assert_eq!(a.allow_ip(ip), b.allow_ip(ip));
        } else {
            same_match(a, b, a.match_domain(p), b.match_domain(p), p);
            same_match(
                a,
                b,
                a.match_pattern(p.as_bytes()),
                b.match_pattern(p.as_bytes()),
                p,
            );
            assert_eq!(a.allow_domain(p), b.allow_domain(p));
        }
    }
}

fn fixed_entries() -> Vec<String> {
    [
        "bad.example",
        "c2.bad.example",
        "evil.test",
        "203.0.113.5",
        "198.51.100.0/24",
        "198.51.100.128/25",
        "198.51.100.77/24",
        "2001:db8::/32",
        "2001:db8::5",
        "192.0.2.9:8443",
        "[2001:db8::9]:443",
        "bad.example/gate.php",
        "evil.test/x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_compiled_snapshot_matches_as_its_source() {
    let entries = fixed_entries();
    let allow: Vec<String> = [
        "ok.bad.example",
        "198.51.100.7",
        "10.0.0.0/8",
        "2001:db8::/48",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let src = sample(&entries, &allow);
    let key = signer();
    let bytes = compile(&src, &[], 42, 1_700_000_000, &key);
    let got = load_bytes(&bytes, &key.public()).unwrap();
    assert_eq!(got.info.version, 42);
    assert_eq!(got.info.indicators as usize, src.indicators());
    assert_eq!(got.feeds.len(), 3);
    assert_eq!(got.feeds[1].name, "f1");
    let mut probes = entries.clone();
    probes.extend(allow.iter().cloned());
    for p in [
        "x.c2.bad.example",
        "ok.bad.example",
        "a.ok.bad.example",
        "notbad.example",
        "198.51.100.200",
        "198.51.100.7",
        "10.1.2.3",
        "2001:db8:0:1::1",
        "2001:db9::1",
        "GET.bad.example/gate.php?x",
        "192.0.2.9",
    ] {
        probes.push(p.to_string());
    }
    assert_same(&src, &got.snapshot, &probes);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Random feeds, compiled and loaded, match every probe as the built
    /// snapshot does (large enough tables get radix indexes).
    #[test]
    fn compiled_equals_built(
        doms in proptest::collection::vec("[a-c]{1,3}(\\.[a-c]{1,2}){0,2}\\.(com|vn)", 0..60),
        ips in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..5000),
        nets in proptest::collection::vec((proptest::prelude::any::<u32>(), 8u8..=32), 0..40),
        probes in proptest::collection::vec("[a-c]{1,3}(\\.[a-c]{1,2}){0,3}\\.(com|vn|org)", 0..40),
    ) {
        let mut entries: Vec<String> = doms;
        entries.extend(ips.iter().map(|a| std::net::Ipv4Addr::from(a | 0x0100_0000).to_string()));
        entries.extend(nets.iter().map(|&(a, p)| format!("{}/{p}", std::net::Ipv4Addr::from(a | 0x0100_0000))));
        let src = sample(&entries, &entries[..entries.len().min(5)]);
        let key = signer();
        let got = load_bytes(&compile(&src, &[], 1, 2, &key), &key.public()).unwrap();
        let mut all = probes;
        all.extend(entries.iter().take(300).cloned());
        all.extend(ips.iter().take(100).map(|a| std::net::Ipv4Addr::from(a ^ 1).to_string()));
        assert_same(&src, &got.snapshot, &all);
    }
}

fn small_file(key: &SigningKey) -> Vec<u8> {
    compile(&sample(&fixed_entries(), &[]), &[], 5, 6, key)
}

fn problem(bytes: &[u8], key: &PublicKey) -> (Problem, String) {
    match load_bytes(bytes, key) {
        Ok(_) => panic!("loaded"),
        Err(e) => (e.problem, e.message),
    }
}

#[test]
fn damage_is_refused_with_its_problem() {
    let key = signer();
    let pk = key.public();
    let good = small_file(&key);
    assert!(load_bytes(&good, &pk).is_ok());
    let (p, m) = problem(&good, &signer().public());
    assert_eq!(p, Problem::Signature);
    assert!(m.contains("another key"), "{m}");
    let mut b = good.clone();
    b[HEADER_LEN + 3] ^= 1;
    let (p, m) = problem(&b, &pk);
    assert_eq!(p, Problem::Signature);
    assert!(m.contains("altered"), "{m}");
    let mut b = good.clone();
    *b.last_mut().unwrap() ^= 0x80;
    assert_eq!(problem(&b, &pk).0, Problem::Corrupt);
    assert_eq!(problem(&good[..good.len() - 1], &pk).0, Problem::Corrupt);
    assert_eq!(problem(&good[..100], &pk).0, Problem::Corrupt);
    assert_eq!(problem(&good[..4], &pk).0, Problem::Format);
    assert_eq!(problem(b"# feeds\nbad.example\n", &pk).0, Problem::Format);
    let mut b = good.clone();
    b[8] = 2;
    let (p, m) = problem(&b, &pk);
    assert_eq!(p, Problem::Format);
    assert!(m.contains("format 2"), "{m}");
    // Another hash function (simulated by a wrong check value), signed.
    let mut b = good.clone();
    b[96] ^= 1;
    resign(&mut b, &key);
    assert_eq!(problem(&b, &pk).0, Problem::Format);
}

#[test]
fn a_signed_but_mangled_payload_never_panics() {
    let key = signer();
    let pk = key.public();
    let good = small_file(&key);
    // Flip bits in the directory and the parts' tables, before the
    // filters (which are trusted, and most of the bytes).
    let parts = Header::decode(&good[..HEADER_LEN]).parts as usize;
    let at = PAYLOAD_AT + 16 + parts * super::format::SLOTS * 16;
    let filters = u64::from_le_bytes(good[at..at + 8].try_into().unwrap()) as usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut refused = 0;
    for round in 0..400 {
        let mut b = good.clone();
        for _ in 0..1 + round % 4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = PAYLOAD_AT + (seed as usize) % filters;
            b[at] ^= 1 << (seed >> 60 & 7);
        }
        resign(&mut b, &key);
        match load_bytes(&b, &pk) {
            Err(e) => {
                assert_eq!(e.problem, Problem::Corrupt, "{}", e.message);
                refused += 1;
            }
            Ok(l) => {
                let s = l.snapshot;
                for p in fixed_entries() {
                    if let Some(id) = s.match_domain(&p).or(s.match_pattern(p.as_bytes())) {
                        let _ = s.indicator(id, &p);
                    }
                    if let Some(id) = p.parse().ok().and_then(|ip| s.match_ip(ip, Some(443))) {
                        let _ = s.indicator(id, "");
                    }
                }
            }
        }
    }
    assert!(refused > 100, "only {refused} of 400 mangled files refused");
}

#[test]
fn files_are_written_whole_by_rename() {
    let d = std::env::temp_dir().join(format!("gw-snapw-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("s.snap");
    let key = signer();
    write_file(&p, &small_file(&key)).unwrap();
    let l = load(&p, &key.public()).unwrap();
    assert_eq!(l.info.bytes, std::fs::metadata(&p).unwrap().len());
    let names: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left");
    let (p2, m) = match load(&d.join("missing.snap"), &key.public()) {
        Err(e) => (e.problem, e.message),
        Ok(_) => panic!(),
    };
    assert_eq!(p2, Problem::Unreadable);
    assert!(m.contains("missing.snap"), "{m}");
    std::fs::remove_dir_all(&d).unwrap();
}
