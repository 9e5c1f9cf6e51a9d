//! Batches: how packets cross from a capture thread to a worker. One channel
//! operation per batch, not per packet.

use crate::capture::mapping::Mapping;
use crate::packet::{LinkType, RawPacket, prefetch_read};
use std::sync::Arc;

/// A batch of packets for one worker. Packets from a live capture are copied
/// into the batch's arena (libpcap reuses its ring); packets from a mapped
/// capture file stay where they are and the batch holds the mapping alive.
///
/// Why zero-copy for files: copying each frame into the arena was the largest
/// single cost of the capture thread (21% of cycles with one worker, 2M-packet
/// gateway mix, perf) and that thread was the bottleneck.
pub struct Batch {
    data: Vec<u8>,
    map: Option<Arc<Mapping>>,
    pkts: Vec<Slot>,
}

/// One packet: where its bytes are (arena or mapping) and its metadata.
struct Slot {
    ts_ns: i64,
    orig_len: u32,
    link: LinkType,
    mapped: bool,
    /// A copy for a worker that only learns from it (see
    /// [`super::route::Route::Everyone`]).
    learn_only: bool,
    off: usize,
    len: u32,
}

impl Batch {
    pub(super) fn with_capacity(pkts: usize) -> Batch {
        Batch {
            data: Vec::with_capacity(pkts * 512),
            map: None,
            pkts: Vec::with_capacity(pkts),
        }
    }

    fn slot(p: &RawPacket<'_>, mapped: bool, learn_only: bool, off: usize) -> Slot {
        Slot {
            ts_ns: p.ts_ns,
            orig_len: p.orig_len,
            link: p.link,
            mapped,
            learn_only,
            off,
            len: p.data.len() as u32,
        }
    }

    pub(super) fn push(&mut self, p: &RawPacket<'_>, learn_only: bool) {
        let off = self.data.len();
        self.data.extend_from_slice(p.data);
        self.pkts.push(Self::slot(p, false, learn_only, off));
    }

    /// Add a packet that lies inside `map` without copying it. Returns false
    /// (and adds nothing) when the batch already refers to another mapping or
    /// the packet is not inside `map`.
    pub(super) fn push_mapped(
        &mut self,
        p: &RawPacket<'_>,
        map: &Arc<Mapping>,
        learn_only: bool,
    ) -> bool {
        let base = map.as_ptr() as usize;
        let at = p.data.as_ptr() as usize;
        if at < base || at + p.data.len() > base + map.len() {
            return false;
        }
        match &self.map {
            Some(m) if !Arc::ptr_eq(m, map) => return false,
            Some(_) => {}
            None => self.map = Some(map.clone()),
        }
        self.pkts.push(Self::slot(p, true, learn_only, at - base));
        true
    }

    /// Hint the CPU to load the headers of packet `k`. The worker's first
    /// read of a packet is a cache miss (the bytes come from the page cache or
    /// from the capture core); without this, 73% of `decode`'s cycles sat on
    /// that one load (perf annotate, 2M-packet gateway mix, 1 worker).
    #[inline]
    pub(super) fn prefetch(&self, k: usize) {
        let Some(s) = self.pkts.get(k) else { return };
        let src: &[u8] = if s.mapped {
            self.map.as_deref().map_or(&[], |m| &m[..])
        } else {
            &self.data
        };
        if let Some(head) = src.get(s.off..) {
            prefetch_read(head.as_ptr());
            if s.len > 64 {
                prefetch_read(head.as_ptr().wrapping_add(64));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.data.clear();
        self.map = None;
        self.pkts.clear();
    }

    pub fn iter(&self) -> impl Iterator<Item = RawPacket<'_>> {
        self.iter_routed().map(|(p, _)| p)
    }

    /// Each packet with whether this worker only learns from it.
    pub fn iter_routed(&self) -> impl Iterator<Item = (RawPacket<'_>, bool)> {
        let map: &[u8] = self.map.as_deref().map_or(&[], |m| &m[..]);
        self.pkts.iter().map(move |s| {
            let src = if s.mapped { map } else { &self.data[..] };
            let p = RawPacket {
                ts_ns: s.ts_ns,
                orig_len: s.orig_len,
                link: s.link,
                data: &src[s.off..s.off + s.len as usize],
            };
            (p, s.learn_only)
        })
    }
}

/// How many packets ahead of the one being processed a worker prefetches.
pub(super) const PREFETCH_AHEAD: usize = 4;
