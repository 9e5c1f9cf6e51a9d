//! Retro-hunt benchmark (figures in the README): the history's size and
//! write rate, and a hunt's time, for an office of HOSTS machines over DAYS
//! days, each machine with about ITEMS names and addresses a day
//! (`testkit::history::office_day`).
//!
//! Usage: cargo bench --bench retro -- [DAYS] [HOSTS] [ITEMS]   (30 1000 600)
//!
//! The hunt's feeds: 100,000 domains and 100,000 addresses the office never
//! saw, plus 40 names and 40 addresses it did (from the long tail). The
//! first hunt finds their contacts; the second, over the same history,
//! finds nothing new (what it costs to hunt after a reload that added
//! nothing the office saw).

use gatewatch::detect::Sink;
use gatewatch::detect::attribution::Units;
use gatewatch::detect::history::HistorySettings;
use gatewatch::output::sink::{HitSink, SinkOptions, StorePolicy};
use gatewatch::run::retro::{Reported, RetroOptions, hunt};
use gatewatch::store::Store;
use gatewatch::store::writer::StoreWriter;
use gatewatch::testkit::history::{ADDRESSES, NAMES, address, name, office_day};
use gatewatch::testkit::{bench_arg, snapshot_of};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

fn write_history(db: &Path, days: u32, hosts: u32, items: u32) {
    let settings = HistorySettings {
        retention_days: days,
        ..HistorySettings::default()
    };
    let w = StoreWriter::start_with(Store::open(db).unwrap(), 65_536, None, settings);
    let t = Instant::now();
    let mut sent = 0u64;
    for day in 0..i64::from(days) {
        let day = office_day(day, hosts, items, 7);
        sent += day.len() as u64;
        for chunk in day.chunks(gatewatch::detect::history::BATCH) {
            w.history(chunk.to_vec(), true);
        }
    }
    let st = w.finish();
    let secs = t.elapsed().as_secs_f64();
    let s = Store::open_read_only(db).unwrap().history_size().unwrap();
    let bytes = std::fs::metadata(db).map_or(0, |m| m.len()) as f64;
    let per_day_1000 = bytes / f64::from(days) / f64::from(hosts) * 1000.0;
    println!(
        "history: {sent} items ({} new rows, {} repeats, {} dropped) in {secs:.1} s = {:.0} items/s",
        st.history_new.load(Ordering::Relaxed),
        st.history_repeat.load(Ordering::Relaxed),
        st.history_dropped.load(Ordering::Relaxed),
        sent as f64 / secs
    );
    println!(
        "store: {} days, {} host-days, {} rows, {} values; {:.1} MiB = {:.0} bytes/row, {:.1} MiB per 1,000 hosts per day",
        s.days,
        s.host_days,
        s.rows,
        s.values,
        bytes / f64::from(1 << 20),
        bytes / s.rows.max(1) as f64,
        per_day_1000 / f64::from(1 << 20)
    );
}

fn feeds() -> gatewatch::intel::Snapshot {
    let mut e: Vec<String> = (0..100_000)
        .map(|i| format!("never{i}.example.net"))
        .collect();
    e.extend((0..100_000u32).map(|i| std::net::Ipv4Addr::from(0xc633_0000u32 + i).to_string()));
    // Tail entries: seen by a few hosts on a few days.
    e.extend((0..40).map(|i| name(NAMES / 2 + i * 2_000)));
    e.extend((0..40).map(|i| address(ADDRESSES / 2 + i * 3_000).to_string()));
    let refs: Vec<&str> = e.iter().map(String::as_str).collect();
    snapshot_of("bench", "malware", &refs, &[])
}

fn hunt_once(db: &Path, snap: &gatewatch::intel::Snapshot, units: &Units, what: &str) {
    let reader = Store::open_read_only(db).unwrap();
    let w = StoreWriter::start(Store::open(db).unwrap(), 65_536, None);
    let mut o = SinkOptions::new("bench", 0);
    o.store = Some((w, StorePolicy::Wait));
    let mut sink = HitSink::new(Box::new(std::io::sink()), o);
    let opts = RetroOptions {
        since_ns: None,
        sinkhole: true,
    };
    let t = Instant::now();
    let r = hunt(&reader, snap, units, &opts, &mut Reported::new(), |h| {
        sink.hit(h)
    })
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    sink.finish();
    println!(
        "{what}: {:.2} s for {} values ({} on a feed, {} rows read): {} hits on {} hosts, {} already reported",
        secs,
        r.values,
        r.matched,
        r.rows,
        r.hits,
        r.hosts.len(),
        r.known
    );
}

fn main() {
    let (days, hosts, items) = (
        bench_arg::<u32>(0, 30),
        bench_arg::<u32>(1, 1000),
        bench_arg::<u32>(2, 600),
    );
    println!("retro bench: {days} days x {hosts} hosts x ~{items} items a day");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    write_history(&db, days, hosts, items);
    let units = Units::parse("units", "code,name,cidrs\nU1,Văn phòng,10.20.0.0/16\n", &[]).unwrap();
    let t = Instant::now();
    let snap = feeds();
    println!(
        "feeds: {} indicators built in {:.2} s",
        snap.len(),
        t.elapsed().as_secs_f64()
    );
    hunt_once(&db, &snap, &units, "first hunt");
    hunt_once(&db, &snap, &units, "second hunt");
}
