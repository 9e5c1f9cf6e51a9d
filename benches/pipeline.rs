//! End-to-end pipeline benchmark (the figures in the README).
//!
//! Usage: cargo bench --bench pipeline -- [GATEWAY_DIR ...]
//!
//! 1. Start-up: load 1.6M synthetic indicators (800k domains, 700k IPv4,
//!    100k networks) and build the snapshot.
//! 2. DNS-heavy mixes (80% of packets DNS, 1M packets, testkit::synth) with
//!    0%, 1% and 10% of queries naming listed domains: DNS correlation on
//!    (1, 2 and 4 workers) and off (1 worker), and the ratio of the two.
//! 3. The 1% mix with one host making 30% of the exchanges: the share of
//!    packets the busiest worker gets when routing by internal host, and the
//!    worker scaling that follows.
//! 4. Each GATEWAY_DIR: gen-gateway-pcap.py output, e.g.
//!    `python3 ../shared/tools/gen-gateway-pcap.py /tmp/gw2m --packets 2000000`
//!    (add `--infected 0.3` for an outbreak, `--encap vxlan` for a tunnel).
//!
//! Each capture runs as floor (bare mmap record walk), then the full
//! pipeline. Inputs are generated under target/bench-data once and reused.

use gatewatch::capture::file::read_file;
use gatewatch::detect::EngineOptions;
use gatewatch::detect::attribution::Units;
use gatewatch::intel::Intel;
use gatewatch::intel::feeds::{FeedsConfig, build_snapshot};
use gatewatch::run::bench::{Row, measure, print};
use gatewatch::run::route::{Route, Routes};
use gatewatch::testkit::synth::DnsMix;
use gatewatch::testkit::{load_units, root, synth};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

fn data_dir() -> PathBuf {
    root().join("target/bench-data")
}

fn load(dir: &Path) -> (Arc<Intel>, Arc<Units>) {
    let cfg = FeedsConfig::load(&dir.join("feeds.toml")).unwrap_or_else(|e| panic!("{e}"));
    let (snap, _, _) = build_snapshot(&cfg);
    let units = load_units(&dir.join("units.csv"));
    (Arc::new(Intel::new(snap)), Arc::new(units))
}

fn run_mix(title: &str, dir: &Path, options: &EngineOptions, workers: &[usize]) -> Vec<Row> {
    let (intel, units) = load(dir);
    println!("\n## {title}: {}", dir.join("traffic.pcap").display());
    let rows = measure(
        &[dir.join("traffic.pcap")],
        &intel,
        &units,
        options,
        workers,
    )
    .unwrap();
    print(&mut std::io::stdout().lock(), &rows).unwrap();
    rows
}

/// Best pipeline rate of `rows` (Mpps).
fn best(rows: &[Row]) -> f64 {
    rows.iter().skip(1).map(Row::mpps).fold(0.0, f64::max)
}

fn dns_mixes() {
    for (label, per_mille) in [("0%", 0), ("1%", 10), ("10%", 100)] {
        let dir = data_dir().join(format!("dns-mix-1m-{per_mille}"));
        mix(&dir, per_mille, 0);
        let on = run_mix(
            &format!("DNS-heavy mix, {label} of queries listed, correlation on"),
            &dir,
            &EngineOptions::default(),
            &[1, 2, 4],
        );
        let off_options = EngineOptions {
            correlate: false,
            ..EngineOptions::default()
        };
        let off = run_mix(
            &format!("DNS-heavy mix, {label} of queries listed, correlation off"),
            &dir,
            &off_options,
            &[1],
        );
        println!(
            "correlation on keeps {:.0}% of the rate with it off (1 worker: {:.2} vs {:.2} Mpps)",
            100.0 * on[1].mpps() / off[1].mpps(),
            on[1].mpps(),
            off[1].mpps()
        );
    }
}

/// The share of `file`'s packets that the busiest of `n` workers gets.
fn busiest_share(file: &Path, units: &Arc<Units>, n: usize) -> f64 {
    let mut routes = Routes::new(units.clone(), Vec::new());
    let mut per = vec![0u64; n];
    read_file(file, |p| {
        let (Route::One(w) | Route::Everyone(w)) = routes.route(p, n);
        per[w] += 1;
    });
    let total: u64 = per.iter().sum();
    *per.iter().max().unwrap_or(&0) as f64 / total.max(1) as f64
}

fn heavy_host() {
    let dir = data_dir().join("dns-mix-1m-10-heavy30");
    mix(&dir, 10, 30);
    let rows = run_mix(
        "DNS-heavy mix, 1% listed, one host makes 30% of the exchanges",
        &dir,
        &EngineOptions::default(),
        &[1, 2, 4],
    );
    let (_, units) = load(&dir);
    for n in [2, 4] {
        println!(
            "routing by host, {n} workers: the busiest worker gets {:.0}% of the packets (even: {:.0}%)",
            100.0 * busiest_share(&dir.join("traffic.pcap"), &units, n),
            100.0 / n as f64
        );
    }
    println!("best rate {:.2} Mpps", best(&rows));
}

fn mix(dir: &Path, listed_per_mille: u64, heavy_pct: u64) {
    if !dir.join("traffic.pcap").is_file() {
        let m = DnsMix {
            packets: 1_000_000,
            seed: 11,
            listed_per_mille,
            heavy_pct,
        };
        let n = synth::dns_mix(dir, m).unwrap();
        println!("wrote {} ({n} DNS packets)", dir.display());
    }
}

fn main() {
    let gateways: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .collect();

    let feeds = data_dir().join("feeds-1.6m");
    if !feeds.join("feeds.toml").is_file() {
        synth::big_feeds(&feeds, 800_000, 700_000, 100_000).unwrap();
    }
    let t = Instant::now();
    let cfg = FeedsConfig::load(&feeds.join("feeds.toml")).unwrap_or_else(|e| panic!("{e}"));
    let (snap, reports, _) = build_snapshot(&cfg);
    let secs = t.elapsed().as_secs_f64();
    let rejected: usize = reports.iter().map(|r| r.rejected.len()).sum();
    println!(
        "## start-up: {} indicators loaded and indexed in {secs:.3} s ({rejected} rejected), peak RSS {:.0} MiB",
        snap.len(),
        gatewatch::metrics::peak_rss_mib()
    );
    drop(snap);

    dns_mixes();
    heavy_host();
    for g in gateways {
        let title = format!("gateway mix ({})", g.display());
        let rows = run_mix(&title, &g, &EngineOptions::default(), &[1, 2, 4]);
        println!(
            "one worker at {:.0}% of the floor",
            100.0 * rows[1].mpps() / rows[0].mpps()
        );
    }
}
