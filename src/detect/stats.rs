//! An engine's counters: what each stage it runs counted (decode, the TCP
//! flow table and streams, the problems met on the way) plus what detection
//! itself saw and matched.
//!
//! Counters are plain `u64` fields and fixed arrays indexed by enums, so the hot
//! path bumps them without allocating, hashing or locking. Each worker owns one
//! [`Stats`]; they are summed with [`Stats::merge`] when reported.

use super::correlate::LinkStats;
use super::heuristics::HeuristicStats;
use crate::decode::DecodeCounters;
use crate::packet::{Problems, Reason};
use crate::tcp::flow::FlowCounters;
use crate::tcp::stream::StreamCounters;
use serde::Serialize;
use std::fmt;

/// Which observation produced a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum HitSource {
    DnsQuery,
    DnsAnswer,
    TlsSni,
    /// The server name in a ClientHello sent in QUIC Initials (HTTP/3).
    QuicSni,
    HttpHost,
    HttpUrl,
    Ip,
    /// A flow to an address the host got in a DNS answer for a listed domain.
    DnsLink,
    /// Behaviour no list names (`heuristics`): scanning, DGA, tunnelling,
    /// beaconing.
    Heuristic,
}

impl HitSource {
    pub const ALL: [HitSource; 9] = [
        HitSource::DnsQuery,
        HitSource::DnsAnswer,
        HitSource::TlsSni,
        HitSource::QuicSni,
        HitSource::HttpHost,
        HitSource::HttpUrl,
        HitSource::Ip,
        HitSource::DnsLink,
        HitSource::Heuristic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HitSource::DnsQuery => "dns_query",
            HitSource::DnsAnswer => "dns_answer",
            HitSource::TlsSni => "tls_sni",
            HitSource::QuicSni => "quic_sni",
            HitSource::HttpHost => "http_host",
            HitSource::HttpUrl => "http_url",
            HitSource::Ip => "ip",
            HitSource::DnsLink => "dns_link",
            HitSource::Heuristic => "heuristic",
        }
    }
}

/// Per-worker counters. All fields are monotonic but `links.live`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    /// Link, IP and transport layers (counted by `decode`).
    pub decode: DecodeCounters,
    pub dns_queries: u64,
    pub dns_responses: u64,
    pub tls_client_hellos: u64,
    /// ClientHellos read from QUIC Initials.
    pub quic_client_hellos: u64,
    /// Host names announced by internal addresses (DHCP, NetBIOS, mDNS).
    pub host_names_seen: u64,
    /// Names in datagrams from outside the internal networks: not believed.
    pub host_names_from_outside: u64,
    /// Names past the first [`super::udp::MAX_NAMES_PER_DATAGRAM`] of one
    /// datagram: not taken (a flood).
    pub host_names_over_limit: u64,
    /// Renames by the same protocol within `NAME_HOLD_NS` of the last: not
    /// taken (see `protocols::hostnames::known`).
    pub host_names_held: u64,
    pub http_requests: u64,
    /// Packets to or from a listed IP inside a flow that already raised an alert.
    pub ip_hit_packets_repeat: u64,
    /// Matches whose both ends are external: no internal host to blame.
    pub hits_without_internal_host: u64,
    /// Matches cancelled by an allowlist entry.
    pub hits_allowlisted: u64,
    /// DNS answers with addresses that answered no query this sensor saw
    /// (spoofed, unsolicited, or the query was not mirrored): not learned.
    pub dns_answers_unsolicited: u64,
    /// Queries forgotten to keep the pending-query table bounded.
    pub dns_pending_evicted: u64,
    /// DNS correlation links: learned, evicted, expired, held now.
    pub links: LinkStats,
    /// TCP flow table: created, ended, evicted, hard timeouts.
    pub flows: FlowCounters,
    /// `flow` events handed to the sink (flows with hits that ended).
    pub flow_events: u64,
    /// TCP ordering: retransmissions, overlap conflicts, held segments, gaps.
    pub streams: StreamCounters,
    /// Input that could not be used, by reason, from every stage.
    pub problems: Problems,
    pub hits: [u64; HitSource::ALL.len()],
    /// Packets whose processing panicked (a bug): the worker went on, the
    /// packet's flow was reset (see `contain.rs`).
    pub panics_recovered: u64,
    /// What the heuristics reported, allowlisted and evicted.
    pub heuristics: HeuristicStats,
    /// Hygiene events (first observations of a signal per host).
    pub hygiene_events: u64,
}

impl Stats {
    #[inline]
    pub fn error(&mut self, reason: Reason) {
        self.problems.count(reason);
    }

    #[inline]
    pub fn hit(&mut self, source: HitSource) {
        self.hits[source as usize] += 1;
    }

    pub fn errors_of(&self, reason: Reason) -> u64 {
        self.problems.of(reason)
    }

    pub fn total_hits(&self) -> u64 {
        self.hits.iter().sum()
    }

    /// Packets or parts of packets that were lost to bad input.
    pub fn lost(&self) -> u64 {
        self.problems.lost()
    }

    pub fn merge(&mut self, o: &Stats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.decode.merge(&o.decode);
        self.dns_queries += o.dns_queries;
        self.dns_responses += o.dns_responses;
        self.tls_client_hellos += o.tls_client_hellos;
        self.quic_client_hellos += o.quic_client_hellos;
        self.host_names_seen += o.host_names_seen;
        self.host_names_from_outside += o.host_names_from_outside;
        self.host_names_over_limit += o.host_names_over_limit;
        self.host_names_held += o.host_names_held;
        self.http_requests += o.http_requests;
        self.ip_hit_packets_repeat += o.ip_hit_packets_repeat;
        self.hits_without_internal_host += o.hits_without_internal_host;
        self.hits_allowlisted += o.hits_allowlisted;
        self.dns_answers_unsolicited += o.dns_answers_unsolicited;
        self.dns_pending_evicted += o.dns_pending_evicted;
        self.panics_recovered += o.panics_recovered;
        self.heuristics.merge(&o.heuristics);
        self.hygiene_events += o.hygiene_events;
        self.links.merge(&o.links);
        self.flows.merge(&o.flows);
        self.flow_events += o.flow_events;
        self.streams.merge(&o.streams);
        self.problems.merge(&o.problems);
        for (a, b) in self.hits.iter_mut().zip(o.hits.iter()) {
            *a += b;
        }
    }

    /// Name/value pairs in a fixed order, for the text report and JSON.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let d = &self.decode;
        let mut v = vec![
            ("packets", self.packets),
            ("bytes", self.bytes),
            ("ipv4", d.ipv4),
            ("ipv6", d.ipv6),
            ("tcp", d.tcp),
            ("udp", d.udp),
            ("icmp", d.icmp),
            ("other_ip", d.other_ip),
            ("vlan_tagged", d.vlan_tagged),
            ("pppoe", d.pppoe),
            ("ip_fragments_first", d.ip_fragments_first),
            ("ip_fragments_later", d.ip_fragments_later),
            ("vxlan", d.vxlan),
            ("geneve", d.geneve),
            ("gre", d.gre),
            ("erspan_type1", d.erspan_type1),
            ("erspan_type2", d.erspan_type2),
            ("erspan_type3", d.erspan_type3),
            ("dns_queries", self.dns_queries),
            ("dns_responses", self.dns_responses),
            ("tls_client_hellos", self.tls_client_hellos),
            ("quic_client_hellos", self.quic_client_hellos),
            ("host_names_seen", self.host_names_seen),
            ("host_names_from_outside", self.host_names_from_outside),
            ("host_names_over_limit", self.host_names_over_limit),
            ("host_names_held", self.host_names_held),
            ("http_requests", self.http_requests),
            ("ip_hit_packets_repeat", self.ip_hit_packets_repeat),
            (
                "hits_without_internal_host",
                self.hits_without_internal_host,
            ),
            ("hits_allowlisted", self.hits_allowlisted),
            ("dns_answers_unsolicited", self.dns_answers_unsolicited),
            ("dns_pending_evicted", self.dns_pending_evicted),
            ("dns_links_learned", self.links.learned),
            ("dns_links_evicted", self.links.evicted),
            ("dns_links_expired", self.links.expired),
            ("dns_links", self.links.live),
            ("tcp_flows", self.flows.created - self.flows.udp_created),
            ("udp_flows", self.flows.udp_created),
            ("tcp_flows_ended", self.flows.ended),
            ("tcp_flows_evicted", self.flows.evicted),
            ("tcp_flows_hard_timeout", self.flows.hard_timeouts),
            ("tcp_flows_unfinished_message", self.flows.unfinished),
            ("flow_events", self.flow_events),
            ("tcp_segments_retransmitted", self.streams.retransmitted),
            ("tcp_segments_held", self.streams.held),
            ("tcp_overlap_conflicts", self.streams.overlap_conflicts),
            ("tcp_gaps", self.streams.gaps),
            ("tcp_depth_reached", self.streams.depth_reached),
            ("tcp_reassembly_dropped", self.flows.reassembly_dropped),
            ("tcp_reassembly_bytes", self.flows.reassembly_bytes),
            ("panics_recovered", self.panics_recovered),
            ("hygiene_events", self.hygiene_events),
        ];
        v.extend(self.heuristics.counters());
        v
    }
}

impl Serialize for Stats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.counters() {
            m.serialize_entry(k, &v)?;
        }
        let errors: std::collections::BTreeMap<&str, u64> = Reason::ALL
            .iter()
            .map(|r| (r.as_str(), self.problems.of(*r)))
            .collect();
        m.serialize_entry("parse_errors", &errors)?;
        let hits: std::collections::BTreeMap<&str, u64> = HitSource::ALL
            .iter()
            .map(|h| (h.as_str(), self.hits[*h as usize]))
            .collect();
        m.serialize_entry("hits", &hits)?;
        m.end()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "counters:")?;
        for (k, v) in self.counters() {
            writeln!(f, "  {k:<28} {v}")?;
        }
        writeln!(f, "parse errors by reason:")?;
        for r in Reason::ALL {
            let n = self.problems.of(r);
            if n > 0 {
                writeln!(f, "  {:<28} {n}", r.as_str())?;
            }
        }
        writeln!(f, "hits by source:")?;
        for h in HitSource::ALL {
            writeln!(f, "  {:<28} {}", h.as_str(), self.hits[h as usize])?;
        }
        write!(f, "  {:<28} {}", "total", self.total_hits())
    }
}
