//! Snapshot swap under concurrent readers: readers never block, never see a
//! half-built table, and an indicator present in every snapshot is always
//! found while snapshots are being replaced.

use gatewatch::intel::indicator::Entry;
use gatewatch::intel::{FeedMeta, Intel, Severity, SnapshotBuilder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn snapshot(generation: u32) -> gatewatch::intel::Snapshot {
    let f = Arc::new(FeedMeta {
        name: format!("gen-{generation}"),
        category: "malware".into(),
        severity: Severity::High,
    });
    let mut b = SnapshotBuilder::default();
    b.add(Entry::Domain("always.example".into()), &f);
    b.add(Entry::Ip("203.0.113.7".parse().unwrap()), &f);
    for i in 0..2_000 {
        b.add(Entry::Domain(format!("g{generation}-{i}.example")), &f);
    }
    b.build()
}

#[test]
fn readers_always_find_stable_indicators_during_swaps() {
    let intel = Arc::new(Intel::new(snapshot(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (intel, stop, lookups) = (intel.clone(), stop.clone(), lookups.clone());
            std::thread::spawn(move || {
                let ip = "203.0.113.7".parse().unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let s = intel.load();
                    assert!(
                        s.match_domain("x.always.example").is_some(),
                        "stable domain missed"
                    );
                    assert!(s.match_ip(ip, None).is_some(), "stable address missed");
                    // A snapshot is internally consistent: its own generation is complete.
                    let gen_name = &s
                        .indicator(s.match_domain("always.example").unwrap(), "always.example")
                        .feed
                        .name;
                    let g: u32 = gen_name.trim_start_matches("gen-").parse().unwrap();
                    assert!(s.match_domain(&format!("g{g}-1999.example")).is_some());
                    lookups.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for g in 1..=100 {
        intel.store(snapshot(g));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader panicked");
    }
    assert!(lookups.load(Ordering::Relaxed) > 100);
    assert!(intel.load().match_domain("g100-0.example").is_some());
}
