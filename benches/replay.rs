//! End-to-end replay benchmark: packets/s, Gbit/s and peak RSS of the full
//! engine (decode, DNS/TLS/HTTP, match, attribute, alert sink) against the
//! floor: a bare loop that only walks the same pcap's records from an mmap.
//!
//! Usage: cargo bench --bench replay -- [PCAP_DIR]
//! PCAP_DIR holds gen-gateway-pcap.py output (traffic.pcap, units.csv,
//! feeds/); default: tests/corpus/gateway-small. For the throughput figures in
//! the README: python3 ../shared/tools/gen-gateway-pcap.py /tmp/gw2m --packets 2000000

use gatewatch::attribution::{Units, default_internal};
use gatewatch::capture::file::read_file;
use gatewatch::detect::{Engine, Hit, Sink};
use gatewatch::intel::Intel;
use gatewatch::testkit::load_feeds;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Counts hits and formats each as its alert line, as the real sink does.
struct CountingSink {
    hits: u64,
    bytes: usize,
}

impl Sink for CountingSink {
    fn hit(&mut self, hit: Hit) {
        self.hits += 1;
        self.bytes += gatewatch::alert::alert_json(&hit, "bench").len();
    }
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The floor: walk classic-pcap records in an mmap, touching each header.
fn floor(path: &Path) -> (u64, u64) {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: the benchmark input is not modified while mapped.
    let m = unsafe { memmap2::Mmap::map(&f).unwrap() };
    let (mut off, mut n, mut bytes) = (24usize, 0u64, 0u64);
    while off + 16 <= m.len() {
        let cap = u32::from_le_bytes(m[off + 8..off + 12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(m[off + 12..off + 16].try_into().unwrap()) as u64;
        off += 16 + cap;
        n += 1;
        bytes += orig;
    }
    (n, bytes)
}

fn report(label: &str, packets: u64, bytes: u64, secs: f64) {
    println!(
        "{label:<28} {packets:>10} pkts {:>8.3} s {:>8.2} Mpps {:>7.2} Gbit/s",
        secs,
        packets as f64 / secs / 1e6,
        bytes as f64 * 8.0 / secs / 1e9
    );
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/corpus/gateway-small"
            ))
        });
    let pcap = dir.join("traffic.pcap");
    let feeds = dir.join("feeds.toml");
    let feeds = if feeds.is_file() {
        feeds
    } else {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/gateway-small/feeds.toml"
        ))
    };
    // feeds.toml paths are relative to itself; copy it next to the data if needed.
    let feeds = if feeds.parent() != Some(dir.as_path()) {
        let local = dir.join("feeds.toml");
        std::fs::copy(&feeds, &local).expect("copy feeds.toml next to the capture");
        local
    } else {
        feeds
    };
    let t = Instant::now();
    let snap = load_feeds(&feeds);
    let units = Units::load(&dir.join("units.csv"), &default_internal()).unwrap();
    println!(
        "capture: {}  ({} indicators, loaded in {:.3} s)",
        pcap.display(),
        snap.len(),
        t.elapsed().as_secs_f64()
    );

    // Warm the page cache with a plain buffered read (no mmap, so the peak
    // RSS below is the engine's own).
    let t = Instant::now();
    let (mut read, mut bytes) = (0u64, 0u64);
    read_file(&pcap, |p| {
        read += 1;
        bytes += u64::from(p.orig_len);
    });
    let _ = t;
    let t = Instant::now();
    read = 0;
    read_file(&pcap, |_| read += 1);
    report(
        "read only (pcap-parser)",
        read,
        bytes,
        t.elapsed().as_secs_f64(),
    );

    let mut engine = Engine::new(Arc::new(Intel::new(snap)), Arc::new(units));
    let mut sink = CountingSink { hits: 0, bytes: 0 };
    let t = Instant::now();
    read_file(&pcap, |p| engine.process(p, &mut sink));
    let secs = t.elapsed().as_secs_f64();
    report(
        "full engine, 1 thread",
        engine.stats.packets,
        engine.stats.bytes,
        secs,
    );
    println!(
        "hits: {}  lost/parse errors: {}  peak RSS (engine, before the mmap floor): {:.1} MiB",
        sink.hits,
        engine.stats.lost(),
        peak_rss_mib()
    );

    let t = Instant::now();
    let (n, fbytes) = floor(&pcap);
    report(
        "floor (mmap record walk)",
        n,
        fbytes,
        t.elapsed().as_secs_f64(),
    );
}
