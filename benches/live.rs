//! The live sensor under load: the highest tcpreplay rate into a veth at
//! which `gatewatch run` (default worker count) drops nothing, for the 1%
//! DNS-heavy mix and for each GATEWAY_DIR given (gen-gateway-pcap.py
//! output). Rates rise until the first run with drops; `--topspeed` last.
//!
//! Usage (root, iproute2, tcpreplay): cargo bench --bench live -- [GATEWAY_DIR ...]

use gatewatch::testkit::live::{RateRun, capture_ns, dns_mix_capture, run_at_rate, serial};
use std::path::{Path, PathBuf};

const RATES: [Option<u64>; 7] = [
    Some(25_000),
    Some(50_000),
    Some(100_000),
    Some(200_000),
    Some(400_000),
    Some(800_000),
    None,
];

fn row(label: &str, r: &RateRun) {
    println!(
        "{label:<12} {:>9} {:>11.0} {:>9} {:>9} {:>9} {:>9}",
        r.sent, r.pps, r.kernel_drops, r.interface_drops, r.queue_drops, r.processed
    );
}

fn ramp(title: &str, dir: &Path) {
    println!("\n## {title}: {}", dir.join("traffic.pcap").display());
    println!(
        "{:<12} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "asked pps", "sent", "sent pps", "kernel", "interface", "queue", "processed"
    );
    let mut best: Option<f64> = None;
    for (i, rate) in RATES.iter().enumerate() {
        let work = tempfile::tempdir().unwrap();
        let ns = capture_ns();
        let r = run_at_rate(&ns, work.path(), dir, 19490 + i as u16, *rate);
        let label = rate.map_or("topspeed".to_string(), |p| p.to_string());
        row(&label, &r);
        if r.drops() > 0 || r.processed < r.sent {
            break;
        }
        best = Some(best.map_or(r.pps, |b: f64| b.max(r.pps)));
    }
    match best {
        Some(p) => println!(
            "highest rate without drops: {p:.0} packets/s (when every rate passed, that is \
             as fast as tcpreplay could send here)"
        ),
        None => println!("drops at every rate tried"),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let _serial = serial();
    ramp("DNS-heavy mix, 1% listed", &dns_mix_capture(500_000));
    for g in std::env::args().skip(1).filter(|a| !a.starts_with('-')) {
        ramp("gateway mix", &PathBuf::from(g));
    }
}
