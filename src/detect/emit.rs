//! Matching what a packet showed against the snapshot, and turning a match
//! into a [`Hit`]: listed addresses, names (DNS, SNI, Host), addresses
//! learned from DNS answers, allowlists, and one alert per flow.

use super::engine::{Engine, Pkt};
use super::{Context, FlowAlert, Hit, HitSource, Sink};
use crate::decode::Decoded;
use crate::intel::{Id, Indicator, Snapshot};
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// A match blamed on a host, before it becomes a [`Hit`].
pub(super) struct Found<'a> {
    /// The internal end: the machine to clean.
    pub host: IpAddr,
    /// The host started the exchange.
    pub outbound: bool,
    pub source: HitSource,
    /// What was seen on the wire (name, URL, address).
    pub observed: &'a str,
    pub context: Context,
}

impl Engine {
    pub(super) fn match_ips<S: Sink>(
        &mut self,
        snap: &Snapshot,
        d: &Decoded<'_>,
        p: &Pkt,
        sink: &mut S,
    ) {
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
                self.match_links(snap, d, p, sink);
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
        let found = Found {
            host,
            outbound,
            source: HitSource::Ip,
            observed: &observed,
            context: Context::None,
        };
        self.emit(snap, id, found, p, sink);
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
    fn match_links<S: Sink>(&mut self, snap: &Snapshot, d: &Decoded<'_>, p: &Pkt, sink: &mut S) {
        // The links' address filter answers first: nearly every packet
        // stops there, before the costlier internal-address test.
        let found = self
            .links
            .get(d.src, d.dst, p.ts)
            .filter(|_| self.units.is_internal(d.src))
            .map(|(_, via)| (via, d.src, d.dst, true))
            .or_else(|| {
                self.links
                    .get(d.dst, d.src, p.ts)
                    .filter(|_| self.units.is_internal(d.dst))
                    .map(|(_, via)| (via, d.dst, d.src, false))
            });
        let Some((via_resolver, host, remote, outbound)) = found else {
            return;
        };
        let p = &Pkt { via_resolver, ..*p };
        if self.repeat_in_flow(host, remote, p, HitSource::DnsLink) {
            return;
        }
        // The allowlists apply as to any other hit: the host, the address,
        // and the domain (a reload may have allowed it since it was learned).
        if self.allowlisted(snap, host, Some(remote)) {
            return;
        }
        let Some((ind, _)) = self.links.get(host, remote, p.ts) else {
            return;
        };
        if snap.allow_domain(&ind.value) {
            self.stats.hits_allowlisted += 1;
            return;
        }
        // Copied only now, for the one packet of the flow that alerts.
        let ind = Indicator::clone(ind);
        let observed = remote.to_string();
        let found = Found {
            host,
            outbound,
            source: HitSource::DnsLink,
            observed: &observed,
            context: Context::None,
        };
        self.emit_indicator(ind, found, p, sink);
    }

    /// Match the name in `self.name` and emit a hit blamed on `client`.
    /// True when the name is listed and no allowlist cancels it.
    pub(super) fn match_name<S: Sink>(
        &mut self,
        snap: &Snapshot,
        client: IpAddr,
        source: HitSource,
        p: &Pkt,
        sink: &mut S,
        ctx: impl FnOnce(&str) -> Context,
    ) -> bool {
        if self.name.is_empty() {
            return false;
        }
        self.history_prefetch_name(p.ts, client, source);
        self.hygiene_name(client, source, p, sink);
        let listed = snap.match_domain(self.name.as_str());
        self.history_name(p.ts, client, source);
        let Some(id) = listed else {
            return false;
        };
        if snap.allow_domain(self.name.as_str()) {
            self.stats.hits_allowlisted += 1;
            return false;
        }
        let observed = self.name.as_str().to_owned();
        let found = Found {
            host: client,
            outbound: true,
            source,
            context: ctx(&observed),
            observed: &observed,
        };
        self.attribute(snap, id, found, p, sink);
        true
    }

    /// Emit `found` if its host (the client of the exchange) is internal: a
    /// name hit needs an internal client.
    pub(super) fn attribute<S: Sink>(
        &mut self,
        snap: &Snapshot,
        id: Id,
        found: Found<'_>,
        p: &Pkt,
        sink: &mut S,
    ) {
        if !self.units.is_internal(found.host) {
            self.stats.hits_without_internal_host += 1;
            return;
        }
        self.emit(snap, id, found, p, sink);
    }

    /// A match on listed entry `id`, unless an allowlist names the host or,
    /// for an address hit, the remote address.
    fn emit<S: Sink>(&mut self, snap: &Snapshot, id: Id, found: Found<'_>, p: &Pkt, sink: &mut S) {
        let remote = (found.source == HitSource::Ip)
            .then(|| found.observed.parse().ok())
            .flatten();
        if self.allowlisted(snap, found.host, remote) {
            return;
        }
        let ind = snap.indicator(id, found.observed);
        self.emit_indicator(ind, found, p, sink);
    }

    /// Whether an allowlist names the host or the remote address (counted
    /// when it does): the check every hit passes before it is emitted.
    fn allowlisted(&mut self, snap: &Snapshot, host: IpAddr, remote: Option<IpAddr>) -> bool {
        let allowed = snap.allow_ip(host) || remote.is_some_and(|r| snap.allow_ip(r));
        self.stats.hits_allowlisted += u64::from(allowed);
        allowed
    }

    /// The hit: counted, marked on its TCP flow, handed to the sink.
    fn emit_indicator<S: Sink>(&mut self, ind: Indicator, found: Found<'_>, p: &Pkt, sink: &mut S) {
        let Found {
            host,
            outbound,
            source,
            observed,
            context,
        } = found;
        self.stats.hit(source);
        let unit = self.units.unit_of(host).clone();
        if let Some((slot, _)) = p.tracked {
            self.flows
                .get_mut(slot)
                .mark_or_insert_with(|| FlowAlert {
                    host,
                    unit: unit.clone(),
                    indicators: Vec::new(),
                    vlan: p.vlan,
                    hits: 0,
                })
                .add(&ind.value);
        }
        sink.hit(Hit {
            ts_ns: p.ts,
            flow: p.flow,
            vlan: p.vlan,
            host,
            unit,
            source,
            indicator: ind,
            observed: observed.into(),
            outbound,
            context,
            flow_id: p.tracked.map(|(_, id)| id),
            via_resolver: p.via_resolver,
            host_name: self.known.get(host),
            behaviour: None,
            retro: false,
        });
    }
}
