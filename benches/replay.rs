//! Single-thread engine benchmark: the detection engine run inline on the
//! reading thread (no pipeline, no queues), against the floor. Shows what
//! one core does per packet; `benches/pipeline.rs` measures the sensor.
//!
//! Rows: everything on (the default engine), DNS correlation off, TCP flow
//! table and reassembly off, both off: what each costs.
//!
//! Usage: cargo bench --bench replay -- [PCAP_DIR]
//! PCAP_DIR holds gen-gateway-pcap.py output (traffic.pcap, units.csv,
//! feeds/, and a feeds.toml); default: tests/corpus/gateway-small.

use gatewatch::capture::file::{floor_walk, read_file};
use gatewatch::detect::{EngineOptions, FlowRecord, Hit, Recipe, Sink};
use gatewatch::intel::Intel;
use gatewatch::metrics::{peak_rss_mib, reset_peak_rss};
use gatewatch::testkit::{corpus, load_feeds, load_units};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Counts hits and formats each as its alert line, as the real sink does.
struct CountingSink {
    hits: u64,
    flows: u64,
    bytes: usize,
}

impl Sink for CountingSink {
    fn hit(&mut self, hit: Hit) {
        self.hits += 1;
        self.bytes += gatewatch::output::eve::alert_json(&hit, "bench").len();
    }

    fn flow(&mut self, flow: FlowRecord) {
        self.flows += 1;
        self.bytes += gatewatch::output::eve::flow_json(&flow, "bench").len();
    }
}

fn report(label: &str, packets: u64, bytes: u64, secs: f64) {
    println!(
        "{label:<28} {packets:>10} pkts {:>8.3} s {:>8.2} Mpps {:>7.2} Gbit/s  peak RSS {:>6.1} MiB",
        secs,
        packets as f64 / secs / 1e6,
        bytes as f64 * 8.0 / secs / 1e9,
        peak_rss_mib()
    );
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| corpus("gateway-small"));
    let pcap = dir.join("traffic.pcap");
    let feeds = if dir.join("feeds.toml").is_file() {
        dir.join("feeds.toml")
    } else {
        // feeds.toml paths are relative to itself: put ours next to the data.
        let local = dir.join("feeds.toml");
        std::fs::copy(corpus("gateway-small/feeds.toml"), &local)
            .expect("copy feeds.toml next to the capture");
        local
    };
    let snap = load_feeds(&feeds);
    let units = load_units(&dir.join("units.csv"));
    println!("capture: {}  ({} indicators)", pcap.display(), snap.len());

    // Warm the page cache, then measure the floor.
    floor_walk(&pcap).expect("classic pcap");
    reset_peak_rss();
    let t = Instant::now();
    let (n, bytes) = floor_walk(&pcap).expect("classic pcap");
    report(
        "floor: mmap record walk",
        n,
        bytes,
        t.elapsed().as_secs_f64(),
    );

    let intel = Arc::new(Intel::new(snap));
    let units = Arc::new(units);
    for (label, correlate, reassemble) in [
        ("engine, all on", true, true),
        ("  correlation off", false, true),
        ("  reassembly off", true, false),
        ("  both off", false, false),
    ] {
        let options = EngineOptions {
            correlate,
            reassemble,
            ..EngineOptions::default()
        };
        let mut engine = Recipe::new(intel.clone(), units.clone(), options).engine(0);
        let mut sink = CountingSink {
            hits: 0,
            flows: 0,
            bytes: 0,
        };
        reset_peak_rss();
        let t = Instant::now();
        read_file(&pcap, |p| engine.process(p, &mut sink));
        engine.finish(&mut sink);
        report(
            label,
            engine.stats.packets,
            engine.stats.bytes,
            t.elapsed().as_secs_f64(),
        );
        println!(
            "    hits {}  flow events {}  flows tracked {}  lost/parse errors {}",
            sink.hits,
            sink.flows,
            engine.stats.flows.created,
            engine.stats.lost()
        );
    }
}
