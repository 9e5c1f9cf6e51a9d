//! The central's hits by UTC day, on a real PostgreSQL: rows of three
//! days land in three partitions, a batch taken twice changes nothing, two
//! sensors making the same new day at once both succeed, pruning drops
//! exactly the old days (hosts and the kept days' figures unchanged), and
//! a `gw_hits` of an earlier gatewatch (one plain table) is moved into
//! days on first contact.

use chrono::NaiveDate;
use gatewatch::store::central::Central;
use gatewatch::store::journal::JournalRow;
use gatewatch::testkit::postgres::Postgres;
use gatewatch::testkit::{bin, text};
use std::sync::{Arc, Barrier};

const DAY_NS: i64 = 86_400_000_000_000;

fn ns(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_nanos_opt()
        .unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A hit of `sensor` by host `ip` at `at_ns`, journal row `seq`.
fn hit(sensor: &str, seq: i64, at_ns: i64, ip: &str) -> JournalRow {
    let json = serde_json::json!({
        "timestamp": at_ns, "event_type": "alert", "host_ip": ip, "hostname": "PC-1",
        "unit": "U01", "unit_name": "Đơn vị 1", "indicator": "c2.example",
        "indicator_kind": "domain", "feed": "test", "category": "malware", "severity": "high",
    });
    JournalRow {
        seq,
        sensor: sensor.into(),
        kind: "hit".into(),
        at_ns,
        json: json.to_string(),
    }
}

/// Rows of `sensor`: `per_day` hits on each of `days`, the first one a
/// microsecond before midnight (it must land in its own day; PostgreSQL
/// keeps microseconds, so a nanosecond before would be rounded to
/// midnight, and land with its stored time in the next day), numbered
/// from `first_seq`.
fn rows(sensor: &str, days: &[NaiveDate], per_day: i64, first_seq: i64) -> Vec<JournalRow> {
    let mut out = Vec::new();
    for d in days {
        for i in 0..per_day {
            let at = if i == 0 {
                ns(*d) + DAY_NS - 1_000
            } else {
                ns(*d) + i * 60_000_000_000
            };
            let ip = format!("10.0.0.{}", i % 5 + 1);
            out.push(hit(sensor, first_seq + out.len() as i64, at, &ip));
        }
    }
    out
}

/// The partitions of gw_hits and their rows, by name.
fn partitions(url: &str) -> Vec<(String, i64)> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let names: Vec<String> = c
        .query(
            "SELECT relid::text FROM pg_partition_tree('gw_hits') WHERE isleaf ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    names
        .into_iter()
        .map(|n| {
            let q = format!("SELECT count(*) FROM \"{n}\"");
            let k: i64 = c.query_one(&q, &[]).unwrap().get(0);
            (n, k)
        })
        .collect()
}

fn total_hits(c: &mut Central) -> i64 {
    c.hosts(None).unwrap().iter().map(|h| h.hits).sum()
}

#[test]
fn three_days_three_partitions_and_a_batch_taken_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path());
    let mut c = Central::connect(&pg.url(), None).unwrap();
    let days = [day(2026, 11, 26), day(2026, 11, 27), day(2026, 11, 28)];
    let batch = rows("hue-gw1", &days, 10, 1);
    let t = c.take("Huế", &batch).unwrap();
    assert_eq!(t.acked, 30);
    let want: Vec<(String, i64)> = [
        "gw_hits_d20261126",
        "gw_hits_d20261127",
        "gw_hits_d20261128",
    ]
    .iter()
    .map(|n| (n.to_string(), 10))
    .collect();
    assert_eq!(partitions(&pg.url()), want);
    let hosts = c.hosts(None).unwrap();
    // Again on this connection, then on a fresh one (which knows no day).
    c.take("Huế", &batch).unwrap();
    Central::connect(&pg.url(), None)
        .unwrap()
        .take("Huế", &batch)
        .unwrap();
    assert_eq!(partitions(&pg.url()), want);
    assert_eq!(c.hosts(None).unwrap(), hosts);
    assert_eq!(total_hits(&mut c), 30);
}

#[test]
fn two_sensors_making_the_same_new_day_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path());
    let url = pg.url();
    Central::connect(&url, None).unwrap();
    for round in 0..5u32 {
        let d = day(2026, 12, 1 + round);
        let gate = Arc::new(Barrier::new(2));
        let threads: Vec<_> = ["hanoi-gw1", "hanoi-gw2"]
            .into_iter()
            .map(|sensor| {
                let (url, gate) = (url.clone(), gate.clone());
                std::thread::spawn(move || {
                    let mut c = Central::connect(&url, None).unwrap();
                    let batch = rows(sensor, &[d], 50, 1 + i64::from(round) * 50);
                    gate.wait();
                    c.take("Hà Nội", &batch)
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().expect("both takes succeed");
        }
    }
    let p = partitions(&url);
    assert_eq!(p.len(), 5, "{p:?}");
    assert!(p.iter().all(|(_, n)| *n == 100), "{p:?}");
}

#[test]
fn prune_drops_exactly_the_old_days_and_keeps_hosts_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path());
    let url = pg.url();
    let mut c = Central::connect(&url, None).unwrap();
    let today = chrono::Utc::now().date_naive();
    let days: Vec<NaiveDate> = (0..6u64)
        .rev()
        .map(|back| today - chrono::Days::new(back))
        .collect();
    c.take("Huế", &rows("hue-gw1", &days, 10, 1)).unwrap();
    let kept_from = ns(days[3]);
    let figures = c.unit_figures(kept_from, i64::MAX / 2, None).unwrap();
    let old = c.unit_figures(0, kept_from, None).unwrap();
    assert!(!old.is_empty());
    let hosts = c.hosts(None).unwrap();
    // Keep today and the two days before: the three older days go.
    let o = bin()
        .args(["central", "prune", "--central", &url, "--keep-days", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("dropped 3 day partition(s)"),
        "{}",
        text(&o)
    );
    let names: Vec<String> = partitions(&url).into_iter().map(|(n, _)| n).collect();
    let want: Vec<String> = days[3..]
        .iter()
        .map(|d| format!("gw_hits_d{}", d.format("%Y%m%d")))
        .collect();
    assert_eq!(names, want);
    assert_eq!(
        c.unit_figures(kept_from, i64::MAX / 2, None).unwrap(),
        figures
    );
    // The dropped days' figures stay (their host hours are kept longer);
    // keeping the hours no longer than the hits takes them too.
    assert_eq!(c.unit_figures(0, kept_from, None).unwrap(), old);
    let o = bin()
        .args(["central", "prune", "--central", &url, "--keep-days", "3"])
        .args(["--keep-host-days", "3"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(c.unit_figures(0, kept_from, None).unwrap().is_empty());
    assert_eq!(c.hosts(None).unwrap(), hosts, "hosts stay");
    // Nothing more to drop; then a late row of a dropped day comes back in
    // its own day, through the same connection (which knew that day).
    assert!(c.drop_days_before(days[3]).unwrap().is_empty());
    let late = vec![hit("hue-gw1", 61, ns(days[0]) + 5, "10.0.0.9")];
    c.take("Huế", &late).unwrap();
    assert_eq!(partitions(&url).len(), 4);
    let o = bin()
        .args(["central", "prune", "--central", &url, "--keep-days", "0"])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && text(&o).contains("1 keeps today"),
        "{}",
        text(&o)
    );
}

#[test]
fn an_unpartitioned_gw_hits_is_moved_into_days_on_first_contact() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path());
    let url = pg.url();
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.batch_execute(
        "CREATE TABLE gw_hits (sensor text NOT NULL, seq bigint NOT NULL,
             ts timestamptz NOT NULL, ip inet NOT NULL, unit text NOT NULL,
             unit_name text NOT NULL, indicator text NOT NULL, kind text NOT NULL,
             feed text NOT NULL, category text NOT NULL, severity text NOT NULL,
             json jsonb NOT NULL, PRIMARY KEY (sensor, seq));
         CREATE INDEX gw_hits_ts ON gw_hits (ts);
         CREATE INDEX gw_hits_host ON gw_hits (sensor, ip);
         INSERT INTO gw_hits VALUES
           ('s', 1, '2026-11-27 23:00:00+00', '10.0.0.1', 'U', 'U', 'x', 'domain', 'f', 'c', 'high', '{}'),
           ('s', 2, '2026-11-28 01:00:00+00', '10.0.0.1', 'U', 'U', 'x', 'domain', 'f', 'c', 'high', '{}');",
    )
    .unwrap();
    Central::connect(&url, None).unwrap();
    assert_eq!(
        partitions(&url),
        vec![
            ("gw_hits_d20261127".to_string(), 1),
            ("gw_hits_d20261128".to_string(), 1)
        ]
    );
    // And a second contact leaves it as it is.
    Central::connect(&url, None).unwrap();
    assert_eq!(partitions(&url).len(), 2);
}
