//! The flow table: one entry per TCP connection or UDP conversation with its
//! state, times and packet/byte totals each way, so that a flow that hit can
//! be reported with how much data went to the C2 when it ends (an EVE-style
//! `flow` event). A UDP flow is New until the other end answers, then
//! Established; it ends after `udp_s` idle (there is no FIN).
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

mod table;

pub use table::FlowTable;

use crate::tcp::stream::Streams;
use std::hash::Hash;
use std::net::IpAddr;

/// Default reassembly budget of the whole sensor, MiB.
pub const DEFAULT_REASSEMBLY_MIB: usize = 256;

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
    /// A UDP flow ends after this long without packets.
    pub udp_s: u32,
    /// Bytes all flows together may hold copied for reassembly (held
    /// out-of-order segments, unfinished messages). Without it, 64 KiB held
    /// plus 64 KiB buffered each way times `max_flows` has no useful bound.
    pub reassembly_bytes: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: 1 << 20,
            embryonic_s: 30,
            established_s: 600,
            closed_s: 10,
            hard_s: 3600,
            udp_s: 120,
            reassembly_bytes: DEFAULT_REASSEMBLY_MIB << 20,
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
    /// Dropped after a panic while one of its packets was processed.
    Reset,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Hard => "hard_timeout",
            EndReason::Evicted => "evicted",
            EndReason::Shutdown => "shutdown",
            EndReason::Reset => "reset",
        }
    }
}

/// Direction of a packet relative to the flow's client.
pub const TO_SERVER: usize = 0;
pub const TO_CLIENT: usize = 1;

/// Normalised key: the lower (address, port) end first, so both directions
/// find the same entry. IPv4 is stored v4-mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    a: [u8; 16],
    b: [u8; 16],
    ap: u16,
    bp: u16,
    proto: u8,
}

/// Three fixed-width words instead of the derived byte slices (each with
/// its length): the key is hashed for every tracked packet.
impl Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(self.a));
        h.write_u128(u128::from_ne_bytes(self.b));
        h.write_u64(u64::from(self.ap) << 24 | u64::from(self.bp) << 8 | u64::from(self.proto));
    }
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
    /// Copied bytes of `streams` counted in the table's budget.
    copied: usize,
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
            _ if self.key.proto == UDP => c.udp_s,
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
    /// IANA protocol number: 6 (TCP) or 17 (UDP).
    pub proto: u8,
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
    /// Flows whose copies were dropped (a gap each way that had some)
    /// because the reassembly budget was spent.
    pub reassembly_dropped: u64,
    /// Bytes held copied for reassembly now (a gauge).
    pub reassembly_bytes: u64,
    /// Of `created`, the UDP flows.
    pub udp_created: u64,
}

impl FlowCounters {
    pub fn merge(&mut self, o: &FlowCounters) {
        self.created += o.created;
        self.ended += o.ended;
        self.evicted += o.evicted;
        self.hard_timeouts += o.hard_timeouts;
        self.unfinished += o.unfinished;
        self.reassembly_dropped += o.reassembly_dropped;
        self.reassembly_bytes += o.reassembly_bytes;
        self.udp_created += o.udp_created;
    }
}

/// What [`FlowTable::track`] found for a packet.
#[derive(Clone, Copy, Debug)]
pub struct Tracked {
    pub slot: u32,
    /// [`TO_SERVER`] or [`TO_CLIENT`].
    pub dir: usize,
}

/// IANA protocol numbers the table tracks.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// The transport header fields the table needs (a UDP datagram: `proto`
/// [`UDP`], no flags).
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub proto: u8,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub seq: u32,
}

impl Segment {
    /// A UDP datagram.
    pub fn datagram() -> Segment {
        Segment {
            proto: UDP,
            syn: false,
            ack: false,
            fin: false,
            rst: false,
            seq: 0,
        }
    }
}
