//! The latest name of each internal address, shared by all workers, so a
//! hit can carry the machine's name: the DHCP exchange and the later C2
//! connection are different flows and often land on different workers.
//!
//! Read without a lock on every hit: two immutable maps behind arc-swap, a
//! large `base` and a small `recent` one (at most about the square root of
//! the cap). A new or changed name copies only `recent`; when that is full,
//! it is merged into a new `base` and emptied. A new name therefore costs
//! O(sqrt(cap)) copies amortised, where one map copied whole cost O(cap):
//! 262,144 entries per name, and one NetBIOS datagram can carry ~240 names
//! (issue 14, defect 4). Writers are serialised by a mutex readers never
//! take. Bounded: at most `cap` addresses after each merge (`cap` plus
//! `recent`'s size between merges), the least recently announced dropped.

use super::{HostName, NameSource};
use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Default bound: a province's internal hosts.
pub const DEFAULT_CAP: usize = 262_144;
/// A name is kept at least this long (packet time) against another name
/// from the same protocol: machines do not rename by the second, and a flood
/// renaming addresses over and over would otherwise rewrite the table (and
/// the names alerts show) as fast as it can send. Another protocol's name
/// (DHCP, then NetBIOS) still replaces it at once.
pub const NAME_HOLD_NS: i64 = 60 * 1_000_000_000;

/// What an address was last called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub name: Arc<str>,
    pub mac: Option<[u8; 6]>,
    pub source: NameSource,
    pub seen_ns: i64,
}

type Map = FxHashMap<IpAddr, Known>;

/// What an announcement would do to the table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    New,
    Same,
    Held,
}

pub struct KnownNames {
    base: ArcSwap<Map>,
    recent: ArcSwap<Map>,
    writer: Mutex<()>,
    cap: usize,
    recent_cap: usize,
}

impl Default for KnownNames {
    fn default() -> Self {
        KnownNames::new(DEFAULT_CAP)
    }
}

impl KnownNames {
    pub fn new(cap: usize) -> KnownNames {
        let cap = cap.max(1);
        KnownNames {
            base: ArcSwap::from_pointee(Map::default()),
            recent: ArcSwap::from_pointee(Map::default()),
            writer: Mutex::new(()),
            cap,
            recent_cap: (cap as f64).sqrt().clamp(1.0, 4096.0) as usize,
        }
    }

    /// Addresses with a name.
    pub fn len(&self) -> usize {
        let (base, recent) = (self.base.load(), self.recent.load());
        base.len() + recent.keys().filter(|ip| !base.contains_key(*ip)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.base.load().is_empty() && self.recent.load().is_empty()
    }

    fn known(&self, ip: IpAddr) -> Option<Known> {
        let recent = self.recent.load();
        if let Some(k) = recent.get(&ip) {
            return Some(k.clone());
        }
        let base = self.base.load();
        base.get(&ip).cloned()
    }

    /// The name `ip` had most recently, if any was seen.
    pub fn get(&self, ip: IpAddr) -> Option<Arc<str>> {
        if self.is_empty() {
            return None;
        }
        self.known(ip).map(|k| k.name)
    }

    /// Record an announcement; true when it changed what the address is
    /// called (new address, other name, MAC or source). A repeat of the
    /// current name changes nothing here (the store keeps its last-seen).
    pub fn learn(&self, ts_ns: i64, n: &HostName) -> bool {
        self.learn_all(ts_ns, std::slice::from_ref(n)).0 != 0
    }

    /// [`KnownNames::learn`] for the names of one datagram (at most 32), in
    /// one write. Answers the names that changed something (bit `i` for
    /// `names[i]`) and how many were held back by [`NAME_HOLD_NS`]. Names
    /// that change nothing take no lock.
    pub fn learn_all(&self, ts_ns: i64, names: &[HostName]) -> (u32, u64) {
        let names = &names[..names.len().min(32)];
        let verdict = |n: &HostName, k: Option<&Known>| match k {
            None => Verdict::New,
            Some(k) if *k.name == *n.name && k.mac == n.mac && k.source == n.source => {
                Verdict::Same
            }
            Some(k) if k.seen_ns > ts_ns => Verdict::Same,
            Some(k) if k.source == n.source && ts_ns - k.seen_ns < NAME_HOLD_NS => Verdict::Held,
            Some(_) => Verdict::New,
        };
        let (mut any_new, mut held) = (false, 0u64);
        for n in names {
            match verdict(n, self.known(n.ip).as_ref()) {
                Verdict::New => any_new = true,
                Verdict::Held => held += 1,
                Verdict::Same => {}
            }
        }
        if !any_new {
            return (0, held);
        }
        let _w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut recent = Map::clone(&self.recent.load());
        let (mut changed, mut held) = (0u32, 0u64);
        for (i, n) in names.iter().enumerate() {
            // Judged again under the lock: another worker may have written
            // it, and an earlier name of this datagram may be the same one.
            let current = recent.get(&n.ip).cloned().or_else(|| self.known(n.ip));
            match verdict(n, current.as_ref()) {
                Verdict::Same => continue,
                Verdict::Held => {
                    held += 1;
                    continue;
                }
                Verdict::New => {}
            }
            let known = Known {
                name: n.name.as_str().into(),
                mac: n.mac,
                source: n.source,
                seen_ns: ts_ns,
            };
            recent.insert(n.ip, known);
            changed |= 1 << i;
        }
        if recent.len() >= self.recent_cap {
            self.merge(recent);
        } else {
            self.recent.store(Arc::new(recent));
        }
        (changed, held)
    }

    /// Fold `recent` into a new base within the cap, then empty `recent`
    /// (in that order: a reader in between finds the names in either).
    fn merge(&self, recent: Map) {
        let mut base = Map::clone(&self.base.load());
        base.extend(recent);
        if base.len() > self.cap {
            let mut ages: Vec<i64> = base.values().map(|k| k.seen_ns).collect();
            let over = base.len() - self.cap;
            let (_, &mut cut, _) = ages.select_nth_unstable(over - 1);
            let mut dropped = 0;
            base.retain(|_, k| {
                let keep = k.seen_ns > cut || dropped >= over;
                dropped += usize::from(!keep);
                keep
            });
        }
        self.base.store(Arc::new(base));
        self.recent.store(Arc::new(Map::default()));
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
        assert!(
            !k.learn(3, &hn("10.0.0.1", "PC-KeToan99")),
            "held: renamed by the same protocol too soon"
        );
        assert!(k.learn(3 + NAME_HOLD_NS, &hn("10.0.0.1", "PC-KeToan02")));
        assert!(
            !k.learn(0, &hn("10.0.0.1", "old-name")),
            "older news is ignored"
        );
        assert_eq!(&*k.get("10.0.0.1".parse().unwrap()).unwrap(), "PC-KeToan02");
        k.learn(4 + NAME_HOLD_NS, &hn("10.0.0.2", "b"));
        k.learn(5 + NAME_HOLD_NS, &hn("10.0.0.3", "c"));
        assert_eq!(k.len(), 2);
        assert!(
            k.get("10.0.0.1".parse().unwrap()).is_none(),
            "oldest dropped"
        );
    }
}
