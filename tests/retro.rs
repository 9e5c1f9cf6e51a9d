//! The retro-hunt (issue 16): a day recorded with one list, hunted later
//! with more, leaves the store with the offenders a fresh replay of that
//! day with all the lists gives; a second hunt finds nothing new; `--since`
//! leaves older days out. The history is bounded per host and day, and
//! pruned past its retention. (The real captures of the corpus run the same
//! rule in `tests/corpus.rs`.)

use gatewatch::detect::HitSource;
use gatewatch::detect::attribution::Unit;
use gatewatch::detect::history::{DAY_NS, HistoryItem, HistorySettings, Seen};
use gatewatch::store::Store;
use gatewatch::store::writer::StoreWriter;
use gatewatch::testkit::{bin, generator, ip, text};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;

const FEEDS: &str = include_str!("corpus/gateway-unlisted/feeds.toml");

/// Generate a capture of `seed` starting at `start` (epoch seconds) into
/// `dir`, with feeds files: `urls.toml` (the URL list alone) and
/// `all.toml` (every list, the sinkholes too).
fn generate(script: &Path, dir: &Path, seed: &str, start: u64) {
    let ok = Command::new("python3")
        .arg(script)
        .arg(dir)
        .args([
            "--packets",
            "20000",
            "--units",
            "8",
            "--hosts-per-unit",
            "16",
        ])
        .args(["--infected", "0.15"])
        .args([
            "--unlisted",
            "6",
            "--feed-domains",
            "1500",
            "--feed-ips",
            "1500",
        ])
        .args(["--seed", seed, "--start", &start.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("python3 runs the generator");
    assert!(ok.success());
    let (head, feeds) = FEEDS.split_once("[[feed]]").unwrap();
    let urls: String = feeds
        .split("[[feed]]")
        .filter(|f| f.contains("\"gen-urls\""))
        .map(|f| format!("[[feed]]{f}"))
        .collect();
    std::fs::write(dir.join("urls.toml"), format!("{head}{urls}")).unwrap();
    std::fs::write(dir.join("all.toml"), FEEDS).unwrap();
}

fn gatewatch(args: &[&str], paths: &[&Path]) -> String {
    let mut c = bin();
    c.args(["--log", "warn"]).args(args);
    for p in paths {
        c.arg(p);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn replay(dir: &Path, feeds: &str, db: &Path) {
    let f = dir.join(feeds);
    let (u, a, p) = (
        dir.join("units.csv"),
        dir.join("alerts.jsonl"),
        dir.join("traffic.pcap"),
    );
    gatewatch(
        &["replay", "--feeds"],
        &[
            &f,
            Path::new("--units"),
            &u,
            Path::new("--alerts"),
            &a,
            Path::new("--store"),
            db,
            &p,
        ],
    );
}

fn retro(dir: &Path, db: &Path, extra: &[&str], alerts: &Path) -> String {
    let (f, u) = (dir.join("all.toml"), dir.join("units.csv"));
    let mut args = vec!["retro"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--feeds"]);
    gatewatch(
        &args,
        &[
            &f,
            Path::new("--units"),
            &u,
            Path::new("--store"),
            db,
            Path::new("--alerts"),
            alerts,
        ],
    )
}

type Offenders = (BTreeSet<(String, String)>, BTreeSet<(String, String)>);

/// The store's offender hosts (address, unit) and (host, indicator) pairs.
fn offenders(db: &Path) -> Offenders {
    let s = Store::open_read_only(db).unwrap();
    let hosts = s
        .hosts(None)
        .unwrap()
        .into_iter()
        .map(|h| (h.ip.to_string(), h.unit))
        .collect();
    let pairs = s
        .host_indicator_pairs()
        .unwrap()
        .into_iter()
        .map(|(ip, v)| (ip.to_string(), v))
        .collect();
    (hosts, pairs)
}

fn retro_lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_hunt_with_more_lists_gives_the_offenders_of_a_fresh_replay() {
    let Some(script) = generator() else {
        eprintln!("gen-gateway-pcap.py not found beside the checkout: skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for seed in ["3", "17", "29"] {
        let dir = tmp.path().join(seed);
        generate(&script, &dir, seed, 1_764_547_200);
        let (a, b) = (dir.join("recorded.db"), dir.join("fresh.db"));
        replay(&dir, "urls.toml", &a);
        let before = offenders(&a);
        let out = retro(&dir, &a, &[], &dir.join("retro.jsonl"));
        replay(&dir, "all.toml", &b);
        let (got, want) = (offenders(&a), offenders(&b));
        assert_eq!(got.0, want.0, "seed {seed}: offender hosts\n{out}");
        assert_eq!(got.1, want.1, "seed {seed}: (host, indicator) pairs\n{out}");
        assert!(
            want.0.len() > before.0.len() + 5 && want.1.len() > before.1.len() + 10,
            "seed {seed}: the hunt must find hosts: {} then {} hosts, {} then {} pairs",
            before.0.len(),
            want.0.len(),
            before.1.len(),
            want.1.len()
        );
        let lines = retro_lines(&dir.join("retro.jsonl"));
        assert!(!lines.is_empty());
        for l in &lines {
            assert_eq!(l["retro"], true, "{l}");
            assert!(
                l["timestamp"].as_str().unwrap().starts_with("2025-12-01"),
                "{l}"
            );
        }
        let again = retro(&dir, &a, &[], &dir.join("again.jsonl"));
        assert!(
            again.contains("\n0 retro hit(s) on 0 host(s)"),
            "seed {seed}: {again}"
        );
        assert_eq!(
            offenders(&a),
            want,
            "seed {seed}: a second hunt changes nothing"
        );
    }
}

#[test]
fn since_leaves_the_older_days_out() {
    let Some(script) = generator() else {
        eprintln!("gen-gateway-pcap.py not found beside the checkout: skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("two-days.db");
    // The same traffic on 1 and 3 December 2025 (UTC), recorded with the URL
    // list alone.
    for (day, start) in [("d1", 1_764_547_200u64), ("d3", 1_764_720_000)] {
        let dir = tmp.path().join(day);
        generate(&script, &dir, "5", start);
        replay(&dir, "urls.toml", &db);
    }
    let dir = tmp.path().join("d3");
    let late = tmp.path().join("late.jsonl");
    retro(&dir, &db, &["--since", "2025-12-03T00:00:00Z"], &late);
    let late = retro_lines(&late);
    assert!(!late.is_empty());
    assert!(
        late.iter()
            .all(|l| l["timestamp"].as_str().unwrap().starts_with("2025-12-03"))
    );
    // Without --since, the first contacts are on the 1st: the earlier
    // contacts of the same hosts become hits, nothing of the 3rd repeats.
    let all = tmp.path().join("all.jsonl");
    retro(&dir, &db, &[], &all);
    let all = retro_lines(&all);
    assert!(!all.is_empty());
    assert!(
        all.iter()
            .all(|l| l["timestamp"].as_str().unwrap().starts_with("2025-12-01"))
    );
}

fn item(host: &str, day: i64, n: u32) -> HistoryItem {
    HistoryItem {
        ts_ns: 1_764_547_200_000_000_000 + day * DAY_NS + i64::from(n),
        host: ip(host),
        unit: Arc::new(Unit {
            code: "U1".into(),
            name: "Phòng Một".into(),
            nets: Vec::new(),
        }),
        how: HitSource::DnsQuery,
        port: 0,
        value: Seen::Name(format!("n{n}.example.org").into()),
    }
}

#[test]
fn history_is_bounded_per_host_and_day_and_pruned_past_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("h.db");
    let settings = HistorySettings {
        max_items_per_host_day: 3,
        ..HistorySettings::default()
    };
    let w = StoreWriter::start_with(Store::open(&db).unwrap(), 1000, None, settings);
    for day in 0..4 {
        for n in 0..5 {
            assert!(w.history(vec![item("10.1.0.7", day, n)], true));
            // A repeat moves the row's times, and is no new item.
            assert!(w.history(vec![item("10.1.0.7", day, n)], true));
        }
        assert!(w.history(vec![item("10.1.0.8", day, 9)], true));
    }
    let st = w.finish();
    assert_eq!(st.history_new.load(Ordering::Relaxed), 4 * 4);
    assert_eq!(st.history_dropped.load(Ordering::Relaxed), 4 * 2 * 2);
    let mut s = Store::open(&db).unwrap();
    let size = s.history_size().unwrap();
    assert_eq!(
        (size.days, size.host_days, size.rows, size.dropped),
        (4, 8, 16, 16)
    );
    let newest = gatewatch::detect::history::day_of(item("10.1.0.7", 3, 0).ts_ns);
    assert_eq!(s.prune_history(newest, 2).unwrap(), 8);
    let size = s.history_size().unwrap();
    assert_eq!((size.days, size.rows), (2, 8));
    assert_eq!(
        size.values, 4,
        "values no row names are deleted with their days"
    );
}

#[test]
fn an_older_store_gains_the_history_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("old.db");
    Store::create_with_schema(&db, 2).unwrap();
    let s = Store::open(&db).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        gatewatch::store::SCHEMA_VERSION
    );
    assert_eq!(s.history_size().unwrap().rows, 0);
    assert!(s.hygiene(None, 0, i64::MAX).unwrap().is_empty());
}
