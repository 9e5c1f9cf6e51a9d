//! Swapping a running snapshot for a newer file: a file with a bad
//! signature, an older or equal version, a shrunken or empty indicator
//! count, a truncated or damaged body or another format is refused with
//! its reason, and the running snapshot keeps matching; a good newer file
//! is swapped in, by a call, by SIGHUP or when the file changes.

use gatewatch::intel::indicator::Entry;
use gatewatch::intel::reload::{Outcome, Reload};
use gatewatch::intel::snap::swap::{Refusal, Running, SnapshotReloader, check};
use gatewatch::intel::snap::{self, Info, PublicKey, SigningKey};
use gatewatch::intel::{FeedMeta, Intel, Severity, Snapshot, SnapshotBuilder, triggers};
use gatewatch::metrics::Metrics;
use gatewatch::testkit::wait_until;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The indicator every snapshot here lists.
const KNOWN: &str = "always.example";

fn key() -> SigningKey {
    SigningKey::from_pkcs8(&snap::sign::generate().unwrap()).unwrap()
}

/// `KNOWN`, 203.0.113.7, `n` numbered domains and `extra`.
fn snapshot(n: usize, extra: &str) -> Snapshot {
    let f = Arc::new(FeedMeta {
        name: "domains".into(),
        category: "malware".into(),
        severity: Severity::High,
    });
    let mut b = SnapshotBuilder::default();
    if n > 0 {
        b.add(Entry::Domain(KNOWN.into()), &f);
        b.add(Entry::Ip("203.0.113.7".parse().unwrap()), &f);
    }
    for i in 0..n {
        b.add(Entry::Domain(format!("d{i}.example")), &f);
    }
    if !extra.is_empty() {
        b.add(Entry::Domain(extra.into()), &f);
    }
    b.build()
}

fn file(n: usize, extra: &str, version: u64, key: &SigningKey) -> Vec<u8> {
    snap::compile(&snapshot(n, extra), &[], version, 1_800_000_000, key)
}

/// Write by rename, as `feeds compile` and any fetcher should.
fn put(path: &Path, bytes: &[u8]) {
    snap::write_file(path, bytes).unwrap();
}

/// A run started from `path` (version 10, 1,002 indicators).
fn start(path: &Path, k: &SigningKey) -> (Arc<Intel>, Arc<SnapshotReloader>) {
    put(path, &file(1000, "", 10, k));
    let loaded = snap::load(path, &k.public()).unwrap();
    let info = loaded.info.clone();
    let feeds = loaded.feeds.clone();
    let intel = Arc::new(Intel::new(loaded.snapshot));
    let r = SnapshotReloader::new(path, k.public(), 0.5, intel.clone(), (&info, feeds));
    (intel, Arc::new(r))
}

fn matches(intel: &Intel, name: &str) -> bool {
    intel.load().match_domain(name).is_some()
}

/// What to refuse after a run at version 10 with 1,002 indicators: (what,
/// the file, the reason label).
fn refusals(k: &SigningKey) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = file(1000, "", 11, k);
    let mut damaged = good.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let mut format = good.clone();
    format[8] = 9;
    vec![
        (
            "bad signature",
            file(1000, "new.example", 11, &key()),
            "signature",
        ),
        (
            "older version",
            file(1000, "new.example", 9, k),
            "not_newer",
        ),
        (
            "same version",
            file(1000, "new.example", 10, k),
            "not_newer",
        ),
        ("shrunk", file(400, "new.example", 11, k), "shrunk"),
        ("empty", file(0, "", 11, k), "empty"),
        ("truncated", good[..good.len() / 2].to_vec(), "corrupt"),
        ("damaged", damaged, "corrupt"),
        ("another format", format, "format"),
        ("not a snapshot", b"always.example\n".to_vec(), "format"),
    ]
}

#[test]
fn bad_files_are_refused_and_the_running_snapshot_keeps_matching() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("feeds.snap");
    let k = key();
    let (intel, r) = start(&p, &k);
    let m = Metrics::new();
    // The running file read again is no change, and no refusal.
    let rep = r.reload();
    assert!(!rep.swapped && rep.refused_reason.is_none(), "{rep:?}");
    assert_eq!(rep.result(), "ok");
    for (what, bytes, reason) in refusals(&k) {
        put(&p, &bytes);
        let rep = r.reload();
        m.feeds.reloaded(&rep, &intel.load_full());
        assert!(!rep.swapped, "{what}: swapped");
        assert_eq!(rep.refused_reason, Some(reason), "{what}");
        assert_eq!(rep.result(), "refused", "{what}");
        let msg = rep.config_error.unwrap();
        assert!(msg.contains("feeds.snap"), "{what}: {msg}");
        assert_eq!(r.running().version, 10, "{what}");
        assert!(
            matches(&intel, KNOWN),
            "{what}: the running snapshot stopped matching"
        );
        assert!(!matches(&intel, "new.example"), "{what}");
        let ip = intel.load().match_ip("203.0.113.7".parse().unwrap(), None);
        assert!(ip.is_some(), "{what}");
    }
    let text = m.render();
    for reason in [
        "signature",
        "not_newer",
        "shrunk",
        "empty",
        "corrupt",
        "format",
    ] {
        assert!(
            text.contains(&format!(
                "gatewatch_snapshot_refused_total{{reason=\"{reason}\"}}"
            )),
            "{reason} not counted: {text}"
        );
    }
    assert!(text.contains("gatewatch_snapshot_version 10"), "{text}");
    // A good newer file is taken, even a little smaller (above half).
    put(&p, &file(600, "new.example", 12, &k));
    let rep = r.reload();
    m.feeds.reloaded(&rep, &intel.load_full());
    assert!(rep.swapped, "{:?}", rep.config_error);
    assert!(matches!(rep.feeds[0].1, Outcome::Loaded { accepted: 603 }));
    assert!(matches(&intel, "x.new.example") && matches(&intel, KNOWN));
    assert!(!matches(&intel, "d700.example"));
    assert_eq!(
        r.running(),
        Running {
            version: 12,
            indicators: 603
        }
    );
    assert!(m.render().contains("gatewatch_snapshot_version 12"));
    assert!(rep.to_json().contains("\"snapshot_version\":12"));
}

#[test]
fn the_rules_in_order() {
    let info = |version, indicators| Info {
        version,
        created: 0,
        indicators,
        kinds: [0; 6],
        bytes: 0,
        checksum: [0; 32],
    };
    let run = Running {
        version: 5,
        indicators: 1000,
    };
    let reason = |i: Info, f: f64| check(run, &i, f).err().map(|e| e.0);
    assert_eq!(reason(info(6, 500), 0.5), None);
    assert_eq!(reason(info(6, 499), 0.5), Some(Refusal::Shrunk));
    assert_eq!(reason(info(6, 10), 0.0), None);
    assert_eq!(reason(info(6, 0), 0.0), Some(Refusal::Empty));
    assert_eq!(reason(info(5, 2000), 0.5), Some(Refusal::NotNewer));
    assert_eq!(reason(info(4, 0), 0.5), Some(Refusal::NotNewer));
    assert_eq!(reason(info(6, 999), 1.0), Some(Refusal::Shrunk));
}

/// A file written by rename is picked up by the watcher, and SIGHUP re-reads
/// the file too; both go through the same rules.
#[test]
fn file_change_and_sighup_swap_a_newer_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("feeds.snap");
    let k = key();
    let (intel, r) = start(&p, &k);
    assert_eq!(r.watched_paths(), vec![p.clone()]);
    let seen = Arc::new(AtomicU64::new(0));
    let on: triggers::OnReload = {
        let seen = seen.clone();
        Arc::new(move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        })
    };
    let _t = triggers::start(r.clone(), on, true).unwrap();
    // Another file in the same directory written all the time (as the
    // store and the alert log are when they sit next to the snapshot) must
    // not hold the reload off.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (stop, f) = (stop.clone(), d.path().join("alerts.jsonl"));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::fs::write(&f, "x\n").unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    put(&p, &file(1000, "watched.example", 11, &k));
    wait_until("the watcher's swap", Duration::from_secs(15), || {
        matches(&intel, "watched.example")
    });
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    std::thread::sleep(triggers::DEBOUNCE * 2);
    // An older file arriving is refused; SIGHUP then finds a good one.
    put(&p, &file(1000, "old.example", 3, &k));
    wait_until("the refused reload", Duration::from_secs(15), || {
        seen.load(Ordering::Relaxed) >= 2
    });
    assert!(!matches(&intel, "old.example") && matches(&intel, "watched.example"));
    std::thread::sleep(triggers::DEBOUNCE * 2);
    let before = seen.load(Ordering::Relaxed);
    // Written in place this time (not by rename), then SIGHUP.
    std::fs::write(&p, file(1000, "hup.example", 12, &k)).unwrap();
    // SAFETY: raising a signal this process handles (signal-hook).
    unsafe { libc::raise(libc::SIGHUP) };
    wait_until("the SIGHUP swap", Duration::from_secs(15), || {
        matches(&intel, "hup.example") && seen.load(Ordering::Relaxed) > before
    });
    assert!(matches(&intel, KNOWN));
    assert_eq!(r.running().version, 12);
}

/// The public key file `feeds keygen` writes loads; one made for another
/// purpose does not.
#[test]
fn public_key_files() {
    let d = tempfile::tempdir().unwrap();
    let (kp, pp) = (d.path().join("k.pem"), d.path().join("k.pub"));
    let pk = snap::keygen(&kp, &pp).unwrap();
    assert_eq!(PublicKey::load(&pp).unwrap(), pk);
    assert_eq!(SigningKey::load(&kp).unwrap().public(), pk);
    std::fs::write(d.path().join("x.pub"), "hello\n").unwrap();
    let e = PublicKey::load(&d.path().join("x.pub")).unwrap_err();
    assert!(e.contains("x.pub") && e.contains("PEM"), "{e}");
}
