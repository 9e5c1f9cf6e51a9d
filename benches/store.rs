//! Offender-store benchmark (figures in the README).
//!
//! Usage: cargo bench --bench store
//!
//! 1. Sustained insert rate of the batched writer: 200k hits from 5,000
//!    hosts over the synthetic gateway capture's indicators.
//! 2. The store's cost on end-to-end replay: a capture where every packet is
//!    a hit (200k DNS queries for a listed name), replayed with and without
//!    the store. Real traffic has a few hits per thousand packets.

use gatewatch::output::eve::alert_json;
use gatewatch::output::sink::{HitSink, SinkOptions, StorePolicy};
use gatewatch::run::replay::replay;
use gatewatch::store::Store;
use gatewatch::store::writer::{StoreRecord, StoreWriter};
use gatewatch::testkit::synth::query_storm;
use gatewatch::testkit::{engine, gateway_small_hits, load_feeds, load_units, root};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

const HITS: usize = 200_000;

fn insert_rate(dir: &Path) {
    let hits = gateway_small_hits();
    let records: Vec<StoreRecord> = (0..HITS)
        .map(|i| {
            let mut h = hits[i % hits.len()].clone();
            h.host = IpAddr::V4(Ipv4Addr::from(0x0a14_0000 + (i % 5_000) as u32));
            h.ts_ns += i as i64;
            let json = alert_json(&h, "bench");
            StoreRecord::from_hit(&h, json)
        })
        .collect();
    let db = dir.join("insert.db");
    let w = StoreWriter::start(Store::open(&db).unwrap(), 65_536, None);
    let t = Instant::now();
    for r in records {
        w.put(r);
    }
    let st = w.finish();
    let secs = t.elapsed().as_secs_f64();
    let n = st.written.load(Ordering::Relaxed);
    println!(
        "insert: {n} hits in {secs:.2} s = {:.0} hits/s ({} transactions, {} failed), db {:.1} MiB",
        n as f64 / secs,
        st.batches.load(Ordering::Relaxed),
        st.errors.load(Ordering::Relaxed),
        std::fs::metadata(&db).map_or(0, |m| m.len()) as f64 / (1 << 20) as f64
    );
}

fn storm(dir: &Path) -> PathBuf {
    let p = dir.join("storm.pcap");
    query_storm(&p, HITS as u64, "x.apiapi10.org", |i| {
        IpAddr::from([10, 20, (i / 250 % 4) as u8, 10 + (i % 200) as u8])
    });
    p
}

fn replay_cost(dir: &Path) {
    let pcap = storm(dir);
    for with_store in [false, true] {
        let snap = load_feeds(&root().join("samples/demo-feeds.toml"));
        let units = load_units(&root().join("feeds/units.csv"));
        let mut engine = engine(snap, units);
        let db = dir.join(format!("replay-{with_store}.db"));
        let mut opts = SinkOptions::new("bench", 0);
        if with_store {
            let w = StoreWriter::start(Store::open(&db).unwrap(), 65_536, None);
            opts.store = Some((w, StorePolicy::Wait));
        }
        let sink_out: Box<dyn std::io::Write + Send> = Box::new(std::io::sink());
        let mut sink = HitSink::new(sink_out, opts);
        let t = Instant::now();
        replay(std::slice::from_ref(&pcap), &mut engine, &mut sink);
        let hits = sink.finish().counts.hits;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "replay, every packet a hit, store {}: {} hits in {secs:.2} s = {:.0} hits/s",
            if with_store { "on " } else { "off" },
            hits,
            hits as f64 / secs
        );
    }
}

fn main() {
    let d = tempfile::tempdir().unwrap();
    insert_rate(d.path());
    replay_cost(d.path());
}
