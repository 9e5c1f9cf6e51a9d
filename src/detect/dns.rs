//! DNS in the engine: queries matched on their names, answers on the CNAME
//! targets they reveal, and answers to listed names teaching correlation
//! links (see [`crate::detect::correlate`]).

use super::engine::{Engine, Pkt};
use super::{Context, HitSource, Observation, Sink};
use crate::detect::correlate::{ANY_HOST, Exchange};
use crate::intel::Snapshot;
use crate::protocols::dns;

impl Engine {
    pub(super) fn on_dns<S: Sink>(
        &mut self,
        snap: &Snapshot,
        m: &dns::Message,
        p: &Pkt,
        sink: &mut S,
    ) {
        if m.response {
            self.stats.dns_responses += 1;
        } else {
            self.stats.dns_queries += 1;
        }
        if sink.wants_observations() {
            sink.observe(p.ts, &p.flow, &Observation::Dns(m));
        }
        let querier = if m.response { p.flow.dst } else { p.flow.src };
        let p = &Pkt {
            via_resolver: self.is_resolver(querier),
            ..*p
        };
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
                self.match_name(snap, p.flow.src, HitSource::DnsQuery, p, sink, |n| {
                    Context::Dns {
                        id: m.id,
                        rrname: n.into(),
                        // Formatted only for a hit: it allocates.
                        rrtype: dns::rrtype_str(q.query_type()).into(),
                        response: false,
                    }
                });
            }
        } else {
            for (_, a) in &m.answers {
                if let dns::Answer::Cname(target) = a {
                    dns::name_into(target, &mut self.name);
                    self.match_name(snap, p.flow.dst, HitSource::DnsAnswer, p, sink, |n| {
                        Context::Dns {
                            id: m.id,
                            rrname: n.into(),
                            rrtype: "CNAME".into(),
                            response: true,
                        }
                    });
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
        let ind = std::sync::Arc::new(ind);
        let new: Vec<_> = m
            .answers
            .iter()
            .filter_map(|a| match a.1 {
                dns::Answer::A(ip, ttl) if !self.units.is_internal(ip) => {
                    // A resolver asks for the hosts behind it: whichever of
                    // them connects to the address is the one to find.
                    let who = if p.via_resolver { ANY_HOST } else { host };
                    Some((who, ip, ind.clone(), ttl))
                }
                _ => None,
            })
            .collect();
        self.links.learn(p.ts, &new);
    }
}
