//! Offenders found by heuristics reach the store, the exports and the
//! report like any hit, each host once; a beacon (a suspicion) reaches the
//! alert log only.

use gatewatch::testkit::behaviour::Beacon;
use gatewatch::testkit::corpus::csv_columns;
use gatewatch::testkit::synth::Rng;
use gatewatch::testkit::{PcapWriter, T0_US, bin, corpus, ip, text};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn replay(dir: &Path, feeds: &Path, units: &Path, capture: &Path) {
    let o = bin()
        .args(["replay", "--log", "warn", "--feeds"])
        .arg(feeds)
        .arg("--units")
        .arg(units)
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .arg("--store")
        .arg(dir.join("gw.db"))
        .arg(capture)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// `export --all --format json` from the store (or the alert log): host ->
/// categories.
fn exported(dir: &Path, from_alerts: bool) -> BTreeMap<String, String> {
    let mut c = bin();
    c.args(["export", "--all", "--format", "json"]);
    if from_alerts {
        c.arg("--alerts").arg(dir.join("alerts.jsonl"));
    } else {
        c.arg("--store").arg(dir.join("gw.db"));
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let mut out = BTreeMap::new();
    for r in rows {
        let host = r["host_ip"].as_str().unwrap().to_string();
        // The store's export lists categories; the alert log's joins them.
        let cats = match &r["categories"] {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            c => c.as_str().unwrap_or_default().to_string(),
        };
        assert!(out.insert(host, cats).is_none(), "a host listed twice");
    }
    out
}

#[test]
fn heuristic_offenders_are_stored_exported_and_counted_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = corpus("gateway-unlisted");
    replay(
        tmp.path(),
        &d.join("feeds.toml"),
        &d.join("units.csv"),
        &d.join("traffic.pcap"),
    );
    let want: BTreeSet<String> = csv_columns(&d.join("offenders.csv"), &["host_ip"])
        .unwrap()
        .concat()
        .into_iter()
        .collect();
    let truth = csv_columns(&d.join("truth.csv"), &["host_ip", "how"]).unwrap();
    for from_alerts in [false, true] {
        let got = exported(tmp.path(), from_alerts);
        let hosts: BTreeSet<String> = got.keys().cloned().collect();
        assert_eq!(hosts, want, "from the alert log: {from_alerts}");
        for row in &truth {
            let cat = match row[1].as_str() {
                "scan" => "scanning",
                "dga" => "dga",
                "sinkhole_answer" => "sinkhole",
                _ => continue,
            };
            assert!(got[&row[0]].contains(cat), "{}: {:?}", row[0], got[&row[0]]);
        }
    }
    let o = bin()
        .args([
            "report",
            "--format",
            "md",
            "--from",
            "2022-09-30",
            "--to",
            "2022-10-02",
        ])
        .arg("--store")
        .arg(tmp.path().join("gw.db"))
        .arg("--units")
        .arg(d.join("units.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let report = String::from_utf8_lossy(&o.stdout);
    let total = format!(
        "| 1 | **Tổng số máy tính phát hiện kết nối đến địa chỉ độc hại** | {} |",
        want.len()
    );
    assert!(report.contains(&total), "{report}");
    assert!(
        report.contains("dò quét, lây lan trong mạng (scanning)"),
        "{report}"
    );
}

#[test]
fn a_beacon_is_alerted_but_neither_stored_nor_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let b = Beacon {
        host: ip("10.1.0.5"),
        dst: ip("45.9.9.9"),
        port: 443,
        n: 14,
        t0_us: T0_US,
        period_us: 60_000_000,
        jitter_us: 1_000_000,
    };
    let mut w = PcapWriter::new(1, 65535);
    for (t, f) in b.frames(&mut Rng::new(3)) {
        w.frame(t, &f, f.len());
    }
    let pcap = tmp.path().join("beacon.pcap");
    w.write(&pcap);
    let feeds = tmp.path().join("feeds.toml");
    std::fs::write(&feeds, "").unwrap();
    let units = tmp.path().join("units.csv");
    std::fs::write(&units, "code,name,cidrs\nU1,Phòng Một,10.1.0.0/16\n").unwrap();
    replay(tmp.path(), &feeds, &units, &pcap);
    let log = std::fs::read_to_string(tmp.path().join("alerts.jsonl")).unwrap();
    let alert: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(alert["heuristic"], "beacon");
    assert_eq!(alert["offender"], false);
    assert_eq!(alert["alert"]["severity"], 3);
    assert!(exported(tmp.path(), false).is_empty());
    assert!(exported(tmp.path(), true).is_empty());
}
