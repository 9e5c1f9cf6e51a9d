//! The per-packet engine: decode, extract observables, match, attribute.
//!
//! One [`Engine`] per worker thread. It owns its counters and scratch buffers,
//! reads the intel snapshot through arc-swap (no lock), and hands every hit to
//! a [`Sink`]. A hit is the only thing that allocates: matching itself only
//! borrows packet bytes and fixed buffers.

use crate::attribution::{Unit, Units};
use crate::capture::RawPacket;
use crate::correlate::{DnsLinks, Exchange, Pending};
use crate::decode::{self, Decoded, Fragment, Transport};
use crate::dns;
use crate::http;
use crate::intel::{Indicator, Intel, Snapshot};
use crate::name::NameBuf;
use crate::stats::{HitSource, Reason, Stats};
use crate::tls::{self, ClientHello};
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
}

/// Protocol observations, for logging and ground-truth tests. Only built when
/// the sink asks for them.
#[derive(Debug)]
pub enum Observation<'a> {
    Dns(&'a dns::Message),
    Tls { sni: Option<&'a str> },
    Http(&'a http::Request<'a>),
}

/// Where hits (and optionally observations) go.
pub trait Sink {
    fn hit(&mut self, hit: Hit);
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
}

/// Facts about the current packet that every hit needs.
#[derive(Clone, Copy)]
struct Pkt {
    ts: i64,
    flow: FlowKey,
    vlan: Option<u16>,
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
        let p = Pkt {
            ts: raw.ts_ns,
            flow: FlowKey {
                src: d.src,
                src_port: sp,
                dst: d.dst,
                dst_port: dp,
                proto: d.transport.proto_number(d.src.is_ipv6()),
            },
            vlan: d.vlan,
        };
        self.match_ips(&snap, &d, &p, sink);
        match d.transport {
            Transport::Udp { payload, .. } if dns::is_dns_udp(sp, dp) => {
                if let Some(m) = dns::parse(payload, &mut self.stats) {
                    self.on_dns(&snap, &m, &p, sink);
                }
            }
            Transport::Tcp { payload, .. } if !payload.is_empty() => {
                if sp == dns::PORT || dp == dns::PORT {
                    let mut msgs = Vec::new();
                    dns::parse_tcp(payload, &mut self.stats, |m, _| msgs.push(m));
                    for m in &msgs {
                        self.on_dns(&snap, m, &p, sink);
                    }
                } else {
                    self.on_tcp_payload(&snap, payload, &p, sink);
                }
            }
            _ => {}
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

    fn on_dns<S: Sink>(&mut self, snap: &Snapshot, m: &dns::Message, p: &Pkt, sink: &mut S) {
        if m.response {
            self.stats.dns_responses += 1;
        } else {
            self.stats.dns_queries += 1;
        }
        if sink.wants_observations() {
            sink.observe(p.ts, &p.flow, &Observation::Dns(m));
        }
        // The querier is the host: the source of a query, the destination of
        // a response. Queries are matched on their names; responses on the
        // CNAME targets they reveal (the question was matched on the way out).
        if !m.response {
            if self.correlate {
                let asked = Exchange {
                    host: p.flow.src,
                    host_port: p.flow.src_port,
                    resolver: p.flow.dst,
                    resolver_port: p.flow.dst_port,
                    id: m.id,
                };
                self.stats.dns_pending_evicted += self.pending.ask(asked, p.ts) as u64;
            }
            for q in &m.queries {
                dns::name_into(q.name(), &mut self.name);
                self.match_name(
                    snap,
                    p.flow.src,
                    p.flow.dst,
                    HitSource::DnsQuery,
                    p,
                    sink,
                    |n| Context::Dns {
                        id: m.id,
                        rrname: n.into(),
                        // Formatted only for a hit: it allocates.
                        rrtype: dns::rrtype_str(q.query_type()).into(),
                        response: false,
                    },
                );
            }
        } else {
            for (_, a) in &m.answers {
                if let dns::Answer::Cname(target) = a {
                    dns::name_into(target, &mut self.name);
                    self.match_name(
                        snap,
                        p.flow.dst,
                        p.flow.src,
                        HitSource::DnsAnswer,
                        p,
                        sink,
                        |n| Context::Dns {
                            id: m.id,
                            rrname: n.into(),
                            rrtype: "CNAME".into(),
                            response: true,
                        },
                    );
                }
            }
            if self.correlate {
                self.learn_links(snap, m, p);
            }
        }
    }

    /// Remember the addresses in an answer to a listed name (the question,
    /// or a CNAME on the way), if the answer answers a query seen here.
    fn learn_links(&mut self, snap: &Snapshot, m: &dns::Message, p: &Pkt) {
        let host = p.flow.dst;
        let answer = Exchange {
            host,
            host_port: p.flow.dst_port,
            resolver: p.flow.src,
            resolver_port: p.flow.src_port,
            id: m.id,
        };
        let asked = self.pending.answered(answer, p.ts);
        if !m.answers.iter().any(|a| matches!(a.1, dns::Answer::A(..))) {
            return;
        }
        if !asked {
            self.stats.dns_answers_unsolicited += 1;
            return;
        }
        if !self.units.is_internal(host) {
            return;
        }
        let names = m
            .queries
            .iter()
            .map(|q| q.name())
            .chain(m.answers.iter().filter_map(|a| match &a.1 {
                dns::Answer::Cname(t) => Some(t),
                _ => None,
            }));
        let mut listed = None;
        for n in names {
            dns::name_into(n, &mut self.name);
            let name = self.name.as_str();
            if let Some(id) = snap.match_domain(name)
                && !snap.allow_domain(name)
            {
                listed = Some(snap.indicator(id, name));
                break;
            }
        }
        let Some(ind) = listed else { return };
        let new: Vec<_> = m
            .answers
            .iter()
            .filter_map(|a| match a.1 {
                dns::Answer::A(ip, ttl) if !self.units.is_internal(ip) => {
                    Some((host, ip, ind.clone(), ttl))
                }
                _ => None,
            })
            .collect();
        self.links.learn(p.ts, &new);
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
        let found = if self.units.is_internal(d.src) {
            self.links
                .get(d.src, d.dst, p.ts)
                .map(|i| (i, d.src, d.dst, true))
        } else {
            None
        }
        .or_else(|| {
            self.units
                .is_internal(d.dst)
                .then(|| self.links.get(d.dst, d.src, p.ts))
                .flatten()
                .map(|i| (i, d.dst, d.src, false))
        });
        let Some((ind, host, remote, outbound)) = found else {
            return;
        };
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

    fn on_tcp_payload<S: Sink>(&mut self, snap: &Snapshot, payload: &[u8], p: &Pkt, sink: &mut S) {
        match tls::client_hello(payload) {
            ClientHello::NotTls => {}
            ClientHello::Hello { sni } => {
                self.stats.tls_client_hellos += 1;
                let has = sni.is_some_and(|s| self.name.set_host(s));
                if sink.wants_observations() {
                    let s = has.then(|| self.name.as_str());
                    sink.observe(p.ts, &p.flow, &Observation::Tls { sni: s });
                }
                if has {
                    self.match_name(
                        snap,
                        p.flow.src,
                        p.flow.dst,
                        HitSource::TlsSni,
                        p,
                        sink,
                        |n| Context::Tls { sni: n.into() },
                    );
                }
                return;
            }
            ClientHello::Truncated => {
                self.stats.error(Reason::TlsTruncated);
                return;
            }
            ClientHello::Malformed => {
                self.stats.error(Reason::TlsMalformed);
                return;
            }
        }
        let (req, complete) = match http::request(payload) {
            http::Parsed::NotHttp => return,
            http::Parsed::Malformed => {
                self.stats.error(Reason::HttpMalformed);
                return;
            }
            http::Parsed::Request { req, complete } => (req, complete),
        };
        self.stats.http_requests += 1;
        if !complete {
            self.stats.error(Reason::HttpTruncated);
        }
        if sink.wants_observations() {
            sink.observe(p.ts, &p.flow, &Observation::Http(&req));
        }
        let has_host = req.host.is_some_and(|h| self.name.set_host(h));
        let ctx = |host: Option<&str>| Context::Http {
            method: req.method.into(),
            hostname: host.map(Into::into),
            url: req.target.into(),
        };
        if has_host {
            let host = self.name.as_str().to_owned();
            self.match_name(
                snap,
                p.flow.src,
                p.flow.dst,
                HitSource::HttpHost,
                p,
                sink,
                |_| ctx(Some(&host)),
            );
        }
        if !snap.has_patterns() {
            return;
        }
        // Haystack: normalised host, then the target without any scheme and
        // authority (absolute-form targets repeat the host).
        let host = if has_host {
            self.name.as_str().as_bytes()
        } else {
            b""
        };
        let mut target = req.target.as_bytes();
        for scheme in [&b"http://"[..], b"https://"] {
            if let Some(rest) = target.strip_prefix(scheme) {
                target = rest
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(&b""[..], |i| &rest[i..]);
            }
        }
        let n = host.len().min(HAYSTACK);
        self.hay[..n].copy_from_slice(&host[..n]);
        let m = target.len().min(HAYSTACK - n);
        self.hay[n..n + m].copy_from_slice(&target[..m]);
        if let Some(id) = snap.match_pattern(&self.hay[..n + m]) {
            let host_str = has_host.then(|| self.name.as_str().to_owned());
            let observed = String::from_utf8_lossy(&self.hay[..n + m]).into_owned();
            self.attribute(
                snap,
                id,
                p.flow.src,
                p.flow.dst,
                HitSource::HttpUrl,
                &observed,
                ctx(host_str.as_deref()),
                p,
                sink,
            );
        }
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
        });
    }
}
