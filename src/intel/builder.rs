//! Compiling feed entries into a [`Part`] (one feed's tables), or straight
//! into a one-part [`Snapshot`].
//!
//! `add` only appends `(key, meta)` pairs; `build_part` sorts each kind
//! once, merges duplicates (more severe feed first, then lower feed rank,
//! then the earlier entry) and lays the keys out as sorted arrays.

use super::filter::HashKey;
use super::part::{Metas, Note, Part, meta};
use super::tables::{Keys, Ranges};
use super::{FeedMeta, Snapshot};
use crate::intel::indicator::{Entry, IndicatorKind};
use crate::intel::netrange::{Key, bounds};
use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Above this many entries the domain and address tables are sorted on two
/// threads.
const PARALLEL_FROM: usize = 50_000;

/// Accumulates entries, then compiles the tables. Domains are hashed with
/// the process's key ([`HashKey::process`]).
#[derive(Default)]
pub struct SnapshotBuilder {
    feeds: Vec<(Arc<FeedMeta>, u32)>,
    next_rank: u32,
    notes: Vec<Note>,
    note_ids: FxHashMap<Note, u32>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u32)>,
    ports: Vec<((Key, u16), u32)>,
    nets: Vec<(IpNet, u32)>,
    domains: Vec<(u64, u32)>,
    /// Hashes of every proper parent of a listed domain (`b.example` and
    /// `example` for `a.b.example`): the filter tells the matcher when a
    /// longer suffix cannot be listed, so it stops early.
    parents: Vec<u64>,
    patterns: Vec<(Box<str>, IndicatorKind, u32)>,
    allow: FxHashSet<Entry>,
    too_many_feeds: bool,
}

impl SnapshotBuilder {
    /// A builder whose first feed ranks `rank`: for loading feed number
    /// `rank` of a configuration on its own.
    pub fn ranked(rank: u32) -> SnapshotBuilder {
        SnapshotBuilder {
            next_rank: rank,
            ..Default::default()
        }
    }

    /// Entries added so far (duplicates included).
    pub fn entries(&self) -> usize {
        self.v4.len()
            + self.v6.len()
            + self.ports.len()
            + self.nets.len()
            + self.domains.len()
            + self.patterns.len()
    }

    fn feed_index(&mut self, feed: &Arc<FeedMeta>) -> u32 {
        match self.feeds.iter().rposition(|f| Arc::ptr_eq(&f.0, feed)) {
            Some(i) => i as u32,
            None => {
                if self.feeds.len() == 256 {
                    // The meta word holds 8 bits of feed; a loader builds one
                    // feed per part, so only a hand-made builder gets here.
                    self.too_many_feeds = true;
                    return 255;
                }
                self.feeds.push((feed.clone(), self.next_rank));
                self.next_rank += 1;
                (self.feeds.len() - 1) as u32
            }
        }
    }

    fn note_index(&mut self, note: Option<Note>) -> Option<u32> {
        let n = note.filter(|n| n.reference.is_some() || n.description.is_some())?;
        if let Some(&i) = self.note_ids.get(&n) {
            return Some(i);
        }
        let i = self.notes.len() as u32;
        if i >= super::part::NO_NOTE {
            return None;
        }
        self.notes.push(n.clone());
        self.note_ids.insert(n, i);
        Some(i)
    }

    /// Add a blocklist entry from `feed`.
    pub fn add(&mut self, entry: Entry, feed: &Arc<FeedMeta>) {
        self.add_noted(entry, feed, None);
    }

    /// Add a blocklist entry with what the feed said about it.
    pub fn add_noted(&mut self, entry: Entry, feed: &Arc<FeedMeta>, note: Option<Note>) {
        let f = self.feed_index(feed);
        let m = meta(f, self.note_index(note));
        let kind = entry.kind();
        match entry {
            Entry::Ip(ip) => match Key::from(ip) {
                Key::V4(a) => self.v4.push((a, m)),
                Key::V6(a) => self.v6.push((a, m)),
            },
            Entry::Net(n) => self.nets.push((n, m)),
            Entry::IpPort(ip, p) => self.ports.push(((Key::from(ip), p), m)),
            Entry::Domain(d) => {
                self.domains.push((HashKey::process().domain(&d), m));
                self.push_parents(&d);
            }
            Entry::Url(s) | Entry::Keyword(s) => self.patterns.push((s.into(), kind, m)),
        }
    }

    /// [`add`](Self::add) for a domain already validated and normalised
    /// (see `indicator::classify_domain`), without an owned `Entry`.
    pub fn add_domain(&mut self, name: &str, feed: &Arc<FeedMeta>) {
        let f = self.feed_index(feed);
        self.domains
            .push((HashKey::process().domain(name), meta(f, None)));
        self.push_parents(name);
    }

    fn push_parents(&mut self, name: &str) {
        let key = HashKey::process();
        let mut rest = name;
        while let Some(i) = rest.find('.') {
            rest = &rest[i + 1..];
            self.parents.push(key.domain(rest));
        }
    }

    /// Append everything `other` holds (loaded separately, e.g. a chunk of
    /// the same file on another thread).
    pub fn absorb(&mut self, other: SnapshotBuilder) {
        let feed_map: Vec<u32> = other
            .feeds
            .iter()
            .map(
                |f| match self.feeds.iter().position(|g| Arc::ptr_eq(&g.0, &f.0)) {
                    Some(i) => i as u32,
                    None if self.feeds.len() == 256 => {
                        self.too_many_feeds = true;
                        255
                    }
                    None => {
                        self.feeds.push(f.clone());
                        self.next_rank = self.next_rank.max(f.1 + 1);
                        (self.feeds.len() - 1) as u32
                    }
                },
            )
            .collect();
        let note_map: Vec<Option<u32>> = other
            .notes
            .into_iter()
            .map(|n| self.note_index(Some(n)))
            .collect();
        let remap = |m: u32| {
            let f = feed_map.get((m & 0xff) as usize).copied().unwrap_or(0);
            let n = note_map.get((m >> 8) as usize).copied().flatten();
            meta(f, n)
        };
        self.v4
            .extend(other.v4.into_iter().map(|(k, m)| (k, remap(m))));
        self.v6
            .extend(other.v6.into_iter().map(|(k, m)| (k, remap(m))));
        self.ports
            .extend(other.ports.into_iter().map(|(k, m)| (k, remap(m))));
        self.nets
            .extend(other.nets.into_iter().map(|(k, m)| (k, remap(m))));
        self.domains
            .extend(other.domains.into_iter().map(|(k, m)| (k, remap(m))));
        self.parents.extend(other.parents);
        self.patterns
            .extend(other.patterns.into_iter().map(|(s, k, m)| (s, k, remap(m))));
        self.allow.extend(other.allow);
        self.too_many_feeds |= other.too_many_feeds;
    }

    /// Add an allowlist entry; false for a duplicate, an `address:port` or
    /// a pattern (allowlists take domains, addresses and networks).
    pub fn allow(&mut self, entry: Entry) -> bool {
        match entry {
            Entry::Ip(_) | Entry::Net(_) | Entry::Domain(_) => self.allow.insert(entry),
            Entry::IpPort(..) | Entry::Url(_) | Entry::Keyword(_) => false,
        }
    }

    /// A snapshot of this builder alone.
    pub fn build(self) -> Snapshot {
        Snapshot::assemble(vec![Arc::new(self.build_part())])
    }

    pub fn build_part(self) -> Part {
        if self.too_many_feeds {
            tracing::error!("more than 256 feeds in one builder: the extra feeds share the last");
        }
        let SnapshotBuilder {
            feeds,
            notes,
            v4,
            v6,
            ports,
            nets,
            domains,
            parents,
            patterns,
            allow,
            ..
        } = self;
        let prio = |m: u32| {
            let (f, rank) = &feeds[(m & 0xff) as usize];
            (f.severity, std::cmp::Reverse(*rank))
        };
        let (parents, (v4, v4_meta, d4), (domains, dom_meta, dd)) =
            big_tables(v4, domains, parents, prio);
        let (v6, v6_meta, d6) = dedup(v6, prio);
        let (ports, dp) = dedup_pairs(ports, prio);
        let (nets, dn) = dedup_pairs(nets, prio);
        let (nets4, nets6) = ranges(nets.iter().map(|n| n.0));
        let (patterns, dpat) = dedup_patterns(patterns, prio);
        let counts = count_kinds(v4.len() + v6.len(), &ports, &nets, &domains, &patterns);
        let (a4, a6, an, ad) = allow_keys(allow);
        let (allow_nets4, allow_nets6) = ranges(an.into_iter());
        Part {
            feeds,
            notes,
            v4: Keys::new(v4),
            v4_meta,
            v6: Keys::new(v6),
            v6_meta,
            ports,
            nets,
            nets4,
            nets6,
            domains: Keys::new(domains),
            dom_meta,
            parents,
            patterns,
            allow_v4: Keys::new(a4),
            allow_v6: Keys::new(a6),
            allow_nets4,
            allow_nets6,
            allow_domains: Keys::new(ad),
            counts,
            duplicates: d4 + dd + d6 + dp + dn + dpat,
            key: HashKey::process().clone(),
        }
    }
}

/// Keys with their metas and the number of duplicates merged, as
/// [`dedup`] returns them.
type Deduped<K> = (Vec<K>, Metas, usize);

/// The parent hashes (sorted, distinct) and the deduplicated IPv4 and
/// domain tables: the large ones, built on three threads when there are
/// [`PARALLEL_FROM`] entries or more.
fn big_tables<P: Ord>(
    v4: Vec<(u32, u32)>,
    domains: Vec<(u64, u32)>,
    parents: Vec<u64>,
    prio: impl Fn(u32) -> P + Copy + Sync,
) -> (Vec<u64>, Deduped<u32>, Deduped<u64>) {
    if v4.len() + domains.len() >= PARALLEL_FROM {
        std::thread::scope(|sc| {
            let d = sc.spawn(|| dedup(domains, prio));
            let p = sc.spawn(|| parents_sorted(parents));
            let i = dedup(v4, prio);
            (
                p.join().expect("parent table builder panicked"),
                i,
                d.join().expect("domain table builder panicked"),
            )
        })
    } else {
        (
            parents_sorted(parents),
            dedup(v4, prio),
            dedup(domains, prio),
        )
    }
}

/// Parent hashes sorted and distinct, for the snapshot's filter.
fn parents_sorted(mut p: Vec<u64>) -> Vec<u64> {
    p.sort_unstable();
    p.dedup();
    p.shrink_to_fit();
    p
}

/// URL and keyword patterns sorted, the best of each kept (as [`dedup`]);
/// with how many duplicates were merged.
fn dedup_patterns<P: Ord>(
    mut patterns: Vec<(Box<str>, IndicatorKind, u32)>,
    prio: impl Fn(u32) -> P,
) -> (Vec<(Box<str>, IndicatorKind, u32)>, usize) {
    let before = patterns.len();
    patterns.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| prio(b.2).cmp(&prio(a.2))));
    patterns.dedup_by(|a, b| a.0 == b.0);
    let dpat = before - patterns.len();
    patterns.shrink_to_fit();
    (patterns, dpat)
}

/// Distinct indicators per kind (kinds with none left out).
fn count_kinds(
    ips: usize,
    ports: &[((Key, u16), u32)],
    nets: &[(IpNet, u32)],
    domains: &[u64],
    patterns: &[(Box<str>, IndicatorKind, u32)],
) -> FxHashMap<IndicatorKind, usize> {
    let mut counts = FxHashMap::default();
    let mut count = |k, n: usize| {
        if n > 0 {
            *counts.entry(k).or_insert(0) += n;
        }
    };
    count(IndicatorKind::Ip, ips);
    count(IndicatorKind::IpPort, ports.len());
    count(IndicatorKind::Cidr, nets.len());
    count(IndicatorKind::Domain, domains.len());
    for p in patterns {
        count(p.1, 1);
    }
    counts
}

/// The allowlist's IPv4 and IPv6 addresses and domain hashes (each sorted
/// and distinct) and its networks.
fn allow_keys(allow: FxHashSet<Entry>) -> (Vec<u32>, Vec<u128>, Vec<IpNet>, Vec<u64>) {
    let (mut a4, mut a6, mut an, mut ad) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in allow {
        match e {
            Entry::Ip(ip) => match Key::from(ip) {
                Key::V4(a) => a4.push(a),
                Key::V6(a) => a6.push(a),
            },
            Entry::Net(n) => an.push(n),
            Entry::Domain(d) => ad.push(HashKey::process().domain(&d)),
            _ => {}
        }
    }
    a4.sort_unstable();
    a4.dedup();
    a6.sort_unstable();
    a6.dedup();
    ad.sort_unstable();
    ad.dedup();
    (a4, a6, an, ad)
}

/// Sort `(key, meta)` pairs, keep the best of each key; returns the keys,
/// their metas and how many duplicates were merged.
fn dedup<K: Ord + Copy, P: Ord>(mut v: Vec<(K, u32)>, prio: impl Fn(u32) -> P) -> Deduped<K> {
    let before = v.len();
    // Stable: among equals the earlier entry stays first.
    v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| prio(b.1).cmp(&prio(a.1))));
    v.dedup_by_key(|e| e.0);
    let dups = before - v.len();
    let metas = Metas::new(v.iter().map(|e| e.1).collect());
    (v.into_iter().map(|e| e.0).collect(), metas, dups)
}

fn dedup_pairs<K: Ord + Copy, P: Ord>(
    mut v: Vec<(K, u32)>,
    prio: impl Fn(u32) -> P,
) -> (Vec<(K, u32)>, usize) {
    let before = v.len();
    v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| prio(b.1).cmp(&prio(a.1))));
    v.dedup_by_key(|e| e.0);
    let dups = before - v.len();
    v.shrink_to_fit();
    (v, dups)
}

/// IPv4 and IPv6 ranges over distinct networks; values are the networks'
/// positions in the order given.
fn ranges(nets: impl Iterator<Item = IpNet>) -> (Ranges<u32>, Ranges<u128>) {
    let (mut r4, mut r6) = (Vec::new(), Vec::new());
    for (i, n) in nets.enumerate() {
        match bounds(&n) {
            (Key::V4(a), Key::V4(b)) => r4.push((a, b, i as u32)),
            (Key::V6(a), Key::V6(b)) => r6.push((a, b, i as u32)),
            _ => {}
        }
    }
    (Ranges::new(r4, |x| x as u32), Ranges::new(r6, |x| x))
}

/// Address of an exact entry, for alerts.
pub(super) fn v4_addr(a: u32) -> IpAddr {
    IpAddr::V4(a.into())
}
