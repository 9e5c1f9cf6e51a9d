//! Compiling feed entries into a [`Snapshot`].
//!
//! `add` only appends (an indicator record, and its text to one arena);
//! `build` sizes every table once and fills them, the domain table and the
//! address tables on two threads when there are many entries. Why: 1.6M
//! indicators took 1.4 s with per-entry strings and growing hash maps; the
//! start-up target is 0.3 s.

use super::tables::{DomainTable, IpTable, hash_str};
use super::{FeedMeta, Snapshot, Stored, Value};
use crate::intel::indicator::{Entry, IndicatorKind};
use aho_corasick::{AhoCorasickBuilder, MatchKind};
use rustc_hash::{FxHashMap, FxHashSet};
use std::net::IpAddr;
use std::sync::Arc;

/// Above this many entries the two table families are built in parallel.
const PARALLEL_FROM: usize = 50_000;

/// Accumulates entries, then compiles the tables.
#[derive(Default)]
pub struct SnapshotBuilder {
    /// Feeds with their rank: on a duplicate of equal severity the feed of
    /// lower rank (earlier in the configuration) wins.
    feeds: Vec<(Arc<FeedMeta>, u32)>,
    next_rank: u32,
    stored: Vec<Stored>,
    text: String,
    allow_ips: IpTable,
    allow_domains: FxHashSet<Box<str>>,
}

impl SnapshotBuilder {
    /// Room for `n` more entries (a feed's line count, say).
    pub fn reserve(&mut self, n: usize) {
        self.stored.reserve(n);
    }

    /// A builder whose first feed ranks `rank`: for loading feed number
    /// `rank` of a configuration on its own, to be [`absorb`](Self::absorb)ed.
    pub fn ranked(rank: u32) -> SnapshotBuilder {
        SnapshotBuilder {
            next_rank: rank,
            ..Default::default()
        }
    }

    fn feed_index(&mut self, feed: &Arc<FeedMeta>) -> u32 {
        match self.feeds.iter().rposition(|f| Arc::ptr_eq(&f.0, feed)) {
            Some(i) => i as u32,
            None => {
                self.feeds.push((feed.clone(), self.next_rank));
                self.next_rank += 1;
                (self.feeds.len() - 1) as u32
            }
        }
    }

    /// Add a blocklist entry from `feed`. Duplicates are resolved in
    /// [`build`](Self::build): the first feed wins unless a later one is
    /// more severe.
    pub fn add(&mut self, entry: Entry, feed: &Arc<FeedMeta>) {
        let feed = self.feed_index(feed);
        let kind = entry.kind();
        let value = match entry {
            Entry::Ip(ip) => Value::Ip(ip),
            Entry::Net(n) => Value::Net(n),
            Entry::IpPort(ip, p) => Value::IpPort(ip, p),
            Entry::Domain(s) | Entry::Url(s) | Entry::Keyword(s) => self.push_text(&s),
        };
        self.stored.push(Stored { value, kind, feed });
    }

    /// [`add`](Self::add) for a domain already validated and normalised
    /// (see `indicator::classify_domain`), without an owned `Entry`.
    pub fn add_domain(&mut self, name: &str, feed: &Arc<FeedMeta>) {
        let feed = self.feed_index(feed);
        let value = self.push_text(name);
        self.stored.push(Stored {
            value,
            kind: IndicatorKind::Domain,
            feed,
        });
    }

    fn push_text(&mut self, s: &str) -> Value {
        let off = self.text.len() as u32;
        self.text.push_str(s);
        Value::Text(off, s.len() as u32)
    }

    /// Append everything `other` holds (loaded separately, e.g. on another
    /// thread). Which indicator wins a duplicate depends on severity and
    /// feed rank, not on the order builders are absorbed in.
    pub fn absorb(&mut self, other: SnapshotBuilder) {
        let feed_base = self.feeds.len() as u32;
        let text_base = self.text.len() as u32;
        self.feeds.extend(other.feeds);
        self.next_rank = self.next_rank.max(other.next_rank);
        self.text.push_str(&other.text);
        self.stored.extend(other.stored.into_iter().map(|mut s| {
            s.feed += feed_base;
            if let Value::Text(o, l) = s.value {
                s.value = Value::Text(o + text_base, l);
            }
            s
        }));
        self.allow_ips.absorb(other.allow_ips);
        self.allow_domains.extend(other.allow_domains);
    }

    /// Add an allowlist entry; false for a duplicate or a pattern (patterns
    /// cannot be allowlisted).
    pub fn allow(&mut self, entry: Entry) -> bool {
        let new = |_| false;
        match entry {
            Entry::Ip(ip) => !self.allow_ips.insert_ip(ip, 0, new),
            Entry::Net(n) => !self.allow_ips.insert_net(&n, 0, new),
            Entry::IpPort(ip, p) => !self.allow_ips.insert_port(ip, p, 0, new),
            Entry::Domain(d) => self.allow_domains.insert(d.into()),
            Entry::Url(_) | Entry::Keyword(_) => false,
        }
    }

    pub fn build(self) -> Snapshot {
        let SnapshotBuilder {
            feeds,
            stored,
            text,
            allow_ips,
            allow_domains,
            next_rank: _,
        } = self;
        let text_of = |id: u32| match stored[id as usize].value {
            Value::Text(o, l) => &text[o as usize..(o + l) as usize],
            _ => "",
        };
        // Priority of an indicator on a duplicate: more severe first, then
        // the lower feed rank; within one feed the earlier entry stays.
        let prio = |id: u32| {
            let (f, rank) = &feeds[stored[id as usize].feed as usize];
            (f.severity, std::cmp::Reverse(*rank))
        };
        let build_ips = || {
            let mut t = IpTable::default();
            let (mut ip, mut net, mut port) = (0, 0, 0);
            let n = stored
                .iter()
                .filter(|s| matches!(s.value, Value::Ip(IpAddr::V4(_))))
                .count();
            t.v4.reserve(n);
            for (id, s) in stored.iter().enumerate() {
                let id = id as u32;
                let newer = |old| prio(id) > prio(old);
                match &s.value {
                    Value::Ip(a) => ip += usize::from(t.insert_ip(*a, id, newer)),
                    Value::Net(n) => net += usize::from(t.insert_net(n, id, newer)),
                    Value::IpPort(a, p) => port += usize::from(t.insert_port(*a, *p, id, newer)),
                    Value::Text(..) => {}
                }
            }
            let dups = vec![
                (IndicatorKind::Ip, ip),
                (IndicatorKind::Cidr, net),
                (IndicatorKind::IpPort, port),
            ];
            (t, dups)
        };
        let build_domains = || {
            let n = stored
                .iter()
                .filter(|s| s.kind == IndicatorKind::Domain)
                .count();
            let mut t = DomainTable::with_capacity(n);
            let mut dups = 0;
            for (id, s) in stored.iter().enumerate() {
                if s.kind == IndicatorKind::Domain {
                    let id = id as u32;
                    let name = text_of(id);
                    let newer = |old| prio(id) > prio(old);
                    dups += usize::from(t.insert(hash_str(name), name, id, text_of, newer));
                }
            }
            (t, vec![(IndicatorKind::Domain, dups)])
        };
        let ((ips, ip_dups), (domains, dom_dups)) = if stored.len() >= PARALLEL_FROM {
            std::thread::scope(|sc| {
                let d = sc.spawn(build_domains);
                let i = build_ips();
                (i, d.join().expect("domain table builder panicked"))
            })
        } else {
            (build_ips(), build_domains())
        };

        // URL/keyword patterns: one automaton; a repeated pattern keeps the
        // most severe feed's indicator.
        let mut pattern_ids: Vec<u32> = Vec::new();
        let mut seen: FxHashMap<&str, usize> = FxHashMap::default();
        let mut pat_dups = vec![(IndicatorKind::Url, 0), (IndicatorKind::Keyword, 0)];
        for (id, s) in stored.iter().enumerate() {
            if matches!(s.kind, IndicatorKind::Url | IndicatorKind::Keyword) {
                let id = id as u32;
                match seen.get(text_of(id)) {
                    Some(&at) => {
                        pat_dups[usize::from(s.kind == IndicatorKind::Keyword)].1 += 1;
                        if prio(id) > prio(pattern_ids[at]) {
                            pattern_ids[at] = id;
                        }
                    }
                    None => {
                        seen.insert(text_of(id), pattern_ids.len());
                        pattern_ids.push(id);
                    }
                }
            }
        }
        let patterns = if pattern_ids.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostFirst)
                .build(pattern_ids.iter().map(|&id| text_of(id).as_bytes()));
            match ac {
                Ok(ac) => Some((ac, pattern_ids)),
                Err(e) => {
                    tracing::error!("URL/keyword patterns could not be compiled: {e}");
                    None
                }
            }
        };
        drop(seen);

        // Distinct entries per kind: everything stored minus the duplicates
        // each table merged (counted by kind while inserting).
        let mut counts = FxHashMap::default();
        for s in &stored {
            *counts.entry(s.kind).or_insert(0usize) += 1;
        }
        for (kind, d) in ip_dups.iter().chain(&dom_dups).chain(&pat_dups) {
            if let Some(c) = counts.get_mut(kind) {
                *c -= d;
            }
        }
        let total_dups = [&ip_dups, &dom_dups, &pat_dups]
            .iter()
            .flat_map(|v| v.iter().map(|x| x.1))
            .sum();
        Snapshot {
            feeds: feeds.into_iter().map(|f| f.0).collect(),
            stored,
            text,
            ips,
            domains,
            patterns,
            allow_ips,
            allow_domains,
            counts,
            duplicates: total_dups,
        }
    }
}
