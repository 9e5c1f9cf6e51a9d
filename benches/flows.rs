//! Memory and speed of the per-flow state at gateway scale: the TCP flow
//! table holding 1M concurrent connections, the same table under a SYN
//! flood once full, and the DNS correlation cache at its cap.
//!
//! Usage: cargo bench --bench flows -- [FLOWS]   (default 1,048,576)

use gatewatch::detect::correlate::{DEFAULT_CAP, DnsLinks};
use gatewatch::detect::{Engine, EngineOptions, FlowRecord, Hit, Sink};
use gatewatch::intel::indicator::IndicatorKind;
use gatewatch::intel::{FeedMeta, Indicator, Severity};
use gatewatch::metrics::rss_mib;
use gatewatch::packet::{LinkType, RawPacket};
use gatewatch::tcp::flow::FlowConfig;
use gatewatch::testkit::tcp::{SYN, SYN_ACK, segment};
use gatewatch::testkit::{one_unit, recipe_with, snapshot_of};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

#[derive(Default)]
struct Count {
    hits: u64,
    flows: u64,
}

impl Sink for Count {
    fn hit(&mut self, _: Hit) {
        self.hits += 1;
    }
    fn flow(&mut self, _: FlowRecord) {
        self.flows += 1;
    }
}

/// Client `i`: 10.x.y.z with a port, talking to one of 4,096 servers.
fn ends(i: u64) -> (IpAddr, u16, IpAddr) {
    let c = Ipv4Addr::from(0x0a00_0000 | ((i as u32 / 16) & 0x00ff_ffff));
    let port = 20_000 + (i % 16) as u16 * 1000 + (i / 16 % 1000) as u16;
    let s = Ipv4Addr::from(0xcb00_7100 | (i % 4096) as u32);
    (c.into(), port, s.into())
}

/// SYN (and SYN-ACK when `answered`) frames of flows `from..to`, built
/// before the clock starts: (timestamp, frame) in one arena.
fn frames(from: u64, to: u64, answered: bool) -> (Vec<u8>, Vec<(i64, usize, usize)>) {
    let mut arena = Vec::new();
    let mut at = Vec::new();
    let mut push = |ts: i64, f: Vec<u8>| {
        at.push((ts, arena.len(), f.len()));
        arena.extend_from_slice(&f);
    };
    for i in from..to {
        let (c, port, s) = ends(i);
        let ts = 1_700_000_000_000_000_000 + i as i64 * 1_000;
        push(ts, segment(c, s, port, 443, i as u32, SYN, b""));
        if answered {
            push(ts + 10, segment(s, c, 443, port, 7, SYN_ACK, b""));
        }
    }
    (arena, at)
}

fn feed(e: &mut Engine, sink: &mut Count, f: &(Vec<u8>, Vec<(i64, usize, usize)>)) -> u64 {
    for &(ts, off, len) in &f.1 {
        e.process(&raw(ts, &f.0[off..off + len]), sink);
    }
    f.1.len() as u64
}

fn raw(ts: i64, data: &[u8]) -> RawPacket<'_> {
    RawPacket {
        ts_ns: ts,
        orig_len: data.len() as u32,
        link: LinkType::Ethernet,
        data,
    }
}

fn main() {
    let flows: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1 << 20);
    let mut sink = Count::default();
    flow_table(flows, &mut sink);
    correlation_cache();
    std::hint::black_box(sink.hits + sink.flows);
}

/// `flows` concurrent established flows in one worker's table, then a SYN
/// flood into the full table.
fn flow_table(flows: u64, sink: &mut Count) {
    let snap = snapshot_of("bench", "botnet-c2", &["c2.example"], &[]);
    let units = one_unit("U1", "All", "10.0.0.0/8");
    let cfg = FlowConfig {
        max_flows: flows as usize,
        ..FlowConfig::default()
    };
    let options = EngineOptions {
        flows: cfg,
        ..EngineOptions::default()
    };
    let mut e = recipe_with(snap, units, options).engine(1);
    let established = frames(0, flows, true);
    let flood = frames(flows, flows * 2, false);
    let before = rss_mib();
    let t = Instant::now();
    let pkts = feed(&mut e, sink, &established);
    let secs = t.elapsed().as_secs_f64();
    let after = rss_mib();
    let table = e.flows().heap_bytes() as f64;
    println!("TCP flow table, one worker, {flows} concurrent established flows:");
    println!(
        "  {pkts} packets in {secs:.2} s ({:.2} Mpps, creating a flow per SYN)",
        pkts as f64 / secs / 1e6
    );
    println!(
        "  table heap {:.1} MiB = {:.0} bytes per flow; RSS growth {:.1} MiB",
        table / 1048576.0,
        table / flows as f64,
        after - before
    );
    assert_eq!(e.flows().len() as u64, flows);
    let t = Instant::now();
    let flood = feed(&mut e, sink, &flood);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "SYN flood into the full table: {flood} new SYNs in {secs:.2} s ({:.2} Mpps), \
         {} evictions, table still {} flows, RSS {:.1} MiB",
        flood as f64 / secs / 1e6,
        e.stats.flows.evicted,
        e.flows().len(),
        rss_mib()
    );
}

/// One engine's DNS correlation table filled to four times its cap, one
/// answer at a time (learning is O(1): the cost per link must not grow with
/// the table), then looked up.
fn correlation_cache() {
    let mut links = DnsLinks::new(DEFAULT_CAP);
    let before = rss_mib();
    let ind = Arc::new(Indicator {
        value: "c2.example".into(),
        kind: IndicatorKind::Domain,
        feed: Arc::new(FeedMeta {
            name: "bench".into(),
            category: "botnet-c2".into(),
            severity: Severity::High,
        }),
        reference: None,
        description: None,
    });
    let remote = |i: u64| IpAddr::from(Ipv4Addr::from(0xc633_0000 | (i as u32 & 0xffff)));
    let total = DEFAULT_CAP as u64 * 4;
    let t = Instant::now();
    for i in 0..total {
        links.learn(i as i64, ends(i).0, remote(i), &ind, 3600);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "DNS correlation cache at its cap: {} links (cap {DEFAULT_CAP}), learned {total} one \
         by one in {secs:.3} s ({:.0} ns per answer), {} evicted; RSS growth {:.1} MiB",
        links.len(),
        secs * 1e9 / total as f64,
        links.stats().evicted,
        rss_mib() - before
    );
    let t = Instant::now();
    let n = 1_000_000u64;
    let found: u64 = (0..n)
        .map(|i| u64::from(links.get(ends(i).0, remote(i), 1).is_some()))
        .sum();
    println!(
        "  lookup: {:.0} ns per (host, address) ({found} of {n} present)",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
