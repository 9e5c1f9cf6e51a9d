//! `gatewatch run` started from a signed feed snapshot (issue 18): it
//! matches what the snapshot lists, refuses an older file that replaces it
//! (the reason counted, the running one kept) and swaps in a newer one on
//! SIGHUP or when the file changes, without stopping.
//!
//! Runs in its own network namespace like `tests/live.rs` (root, iproute2,
//! tcpreplay, curl); fails, never skips, where they are missing.

use gatewatch::testkit::live::*;
use gatewatch::testkit::snapshot_cli::{compile, keygen};
use gatewatch::testkit::wait_for;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Wait until `series` reads `want` on the sensor's `/metrics`.
fn wait_metric(ns: &Netns, s: &Sensor, series: &str, want: f64) {
    wait_for(series, Duration::from_secs(20), || {
        match metric(&s.scrape(ns), series) {
            Some(v) if v == want => Ok(()),
            other => Err(format!("{other:?}{}", s.logs())),
        }
    });
}

/// A feeds file with the URL list of `all` alone.
fn urls_only(all: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(all).unwrap();
    let urls: String = text
        .split("[[feed]]")
        .filter(|f| f.contains("name = \"gen-urls\""))
        .map(|f| format!("[[feed]]{f}"))
        .collect();
    let p = dir.join("urls.toml");
    std::fs::write(&p, urls).unwrap();
    p
}

#[test]
fn run_from_a_snapshot_refuses_older_files_and_swaps_newer() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (all, units) = combined_config(d);
    // First the URL list alone, so the C2 address is not listed yet.
    let urls_toml = urls_only(&all, d);
    let (key, public) = keygen(d, "k");
    let snap = d.join("feeds.snap");
    compile(&urls_toml, &key, &snap, Some(100));

    let ns = capture_ns();
    let (s_arg, k_arg) = (snap.display().to_string(), public.display().to_string());
    let extra = [
        "--workers",
        "2",
        "--snapshot",
        &s_arg,
        "--snapshot-key",
        &k_arg,
    ];
    let feeds = (all.as_path(), units.as_path());
    let mut s = Sensor::spawn_with(&ns, d, 19483, feeds, &[RX], &extra).healthy(&ns);
    wait_metric(&ns, &s, "gatewatch_snapshot_version", 100.0);
    let files = [C2_PCAP, SMALL_PCAP];
    let sent = tcpreplay_all(&ns, d, &files);
    wait_processed(&ns, &s, sent);
    let before = read(&s.alerts);
    assert!(!before.contains(C2_ADDR), "{}", s.logs());
    assert!(
        before.contains("\"indicator_kind\":\"url\""),
        "{}",
        s.logs()
    );

    // An older file put in place (by rename): refused, version 100 stays.
    compile(&all, &key, &snap, Some(99));
    wait_metric(
        &ns,
        &s,
        "gatewatch_snapshot_refused_total{reason=\"not_newer\"}",
        1.0,
    );
    assert_eq!(
        metric(&s.scrape(&ns), "gatewatch_snapshot_version"),
        Some(100.0)
    );
    // A newer one with every list, then SIGHUP: swapped in.
    compile(&all, &key, &snap, Some(101));
    s.proc.signal(libc::SIGHUP);
    wait_metric(&ns, &s, "gatewatch_snapshot_version", 101.0);
    let sent2 = tcpreplay_all(&ns, d, &[C2_PCAP]);
    wait_processed(&ns, &s, sent + sent2);
    wait_for("a hit on the C2 address", Duration::from_secs(20), || {
        if read(&s.alerts).contains(C2_ADDR) {
            Ok(())
        } else {
            Err(s.logs())
        }
    });
    let m = s.scrape(&ns);
    assert_eq!(
        metric(&m, "gatewatch_snapshot_refused_total{reason=\"not_newer\"}"),
        Some(1.0),
        "{m}"
    );
    let (st, _) = s.terminate();
    assert!(st.success(), "{st}{}", s.logs());
    let logs = s.logs();
    assert!(
        logs.contains("not newer than the running version 100"),
        "{logs}"
    );
}
