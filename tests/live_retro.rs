//! The retro-hunt in the live sensor (issue 16): traffic captured while
//! only the URL list was loaded, then the other lists added and SIGHUP: the
//! reload hunts the history, and the alert log gains the missed hits marked
//! `"retro": true`, at their original times; together with the live hits
//! they name the (host, indicator) pairs a replay with every list names.
//!
//! Runs in its own network namespace like `tests/live.rs` (root, iproute2,
//! tcpreplay, curl); fails, never skips, where they are missing.

use gatewatch::testkit::live::*;
use gatewatch::testkit::wait_for;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

type Pairs = BTreeSet<(String, String)>;

/// Offender alerts of a log as (host, indicator), URL and keyword hits
/// left out (the history keeps names and addresses, not paths), and the
/// number marked `retro`.
fn pairs(log: &Path) -> (Pairs, usize) {
    let mut out = Pairs::new();
    let mut retro = 0;
    for l in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["event_type"] != "alert" || v["offender"] == false {
            continue;
        }
        retro += usize::from(v["retro"] == true);
        if !matches!(v["indicator_kind"].as_str(), Some("url" | "keyword")) {
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            out.insert((s("host_ip"), s("indicator")));
        }
    }
    (out, retro)
}

#[test]
fn a_reload_hunts_the_history_for_what_the_new_lists_name() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (all, units) = combined_config(dir.path());
    let text = std::fs::read_to_string(&all).unwrap();
    let urls: String = text
        .split("[[feed]]")
        .filter(|f| f.contains("name = \"gen-urls\""))
        .map(|f| format!("[[feed]]{f}"))
        .collect();
    let feeds = dir.path().join("live-feeds.toml");
    std::fs::write(&feeds, &urls).unwrap();
    let files = [C2_PCAP, SMALL_PCAP];
    let (want, _) = pairs(&replay_alerts(dir.path(), &all, &units, &files));
    assert!(want.iter().any(|(_, i)| i == C2_ADDR), "{want:?}");

    let ns = capture_ns();
    let mut s = Sensor::start(&ns, dir.path(), 19481, &feeds, &units);
    let sent = tcpreplay_all(&ns, dir.path(), &files);
    wait_processed(&ns, &s, sent);
    let (before, _) = pairs(&s.alerts);
    assert!(before.len() < want.len(), "{before:?}");
    // Let the workers hand over their last history batch (on their idle
    // tick) and the store commit it: the count of new rows settles.
    let series = "gatewatch_history_items_total{outcome=\"new\"}";
    let mut last = -1.0;
    wait_for("the history to settle", Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(1_500));
        let n = metric(&s.scrape(&ns), series).unwrap_or(0.0);
        let settled = n > 0.0 && n == last;
        last = n;
        if settled {
            Ok(())
        } else {
            Err(format!("{n} new history rows"))
        }
    });
    let reloaded = chrono::Utc::now();
    std::fs::write(&feeds, &text).unwrap();
    s.proc.signal(libc::SIGHUP);
    wait_for("the retro-hunt's hits", Duration::from_secs(20), || {
        let m = s.scrape(&ns);
        match metric(&m, "gatewatch_retro_runs_total") {
            Some(n) if n >= 1.0 => Ok(()),
            _ => Err(format!(
                "{}{}",
                m.lines()
                    .filter(|l| l.contains("retro"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                s.logs()
            )),
        }
    });
    let m = s.scrape(&ns);
    let (st, _) = s.terminate();
    assert!(st.success(), "{st}{}", s.logs());
    let (got, retro) = pairs(&s.alerts);
    assert_eq!(got, want, "live hits and the hunt's together{}", s.logs());
    assert!(retro > 0, "{}", s.logs());
    assert_eq!(
        metric(&m, "gatewatch_retro_hits_total"),
        Some(retro as f64),
        "{m}"
    );
    // The hits carry the times of the packets, before the reload.
    let log = std::fs::read_to_string(&s.alerts).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(C2_ADDR) && l.contains("\"retro\":true"));
    let v: Value = serde_json::from_str(line.expect("a retro hit on the C2 address")).unwrap();
    let ts = v["timestamp"].as_str().unwrap();
    let t = chrono::DateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.f%z").unwrap();
    assert!(t < reloaded, "{ts} is not before the reload at {reloaded}");
}
