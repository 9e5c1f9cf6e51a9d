//! Lookups at national scale: 2M domains + 2M IPv4 addresses + 200k CIDRs
//! (testkit::synth::big_feeds, three feeds as three parts), plus the build,
//! memory and reload figures the README quotes.
//!
//! Each lookup is measured over a pool of keys, "warm" (1,024 distinct keys:
//! a gateway sees the same names and peers again and again) and "cold"
//! (1M distinct keys: every probe misses the CPU caches). On the 2-core
//! development VM (512 KiB L2 per core) a domain miss costs ~15 ns with its
//! filter line cached and ~150 ns from memory; 4,096 distinct registrable
//! names already fall in between (~50 ns). Alternatives are
//! measured on the same keys so the choice is by number:
//! `alt: hash set` is a plain hash set of the same keys without the Bloom
//! filter in front (what the tables were before).
//!
//! `cargo bench --bench lookup` (criterion; set GATEWATCH_LOOKUP_SCALE=0.1
//! for a quick run).

use criterion::{Criterion, criterion_group, criterion_main};
use gatewatch::intel::feeds::{FeedsConfig, build_snapshot};
use gatewatch::intel::reload::Reloader;
use gatewatch::intel::{Intel, Snapshot};
use gatewatch::metrics::{peak_rss_mib, reset_peak_rss, rss_mib};
use gatewatch::testkit::synth::{Rng, big_feeds};
use rustc_hash::FxHashSet;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn scale() -> f64 {
    std::env::var("GATEWATCH_LOOKUP_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// Build the snapshot, print build time and memory, then time a reload of
/// the domain feed and its peak memory against the steady state.
fn setup(dir: &Path) -> (Arc<Intel>, Vec<String>, Vec<IpAddr>) {
    let s = scale();
    let (nd, ni, nn) = (
        (2_000_000.0 * s) as u64,
        (2_000_000.0 * s) as u64,
        (200_000.0 * s) as u64,
    );
    big_feeds(dir, nd, ni, nn).unwrap();
    let source: u64 = ["domains.txt", "ips.txt", "nets.txt"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum();
    let cfg = FeedsConfig::load(&dir.join("feeds.toml")).unwrap();
    let rss0 = rss_mib();
    let t = Instant::now();
    let (snap, reports, _) = build_snapshot(&cfg);
    let built = t.elapsed();
    let steady = rss_mib();
    println!(
        "build: {} indicators in {:.3} s; tables + filters {:.1} MiB for {:.1} MiB of feed text ({:.2}x); RSS {:.0} -> {:.0} MiB",
        snap.len(),
        built.as_secs_f64(),
        mib(snap.heap_bytes()),
        mib(source as usize),
        snap.heap_bytes() as f64 / source as f64,
        rss0,
        steady
    );
    let intel = Arc::new(Intel::new(snap));
    let r = Reloader::new(&cfg, &reports, intel.clone());
    // Reload after one feed changed: only it is rebuilt.
    for (file, extra) in [
        ("nets.txt", "192.0.2.0/24\n"),
        ("domains.txt", "reloaded.example\n"),
    ] {
        let mut text = std::fs::read_to_string(dir.join(file)).unwrap();
        text.push_str(extra);
        std::fs::write(dir.join(file), text).unwrap();
        reset_peak_rss();
        let base = rss_mib();
        let t = Instant::now();
        let rep = r.reload();
        println!(
            "reload ({file} changed, {}): {:.3} s; RSS before {:.0} MiB, peak during {:.0} MiB ({:.2}x)",
            rep.result(),
            t.elapsed().as_secs_f64(),
            base,
            peak_rss_mib(),
            peak_rss_mib() / base
        );
    }
    // Keys: listed names and addresses read back from the feed files.
    let doms: Vec<String> = std::fs::read_to_string(dir.join("domains.txt"))
        .unwrap()
        .lines()
        .take(100_000)
        .map(String::from)
        .collect();
    let ips: Vec<IpAddr> = std::fs::read_to_string(dir.join("ips.txt"))
        .unwrap()
        .lines()
        .take(100_000)
        .map(|l| l.parse().unwrap())
        .collect();
    (intel, doms, ips)
}

/// `n` names of `labels` labels that are not listed.
fn miss_names(n: usize, labels: usize, rng: &mut Rng) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut s = String::new();
            for l in 0..labels - 1 {
                s.push_str(&format!("w{:x}{l}.", rng.next_u64() & 0xffff_ffff));
            }
            s.push_str(["com", "net", "vn", "org"][rng.below(4) as usize]);
            s
        })
        .collect()
}

fn bench_pool<T>(c: &mut Criterion, name: &str, pool: &[T], f: impl Fn(&T) -> bool) {
    let mut i = 0usize;
    c.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % pool.len();
            black_box(f(&pool[i]))
        })
    });
}

/// Addresses in the warm pools (they stay in cache) and the cold ones.
const WARM: usize = 1024;
const COLD: usize = 1 << 20;

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (intel, listed, listed_ips) = setup(dir.path());
    let s: Arc<Snapshot> = intel.load_full();
    let mut rng = Rng::new(11);
    domain_lookups(c, &s, dir.path(), &listed, &mut rng);
    ip_lookups(c, &s, dir.path(), &listed_ips, &mut rng);
}

/// Domain misses (warm and cold, by label count) and hits, and a plain hash
/// set of the same names for comparison.
fn domain_lookups(c: &mut Criterion, s: &Snapshot, dir: &Path, listed: &[String], rng: &mut Rng) {
    for labels in [3, 4, 6] {
        let warm = miss_names(WARM, labels, rng);
        bench_pool(
            c,
            &format!("domain miss {labels} labels (warm)"),
            &warm,
            |n| s.match_domain(n).is_some(),
        );
    }
    let cold4 = miss_names(COLD, 4, rng);
    bench_pool(c, "domain miss 4 labels (cold)", &cold4, |n| {
        s.match_domain(n).is_some()
    });
    let hits: Vec<String> = listed
        .iter()
        .take(WARM)
        .map(|d| format!("www.{d}"))
        .collect();
    bench_pool(c, "domain hit, subdomain of listed (warm)", &hits, |n| {
        s.match_domain(n).is_some()
    });
    // Alternative: a hash set of the same domain hashes, no filter.
    let state = foldhash::fast::RandomState::default();
    let set: FxHashSet<u64> = std::fs::read_to_string(dir.join("domains.txt"))
        .unwrap()
        .lines()
        .map(|d| state.hash_one(d.as_bytes()))
        .collect();
    let walk = |n: &str| {
        let mut rest = n;
        loop {
            if set.contains(&state.hash_one(rest.as_bytes())) {
                return true;
            }
            match rest.find('.') {
                Some(i) => rest = &rest[i + 1..],
                None => return false,
            }
        }
    };
    bench_pool(
        c,
        "alt: hash set, domain miss 4 labels (cold)",
        &cold4,
        |n| walk(n),
    );
}

/// Address lookups: random, misses, exact hits, network hits, and a plain
/// hash set of the exact addresses for comparison.
fn ip_lookups(c: &mut Criterion, s: &Snapshot, dir: &Path, listed_ips: &[IpAddr], rng: &mut Rng) {
    let ip_pool = |n: usize, rng: &mut Rng| -> Vec<IpAddr> {
        (0..n)
            .map(|_| IpAddr::from((rng.next_u64() as u32 | 0x0100_0000).to_be_bytes()))
            .collect()
    };
    let warm_ips = ip_pool(WARM, rng);
    let cold_ips = ip_pool(COLD, rng);
    bench_pool(c, "ip lookup, random address (warm)", &warm_ips, |a| {
        s.match_ip(*a, Some(443)).is_some()
    });
    bench_pool(c, "ip lookup, random address (cold)", &cold_ips, |a| {
        s.match_ip(*a, Some(443)).is_some()
    });
    let misses_only: Vec<IpAddr> = cold_ips
        .iter()
        .copied()
        .filter(|a| s.match_ip(*a, None).is_none())
        .take(WARM)
        .collect();
    bench_pool(c, "ip miss, exact + cidr (warm)", &misses_only, |a| {
        s.match_ip(*a, Some(443)).is_some()
    });
    let hit_ips: Vec<IpAddr> = listed_ips.iter().take(WARM).copied().collect();
    bench_pool(c, "ip hit, exact (warm)", &hit_ips, |a| {
        s.match_ip(*a, Some(443)).is_some()
    });
    let nets = std::fs::read_to_string(dir.join("nets.txt")).unwrap();
    let in_nets: Vec<IpAddr> = nets
        .lines()
        .take(WARM)
        .map(|l| {
            let n: ipnet::IpNet = l.parse().unwrap();
            match n.network() {
                IpAddr::V4(a) => IpAddr::from((u32::from(a) + 77).to_be_bytes()),
                v6 => v6,
            }
        })
        .collect();
    bench_pool(c, "cidr hit (warm)", &in_nets, |a| {
        s.match_ip(*a, Some(443)).is_some()
    });
    // Alternative for exact addresses: a hash set of u32.
    let ipset: FxHashSet<u32> = std::fs::read_to_string(dir.join("ips.txt"))
        .unwrap()
        .lines()
        .map(|l| u32::from(l.parse::<std::net::Ipv4Addr>().unwrap()))
        .collect();
    let cold_v4: Vec<u32> = cold_ips
        .iter()
        .map(|a| match a {
            IpAddr::V4(v) => u32::from(*v),
            _ => 0,
        })
        .collect();
    bench_pool(c, "alt: hash set, ip exact only (cold)", &cold_v4, |a| {
        ipset.contains(a)
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = lookups
}
criterion_main!(benches);
