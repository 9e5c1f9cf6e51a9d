//! The store through the binary: replay records hits, `hosts mark-cleaned`
//! and reinfection, and `kill -9` in the middle of writing leaves a
//! consistent database that holds a prefix of what a full run writes.

use gatewatch::store::{Status, Store};
use gatewatch::testkit::synth::query_storm;
use gatewatch::testkit::{bin, demo_replay, text};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

fn replay(alerts: &Path, store: &Path, append: bool) -> Output {
    let mut c = demo_replay(alerts);
    c.arg("--store")
        .arg(store)
        .arg("samples/c2-tls-clienthello.pcap");
    if append {
        c.arg("--append");
    }
    c.output().unwrap()
}

#[test]
fn replay_records_hosts_and_mark_cleaned_then_reinfected() {
    let d = tempfile::tempdir().unwrap();
    let (alerts, db) = (d.path().join("a.jsonl"), d.path().join("s/g.db"));
    let o = replay(&alerts, &db, false);
    assert!(o.status.success(), "{}", text(&o));
    let ip = "192.168.46.2".parse().unwrap();
    let h = Store::open_read_only(&db)
        .unwrap()
        .host(ip)
        .unwrap()
        .unwrap();
    assert_eq!(
        (h.unit.as_str(), h.status, h.hits),
        ("SO-TTTT", Status::Open, 1)
    );

    let o = bin()
        .args([
            "hosts",
            "mark-cleaned",
            "192.168.46.2",
            "--note",
            "cài lại máy",
            "--by",
            "an",
        ])
        .arg("--store")
        .arg(&db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Đã xử lý"), "{}", text(&o));
    let o = bin()
        .args(["hosts", "mark-cleaned", "10.9.9.9", "--store"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("10.9.9.9: no such offender host"),
        "{}",
        text(&o)
    );

    // The same capture again: its hit is older than the cleaning, so the
    // host stays cleaned (a late replay of old traffic is not a reinfection).
    let o = replay(&alerts, &db, true);
    assert!(o.status.success(), "{}", text(&o));
    let h = Store::open_read_only(&db)
        .unwrap()
        .host(ip)
        .unwrap()
        .unwrap();
    assert_eq!((h.status, h.hits), (Status::Cleaned, 2));
}

/// 30k DNS queries for a listed name from 100 hosts: 30k hits.
fn hit_storm(dir: &Path) -> PathBuf {
    let p = dir.join("storm.pcap");
    query_storm(&p, 30_000, "x.apiapi10.org", |i| {
        std::net::IpAddr::from([10, 20, 0, 10 + (i % 100) as u8])
    });
    p
}

#[test]
fn kill_9_mid_write_leaves_a_consistent_prefix() {
    let d = tempfile::tempdir().unwrap();
    let storm = hit_storm(d.path());
    let run = |alerts: &Path, db: &Path| {
        let mut c = demo_replay(alerts);
        c.arg("--store").arg(db).arg(&storm);
        c
    };
    // The reference: a full run.
    let (full_log, full_db) = (d.path().join("full.jsonl"), d.path().join("full.db"));
    let o = run(&full_log, &full_db).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let full = Store::open_read_only(&full_db).unwrap();
    assert_eq!(full.alert_count().unwrap(), 30_000);

    // Killed once the store has committed something.
    let (log, db) = (d.path().join("k.jsonl"), d.path().join("k.db"));
    let mut child = run(&log, &db).spawn().unwrap();
    let t = Instant::now();
    loop {
        let n = Store::open_read_only(&db)
            .ok()
            .and_then(|s| s.alert_count().ok())
            .unwrap_or(0);
        if n > 0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "store never written");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let s = Store::open(&db).expect("reopens after kill -9");
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let n = s.alert_count().unwrap();
    assert!(n > 0, "some hits committed before the kill");
    let conn = rusqlite::Connection::open(&db).unwrap();
    // Aggregates agree with the raw alerts: transactions are all or nothing.
    let (hosts_hits, pair_hits): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT sum(hits) FROM hosts), (SELECT sum(hits) FROM host_indicators)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((hosts_hits as u64, pair_hits as u64), (n, n));
    // What was committed is exactly the first n alerts of the full run.
    let got: Vec<String> = conn
        .prepare("SELECT json FROM alerts ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let want: Vec<String> = std::fs::read_to_string(&full_log)
        .unwrap()
        .lines()
        .take(n as usize)
        .map(str::to_owned)
        .collect();
    assert_eq!(got, want);
    eprintln!("killed after {n} of 30000 hits were committed");
}
