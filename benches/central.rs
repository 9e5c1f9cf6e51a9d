//! Load test of the central view (figures in docs/SCALE.md): SENSORS
//! simulated sensors ship into one real PostgreSQL (started here, like the
//! tests do).
//!
//! 1. Backlog: each sensor's journal holds ROWS hits; all ship at once.
//!    Prints rows/s until the central holds every row (and checks it does).
//! 2. Steady: each sensor appends RATE hits/s for SECONDS s while its
//!    shipping thread runs every second. Prints the lag (rows written and
//!    not yet acknowledged, all sensors) sampled each second.
//!
//! Usage: cargo bench --bench central -- [SENSORS] [ROWS] [RATE] [SECONDS]
//!        (10 100000 1000 20: 1M rows in the backlog)

use gatewatch::run::ship::{ShipTarget, Shipper, pass};
use gatewatch::store::Store;
use gatewatch::store::central::{BATCH_ROWS, Central, ShipStats};
use gatewatch::testkit::bench_arg;
use gatewatch::testkit::central::fill_journal;
use gatewatch::testkit::postgres::Postgres;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn target(url: &str) -> ShipTarget {
    ShipTarget {
        url: url.to_owned(),
        ca: None,
        province: "load-test".into(),
        batch: BATCH_ROWS,
        max_rows: None,
    }
}

fn backlog(dbs: &[PathBuf], url: &str, rows: u64) {
    let t = Instant::now();
    std::thread::scope(|s| {
        for db in dbs {
            s.spawn(move || {
                let st = ShipStats::default();
                pass(db, &target(url), &mut None, &st).expect("ship")
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let total = rows * dbs.len() as u64;
    let mut c = Central::connect(url, None).expect("central");
    let held: u64 = c
        .hosts(None)
        .expect("hosts")
        .iter()
        .map(|h| h.hits as u64)
        .sum();
    assert_eq!(held, total, "the central holds every row");
    println!(
        "backlog: {} sensors x {rows} rows = {total} rows shipped in {secs:.1} s: {:.0} rows/s",
        dbs.len(),
        total as f64 / secs
    );
    for (table, n, bytes) in c.sizes().expect("sizes") {
        let per = if n > 0 { bytes / n } else { 0 };
        println!(
            "  {table}: ~{n} rows, {:.1} MiB, {per} B/row",
            bytes as f64 / 1048576.0
        );
    }
}

fn steady(dbs: &[PathBuf], url: &str, rate: u64, seconds: u64) {
    let shippers: Vec<Shipper> = dbs
        .iter()
        .map(|db| {
            let st = Arc::new(ShipStats::default());
            Shipper::start(db.clone(), target(url), Duration::from_secs(1), st).expect("ship")
        })
        .collect();
    let mut c = Central::connect(url, None).expect("central");
    let mut lags = Vec::new();
    let start = Instant::now();
    for sec in 0..seconds {
        for (i, db) in dbs.iter().enumerate() {
            let at = 2_000_000_000_000_000_000 + (sec as i64) * 1_000_000_000;
            fill_journal(db, &format!("sensor-{i:02}"), rate as usize, 2_000, at);
        }
        let lag: i64 = dbs
            .iter()
            .enumerate()
            .map(|(i, db)| {
                let head = Store::open_read_only(db)
                    .expect("store")
                    .journal_head()
                    .expect("head");
                head - c.acked(&format!("sensor-{i:02}")).expect("acked")
            })
            .sum();
        lags.push(lag.max(0) as u64);
        let next = start + Duration::from_secs(sec + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    drop(shippers);
    lags.sort_unstable();
    let offered = rate * dbs.len() as u64;
    println!(
        "steady: {} sensors x {rate} rows/s = {offered} rows/s for {seconds} s: lag median {} rows, max {} rows (max {:.1} s of input)",
        dbs.len(),
        lags[lags.len() / 2],
        lags[lags.len() - 1],
        lags[lags.len() - 1] as f64 / offered as f64
    );
}

fn main() {
    let (sensors, rows, rate, seconds) = (
        bench_arg::<u64>(0, 10),
        bench_arg::<u64>(1, 100_000),
        bench_arg::<u64>(2, 1_000),
        bench_arg::<u64>(3, 20),
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pg = Postgres::start(dir.path());
    let url = pg.url();
    let t = Instant::now();
    let dbs: Vec<PathBuf> = (0..sensors)
        .map(|i| {
            let db = dir.path().join(format!("sensor-{i:02}.db"));
            fill_journal(
                &db,
                &format!("sensor-{i:02}"),
                rows as usize,
                2_000,
                1_700_000_000_000_000_000,
            );
            db
        })
        .collect();
    println!("journals filled in {:.1} s", t.elapsed().as_secs_f64());
    backlog(&dbs, &url, rows);
    steady(&dbs, &url, rate, seconds);
}
