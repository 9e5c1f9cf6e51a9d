//! The table itself: lookup by normalised key, creation, the sweep that
//! ends idle flows, sampled eviction when full, and the report of a flow
//! that carried a mark.

use super::{
    EndReason, Flow, FlowConfig, FlowCounters, FlowRecord, Key, Mark, Segment, State, TO_CLIENT,
    TO_SERVER, Tracked, UDP, octets,
};
use crate::tcp::stream::{StreamCounters, Streams, Verdict};
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::net::IpAddr;

/// A packet's facts that finding or opening its flow needs.
#[derive(Clone, Copy)]
struct Arrival {
    key: Key,
    /// The key's hash.
    h: u64,
    ts: i64,
    /// The packet's source is the key's `a` end.
    src_is_a: bool,
    seg: Segment,
    sp: u16,
    dp: u16,
}

/// Slots the sweep cursor examines per packet: a full pass over `n` flows
/// takes `n / 2` packets, far inside any timeout at gateway rates.
const SWEEP_PER_PACKET: usize = 2;
/// Entries compared when the table is full.
const EVICTION_SAMPLE: usize = 8;

/// Hashes flow ids (not the index): fixed, so ids are reproducible.
const ID_HASHER: foldhash::fast::FixedState =
    foldhash::fast::FixedState::with_seed(0x6761_7465_7761_7463);

pub struct FlowTable<M> {
    cfg: FlowConfig,
    slab: Vec<Flow<M>>,
    index: HashTable<u32>,
    /// Seeded per table from the process's random state: flow tuples come
    /// from the wire, and a public seed lets a sender aim them all at one
    /// probe chain.
    hasher: foldhash::fast::RandomState,
    cursor: usize,
    rng: u64,
    /// Worker number, mixed into flow ids so two workers never share one.
    salt: u64,
    pub counters: FlowCounters,
}

impl<M: Mark> FlowTable<M> {
    pub fn new(cfg: FlowConfig, salt: u64) -> FlowTable<M> {
        FlowTable {
            cfg,
            slab: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            cursor: 0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ salt,
            salt,
            counters: FlowCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Heap bytes held by the table and its flows' buffers.
    pub fn heap_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<Flow<M>>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self
                .slab
                .iter()
                .map(|f| {
                    f.streams.heap_bytes()
                        + f.alert.as_ref().map_or(0, |_| std::mem::size_of::<M>())
                })
                .sum::<usize>()
    }

    pub fn get_mut(&mut self, slot: u32) -> &mut Flow<M> {
        &mut self.slab[slot as usize]
    }

    fn hash(&self, k: &Key) -> u64 {
        self.hasher.hash_one(k)
    }

    /// Find or create the flow of a TCP packet and count it. Ended flows
    /// that had hits (found by the sweep, an eviction, or a new connection
    /// on the same ports) are pushed to `ended`.
    #[allow(clippy::too_many_arguments)]
    pub fn track(
        &mut self,
        ts: i64,
        src: IpAddr,
        sp: u16,
        dst: IpAddr,
        dp: u16,
        seg: Segment,
        wire_len: u64,
        ended: &mut Vec<FlowRecord<M>>,
    ) -> Tracked {
        self.sweep(ts, ended);
        let (key, src_is_a) = key_of(src, sp, dst, dp, seg.proto);
        let h = self.hash(&key);
        let slab = &self.slab;
        let found = self
            .index
            .find(h, |&i| slab[i as usize].key == key)
            .copied();
        let pkt = Arrival {
            key,
            h,
            ts,
            src_is_a,
            seg,
            sp,
            dp,
        };
        let slot = match found {
            Some(i) => self.go_on_or_restart(i, &pkt, ended),
            None => self.insert(&pkt, ended),
        };
        let f = &mut self.slab[slot as usize];
        let dir = if src_is_a == f.a_is_client {
            TO_SERVER
        } else {
            TO_CLIENT
        };
        f.count(ts, dir, seg, wire_len);
        Tracked { slot, dir }
    }

    /// Found flow `i`, unless the packet opens a new connection on the ports
    /// of a finished one or the flow is past its hard timeout: then the old
    /// flow is reported and the packet starts a new one.
    fn go_on_or_restart(&mut self, i: u32, pkt: &Arrival, ended: &mut Vec<FlowRecord<M>>) -> u32 {
        let (ts, seg) = (pkt.ts, pkt.seg);
        let f = &self.slab[i as usize];
        let reused = seg.syn && !seg.ack && f.state == State::Closed;
        let hard = ts.saturating_sub(f.first_ns) > i64::from(self.cfg.hard_s) * 1_000_000_000;
        let why = match (reused, hard) {
            (_, true) => {
                self.counters.hard_timeouts += 1;
                EndReason::Hard
            }
            (true, false) => EndReason::Timeout,
            (false, false) => return i,
        };
        // The same session goes on after a hard timeout: its next report is
        // still about the hosts and indicators it hit (a repeat in the flow
        // raises no new alert).
        let carry = (hard && !reused)
            .then(|| f.alert.as_deref().map(|a| Box::new(a.carry_over())))
            .flatten();
        let a_is_client = f.a_is_client;
        self.remove(i as usize, why, ended);
        let n = self.insert(pkt, ended);
        let f = &mut self.slab[n as usize];
        if carry.is_some() {
            f.alert = carry;
            f.a_is_client = a_is_client;
        }
        n
    }

    /// A new flow for `pkt` (evicting one first when the table is full).
    fn insert(&mut self, pkt: &Arrival, ended: &mut Vec<FlowRecord<M>>) -> u32 {
        let Arrival {
            key,
            h,
            ts,
            src_is_a,
            seg,
            sp,
            dp,
        } = *pkt;
        if self.slab.len() >= self.cfg.max_flows.max(1) {
            self.evict_one(ended);
        }
        // The client: whoever sent the SYN; the receiver of a SYN-ACK; for
        // a flow picked up mid-stream, the end with the higher port (servers
        // listen on low, well-known ports).
        let src_is_client = if seg.syn {
            !seg.ack
        } else if sp != dp {
            sp > dp
        } else {
            true
        };
        let a_is_client = src_is_a == src_is_client;
        self.counters.created += 1;
        let udp = seg.proto == UDP;
        self.counters.udp_created += u64::from(udp);
        let id = {
            // Ids must not depend on the random seed: the same capture
            // gives the same flow ids on every run.
            let mut x = ID_HASHER.hash_one((key, ts, self.salt));
            x ^= x >> 29;
            // EVE readers parse ids as JSON numbers: keep them below 2^53.
            x & ((1 << 53) - 1)
        };
        let slot = self.slab.len() as u32;
        self.slab.push(Flow {
            key,
            a_is_client,
            // A UDP flow is established by an answer (see `Flow::count`).
            state: if udp || (seg.syn && !seg.ack) {
                State::New
            } else {
                State::Established
            },
            fin: [false; 2],
            id,
            first_ns: ts,
            last_ns: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            streams: Streams::default(),
            alert: None,
            copied: 0,
        });
        let hasher = &self.hasher;
        let slab = &self.slab;
        self.index
            .insert_unique(h, slot, |&i| hasher.hash_one(slab[i as usize].key));
        slot
    }

    /// Look at a few slots past the cursor and end the flows that timed out.
    fn sweep(&mut self, now: i64, ended: &mut Vec<FlowRecord<M>>) {
        for _ in 0..SWEEP_PER_PACKET {
            if self.slab.is_empty() {
                return;
            }
            if self.cursor >= self.slab.len() {
                self.cursor = 0;
            }
            let f = &self.slab[self.cursor];
            if now.saturating_sub(f.last_ns) > f.timeout_ns(&self.cfg) {
                // swap_remove moves the last flow here: look at it next.
                self.remove(self.cursor, EndReason::Timeout, ended);
            } else {
                self.cursor += 1;
            }
        }
    }

    /// End every flow idle past its timeout at `now` (for a worker that has
    /// seen no packets for a while, and for tests).
    pub fn expire(&mut self, now: i64, ended: &mut Vec<FlowRecord<M>>) {
        let mut i = 0;
        while i < self.slab.len() {
            let f = &self.slab[i];
            if now.saturating_sub(f.last_ns) > f.timeout_ns(&self.cfg) {
                self.remove(i, EndReason::Timeout, ended);
            } else {
                i += 1;
            }
        }
    }

    /// Drop the flow of `src:sp` <-> `dst:dp` over `proto`, if tracked: a
    /// panic while one of its packets was processed leaves its state
    /// suspect. What it hit so far is reported (`Reset`). True if found.
    pub fn forget(
        &mut self,
        (src, sp): (IpAddr, u16),
        (dst, dp): (IpAddr, u16),
        proto: u8,
        ended: &mut Vec<FlowRecord<M>>,
    ) -> bool {
        let (key, _) = key_of(src, sp, dst, dp, proto);
        let h = self.hash(&key);
        let slab = &self.slab;
        match self
            .index
            .find(h, |&i| slab[i as usize].key == key)
            .copied()
        {
            Some(i) => {
                self.remove(i as usize, EndReason::Reset, ended);
                true
            }
            None => false,
        }
    }

    /// Drop every flow unreported: the last resort when dropping one flow
    /// after a panic panicked too, so the table itself is suspect.
    pub fn clear(&mut self) {
        self.counters.ended += self.slab.len() as u64;
        self.slab.clear();
        self.index.clear();
        self.counters.reassembly_bytes = 0;
    }

    /// End every flow (capture over or sensor stopping).
    pub fn drain(&mut self, ended: &mut Vec<FlowRecord<M>>) {
        while !self.slab.is_empty() {
            self.remove(self.slab.len() - 1, EndReason::Shutdown, ended);
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64: sampling needs speed, not quality.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn evict_one(&mut self, ended: &mut Vec<FlowRecord<M>>) {
        let n = self.slab.len();
        let mut worst = (self.next_rand() % n as u64) as usize;
        for _ in 1..EVICTION_SAMPLE {
            let i = (self.next_rand() % n as u64) as usize;
            if self.slab[i].value() < self.slab[worst].value() {
                worst = i;
            }
        }
        self.counters.evicted += 1;
        self.remove(worst, EndReason::Evicted, ended);
    }

    /// Take the flow at `pos` out of the slab and the index; report it if it
    /// had hits.
    fn remove(&mut self, pos: usize, why: EndReason, ended: &mut Vec<FlowRecord<M>>) {
        let h = self.hash(&self.slab[pos].key);
        let p = pos as u32;
        if let Ok(e) = self.index.find_entry(h, |&i| i == p) {
            e.remove();
        }
        let last = self.slab.len() - 1;
        if pos != last {
            // The last flow moves into `pos`: repoint its index entry.
            let hl = self.hash(&self.slab[last].key);
            let l = last as u32;
            if let Some(e) = self.index.find_mut(hl, |&i| i == l) {
                *e = p;
            }
        }
        let f = self.slab.swap_remove(pos);
        self.counters.ended += 1;
        self.counters.reassembly_bytes -= f.copied as u64;
        if f.streams.unfinished() {
            self.counters.unfinished += 1;
        }
        let (client, server) = (f.client(), f.server());
        if let Some(alert) = f.alert {
            ended.push(FlowRecord {
                id: f.id,
                proto: f.key.proto,
                client,
                server,
                first_ns: f.first_ns,
                last_ns: f.last_ns,
                pkts: f.pkts,
                bytes: f.bytes,
                state: f.state,
                reason: why,
                gaps: f.streams.gaps() + f.streams.open_holes(),
                alert: *alert,
            });
        }
    }

    /// Count what the flow in `slot` holds copied after its latest segment
    /// against the reassembly budget. Over budget, this flow's copies are
    /// given up (a gap each way that had some; counted): the flow that
    /// grew is the one that pays, found in O(1).
    pub fn settle(&mut self, slot: u32) {
        let f = &mut self.slab[slot as usize];
        let now = f.streams.heap_bytes();
        if now == f.copied {
            return;
        }
        let total = self.counters.reassembly_bytes as usize - f.copied + now;
        if now > f.copied && total > self.cfg.reassembly_bytes {
            f.streams.release();
            self.counters.reassembly_dropped += 1;
            let kept = f.streams.heap_bytes();
            self.counters.reassembly_bytes = (total - now + kept) as u64;
            f.copied = kept;
        } else {
            self.counters.reassembly_bytes = total as u64;
            f.copied = now;
        }
    }

    /// Hand a segment's payload to the flow's stream for ordering.
    pub fn segment<'p>(
        &mut self,
        t: Tracked,
        seg: Segment,
        payload: &'p [u8],
        c: &mut StreamCounters,
    ) -> Verdict<'p> {
        self.slab[t.slot as usize]
            .streams
            .segment(t.dir, seg.syn, seg.seq, payload, c)
    }
}

/// The table key of a packet and whether its source is the key's `a` end
/// (the lower address and port, so both directions find one key).
fn key_of(src: IpAddr, sp: u16, dst: IpAddr, dp: u16, proto: u8) -> (Key, bool) {
    let (s, d) = (octets(src), octets(dst));
    let src_is_a = (s, sp) <= (d, dp);
    let ((a, ap), (b, bp)) = if src_is_a {
        ((s, sp), (d, dp))
    } else {
        ((d, dp), (s, sp))
    };
    let key = Key {
        a,
        b,
        ap,
        bp,
        proto,
    };
    (key, src_is_a)
}
