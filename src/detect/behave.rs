//! The engine's side of the heuristics: handing them the packets they
//! judge (SYNs, SYN-ACKs, DNS), matching answers against the IP feeds
//! (sinkhole answers), and turning their findings into hits.

use super::engine::{Engine, Pkt};
use super::heuristics::{Behaviour, Finding, Heuristic};
use super::{Context, Hit, HitSource, Sink};
use crate::decode::{Decoded, Transport};
use crate::intel::indicator::IndicatorKind;
use crate::intel::{Indicator, Snapshot};
use crate::packet::FlowKey;
use crate::protocols::dns;
use serde_json::json;

const NXDOMAIN: u16 = 3;

impl Engine {
    /// A SYN or SYN-ACK to the scan and beacon heuristics; then any scan
    /// candidate whose wait is over.
    pub(super) fn behave_tcp<S: Sink>(
        &mut self,
        snap: &Snapshot,
        d: &Decoded<'_>,
        ts: i64,
        sink: &mut S,
    ) {
        if let Transport::Tcp {
            syn: true,
            ack,
            rst: false,
            src_port,
            dst_port,
            ..
        } = d.transport
        {
            let src_in = self.units.is_internal(d.src);
            let dst_in = self.units.is_internal(d.dst);
            if src_in || dst_in {
                self.heur
                    .on_syn(ts, d.src, src_port, d.dst, dst_port, ack, src_in, dst_in);
                self.sync_heuristic_stats();
            }
            if src_in && !dst_in && !ack {
                self.hygiene_syn(ts, d.src, d.dst, dst_port, sink);
            }
        }
        self.behave_tick(snap, ts, sink);
    }

    /// Judge what waited until `now`, and report every finding.
    pub(super) fn behave_tick<S: Sink>(&mut self, snap: &Snapshot, now: i64, sink: &mut S) {
        self.heur.tick(now);
        self.report_findings(snap, sink);
    }

    /// A DNS message to the DGA and tunnel heuristics, and its answers to
    /// the sinkhole check. `querier` is the host of the exchange.
    pub(super) fn behave_dns<S: Sink>(
        &mut self,
        snap: &Snapshot,
        m: &dns::Message,
        p: &Pkt,
        sink: &mut S,
    ) {
        // Port 53 only: mDNS and LLMNR names (service UUIDs) are local.
        let (sp, dp) = (p.flow.src_port, p.flow.dst_port);
        let querier = if m.response { p.flow.dst } else { p.flow.src };
        if (m.response && sp != dns::PORT) || (!m.response && dp != dns::PORT) {
            return;
        }
        if !self.units.is_internal(querier) {
            return;
        }
        let server = if m.response { p.flow.src } else { p.flow.dst };
        let Some(q) = m.queries.first() else {
            return;
        };
        if m.response && m.rcode != NXDOMAIN {
            for (_, a) in &m.answers {
                if let dns::Answer::A(ip, _) = *a {
                    self.history_address(p.ts, querier, ip, HitSource::DnsAnswer, 0);
                }
            }
        }
        if !m.response {
            // `on_dns` left the (only) query's name in `self.name`.
            if m.queries.len() != 1 {
                dns::name_into(q.name(), &mut self.name);
            }
            self.heur
                .on_query(p.ts, querier, server, self.name.as_str());
        } else if m.rcode == NXDOMAIN {
            // A resolver's upstream look-ups are many clients' typos added
            // up: its clients are judged on their own answers.
            if !p.via_resolver {
                dns::name_into(q.name(), &mut self.name);
                self.heur
                    .on_nxdomain(p.ts, querier, server, self.name.as_str());
            }
        } else if self.heur.rules().settings.sinkhole.enabled {
            self.sinkhole_answer(snap, m, p, sink);
        }
        self.report_findings(snap, sink);
        self.sync_heuristic_stats();
    }

    /// An answer whose address is on an IP feed: a hit on the querier even
    /// if no connection follows (a sinkholed campaign domain).
    fn sinkhole_answer<S: Sink>(
        &mut self,
        snap: &Snapshot,
        m: &dns::Message,
        p: &Pkt,
        sink: &mut S,
    ) {
        let host = p.flow.dst;
        let found = m.answers.iter().find_map(|(_, a)| match *a {
            dns::Answer::A(ip, _) => snap.match_ip(ip, None).map(|id| (ip, id)),
            dns::Answer::Cname(_) => None,
        });
        let Some((ip, id)) = found else {
            return;
        };
        let h = Heuristic::SinkholeAnswer;
        if let Some(q) = m.queries.first() {
            dns::name_into(q.name(), &mut self.name);
        }
        if self.heur.allowed(h, host, ip)
            || snap.allow_ip(host)
            || snap.allow_ip(ip)
            || snap.allow_domain(self.name.as_str())
        {
            self.heur.stats.allowlisted += 1;
            return;
        }
        let observed = ip.to_string();
        let ind = snap.indicator(id, &observed);
        let qname = self.name.as_str();
        let behaviour = Behaviour {
            heuristic: h,
            evidence: json!({ "query": qname, "address": observed, "feed": ind.feed.name }),
            signature: format!(
                "gatewatch heuristic sinkhole_answer: {qname} resolved to {observed}, listed by {}",
                ind.feed.name
            ),
            offender: true,
        };
        let context = Context::Dns {
            id: m.id,
            rrname: qname.into(),
            rrtype: if ip.is_ipv4() { "A" } else { "AAAA" }.into(),
            response: true,
        };
        self.heur.stats.reported[h as usize] += 1;
        self.stats.hit(HitSource::DnsAnswer);
        sink.hit(Hit {
            ts_ns: p.ts,
            flow: p.flow,
            vlan: p.vlan,
            host,
            unit: self.units.unit_of(host).clone(),
            source: HitSource::DnsAnswer,
            indicator: ind,
            observed: observed.into(),
            outbound: false,
            context,
            flow_id: None,
            via_resolver: p.via_resolver,
            host_name: self.known.get(host),
            behaviour: Some(Box::new(behaviour)),
            retro: false,
        });
    }

    fn report_findings<S: Sink>(&mut self, snap: &Snapshot, sink: &mut S) {
        if self.heur.found.is_empty() {
            return;
        }
        let found = std::mem::take(&mut self.heur.found);
        for f in &found {
            self.report(snap, f, sink);
        }
        self.heur.found = found;
        self.heur.found.clear();
        self.sync_heuristic_stats();
    }

    /// The engine's copy of the heuristics' counters (published with the
    /// rest of [`super::Stats`]).
    fn sync_heuristic_stats(&mut self) {
        self.heur.sync_stats();
        self.stats.heuristics = self.heur.stats;
    }

    fn report<S: Sink>(&mut self, snap: &Snapshot, f: &Finding, sink: &mut S) {
        let h = f.heuristic;
        let remote_given = !f.remote.is_unspecified();
        if self.heur.allowed(h, f.host, f.remote)
            || snap.allow_ip(f.host)
            || (remote_given && snap.allow_ip(f.remote))
        {
            self.heur.stats.allowlisted += 1;
            return;
        }
        // A beacon to a listed address is the list's hit already.
        if h == Heuristic::Beacon && snap.match_ip(f.remote, Some(f.port)).is_some() {
            return;
        }
        let rules = self.heur.rules();
        let offender = h != Heuristic::Beacon || rules.settings.beacon.offender;
        let indicator = Indicator {
            value: f.indicator.as_str().into(),
            kind: IndicatorKind::Behaviour,
            feed: rules.feed(h).clone(),
            reference: None,
            description: None,
        };
        self.heur.stats.reported[h as usize] += 1;
        self.stats.hit(HitSource::Heuristic);
        sink.hit(Hit {
            ts_ns: f.ts,
            flow: FlowKey {
                src: f.host,
                src_port: 0,
                dst: f.remote,
                dst_port: f.port,
                proto: f.proto,
            },
            vlan: None,
            host: f.host,
            unit: self.units.unit_of(f.host).clone(),
            source: HitSource::Heuristic,
            indicator,
            observed: f.observed.as_str().into(),
            outbound: true,
            context: Context::None,
            flow_id: None,
            // A configured resolver tunnelling is forwarding some client's
            // names: said so, as for its list hits.
            via_resolver: self.is_resolver(f.host),
            host_name: self.known.get(f.host),
            behaviour: Some(Box::new(Behaviour {
                heuristic: h,
                evidence: f.evidence.clone(),
                signature: f.signature.clone(),
                offender,
            })),
            retro: false,
        });
    }
}
