//! DNS-to-connection correlation: malware resolves a listed domain once and
//! then talks to whatever address it got, an address that is on no list.
//!
//! When an internal host's query for a listed domain (or one whose CNAME
//! chain reaches a listed name) is answered, the answer's addresses are
//! remembered for that host ([`DnsLinks`]); a later flow between the host and
//! one of them is a hit with the domain as indicator (`correlated_from: dns`
//! in the alert).
//!
//! Invariants:
//! - Only answers to a query this engine saw leave the same resolver for the
//!   same host with the same transaction id are learned ([`Pending`]); an
//!   unsolicited or spoofed answer is counted and ignored. Only queries to
//!   port 53 are remembered: mDNS and LLMNR answers teach nothing here.
//! - Each engine owns its links: the pipeline routes every packet of an
//!   internal host to one worker, so the host's answers and its later
//!   connections meet there, whatever the worker count. What a configured
//!   internal resolver looks up is learned by every worker (the pipeline
//!   hands its DNS to all of them), as a link for [`ANY_HOST`]: at the WAN
//!   gateway the resolver asks on behalf of hosts whose queries never cross
//!   the mirror, so any internal host that connects to the address is the
//!   one to look at.
//! - Learning costs O(1) (amortized): one map insert and one queue push; the
//!   oldest links go first when over `cap` (counted), TTLs are clamped to
//!   [`MAX_TTL_S`]. No per-answer copy of the table, no lock, no atomics.
//! - A lookup allocates nothing: a bit filter on the remote address answers
//!   for nearly every packet, then at most two map probes.
//! - Pending queries live in a fixed table of small buckets, one word a
//!   query: a full bucket overwrites its oldest query (counted), never
//!   rescans.

use crate::intel::Indicator;
use crate::packet::FlowKey;
use rustc_hash::FxHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

/// Links learned from longer TTLs expire after this many seconds.
pub const MAX_TTL_S: u32 = 86_400;
/// Links live at least this long (malware often connects a little after a
/// short-TTL answer expired at the resolver).
pub const MIN_TTL_S: u32 = 300;
/// Default bound on links kept per engine.
pub const DEFAULT_CAP: usize = 65_536;

/// The host of a link learned from an internal resolver's lookup: any
/// internal host connecting to the address matches it.
pub const ANY_HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// The DNS name an internal host got an address for.
#[derive(Clone, Debug)]
struct Link {
    /// Shared by every address of one answer: one allocation per answer.
    indicator: Arc<Indicator>,
    expires_ns: i64,
    /// Learn order, to find the oldest when over the cap.
    seq: u64,
}

/// Counters of one engine's link table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub learned: u64,
    pub evicted: u64,
    pub expired: u64,
    /// Links held now (a gauge; summed over engines).
    pub live: u64,
}

impl LinkStats {
    pub fn merge(&mut self, o: &LinkStats) {
        self.learned += o.learned;
        self.evicted += o.evicted;
        self.expired += o.expired;
        self.live += o.live;
    }
}

/// One bit per hashed remote address, set for every remote with a link: a
/// packet to an address with no link (nearly all of them) reads one word of
/// this instead of probing the map. Measured with 65,536 links: a map probe
/// from memory costs ~300 ns on the development VM, the bit test ~5 ns while
/// the 128 KiB stay in L2. Bits of removed links stay set until the next
/// rebuild (a false "maybe", never a false "no").
const FILTER_BITS: usize = 1 << 20;

fn filter_bit(remote: &IpAddr) -> usize {
    // One multiply (Fibonacci hashing), its high bits: the per-packet test
    // costs no hasher state.
    let x = match remote {
        IpAddr::V4(a) => u64::from(u32::from(*a)),
        IpAddr::V6(a) => {
            let v = u128::from(*a);
            (v as u64) ^ ((v >> 64) as u64)
        }
    };
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 44) as usize & (FILTER_BITS - 1)
}

type Key = (IpAddr, IpAddr);

/// One engine's learned links: (host, remote address) -> listed domain.
pub struct DnsLinks {
    /// Seeded per process: the remote addresses come from answers a listed
    /// domain's owner writes, so a public hash would let them aim every
    /// link at one probe chain.
    map: HashMap<Key, Link, foldhash::fast::RandomState>,
    /// Keys in learn order with the `seq` they were learned with; an entry
    /// whose link was refreshed or removed since is stale and skipped.
    order: VecDeque<(Key, u64)>,
    filter: Box<[u64]>,
    /// Links removed since the filter was last rebuilt.
    removed_since_build: usize,
    cap: usize,
    seq: u64,
    stats: LinkStats,
}

impl Default for DnsLinks {
    fn default() -> Self {
        DnsLinks::new(DEFAULT_CAP)
    }
}

impl DnsLinks {
    pub fn new(cap: usize) -> DnsLinks {
        DnsLinks {
            map: HashMap::default(),
            order: VecDeque::new(),
            filter: vec![0u64; FILTER_BITS / 64].into_boxed_slice(),
            removed_since_build: 0,
            cap: cap.max(1),
            seq: 0,
            stats: LinkStats::default(),
        }
    }

    /// Whether nothing is learned (the per-packet fast path).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn stats(&self) -> LinkStats {
        LinkStats {
            live: self.map.len() as u64,
            ..self.stats
        }
    }

    /// Start loading the filter words of both ends of a packet; the
    /// snapshot lookups run meanwhile, and [`DnsLinks::get`] then hits
    /// the cache.
    #[inline]
    pub fn prefetch(&self, a: &IpAddr, b: &IpAddr) {
        if self.map.is_empty() {
            return;
        }
        for ip in [a, b] {
            crate::packet::prefetch_read(&self.filter[filter_bit(ip) / 64]);
        }
    }

    #[inline]
    fn may_have(&self, remote: &IpAddr) -> bool {
        let b = filter_bit(remote);
        self.filter[b / 64] & (1 << (b % 64)) != 0
    }

    /// The domain `host` resolved to `remote`, if the link is still alive
    /// at `ts_ns`, and whether it came from a resolver's lookup
    /// ([`ANY_HOST`]) rather than the host's own.
    #[inline]
    pub fn get(&self, host: IpAddr, remote: IpAddr, ts_ns: i64) -> Option<(&Arc<Indicator>, bool)> {
        if self.map.is_empty() || !self.may_have(&remote) {
            return None;
        }
        let alive = |k: Key| self.map.get(&k).filter(|l| ts_ns <= l.expires_ns);
        alive((host, remote))
            .map(|l| (&l.indicator, false))
            .or_else(|| alive((ANY_HOST, remote)).map(|l| (&l.indicator, true)))
    }

    /// Learn that `host` got `remote` for `indicator` at `ts_ns` with
    /// `ttl_s`: a known (host, remote) is refreshed, and the oldest links go
    /// when over the cap.
    pub fn learn(
        &mut self,
        ts_ns: i64,
        host: IpAddr,
        remote: IpAddr,
        indicator: &Arc<Indicator>,
        ttl_s: u32,
    ) {
        let ttl = ttl_s.clamp(MIN_TTL_S, MAX_TTL_S);
        self.seq += 1;
        let link = Link {
            indicator: indicator.clone(),
            expires_ns: ts_ns.saturating_add(i64::from(ttl) * 1_000_000_000),
            seq: self.seq,
        };
        if self.map.insert((host, remote), link).is_none() {
            self.stats.learned += 1;
        }
        self.order.push_back(((host, remote), self.seq));
        let b = filter_bit(&remote);
        self.filter[b / 64] |= 1 << (b % 64);
        self.trim(ts_ns);
    }

    /// Drop links from the old end of the queue: expired ones, and live
    /// ones while over the cap. Each queue entry is popped once, so this is
    /// O(1) amortized per learned link.
    fn trim(&mut self, ts_ns: i64) {
        while let Some(&(key, seq)) = self.order.front() {
            let current = self.map.get(&key).is_some_and(|l| l.seq == seq);
            if !current {
                self.order.pop_front();
                continue;
            }
            let expired = self.map[&key].expires_ns < ts_ns;
            if !expired && self.map.len() <= self.cap {
                break;
            }
            self.order.pop_front();
            self.map.remove(&key);
            self.removed_since_build += 1;
            if expired {
                self.stats.expired += 1;
            } else {
                self.stats.evicted += 1;
            }
        }
        // Refreshed links leave stale entries behind a live front; compact
        // when they outnumber the links (amortized over as many pushes).
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|l| l.seq == *s));
        }
        if self.removed_since_build > self.cap / 2 + 64 {
            self.rebuild_filter();
        }
    }

    fn rebuild_filter(&mut self) {
        self.filter.fill(0);
        for (_, remote) in self.map.keys() {
            let b = filter_bit(remote);
            self.filter[b / 64] |= 1 << (b % 64);
        }
        self.removed_since_build = 0;
    }
}

/// One DNS exchange as the querier sees it: the answer must come back
/// between the same ends and ports with the same transaction id.
#[derive(Clone, Copy, Debug, Hash)]
pub struct Exchange {
    pub host: IpAddr,
    pub host_port: u16,
    pub resolver: IpAddr,
    pub resolver_port: u16,
    pub id: u16,
}

impl Exchange {
    /// The exchange a DNS message on `flow` belongs to: a query goes from
    /// the host to the resolver, a `response` the other way.
    pub fn of(flow: &FlowKey, id: u16, response: bool) -> Exchange {
        let (host, host_port, resolver, resolver_port) = if response {
            (flow.dst, flow.dst_port, flow.src, flow.src_port)
        } else {
            (flow.src, flow.src_port, flow.dst, flow.dst_port)
        };
        Exchange {
            host,
            host_port,
            resolver,
            resolver_port,
            id,
        }
    }
}

/// Queries awaiting their answer, per engine: an answer is learned from only
/// if its (host, resolver, ports, transaction id) was asked. A fixed table of
/// buckets of [`WAYS`] one-word slots, addressed by the exchange's hash.
///
/// A slot packs a 31-bit tag of the hash (never 0: 0 is an empty slot),
/// whether the query asked for a listed name (so only such answers look
/// names up again), and the time asked in units of 2^20 ns (about 1 ms,
/// compared modulo 2^32: 52 days). One word, not two, halves the table
/// (128 KiB for 16,384 queries): every query touches it at a random place,
/// and it was 6% of the cycles on the DNS-heavy mix at 16 bytes a slot.
pub struct Pending {
    slots: Box<[u64]>,
    mask: usize,
}

/// An answer this long after its query is no longer an answer to it.
const PENDING_NS: i64 = 30_000_000_000;
const TICK_SHIFT: u32 = 20;
const PENDING_TICKS: u32 = (PENDING_NS >> TICK_SHIFT) as u32;
/// Slots per bucket (half a cache line): a burst of queries hashing alike
/// displaces nothing until the bucket is full.
const WAYS: usize = 4;
const LISTED: u64 = 1 << 32;

fn ticks(ts: i64) -> u32 {
    (ts >> TICK_SHIFT) as u32
}

impl Pending {
    /// Room for about `cap` queries (rounded up to a power of two).
    pub fn new(cap: usize) -> Pending {
        let n = cap.max(16).next_power_of_two();
        Pending {
            slots: vec![0; n].into_boxed_slice(),
            mask: n - 1,
        }
    }

    /// The exchange's hash: its high bits make the tag, its low bits the
    /// bucket.
    fn hash(x: &Exchange) -> u64 {
        let mut h = FxHasher::default();
        x.hash(&mut h);
        h.finish()
    }

    fn tag(h: u64) -> u64 {
        ((h >> 33) | 1) << 33
    }

    fn bucket(&mut self, h: u64) -> &mut [u64] {
        let start = (h as usize & self.mask) & !(WAYS - 1);
        &mut self.slots[start..start + WAYS]
    }

    /// Start loading the bucket of `x` (the DNS message is parsed
    /// meanwhile).
    #[inline]
    pub fn prefetch(&self, x: &Exchange) {
        let start = (Self::hash(x) as usize & self.mask) & !(WAYS - 1);
        crate::packet::prefetch_read(self.slots[start..].as_ptr());
    }

    fn live(slot: u64, now: u32) -> bool {
        slot != 0 && now.wrapping_sub(slot as u32) < PENDING_TICKS
    }

    /// Record a query, and whether it asked for a listed name. Returns 1
    /// when a query still awaiting its answer was overwritten to make room
    /// (its answer will count as unsolicited).
    pub fn ask(&mut self, x: Exchange, ts: i64, listed: bool) -> usize {
        let h = Self::hash(&x);
        let (tag, now) = (Self::tag(h), ticks(ts));
        let b = self.bucket(h);
        // The same exchange again, else a free slot, else the oldest.
        let i = b
            .iter()
            .position(|&s| s & !(LISTED | 0xffff_ffff) == tag)
            .or_else(|| b.iter().position(|&s| !Self::live(s, now)))
            .unwrap_or_else(|| {
                (0..WAYS)
                    .max_by_key(|&i| now.wrapping_sub(b[i] as u32))
                    .unwrap_or(0)
            });
        let old = b[i];
        b[i] = tag | if listed { LISTED } else { 0 } | u64::from(now);
        usize::from(Self::live(old, now) && old & !(LISTED | 0xffff_ffff) != tag)
    }

    /// If an answer for `x` answers a query seen in the last 30 s (the
    /// query is consumed): whether that query asked for a listed name.
    pub fn answered(&mut self, x: Exchange, ts: i64) -> Option<bool> {
        let h = Self::hash(&x);
        let (tag, now) = (Self::tag(h), ticks(ts));
        let b = self.bucket(h);
        let s = b
            .iter_mut()
            .find(|s| **s & !(LISTED | 0xffff_ffff) == tag)?;
        let old = std::mem::take(s);
        Self::live(old, now).then_some(old & LISTED != 0)
    }

    /// Queries held (a scan: for tests and reports, not the packet path).
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|&&s| s != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::indicator::IndicatorKind;
    use crate::intel::{FeedMeta, Severity};

    fn ind(d: &str) -> Arc<Indicator> {
        Arc::new(Indicator {
            value: d.into(),
            kind: IndicatorKind::Domain,
            feed: Arc::new(FeedMeta {
                name: "f".into(),
                category: "malware".into(),
                severity: Severity::High,
            }),
            reference: None,
            description: None,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const S: i64 = 1_000_000_000;

    fn value(l: &DnsLinks, h: IpAddr, r: IpAddr, ts: i64) -> Option<(String, bool)> {
        l.get(h, r, ts).map(|(i, via)| (i.value.to_string(), via))
    }

    #[test]
    fn links_expire_refresh_and_stay_bounded() {
        let mut l = DnsLinks::new(3);
        let h = ip("10.0.0.5");
        let r = ip("203.0.113.1");
        l.learn(0, h, r, &ind("a.example"), 60);
        assert_eq!(value(&l, h, r, 100 * S), Some(("a.example".into(), false)));
        assert!(l.get(ip("10.0.0.6"), r, S).is_none(), "other host");
        // MIN_TTL_S applies: alive at 299 s, gone at 301 s.
        assert!(l.get(h, r, 299 * S).is_some());
        assert!(l.get(h, r, 301 * S).is_none());
        // A refresh moves the expiry and keeps one link.
        l.learn(200 * S, h, r, &ind("a.example"), 60);
        assert!(l.get(h, r, 450 * S).is_some());
        assert_eq!(l.len(), 1);
        // Enormous TTLs are clamped.
        let r2 = ip("203.0.113.2");
        l.learn(0, h, r2, &ind("b.example"), u32::MAX);
        assert!(l.get(h, r2, (MAX_TTL_S as i64 + 1) * S).is_none());
        // The cap evicts the oldest links.
        for i in 0..10 {
            let r = ip(&format!("198.51.100.{i}"));
            l.learn(S, h, r, &ind("c.example"), 600);
        }
        assert_eq!(l.len(), 3);
        assert!(l.get(h, ip("198.51.100.9"), 2 * S).is_some());
        assert!(l.get(h, ip("198.51.100.0"), 2 * S).is_none());
        let st = l.stats();
        assert_eq!((st.live, st.learned), (3, 12));
        assert!(st.evicted >= 9, "{st:?}");
    }

    #[test]
    fn a_host_link_wins_over_a_resolver_one() {
        let mut l = DnsLinks::new(16);
        let (h, r) = (ip("10.0.0.5"), ip("203.0.113.9"));
        l.learn(0, ANY_HOST, r, &ind("via.example"), 600);
        assert_eq!(value(&l, h, r, S), Some(("via.example".into(), true)));
        l.learn(0, h, r, &ind("own.example"), 600);
        assert_eq!(value(&l, h, r, S), Some(("own.example".into(), false)));
        assert_eq!(
            value(&l, ip("10.0.0.7"), r, S),
            Some(("via.example".into(), true))
        );
    }

    /// Expired links leave as newer ones are learned, and refreshes do not
    /// grow the learn-order queue: memory follows the links held, not the
    /// answers seen.
    #[test]
    fn expiry_and_refreshes_keep_memory_bounded() {
        let mut l = DnsLinks::new(1000);
        let h = ip("10.0.0.5");
        let i = ind("x.example");
        for n in 0..200_000u32 {
            let r = IpAddr::from([198, 18, (n % 50) as u8, 1]);
            l.learn(i64::from(n) * S, h, r, &i, 300);
            assert!(
                l.order.len() <= 2 * l.map.len() + 65,
                "queue {}",
                l.order.len()
            );
        }
        assert_eq!(l.len(), 50, "50 remotes, refreshed, none expired");
        for n in 0..2000u32 {
            let r = IpAddr::from([198, 19, (n >> 8) as u8, n as u8]);
            l.learn(i64::from(n) * 1000 * S, h, r, &i, 300);
        }
        assert!(
            l.len() <= 2,
            "old links expired as new ones came: {}",
            l.len()
        );
        assert!(l.stats().expired > 1900, "{:?}", l.stats());
        // Removed remotes leave the filter when it is rebuilt.
        let gone = (0..2000u32)
            .filter(|n| l.may_have(&IpAddr::from([198, 19, (n >> 8) as u8, *n as u8])))
            .count();
        assert!(gone < 1000, "{gone} stale filter bits");
    }

    #[test]
    fn only_asked_questions_are_answered() {
        let mut p = Pending::new(16);
        let (h, r) = (ip("10.0.0.5"), ip("10.0.0.1"));
        let x = |hport, id| Exchange {
            host: h,
            host_port: hport,
            resolver: r,
            resolver_port: 53,
            id,
        };
        p.ask(x(5353, 7), 0, true);
        assert_eq!(p.answered(x(5353, 8), 1), None, "wrong transaction id");
        assert_eq!(p.answered(x(5354, 7), 1), None, "wrong port");
        assert_eq!(
            p.answered(x(5353, 7), 1),
            Some(true),
            "asked for a listed name"
        );
        assert_eq!(p.answered(x(5353, 7), 2), None, "an answer is taken once");
        p.ask(x(1, 1), 0, false);
        assert_eq!(p.answered(x(1, 1), PENDING_NS + 1), None, "too late");
        p.ask(x(2, 1), 0, false);
        assert_eq!(p.answered(x(2, 1), 1), Some(false), "an unlisted name");
        let overwritten: usize = (0..100).map(|i| p.ask(x(i, 1), 0, false)).sum();
        assert!(p.len() <= 16);
        assert!(overwritten >= 84, "{overwritten} live queries overwritten");
        // The newest query of a full table is always kept.
        assert_eq!(p.answered(x(99, 1), 1), Some(false));
    }
}
