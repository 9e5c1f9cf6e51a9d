//! DNS in the engine: queries matched on their names, answers on the CNAME
//! targets they reveal, and answers to listed names teaching correlation
//! links (see [`crate::detect::correlate`]).

use super::engine::{Engine, Pkt, flow_key};
use super::{Context, HitSource, Observation, Sink};
use crate::decode::{DecodeCounters, Transport, decode};
use crate::detect::correlate::{ANY_HOST, Exchange};
use crate::intel::{Id, Snapshot};
use crate::packet::{Problems, RawPacket};
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
            let mut listed = false;
            for q in &m.queries {
                dns::name_into(q.name(), &mut self.name);
                listed |= self.match_name(snap, p.flow.src, HitSource::DnsQuery, p, sink, |n| {
                    Context::Dns {
                        id: m.id,
                        rrname: n.into(),
                        // Formatted only for a hit: it allocates.
                        rrtype: dns::rrtype_str(q.query_type()).into(),
                        response: false,
                    }
                });
            }
            if self.correlate {
                self.remember_query(m, p, listed);
            }
        } else {
            let mut listed = false;
            for target in cnames(m) {
                dns::name_into(target, &mut self.name);
                listed |= self.match_name(snap, p.flow.dst, HitSource::DnsAnswer, p, sink, |n| {
                    Context::Dns {
                        id: m.id,
                        rrname: n.into(),
                        rrtype: "CNAME".into(),
                        response: true,
                    }
                });
            }
            if self.correlate && self.learn_links(snap, m, p, listed) == Learned::Unsolicited {
                self.stats.dns_answers_unsolicited += 1;
            }
        }
        self.behave_dns(snap, m, p, sink);
    }

    /// A configured resolver's lookup, handed to this worker only to learn
    /// from (its own worker matches and counts it; see
    /// `run::route::Route::Everyone`): remember the query, learn the
    /// answer. Counts nothing the owning worker counts.
    pub fn learn_from(&mut self, raw: &RawPacket<'_>) {
        if !self.correlate {
            return;
        }
        let (mut counts, mut problems) = (DecodeCounters::default(), Problems::default());
        let Some(d) = decode(raw, &mut counts, &mut problems) else {
            return;
        };
        let Transport::Udp { payload, .. } = d.transport else {
            return;
        };
        let Some(m) = dns::parse(payload, &mut problems) else {
            return;
        };
        let p = Pkt {
            ts: raw.ts_ns,
            flow: flow_key(&d),
            vlan: d.vlan,
            tracked: None,
            via_resolver: true,
        };
        let snap = self.take_snapshot();
        if m.response {
            let listed = self.first_listed(&snap, cnames(&m)).is_some();
            self.learn_links(&snap, &m, &p, listed);
        } else {
            let listed = self.first_listed(&snap, m.queries.iter().map(|q| q.name()));
            self.remember_query(&m, &p, listed.is_some());
        }
        self.snap_back(snap);
    }

    /// Start loading the pending-query bucket this DNS message will touch,
    /// read from its header (QR bit, id) before it is parsed.
    pub(super) fn prefetch_pending(&self, payload: &[u8], p: &Pkt) {
        if !self.correlate || payload.len() < 12 {
            return;
        }
        let id = u16::from_be_bytes([payload[0], payload[1]]);
        let response = payload[2] & 0x80 != 0;
        self.pending.prefetch(&Exchange::of(&p.flow, id, response));
    }

    /// The first of `names` that is listed and not allowlisted (no hit),
    /// left normalised in `self.name`.
    fn first_listed<'n>(
        &mut self,
        snap: &Snapshot,
        names: impl Iterator<Item = &'n hickory_proto::rr::Name>,
    ) -> Option<Id> {
        for n in names {
            dns::name_into(n, &mut self.name);
            let name = self.name.as_str();
            if let Some(id) = snap.match_domain(name)
                && !snap.allow_domain(name)
            {
                return Some(id);
            }
        }
        None
    }

    /// Note a query to port 53 so that its answer can be learned from,
    /// with whether it asked for a listed name. mDNS and LLMNR are left out:
    /// they never teach a link, and their chatter would only crowd the
    /// table.
    fn remember_query(&mut self, m: &dns::Message, p: &Pkt, listed: bool) {
        if p.flow.dst_port != dns::PORT {
            return;
        }
        let asked = Exchange::of(&p.flow, m.id, false);
        self.stats.dns_pending_evicted += self.pending.ask(asked, p.ts, listed) as u64;
    }

    /// Remember the addresses in an answer to a listed name (the question,
    /// or a CNAME on the way: `cname_listed`), if the answer answers a query
    /// seen here. The question was matched when it was asked; only an
    /// answer with a listed name looks names up again, for the indicator.
    fn learn_links(
        &mut self,
        snap: &Snapshot,
        m: &dns::Message,
        p: &Pkt,
        cname_listed: bool,
    ) -> Learned {
        let host = p.flow.dst;
        let asked = self
            .pending
            .answered(Exchange::of(&p.flow, m.id, true), p.ts);
        if !m.answers.iter().any(|a| matches!(a.1, dns::Answer::A(..))) {
            return Learned::Nothing;
        }
        let Some(question_listed) = asked else {
            return Learned::Unsolicited;
        };
        if !question_listed && !cname_listed {
            return Learned::Nothing;
        }
        // Only a resolver's lookups over UDP reach every worker; one over
        // TCP would be known to its own worker alone, and results would
        // then depend on the worker count.
        if !self.units.is_internal(host) || (p.via_resolver && p.flow.proto != UDP) {
            return Learned::Nothing;
        }
        let names = m.queries.iter().map(|q| q.name()).chain(cnames(m));
        let Some(id) = self.first_listed(snap, names) else {
            return Learned::Nothing;
        };
        let ind = std::sync::Arc::new(snap.indicator(id, self.name.as_str()));
        // A resolver asks for the hosts behind it: whichever of them
        // connects to the address is the one to find.
        let who = if p.via_resolver { ANY_HOST } else { host };
        for (_, a) in &m.answers {
            if let dns::Answer::A(ip, ttl) = *a
                && !self.units.is_internal(ip)
            {
                self.links.learn(p.ts, who, ip, &ind, ttl);
            }
        }
        self.stats.links = self.links.stats();
        Learned::Links
    }
}

const UDP: u8 = 17;

/// The CNAME targets an answer reveals.
fn cnames(m: &dns::Message) -> impl Iterator<Item = &hickory_proto::rr::Name> {
    m.answers.iter().filter_map(|a| match &a.1 {
        dns::Answer::Cname(t) => Some(t),
        _ => None,
    })
}

/// What an answer taught.
#[derive(PartialEq, Eq)]
enum Learned {
    Links,
    Nothing,
    /// It has addresses but answers no query seen here.
    Unsolicited,
}
