use gatewatch::intel::feeds::{FeedsConfig, build_snapshot};
use gatewatch::testkit::synth::{Rng, big_feeds};
use std::net::IpAddr;
use std::time::Instant;
fn main() {
    let s: f64 = std::env::args().nth(1).map_or(1.0, |a| a.parse().unwrap());
    let d = tempfile::tempdir().unwrap();
    big_feeds(
        d.path(),
        (2e6 * s) as u64,
        (2e6 * s) as u64,
        (2e5 * s) as u64,
    )
    .unwrap();
    let cfg = FeedsConfig::load(&d.path().join("feeds.toml")).unwrap();
    let (snap, _, _) = build_snapshot(&cfg);
    let mut rng = Rng::new(3);
    let n = 4096;
    let ips: Vec<IpAddr> = (0..n)
        .map(|_| IpAddr::from((rng.next_u64() as u32 | 0x0100_0000).to_be_bytes()))
        .collect();
    let names: Vec<String> = (0..n)
        .map(|_| {
            format!(
                "w{:x}.a{:x}.b.com",
                rng.next_u64() & 0xffffff,
                rng.next_u64() & 0xfff
            )
        })
        .collect();
    for round in 0..3 {
        let t = Instant::now();
        let mut h = 0;
        for _ in 0..200 {
            for a in &ips {
                h += snap.match_ip(*a, Some(443)).is_some() as usize;
            }
        }
        let ip_ns = t.elapsed().as_nanos() as f64 / (200.0 * n as f64);
        let t = Instant::now();
        for _ in 0..200 {
            for a in &names {
                h += snap.match_domain(a).is_some() as usize;
            }
        }
        let d_ns = t.elapsed().as_nanos() as f64 / (200.0 * n as f64);
        println!("round {round}: ip {ip_ns:.1} ns, domain(4 labels) {d_ns:.1} ns ({h})");
    }
}
