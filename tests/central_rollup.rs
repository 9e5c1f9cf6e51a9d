//! The central's period figures read from host days and hours
//! (`gw_host_days`, `gw_host_hours`) instead of the raw hits, on a real PostgreSQL: for many periods, whole
//! hours or not, they equal what the raw hits say; a batch taken twice
//! counts nothing twice; a central of an earlier gatewatch gets its hours
//! from the hits it holds; and the figures of a past period survive its
//! raw hits being dropped.

use gatewatch::store::central::Central;
use gatewatch::store::journal::JournalRow;
use gatewatch::testkit::postgres::Postgres;
use std::collections::BTreeMap;

const MIN_NS: i64 = 60_000_000_000;
/// 2026-11-20 00:00 UTC.
const START: i64 = 1_795_132_800_000_000_000;

/// Hits of `sensor`: host `i % 7` of unit `U{i % 3}`, every 7 minutes and
/// some microseconds over 3 days, numbered from 1.
fn rows(sensor: &str, n: i64) -> Vec<JournalRow> {
    (0..n)
        .map(|i| {
            let at = START + i * 7 * MIN_NS + (i * 13_579) % 1_000_000 * 1_000;
            let ip = format!("10.20.0.{}", i % 7 + 1);
            let json = serde_json::json!({
                "timestamp": at, "event_type": "alert", "host_ip": ip,
                "unit": format!("U{}", i % 7 % 3), "unit_name": "Đơn vị",
                "indicator": "c2.example", "indicator_kind": "domain", "feed": "test",
                "category": "malware", "severity": "high",
            });
            JournalRow {
                seq: i + 1,
                sensor: sensor.into(),
                kind: "hit".into(),
                at_ns: at,
                json: json.to_string(),
            }
        })
        .collect()
}

fn ts(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339()
}

/// Hosts with a hit in [from, to) per (province, unit), from the raw hits.
fn truth(pg: &mut postgres::Client, from: i64, to: i64) -> BTreeMap<(String, String), u64> {
    pg.query(
        "SELECT s.province, h.unit, count(DISTINCT (h.sensor, h.ip))
         FROM gw_hits h JOIN gw_sensors s USING (sensor)
         WHERE h.ts >= $1::text::timestamptz AND h.ts < $2::text::timestamptz
         GROUP BY 1, 2",
        &[&ts(from), &ts(to)],
    )
    .unwrap()
    .iter()
    .map(|r| ((r.get(0), r.get(1)), r.get::<_, i64>(2) as u64))
    .collect()
}

fn figures(c: &mut Central, from: i64, to: i64) -> BTreeMap<(String, String), u64> {
    c.unit_figures(from, to, None)
        .unwrap()
        .into_iter()
        .map(|(p, u)| ((p, u.code), u.detected))
        .collect()
}

#[test]
fn period_figures_from_hours_equal_the_raw_hits_for_any_period() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path());
    let mut c = Central::connect(&pg.url(), None).unwrap();
    let hue = rows("hue-gw1", 600);
    c.take("Huế", &hue).unwrap();
    c.take("Huế", &hue[..300]).unwrap();
    c.take("Hà Nội", &rows("hn-gw1", 400)).unwrap();
    let mut raw = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let sums: (i64, i64, i64) = {
        let r = raw
            .query_one(
                "SELECT (SELECT sum(hits) FROM gw_host_hours)::bigint,
                        (SELECT sum(hits) FROM gw_host_days)::bigint, (SELECT count(*) FROM gw_hits)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        sums,
        (1000, 1000, 1000),
        "each hit counted once in its hour and day"
    );

    // Periods on whole hours and off them, inside one hour, empty.
    let mut x: i64 = 12_345;
    let mut next = || {
        x = (x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1)) & i64::MAX;
        x % (3 * 24 * 60 * MIN_NS)
    };
    let mut periods = vec![
        (START, START + 72 * 60 * MIN_NS),
        (START + 5, START + 50 * MIN_NS),
    ];
    for _ in 0..60 {
        let (a, b) = (START + next(), START + next());
        periods.push((a.min(b), a.max(b)));
        let h = (a / (60 * MIN_NS)) * 60 * MIN_NS;
        periods.push((h, h + (next() % 5) * 60 * MIN_NS));
    }
    for (from, to) in periods {
        assert_eq!(
            figures(&mut c, from, to),
            truth(&mut raw, from, to),
            "{from}..{to}"
        );
    }

    // A central of an earlier gatewatch: its hours come from its hits.
    let before = figures(&mut c, START, START + 72 * 60 * MIN_NS);
    raw.batch_execute("DROP TABLE gw_host_hours, gw_host_days")
        .unwrap();
    let mut c = Central::connect(&pg.url(), None).unwrap();
    assert_eq!(figures(&mut c, START, START + 72 * 60 * MIN_NS), before);

    // The raw hits of the first day go; that day's figures stay.
    let day1 = (START, START + 24 * 60 * MIN_NS);
    let want = figures(&mut c, day1.0, day1.1);
    assert!(!want.is_empty());
    let second = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
    assert_eq!(c.drop_days_before(second).unwrap().len(), 1);
    assert!(
        truth(&mut raw, day1.0, day1.1).is_empty(),
        "its hits are gone"
    );
    assert_eq!(figures(&mut c, day1.0, day1.1), want);
    c.drop_host_periods_before(second).unwrap();
    assert!(
        figures(&mut c, day1.0, day1.1).is_empty(),
        "and then its hours"
    );
}
