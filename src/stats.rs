//! Counters for everything the sensor sees, decodes, rejects and matches.
//!
//! Counters are plain `u64` fields and fixed arrays indexed by enums, so the hot
//! path bumps them without allocating, hashing or locking. Each worker owns one
//! [`Stats`]; they are summed with [`Stats::merge`] when reported.

use serde::Serialize;
use std::fmt;

/// Why a packet, or part of one, could not be used. Every early return on the
/// input side names one of these, so nothing is dropped without a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    /// The capture record was cut by the snapshot length (caplen < origlen).
    SnaplenCut,
    /// Link-layer header shorter than its fixed size.
    LinkTruncated,
    /// A link type this decoder does not know.
    LinkTypeUnsupported,
    /// An EtherType that carries no IP (ARP, LLDP, STP, ...). Counted, not an error.
    NonIp,
    /// PPPoE header broken or PPP protocol not IPv4/IPv6.
    PppoeMalformed,
    /// More VLAN tags than we are willing to strip.
    VlanTooDeep,
    /// IPv4/IPv6 header missing, short or inconsistent.
    IpMalformed,
    /// IP payload shorter than the IP header's length field says.
    IpTruncated,
    /// TCP header short or with a bad data offset.
    TcpMalformed,
    /// UDP header short or with an impossible length.
    UdpMalformed,
    /// DNS message that hickory-proto refused before the question was read.
    DnsMalformed,
    /// DNS message whose answer section broke off after a usable question.
    DnsAnswersMalformed,
    /// DNS over TCP segment that does not hold a whole length-prefixed message.
    DnsTcpPartial,
    /// A TLS handshake record that claims to be a ClientHello but is malformed.
    TlsMalformed,
    /// A ClientHello cut before its extensions (needs reassembly, see issue 6),
    /// or one in QUIC CRYPTO frames whose server name lies past the bytes
    /// `quic` keeps per connection.
    TlsTruncated,
    /// Something that starts like an HTTP request but does not parse.
    HttpMalformed,
    /// HTTP request headers that do not end inside this segment.
    HttpTruncated,
    /// A DHCP, NetBIOS name service or mDNS message on its port that is cut
    /// short or inconsistent (lengths, option list, name encoding).
    HostNameMalformed,
    /// A well-formed host name announcement whose name is unsafe to show
    /// (empty, over 253 bytes, control characters, not UTF-8). The packet was
    /// understood, so this is not counted as lost input.
    HostNameRejected,
    /// A QUIC v1/v2 Initial with a broken header, varint, length or frame.
    QuicMalformed,
    /// A QUIC Initial whose AEAD tag does not match the keys its connection
    /// ID gives. Not counted as loss: anyone can derive those keys, so this
    /// means the datagram is no client Initial we can read (a later Initial
    /// under a server-chosen connection ID, or not QUIC at all).
    QuicDecryptFailed,
}

impl Reason {
    pub const ALL: [Reason; 21] = [
        Reason::SnaplenCut,
        Reason::LinkTruncated,
        Reason::LinkTypeUnsupported,
        Reason::NonIp,
        Reason::PppoeMalformed,
        Reason::VlanTooDeep,
        Reason::IpMalformed,
        Reason::IpTruncated,
        Reason::TcpMalformed,
        Reason::UdpMalformed,
        Reason::DnsMalformed,
        Reason::DnsAnswersMalformed,
        Reason::DnsTcpPartial,
        Reason::TlsMalformed,
        Reason::TlsTruncated,
        Reason::HttpMalformed,
        Reason::HttpTruncated,
        Reason::HostNameMalformed,
        Reason::HostNameRejected,
        Reason::QuicMalformed,
        Reason::QuicDecryptFailed,
    ];

    /// Stable snake_case name, used in logs, `--stats` and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SnaplenCut => "snaplen_cut",
            Reason::LinkTruncated => "link_truncated",
            Reason::LinkTypeUnsupported => "linktype_unsupported",
            Reason::NonIp => "non_ip",
            Reason::PppoeMalformed => "pppoe_malformed",
            Reason::VlanTooDeep => "vlan_too_deep",
            Reason::IpMalformed => "ip_malformed",
            Reason::IpTruncated => "ip_truncated",
            Reason::TcpMalformed => "tcp_malformed",
            Reason::UdpMalformed => "udp_malformed",
            Reason::DnsMalformed => "dns_malformed",
            Reason::DnsAnswersMalformed => "dns_answers_malformed",
            Reason::DnsTcpPartial => "dns_tcp_partial",
            Reason::TlsMalformed => "tls_malformed",
            Reason::TlsTruncated => "tls_truncated",
            Reason::HttpMalformed => "http_malformed",
            Reason::HttpTruncated => "http_truncated",
            Reason::HostNameMalformed => "host_name_malformed",
            Reason::HostNameRejected => "host_name_rejected",
            Reason::QuicMalformed => "quic_malformed",
            Reason::QuicDecryptFailed => "quic_decrypt_failed",
        }
    }

    /// Whether the reason means input was lost (as opposed to merely
    /// uninteresting traffic such as ARP). Lost input sets the replay exit code.
    pub fn is_loss(self) -> bool {
        !matches!(
            self,
            Reason::NonIp | Reason::HostNameRejected | Reason::QuicDecryptFailed
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
}

impl HitSource {
    pub const ALL: [HitSource; 8] = [
        HitSource::DnsQuery,
        HitSource::DnsAnswer,
        HitSource::TlsSni,
        HitSource::QuicSni,
        HitSource::HttpHost,
        HitSource::HttpUrl,
        HitSource::Ip,
        HitSource::DnsLink,
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
        }
    }
}

/// Per-worker counters. All fields are monotonic.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub other_ip: u64,
    pub vlan_tagged: u64,
    pub pppoe: u64,
    pub ip_fragments_first: u64,
    pub ip_fragments_later: u64,
    pub dns_queries: u64,
    pub dns_responses: u64,
    pub tls_client_hellos: u64,
    /// ClientHellos read from QUIC Initials.
    pub quic_client_hellos: u64,
    /// Host names announced by internal addresses (DHCP, NetBIOS, mDNS).
    pub host_names_seen: u64,
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
    /// TCP flow table: created, ended, evicted, hard timeouts.
    pub flows: crate::flow::FlowCounters,
    /// `flow` events handed to the sink (flows with hits that ended).
    pub flow_events: u64,
    /// TCP ordering: retransmissions, overlap conflicts, held segments, gaps.
    pub streams: crate::stream::StreamCounters,
    pub errors: [u64; Reason::ALL.len()],
    pub hits: [u64; HitSource::ALL.len()],
    /// Sum of `errors`, so a caller can tell cheaply whether a packet added one.
    pub error_events: u64,
}

impl Stats {
    #[inline]
    pub fn error(&mut self, reason: Reason) {
        self.errors[reason as usize] += 1;
        self.error_events += 1;
    }

    #[inline]
    pub fn hit(&mut self, source: HitSource) {
        self.hits[source as usize] += 1;
    }

    pub fn errors_of(&self, reason: Reason) -> u64 {
        self.errors[reason as usize]
    }

    pub fn total_hits(&self) -> u64 {
        self.hits.iter().sum()
    }

    /// Packets or parts of packets that were lost to bad input.
    pub fn lost(&self) -> u64 {
        Reason::ALL
            .iter()
            .filter(|r| r.is_loss())
            .map(|r| self.errors[*r as usize])
            .sum()
    }

    pub fn merge(&mut self, o: &Stats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.ipv4 += o.ipv4;
        self.ipv6 += o.ipv6;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.icmp += o.icmp;
        self.other_ip += o.other_ip;
        self.vlan_tagged += o.vlan_tagged;
        self.pppoe += o.pppoe;
        self.ip_fragments_first += o.ip_fragments_first;
        self.ip_fragments_later += o.ip_fragments_later;
        self.dns_queries += o.dns_queries;
        self.dns_responses += o.dns_responses;
        self.tls_client_hellos += o.tls_client_hellos;
        self.quic_client_hellos += o.quic_client_hellos;
        self.host_names_seen += o.host_names_seen;
        self.http_requests += o.http_requests;
        self.ip_hit_packets_repeat += o.ip_hit_packets_repeat;
        self.hits_without_internal_host += o.hits_without_internal_host;
        self.hits_allowlisted += o.hits_allowlisted;
        self.dns_answers_unsolicited += o.dns_answers_unsolicited;
        self.dns_pending_evicted += o.dns_pending_evicted;
        self.error_events += o.error_events;
        self.flows.merge(&o.flows);
        self.flow_events += o.flow_events;
        self.streams.merge(&o.streams);
        for (a, b) in self.errors.iter_mut().zip(o.errors.iter()) {
            *a += b;
        }
        for (a, b) in self.hits.iter_mut().zip(o.hits.iter()) {
            *a += b;
        }
    }

    /// Name/value pairs in a fixed order, for the text report and JSON.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("packets", self.packets),
            ("bytes", self.bytes),
            ("ipv4", self.ipv4),
            ("ipv6", self.ipv6),
            ("tcp", self.tcp),
            ("udp", self.udp),
            ("icmp", self.icmp),
            ("other_ip", self.other_ip),
            ("vlan_tagged", self.vlan_tagged),
            ("pppoe", self.pppoe),
            ("ip_fragments_first", self.ip_fragments_first),
            ("ip_fragments_later", self.ip_fragments_later),
            ("dns_queries", self.dns_queries),
            ("dns_responses", self.dns_responses),
            ("tls_client_hellos", self.tls_client_hellos),
            ("quic_client_hellos", self.quic_client_hellos),
            ("host_names_seen", self.host_names_seen),
            ("http_requests", self.http_requests),
            ("ip_hit_packets_repeat", self.ip_hit_packets_repeat),
            (
                "hits_without_internal_host",
                self.hits_without_internal_host,
            ),
            ("hits_allowlisted", self.hits_allowlisted),
            ("dns_answers_unsolicited", self.dns_answers_unsolicited),
            ("dns_pending_evicted", self.dns_pending_evicted),
            ("tcp_flows", self.flows.created),
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
        ]
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
            .map(|r| (r.as_str(), self.errors[*r as usize]))
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
            let n = self.errors[r as usize];
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
