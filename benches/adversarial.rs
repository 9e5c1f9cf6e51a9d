//! Throughput and memory of one worker's engine under each attack of
//! `testkit::attack` (the bounds are asserted in `tests/adversarial.rs`),
//! next to the same engine on an ordinary mix (the gateway-small capture
//! replayed in memory) for comparison, in the same run.
//!
//! Usage: cargo bench --bench adversarial -- [SCALE]   (default 1)

use gatewatch::detect::{Engine, EngineOptions};
use gatewatch::metrics::rss_mib;
use gatewatch::tcp::flow::FlowConfig;
use gatewatch::testkit::attack::{
    Frames, Tally, dns_answer_flood, flow_collisions, half_streams, name_flood, push,
};
use gatewatch::testkit::{corpus, one_unit, recipe_with, snapshot_of};
use std::time::Instant;

fn engine() -> Engine {
    let flows = FlowConfig {
        max_flows: 65_536,
        reassembly_bytes: 64 << 20,
        ..FlowConfig::default()
    };
    let options = EngineOptions {
        flows,
        ..EngineOptions::default()
    };
    let snap = snapshot_of("ncsc", "botnet-c2", &["evil.example"], &[]);
    recipe_with(snap, one_unit("U1", "Phòng Một", "10.1.0.0/16"), options).engine(0)
}

/// The ordinary mix: every Ethernet frame of gateway-small, times kept.
fn ordinary() -> Frames {
    let mut out = Vec::new();
    gatewatch::capture::file::read_file(&corpus("gateway-small/traffic.pcap"), |p| {
        out.push((p.ts_ns, p.data.to_vec()))
    });
    out
}

fn row(name: &str, frames: &Frames) {
    let mut e = engine();
    let mut t = Tally::default();
    let before = rss_mib();
    let t0 = Instant::now();
    push(&mut e, frames, &mut t);
    let secs = t0.elapsed().as_secs_f64();
    let s = &e.stats;
    println!(
        "| {name} | {} | {:.2} | {:+.1} | {} flows, {:.1} MiB held for reassembly, {} names, {} DNS links | {} evicted flows, {} reassembly give-ups, {} names over the per-datagram limit, {} unsolicited answers |",
        frames.len(),
        frames.len() as f64 / secs / 1e6,
        rss_mib() - before,
        e.flows().len(),
        s.flows.reassembly_bytes as f64 / 1048576.0,
        e.known_names().len(),
        e.links().len(),
        s.flows.evicted,
        s.flows.reassembly_dropped,
        s.host_names_over_limit,
        s.dns_answers_unsolicited,
    );
}

fn main() {
    let scale: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1);
    println!("| load (one worker) | packets | Mpkt/s | RSS MiB | state held after | counted |");
    println!("|---|---|---|---|---|---|");
    row("ordinary mix (gateway-small)", &ordinary());
    row(
        "colliding flow tuples (SYNs)",
        &flow_collisions(500_000 * scale),
    );
    row(
        "NetBIOS name flood, 240 names/datagram",
        &name_flood(20_000 * scale),
    );
    row(
        "DNS answer flood, 16 addresses each",
        &dns_answer_flood(200_000 * scale),
    );
    row("half-filled HTTP streams", &half_streams(20_000 * scale));
    whole_table_copy();
}

/// What every new host name cost before issue 14: a copy of the whole
/// name table (here at 65,536 addresses, as the flood leaves it).
fn whole_table_copy() {
    use gatewatch::protocols::hostnames::NameSource;
    use gatewatch::protocols::hostnames::known::Known;
    use std::net::{IpAddr, Ipv4Addr};
    let map: rustc_hash::FxHashMap<IpAddr, Known> = (0..65_536u32)
        .map(|i| {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 | i));
            let k = Known {
                name: format!("PC-{i}").into(),
                mac: None,
                source: NameSource::Netbios,
                seen_ns: i64::from(i),
            };
            (ip, k)
        })
        .collect();
    let n = 50;
    let t0 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(map.clone());
    }
    let per = t0.elapsed().as_secs_f64() / f64::from(n) * 1e3;
    println!(
        "before issue 14 each new name copied the whole table: one copy at 65,536 addresses \
         takes {per:.2} ms here, so one flood datagram (240 names, no cap then) cost about {:.0} ms",
        per * 240.0
    );
}
