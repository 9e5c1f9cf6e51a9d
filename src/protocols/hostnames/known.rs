//! The latest name of each internal address, shared by all workers, so a
//! hit can carry the machine's name: the DHCP exchange and the later C2
//! connection are different flows and often land on different workers.
//!
//! Same design as the correlation links: an immutable map behind arc-swap,
//! read without a lock on every hit, replaced copy-on-write only when a name
//! is new or changed (rare: machines keep their names). Bounded: at most
//! `cap` addresses, the least recently announced dropped first.

use super::{HostName, NameSource};
use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Default bound: a province's internal hosts.
pub const DEFAULT_CAP: usize = 262_144;

/// What an address was last called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub name: Arc<str>,
    pub mac: Option<[u8; 6]>,
    pub source: NameSource,
    pub seen_ns: i64,
}

pub struct KnownNames {
    map: ArcSwap<FxHashMap<IpAddr, Known>>,
    cap: usize,
}

impl Default for KnownNames {
    fn default() -> Self {
        KnownNames::new(DEFAULT_CAP)
    }
}

impl KnownNames {
    pub fn new(cap: usize) -> KnownNames {
        KnownNames {
            map: ArcSwap::from_pointee(FxHashMap::default()),
            cap: cap.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.load().is_empty()
    }

    /// The name `ip` had most recently, if any was seen.
    pub fn get(&self, ip: IpAddr) -> Option<Arc<str>> {
        let m = self.map.load();
        if m.is_empty() {
            return None;
        }
        m.get(&ip).map(|k| k.name.clone())
    }

    /// Record an announcement; true when it changed what the address is
    /// called (new address, other name, MAC or source). A repeat of the
    /// current name changes nothing here (the store keeps its last-seen).
    pub fn learn(&self, ts_ns: i64, n: &HostName) -> bool {
        let same = |k: &Known| *k.name == *n.name && k.mac == n.mac && k.source == n.source;
        if self
            .map
            .load()
            .get(&n.ip)
            .is_some_and(|k| same(k) || k.seen_ns > ts_ns)
        {
            return false;
        }
        let known = Known {
            name: n.name.as_str().into(),
            mac: n.mac,
            source: n.source,
            seen_ns: ts_ns,
        };
        self.map.rcu(|cur| {
            let mut next = FxHashMap::clone(cur);
            if next.len() >= self.cap
                && !next.contains_key(&n.ip)
                && let Some(oldest) = next
                    .iter()
                    .min_by_key(|(_, k)| k.seen_ns)
                    .map(|(ip, _)| *ip)
            {
                next.remove(&oldest);
            }
            next.insert(n.ip, known.clone());
            next
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hn(ip: &str, name: &str) -> HostName {
        HostName {
            ip: ip.parse().unwrap(),
            name: name.into(),
            mac: Some([2, 0, 0, 0, 0, 1]),
            source: NameSource::Dhcp,
        }
    }

    #[test]
    fn latest_name_wins_repeats_change_nothing_and_the_cap_holds() {
        let k = KnownNames::new(2);
        assert!(k.learn(1, &hn("10.0.0.1", "PC-KeToan01")));
        assert!(!k.learn(2, &hn("10.0.0.1", "PC-KeToan01")));
        assert!(k.learn(3, &hn("10.0.0.1", "PC-KeToan02")));
        assert!(
            !k.learn(0, &hn("10.0.0.1", "old-name")),
            "older news is ignored"
        );
        assert_eq!(&*k.get("10.0.0.1".parse().unwrap()).unwrap(), "PC-KeToan02");
        k.learn(4, &hn("10.0.0.2", "b"));
        k.learn(5, &hn("10.0.0.3", "c"));
        assert_eq!(k.len(), 2);
        assert!(
            k.get("10.0.0.1".parse().unwrap()).is_none(),
            "oldest dropped"
        );
    }
}
