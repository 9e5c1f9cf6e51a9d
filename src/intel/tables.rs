//! The lookup tables inside a snapshot: addresses and networks by integer
//! key, domains by hash over the snapshot's text arena.
//!
//! Both tables map a key to an indicator id (`u32`). Duplicates are resolved
//! while inserting: the earlier indicator stays unless the new one comes
//! from a more severe feed (`prefer_new`).

use crate::netrange::Key;
use hashbrown::HashTable;
use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// Exact addresses, address:port pairs and networks; networks are hashed per
/// prefix length and probed longest first, so the most specific wins.
#[derive(Default)]
pub(super) struct IpTable {
    pub v4: FxHashMap<u32, u32>,
    pub v6: FxHashMap<u128, u32>,
    pub port: FxHashMap<(Key, u16), u32>,
    pub nets4: Vec<(u8, FxHashMap<u32, u32>)>,
    pub nets6: Vec<(u8, FxHashMap<u128, u32>)>,
}

/// Insert `id` under `k`, keeping the present id unless `prefer_new(old)`.
/// Returns true when the key was already present (a duplicate).
#[inline]
fn put<K: Hash + Eq>(
    m: &mut FxHashMap<K, u32>,
    k: K,
    id: u32,
    prefer_new: impl Fn(u32) -> bool,
) -> bool {
    match m.entry(k) {
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(id);
            false
        }
        std::collections::hash_map::Entry::Occupied(mut o) => {
            if prefer_new(*o.get()) {
                o.insert(id);
            }
            true
        }
    }
}

impl IpTable {
    pub fn insert_ip(&mut self, ip: IpAddr, id: u32, prefer_new: impl Fn(u32) -> bool) -> bool {
        match Key::from(ip) {
            Key::V4(a) => put(&mut self.v4, a, id, prefer_new),
            Key::V6(a) => put(&mut self.v6, a, id, prefer_new),
        }
    }

    pub fn insert_port(
        &mut self,
        ip: IpAddr,
        port: u16,
        id: u32,
        prefer_new: impl Fn(u32) -> bool,
    ) -> bool {
        put(&mut self.port, (Key::from(ip), port), id, prefer_new)
    }

    pub fn insert_net(&mut self, n: &IpNet, id: u32, prefer_new: impl Fn(u32) -> bool) -> bool {
        let plen = n.prefix_len();
        match Key::from(n.network()) {
            Key::V4(a) => put(table_for(&mut self.nets4, plen), a, id, prefer_new),
            Key::V6(a) => put(table_for(&mut self.nets6, plen), a, id, prefer_new),
        }
    }

    /// Move `other`'s entries in; keys already present keep their id.
    pub fn absorb(&mut self, other: IpTable) {
        let keep = |_| false;
        for (k, v) in other.v4 {
            put(&mut self.v4, k, v, keep);
        }
        for (k, v) in other.v6 {
            put(&mut self.v6, k, v, keep);
        }
        for (k, v) in other.port {
            put(&mut self.port, k, v, keep);
        }
        for (plen, t) in other.nets4 {
            let mine = table_for(&mut self.nets4, plen);
            for (k, v) in t {
                put(mine, k, v, keep);
            }
        }
        for (plen, t) in other.nets6 {
            let mine = table_for(&mut self.nets6, plen);
            for (k, v) in t {
                put(mine, k, v, keep);
            }
        }
    }

    #[inline]
    pub fn get(&self, ip: IpAddr, port: Option<u16>) -> Option<u32> {
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

/// Domains as ids whose text lives in the snapshot's arena: no string is
/// allocated per domain. Why not `HashMap<Box<str>, u32>`: with 800k domains
/// the per-entry allocations and frees were 12% of start-up (perf).
#[derive(Default)]
pub(super) struct DomainTable {
    table: HashTable<u32>,
}

#[inline]
pub(super) fn hash_str(s: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(s.as_bytes());
    h.finish()
}

impl DomainTable {
    pub fn with_capacity(n: usize) -> DomainTable {
        DomainTable {
            table: HashTable::with_capacity(n),
        }
    }

    /// Insert `name` (hashed with [`hash_str`] into `h`) as `id`; `text(id)`
    /// gives an indicator's domain. Returns true on a duplicate.
    pub fn insert<'t>(
        &mut self,
        h: u64,
        name: &str,
        id: u32,
        text: impl Fn(u32) -> &'t str,
        prefer_new: impl Fn(u32) -> bool,
    ) -> bool {
        let hasher = |&i: &u32| hash_str(text(i));
        match self.table.entry(h, |&i| text(i) == name, hasher) {
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(id);
                false
            }
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                if prefer_new(*o.get()) {
                    *o.get_mut() = id;
                }
                true
            }
        }
    }

    #[inline]
    pub fn get<'t>(&self, name: &str, text: impl Fn(u32) -> &'t str) -> Option<u32> {
        self.table
            .find(hash_str(name), |&i| text(i) == name)
            .copied()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}
