//! Laying a built [`Snapshot`] out as a signed file (see `format.rs`).

use super::format::{
    self, ALIGN, DOMAIN_FILTER, FORMAT, GLOBALS, Header, IP_FILTER, KINDS, PAYLOAD_AT, RECORD,
    SLOTS, V4_MAP, slot,
};
use super::sign::SigningKey;
use crate::intel::feeds::FeedReport;
use crate::intel::filter::{Block, HashKey};
use crate::intel::indicator::IndicatorKind;
use crate::intel::netrange::Key;
use crate::intel::part::{Note, Part};
use crate::intel::tables::{Keys, RadixKey, Ranges};
use crate::intel::{Severity, Snapshot};
use ipnet::IpNet;

/// Little-endian bytes of a table element.
trait Le: Copy {
    fn put(self, out: &mut Vec<u8>);
}

impl Le for u32 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Le for u64 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Le for u128 {
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Le for Block {
    fn put(self, out: &mut Vec<u8>) {
        self.0.iter().for_each(|w| w.put(out));
    }
}

fn array<T: Le>(v: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(v));
    v.iter().for_each(|x| x.put(&mut out));
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    (s.len() as u32).put(out);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
        None => out.push(0),
    }
}

pub fn severity_code(s: Severity) -> u8 {
    match s {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    }
}

/// Per kind of [`KINDS`], the part's distinct indicators.
pub fn kind_counts(p: &Part) -> [u64; 6] {
    std::array::from_fn(|i| p.counts.get(&KINDS[i]).copied().unwrap_or(0) as u64)
}

fn kind_code(k: IndicatorKind) -> u8 {
    KINDS.iter().position(|&x| x == k).unwrap_or(0) as u8
}

/// The part's label and counts, then its feeds.
fn feeds_blob(p: &Part, name: &str, accepted: u64) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, name);
    accepted.put(&mut out);
    kind_counts(p).iter().for_each(|c| c.put(&mut out));
    (p.duplicates as u64).put(&mut out);
    (p.feeds.len() as u32).put(&mut out);
    for (f, rank) in &p.feeds {
        rank.put(&mut out);
        out.push(severity_code(f.severity));
        put_str(&mut out, &f.name);
        put_str(&mut out, &f.category);
    }
    out
}

fn notes_blob(notes: &[Note]) -> Vec<u8> {
    let mut out = Vec::new();
    (notes.len() as u32).put(&mut out);
    for n in notes {
        put_opt(&mut out, n.reference.as_deref());
        put_opt(&mut out, n.description.as_deref());
    }
    out
}

fn patterns_blob(patterns: &[(Box<str>, IndicatorKind, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    (patterns.len() as u32).put(&mut out);
    for (text, kind, meta) in patterns {
        out.push(kind_code(*kind));
        meta.put(&mut out);
        put_str(&mut out, text);
    }
    out
}

/// One address record (see [`RECORD`]).
fn record(out: &mut Vec<u8>, key: Key, meta: u32, port: u16, prefix: u8) {
    let (addr, family) = match key {
        Key::V4(a) => (u128::from(a), 4u8),
        Key::V6(a) => (a, 6u8),
    };
    addr.put(out);
    meta.put(out);
    out.extend_from_slice(&port.to_le_bytes());
    out.extend_from_slice(&[family, prefix]);
    out.extend_from_slice(&[0; 8]);
}

fn ports_records(ports: &[((Key, u16), u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ports.len() * RECORD);
    for &((k, port), m) in ports {
        record(&mut out, k, m, port, 0);
    }
    out
}

fn nets_records(nets: &[(IpNet, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nets.len() * RECORD);
    for &(n, m) in nets {
        // The address as listed (an alert shows the network as the feed
        // wrote it).
        let key = match n {
            IpNet::V4(n) => Key::V4(u32::from(n.addr())),
            IpNet::V6(n) => Key::V6(u128::from(n.addr())),
        };
        record(&mut out, key, m, 0, n.prefix_len());
    }
    out
}

fn keys<K: RadixKey + Le>(out: &mut [Vec<u8>], at: usize, k: &Keys<K>) {
    let (keys, index) = k.as_parts();
    out[at] = array(keys);
    out[at + 1] = index.map(array).unwrap_or_default();
}

fn ranges<K: RadixKey + Into<u128> + Le>(out: &mut [Vec<u8>], at: usize, r: &Ranges<K>) {
    let (starts, vals, index) = r.as_parts();
    out[at] = array(starts);
    out[at + 1] = array(vals);
    out[at + 2] = index.map(array).unwrap_or_default();
}

/// The part's sections in slot order.
fn part_sections(p: &Part, name: &str, accepted: u64) -> Vec<Vec<u8>> {
    let mut s: Vec<Vec<u8>> = vec![Vec::new(); SLOTS];
    s[slot::FEEDS] = feeds_blob(p, name, accepted);
    s[slot::NOTES] = notes_blob(&p.notes);
    keys(&mut s, slot::V4, &p.v4);
    s[slot::V4_META] = array(p.v4_meta.as_slice());
    keys(&mut s, slot::V6, &p.v6);
    s[slot::V6_META] = array(p.v6_meta.as_slice());
    s[slot::PORTS] = ports_records(&p.ports);
    s[slot::NETS] = nets_records(&p.nets);
    ranges(&mut s, slot::NETS4, &p.nets4);
    ranges(&mut s, slot::NETS6, &p.nets6);
    keys(&mut s, slot::DOMAINS, &p.domains);
    s[slot::DOMAINS_META] = array(p.dom_meta.as_slice());
    s[slot::PATTERNS] = patterns_blob(&p.patterns);
    keys(&mut s, slot::ALLOW_V4, &p.allow_v4);
    keys(&mut s, slot::ALLOW_V6, &p.allow_v6);
    ranges(&mut s, slot::ALLOW_NETS4, &p.allow_nets4);
    ranges(&mut s, slot::ALLOW_NETS6, &p.allow_nets6);
    keys(&mut s, slot::ALLOW_DOMAINS, &p.allow_domains);
    s
}

/// Directory, then every section at the next multiple of [`ALIGN`].
fn payload(sections: &[Vec<u8>], parts: usize) -> Vec<u8> {
    let dir = format::directory_len(parts);
    let total: usize = dir + sections.iter().map(|s| s.len() + ALIGN).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    (parts as u32).put(&mut out);
    (SLOTS as u32).put(&mut out);
    (GLOBALS as u32).put(&mut out);
    0u32.put(&mut out);
    let mut at = dir;
    for s in sections {
        (at as u64).put(&mut out);
        (s.len() as u64).put(&mut out);
        at = (at + s.len()).next_multiple_of(ALIGN);
    }
    out.resize(dir, 0);
    for s in sections {
        out.extend_from_slice(s);
        out.resize(out.len().next_multiple_of(ALIGN), 0);
    }
    out
}

/// The header's hash checks under `key`.
pub fn hash_checks(key: &HashKey) -> [u64; 4] {
    [
        key.domain(format::CHECK_NAME),
        key.domain(format::CHECK_LONG),
        key.v4(format::CHECK_V4),
        key.v6(format::CHECK_V6),
    ]
}

/// The signed file of `snap`: each part labelled by the report of the same
/// position (its feed's name and accepted entries), else by its first feed.
pub fn encode(
    snap: &Snapshot,
    reports: &[FeedReport],
    version: u64,
    created: u64,
    key: &SigningKey,
) -> Vec<u8> {
    let parts = snap.parts();
    let mut sections = Vec::with_capacity(format::entries(parts.len()));
    for (i, p) in parts.iter().enumerate() {
        let (name, accepted) = match reports.get(i) {
            Some(r) => (r.name.clone(), r.accepted as u64),
            None => (
                p.feed_names().next().unwrap_or("unnamed").to_string(),
                p.len() as u64,
            ),
        };
        sections.extend(part_sections(p, &name, accepted));
    }
    let f = snap.filters();
    let mut globals = vec![Vec::new(); GLOBALS];
    globals[IP_FILTER] = array(f.ip.blocks());
    globals[DOMAIN_FILTER] = array(f.dom.blocks());
    globals[V4_MAP] = array(&f.v4_map);
    sections.extend(globals);
    let payload = payload(&sections, parts.len());
    let mut checksum = [0u8; 32];
    checksum.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &payload).as_ref());
    let kinds: [u64; 6] =
        std::array::from_fn(|i| parts.iter().map(|p| kind_counts(p)[i]).sum::<u64>());
    let header = Header {
        format: FORMAT,
        version,
        created,
        payload_len: payload.len() as u64,
        checksum,
        key_id: key.public().id(),
        hash_seeds: snap.key().seeds(),
        hash_checks: hash_checks(snap.key()),
        indicators: kinds.iter().sum(),
        kinds,
        parts: parts.len() as u32,
    };
    let head = header.encode();
    let mut out = Vec::with_capacity(PAYLOAD_AT + payload.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&key.sign(&head));
    out.resize(PAYLOAD_AT, 0);
    out.extend_from_slice(&payload);
    out
}
