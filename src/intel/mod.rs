//! Threat intelligence: indicators from the feeds, compiled into an immutable
//! [`Snapshot`] of lookup tables, published through [`Intel`] (arc-swap).
//!
//! Invariants the matcher relies on:
//! - A snapshot never changes after [`SnapshotBuilder::build`]; a reload builds
//!   a new one and swaps the pointer, so readers take no lock and never see a
//!   half-built table.
//! - Every lookup takes an already-normalised key (lower-case domain without
//!   trailing dot, integer address) and allocates nothing.
//! - Allowlist entries live in their own tables and are consulted only after
//!   a block match, so an allowlist can never create a hit.

pub mod feeds;
pub mod indicator;

use crate::netrange::Key;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use arc_swap::{ArcSwap, Guard};
use indicator::{Entry, IndicatorKind};
use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// Severity as operators write it in feeds.toml.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Suricata EVE `alert.severity`: 1 is the most severe.
    pub fn eve(self) -> u8 {
        match self {
            Severity::Critical | Severity::High => 1,
            Severity::Medium => 2,
            Severity::Low => 3,
        }
    }
}

/// Where an indicator came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedMeta {
    pub name: String,
    pub category: String,
    pub severity: Severity,
}

/// One indicator as it will appear in an alert.
#[derive(Clone, Debug)]
pub struct Indicator {
    pub value: Box<str>,
    pub kind: IndicatorKind,
    pub feed: Arc<FeedMeta>,
}

/// Exact addresses, address:port pairs and networks; networks are hashed per
/// prefix length and probed longest first, so the most specific wins.
#[derive(Default)]
struct IpTable {
    v4: FxHashMap<u32, u32>,
    v6: FxHashMap<u128, u32>,
    port: FxHashMap<(Key, u16), u32>,
    nets4: Vec<(u8, FxHashMap<u32, u32>)>,
    nets6: Vec<(u8, FxHashMap<u128, u32>)>,
}

impl IpTable {
    fn insert_net(&mut self, n: &IpNet, id: u32) -> Option<u32> {
        let plen = n.prefix_len();
        match Key::from(n.network()) {
            Key::V4(a) => table_for(&mut self.nets4, plen).insert(a, id),
            Key::V6(a) => table_for(&mut self.nets6, plen).insert(a, id),
        }
    }

    #[inline]
    fn get(&self, ip: IpAddr, port: Option<u16>) -> Option<u32> {
        let k = Key::from(ip);
        if let Some(p) = port.filter(|_| !self.port.is_empty())
            && let Some(&id) = self.port.get(&(k, p))
        {
            return Some(id);
        }
        match k {
            Key::V4(a) => self.v4.get(&a).copied().or_else(|| {
                self.nets4.iter().find_map(|(plen, t)| {
                    let mask = if *plen == 0 {
                        0
                    } else {
                        u32::MAX << (32 - plen)
                    };
                    t.get(&(a & mask)).copied()
                })
            }),
            Key::V6(a) => self.v6.get(&a).copied().or_else(|| {
                self.nets6.iter().find_map(|(plen, t)| {
                    let mask = if *plen == 0 {
                        0
                    } else {
                        u128::MAX << (128 - plen)
                    };
                    t.get(&(a & mask)).copied()
                })
            }),
        }
    }
}

/// The per-prefix-length table for `plen`, created on first use; tables stay
/// sorted longest prefix first so the first match is the most specific.
fn table_for<T>(tables: &mut Vec<(u8, FxHashMap<T, u32>)>, plen: u8) -> &mut FxHashMap<T, u32> {
    let i = match tables.iter().position(|(p, _)| *p == plen) {
        Some(i) => i,
        None => {
            tables.push((plen, FxHashMap::default()));
            tables.sort_by_key(|t| std::cmp::Reverse(t.0));
            tables.iter().position(|(p, _)| *p == plen).unwrap_or(0)
        }
    };
    &mut tables[i].1
}

/// An immutable, fully built set of lookup tables.
pub struct Snapshot {
    indicators: Vec<Indicator>,
    ips: IpTable,
    domains: FxHashMap<Box<str>, u32>,
    patterns: Option<(AhoCorasick, Vec<u32>)>,
    allow_ips: IpTable,
    allow_domains: FxHashSet<Box<str>>,
    /// Indicators per kind, for reports and metrics.
    pub counts: FxHashMap<IndicatorKind, usize>,
}

impl Snapshot {
    pub fn empty() -> Snapshot {
        SnapshotBuilder::default().build()
    }

    pub fn indicator(&self, id: u32) -> &Indicator {
        &self.indicators[id as usize]
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    /// Listed address, `address:port` or containing network, most specific first.
    #[inline]
    pub fn match_ip(&self, ip: IpAddr, port: Option<u16>) -> Option<u32> {
        self.ips.get(ip, port)
    }

    /// The most specific listed domain that equals `name` or is a parent of it.
    /// `name` must already be normalised (see [`crate::name`]).
    #[inline]
    pub fn match_domain(&self, name: &str) -> Option<u32> {
        if self.domains.is_empty() {
            return None;
        }
        let mut rest = name;
        loop {
            if let Some(&id) = self.domains.get(rest) {
                return Some(id);
            }
            rest = &rest[rest.find('.')? + 1..];
        }
    }

    /// First URL or keyword pattern found in `haystack` (Host + target).
    #[inline]
    pub fn match_pattern(&self, haystack: &[u8]) -> Option<u32> {
        let (ac, ids) = self.patterns.as_ref()?;
        ac.find(haystack).map(|m| ids[m.pattern().as_usize()])
    }

    pub fn has_patterns(&self) -> bool {
        self.patterns.is_some()
    }

    pub fn allow_ip(&self, ip: IpAddr) -> bool {
        self.allow_ips.get(ip, None).is_some()
    }

    pub fn allow_domain(&self, name: &str) -> bool {
        if self.allow_domains.is_empty() {
            return false;
        }
        let mut rest = name;
        loop {
            if self.allow_domains.contains(rest) {
                return true;
            }
            match rest.find('.') {
                Some(i) => rest = &rest[i + 1..],
                None => return false,
            }
        }
    }
}

/// Accumulates entries, resolving duplicates, then compiles the tables.
#[derive(Default)]
pub struct SnapshotBuilder {
    indicators: Vec<Indicator>,
    ips: IpTable,
    domains: FxHashMap<Box<str>, u32>,
    patterns: Vec<(String, u32)>,
    pattern_seen: FxHashMap<String, u32>,
    allow_ips: IpTable,
    allow_domains: FxHashSet<Box<str>>,
    /// Entries already present (same value), kept once: the first feed wins
    /// unless a later one is more severe.
    pub duplicates: usize,
}

impl SnapshotBuilder {
    /// Add a blocklist entry from `feed`.
    pub fn add(&mut self, entry: Entry, feed: &Arc<FeedMeta>) {
        let id = self.indicators.len() as u32;
        let value: Box<str> = match &entry {
            Entry::Ip(ip) => ip.to_string().into(),
            Entry::Net(n) => n.to_string().into(),
            Entry::IpPort(ip, p) => match ip {
                IpAddr::V4(_) => format!("{ip}:{p}").into(),
                IpAddr::V6(_) => format!("[{ip}]:{p}").into(),
            },
            Entry::Domain(s) | Entry::Url(s) | Entry::Keyword(s) => s.as_str().into(),
        };
        let previous = match &entry {
            Entry::Ip(ip) => match Key::from(*ip) {
                Key::V4(a) => self.ips.v4.insert(a, id),
                Key::V6(a) => self.ips.v6.insert(a, id),
            },
            Entry::Net(n) => self.ips.insert_net(n, id),
            Entry::IpPort(ip, p) => self.ips.port.insert((Key::from(*ip), *p), id),
            Entry::Domain(d) => self.domains.insert(d.as_str().into(), id),
            Entry::Url(s) | Entry::Keyword(s) => {
                let prev = self.pattern_seen.insert(s.clone(), id);
                if prev.is_none() {
                    self.patterns.push((s.clone(), id));
                } else if let Some(p) = self.patterns.iter_mut().find(|p| p.0 == *s) {
                    p.1 = id;
                }
                prev
            }
        };
        self.indicators.push(Indicator {
            value,
            kind: entry.kind(),
            feed: feed.clone(),
        });
        if let Some(prev) = previous {
            self.duplicates += 1;
            // Keep the earlier indicator unless the new feed is more severe:
            // point the table back at it.
            if self.indicators[prev as usize].feed.severity >= feed.severity {
                self.indicators[id as usize] = self.indicators[prev as usize].clone();
            }
        }
    }

    /// Add an allowlist entry. Patterns cannot be allowlisted.
    pub fn allow(&mut self, entry: Entry) -> bool {
        match entry {
            Entry::Ip(ip) => match Key::from(ip) {
                Key::V4(a) => self.allow_ips.v4.insert(a, 0).is_none(),
                Key::V6(a) => self.allow_ips.v6.insert(a, 0).is_none(),
            },
            Entry::Net(n) => self.allow_ips.insert_net(&n, 0).is_none(),
            Entry::IpPort(ip, p) => self.allow_ips.port.insert((Key::from(ip), p), 0).is_none(),
            Entry::Domain(d) => self.allow_domains.insert(d.into()),
            Entry::Url(_) | Entry::Keyword(_) => false,
        }
    }

    pub fn build(self) -> Snapshot {
        let patterns = if self.patterns.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(self.patterns.iter().map(|p| p.0.as_bytes()));
            match ac {
                Ok(ac) => Some((ac, self.patterns.iter().map(|p| p.1).collect())),
                Err(e) => {
                    tracing::error!("URL/keyword patterns could not be compiled: {e}");
                    None
                }
            }
        };
        let mut counts = FxHashMap::default();
        // Count distinct live entries (a duplicate overwrote its table slot).
        let live: Vec<u32> = self
            .ips
            .v4
            .values()
            .chain(self.ips.v6.values())
            .chain(self.ips.port.values())
            .chain(self.ips.nets4.iter().flat_map(|t| t.1.values()))
            .chain(self.ips.nets6.iter().flat_map(|t| t.1.values()))
            .chain(self.domains.values())
            .chain(self.patterns.iter().map(|p| &p.1))
            .copied()
            .collect();
        for id in live {
            *counts.entry(self.indicators[id as usize].kind).or_insert(0) += 1;
        }
        Snapshot {
            indicators: self.indicators,
            ips: self.ips,
            domains: self.domains,
            patterns,
            allow_ips: self.allow_ips,
            allow_domains: self.allow_domains,
            counts,
        }
    }
}

/// The published snapshot. Readers call [`Intel::load`] (lock-free); a
/// reloader calls [`Intel::store`] with a freshly built snapshot.
pub struct Intel {
    current: ArcSwap<Snapshot>,
}

impl Intel {
    pub fn new(s: Snapshot) -> Intel {
        Intel {
            current: ArcSwap::from_pointee(s),
        }
    }

    #[inline]
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn store(&self, s: Snapshot) {
        self.current.store(Arc::new(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicator::{EntryType, classify};

    fn feed(name: &str, sev: Severity) -> Arc<FeedMeta> {
        Arc::new(FeedMeta {
            name: name.into(),
            category: "malware".into(),
            severity: sev,
        })
    }

    fn snap(entries: &[&str]) -> Snapshot {
        let f = feed("t", Severity::High);
        let mut b = SnapshotBuilder::default();
        for e in entries {
            b.add(classify(e, EntryType::Auto).unwrap(), &f);
        }
        b.build()
    }

    fn val(s: &Snapshot, id: Option<u32>) -> Option<&str> {
        id.map(|i| &*s.indicator(i).value)
    }

    #[test]
    fn domain_suffix_semantics() {
        let s = snap(&["bad.example", "deep.sub.other.example"]);
        assert_eq!(val(&s, s.match_domain("bad.example")), Some("bad.example"));
        assert_eq!(
            val(&s, s.match_domain("x.y.bad.example")),
            Some("bad.example")
        );
        assert_eq!(s.match_domain("notbad.example"), None);
        assert_eq!(s.match_domain("example"), None);
        assert_eq!(s.match_domain("bad.example.com"), None);
        assert_eq!(s.match_domain("sub.other.example"), None);
        assert!(s.match_domain("a.deep.sub.other.example").is_some());
    }

    #[test]
    fn most_specific_domain_wins() {
        let s = snap(&["example.org", "c2.example.org"]);
        assert_eq!(
            val(&s, s.match_domain("x.c2.example.org")),
            Some("c2.example.org")
        );
        assert_eq!(
            val(&s, s.match_domain("www.example.org")),
            Some("example.org")
        );
    }

    #[test]
    fn ip_exact_port_and_cidr() {
        let s = snap(&[
            "203.0.113.5",
            "198.51.100.0/24",
            "198.51.100.128/25",
            "2001:db8::/32",
            "192.0.2.9:8443",
        ]);
        let ip = |x: &str| x.parse::<IpAddr>().unwrap();
        assert_eq!(
            val(&s, s.match_ip(ip("203.0.113.5"), None)),
            Some("203.0.113.5")
        );
        assert_eq!(s.match_ip(ip("203.0.113.6"), None), None);
        assert_eq!(
            val(&s, s.match_ip(ip("198.51.100.7"), None)),
            Some("198.51.100.0/24")
        );
        assert_eq!(
            val(&s, s.match_ip(ip("198.51.100.200"), None)),
            Some("198.51.100.128/25")
        );
        assert_eq!(
            val(&s, s.match_ip(ip("198.51.100.0"), None)),
            Some("198.51.100.0/24")
        );
        assert_eq!(
            val(&s, s.match_ip(ip("198.51.100.255"), None)),
            Some("198.51.100.128/25")
        );
        assert_eq!(s.match_ip(ip("198.51.101.0"), None), None);
        assert_eq!(
            val(&s, s.match_ip(ip("2001:db8:ffff::1"), None)),
            Some("2001:db8::/32")
        );
        assert_eq!(s.match_ip(ip("2001:db9::1"), None), None);
        assert_eq!(
            val(&s, s.match_ip(ip("192.0.2.9"), Some(8443))),
            Some("192.0.2.9:8443")
        );
        assert_eq!(s.match_ip(ip("192.0.2.9"), Some(443)), None);
        assert_eq!(s.match_ip(ip("192.0.2.9"), None), None);
    }

    #[test]
    fn patterns_are_case_insensitive() {
        let s = snap(&["bad.example/gate.php", "/wp-content/x.php"]);
        assert!(s.match_pattern(b"BAD.example/Gate.php?id=1").is_some());
        assert!(s.match_pattern(b"good.example/wp-content/x.php").is_some());
        assert!(s.match_pattern(b"bad.example/index.html").is_none());
    }

    #[test]
    fn duplicate_keeps_most_severe() {
        let low = feed("low", Severity::Low);
        let crit = feed("crit", Severity::Critical);
        let mut b = SnapshotBuilder::default();
        b.add(Entry::Domain("bad.example".into()), &low);
        b.add(Entry::Domain("bad.example".into()), &crit);
        b.add(Entry::Domain("bad.example".into()), &low);
        assert_eq!(b.duplicates, 2);
        let s = b.build();
        let id = s.match_domain("bad.example").unwrap();
        assert_eq!(s.indicator(id).feed.name, "crit");
        assert_eq!(s.counts[&IndicatorKind::Domain], 1);
    }

    #[test]
    fn allowlist_suffix_and_net() {
        let mut b = SnapshotBuilder::default();
        b.allow(Entry::Domain("corp.example".into()));
        b.allow(Entry::Net("10.0.0.0/8".parse().unwrap()));
        let s = b.build();
        assert!(s.allow_domain("a.corp.example"));
        assert!(!s.allow_domain("corp.example.net"));
        assert!(s.allow_ip("10.1.2.3".parse().unwrap()));
        assert!(!s.allow_ip("11.1.2.3".parse().unwrap()));
    }
}
