//! The per-packet engine: decode, extract observables, match, attribute.
//!
//! One [`Engine`] per worker thread. It owns its counters, scratch buffers
//! and TCP flow table (the router sends both directions of a flow to one
//! worker), reads the intel snapshot through arc-swap (no lock), and hands
//! every hit and every finished flow that hit to a [`Sink`]. A hit is the
//! only thing that allocates on the in-order path: matching borrows packet
//! bytes and fixed buffers; TCP bytes are copied only to wait for the rest
//! of a message (see [`crate::stream`]).
//!
//! `dns.rs` holds the DNS handling, `tcp.rs` the TCP payload path.

mod dns;
mod tcp;
mod udp;

use crate::attribution::{Unit, Units};
use crate::capture::RawPacket;
use crate::correlate::{DnsLinks, Pending};
use crate::decode::{self, Decoded, Fragment, Transport};
use crate::dns as dns_wire;
use crate::flow::{FlowConfig, FlowRecord, FlowTable, Segment};
use crate::hostnames::{self, HostName, known::KnownNames};
use crate::http;
use crate::intel::{Indicator, Intel, Snapshot};
use crate::name::NameBuf;
use crate::quic::QuicAssembler;
use crate::stats::{HitSource, Reason, Stats};
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

/// The flow a packet belongs to, as seen on the wire (not normalised).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub proto: u8,
}

/// Protocol details of a hit, mirrored into EVE's `dns`/`tls`/`http` objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Context {
    Dns {
        id: u16,
        rrname: Box<str>,
        rrtype: Box<str>,
        response: bool,
    },
    Tls {
        sni: Box<str>,
    },
    /// The server name of a ClientHello carried in QUIC Initials.
    Quic {
        sni: Box<str>,
    },
    Http {
        method: Box<str>,
        hostname: Option<Box<str>>,
        url: Box<str>,
    },
    None,
}

/// One match, attributed to an internal host.
#[derive(Clone, Debug)]
pub struct Hit {
    pub ts_ns: i64,
    pub flow: FlowKey,
    pub vlan: Option<u16>,
    /// The internal end: the machine to clean.
    pub host: IpAddr,
    pub unit: Arc<Unit>,
    pub source: HitSource,
    pub indicator: Indicator,
    /// What was seen on the wire (query name, SNI, URL, address).
    pub observed: Box<str>,
    /// True when the internal host was the one that started the exchange.
    pub outbound: bool,
    pub context: Context,
    /// The TCP flow the hit happened in (EVE `flow_id`, repeated in the
    /// flow's `flow` event).
    pub flow_id: Option<u64>,
    /// DNS hit: the host is a configured internal resolver asking for some
    /// client. Correlated hit: the address came from such a resolver's
    /// lookup.
    pub via_resolver: bool,
    /// The host's name as last announced on the wire (DHCP, NetBIOS, mDNS),
    /// exactly as seen.
    pub host_name: Option<Arc<str>>,
}

/// Protocol observations, for logging and ground-truth tests. Only built when
/// the sink asks for them.
#[derive(Debug)]
pub enum Observation<'a> {
    Dns(&'a dns_wire::Message),
    Tls { sni: Option<&'a str> },
    Http(&'a http::Request<'a>),
}

/// What a worker sends to the sink stage.
#[derive(Debug)]
pub enum Event {
    Hit(Box<Hit>),
    Flow(Box<FlowRecord>),
    /// A name an internal address announced, at packet time.
    Name(i64, Box<HostName>),
}

/// Where hits (and optionally observations) go.
pub trait Sink {
    fn hit(&mut self, hit: Hit);
    /// A TCP flow that had hits has ended: its totals.
    fn flow(&mut self, _flow: FlowRecord) {}
    /// An internal address announced its name (new, changed, or again
    /// after a while).
    fn host_name(&mut self, _ts_ns: i64, _name: HostName) {}
    fn wants_observations(&self) -> bool {
        false
    }
    fn observe(&mut self, _ts_ns: i64, _flow: &FlowKey, _o: &Observation<'_>) {}
}

impl Sink for Vec<Hit> {
    fn hit(&mut self, hit: Hit) {
        self.push(hit)
    }
}

/// Flows that already raised an IP alert, so a long session to a listed
/// address is one alert, not one per packet. Direct-mapped and fixed size: a
/// collision only causes a repeated alert, never a missed one.
struct RecentFlows {
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
    fn seen(&mut self, key: u64, ts: i64) -> bool {
        let s = &mut self.slots[(key as usize) & (RECENT_SLOTS - 1)];
        let hit = s.0 == key && ts.saturating_sub(s.1) < RECENT_IDLE_NS;
        *s = (key, ts);
        hit
    }
}

/// Scratch space for the HTTP matching haystack (Host + target).
const HAYSTACK: usize = 4096;
/// Outstanding DNS queries remembered per worker (answers to others are not
/// learned from).
const PENDING_QUERIES: usize = 16_384;

pub struct Engine {
    intel: Arc<Intel>,
    units: Arc<Units>,
    pub stats: Stats,
    recent: RecentFlows,
    name: NameBuf,
    hay: Box<[u8; HAYSTACK]>,
    /// Addresses internal hosts got for listed domains; shared by workers.
    links: Arc<DnsLinks>,
    pending: Pending,
    /// DNS-to-connection correlation on (the default).
    correlate: bool,
    flows: FlowTable,
    /// Flows that ended while handling the current packet, to report.
    ended: Vec<FlowRecord>,
    /// Timestamp of the newest packet, for [`Engine::idle`].
    last_ts: i64,
    /// Internal DNS resolvers (`dns_resolvers`): their queries are made for
    /// other hosts.
    resolvers: Vec<IpAddr>,
    /// TCP flow table and stream ordering on (the default); off, each
    /// segment is read on its own (for comparison benchmarks).
    reassemble: bool,
    quic: QuicAssembler,
    /// Latest name per internal address; shared by workers.
    known: Arc<KnownNames>,
    /// When each address's name was last passed on (see `udp.rs`).
    name_sent: rustc_hash::FxHashMap<IpAddr, i64>,
    names_scratch: Vec<HostName>,
}

/// Facts about the current packet that every hit needs.
#[derive(Clone, Copy)]
struct Pkt {
    ts: i64,
    flow: FlowKey,
    vlan: Option<u16>,
    /// Slot and id of the TCP flow, when there is one.
    tcp: Option<(u32, u64)>,
    /// A DNS hit whose querier is a configured internal resolver, or a flow
    /// matched through an address such a resolver looked up.
    via_resolver: bool,
}

impl Engine {
    pub fn new(intel: Arc<Intel>, units: Arc<Units>) -> Engine {
        Engine::with_links(intel, units, Arc::new(DnsLinks::default()))
    }

    /// An engine sharing `links` with the other workers of a pipeline.
    pub fn with_links(intel: Arc<Intel>, units: Arc<Units>, links: Arc<DnsLinks>) -> Engine {
        Engine {
            intel,
            units,
            stats: Stats::default(),
            recent: RecentFlows::new(),
            name: NameBuf::default(),
            hay: Box::new([0; HAYSTACK]),
            links,
            pending: Pending::new(PENDING_QUERIES),
            correlate: true,
            flows: FlowTable::new(FlowConfig::default(), 0),
            ended: Vec::new(),
            last_ts: i64::MIN,
            resolvers: Vec::new(),
            reassemble: true,
            quic: QuicAssembler::new(),
            known: Arc::new(KnownNames::default()),
            name_sent: Default::default(),
            names_scratch: Vec::new(),
        }
    }

    /// Share the table of host names with the other workers.
    pub fn with_known_names(mut self, known: Arc<KnownNames>) -> Engine {
        self.known = known;
        self
    }

    pub fn known_names(&self) -> &Arc<KnownNames> {
        &self.known
    }

    /// No flow table and no reassembly: each TCP segment is read on its own
    /// and no `flow` events are produced. For measuring what they cost.
    pub fn without_reassembly(mut self) -> Engine {
        self.reassemble = false;
        self
    }

    /// Internal DNS resolvers: DNS hits of theirs are marked `via_resolver`
    /// and the addresses they look up for listed names match any internal
    /// host that connects to them.
    pub fn with_resolvers(mut self, resolvers: &[IpAddr]) -> Engine {
        self.resolvers = resolvers.to_vec();
        self
    }

    /// A handful of addresses: a scan beats hashing, and only DNS packets ask.
    fn is_resolver(&self, ip: IpAddr) -> bool {
        self.resolvers.contains(&ip)
    }

    /// Size and timeouts of this worker's flow table; `salt` (the worker
    /// number) keeps flow ids of different workers apart.
    pub fn with_flow_config(mut self, cfg: FlowConfig, salt: u64) -> Engine {
        self.flows = FlowTable::new(cfg, salt);
        self
    }

    /// The flow table (for memory figures and tests).
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// End every tracked flow and report those that hit: the capture is
    /// over or the sensor stops.
    pub fn finish<S: Sink>(&mut self, sink: &mut S) {
        self.flows.drain(&mut self.ended);
        self.report_ended(sink);
    }

    /// No packets for `quiet_ns`: end the flows that timed out meanwhile
    /// (packet time stands still on an idle worker, so it is advanced by
    /// the quiet time).
    pub fn idle<S: Sink>(&mut self, quiet_ns: i64, sink: &mut S) {
        if self.last_ts == i64::MIN {
            return;
        }
        self.flows
            .expire(self.last_ts.saturating_add(quiet_ns), &mut self.ended);
        self.report_ended(sink);
    }

    fn report_ended<S: Sink>(&mut self, sink: &mut S) {
        self.stats.flows = self.flows.counters;
        for f in self.ended.drain(..) {
            self.stats.flow_events += 1;
            sink.flow(f);
        }
    }

    /// Turn DNS-to-connection correlation off (it is on by default).
    pub fn without_correlation(mut self) -> Engine {
        self.correlate = false;
        self
    }

    pub fn links(&self) -> &Arc<DnsLinks> {
        &self.links
    }

    pub fn process<S: Sink>(&mut self, raw: &RawPacket<'_>, sink: &mut S) {
        self.stats.packets += 1;
        self.stats.bytes += u64::from(raw.orig_len.max(raw.data.len() as u32));
        if raw.is_snaplen_cut() {
            self.stats.error(Reason::SnaplenCut);
        }
        let Some(d) = decode::decode(raw, &mut self.stats) else {
            return;
        };
        if d.fragment == Fragment::Later {
            return;
        }
        let snap = self.intel.load_full();
        let (sp, dp) = d.transport.ports();
        self.last_ts = self.last_ts.max(raw.ts_ns);
        let mut p = Pkt {
            ts: raw.ts_ns,
            flow: FlowKey {
                src: d.src,
                src_port: sp,
                dst: d.dst,
                dst_port: dp,
                proto: d.transport.proto_number(d.src.is_ipv6()),
            },
            vlan: d.vlan,
            tcp: None,
            via_resolver: false,
        };
        let tcp = match d.transport {
            Transport::Tcp {
                syn,
                ack,
                fin,
                rst,
                seq,
                payload,
                ..
            } if self.reassemble => {
                let seg = Segment {
                    syn,
                    ack,
                    fin,
                    rst,
                    seq,
                };
                let wire = u64::from(raw.orig_len.max(raw.data.len() as u32));
                let t = self
                    .flows
                    .track(p.ts, d.src, sp, d.dst, dp, seg, wire, &mut self.ended);
                p.tcp = Some((t.slot, self.flows.get_mut(t.slot).id));
                Some((t, seg, payload))
            }
            _ => None,
        };
        self.match_ips(&snap, &d, &p, sink);
        match d.transport {
            Transport::Udp { payload, .. } if dns_wire::is_dns_udp(sp, dp) => {
                if let Some(m) = dns_wire::parse(payload, &mut self.stats) {
                    self.on_dns(&snap, &m, &p, sink);
                }
            }
            Transport::Udp { payload, .. } if dp == crate::quic::PORT && !payload.is_empty() => {
                self.on_quic(&snap, payload, &p, sink);
            }
            Transport::Udp { payload, .. } if hostnames::is_name_port(sp, dp) => {
                self.on_names(payload, &p, sink);
            }
            Transport::Tcp { payload, .. } if !self.reassemble && !payload.is_empty() => {
                let dns_port = sp == dns_wire::PORT || dp == dns_wire::PORT;
                // Read alone: nothing is tracked, so a ClientHello ends nothing.
                self.on_tcp_alone(&snap, payload, dns_port, &p, sink);
            }
            _ => {}
        }
        if let Some((t, seg, payload)) = tcp {
            let tp = tcp::TcpPayload {
                t,
                seg,
                payload,
                dns_port: sp == dns_wire::PORT || dp == dns_wire::PORT,
                cut: d.truncated,
            };
            self.on_tcp(&snap, &tp, &p, sink);
            self.stats.flows = self.flows.counters;
        }
        if !self.ended.is_empty() {
            self.report_ended(sink);
        }
    }

    fn match_ips<S: Sink>(&mut self, snap: &Snapshot, d: &Decoded<'_>, p: &Pkt, sink: &mut S) {
        let (sp, dp) = d.transport.ports();
        let port = |x: u16| (x != 0).then_some(x);
        // Outbound first: an internal host reaching a listed address.
        let found = if let Some(id) = snap.match_ip(d.dst, port(dp)) {
            Some((id, d.src, d.dst, true))
        } else {
            snap.match_ip(d.src, port(sp))
                .map(|id| (id, d.dst, d.src, false))
        };
        let Some((id, host, remote, outbound)) = found else {
            if self.correlate && !self.links.is_empty() {
                self.match_links(d, p, sink);
            }
            return;
        };
        if !self.units.is_internal(host) || self.units.is_internal(remote) {
            self.stats.hits_without_internal_host += 1;
            return;
        }
        if self.repeat_in_flow(host, remote, p, HitSource::Ip) {
            return;
        }
        let observed = remote.to_string();
        self.emit(
            snap,
            id,
            host,
            outbound,
            HitSource::Ip,
            &observed,
            Context::None,
            p,
            sink,
        );
    }

    /// Whether this packet's flow between `host` and `remote` already raised
    /// an alert from `source` (then the packet is counted as a repeat): one
    /// alert per flow, not per packet.
    fn repeat_in_flow(&mut self, host: IpAddr, remote: IpAddr, p: &Pkt, source: HitSource) -> bool {
        let (sp, dp) = (p.flow.src_port, p.flow.dst_port);
        let mut h = FxHasher::default();
        (host, remote, sp.min(dp), sp.max(dp), p.flow.proto, source).hash(&mut h);
        let seen = self.recent.seen(h.finish(), p.ts);
        if seen {
            self.stats.ip_hit_packets_repeat += 1;
        }
        seen
    }

    /// A flow between an internal host and an address it got for a listed
    /// domain: a hit on that domain.
    fn match_links<S: Sink>(&mut self, d: &Decoded<'_>, p: &Pkt, sink: &mut S) {
        // The links' address filter answers first: nearly every packet
        // stops there, before the costlier internal-address test.
        let found = self
            .links
            .get(d.src, d.dst, p.ts)
            .filter(|_| self.units.is_internal(d.src))
            .map(|(i, via)| (i, via, d.src, d.dst, true))
            .or_else(|| {
                self.links
                    .get(d.dst, d.src, p.ts)
                    .filter(|_| self.units.is_internal(d.dst))
                    .map(|(i, via)| (i, via, d.dst, d.src, false))
            });
        let Some((ind, via_resolver, host, remote, outbound)) = found else {
            return;
        };
        let p = &Pkt { via_resolver, ..*p };
        if self.repeat_in_flow(host, remote, p, HitSource::DnsLink) {
            return;
        }
        let observed = remote.to_string();
        self.emit_indicator(
            ind,
            host,
            outbound,
            HitSource::DnsLink,
            &observed,
            Context::None,
            p,
            sink,
        );
    }

    /// Match the name in `self.name` and emit a hit blamed on `client`.
    #[allow(clippy::too_many_arguments)]
    fn match_name<S: Sink>(
        &mut self,
        snap: &Snapshot,
        client: IpAddr,
        server: IpAddr,
        source: HitSource,
        p: &Pkt,
        sink: &mut S,
        ctx: impl FnOnce(&str) -> Context,
    ) {
        if self.name.is_empty() {
            return;
        }
        let Some(id) = snap.match_domain(self.name.as_str()) else {
            return;
        };
        if snap.allow_domain(self.name.as_str()) {
            self.stats.hits_allowlisted += 1;
            return;
        }
        let observed = self.name.as_str().to_owned();
        let c = ctx(&observed);
        self.attribute(snap, id, client, server, source, &observed, c, p, sink);
    }

    /// Blame the client if it is internal; a name hit needs an internal client.
    #[allow(clippy::too_many_arguments)]
    fn attribute<S: Sink>(
        &mut self,
        snap: &Snapshot,
        id: crate::intel::Id,
        client: IpAddr,
        _server: IpAddr,
        source: HitSource,
        observed: &str,
        ctx: Context,
        p: &Pkt,
        sink: &mut S,
    ) {
        if !self.units.is_internal(client) {
            self.stats.hits_without_internal_host += 1;
            return;
        }
        self.emit(snap, id, client, true, source, observed, ctx, p, sink);
    }

    #[allow(clippy::too_many_arguments)]
    fn emit<S: Sink>(
        &mut self,
        snap: &Snapshot,
        id: crate::intel::Id,
        host: IpAddr,
        outbound: bool,
        source: HitSource,
        observed: &str,
        context: Context,
        p: &Pkt,
        sink: &mut S,
    ) {
        let ind = snap.indicator(id, observed);
        let remote_allowed =
            source == HitSource::Ip && observed.parse().is_ok_and(|ip| snap.allow_ip(ip));
        if snap.allow_ip(host) || remote_allowed {
            self.stats.hits_allowlisted += 1;
            return;
        }
        self.emit_indicator(ind, host, outbound, source, observed, context, p, sink);
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_indicator<S: Sink>(
        &mut self,
        ind: Indicator,
        host: IpAddr,
        outbound: bool,
        source: HitSource,
        observed: &str,
        context: Context,
        p: &Pkt,
        sink: &mut S,
    ) {
        self.stats.hit(source);
        if let Some((slot, _)) = p.tcp {
            let unit = self.units.unit_of(host);
            self.flows
                .get_mut(slot)
                .mark_hit(host, unit, &ind.value, p.vlan);
        }
        sink.hit(Hit {
            ts_ns: p.ts,
            flow: p.flow,
            vlan: p.vlan,
            host,
            unit: self.units.unit_of(host).clone(),
            source,
            indicator: ind.clone(),
            observed: observed.into(),
            outbound,
            context,
            flow_id: p.tcp.map(|(_, id)| id),
            via_resolver: p.via_resolver,
            host_name: self.known.get(host),
        });
    }
}
