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

mod arr;
mod builder;
pub mod feeds;
mod filter;
mod formats;
pub mod indicator;
mod load;
pub mod netrange;
pub mod part;
pub mod reload;
pub mod snap;
mod snapshot;
mod tables;
pub mod triggers;

pub use builder::SnapshotBuilder;
pub use load::feed_from_bytes;
pub use part::{Note, Part};
pub use snapshot::{Id, Snapshot};

use arc_swap::{ArcSwap, Guard};
use indicator::IndicatorKind;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// Where the feed says to read more (STIX id, MISP event, URL).
    pub reference: Option<Box<str>>,
    /// What the feed says the indicator is.
    pub description: Option<Box<str>>,
}

/// The published snapshot. Readers call [`Intel::load`] (lock-free); a
/// reloader calls [`Intel::store`] with a freshly built snapshot.
///
/// A worker keeps its own `Arc` of the snapshot and reads
/// [`Intel::generation`] per packet: one relaxed load of a line that is
/// written once per reload, where `load_full` per packet made every worker
/// bump (and bounce) the one shared reference count.
pub struct Intel {
    current: ArcSwap<Snapshot>,
    generation: AtomicU64,
}

impl Intel {
    pub fn new(s: Snapshot) -> Intel {
        Intel {
            current: ArcSwap::from_pointee(s),
            generation: AtomicU64::new(0),
        }
    }

    /// Changes after every [`Intel::store`], once the new snapshot is the
    /// one [`Intel::load_full`] returns.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
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
        self.generation.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicator::{Entry, EntryType, classify};
    use std::net::IpAddr;

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

    fn val(s: &Snapshot, id: Option<Id>) -> Option<String> {
        id.map(|i| s.indicator(i, "").value.into())
    }

    fn dval(s: &Snapshot, name: &str) -> Option<String> {
        s.match_domain(name)
            .map(|i| s.indicator(i, name).value.into())
    }

    #[test]
    fn domain_suffix_semantics() {
        let s = snap(&["bad.example", "deep.sub.other.example"]);
        assert_eq!(dval(&s, "bad.example"), Some("bad.example".to_string()));
        assert_eq!(dval(&s, "x.y.bad.example"), Some("bad.example".to_string()));
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
            dval(&s, "x.c2.example.org"),
            Some("c2.example.org".to_string())
        );
        assert_eq!(dval(&s, "www.example.org"), Some("example.org".to_string()));
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
            Some("203.0.113.5".to_string())
        );
        assert_eq!(s.match_ip(ip("203.0.113.6"), None), None);
        assert_eq!(
            val(&s, s.match_ip(ip("198.51.100.7"), None)),
            Some("198.51.100.0/24".to_string())
        );
        assert_eq!(
            val(&s, s.match_ip(ip("198.51.100.200"), None)),
            Some("198.51.100.128/25".to_string())
        );
        assert_eq!(
            val(&s, s.match_ip(ip("198.51.100.0"), None)),
            Some("198.51.100.0/24".to_string())
        );
        assert_eq!(
            val(&s, s.match_ip(ip("198.51.100.255"), None)),
            Some("198.51.100.128/25".to_string())
        );
        assert_eq!(s.match_ip(ip("198.51.101.0"), None), None);
        assert_eq!(
            val(&s, s.match_ip(ip("2001:db8:ffff::1"), None)),
            Some("2001:db8::/32".to_string())
        );
        assert_eq!(s.match_ip(ip("2001:db9::1"), None), None);
        assert_eq!(
            val(&s, s.match_ip(ip("192.0.2.9"), Some(8443))),
            Some("192.0.2.9:8443".to_string())
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
        let s = b.build();
        assert_eq!(s.duplicates, 2);
        let id = s.match_domain("bad.example").unwrap();
        assert_eq!(s.indicator(id, "bad.example").feed.name, "crit");
        assert_eq!(s.counts[&IndicatorKind::Domain], 1);
    }

    /// Builders loaded apart (one per feed, on several threads) and absorbed
    /// in any order give the configuration's first feed on equal severity.
    #[test]
    fn absorb_order_does_not_change_the_winner() {
        let first = feed("first", Severity::High);
        let second = feed("second", Severity::High);
        for base_is_second in [true, false] {
            let mut a = SnapshotBuilder::ranked(0);
            a.add(Entry::Domain("bad.example".into()), &first);
            a.add(Entry::Ip("203.0.113.9".parse().unwrap()), &first);
            let mut b = SnapshotBuilder::ranked(1);
            b.add(Entry::Ip("203.0.113.9".parse().unwrap()), &second);
            b.add(Entry::Domain("bad.example".into()), &second);
            let (mut base, other) = if base_is_second { (b, a) } else { (a, b) };
            base.absorb(other);
            let s = base.build();
            assert_eq!(s.duplicates, 2);
            let d = s.match_domain("x.bad.example").unwrap();
            assert_eq!(s.indicator(d, "x.bad.example").feed.name, "first");
            let i = s.match_ip("203.0.113.9".parse().unwrap(), None).unwrap();
            assert_eq!(s.indicator(i, "").feed.name, "first");
            assert_eq!(&*s.indicator(i, "").value, "203.0.113.9");
        }
    }

    proptest::proptest! {
        /// The right-to-left walk with early stop finds exactly the most
        /// specific listed suffix a naive scan over every suffix finds.
        #[test]
        fn domain_walk_equals_naive_scan(
            listed in proptest::collection::vec("[a-c]{1,2}(\\.[a-c]{1,2}){0,3}\\.(com|vn)", 1..40),
            probes in proptest::collection::vec("[a-c]{1,2}(\\.[a-c]{1,2}){0,4}\\.(com|vn|org)", 1..40),
        ) {
            let s = snap(&listed.iter().map(String::as_str).collect::<Vec<_>>());
            let set: std::collections::HashSet<&str> = listed.iter().map(String::as_str).collect();
            for p in &probes {
                let mut want = None;
                let mut rest = p.as_str();
                loop {
                    if set.contains(rest) {
                        want = Some(rest.to_string());
                        break;
                    }
                    match rest.find('.') {
                        Some(i) => rest = &rest[i + 1..],
                        None => break,
                    }
                }
                proptest::prop_assert_eq!(dval(&s, p), want, "{}", p);
            }
        }
    }

    proptest::proptest! {
        /// Exact address first, then the longest listed prefix, as a naive
        /// scan finds them (the /24 map, filter and ranges lose nothing).
        #[test]
        fn ip_lookup_equals_naive_scan(
            ips in proptest::collection::vec(0x0b00_0000u32..0x0b04_0000, 0..30),
            nets in proptest::collection::vec((0x0b00_0000u32..0x0b04_0000, 8u8..=31), 0..30),
            probes in proptest::collection::vec(0x0aff_0000u32..0x0b05_0000, 60),
        ) {
            let mut entries: Vec<String> = ips.iter().map(|a| std::net::Ipv4Addr::from(*a).to_string()).collect();
            let nets: Vec<ipnet::Ipv4Net> = nets
                .iter()
                .map(|&(a, p)| ipnet::Ipv4Net::new(a.into(), p).unwrap().trunc())
                .collect();
            entries.extend(nets.iter().map(|n| n.to_string()));
            let s = snap(&entries.iter().map(String::as_str).collect::<Vec<_>>());
            let edges: Vec<u32> = nets
                .iter()
                .flat_map(|n| [u32::from(n.network()), u32::from(n.broadcast()).wrapping_add(1)])
                .collect();
            let near = ips.iter().chain(&edges).copied();
            for p in probes.into_iter().chain(near) {
                let a = std::net::Ipv4Addr::from(p);
                let want = if ips.contains(&p) {
                    Some(a.to_string())
                } else {
                    nets.iter()
                        .filter(|n| n.contains(&a))
                        .max_by_key(|n| n.prefix_len())
                        .map(|n| n.to_string())
                };
                proptest::prop_assert_eq!(val(&s, s.match_ip(IpAddr::V4(a), None)), want);
            }
        }
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
