//! `gatewatch run` started from a signed feed snapshot (issue 18): it
//! matches what the snapshot lists, refuses an older file that replaces it
//! (the reason counted, the running one kept) and swaps in a newer one on
//! SIGHUP or when the file changes, without stopping; and with
//! `[central]` it fetches a snapshot published on the central.
//!
//! Runs in its own network namespace like `tests/live.rs` (root, iproute2,
//! tcpreplay, curl); fails, never skips, where they are missing.

use gatewatch::testkit::live::*;
use gatewatch::testkit::postgres::Postgres;
use gatewatch::testkit::snapshot_cli::{compile, keygen};
use gatewatch::testkit::{bin_path, text, wait_for};
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

/// `gatewatch run` with `[central]`: it fetches a snapshot published on
/// the central while it runs (PostgreSQL in the sensor's namespace),
/// swaps it in without stopping, keeps it on disk for the next start, and
/// ships its hits to the same central.
#[test]
fn run_fetches_a_snapshot_published_on_the_central() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (all, units) = combined_config(d);
    let (key, public) = keygen(d, "k");
    let snap = d.join("feeds.snap");
    compile(&urls_only(&all, d), &key, &snap, Some(100));
    let ns = capture_ns();
    let pg = Postgres::start_in(d, Some(&ns.name));
    let conf = d.join("gatewatch.toml");
    std::fs::write(
        &conf,
        format!(
            "snapshot = {snap:?}\nsnapshot_key = {public:?}\nstore = {:?}\n\n[central]\nurl = {:?}\nprovince = \"Huế\"\ninterval_s = 1\nsnapshot_interval_s = 1\n",
            d.join("gw.db"),
            pg.url()
        ),
    )
    .unwrap();
    let c = conf.display().to_string();
    let extra = ["--workers", "2", "--config", &c];
    let feeds = (all.as_path(), units.as_path());
    let mut s = Sensor::spawn_with(&ns, d, 19484, feeds, &[RX], &extra).healthy(&ns);
    wait_metric(&ns, &s, "gatewatch_snapshot_version", 100.0);

    // Every list, version 101, published on the central: fetched, swapped.
    let v101 = d.join("v101.snap");
    compile(&all, &key, &v101, Some(101));
    let publish = ns
        .cmd(bin_path())
        .args(["feeds", "publish"])
        .arg(&v101)
        .args(["--central", &pg.url(), "--key"])
        .arg(&public)
        .output()
        .unwrap();
    assert!(publish.status.success(), "{}", text(&publish));
    wait_metric(&ns, &s, "gatewatch_snapshot_version", 101.0);
    assert_eq!(std::fs::read(&snap).unwrap(), std::fs::read(&v101).unwrap());
    let sent = tcpreplay_all(&ns, d, &[C2_PCAP]);
    wait_processed(&ns, &s, sent);
    wait_for("a hit on the C2 address", Duration::from_secs(20), || {
        if read(&s.alerts).contains(C2_ADDR) {
            Ok(())
        } else {
            Err(s.logs())
        }
    });
    wait_for("the hits shipped", Duration::from_secs(20), || {
        let m = s.scrape(&ns);
        let (lag, rows) = (
            metric(&m, "gatewatch_ship_lag_rows"),
            metric_or_0(&m, "gatewatch_ship_rows_total"),
        );
        if lag == Some(0.0) && rows > 0.0 {
            Ok(())
        } else {
            Err(format!("lag {lag:?}, rows {rows}{}", s.logs()))
        }
    });
    let m = s.scrape(&ns);
    assert_eq!(
        metric_or_0(&m, "gatewatch_snapshot_fetch_failures_total"),
        0.0,
        "{m}"
    );
    let (st, _) = s.terminate();
    assert!(st.success(), "{st}{}", s.logs());
}
