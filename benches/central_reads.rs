//! What the central console and reports cost to read at scale (figures in
//! docs/SCALE.md): SENSORS sensors in 5 provinces ship ROWS hits each,
//! spread evenly over the last DAYS days, into one real PostgreSQL; then
//! each read the nation, province, unit and host pages make is timed
//! (median of 5 runs, after one warm-up).
//!
//! Usage: cargo bench --bench central_reads -- [SENSORS] [ROWS] [DAYS] [HOSTS]
//!        (10 200000 30 100: 2M hits over 30 days from 1,000 infected hosts,
//!        67 hits per host and day; SCALE.md's campaign assumes 300)
//!
//! The 30-day figures are also read the way they were before the host
//! rollup (a DISTINCT over the period's raw hits), in the same run.

use gatewatch::run::ship::{ShipTarget, pass};
use gatewatch::store::central::{BATCH_ROWS, Central, ShipStats};
use gatewatch::testkit::bench_arg;
use gatewatch::testkit::central::fill_journal_every;
use gatewatch::testkit::postgres::Postgres;
use std::path::PathBuf;
use std::time::Instant;

const DAY_NS: i64 = 86_400_000_000_000;

fn province(i: usize) -> String {
    format!("P{}", i % 5)
}

/// Median milliseconds of 5 runs of `f`, after one warm-up run.
fn timed<T>(mut f: impl FnMut() -> T) -> f64 {
    f();
    let mut v: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[2]
}

fn fill_and_ship(
    dir: &std::path::Path,
    url: &str,
    sensors: usize,
    (rows, days, hosts): (u64, u64, u32),
) {
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    let step = (days as i64 * DAY_NS) / rows.max(1) as i64;
    let t = Instant::now();
    let dbs: Vec<(PathBuf, String)> = (0..sensors)
        .map(|i| {
            let db = dir.join(format!("sensor-{i:02}.db"));
            let start = now - days as i64 * DAY_NS;
            fill_journal_every(
                &db,
                &format!("sensor-{i:02}"),
                rows as usize,
                hosts,
                start,
                step,
            );
            (db, province(i))
        })
        .collect();
    println!("journals filled in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    std::thread::scope(|s| {
        for (db, p) in &dbs {
            s.spawn(move || {
                let target = ShipTarget {
                    url: url.to_owned(),
                    ca: None,
                    province: p.clone(),
                    batch: BATCH_ROWS,
                    max_rows: None,
                };
                pass(db, &target, &mut None, &ShipStats::default()).expect("ship")
            });
        }
    });
    println!(
        "shipped {} rows in {:.1} s",
        rows * sensors as u64,
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    let (sensors, rows, days) = (
        bench_arg::<u64>(0, 10) as usize,
        bench_arg::<u64>(1, 200_000),
        bench_arg::<u64>(2, 30),
    );
    let hosts = bench_arg::<u64>(3, 100) as u32;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pg = Postgres::start(dir.path());
    let url = pg.url();
    fill_and_ship(dir.path(), &url, sensors, (rows, days, hosts));
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).expect("central");
    let mut c = Central::connect(&url, None).expect("central");
    let now = chrono::Utc::now().timestamp_nanos_opt().expect("now");
    let month = now - 30 * DAY_NS;
    let ip = "10.20.0.40".parse().expect("an address");
    let ts = |ns: i64| chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339();
    let (m, n) = (ts(month), ts(now));
    let reads: Vec<(&str, f64)> = vec![
        (
            "nation figures, 30 days, from the raw hits (before the rollup)",
            timed(|| {
                raw.query(
                    "SELECT count(*) FROM (SELECT DISTINCT sensor, ip FROM gw_hits
                     WHERE ts >= $1::text::timestamptz AND ts < $2::text::timestamptz) h",
                    &[&m, &n],
                )
                .expect("raw figures")
            }),
        ),
        (
            "nation figures, 30 days (/, report)",
            timed(|| c.unit_figures(month, now, None).expect("figures")),
        ),
        (
            "province figures, 30 days (/p/P0)",
            timed(|| c.unit_figures(month, now, Some("P0")).expect("figures")),
        ),
        (
            "nation figures, last day",
            timed(|| c.unit_figures(now - DAY_NS, now, None).expect("figures")),
        ),
        (
            "per-day chart, 30 days, nation",
            timed(|| c.daily_counts(month, 7 * 3600, None).expect("days")),
        ),
        (
            "a unit's hosts (/p/P0/u/U001)",
            timed(|| c.unit_hosts("P0", "U001").expect("hosts")),
        ),
        (
            "a host's newest 200 hits (/h/...)",
            timed(|| c.host_hits("sensor-00", ip, 200).expect("hits")),
        ),
    ];
    let mut held = |q: &str| -> i64 { raw.query_one(q, &[]).expect("count").get(0) };
    println!(
        "{sensors} sensors x {rows} hits over {days} days = {} hits from {} hosts; rollup {} host-days, {} host-hours",
        rows * sensors as u64,
        sensors as u64 * u64::from(hosts),
        held("SELECT count(*) FROM gw_host_days"),
        held("SELECT count(*) FROM gw_host_hours")
    );
    println!("| read | median ms |");
    println!("|---|---|");
    for (what, ms) in reads {
        println!("| {what} | {ms:.1} |");
    }
}
