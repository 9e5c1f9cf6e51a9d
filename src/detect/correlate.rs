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
//!   unsolicited or spoofed answer is counted and ignored.
//! - Memory is bounded: at most `cap` links (the least recently learned go
//!   first, counted), TTLs clamped to [`MAX_TTL_S`]; pending queries are
//!   capped too.
//! - Readers take no lock: the links are an immutable map behind arc-swap,
//!   replaced copy-on-write. Learning is rare (answers for listed domains),
//!   so the copy is cheap next to what it saves on every packet.
//! - Workers share one `DnsLinks`: the DNS exchange and the later connection
//!   are different flows and may land on different workers.
//! - A link learned from a configured internal resolver's own lookup is for
//!   [`ANY_HOST`]: at the WAN gateway the resolver asks on behalf of hosts
//!   whose queries never cross the mirror, so any internal host that then
//!   connects to the address is the one to look at.

use crate::intel::Indicator;
use arc_swap::ArcSwap;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Links learned from longer TTLs expire after this many seconds.
pub const MAX_TTL_S: u32 = 86_400;
/// Links live at least this long (malware often connects a little after a
/// short-TTL answer expired at the resolver).
pub const MIN_TTL_S: u32 = 300;
/// Default bound on links kept.
pub const DEFAULT_CAP: usize = 65_536;

/// The host of a link learned from an internal resolver's lookup: any
/// internal host connecting to the address matches it.
pub const ANY_HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

/// An address some internal host got for a listed domain.
#[derive(Clone, Debug)]
pub struct Link {
    pub host: IpAddr,
    /// Shared by every address of one answer (and cheap to copy when the
    /// map is rebuilt): one allocation per answer, not per link.
    pub indicator: Arc<Indicator>,
    pub expires_ns: i64,
    learned: u64,
}

#[derive(Default)]
struct Links {
    by_remote: FxHashMap<IpAddr, Vec<Link>>,
    len: usize,
    /// One bit per hashed remote address, set for every key of
    /// `by_remote`: a packet to an address with no link (nearly all of
    /// them) reads one word of this instead of probing the map. Measured
    /// with 65,536 links: a map probe from memory costs ~300 ns on the
    /// development VM, the bit test ~5 ns while the 128 KiB stay in L2.
    filter: Vec<u64>,
}

const FILTER_BITS: usize = 1 << 20;

fn filter_bit(remote: &IpAddr) -> usize {
    let mut h = FxHasher::default();
    remote.hash(&mut h);
    // Fx's low bits are weak for small keys: take the high ones.
    (h.finish() >> 44) as usize & (FILTER_BITS - 1)
}

impl Links {
    fn build_filter(&mut self) {
        let mut f = vec![0u64; FILTER_BITS / 64];
        for r in self.by_remote.keys() {
            let b = filter_bit(r);
            f[b / 64] |= 1 << (b % 64);
        }
        self.filter = f;
    }

    #[inline]
    fn may_have(&self, remote: &IpAddr) -> bool {
        let b = filter_bit(remote);
        self.filter
            .get(b / 64)
            .is_some_and(|w| w & (1 << (b % 64)) != 0)
    }
}

/// Counters of the link table.
#[derive(Default, Debug)]
pub struct LinkStats {
    pub learned: AtomicU64,
    pub evicted: AtomicU64,
    pub expired: AtomicU64,
}

/// The shared table of learned links.
pub struct DnsLinks {
    links: ArcSwap<Links>,
    cap: usize,
    seq: AtomicU64,
    pub stats: LinkStats,
}

impl Default for DnsLinks {
    fn default() -> Self {
        DnsLinks::new(DEFAULT_CAP)
    }
}

impl DnsLinks {
    pub fn new(cap: usize) -> DnsLinks {
        DnsLinks {
            links: ArcSwap::from_pointee(Links::default()),
            cap: cap.max(1),
            seq: AtomicU64::new(0),
            stats: LinkStats::default(),
        }
    }

    /// Whether nothing is learned (the per-packet fast path).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.links.load().len == 0
    }

    pub fn len(&self) -> usize {
        self.links.load().len
    }

    /// The domain `host` resolved to `remote`, if the link is still alive
    /// at `ts_ns`, and whether it came from a resolver's lookup
    /// ([`ANY_HOST`]) rather than the host's own.
    #[inline]
    pub fn get(&self, host: IpAddr, remote: IpAddr, ts_ns: i64) -> Option<(Indicator, bool)> {
        let links = self.links.load();
        if links.len == 0 {
            return None;
        }
        if !links.may_have(&remote) {
            return None;
        }
        let v = links.by_remote.get(&remote)?;
        let alive = |l: &&Link| ts_ns <= l.expires_ns;
        v.iter()
            .filter(alive)
            .find(|l| l.host == host)
            .or_else(|| v.iter().filter(alive).find(|l| l.host == ANY_HOST))
            .map(|l| (Indicator::clone(&l.indicator), l.host == ANY_HOST))
    }

    /// Learn `(host, remote, indicator, ttl_s)` at `ts_ns`: expired links are
    /// dropped, a known (host, remote) is refreshed, and the oldest links go
    /// when over the cap.
    pub fn learn(&self, ts_ns: i64, new: &[(IpAddr, IpAddr, Arc<Indicator>, u32)]) {
        if new.is_empty() {
            return;
        }
        self.links.rcu(|cur| {
            let mut next = Links::default();
            let mut expired = 0;
            for (remote, v) in &cur.by_remote {
                let keep: Vec<Link> = v
                    .iter()
                    .filter(|l| {
                        let alive = l.expires_ns >= ts_ns;
                        expired += u64::from(!alive);
                        alive
                    })
                    .cloned()
                    .collect();
                if !keep.is_empty() {
                    next.len += keep.len();
                    next.by_remote.insert(*remote, keep);
                }
            }
            self.stats.expired.fetch_add(expired, Ordering::Relaxed);
            for (host, remote, ind, ttl) in new {
                let ttl = (*ttl).clamp(MIN_TTL_S, MAX_TTL_S);
                let link = Link {
                    host: *host,
                    indicator: ind.clone(),
                    expires_ns: ts_ns.saturating_add(i64::from(ttl) * 1_000_000_000),
                    learned: self.seq.fetch_add(1, Ordering::Relaxed),
                };
                let v = next.by_remote.entry(*remote).or_default();
                match v.iter_mut().find(|l| l.host == *host) {
                    Some(l) => *l = link,
                    None => {
                        v.push(link);
                        next.len += 1;
                        self.stats.learned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if next.len > self.cap {
                let mut order: Vec<u64> = next
                    .by_remote
                    .values()
                    .flat_map(|v| v.iter().map(|l| l.learned))
                    .collect();
                order.sort_unstable();
                let cut = order[next.len - self.cap];
                let mut evicted = 0;
                next.by_remote.retain(|_, v| {
                    let before = v.len();
                    v.retain(|l| l.learned >= cut);
                    evicted += before - v.len();
                    !v.is_empty()
                });
                next.len -= evicted;
                self.stats
                    .evicted
                    .fetch_add(evicted as u64, Ordering::Relaxed);
            }
            next.build_filter();
            next
        });
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

/// Queries awaiting their answer, per engine: an answer is learned from only
/// if its (host, resolver, ports, transaction id) was asked.
pub struct Pending {
    asked: FxHashMap<u64, i64>,
    cap: usize,
}

/// An answer this long after its query is no longer an answer to it.
const PENDING_NS: i64 = 30_000_000_000;

impl Pending {
    pub fn new(cap: usize) -> Pending {
        Pending {
            asked: FxHashMap::default(),
            cap: cap.max(16),
        }
    }

    fn key(x: Exchange) -> u64 {
        let mut h = FxHasher::default();
        x.hash(&mut h);
        h.finish()
    }

    /// Record a query. Returns how many old queries were forgotten to stay
    /// under the cap.
    pub fn ask(&mut self, x: Exchange, ts: i64) -> usize {
        let mut forgotten = 0;
        if self.asked.len() >= self.cap {
            let before = self.asked.len();
            self.asked.retain(|_, t| ts.saturating_sub(*t) < PENDING_NS);
            if self.asked.len() >= self.cap {
                self.asked.clear();
            }
            forgotten = before - self.asked.len();
        }
        self.asked.insert(Self::key(x), ts);
        forgotten
    }

    /// Whether an answer for `x` answers a query seen in the last 30 s (the
    /// query is consumed).
    pub fn answered(&mut self, x: Exchange, ts: i64) -> bool {
        match self.asked.remove(&Self::key(x)) {
            Some(t) => ts.saturating_sub(t) <= PENDING_NS,
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.asked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.asked.is_empty()
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

    #[test]
    fn links_expire_refresh_and_stay_bounded() {
        let l = DnsLinks::new(3);
        let s = 1_000_000_000i64;
        let h = ip("10.0.0.5");
        l.learn(0, &[(h, ip("203.0.113.1"), ind("a.example"), 60)]);
        assert_eq!(
            &*l.get(h, ip("203.0.113.1"), 100 * s).unwrap().0.value,
            "a.example"
        );
        assert!(
            l.get(ip("10.0.0.6"), ip("203.0.113.1"), s).is_none(),
            "other host"
        );
        // MIN_TTL_S applies: alive at 299 s, gone at 301 s.
        assert!(l.get(h, ip("203.0.113.1"), 299 * s).is_some());
        assert!(l.get(h, ip("203.0.113.1"), 301 * s).is_none());
        // Enormous TTLs are clamped.
        l.learn(0, &[(h, ip("203.0.113.2"), ind("b.example"), u32::MAX)]);
        assert!(
            l.get(h, ip("203.0.113.2"), (MAX_TTL_S as i64 + 1) * s)
                .is_none()
        );
        // The cap evicts the oldest links.
        for i in 0..10 {
            l.learn(
                s,
                &[(h, ip(&format!("198.51.100.{i}")), ind("c.example"), 600)],
            );
        }
        assert_eq!(l.len(), 3);
        assert!(l.get(h, ip("198.51.100.9"), 2 * s).is_some());
        assert!(l.get(h, ip("198.51.100.0"), 2 * s).is_none());
        assert!(l.stats.evicted.load(Ordering::Relaxed) >= 7);
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
        p.ask(x(5353, 7), 0);
        assert!(!p.answered(x(5353, 8), 1), "wrong transaction id");
        assert!(!p.answered(x(5354, 7), 1), "wrong port");
        assert!(p.answered(x(5353, 7), 1));
        assert!(!p.answered(x(5353, 7), 2), "an answer is taken once");
        p.ask(x(1, 1), 0);
        assert!(!p.answered(x(1, 1), PENDING_NS + 1), "too late");
        for i in 0..100 {
            p.ask(x(i, 1), 0);
        }
        assert!(p.len() <= 16);
    }
}
