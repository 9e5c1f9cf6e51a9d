//! End-to-end pipeline benchmark (the figures in the README).
//!
//! Usage: cargo bench --bench pipeline -- [--startup-only] [GATEWAY_DIR ...]
//!
//! 1. Start-up: load 1.6M synthetic indicators (800k domains, 700k IPv4,
//!    100k networks) and build the snapshot from the feed text; then the
//!    same feeds compiled into a signed snapshot file (`feeds compile`)
//!    and loaded from it (read, verify, view in place). Each start-up runs
//!    in a fresh process (this benchmark run again as a child), three times
//!    alternated, so each peak RSS is that start-up's alone.
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
use gatewatch::intel::snap::{self, PublicKey, SigningKey};
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

/// Set in a child process: which start-up to measure (`text` or
/// `snapshot`) on the 1.6M-indicator feeds.
const CHILD: &str = "GATEWATCH_BENCH_STARTUP";

/// The child's one line: `startup KIND SECONDS PEAK_RSS_MIB RSS_BEFORE_MIB
/// INDICATORS`.
fn startup_child(kind: &str) {
    let feeds = data_dir().join("feeds-1.6m");
    let before = gatewatch::metrics::rss_mib();
    let t = Instant::now();
    let snapshot = if kind == "text" {
        let cfg = FeedsConfig::load(&feeds.join("feeds.toml")).unwrap_or_else(|e| panic!("{e}"));
        build_snapshot(&cfg).0
    } else {
        let key = PublicKey::load(&feeds.join("bench.pub")).unwrap();
        snap::load(&feeds.join("feeds.snap"), &key)
            .unwrap_or_else(|e| panic!("{e}"))
            .snapshot
    };
    let intel = Intel::new(snapshot);
    let secs = t.elapsed().as_secs_f64();
    // Both must match the same way: a listed address and a miss.
    let s = intel.load();
    let listed =
        s.match_ip("11.0.0.0".parse().unwrap(), None).is_some() || s.indicators() > 1_500_000;
    assert!(listed, "{kind}: nothing loaded");
    println!(
        "startup {kind} {secs:.4} {:.1} {before:.1} {}",
        gatewatch::metrics::peak_rss_mib(),
        s.indicators()
    );
}

/// One child start-up: seconds, peak RSS MiB, RSS before loading MiB,
/// indicators.
type Run = (f64, f64, f64, u64);

fn startup_run(kind: &str) -> Run {
    let exe = std::env::current_exe().unwrap();
    let o = std::process::Command::new(exe)
        .env(CHILD, kind)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("startup "))
        .unwrap_or_else(|| {
            panic!(
                "{kind} start-up failed: {out}{}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| f[i].parse::<f64>().unwrap();
    (num(2), num(3), num(4), num(5) as u64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Start-up from the feed text and from a signed snapshot of the same
/// feeds, each in a fresh process, alternated three times.
fn startup() {
    let feeds = data_dir().join("feeds-1.6m");
    if !feeds.join("feeds.toml").is_file() {
        synth::big_feeds(&feeds, 800_000, 700_000, 100_000).unwrap();
    }
    let (key, public) = (feeds.join("bench.pem"), feeds.join("bench.pub"));
    if !key.is_file() {
        snap::keygen(&key, &public).unwrap();
    }
    let t = Instant::now();
    let cfg = FeedsConfig::load(&feeds.join("feeds.toml")).unwrap_or_else(|e| panic!("{e}"));
    let (built, reports, _) = build_snapshot(&cfg);
    let rejected: usize = reports.iter().map(|r| r.rejected.len()).sum();
    let bytes = snap::compile(&built, &reports, 1, 1, &SigningKey::load(&key).unwrap());
    snap::write_file(&feeds.join("feeds.snap"), &bytes).unwrap();
    println!(
        "## start-up: {} indicators ({rejected} rejected); compiled into a {:.1} MiB signed snapshot in {:.2} s",
        built.indicators(),
        bytes.len() as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );
    drop(built);
    let mut rows: Vec<(&str, Vec<Run>)> = vec![("text", vec![]), ("snapshot", vec![])];
    for _ in 0..3 {
        for (kind, runs) in rows.iter_mut() {
            let r = startup_run(kind);
            println!(
                "start-up from {kind:<8}: {} indicators in {:.3} s, peak RSS {:.1} MiB (process before loading: {:.1} MiB)",
                r.3, r.0, r.1, r.2
            );
            runs.push(r);
        }
    }
    let counts: Vec<u64> = rows.iter().flat_map(|r| r.1.iter().map(|x| x.3)).collect();
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "indicator counts differ: {counts:?}"
    );
    for (kind, runs) in &rows {
        println!(
            "start-up from {kind:<8}: median {:.3} s, peak RSS median {:.1} MiB",
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect())
        );
    }
}

fn main() {
    if let Ok(kind) = std::env::var(CHILD) {
        startup_child(&kind);
        return;
    }
    let gateways: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .collect();

    startup();
    if std::env::args().any(|a| a == "--startup-only") {
        return;
    }
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
