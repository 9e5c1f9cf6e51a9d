//! The TCP flow table: one entry per connection with its state, times and
//! packet/byte totals each way, so that a flow that hit can be reported with
//! how much data went to the C2 when it ends (an EVE-style `flow` event).
//!
//! One table per worker: the router sends both directions of a flow to the
//! same worker, so nothing here is shared or locked. Entries live in a slab
//! (`Vec<Flow>`) indexed by a `hashbrown::HashTable<u32>` that stores only
//! slab positions (4 bytes per flow instead of a second copy of the key).
//! The slab gives two things a hash map alone does not: a cheap incremental
//! sweep (a cursor walks a few slots per packet, so timeouts cost O(1) per
//! packet and need no timer) and O(1) random sampling for eviction.
//!
//! The table knows nothing of hits: the engine attaches a mark of its own
//! type `M` (its [`Mark`]) to a flow that hit, and only flows with a mark are
//! reported when they end.
//!
//! Bounds: at most `max_flows` entries. When full, eight sampled entries are
//! compared and the least valuable is evicted (counted): a half-open flow
//! that never hit before an established one, an older one before a newer
//! one. A SYN flood therefore churns its own half-open entries, which also
//! expire after `embryonic_s`, and cannot push out the flows that alerted.

use crate::tcp::stream::{StreamCounters, Streams, Verdict};
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;

/// Timeouts and size of the table (per worker).
#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    pub max_flows: usize,
    /// A flow that has not completed its handshake (SYN only).
    pub embryonic_s: u32,
    /// An established flow with no packets for this long ends.
    pub established_s: u32,
    /// After FIN from both sides or a RST, trailing packets still count
    /// for this long.
    pub closed_s: u32,
    /// A flow older than this is reported and started afresh, so a
    /// week-long C2 session still shows its volume every hour.
    pub hard_s: u32,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1 << 20,
            embryonic_s: 30,
            established_s: 600,
            closed_s: 10,
            hard_s: 3600,
        }
    }
}

/// Connection state as an operator reads it in a `flow` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// SYN seen, no answer yet.
    New,
    Established,
    /// FIN from both sides, or a RST.
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Established => "established",
            State::Closed => "closed",
        }
    }
}

/// Why a flow was reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Closed, or idle past its timeout.
    Timeout,
    /// Older than the hard timeout: reported, then tracked afresh.
    Hard,
    /// Pushed out of a full table.
    Evicted,
    /// The capture ended or the sensor stopped.
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Hard => "hard_timeout",
            EndReason::Evicted => "evicted",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Direction of a packet relative to the flow's client.
pub const TO_SERVER: usize = 0;
pub const TO_CLIENT: usize = 1;

/// Normalised key: the lower (address, port) end first, so both directions
/// find the same entry. IPv4 is stored v4-mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    a: [u8; 16],
    b: [u8; 16],
    ap: u16,
    bp: u16,
}

fn octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

fn addr(o: [u8; 16]) -> IpAddr {
    std::net::Ipv6Addr::from(o).to_canonical()
}

/// What the engine attaches to a flow that hit; the table keeps it, prefers
/// marked flows when it must evict, and hands it back in the [`FlowRecord`].
pub trait Mark: Clone {
    /// The mark a session keeps when it is reported at its hard timeout and
    /// tracked afresh (the same session goes on).
    fn carry_over(&self) -> Self;
}

/// One TCP connection.
#[derive(Debug)]
pub struct Flow<M> {
    key: Key,
    /// The client is `key.a` (else `key.b`).
    a_is_client: bool,
    pub state: State,
    fin: [bool; 2],
    /// Stable id for linking alerts and the flow event (EVE `flow_id`).
    pub id: u64,
    pub first_ns: i64,
    pub last_ns: i64,
    /// Index by [`TO_SERVER`] / [`TO_CLIENT`].
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    /// Ordering and buffering of the payload each way.
    pub streams: Streams,
    /// Set once the flow produced a hit: only such flows are reported.
    pub alert: Option<Box<M>>,
}

impl<M> Flow<M> {
    pub fn client(&self) -> (IpAddr, u16) {
        if self.a_is_client {
            (addr(self.key.a), self.key.ap)
        } else {
            (addr(self.key.b), self.key.bp)
        }
    }

    pub fn server(&self) -> (IpAddr, u16) {
        if self.a_is_client {
            (addr(self.key.b), self.key.bp)
        } else {
            (addr(self.key.a), self.key.ap)
        }
    }

    /// The engine's mark, attached on first use.
    pub fn mark_or_insert_with(&mut self, make: impl FnOnce() -> M) -> &mut M {
        self.alert.get_or_insert_with(|| Box::new(make()))
    }

    /// Count a packet going `dir` and move the state on: a RST, or a FIN
    /// from each side, closes; an answer from the server establishes.
    #[inline]
    fn count(&mut self, ts: i64, dir: usize, seg: Segment, wire_len: u64) {
        self.last_ns = self.last_ns.max(ts);
        self.pkts[dir] += 1;
        self.bytes[dir] += wire_len;
        if seg.rst {
            self.state = State::Closed;
        } else {
            if seg.fin {
                self.fin[dir] = true;
            }
            if self.fin[0] && self.fin[1] {
                self.state = State::Closed;
            } else if self.state == State::New && (dir == TO_CLIENT || !seg.syn) && self.pkts[1] > 0
            {
                self.state = State::Established;
            }
        }
    }

    fn timeout_ns(&self, c: &FlowConfig) -> i64 {
        let s = match self.state {
            State::New => c.embryonic_s,
            State::Established => c.established_s,
            State::Closed => c.closed_s,
        };
        i64::from(s) * 1_000_000_000
    }

    /// Lower is evicted first: half-open before established, never-hit
    /// before hit.
    fn value(&self) -> (bool, bool, i64) {
        (
            self.alert.is_some(),
            self.state == State::Established,
            self.last_ns,
        )
    }
}

/// A finished flow that had hits, ready to be written as a `flow` event.
#[derive(Clone, Debug)]
pub struct FlowRecord<M> {
    pub id: u64,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub first_ns: i64,
    pub last_ns: i64,
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub state: State,
    pub reason: EndReason,
    /// Payload bytes that could not be inspected because segments were
    /// missing (each way).
    pub gaps: u32,
    pub alert: M,
}

/// Counters of the flow table.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowCounters {
    pub created: u64,
    pub ended: u64,
    pub evicted: u64,
    pub hard_timeouts: u64,
    /// Flows that ended in the middle of a message being reassembled (or
    /// with segments still held behind a hole).
    pub unfinished: u64,
}

impl FlowCounters {
    pub fn merge(&mut self, o: &FlowCounters) {
        self.created += o.created;
        self.ended += o.ended;
        self.evicted += o.evicted;
        self.hard_timeouts += o.hard_timeouts;
        self.unfinished += o.unfinished;
    }
}

/// What [`FlowTable::track`] found for a packet.
#[derive(Clone, Copy, Debug)]
pub struct Tracked {
    pub slot: u32,
    /// [`TO_SERVER`] or [`TO_CLIENT`].
    pub dir: usize,
}

/// The TCP header fields the table needs.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
}

/// Slots the sweep cursor examines per packet: a full pass over `n` flows
/// takes `n / 2` packets, far inside any timeout at gateway rates.
const SWEEP_PER_PACKET: usize = 2;
/// Entries compared when the table is full.
const EVICTION_SAMPLE: usize = 8;

pub struct FlowTable<M> {
    cfg: FlowConfig,
    slab: Vec<Flow<M>>,
    index: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
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
            hasher: foldhash::fast::FixedState::with_seed(0x6761_7465_7761_7463),
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
        let (s, d) = (octets(src), octets(dst));
        let src_is_a = (s, sp) <= (d, dp);
        let ((a, ap), (b, bp)) = if src_is_a {
            ((s, sp), (d, dp))
        } else {
            ((d, dp), (s, sp))
        };
        let key = Key { a, b, ap, bp };
        let h = self.hash(&key);
        let slab = &self.slab;
        let found = self
            .index
            .find(h, |&i| slab[i as usize].key == key)
            .copied();
        let slot = match found {
            Some(i) => self.go_on_or_restart(i, key, h, ts, src_is_a, seg, sp, dp, ended),
            None => self.insert(key, h, ts, src_is_a, seg, sp, dp, ended),
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
    #[allow(clippy::too_many_arguments)]
    fn go_on_or_restart(
        &mut self,
        i: u32,
        key: Key,
        h: u64,
        ts: i64,
        src_is_a: bool,
        seg: Segment,
        sp: u16,
        dp: u16,
        ended: &mut Vec<FlowRecord<M>>,
    ) -> u32 {
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
        let n = self.insert(key, h, ts, src_is_a, seg, sp, dp, ended);
        let f = &mut self.slab[n as usize];
        if carry.is_some() {
            f.alert = carry;
            f.a_is_client = a_is_client;
        }
        n
    }

    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        key: Key,
        h: u64,
        ts: i64,
        src_is_a: bool,
        seg: Segment,
        sp: u16,
        dp: u16,
        ended: &mut Vec<FlowRecord<M>>,
    ) -> u32 {
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
        let id = {
            let mut x = self.hasher.hash_one((key, ts, self.salt));
            x ^= x >> 29;
            // EVE readers parse ids as JSON numbers: keep them below 2^53.
            x & ((1 << 53) - 1)
        };
        let slot = self.slab.len() as u32;
        self.slab.push(Flow {
            key,
            a_is_client,
            state: if seg.syn && !seg.ack {
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
        if f.streams.unfinished() {
            self.counters.unfinished += 1;
        }
        let (client, server) = (f.client(), f.server());
        if let Some(alert) = f.alert {
            ended.push(FlowRecord {
                id: f.id,
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
