//! Link, network and transport decoding.
//!
//! The link layer (Ethernet, 802.1Q/802.1ad VLAN stacks, PPPoE sessions, Linux
//! cooked SLL/SLL2, BSD null, raw IP) is walked by offset in `link.rs`: those
//! headers are a few fixed fields, and etherparse has no PPPoE or SLL2. From
//! the IP header down (`ip.rs`), etherparse's lax slices do the work (IPv4
//! options, IPv6 extension headers, snaplen-cut payloads). Tunnels (VXLAN,
//! Geneve, GRE, ERSPAN I/II/III) are stripped in `tunnel.rs`, and the packet
//! inside is what [`decode`] returns. Everything borrows the captured bytes;
//! nothing is copied or allocated.

mod ip;
mod link;
mod tunnel;

pub use tunnel::{Encap, GENEVE_PORT, MAX_TUNNEL_DEPTH, VXLAN_PORT};

use crate::packet::{Problems, RawPacket};
use std::net::IpAddr;

/// What decoding counted: the layers it found. Problems are counted apart,
/// in the caller's [`Problems`]. A tunnelled packet counts every layer it
/// crossed: its outer IP and UDP as well as the inner ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeCounters {
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
    /// Tunnel headers stripped, by kind (see [`Encap`]). ERSPAN rides in
    /// GRE: it counts in `gre` too.
    pub vxlan: u64,
    pub geneve: u64,
    pub gre: u64,
    pub erspan_type1: u64,
    pub erspan_type2: u64,
    pub erspan_type3: u64,
}

impl DecodeCounters {
    pub fn merge(&mut self, o: &DecodeCounters) {
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
        self.vxlan += o.vxlan;
        self.geneve += o.geneve;
        self.gre += o.gre;
        self.erspan_type1 += o.erspan_type1;
        self.erspan_type2 += o.erspan_type2;
        self.erspan_type3 += o.erspan_type3;
    }
}

/// Where a packet sits in an IP fragment train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    No,
    /// Offset 0: carries the transport header, so it is matched.
    First,
    /// A later fragment: counted, only its addresses are matched.
    Later,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp {
        src_port: u16,
        dst_port: u16,
        syn: bool,
        ack: bool,
        fin: bool,
        rst: bool,
        seq: u32,
        payload: &'a [u8],
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    Icmp,
    /// Another IP protocol, or a later fragment whose header is elsewhere.
    Other(u8),
}

impl Transport<'_> {
    pub fn ports(&self) -> (u16, u16) {
        match *self {
            Transport::Tcp {
                src_port, dst_port, ..
            }
            | Transport::Udp {
                src_port, dst_port, ..
            } => (src_port, dst_port),
            _ => (0, 0),
        }
    }

    /// IANA protocol number, for the flow 5-tuple.
    pub fn proto_number(&self, ipv6: bool) -> u8 {
        match *self {
            Transport::Tcp { .. } => 6,
            Transport::Udp { .. } => 17,
            Transport::Icmp if ipv6 => 58,
            Transport::Icmp => 1,
            Transport::Other(p) => p,
        }
    }
}

/// A decoded packet: addresses, transport and the bytes above it. For a
/// tunnelled packet, all of it is the innermost packet's.
#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport<'a>,
    /// Outermost VLAN id, if tagged; for a tunnelled packet, the inner
    /// frame's if it has one, else the tunnel's.
    pub vlan: Option<u16>,
    pub fragment: Fragment,
    /// Some bytes the headers promise are missing (snaplen or a lying length).
    pub truncated: bool,
    /// The outermost tunnel stripped to reach this packet; `None` when it
    /// arrived as it was sent.
    pub tunnel: Option<Encap>,
    /// For a tunnelled packet, the length of the innermost frame as its
    /// sender put it on the wire (an inner IP packet counts a 14-byte
    /// Ethernet header): flow totals count what the hosts sent, not the
    /// mirror's tunnel headers. 0 when not tunnelled.
    pub inner_len: u32,
}

/// Decode one captured frame. Returns `None` when no IP packet could be
/// found; the reason is counted in `problems`. Always inlined: a call and
/// a copy of the result cost the per-packet path more than this small body
/// (the tunnel work stays out of line).
#[inline(always)]
pub fn decode<'a>(
    pkt: &RawPacket<'a>,
    counts: &mut DecodeCounters,
    problems: &mut Problems,
) -> Option<Decoded<'a>> {
    let (ip, vlan) = match link::walk(pkt, counts) {
        Ok(x) => x,
        Err(reason) => {
            problems.count(reason);
            return None;
        }
    };
    let cut = pkt.is_snaplen_cut();
    if tunnel::outer_candidate(ip) {
        return tunnel::outer(ip, vlan, cut, counts, problems);
    }
    match ip::decode_ip(ip, vlan, cut, counts, problems) {
        // IPv6 or IPv4 with options around a tunnel.
        Some(d) if tunnel::may_carry(&d) => tunnel::decapsulate(d, ip, cut, counts, problems),
        d => d,
    }
}

/// Symmetric flow hash: both directions of a flow hash alike, so a flow's
/// packets always reach the same worker. Packets without IP hash to 0. A
/// tunnelled packet hashes by its inner flow, so the flows of one mirror
/// tunnel spread over the workers.
pub fn flow_hash(pkt: &RawPacket<'_>) -> u64 {
    let (mut counts, mut problems) = (DecodeCounters::default(), Problems::default());
    decode(pkt, &mut counts, &mut problems).map_or(0, |d| flow_hash_of(&d))
}

/// [`flow_hash`] of a packet already decoded.
pub fn flow_hash_of(d: &Decoded<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let (sp, dp) = d.transport.ports();
    let a = (d.src, sp);
    let b = (d.dst, dp);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = rustc_hash::FxHasher::default();
    (lo, hi, d.transport.proto_number(d.src.is_ipv6())).hash(&mut h);
    // FxHash leaves low bits weak for small inputs; fold the high half in.
    let v = h.finish();
    v ^ (v >> 29) ^ (v >> 47)
}
