//! Heuristics: infected hosts that no list names yet.
//!
//! - `scan.rs`: connection attempts to many addresses on one port, or many
//!   ports of one address, mostly unanswered (worms, lateral movement);
//! - `dga.rs`: NXDOMAIN answers for many random-looking registered domains;
//! - `tunnel.rs`: many long high-entropy names under one registered domain;
//! - `beacon.rs`: connections to one destination at a steady period;
//! - sinkhole answers (an answer's address is on an IP feed) are matched in
//!   `detect/dns.rs`, since they need the snapshot.
//!
//! Hot-path rules: state lives in fixed [`table::Table`]s made at start
//! (no allocation per packet, eviction counted); a packet costs one bucket
//! probe per table it concerns, and only SYNs, SYN-ACKs and DNS messages
//! concern any. A finding allocates (its evidence), once per report.

mod beacon;
mod dga;
mod names;
mod scan;
pub mod settings;
pub(super) mod table;
mod tunnel;

pub use settings::Settings;

use crate::intel::{FeedMeta, Severity};
use ipnet::IpNet;
use rustc_hash::FxHasher;
use serde::Serialize;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

/// Which heuristic fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Heuristic {
    Scan,
    Dga,
    SinkholeAnswer,
    DnsTunnel,
    Beacon,
}

impl Heuristic {
    pub const ALL: [Heuristic; 5] = [
        Heuristic::Scan,
        Heuristic::Dga,
        Heuristic::SinkholeAnswer,
        Heuristic::DnsTunnel,
        Heuristic::Beacon,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Heuristic::Scan => "scan",
            Heuristic::Dga => "dga",
            Heuristic::SinkholeAnswer => "sinkhole_answer",
            Heuristic::DnsTunnel => "dns_tunnel",
            Heuristic::Beacon => "beacon",
        }
    }

    /// The alert category (EVE `alert.category`, the report's column).
    pub fn category(self) -> &'static str {
        match self {
            Heuristic::Scan => "scanning",
            Heuristic::Dga => "dga",
            Heuristic::SinkholeAnswer => "sinkhole",
            Heuristic::DnsTunnel => "dns-tunnel",
            Heuristic::Beacon => "suspicious-beaconing",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Heuristic::Beacon => Severity::Low,
            _ => Severity::High,
        }
    }

    /// The pseudo-feed its hits are filed under in the store and exports.
    pub fn feed(self) -> FeedMeta {
        FeedMeta {
            name: format!("heuristic:{}", self.as_str()),
            category: self.category().into(),
            severity: self.severity(),
        }
    }
}

/// What a heuristic adds to a hit.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub heuristic: Heuristic,
    /// What made it fire: counts, ports, periods, sample names.
    pub evidence: serde_json::Value,
    /// The EVE signature text, in words.
    pub signature: String,
    /// Whether the host counts as an offender: a beacon is a suspicion
    /// unless `[heuristics.beacon] offender = true`.
    pub offender: bool,
}

/// A heuristic's report, before the engine attributes it.
pub(super) struct Finding {
    pub heuristic: Heuristic,
    pub ts: i64,
    pub host: IpAddr,
    /// The target (scan, beacon) or the DNS server (DGA, tunnel).
    pub remote: IpAddr,
    pub port: u16,
    pub proto: u8,
    pub indicator: String,
    pub observed: String,
    pub evidence: serde_json::Value,
    pub signature: String,
}

/// Counters of the heuristics of one engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeuristicStats {
    pub reported: [u64; Heuristic::ALL.len()],
    /// Findings on an allowlisted host or destination: not reported.
    pub allowlisted: u64,
    /// Live entries pushed out of a full table: scan, dga, tunnel, beacon.
    pub evicted: [u64; 4],
    /// Scan candidates dropped because too many waited at once.
    pub candidates_dropped: u64,
}

impl HeuristicStats {
    pub fn merge(&mut self, o: &HeuristicStats) {
        for (a, b) in self.reported.iter_mut().zip(o.reported) {
            *a += b;
        }
        for (a, b) in self.evicted.iter_mut().zip(o.evicted) {
            *a += b;
        }
        self.allowlisted += o.allowlisted;
        self.candidates_dropped += o.candidates_dropped;
    }

    pub fn counters(&self) -> [(&'static str, u64); 12] {
        let r = &self.reported;
        let e = &self.evicted;
        [
            ("heuristic_scan", r[0]),
            ("heuristic_dga", r[1]),
            ("heuristic_sinkhole_answer", r[2]),
            ("heuristic_dns_tunnel", r[3]),
            ("heuristic_beacon", r[4]),
            ("heuristic_allowlisted", self.allowlisted),
            ("heuristic_scan_evicted", e[0]),
            ("heuristic_dga_evicted", e[1]),
            ("heuristic_tunnel_evicted", e[2]),
            ("heuristic_beacon_evicted", e[3]),
            ("heuristic_scan_candidates_dropped", self.candidates_dropped),
            ("heuristic_reported", r.iter().sum()),
        ]
    }
}

/// Parsed allowlists: hosts, destination networks, destination domains.
#[derive(Default)]
pub(super) struct AllowSet {
    hosts: Vec<IpNet>,
    nets: Vec<IpNet>,
    domains: Vec<String>,
}

impl AllowSet {
    fn of(lists: &[settings::Allow<'_>]) -> AllowSet {
        let mut a = AllowSet::default();
        for l in lists {
            a.hosts
                .extend(l.hosts.iter().filter_map(|h| settings::parse_net(h)));
            for d in l.destinations {
                match settings::parse_net(d) {
                    Some(n) => a.nets.push(n),
                    None => a.domains.extend(settings::parse_domain(d)),
                }
            }
        }
        a
    }

    pub fn host(&self, ip: IpAddr) -> bool {
        self.hosts.iter().any(|n| n.contains(&ip))
    }

    /// Cheap when the list is empty, as it nearly always is.
    pub fn destination(&self, ip: IpAddr) -> bool {
        !self.nets.is_empty() && self.nets.iter().any(|n| n.contains(&ip))
    }

    pub fn domain(&self, name: &str) -> bool {
        !self.domains.is_empty() && names::under_any(name, &self.domains)
    }
}

/// The settings, compiled once per run and shared by its engines.
pub struct Rules {
    pub settings: Settings,
    scan: AllowSet,
    dga: AllowSet,
    pub(super) sinkhole: AllowSet,
    tunnel: AllowSet,
    beacon: AllowSet,
    feeds: [Arc<FeedMeta>; Heuristic::ALL.len()],
    workers: usize,
}

impl Rules {
    /// `workers` engines share `settings.max_tracked`.
    pub fn new(settings: Settings, workers: usize) -> Rules {
        let s = &settings;
        let g = s.allow();
        let on = |e: bool| s.enabled && e;
        let mut settings = settings.clone();
        settings.scan.enabled = on(s.scan.enabled);
        settings.dga.enabled = on(s.dga.enabled);
        settings.sinkhole.enabled = on(s.sinkhole.enabled);
        settings.tunnel.enabled = on(s.tunnel.enabled);
        settings.beacon.enabled = on(s.beacon.enabled);
        Rules {
            scan: AllowSet::of(&[g, s.scan.allow()]),
            dga: AllowSet::of(&[g, s.dga.allow()]),
            sinkhole: AllowSet::of(&[g, s.sinkhole.allow()]),
            tunnel: AllowSet::of(&[g, s.tunnel.allow()]),
            beacon: AllowSet::of(&[g, s.beacon.allow()]),
            feeds: Heuristic::ALL.map(|h| Arc::new(h.feed())),
            workers: workers.max(1),
            settings,
        }
    }

    pub(super) fn feed(&self, h: Heuristic) -> &Arc<FeedMeta> {
        &self.feeds[h as usize]
    }

    fn share(&self) -> usize {
        (self.settings.max_tracked / self.workers).max(64)
    }
}

/// One engine's heuristic state.
pub struct Heuristics {
    pub(super) rules: Arc<Rules>,
    scan: scan::Scans,
    dga: dga::Dga,
    tunnel: tunnel::Tunnels,
    beacon: beacon::Beacons,
    pub stats: HeuristicStats,
    /// Findings of the current packet (or idle tick), for the engine.
    pub(super) found: Vec<Finding>,
}

impl Heuristics {
    pub fn new(rules: Arc<Rules>) -> Heuristics {
        let n = rules.share();
        let s = &rules.settings;
        Heuristics {
            scan: scan::Scans::new(if s.scan.enabled { n } else { 64 }),
            // Hosts with random NXDOMAINs or encoded names are few: a
            // sixteenth of the entries holds them (a flood is evicted,
            // counted).
            dga: dga::Dga::new(if s.dga.enabled { n / 16 } else { 64 }),
            tunnel: tunnel::Tunnels::new(if s.tunnel.enabled { n / 16 } else { 64 }),
            beacon: beacon::Beacons::new(if s.beacon.enabled { n } else { 64 }),
            stats: HeuristicStats::default(),
            found: Vec::new(),
            rules,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// A TCP segment with SYN set: an attempt (no ACK) from `src`, or an
    /// answer (SYN-ACK) to `dst`. `src_in`/`dst_in`: which ends are internal.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_syn(
        &mut self,
        ts: i64,
        src: IpAddr,
        sp: u16,
        dst: IpAddr,
        dp: u16,
        ack: bool,
        src_in: bool,
        dst_in: bool,
    ) {
        let r = &*self.rules;
        if ack {
            if dst_in && r.settings.scan.enabled {
                self.scan.answered(ts, dst, src, sp);
            }
            return;
        }
        if !src_in {
            return;
        }
        if r.settings.scan.enabled && !r.scan.destination(dst) {
            self.scan.attempt(&r.settings.scan, ts, src, dst, dp);
        }
        if r.settings.beacon.enabled && !dst_in && !r.beacon.destination(dst) {
            self.beacon
                .connect(&r.settings.beacon, ts, src, dst, dp, &mut self.found);
        }
    }

    /// Start loading what [`Heuristics::on_syn`] will touch for this
    /// segment (called right after decoding, so the loads overlap the
    /// packet's other work).
    #[inline]
    pub(super) fn prefetch_syn(&self, src: IpAddr, sp: u16, dst: IpAddr, dp: u16, ack: bool) {
        let s = &self.rules.settings;
        if ack {
            if s.scan.enabled {
                self.scan.prefetch(dst, sp);
            }
            return;
        }
        if s.scan.enabled {
            self.scan.prefetch(src, dp);
        }
        if s.beacon.enabled {
            self.beacon.prefetch(src, dst, dp);
        }
    }

    /// Judge scan candidates whose wait is over (also called when idle).
    pub(super) fn tick(&mut self, now: i64) {
        if self.rules.settings.scan.enabled {
            self.scan
                .confirm(&self.rules.settings.scan, now, &mut self.found);
        }
    }

    /// An NXDOMAIN answer to internal host `host` for `name` (lower case).
    pub(super) fn on_nxdomain(&mut self, ts: i64, host: IpAddr, server: IpAddr, name: &str) {
        let r = &*self.rules;
        if r.settings.dga.enabled && !r.dga.domain(name) {
            let f = self.dga.nxdomain(&r.settings.dga, ts, host, server, name);
            self.found.extend(f);
        }
    }

    /// A query from internal host `host` for `name` (lower case).
    pub(super) fn on_query(&mut self, ts: i64, host: IpAddr, server: IpAddr, name: &str) {
        let r = &*self.rules;
        if r.settings.tunnel.enabled && !r.tunnel.domain(name) {
            let f = self
                .tunnel
                .query(&r.settings.tunnel, ts, host, server, name);
            self.found.extend(f);
        }
    }

    /// Whether the allowlists of `h` name `host` or `remote`.
    pub(super) fn allowed(&self, h: Heuristic, host: IpAddr, remote: IpAddr) -> bool {
        let r = &self.rules;
        let a = match h {
            Heuristic::Scan => &r.scan,
            Heuristic::Dga => &r.dga,
            Heuristic::SinkholeAnswer => &r.sinkhole,
            Heuristic::DnsTunnel => &r.tunnel,
            Heuristic::Beacon => &r.beacon,
        };
        a.host(host) || a.destination(remote)
    }

    /// Copy the tables' eviction counts into the stats.
    pub(super) fn sync_stats(&mut self) {
        self.stats.evicted = [
            self.scan.evicted(),
            self.dga.evicted(),
            self.tunnel.evicted(),
            self.beacon.evicted(),
        ];
        self.stats.candidates_dropped = self.scan.dropped;
    }

    /// Entries in use per table (walks them: tests and gauges only).
    pub fn live(&self) -> [usize; 4] {
        [
            self.scan.live(),
            self.dga.live(),
            self.tunnel.live(),
            self.beacon.live(),
        ]
    }
}

/// An odd 64-bit key for a tuple (tables treat 0 as empty).
pub(super) fn key(parts: impl Hash) -> u64 {
    let mut h = FxHasher::default();
    parts.hash(&mut h);
    h.finish() | 1
}

/// Bits set: a count of distinct values that never exceeds the truth (two
/// values may share a bit). Thresholds compare against it, so a host is
/// never reported because an estimate ran high.
pub(super) fn at_least(bits: &[u64]) -> u32 {
    bits.iter().map(|w| w.count_ones()).sum()
}

/// `n` distinct values whose bits were set at random in `bits`: the
/// linear-counting estimate (exact while few collide), for the evidence.
pub(super) fn distinct(bits: &[u64]) -> u32 {
    let m = (bits.len() * 64) as f64;
    let zero = bits.iter().map(|w| w.count_zeros()).sum::<u32>() as f64;
    if zero == 0.0 {
        return (m * m.ln()) as u32;
    }
    (-m * (zero / m).ln()).round() as u32
}

/// Set the bit for `v` in `bits`; true when it was clear.
pub(super) fn set_bit(bits: &mut [u64], v: u64) -> bool {
    // The splitmix64 finaliser: Fx keys of nearby values differ in few
    // bits, and linear counting needs the bit positions uniform.
    let mut z = v ^ (v >> 30);
    z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^= z >> 27;
    z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let i = z % (bits.len() * 64) as u64;
    let (w, b) = ((i / 64) as usize, i % 64);
    let was = bits[w] >> b & 1;
    bits[w] |= 1 << b;
    was == 0
}

/// A short name kept in a table entry without allocating: the evidence's
/// sample names.
#[derive(Clone, Copy)]
pub(super) struct Sample {
    len: u8,
    buf: [u8; 63],
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            len: 0,
            buf: [0; 63],
        }
    }
}

impl Sample {
    pub fn of(s: &str) -> Sample {
        let mut x = Sample::default();
        let n = s.len().min(63);
        // Cut on a character boundary (names are ASCII; be safe anyway).
        let n = (0..=n).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        x.buf[..n].copy_from_slice(&s.as_bytes()[..n]);
        x.len = n as u8;
        x
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_counting_is_close() {
        for n in [10u64, 32, 64, 200] {
            let mut bits = [0u64; 4];
            for v in 0..n {
                set_bit(&mut bits, key(v));
            }
            let d = distinct(&bits) as f64;
            assert!((d - n as f64).abs() <= n as f64 * 0.12 + 1.0, "{n}: {d}");
        }
    }

    #[test]
    fn samples_cut_long_names() {
        let long = "a".repeat(100);
        assert_eq!(Sample::of(&long).as_str().len(), 63);
        assert_eq!(Sample::of("x.com").as_str(), "x.com");
    }
}
