//! One feed compiled: its exact tables, ranges and patterns. A snapshot is
//! a list of parts behind a shared Bloom filter; a reload rebuilds only the
//! parts whose files changed and shares the others (see `reload.rs`).

use super::arr::Arr;
use super::filter::HashKey;
use super::tables::{Keys, Ranges};
use super::{FeedMeta, Severity};
use crate::intel::indicator::IndicatorKind;
use crate::intel::netrange::Key;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// What a feed said about one indicator beyond its value (STIX id and
/// name, MISP event and comment, Zeek source and description...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Note {
    /// Where to read more: a STIX id, a MISP event uuid, a URL.
    pub reference: Option<Box<str>>,
    /// A short description or the source the feed named.
    pub description: Option<Box<str>>,
}

/// `meta` of an entry: the feed within the part (low 8 bits) and the note
/// (high 24 bits, `NO_NOTE` for none).
pub const NO_NOTE: u32 = 0x00ff_ffff;

#[inline]
pub fn meta(feed: u32, note: Option<u32>) -> u32 {
    (feed & 0xff) | (note.unwrap_or(NO_NOTE) << 8)
}

/// Per-entry metadata, left empty when every entry has `meta` 0 (one feed,
/// no notes: the common case, and 4 bytes per entry saved).
#[derive(Default)]
pub struct Metas(Arr<u32>);

impl Metas {
    pub fn new(mut v: Vec<u32>) -> Metas {
        if v.iter().all(|&m| m == meta(0, None)) {
            Metas(Arr::default())
        } else {
            v.shrink_to_fit();
            Metas(v.into())
        }
    }

    /// Metas as a snapshot file stored them: none, or one per key.
    pub fn from_arr(a: Arr<u32>, keys: usize) -> Option<Metas> {
        (a.is_empty() || a.len() == keys).then_some(Metas(a))
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    #[inline]
    pub fn get(&self, pos: usize) -> u32 {
        self.0.get(pos).copied().unwrap_or(meta(0, None))
    }

    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

/// A compiled feed (or, for tests and tools, several feeds in one builder).
#[derive(Default)]
pub struct Part {
    /// Feeds with their rank: on equal severity the lower rank wins.
    pub(super) feeds: Vec<(Arc<FeedMeta>, u32)>,
    pub(super) notes: Vec<Note>,
    pub(super) v4: Keys<u32>,
    pub(super) v4_meta: Metas,
    pub(super) v6: Keys<u128>,
    pub(super) v6_meta: Metas,
    /// `address:port` entries, sorted by key.
    pub(super) ports: Vec<((Key, u16), u32)>,
    /// Networks with their meta; the ranges map to positions here.
    pub(super) nets: Vec<(IpNet, u32)>,
    pub(super) nets4: Ranges<u32>,
    pub(super) nets6: Ranges<u128>,
    pub(super) domains: Keys<u64>,
    pub(super) dom_meta: Metas,
    /// Hashes of the proper parents of the listed domains, sorted (for the
    /// snapshot's filter). Empty in a part read from a snapshot file, which
    /// stores the filters built from them instead: such a part is only
    /// ever used with those filters, never re-assembled.
    pub(super) parents: Vec<u64>,
    /// URL and keyword patterns, matched by the snapshot's one automaton.
    pub(super) patterns: Vec<(Box<str>, IndicatorKind, u32)>,
    pub(super) allow_v4: Keys<u32>,
    pub(super) allow_v6: Keys<u128>,
    pub(super) allow_nets4: Ranges<u32>,
    pub(super) allow_nets6: Ranges<u128>,
    pub(super) allow_domains: Keys<u64>,
    /// Distinct indicators per kind.
    pub counts: FxHashMap<IndicatorKind, usize>,
    /// Entries that repeated one already in this part and were merged.
    pub duplicates: usize,
    /// The key `domains`, `parents` and `allow_domains` were hashed with.
    pub(super) key: HashKey,
}

impl Part {
    /// The feed and note behind `meta`.
    #[inline]
    pub(super) fn feed(&self, meta: u32) -> &(Arc<FeedMeta>, u32) {
        &self.feeds[(meta & 0xff) as usize]
    }

    pub(super) fn note(&self, meta: u32) -> Option<&Note> {
        self.notes.get((meta >> 8) as usize)
    }

    /// Duplicate priority of an entry: more severe first, then lower rank.
    #[inline]
    pub(super) fn prio(&self, meta: u32) -> (Severity, std::cmp::Reverse<u32>) {
        let (f, rank) = self.feed(meta);
        (f.severity, std::cmp::Reverse(*rank))
    }

    pub fn feed_names(&self) -> impl Iterator<Item = &str> {
        self.feeds.iter().map(|f| f.0.name.as_str())
    }

    pub fn has_allow(&self) -> bool {
        !(self.allow_v4.is_empty()
            && self.allow_v6.is_empty()
            && self.allow_nets4.is_empty()
            && self.allow_nets6.is_empty()
            && self.allow_domains.is_empty())
    }

    /// Distinct indicators in this part.
    pub fn len(&self) -> usize {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap memory the part's tables hold (capacities, not lengths).
    pub fn heap_bytes(&self) -> usize {
        let notes: usize = self
            .notes
            .iter()
            .map(|n| {
                size_of::<Note>()
                    + n.reference.as_ref().map_or(0, |s| s.len())
                    + n.description.as_ref().map_or(0, |s| s.len())
            })
            .sum();
        let patterns: usize = self
            .patterns
            .iter()
            .map(|p| size_of_val(p) + p.0.len())
            .sum();
        notes
            + patterns
            + self.v4.heap_bytes()
            + self.v4_meta.heap_bytes()
            + self.v6.heap_bytes()
            + self.v6_meta.heap_bytes()
            + self.ports.capacity() * size_of::<((Key, u16), u32)>()
            + self.nets.capacity() * size_of::<(IpNet, u32)>()
            + self.nets4.heap_bytes()
            + self.nets6.heap_bytes()
            + self.domains.heap_bytes()
            + self.dom_meta.heap_bytes()
            + self.parents.capacity() * 8
            + self.allow_v4.heap_bytes()
            + self.allow_v6.heap_bytes()
            + self.allow_nets4.heap_bytes()
            + self.allow_nets6.heap_bytes()
            + self.allow_domains.heap_bytes()
    }

    /// Exact address: position and meta.
    #[inline]
    pub(super) fn find_ip(&self, k: Key) -> Option<(usize, u32)> {
        match k {
            Key::V4(a) => self.v4.find(a).map(|p| (p, self.v4_meta.get(p))),
            Key::V6(a) => self.v6.find(a).map(|p| (p, self.v6_meta.get(p))),
        }
    }

    #[inline]
    pub(super) fn find_port(&self, k: Key, port: u16) -> Option<(usize, u32)> {
        let p = self.ports.binary_search_by(|e| e.0.cmp(&(k, port))).ok()?;
        Some((p, self.ports[p].1))
    }

    /// Innermost network: position in `nets`, prefix length and meta.
    #[inline]
    pub(super) fn find_net(&self, k: Key) -> Option<(usize, u8, u32)> {
        let pos = match k {
            Key::V4(a) => self.nets4.get(a),
            Key::V6(a) => self.nets6.get(a),
        }? as usize;
        let (n, m) = &self.nets[pos];
        Some((pos, n.prefix_len(), *m))
    }

    #[inline]
    pub(super) fn find_domain(&self, h: u64) -> Option<(usize, u32)> {
        let p = self.domains.find(h)?;
        Some((p, self.dom_meta.get(p)))
    }

    pub(super) fn allows_ip(&self, k: Key) -> bool {
        match k {
            Key::V4(a) => self.allow_v4.find(a).is_some() || self.allow_nets4.get(a).is_some(),
            Key::V6(a) => self.allow_v6.find(a).is_some() || self.allow_nets6.get(a).is_some(),
        }
    }

    pub(super) fn allows_domain(&self, h: u64) -> bool {
        self.allow_domains.find(h).is_some()
    }
}
