//! What the heuristics cost one worker's engine: the same frames with
//! `[heuristics]` on (the default) and off, alternated, on an ordinary mix
//! (gateway-small), the generator's unlisted mix (gateway-unlisted), and
//! each repeated to 200,000 frames, and two outbreaks made by
//! `testkit::behaviour`: 300 hosts scanning
//! beside 900 browsing (SYN-heavy), and DGA bursts and DNS
//! tunnels (DNS-heavy). Prints a Markdown table.
//!
//! Usage: cargo bench --bench heuristics -- [ROUNDS] [WORD]   (default 5
//! rounds, every input; WORD keeps the inputs whose name contains it)

use gatewatch::detect::heuristics::Settings;
use gatewatch::detect::{Engine, EngineOptions};
use gatewatch::testkit::attack::{Frames, Tally, push};
use gatewatch::testkit::behaviour::{
    browser, dga_names, lookups, merge, outside, scan, tunnel_names,
};
use gatewatch::testkit::synth::Rng;
use gatewatch::testkit::{T0_US, corpus, ip, one_unit, recipe_with, snapshot_of};
use hickory_proto::op::ResponseCode;
use std::time::Instant;

fn engine(on: bool) -> Engine {
    let heuristics = Settings {
        enabled: on,
        ..Settings::default()
    };
    let options = EngineOptions {
        heuristics,
        ..EngineOptions::default()
    };
    let snap = snapshot_of("ncsc", "botnet-c2", &["evil.example"], &[]);
    recipe_with(
        snap,
        one_unit("U1", "Phòng Một", "10.0.0.0/8 172.16.0.0/12"),
        options,
    )
    .engine(0)
}

/// The frames of a corpus capture, played again and again (each time seven
/// hours later, so its flows and windows are new) up to 200,000: a small
/// capture timed once measures cold caches, not the steady state.
fn capture(name: &str) -> Frames {
    let mut once = Vec::new();
    gatewatch::capture::file::read_file(&corpus(name), |p| once.push((p.ts_ns, p.data.to_vec())));
    let span = once.last().map_or(0, |l| l.0) - once.first().map_or(0, |f| f.0);
    // Longer than the longest beacon period: a capture repeated at a fixed
    // step is a perfect beacon otherwise.
    let step = span + 7 * 3_600_000_000_000;
    let mut out = Vec::new();
    for k in 0.. {
        if out.len() >= 200_000 {
            break;
        }
        out.extend(once.iter().map(|(t, f)| (t + k * step, f.clone())));
    }
    out
}

fn ns(f: Vec<(u64, Vec<u8>)>) -> Frames {
    f.into_iter().map(|(t, x)| (t as i64 * 1_000, x)).collect()
}

fn host(i: u64) -> std::net::IpAddr {
    ip(&format!("10.1.{}.{}", i / 250, 1 + i % 250))
}

fn scan_outbreak() -> Frames {
    let mut parts = Vec::new();
    for i in 0..300u64 {
        let t: Vec<_> = (0..300).map(|j| (outside(i * 1_000 + j), 445)).collect();
        parts.push(scan(host(i), &t, T0_US + i * 5_000, 3_000, Some(25), true));
    }
    for i in 300..1_200u64 {
        parts.push(browser(host(i), i * 100, 60, T0_US + i * 3_000, 15_000));
    }
    ns(merge(parts))
}

fn dns_outbreak() -> Frames {
    let mut rng = Rng::new(42);
    let resolver = ip("8.8.8.8");
    let mut parts = Vec::new();
    for i in 0..2_000u64 {
        let names = dga_names(&mut rng, 30);
        parts.push(lookups(
            host(i),
            resolver,
            &names,
            ResponseCode::NXDomain,
            T0_US + i * 1_000,
            20_000,
        ));
    }
    for i in 2_000..2_300u64 {
        let names = tunnel_names(&mut rng, &format!("t{i}.exfil-example.com"), 200);
        parts.push(lookups(
            host(i),
            resolver,
            &names,
            ResponseCode::NoError,
            T0_US + i * 1_000,
            300_000,
        ));
    }
    ns(merge(parts))
}

/// Seconds for `frames` through a fresh engine, and its heuristic findings.
fn time(frames: &Frames, on: bool) -> (f64, u64) {
    let mut e = engine(on);
    let mut t = Tally::default();
    let t0 = Instant::now();
    push(&mut e, frames, &mut t);
    e.finish(&mut t);
    let secs = t0.elapsed().as_secs_f64();
    (secs, e.stats.heuristics.reported.iter().sum())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let only = args.get(1).cloned().unwrap_or_default();
    let inputs = [
        (
            "ordinary mix (gateway-small)",
            capture("gateway-small/traffic.pcap"),
        ),
        (
            "unlisted mix (gateway-unlisted)",
            capture("gateway-unlisted/traffic.pcap"),
        ),
        ("scan outbreak: 300 scanners, 900 browsers", scan_outbreak()),
        ("DNS outbreak: 2,000 DGA hosts, 300 tunnels", dns_outbreak()),
    ];
    println!("| input | frames | off Mpps | on Mpps | cost | findings |");
    println!("|---|---|---|---|---|---|");
    for (name, frames) in inputs.iter().filter(|(n, _)| n.contains(&only)) {
        let (mut off, mut on, mut found) = (f64::MAX, f64::MAX, 0);
        for _ in 0..rounds {
            off = off.min(time(frames, false).0);
            let (s, f) = time(frames, true);
            on = on.min(s);
            found = f;
        }
        let mpps = |s: f64| frames.len() as f64 / s / 1e6;
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:+.1}% | {found} |",
            frames.len(),
            mpps(off),
            mpps(on),
            (on / off - 1.0) * 100.0
        );
    }
}
