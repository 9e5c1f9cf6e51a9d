//! The one sink's counts are the alert log's lines: what `gatewatch replay`
//! prints (alerts, repeat summaries, flow events) equals the lines of each
//! kind in the file it wrote, with and without aggregation, and the same
//! holds for the pipeline's sink thread.

use gatewatch::detect::EngineOptions;
use gatewatch::output::sink::{HitSink, SinkCounts, SinkOptions};
use gatewatch::run::pipeline::Sizing;
use gatewatch::run::replay::replay_parallel;
use gatewatch::testkit::{bin, corpus, dir_recipe};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn small() -> PathBuf {
    corpus("gateway-small")
}

/// Lines of the alert log by `event_type`.
fn kinds(log: &Path) -> BTreeMap<String, u64> {
    let mut n = BTreeMap::new();
    for l in std::fs::read_to_string(log).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        *n.entry(v["event_type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    n
}

/// The number before `marker` in the line of `out` that contains it.
fn printed(out: &str, marker: &str) -> u64 {
    out.lines()
        .find(|l| l.contains(marker))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn replay_prints_what_the_alert_log_holds() {
    let d = tempfile::tempdir().unwrap();
    for interval in ["0", "60"] {
        let log = d.path().join(format!("alerts-{interval}.jsonl"));
        let o = bin()
            .args(["replay", "--summary-interval", interval, "--alerts"])
            .arg(&log)
            .arg("--feeds")
            .arg(small().join("feeds.toml"))
            .arg("--units")
            .arg(small().join("units.csv"))
            .arg(small().join("traffic.pcap"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        let out = String::from_utf8(o.stdout).unwrap();
        let lines = kinds(&log);
        let count = |k: &str| lines.get(k).copied().unwrap_or(0);
        assert!(count("alert") > 300, "{lines:?}");
        assert_eq!(
            printed(&out, "alert(s) written to"),
            count("alert"),
            "{out}"
        );
        assert_eq!(
            printed(&out, "repeat summary event(s)"),
            count("alert_summary")
        );
        assert_eq!(printed(&out, "flow event(s)"), count("flow"));
        if interval == "0" {
            assert_eq!(count("alert_summary"), 0);
        } else {
            assert!(count("alert_summary") > 0, "{lines:?}");
        }
    }
}

#[test]
fn the_pipeline_sink_counts_its_lines_too() {
    let d = tempfile::tempdir().unwrap();
    for interval in [0, 60] {
        let log = d.path().join(format!("pipeline-{interval}.jsonl"));
        let recipe = dir_recipe(&small(), EngineOptions::default()).workers(2);
        let out = Box::new(std::fs::File::create(&log).unwrap());
        let sink = HitSink::new(out, SinkOptions::new("s", interval));
        let sizing = Sizing {
            workers: 2,
            queue_batches: 8,
            batch_packets: 64,
        };
        let o = replay_parallel(&[small().join("traffic.pcap")], sizing, &recipe, sink);
        assert!(o.sink.io_error.is_none());
        let lines = kinds(&log);
        let count = |k: &str| lines.get(k).copied().unwrap_or(0);
        let c: SinkCounts = o.sink.counts;
        assert_eq!(
            (c.alerts, c.summaries, c.flows),
            (count("alert"), count("alert_summary"), count("flow"))
        );
        assert_eq!(c.hits, o.stats.total_hits(), "every hit reached the sink");
        if interval == 0 {
            assert_eq!(c.alerts, c.hits);
        } else {
            assert!(c.alerts < c.hits && c.summaries > 0, "{c:?}");
        }
    }
}
