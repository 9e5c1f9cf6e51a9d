//! The per-packet engine: decode, track TCP, hand each payload to its parser
//! (`dns.rs`, `tcp.rs`, `udp.rs`), match (`emit.rs`), attribute.

use super::attribution::Units;
use super::correlate::{DnsLinks, Pending};
use super::heuristics::Heuristics;
use super::history::History;
use super::hygiene::Hygiene;
use super::recipe::Recipe;
use super::{FlowAlert, FlowRecord, Sink, Stats};
use crate::decode::{self, Decoded, Fragment, Transport};
use crate::intel::{Intel, Snapshot};
use crate::packet::{FlowKey, RawPacket, Reason};
use crate::protocols::dns as dns_wire;
use crate::protocols::hostnames::{self, HostName, known::KnownNames};
use crate::protocols::name::NameBuf;
use crate::protocols::quic::{self, QuicAssembler};
use crate::tcp::flow::{FlowTable, Segment, TCP, Tracked};
use std::net::IpAddr;
use std::sync::Arc;

/// Flows that already raised an IP alert, so a long session to a listed
/// address is one alert, not one per packet. Direct-mapped and fixed size: a
/// collision only causes a repeated alert, never a missed one.
pub(super) struct RecentFlows {
    slots: Box<[(u64, i64)]>,
}

const RECENT_SLOTS: usize = 1 << 16;
/// A flow idle this long alerts again when it resumes.
const RECENT_IDLE_NS: i64 = 300 * 1_000_000_000;

impl RecentFlows {
    fn new() -> Self {
        RecentFlows {
            slots: vec![(0, 0); RECENT_SLOTS].into_boxed_slice(),
        }
    }

    /// True if this flow alerted within the idle window; records it either way.
    pub(super) fn seen(&mut self, key: u64, ts: i64) -> bool {
        let s = &mut self.slots[(key as usize) & (RECENT_SLOTS - 1)];
        let hit = s.0 == key && ts.saturating_sub(s.1) < RECENT_IDLE_NS;
        *s = (key, ts);
        hit
    }
}

/// Scratch space for the HTTP matching haystack (Host + target).
pub(super) const HAYSTACK: usize = 4096;
/// Outstanding DNS queries remembered per worker (answers to others are not
/// learned from).
const PENDING_QUERIES: usize = 16_384;

/// One worker's engine. Made by a [`Recipe`], which holds what engines share.
pub struct Engine {
    pub(super) intel: Arc<Intel>,
    /// This worker's reference to the current snapshot, and the
    /// [`Intel::generation`] it was taken at. `None` only while a packet
    /// holds it (see [`Engine::process`]).
    snap: Option<Arc<Snapshot>>,
    snap_generation: u64,
    pub(super) units: Arc<Units>,
    pub stats: Stats,
    pub(super) recent: RecentFlows,
    pub(super) name: NameBuf,
    pub(super) hay: Box<[u8; HAYSTACK]>,
    /// Addresses this worker's hosts got for listed domains.
    pub(super) links: DnsLinks,
    pub(super) pending: Pending,
    /// DNS-to-connection correlation on (the default).
    pub(super) correlate: bool,
    pub(super) flows: FlowTable<FlowAlert>,
    /// Flows that ended while handling the current packet, to report.
    pub(super) ended: Vec<FlowRecord>,
    /// Timestamp of the newest packet, for [`Engine::idle`].
    last_ts: i64,
    /// Internal DNS resolvers (`dns_resolvers`): their queries are made for
    /// other hosts.
    resolvers: Vec<IpAddr>,
    /// TCP flow table and stream ordering on (the default); off, each
    /// segment is read on its own (for comparison benchmarks).
    reassemble: bool,
    pub(super) quic: QuicAssembler,
    /// Latest name per internal address; shared by workers.
    pub(super) known: Arc<KnownNames>,
    /// When each address's name was last passed on (see `udp.rs`).
    pub(super) name_sent: rustc_hash::FxHashMap<IpAddr, i64>,
    pub(super) names_scratch: Vec<HostName>,
    /// Behaviour no list names (see [`super::heuristics`]).
    pub(super) heur: Heuristics,
    /// Signs of cracked software reported (see [`super::hygiene`]).
    pub(super) hygiene: Hygiene,
    /// What hosts did, for the retro-hunt (see [`super::history`]).
    pub(super) history: History,
}

/// Facts about the current packet that every hit needs.
#[derive(Clone, Copy)]
pub(super) struct Pkt {
    pub ts: i64,
    pub flow: FlowKey,
    pub vlan: Option<u16>,
    /// Slot and id of the packet's flow (TCP, or UDP), when tracked.
    pub tracked: Option<(u32, u64)>,
    /// A DNS hit whose querier is a configured internal resolver, or a flow
    /// matched through an address such a resolver looked up.
    pub via_resolver: bool,
}

impl Engine {
    /// Engine number `worker` of `recipe` (see [`Recipe::engine`]).
    pub(super) fn from_recipe(recipe: &Recipe, worker: usize) -> Engine {
        let o = recipe.options();
        Engine {
            intel: recipe.intel().clone(),
            snap: Some(recipe.intel().load_full()),
            snap_generation: recipe.intel().generation(),
            units: recipe.units().clone(),
            stats: Stats::default(),
            recent: RecentFlows::new(),
            name: NameBuf::default(),
            hay: Box::new([0; HAYSTACK]),
            links: DnsLinks::default(),
            pending: Pending::new(PENDING_QUERIES),
            correlate: o.correlate,
            // The worker number keeps flow ids of different workers apart.
            flows: FlowTable::new(recipe.flow_share(), worker as u64),
            ended: Vec::new(),
            last_ts: i64::MIN,
            resolvers: o.resolvers.clone(),
            reassemble: o.reassemble,
            quic: QuicAssembler::new(),
            known: recipe.known_names().clone(),
            name_sent: Default::default(),
            names_scratch: Vec::new(),
            heur: Heuristics::new(recipe.rules().clone()),
            hygiene: Hygiene::new(o.hygiene.clone()),
            history: History::new(o.history, o.history_entries),
        }
    }

    pub fn known_names(&self) -> &Arc<KnownNames> {
        &self.known
    }

    pub fn links(&self) -> &DnsLinks {
        &self.links
    }

    /// A handful of addresses: a scan beats hashing, and only DNS packets ask.
    pub(super) fn is_resolver(&self, ip: IpAddr) -> bool {
        self.resolvers.contains(&ip)
    }

    /// The flow table (for memory figures and tests).
    pub fn flows(&self) -> &FlowTable<FlowAlert> {
        &self.flows
    }

    /// End every tracked flow and report those that hit: the capture is
    /// over or the sensor stops.
    pub fn finish<S: Sink>(&mut self, sink: &mut S) {
        self.flows.drain(&mut self.ended);
        self.report_ended(sink);
        let snap = self.take_snapshot();
        self.behave_tick(&snap, i64::MAX, sink);
        self.snap_back(snap);
        self.history_flush(None, sink);
    }

    /// The heuristics' state and counters.
    pub fn heuristics(&self) -> &Heuristics {
        &self.heur
    }

    /// No packets for `quiet_ns`: end the flows that timed out meanwhile
    /// (packet time stands still on an idle worker, so it is advanced by
    /// the quiet time).
    pub fn idle<S: Sink>(&mut self, quiet_ns: i64, sink: &mut S) {
        if self.last_ts == i64::MIN {
            return;
        }
        let now = self.last_ts.saturating_add(quiet_ns);
        self.flows.expire(now, &mut self.ended);
        self.report_ended(sink);
        let snap = self.take_snapshot();
        self.behave_tick(&snap, now, sink);
        self.snap_back(snap);
        self.history_flush(None, sink);
    }

    fn report_ended<S: Sink>(&mut self, sink: &mut S) {
        self.stats.flows = self.flows.counters;
        for f in self.ended.drain(..) {
            self.stats.flow_events += 1;
            sink.flow(f);
        }
    }

    pub fn process<S: Sink>(&mut self, raw: &RawPacket<'_>, sink: &mut S) {
        self.stats.packets += 1;
        self.stats.bytes += u64::from(raw.orig_len.max(raw.data.len() as u32));
        if raw.is_snaplen_cut() {
            self.stats.error(Reason::SnaplenCut);
        }
        let Some(d) = decode::decode(raw, &mut self.stats.decode, &mut self.stats.problems) else {
            return;
        };
        if d.fragment == Fragment::Later {
            return;
        }
        let snap = self.take_snapshot();
        self.last_ts = self.last_ts.max(raw.ts_ns);
        let mut p = Pkt {
            ts: raw.ts_ns,
            flow: flow_key(&d),
            vlan: d.vlan,
            tracked: None,
            via_resolver: false,
        };
        if self.correlate {
            self.links.prefetch(&d.src, &d.dst);
        }
        if let Transport::Tcp {
            syn: true,
            ack,
            src_port,
            dst_port,
            ..
        } = d.transport
        {
            self.heur
                .prefetch_syn(d.src, src_port, d.dst, dst_port, ack);
            if !ack {
                self.history_prefetch_syn(raw.ts_ns, d.src, d.dst, dst_port);
            }
        }
        let tracked = self.track(raw, &d, &mut p);
        if matches!(d.transport, Transport::Tcp { .. }) {
            self.behave_tcp(&snap, &d, p.ts, sink);
        }
        #[cfg(feature = "testkit")]
        crate::packet::inject::check(raw.data);
        let first = |f: &crate::tcp::flow::Flow<_>| f.pkts[0] + f.pkts[1] == 1;
        if p.tracked
            .is_none_or(|(slot, _)| first(self.flows.get_mut(slot)))
        {
            // A flow's first packet (or an untracked one): what the
            // retro-hunt will match addresses against.
            self.history_contact(p.ts, &p.flow);
        }
        self.match_ips(&snap, &d, &p, sink);
        self.dispatch(&snap, &d, &p, sink);
        if let Some((t, seg, payload)) = tracked {
            let (sp, dp) = (p.flow.src_port, p.flow.dst_port);
            let tp = super::tcp::TcpPayload {
                t,
                seg,
                payload,
                dns_port: sp == dns_wire::PORT || dp == dns_wire::PORT,
                cut: d.truncated,
            };
            self.on_tcp(&snap, &tp, &p, sink);
            self.flows.settle(t.slot);
            self.stats.flows = self.flows.counters;
        }
        if !self.ended.is_empty() {
            self.report_ended(sink);
        }
        self.history_flush(Some(p.ts), sink);
        self.snap_back(snap);
    }

    pub(super) fn snap_back(&mut self, snap: Arc<Snapshot>) {
        self.snap = Some(snap);
    }

    /// The snapshot for this packet, moved out of the engine so `&mut self`
    /// methods can read it (no reference count touched); a reload since
    /// the last packet is picked up here. Put it back with
    /// [`Engine::snap_back`].
    pub(super) fn take_snapshot(&mut self) -> Arc<Snapshot> {
        let g = self.intel.generation();
        match self.snap.take() {
            Some(s) if g == self.snap_generation => s,
            _ => {
                self.snap_generation = g;
                self.intel.load_full()
            }
        }
    }

    /// Count a TCP segment or a UDP datagram in its flow (when the flow
    /// table is on) and note the flow in `p`; returns what the TCP payload
    /// path needs. DNS, mDNS, LLMNR and the name protocols are not tracked as
    /// UDP flows: each message stands alone, and a flow per lookup would
    /// churn the table for totals nobody reads.
    fn track<'a>(
        &mut self,
        raw: &RawPacket<'_>,
        d: &Decoded<'a>,
        p: &mut Pkt,
    ) -> Option<(Tracked, Segment, &'a [u8])> {
        if !self.reassemble {
            return None;
        }
        let (seg, payload) = match d.transport {
            Transport::Tcp {
                syn,
                ack,
                fin,
                rst,
                seq,
                payload,
                ..
            } => {
                let seg = Segment {
                    proto: TCP,
                    syn,
                    ack,
                    fin,
                    rst,
                    seq,
                };
                (seg, Some(payload))
            }
            Transport::Udp {
                src_port: sp,
                dst_port: dp,
                ..
            } if !dns_wire::is_dns_udp(sp, dp) && !hostnames::is_name_port(sp, dp) => {
                (Segment::datagram(), None)
            }
            _ => return None,
        };
        let f = &p.flow;
        let frame = raw.orig_len.max(raw.data.len() as u32);
        // A tunnelled packet counts as its inner frame (plus what the
        // snaplen cut), so flow totals are what the hosts exchanged.
        let wire = match d.tunnel {
            Some(_) => u64::from(d.inner_len + (frame - raw.data.len() as u32)),
            None => u64::from(frame),
        };
        let t = self.flows.track(
            p.ts,
            f.src,
            f.src_port,
            f.dst,
            f.dst_port,
            seg,
            wire,
            &mut self.ended,
        );
        p.tracked = Some((t.slot, self.flows.get_mut(t.slot).id));
        payload.map(|pl| (t, seg, pl))
    }

    /// UDP payloads to their parser; a TCP segment too when it is read on
    /// its own (reassembly off).
    fn dispatch<S: Sink>(&mut self, snap: &Snapshot, d: &Decoded<'_>, p: &Pkt, sink: &mut S) {
        let (sp, dp) = (p.flow.src_port, p.flow.dst_port);
        match d.transport {
            Transport::Udp { payload, .. } => {
                // mDNS (5353) is both: its answers announce host names, and
                // its queries may name listed domains.
                if hostnames::is_name_port(sp, dp) {
                    self.on_names(payload, p, sink);
                }
                if dns_wire::is_dns_udp(sp, dp) {
                    self.prefetch_pending(payload, p);
                    if let Some(m) = dns_wire::parse(payload, &mut self.stats.problems) {
                        self.on_dns(snap, &m, p, sink);
                    }
                } else if dp == quic::PORT && !payload.is_empty() {
                    self.on_quic(snap, payload, p, sink);
                }
            }
            Transport::Tcp { payload, .. } if !self.reassemble && !payload.is_empty() => {
                let dns_port = sp == dns_wire::PORT || dp == dns_wire::PORT;
                // Read alone: nothing is tracked, so a ClientHello ends nothing.
                self.on_tcp_alone(snap, payload, dns_port, p, sink);
            }
            _ => {}
        }
    }
}

/// The packet's 5-tuple as seen on the wire.
pub(super) fn flow_key(d: &Decoded<'_>) -> FlowKey {
    let (src_port, dst_port) = d.transport.ports();
    FlowKey {
        src: d.src,
        src_port,
        dst: d.dst,
        dst_port,
        proto: d.transport.proto_number(d.src.is_ipv6()),
    }
}
