//! End-to-end pipeline benchmark (the figures in the README).
//!
//! Usage: cargo bench --bench pipeline -- [GATEWAY_DIR]
//!
//! 1. Start-up: load 1.6M synthetic indicators (800k domains, 700k IPv4,
//!    100k networks) and build the snapshot.
//! 2. DNS-heavy mix (80% of packets DNS, 2M packets, written by testkit::synth).
//! 3. GATEWAY_DIR, if given: gen-gateway-pcap.py output, e.g.
//!    `python3 ../shared/tools/gen-gateway-pcap.py /tmp/gw2m --packets 2000000`.
//!
//! Each capture runs as floor (bare mmap record walk), then the full pipeline
//! with 1 worker and with max(2, cores minus one) workers. Inputs are generated under
//! target/bench-data once and reused.

use gatewatch::detect::EngineOptions;
use gatewatch::detect::attribution::Units;
use gatewatch::intel::Intel;
use gatewatch::intel::feeds::{FeedsConfig, build_snapshot};
use gatewatch::run::bench::{measure, print};
use gatewatch::run::pipeline::Sizing;
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

fn run_mix(title: &str, dir: &Path) {
    let (intel, units) = load(dir);
    println!("\n## {title}: {}", dir.join("traffic.pcap").display());
    let workers = [1, Sizing::default_workers().max(2)];
    let options = EngineOptions::default();
    let rows = measure(
        &[dir.join("traffic.pcap")],
        &intel,
        &units,
        &options,
        &workers,
    )
    .unwrap();
    print(&mut std::io::stdout().lock(), &rows).unwrap();
}

fn main() {
    let gateway = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from);

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

    let dns = data_dir().join("dns-mix-2m");
    if !dns.join("traffic.pcap").is_file() {
        let n = synth::dns_mix(&dns, 2_000_000, 11).unwrap();
        println!("wrote {} ({n} DNS packets)", dns.display());
    }
    run_mix("DNS-heavy mix (80% of packets DNS)", &dns);
    if let Some(g) = gateway {
        run_mix("gateway mix (gen-gateway-pcap.py)", &g);
    }
}
