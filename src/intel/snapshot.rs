//! The matcher's view: every feed's [`Part`] behind two Bloom filters
//! (addresses, domains) and one Aho-Corasick automaton for URL/keyword
//! patterns.
//!
//! Invariants:
//! - A miss in a filter is a miss in every part (filters hold every exact
//!   key of every part), so the miss path reads one cache line per probe.
//! - On a key listed by several feeds the winner is the most specific entry
//!   (longest domain suffix; exact address, then longest prefix), then the
//!   more severe feed, then the earlier feed in the configuration.

use super::arr::Arr;
use super::filter::{Bloom, BloomSet, HashKey};
use super::part::Part;
use super::{FeedMeta, Indicator};
use crate::intel::indicator::IndicatorKind;
use crate::intel::netrange::Key;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A match: part (16 bits), kind (4), offset of the matched suffix in the
/// looked-up name (8; domains only), position in the part's table (36).
pub type Id = u64;

// Table codes inside an id.
const IP4: u64 = 0;
const CIDR: u64 = 1;
const PORT: u64 = 2;
const DOMAIN: u64 = 3;
const PATTERN: u64 = 4;
const IP6: u64 = 5;

#[inline]
fn id(part: usize, code: u64, at: usize, pos: usize) -> Id {
    ((part as u64) << 48) | (code << 44) | ((at.min(255) as u64) << 36) | pos as u64
}

/// Part, table code, suffix offset, position.
fn split(id: Id) -> (usize, u64, usize, usize) {
    (
        (id >> 48) as usize,
        (id >> 44) & 0xf,
        ((id >> 36) & 0xff) as usize,
        (id & 0xf_ffff_ffff) as usize,
    )
}

/// The filters in front of every part's tables.
#[derive(Default)]
pub struct Filters {
    pub(super) ip: Bloom,
    pub(super) dom: Bloom,
    /// One bit per IPv4 /24 that holds a listed address or meets a listed
    /// network: most misses end at this bit (2 MiB, vs the filter and the
    /// range search behind it). Empty when nothing IPv4 is listed.
    pub(super) v4_map: Arr<u64>,
}

/// Words of a non-empty IPv4 /24 map.
pub const V4_MAP_WORDS: usize = 1 << 18;

/// An immutable set of lookup tables, shared by every worker.
pub struct Snapshot {
    parts: Vec<Arc<Part>>,
    filters: Filters,
    /// What every domain and address hash of the tables and filters is
    /// keyed with.
    key: HashKey,
    patterns: Option<(AhoCorasick, Vec<Id>)>,
    any_ports: bool,
    any_nets: bool,
    any_allow: bool,
    any_domains: bool,
    /// Distinct indicators per kind (within each feed; see
    /// [`Snapshot::cross_feed_duplicates`] for repeats across feeds).
    pub counts: FxHashMap<IndicatorKind, usize>,
    /// Entries merged because they repeated one in the same feed.
    pub duplicates: usize,
}

impl Snapshot {
    pub fn empty() -> Snapshot {
        Snapshot::assemble(Vec::new())
    }

    /// Put parts built from feed text together (configuration order) and
    /// build the filters and the pattern automaton over all of them.
    pub fn assemble(parts: Vec<Arc<Part>>) -> Snapshot {
        if parts.len() > 1 << 16 {
            tracing::error!("more than 65,536 feeds: the rest are not matched");
        }
        let key = parts
            .first()
            .map_or_else(HashKey::default, |p| p.key.clone());
        let parts: Vec<Arc<Part>> = parts
            .into_iter()
            .take(1 << 16)
            .filter(|p| {
                // Parts read from a snapshot file have no parents (the file
                // holds their filters) and may have another key: they are
                // never assembled with others, and this is a bug if they are.
                let ok = p.key == key && (p.domains.is_empty() || !p.parents.is_empty());
                if !ok {
                    tracing::error!("a feed's tables do not fit this snapshot: left out (a bug)");
                }
                ok
            })
            .collect();
        let filters = filters(&parts, &key);
        Snapshot::with_filters(parts, filters, key)
    }

    /// Parts with their filters and hash key, as a verified snapshot file
    /// holds them.
    pub(super) fn with_filters(parts: Vec<Arc<Part>>, filters: Filters, key: HashKey) -> Snapshot {
        let patterns = automaton(&parts);
        let mut counts = FxHashMap::default();
        for p in &parts {
            for (k, n) in &p.counts {
                *counts.entry(*k).or_insert(0) += n;
            }
        }
        Snapshot {
            filters,
            key,
            patterns,
            any_ports: parts.iter().any(|p| !p.ports.is_empty()),
            any_nets: parts.iter().any(|p| !p.nets.is_empty()),
            any_allow: parts.iter().any(|p| p.has_allow()),
            any_domains: parts.iter().any(|p| !p.domains.is_empty()),
            counts,
            duplicates: parts.iter().map(|p| p.duplicates).sum(),
            parts,
        }
    }

    fn meta_of(parts: &[Arc<Part>], id: Id) -> u32 {
        let (pi, code, _, pos) = split(id);
        let p = &parts[pi];
        match code {
            IP4 => p.v4_meta.get(pos),
            IP6 => p.v6_meta.get(pos),
            CIDR => p.nets[pos].1,
            PORT => p.ports[pos].1,
            DOMAIN => p.dom_meta.get(pos),
            _ => p.patterns[pos].2,
        }
    }

    pub fn parts(&self) -> &[Arc<Part>] {
        &self.parts
    }

    pub(super) fn filters(&self) -> &Filters {
        &self.filters
    }

    pub(super) fn key(&self) -> &HashKey {
        &self.key
    }

    /// Distinct indicators (within each feed), every kind together: what a
    /// snapshot file's header counts.
    pub fn indicators(&self) -> usize {
        self.counts.values().sum()
    }

    /// The indicator behind a match, ready for an alert (formats addresses;
    /// called once per hit, never per packet). `observed` is the name that
    /// was looked up, for domain matches (the indicator is its suffix).
    pub fn indicator(&self, id: Id, observed: &str) -> Indicator {
        let (pi, code, at, pos) = split(id);
        let p = &self.parts[pi];
        let m = Self::meta_of(&self.parts, id);
        let (value, kind): (Box<str>, IndicatorKind) = match code {
            IP4 => (
                super::builder::v4_addr(p.v4.get(pos)).to_string().into(),
                IndicatorKind::Ip,
            ),
            IP6 => (
                std::net::Ipv6Addr::from(p.v6.get(pos)).to_string().into(),
                IndicatorKind::Ip,
            ),
            CIDR => (p.nets[pos].0.to_string().into(), IndicatorKind::Cidr),
            PORT => {
                let ((k, port), _) = p.ports[pos];
                let s = match k {
                    Key::V4(a) => format!("{}:{port}", super::builder::v4_addr(a)),
                    Key::V6(a) => format!("[{}]:{port}", std::net::Ipv6Addr::from(a)),
                };
                (s.into(), IndicatorKind::IpPort)
            }
            DOMAIN => (
                observed.get(at..).unwrap_or(observed).into(),
                IndicatorKind::Domain,
            ),
            _ => (p.patterns[pos].0.clone(), p.patterns[pos].1),
        };
        let note = p.note(m);
        Indicator {
            value,
            kind,
            feed: p.feed(m).0.clone(),
            reference: note.and_then(|n| n.reference.clone()),
            description: note.and_then(|n| n.description.clone()),
        }
    }

    /// The feed a match came from.
    pub fn feed_of(&self, id: Id) -> &Arc<FeedMeta> {
        let (pi, ..) = split(id);
        &self.parts[pi].feed(Self::meta_of(&self.parts, id)).0
    }

    /// Entries loaded, duplicates within a feed included.
    pub fn len(&self) -> usize {
        self.counts.values().sum::<usize>() + self.duplicates
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap memory of the tables, filters included (the automaton excluded).
    pub fn heap_bytes(&self) -> usize {
        let f = &self.filters;
        self.parts.iter().map(|p| p.heap_bytes()).sum::<usize>()
            + f.ip.heap_bytes()
            + f.v4_map.heap_bytes()
            + f.dom.heap_bytes()
    }

    /// The winning candidate over every part: `find` gives a part's
    /// `(position, meta, specificity)`; the most specific wins, then the more
    /// severe feed, then the earlier one. Returns `(part, position)`.
    #[inline]
    fn best(&self, find: impl Fn(&Part) -> Option<(usize, u32, u8)>) -> Option<(usize, usize)> {
        let mut found: Option<(usize, usize, u32, u8)> = None;
        for (pi, p) in self.parts.iter().enumerate() {
            if let Some((pos, m, spec)) = find(p)
                && found.is_none_or(|f| (spec, p.prio(m)) > (f.3, self.parts[f.0].prio(f.2)))
            {
                found = Some((pi, pos, m, spec));
            }
        }
        found.map(|f| (f.0, f.1))
    }

    /// Listed `address:port`, exact address or containing network, most
    /// specific first.
    #[inline]
    pub fn match_ip(&self, ip: IpAddr, port: Option<u16>) -> Option<Id> {
        let k = Key::from(ip);
        if self.any_ports
            && let Some(port) = port
        {
            let found = self.best(|p| p.find_port(k, port).map(|(pos, m)| (pos, m, 0)));
            if let Some((pi, pos)) = found {
                return Some(id(pi, PORT, 0, pos));
            }
        }
        let h = match k {
            Key::V4(a) => {
                let s = a >> 8;
                let hit = self
                    .filters
                    .v4_map
                    .get((s >> 6) as usize)
                    .is_some_and(|w| w & (1 << (s & 63)) != 0);
                if !hit {
                    return None;
                }
                self.key.v4(a)
            }
            Key::V6(a) => self.key.v6(a),
        };
        if self.filters.ip.may_contain(h) {
            let found = self.best(|p| p.find_ip(k).map(|(pos, m)| (pos, m, 0)));
            if let Some((pi, pos)) = found {
                let code = if matches!(k, Key::V4(_)) { IP4 } else { IP6 };
                return Some(id(pi, code, 0, pos));
            }
        }
        if !self.any_nets {
            return None;
        }
        self.best(|p| p.find_net(k).map(|(pos, plen, m)| (pos, m, plen)))
            .map(|(pi, pos)| id(pi, CIDR, 0, pos))
    }

    /// The most specific listed domain that equals `name` or is a parent of
    /// it. `name` must already be normalised (see [`crate::protocols::name`]).
    #[inline]
    pub fn match_domain(&self, name: &str) -> Option<Id> {
        if !self.any_domains {
            return None;
        }
        // Walk from the last two labels down (a listed domain has at least
        // two labels, so the top-level label alone is never probed); a
        // suffix that is neither listed nor a parent of a listed domain ends
        // the walk, so a miss usually costs one probe.
        let b = name.as_bytes();
        let mut best: Option<Id> = None;
        let mut end = b.iter().rposition(|&c| c == b'.')?;
        loop {
            let start = match b[..end].iter().rposition(|&c| c == b'.') {
                Some(i) => i + 1,
                None => 0,
            };
            let h = self.key.domain(&name[start..]);
            let (listed, parent) = self.filters.dom.probe(h);
            if listed {
                let found = self.best(|p| p.find_domain(h).map(|(pos, m)| (pos, m, 0)));
                if let Some((pi, pos)) = found {
                    best = Some(id(pi, DOMAIN, start, pos));
                }
            }
            if !parent || start == 0 {
                return best;
            }
            end = start - 1;
        }
    }

    /// First URL or keyword pattern found in `haystack` (Host + target).
    #[inline]
    pub fn match_pattern(&self, haystack: &[u8]) -> Option<Id> {
        let (ac, ids) = self.patterns.as_ref()?;
        ac.find(haystack).map(|m| ids[m.pattern().as_usize()])
    }

    /// Whether any feed lists `address:port` entries (then a contact
    /// matches on its port too).
    pub fn has_port_entries(&self) -> bool {
        self.any_ports
    }

    pub fn has_patterns(&self) -> bool {
        self.patterns.is_some()
    }

    pub fn allow_ip(&self, ip: IpAddr) -> bool {
        let k = Key::from(ip);
        self.any_allow && self.parts.iter().any(|p| p.allows_ip(k))
    }

    pub fn allow_domain(&self, name: &str) -> bool {
        if !self.any_allow {
            return false;
        }
        let mut at = 0usize;
        loop {
            let h = self.key.domain(&name[at..]);
            if self.parts.iter().any(|p| p.allows_domain(h)) {
                return true;
            }
            match name[at..].find('.') {
                Some(i) => at += i + 1,
                None => return false,
            }
        }
    }

    /// Per part (configuration order): how many of its indicators an
    /// earlier part already lists. For `gatewatch feeds check`.
    pub fn cross_feed_duplicates(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.parts.len());
        for (i, p) in self.parts.iter().enumerate() {
            let earlier = &self.parts[..i];
            let mut n = 0;
            n +=
                p.v4.iter()
                    .filter(|&a| earlier.iter().any(|e| e.v4.find(a).is_some()))
                    .count();
            n +=
                p.v6.iter()
                    .filter(|&a| earlier.iter().any(|e| e.v6.find(a).is_some()))
                    .count();
            n += p
                .domains
                .iter()
                .filter(|&h| earlier.iter().any(|e| e.domains.find(h).is_some()))
                .count();
            n += p
                .nets
                .iter()
                .filter(|x| {
                    earlier
                        .iter()
                        .any(|e| e.nets.binary_search_by(|y| y.0.cmp(&x.0)).is_ok())
                })
                .count();
            n += p
                .patterns
                .iter()
                .filter(|x| {
                    earlier
                        .iter()
                        .any(|e| e.patterns.iter().any(|y| y.0 == x.0))
                })
                .count();
            out.push(n);
        }
        out
    }
}

/// The address filter, the domain filter (listed domains and their
/// parents) and the IPv4 /24 map over every part's keys.
fn filters(parts: &[Arc<Part>], key: &HashKey) -> Filters {
    let ips: usize = parts.iter().map(|p| p.v4.len() + p.v6.len()).sum();
    let doms: usize = parts.iter().map(|p| p.domains.len()).sum();
    let parents: usize = parts.iter().map(|p| p.parents.len()).sum();
    let mut ip_filter = BloomSet::with_keys(ips);
    let mut dom_filter = BloomSet::with_keys(doms + parents);
    let any_v4 = parts
        .iter()
        .any(|p| !p.v4.is_empty() || p.nets.iter().any(|n| n.0.addr().is_ipv4()));
    let mut v4_map = if any_v4 {
        vec![0u64; V4_MAP_WORDS]
    } else {
        Vec::new()
    };
    let mut mark = |first: u32, last: u32| {
        for s in (first >> 8)..=(last >> 8) {
            v4_map[(s >> 6) as usize] |= 1 << (s & 63);
        }
    };
    for p in parts {
        p.v4.iter().for_each(|a| {
            ip_filter.insert(key.v4(a));
            mark(a, a);
        });
        p.v6.iter().for_each(|a| ip_filter.insert(key.v6(a)));
        for (n, _) in &p.nets {
            if let ipnet::IpNet::V4(n) = n {
                mark(u32::from(n.network()), u32::from(n.broadcast()));
            }
        }
        p.domains.iter().for_each(|h| dom_filter.insert(h));
        p.parents.iter().for_each(|&h| dom_filter.insert_parent(h));
    }
    Filters {
        ip: ip_filter.freeze(),
        dom: dom_filter.freeze(),
        v4_map: v4_map.into(),
    }
}

/// One automaton for every part's patterns, with the id each pattern
/// stands for; a pattern in several feeds keeps the winning feed's entry.
/// `None` when there are no patterns or they cannot be compiled.
fn automaton(parts: &[Arc<Part>]) -> Option<(AhoCorasick, Vec<Id>)> {
    let mut best: FxHashMap<&str, (Id, usize)> = FxHashMap::default();
    let mut order: Vec<&str> = Vec::new();
    for (pi, p) in parts.iter().enumerate() {
        for (pos, (text, _, m)) in p.patterns.iter().enumerate() {
            let cand = (id(pi, PATTERN, 0, pos), pi);
            match best.get_mut(&**text) {
                Some(cur) => {
                    if p.prio(*m) > parts[cur.1].prio(Snapshot::meta_of(parts, cur.0)) {
                        *cur = cand;
                    }
                }
                None => {
                    best.insert(text, cand);
                    order.push(text);
                }
            }
        }
    }
    if order.is_empty() {
        return None;
    }
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(order.iter().map(|t| t.as_bytes()));
    match ac {
        Ok(ac) => Some((ac, order.iter().map(|t| best[t].0).collect())),
        Err(e) => {
            tracing::error!("URL/keyword patterns could not be compiled: {e}");
            None
        }
    }
}
