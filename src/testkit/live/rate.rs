//! Sending a capture into the sensor at a given rate (or as fast as
//! tcpreplay can) and reading what was dropped where: the live drop test
//! and `benches/live.rs`, which looks for the highest rate without drops.

use super::netns::Netns;
use super::results::{capture_row, read, stats_value};
use super::sensor::{RX, Sensor, tcpreplay, tcpreplay_sent};
use crate::testkit::root;
use crate::testkit::synth::{DnsMix, dns_mix};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one run at one rate gave.
#[derive(Clone, Debug)]
pub struct RateRun {
    /// Packets tcpreplay sent.
    pub sent: u64,
    /// tcpreplay's own rate, packets per second.
    pub pps: f64,
    pub received: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    pub queue_drops: u64,
    /// Packets the workers processed.
    pub processed: u64,
}

impl RateRun {
    pub fn drops(&self) -> u64 {
        self.kernel_drops + self.interface_drops + self.queue_drops
    }
}

/// The 1% DNS-heavy mix of `packets` packets (with its feeds and units),
/// generated once under `target/bench-data`.
pub fn dns_mix_capture(packets: u64) -> PathBuf {
    let dir = root().join(format!("target/bench-data/live-dns-mix-{packets}"));
    if !dir.join("traffic.pcap").is_file() {
        let mix = DnsMix {
            packets,
            seed: 13,
            listed_per_mille: 10,
            heavy_pct: 0,
        };
        dns_mix(&dir, mix).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    dir
}

/// Send `dir/traffic.pcap` (with `dir`'s feeds and units) into a sensor on
/// the default worker count, at `pps` packets per second or, with `None`,
/// `--topspeed`; stop the sensor and read its counters. `work` holds the
/// run's files.
pub fn run_at_rate(ns: &Netns, work: &Path, dir: &Path, port: u16, pps: Option<u64>) -> RateRun {
    let conf = (dir.join("feeds.toml"), dir.join("units.csv"));
    let mut s = Sensor::spawn_with(ns, work, port, (&conf.0, &conf.1), &[RX], &[]).healthy(ns);
    let rate = pps.map(|p| p.to_string());
    let args: Vec<&str> = match &rate {
        Some(r) => vec!["--pps", r],
        None => vec!["--topspeed"],
    };
    let file = dir.join("traffic.pcap");
    let (p, log) = tcpreplay(ns, work, &args, &[file.to_str().unwrap_or_default()]);
    let (sent, out) = tcpreplay_sent(p, &log, 300);
    let pps = out
        .split("Rated: ")
        .nth(1)
        .and_then(|r| r.split(',').nth(2))
        .and_then(|r| r.trim().split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    settle(ns, &s);
    let (status, _) = s.terminate();
    assert!(
        status.success(),
        "gatewatch run exited with {status}{}",
        s.logs()
    );
    let stats = read(&s.out);
    let (received, kernel_drops, interface_drops) = capture_row(&stats, RX);
    RateRun {
        sent,
        pps,
        received,
        kernel_drops,
        interface_drops,
        queue_drops: stats_value(&stats, "queue_drops"),
        processed: stats_value(&stats, "packets"),
    }
}

/// Wait until the workers' packet count stops moving (what was queued is
/// processed), at most 30 s.
fn settle(ns: &Netns, s: &Sensor) {
    let done = |m: &str| super::results::metric_or_0(m, "gatewatch_packets_total");
    let t = Instant::now();
    let mut last = -1.0;
    while t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(1200));
        let now = done(&s.scrape(ns));
        if now == last {
            return;
        }
        last = now;
    }
}
