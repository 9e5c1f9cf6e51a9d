//! Alert aggregation: a beaconing host gets one alert, then one summary per
//! interval; the alerts plus the summaries' counts equal the raw hits, and
//! a different host or indicator is never folded in.

use gatewatch::output::sink::{HitSink, SinkOptions};
use gatewatch::run::replay::replay;
use gatewatch::testkit::{PcapWriter, T0_US, crafted_engine, dns_query, ip, udp_frame};
use hickory_proto::rr::RecordType;

/// Replay `queries` = (second, host, name) with `interval` seconds of
/// aggregation; returns the alert log's JSON lines and the raw hit count.
fn run(queries: &[(u64, &str, &str)], interval: u64) -> (Vec<serde_json::Value>, u64) {
    let mut e = crafted_engine(&["c2.example", "other.example"]);
    let mut w = PcapWriter::new(1, 65535);
    for (i, (t, host, name)) in queries.iter().enumerate() {
        let q = dns_query(i as u16, name, RecordType::A);
        let f = udp_frame(ip(host), ip("8.8.8.8"), 40000 + i as u16, 53, None, &q);
        w.frame(T0_US + t * 1_000_000, &f, f.len());
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.pcap");
    w.write(&p);
    let mut out: Vec<u8> = Vec::new();
    let raw;
    {
        let mut sink = HitSink::new(Box::new(&mut out), SinkOptions::new("s", interval));
        replay(&[p], &mut e, &mut sink);
        let done = sink.finish();
        raw = done.counts.hits;
        let written = done.counts.alerts + done.counts.summaries;
        assert!(done.io_error.is_none());
        assert!(written <= raw);
    }
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, raw)
}

fn count(lines: &[serde_json::Value], host: &str, ind: &str) -> (u64, u64) {
    let mine = lines
        .iter()
        .filter(|l| l["host_ip"] == host && l["indicator"] == ind);
    let (mut alerts, mut summed) = (0, 0);
    for l in mine {
        match l["event_type"].as_str().unwrap() {
            "alert" => alerts += 1,
            "alert_summary" => summed += l["count"].as_u64().unwrap(),
            other => panic!("{other}"),
        }
    }
    (alerts, summed)
}

#[test]
fn beacon_is_one_alert_then_summaries_with_exact_counts() {
    // A bot beacons every 10 s for 20 minutes; another host asks twice;
    // the bot also asks another listed domain once.
    let mut q: Vec<(u64, &str, &str)> = (0..120)
        .map(|i| (i * 10, "10.1.0.5", "c2.example"))
        .collect();
    q.push((5, "10.1.0.6", "c2.example"));
    q.push((900, "10.1.0.6", "c2.example"));
    q.push((60, "10.1.0.5", "other.example"));
    q.sort();
    let (lines, raw) = run(&q, 300);
    assert_eq!(raw, 123, "every hit reached the sink");
    let bot = count(&lines, "10.1.0.5", "c2.example");
    assert_eq!(bot.0, 1, "one full alert for the pair");
    assert_eq!(bot.0 + bot.1, 120, "alerts + summary counts = hits");
    let summaries = lines
        .iter()
        .filter(|l| l["event_type"] == "alert_summary" && l["host_ip"] == "10.1.0.5")
        .count();
    assert!(
        (3..=5).contains(&summaries),
        "about one per 300 s over 1,190 s: {summaries}"
    );
    assert_eq!(count(&lines, "10.1.0.6", "c2.example"), (1, 1));
    assert_eq!(count(&lines, "10.1.0.5", "other.example"), (1, 0));
    let total: u64 = lines.iter().map(|l| l["count"].as_u64().unwrap_or(1)).sum();
    assert_eq!(total, raw);
}

#[test]
fn interval_zero_writes_every_hit() {
    let q: Vec<(u64, &str, &str)> = (0..10).map(|i| (i, "10.1.0.5", "c2.example")).collect();
    let (lines, raw) = run(&q, 0);
    assert_eq!(raw, 10);
    assert_eq!(lines.len(), 10);
    assert!(lines.iter().all(|l| l["event_type"] == "alert"));
}
