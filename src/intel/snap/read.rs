//! Turning a verified snapshot file's payload back into a [`Snapshot`]:
//! the large sorted arrays are viewed in place, the small tables (feeds,
//! notes, ports, networks, patterns) decoded.
//!
//! Runs only after the signature and the checksum verified (`mod.rs`), and
//! still trusts no offset, length or value: every section must lie inside
//! the payload, aligned; keys must be sorted and distinct, indexes must fit
//! their keys, every meta must name a feed of its part, every range value
//! a network, and the counts must agree with the tables. A file that
//! passes cannot make a lookup index out of bounds. What is not checked is
//! that the filters hold every key (a signed file from `feeds compile`
//! does; checking would hash every key and cost the time the file saves).

use super::FeedSummary;
use super::format::{
    self, ALIGN, DOMAIN_FILTER, GLOBALS, Header, IP_FILTER, KINDS, PAYLOAD_AT, RECORD, SLOTS,
    V4_MAP, slot,
};
use crate::intel::arr::{Arr, Buf, Plain};
use crate::intel::filter::{Block, Bloom, HashKey};
use crate::intel::indicator::IndicatorKind;
use crate::intel::netrange::Key;
use crate::intel::part::{Metas, Note, Part};
use crate::intel::snapshot::{Filters, V4_MAP_WORDS};
use crate::intel::tables::{Keys, RadixKey, Ranges};
use crate::intel::{FeedMeta, Severity, Snapshot};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

type R<T> = Result<T, String>;

/// The payload's sections: file offset and length of each.
struct Dir<'a> {
    buf: &'a Arc<Buf>,
    entries: Vec<(usize, usize)>,
}

impl Dir<'_> {
    fn bytes(&self, i: usize) -> &[u8] {
        let (at, len) = self.entries[i];
        &self.buf.bytes()[at..at + len]
    }

    fn arr<T: Plain>(&self, i: usize) -> R<Arr<T>> {
        let (at, len) = self.entries[i];
        if !len.is_multiple_of(size_of::<T>()) {
            return Err(format!(
                "section {i}: {len} bytes is not a whole number of entries"
            ));
        }
        Arr::view(self.buf, at, len / size_of::<T>())
            .ok_or_else(|| format!("section {i} cannot be read in place"))
    }
}

fn directory<'a>(buf: &'a Arc<Buf>, h: &Header) -> R<Dir<'a>> {
    let parts = h.parts as usize;
    if parts > 1 << 16 {
        return Err(format!("{parts} feeds (at most 65,536)"));
    }
    let payload = &buf.bytes()[PAYLOAD_AT..];
    let dir_len = format::directory_len(parts);
    if payload.len() < dir_len {
        return Err("the directory is cut short".into());
    }
    let mut c = Cur { b: payload, at: 0 };
    let counts = [c.u32()?, c.u32()?, c.u32()?, c.u32()?];
    if counts != [h.parts, SLOTS as u32, GLOBALS as u32, 0] {
        return Err(format!("the directory says {counts:?}"));
    }
    let mut entries = Vec::with_capacity(format::entries(parts));
    for i in 0..format::entries(parts) {
        let (at, len) = (c.u64()?, c.u64()?);
        let end = at.checked_add(len);
        if !at.is_multiple_of(ALIGN as u64)
            || at < dir_len as u64
            || end.is_none_or(|e| e > payload.len() as u64)
        {
            return Err(format!("section {i} lies outside the payload"));
        }
        entries.push((PAYLOAD_AT + at as usize, len as usize));
    }
    Ok(Dir { buf, entries })
}

/// A reader over a section's bytes.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end = end.ok_or("a section ends early")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "")?,
        ))
    }

    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "")?,
        ))
    }

    fn str(&mut self) -> R<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| "text that is not UTF-8".into())
    }

    fn opt(&mut self) -> R<Option<Box<str>>> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(self.str()?.into()),
            x => return Err(format!("bad option tag {x}")),
        })
    }

    fn done(&self) -> R<()> {
        (self.at == self.b.len())
            .then_some(())
            .ok_or_else(|| "a section has bytes left over".into())
    }
}

fn severity(code: u8) -> R<Severity> {
    Ok(match code {
        0 => Severity::Low,
        1 => Severity::Medium,
        2 => Severity::High,
        3 => Severity::Critical,
        x => return Err(format!("unknown severity {x}")),
    })
}

type Feeds = Vec<(Arc<FeedMeta>, u32)>;

fn feeds_blob(b: &[u8]) -> R<(FeedSummary, Feeds)> {
    let mut c = Cur { b, at: 0 };
    let name = c.str()?.to_string();
    let accepted = c.u64()?;
    let kinds: [u64; 6] = [c.u64()?, c.u64()?, c.u64()?, c.u64()?, c.u64()?, c.u64()?];
    let duplicates = c.u64()?;
    let n = c.u32()?;
    let mut feeds = Vec::new();
    for _ in 0..n {
        let rank = c.u32()?;
        let severity = severity(c.u8()?)?;
        let meta = FeedMeta {
            name: c.str()?.to_string(),
            category: c.str()?.to_string(),
            severity,
        };
        feeds.push((Arc::new(meta), rank));
    }
    c.done()?;
    if feeds.len() > 256 {
        return Err("more than 256 feeds in one part".into());
    }
    let s = FeedSummary {
        name,
        accepted,
        kinds,
        duplicates,
    };
    Ok((s, feeds))
}

fn notes_blob(b: &[u8]) -> R<Vec<Note>> {
    let mut c = Cur { b, at: 0 };
    let n = c.u32()?;
    let mut notes = Vec::new();
    for _ in 0..n {
        let reference = c.opt()?;
        let description = c.opt()?;
        notes.push(Note {
            reference,
            description,
        });
    }
    c.done()?;
    Ok(notes)
}

type Patterns = Vec<(Box<str>, IndicatorKind, u32)>;

fn patterns_blob(b: &[u8]) -> R<Patterns> {
    let mut c = Cur { b, at: 0 };
    let n = c.u32()?;
    let mut out = Vec::new();
    for _ in 0..n {
        let kind = match KINDS.get(c.u8()? as usize) {
            Some(k @ (IndicatorKind::Url | IndicatorKind::Keyword)) => *k,
            _ => return Err("a pattern of a kind that is not a pattern".into()),
        };
        let meta = c.u32()?;
        out.push((c.str()?.into(), kind, meta));
    }
    c.done()?;
    Ok(out)
}

/// Address records: (key, meta, port, prefix length).
fn records(b: &[u8]) -> R<Vec<(Key, u32, u16, u8)>> {
    if !b.len().is_multiple_of(RECORD) {
        return Err("address records of the wrong size".into());
    }
    b.chunks_exact(RECORD)
        .map(|r| {
            let mut c = Cur { b: r, at: 0 };
            let addr = u128::from(c.u64()?) | (u128::from(c.u64()?) << 64);
            let meta = c.u32()?;
            let port = u16::from_le_bytes([c.u8()?, c.u8()?]);
            let (family, prefix) = (c.u8()?, c.u8()?);
            let key = match (family, u32::try_from(addr)) {
                (4, Ok(a)) if prefix <= 32 => Key::V4(a),
                (6, _) if prefix <= 128 => Key::V6(addr),
                _ => return Err("a bad address record".to_string()),
            };
            Ok((key, meta, port, prefix))
        })
        .collect()
}

fn ports(b: &[u8]) -> R<Vec<((Key, u16), u32)>> {
    let v: Vec<_> = records(b)?
        .into_iter()
        .map(|(k, m, port, _)| ((k, port), m))
        .collect();
    sorted_by(&v, |x| x.0)?;
    Ok(v)
}

fn nets(b: &[u8]) -> R<Vec<(IpNet, u32)>> {
    let v = records(b)?
        .into_iter()
        .map(|(k, m, _, prefix)| {
            let n = match k {
                Key::V4(a) => Ipv4Net::new(Ipv4Addr::from(a), prefix).map(IpNet::V4),
                Key::V6(a) => Ipv6Net::new(Ipv6Addr::from(a), prefix).map(IpNet::V6),
            };
            n.map(|n| (n, m)).map_err(|_| "a bad network".to_string())
        })
        .collect::<R<Vec<_>>>()?;
    sorted_by(&v, |x| x.0)?;
    Ok(v)
}

fn sorted_by<T, K: Ord>(v: &[T], key: impl Fn(&T) -> K) -> R<()> {
    v.windows(2)
        .all(|w| key(&w[0]) < key(&w[1]))
        .then_some(())
        .ok_or_else(|| "a table is not sorted".into())
}

fn index(dir: &Dir, i: usize) -> R<Option<Arr<u32>>> {
    let ix: Arr<u32> = dir.arr(i)?;
    Ok((!ix.is_empty()).then_some(ix))
}

fn keys<K: RadixKey>(dir: &Dir, at: usize) -> R<Keys<K>> {
    Keys::from_parts(dir.arr(at)?, index(dir, at + 1)?)
        .ok_or_else(|| format!("section {at}: keys unsorted or an index that does not fit"))
}

fn ranges<K: RadixKey + Into<u128>>(dir: &Dir, at: usize, values: usize) -> R<Ranges<K>> {
    Ranges::from_parts(dir.arr(at)?, dir.arr(at + 1)?, index(dir, at + 2)?, values)
        .ok_or_else(|| format!("section {at}: ranges unsorted or pointing nowhere"))
}

fn metas(dir: &Dir, at: usize, keys: usize) -> R<Metas> {
    Metas::from_arr(dir.arr(at)?, keys).ok_or_else(|| format!("section {at}: metas do not fit"))
}

/// Distinct indicators per kind, as the builder counts them.
fn counts(p: &Part) -> FxHashMap<IndicatorKind, usize> {
    let mut c = FxHashMap::default();
    let mut add = |k, n: usize| {
        if n > 0 {
            *c.entry(k).or_insert(0) += n;
        }
    };
    add(IndicatorKind::Ip, p.v4.len() + p.v6.len());
    add(IndicatorKind::IpPort, p.ports.len());
    add(IndicatorKind::Cidr, p.nets.len());
    add(IndicatorKind::Domain, p.domains.len());
    for x in &p.patterns {
        add(x.1, 1);
    }
    c
}

/// Every meta of the part names one of its feeds.
fn metas_fit(p: &Part) -> bool {
    let n = p.feeds.len();
    let ok = |m: &u32| ((m & 0xff) as usize) < n;
    // An empty meta table means meta 0 for every key.
    let table = |keys: usize, m: &Metas| keys == 0 || m.as_slice().iter().all(ok) && n > 0;
    table(p.v4.len(), &p.v4_meta)
        && table(p.v6.len(), &p.v6_meta)
        && table(p.domains.len(), &p.dom_meta)
        && p.ports.iter().all(|x| ok(&x.1))
        && p.nets.iter().all(|x| ok(&x.1))
        && p.patterns.iter().all(|x| ok(&x.2))
}

fn part(dir: &Dir, i: usize, key: &HashKey) -> R<(Part, FeedSummary)> {
    let at = |s: usize| i * SLOTS + s;
    let (summary, feeds) = feeds_blob(dir.bytes(at(slot::FEEDS)))?;
    let v4 = keys::<u32>(dir, at(slot::V4))?;
    let v6 = keys::<u128>(dir, at(slot::V6))?;
    let domains = keys::<u64>(dir, at(slot::DOMAINS))?;
    let nets = nets(dir.bytes(at(slot::NETS)))?;
    let mut p = Part {
        feeds,
        notes: notes_blob(dir.bytes(at(slot::NOTES)))?,
        v4_meta: metas(dir, at(slot::V4_META), v4.len())?,
        v6_meta: metas(dir, at(slot::V6_META), v6.len())?,
        dom_meta: metas(dir, at(slot::DOMAINS_META), domains.len())?,
        v4,
        v6,
        domains,
        ports: ports(dir.bytes(at(slot::PORTS)))?,
        nets4: ranges(dir, at(slot::NETS4), nets.len())?,
        nets6: ranges(dir, at(slot::NETS6), nets.len())?,
        nets,
        parents: Vec::new(),
        patterns: patterns_blob(dir.bytes(at(slot::PATTERNS)))?,
        allow_v4: keys(dir, at(slot::ALLOW_V4))?,
        allow_v6: keys(dir, at(slot::ALLOW_V6))?,
        // Allowlist ranges only say "covered": any value will do.
        allow_nets4: ranges(dir, at(slot::ALLOW_NETS4), usize::MAX)?,
        allow_nets6: ranges(dir, at(slot::ALLOW_NETS6), usize::MAX)?,
        allow_domains: keys(dir, at(slot::ALLOW_DOMAINS))?,
        counts: FxHashMap::default(),
        duplicates: summary.duplicates as usize,
        key: key.clone(),
    };
    p.counts = counts(&p);
    if super::write::kind_counts(&p) != summary.kinds {
        return Err(format!(
            "feed {:?}: its counts disagree with its tables",
            summary.name
        ));
    }
    if !metas_fit(&p) {
        return Err(format!("feed {:?}: an entry names no feed", summary.name));
    }
    Ok((p, summary))
}

fn filters(dir: &Dir, parts: &[Arc<Part>]) -> R<Filters> {
    let g = |k: usize| format::entries(parts.len()) - GLOBALS + k;
    let f = Filters {
        ip: Bloom::from_blocks(dir.arr::<Block>(g(IP_FILTER))?),
        dom: Bloom::from_blocks(dir.arr::<Block>(g(DOMAIN_FILTER))?),
        v4_map: dir.arr::<u64>(g(V4_MAP))?,
    };
    let any = |t: fn(&Part) -> bool| parts.iter().any(|p| t(p));
    let ips = any(|p| !p.v4.is_empty() || !p.v6.is_empty());
    let v4 = any(|p| !p.v4.is_empty() || p.nets.iter().any(|n| n.0.addr().is_ipv4()));
    let doms = any(|p| !p.domains.is_empty());
    let ok = (!ips || !f.ip.blocks().is_empty())
        && (!doms || !f.dom.blocks().is_empty())
        && (f.v4_map.is_empty() || f.v4_map.len() == V4_MAP_WORDS)
        && (!v4 || !f.v4_map.is_empty());
    ok.then_some(f)
        .ok_or_else(|| "the filters do not fit the tables".into())
}

/// The snapshot in a verified file's bytes, and what it says per feed.
pub fn decode(buf: &Arc<Buf>, h: &Header, key: HashKey) -> R<(Snapshot, Vec<FeedSummary>)> {
    let dir = directory(buf, h)?;
    let mut parts = Vec::with_capacity(h.parts as usize);
    let mut feeds = Vec::with_capacity(h.parts as usize);
    for i in 0..h.parts as usize {
        let (p, s) = part(&dir, i, &key)?;
        parts.push(Arc::new(p));
        feeds.push(s);
    }
    let kinds: [u64; 6] = std::array::from_fn(|k| feeds.iter().map(|f| f.kinds[k]).sum());
    if kinds != h.kinds || kinds.iter().sum::<u64>() != h.indicators {
        return Err("the header's counts disagree with the tables".into());
    }
    let filters = filters(&dir, &parts)?;
    Ok((Snapshot::with_filters(parts, filters, key), feeds))
}
