//! Tunnel decapsulation: remote mirrors (and some overlays) deliver the
//! traffic to watch inside VXLAN, Geneve, GRE or ERSPAN. The header of each
//! is read by offset and the packet it carries is decoded like a captured
//! one: an Ethernet frame through the link layer's tag stripping, an IP
//! packet straight through [`ip`](super::ip).
//!
//! # Invariants
//!
//! - **The inner packet is the packet.** [`decode`](super::decode) returns
//!   the innermost addresses and transport; the tunnel's endpoints are never
//!   returned for a packet whose tunnel was stripped. [`Decoded::tunnel`]
//!   names the outermost encapsulation, so a caller can still tell.
//! - **Never a panic, never a copy.** Every field is read through a length
//!   check (`get`), and the inner packet is a sub-slice of the captured
//!   bytes: no allocation, nothing copied.
//! - **Nothing dropped without a count.** A header that is short or breaks
//!   its own rules counts a named [`Reason`] (`vxlan_malformed`,
//!   `geneve_malformed`, `gre_malformed`, `erspan_malformed`); the packet is
//!   then used as it stands (plain UDP or plain GRE), as before tunnels were
//!   stripped. More than [`MAX_TUNNEL_DEPTH`] tunnels in one another count
//!   `tunnel_too_deep` and drop the packet.
//! - **Only what was asked.** VXLAN and Geneve are recognised by their UDP
//!   destination port (4789, 6081), GRE by IP protocol 47. A GRE payload of
//!   another kind (MPLS, keepalives, encrypted PPTP) or a Geneve payload that
//!   is neither Ethernet nor IP is no tunnel we strip: the outer packet is
//!   used, no reason counted, since nothing was misread.
//! - **Each stripped header is counted** in [`DecodeCounters`] (`vxlan`,
//!   `geneve`, `gre`, `erspan_type1..3`; ERSPAN counts its GRE header too),
//!   and so are the outer IP and UDP layers it crossed.
//! - **A shortcut that changes nothing.** A plain outer IPv4 header (no
//!   options, not a fragment, consistent lengths) around a well-formed
//!   tunnel is read by offset (`outer_ipv4`) instead of through
//!   etherparse, whose addresses it would build for nothing; it counts what
//!   the full path counts, and anything else takes the full path
//!   (`tests/tunnel.rs` checks that both give the same).
//!
//! An IP fragment after the first holds no tunnel header: it is returned as
//! the outer fragment it is (`Fragment::Later`, which matching skips).

use super::{DecodeCounters, Decoded, Transport, ip, link};
use crate::packet::{Problems, Reason};

/// Tunnels stripped from one packet before giving up: real deployments
/// nest one or two (ERSPAN over GRE, VXLAN in GRE); more is a loop or an
/// attack.
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// IANA UDP port of VXLAN (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;
/// IANA UDP port of Geneve (RFC 8926).
pub const GENEVE_PORT: u16 = 6081;
const IPPROTO_GRE: u8 = 47;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
/// Transparent Ethernet bridging: an Ethernet frame follows.
const ETH_TEB: u16 = 0x6558;
/// ERSPAN type I (no header) and II (8-byte header).
const ETH_ERSPAN_1_2: u16 = 0x88be;
const ETH_ERSPAN_3: u16 = 0x22eb;
/// PPP, in PPTP's enhanced GRE (version 1, RFC 2637).
const ETH_PPP: u16 = 0x880b;

/// An encapsulation stripped to reach the inner packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encap {
    /// VXLAN, UDP 4789: an Ethernet frame.
    Vxlan,
    /// Geneve, UDP 6081: an Ethernet frame or an IP packet.
    Geneve,
    /// GRE (transparent Ethernet bridging, IP, or PPP in PPTP).
    Gre,
    /// ERSPAN type I: GRE 0x88BE without a sequence number, no header.
    Erspan1,
    /// ERSPAN type II: GRE 0x88BE with a sequence number, 8-byte header.
    Erspan2,
    /// ERSPAN type III: GRE 0x22EB, 12-byte header (20 with the platform
    /// subheader).
    Erspan3,
}

impl Encap {
    pub const ALL: [Encap; 6] = [
        Encap::Vxlan,
        Encap::Geneve,
        Encap::Gre,
        Encap::Erspan1,
        Encap::Erspan2,
        Encap::Erspan3,
    ];

    /// Stable snake_case name: the counter's, and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Encap::Vxlan => "vxlan",
            Encap::Geneve => "geneve",
            Encap::Gre => "gre",
            Encap::Erspan1 => "erspan_type1",
            Encap::Erspan2 => "erspan_type2",
            Encap::Erspan3 => "erspan_type3",
        }
    }

    /// How many of this encapsulation `c` counted.
    pub fn count_in(self, c: &DecodeCounters) -> u64 {
        match self {
            Encap::Vxlan => c.vxlan,
            Encap::Geneve => c.geneve,
            Encap::Gre => c.gre,
            Encap::Erspan1 => c.erspan_type1,
            Encap::Erspan2 => c.erspan_type2,
            Encap::Erspan3 => c.erspan_type3,
        }
    }

    fn count(self, c: &mut DecodeCounters) {
        match self {
            Encap::Vxlan => c.vxlan += 1,
            Encap::Geneve => c.geneve += 1,
            Encap::Gre => c.gre += 1,
            Encap::Erspan1 => c.erspan_type1 += 1,
            Encap::Erspan2 => c.erspan_type2 += 1,
            Encap::Erspan3 => c.erspan_type3 += 1,
        }
        if matches!(self, Encap::Erspan1 | Encap::Erspan2 | Encap::Erspan3) {
            c.gre += 1;
        }
    }
}

/// What a tunnel carries.
#[derive(Clone, Copy, Debug)]
enum Payload<'a> {
    Ether(&'a [u8]),
    Ip(&'a [u8]),
}

/// What the header of a possible tunnel said.
#[derive(Clone, Copy, Debug)]
enum Header<'a> {
    /// No tunnel to strip: the packet is used as it is.
    Plain,
    Tunnel(Encap, Payload<'a>),
    /// The port or protocol promised a tunnel; its header is broken.
    Broken(Reason),
}

/// Whether a UDP datagram between these ports is read as a tunnel: to the
/// VXLAN or Geneve port, from a port that is not a well-known one. Tunnel
/// endpoints send from ephemeral ports (RFC 7348: a hash of the inner flow,
/// 49152-65535 recommended); a DNS answer from port 53 to a client that
/// happened to pick port 4789 is DNS, not a broken VXLAN header.
#[inline(always)]
fn udp_tunnel_ports(src_port: u16, dst_port: u16) -> bool {
    (dst_port == VXLAN_PORT || dst_port == GENEVE_PORT) && src_port >= 1024
}

/// Whether `d` may carry a tunnel [`outer_candidate`] did not see (behind
/// IPv6 or IPv4 options): it looks only at the transport already decoded.
#[inline]
pub(super) fn may_carry(d: &Decoded<'_>) -> bool {
    match d.transport {
        Transport::Udp {
            src_port, dst_port, ..
        } => udp_tunnel_ports(src_port, dst_port),
        Transport::Other(p) => p == IPPROTO_GRE,
        _ => false,
    }
}

/// Whether `ip` starts like a plain IPv4 header of a GRE packet or of a UDP
/// datagram to the VXLAN or Geneve port: the test every packet pays before
/// [`outer`], a few byte compares.
#[inline(always)]
pub(super) fn outer_candidate(ip: &[u8]) -> bool {
    let Some(&proto) = ip.get(9) else {
        return false;
    };
    // Most packets are TCP: out after two compares.
    if proto != IPPROTO_GRE && proto != 17 {
        return false;
    }
    ip.first() == Some(&0x45)
        && (proto == IPPROTO_GRE
            || matches!((be16(ip, 20), be16(ip, 22)), (Some(s), Some(d)) if udp_tunnel_ports(s, d)))
}

/// A packet [`outer_candidate`] picked: through the shortcut when it can,
/// else decoded in full; the innermost packet either way. Kept out of line
/// so that the path of untunnelled packets stays short.
#[inline(never)]
pub(super) fn outer<'a>(
    bytes: &'a [u8],
    vlan: Option<u16>,
    cut: bool,
    counts: &mut DecodeCounters,
    problems: &mut Problems,
) -> Option<Decoded<'a>> {
    if let Some((encap, payload)) = outer_ipv4(bytes, counts) {
        return strip(encap, payload, vlan, cut, counts, problems);
    }
    let d = ip::decode_ip(bytes, vlan, cut, counts, problems)?;
    decapsulate(d, bytes, cut, counts, problems)
}

/// The tunnel of a plain outer IPv4 packet (no options, not fragmented,
/// lengths consistent) read by offset, counted as [`ip`](super::ip) would
/// count that packet. The common remote-mirror case, found without
/// etherparse's full walk of a header whose addresses are never used.
/// `None` for anything else, a broken tunnel header included: the full
/// path then decodes the packet and names the reason.
#[inline]
fn outer_ipv4<'a>(ip: &'a [u8], counts: &mut DecodeCounters) -> Option<(Encap, Payload<'a>)> {
    let &[0x45, _, l0, l1, _, _, f0, f1, _, proto] = ip.first_chunk::<10>()? else {
        return None; // options, or not IPv4
    };
    if u16::from_be_bytes([f0, f1]) & 0x3fff != 0 {
        return None; // a fragment
    }
    let total = ip.get(..usize::from(u16::from_be_bytes([l0, l1])))?;
    let found = match (proto, total.get(20..)?) {
        (IPPROTO_GRE, payload) => gre(payload),
        (17, &[s0, s1, d0, d1, u0, u1, ..]) => {
            let payload = total.get(28..20 + usize::from(u16::from_be_bytes([u0, u1])))?;
            let (src, dst) = (u16::from_be_bytes([s0, s1]), u16::from_be_bytes([d0, d1]));
            match dst {
                _ if !udp_tunnel_ports(src, dst) => return None,
                VXLAN_PORT => vxlan(payload),
                GENEVE_PORT => geneve(payload),
                _ => return None,
            }
        }
        _ => return None,
    };
    let Header::Tunnel(encap, payload) = found else {
        return None;
    };
    counts.ipv4 += 1;
    if proto == IPPROTO_GRE {
        counts.other_ip += 1;
    } else {
        counts.udp += 1;
    }
    Some((encap, payload))
}

/// The tunnel around `d` (decoded from `bytes`, `cut` when the capture cut
/// the frame) stripped: the innermost packet; `d` itself when it carries
/// none.
#[inline(never)]
pub(super) fn decapsulate<'a>(
    d: Decoded<'a>,
    bytes: &'a [u8],
    cut: bool,
    counts: &mut DecodeCounters,
    problems: &mut Problems,
) -> Option<Decoded<'a>> {
    match header(&d, bytes) {
        Header::Plain => Some(d),
        // Why not drop it: a broken header may be no tunnel at all (any
        // UDP flow can use port 4789), and the outer packet is still a
        // real packet whose addresses and payload can be matched.
        Header::Broken(r) => {
            problems.count(r);
            Some(d)
        }
        Header::Tunnel(e, p) => strip(e, p, d.vlan, cut || d.truncated, counts, problems),
    }
}

/// Strip tunnel `encap`, whose payload is `payload`, and the tunnels nested
/// in it; `vlan` is the tunnel packet's tag. The innermost packet.
/// Inlined in its two callers, both out of line.
#[inline(always)]
fn strip<'a>(
    mut encap: Encap,
    mut payload: Payload<'a>,
    mut vlan: Option<u16>,
    mut cut: bool,
    counts: &mut DecodeCounters,
    problems: &mut Problems,
) -> Option<Decoded<'a>> {
    let outermost = encap;
    let mut depth = 1;
    loop {
        encap.count(counts);
        let inner_len = match payload {
            Payload::Ether(frame) => frame.len(),
            Payload::Ip(b) => b.len() + 14,
        };
        let (bytes, tag) = match payload {
            Payload::Ether(frame) => match link::ethernet(frame, counts) {
                Ok(x) => x,
                Err(r) => {
                    problems.count(r);
                    return None;
                }
            },
            Payload::Ip(b) => (b, None),
        };
        // The mirrored frame's own tag says more about the host than the
        // mirror transport's; keep the outer one only when it has none.
        let mut d = ip::decode_ip(bytes, tag.or(vlan), cut, counts, problems)?;
        d.tunnel = Some(outermost);
        d.inner_len = inner_len as u32;
        (encap, payload) = match header(&d, bytes) {
            Header::Plain => return Some(d),
            Header::Broken(r) => {
                problems.count(r);
                return Some(d);
            }
            Header::Tunnel(e, p) => (e, p),
        };
        if depth == MAX_TUNNEL_DEPTH {
            problems.count(Reason::TunnelTooDeep);
            return None;
        }
        (vlan, cut, depth) = (d.vlan, cut || d.truncated, depth + 1);
    }
}

/// The tunnel header `d` (decoded from `bytes`) carries, if its port or
/// protocol says one.
fn header<'a>(d: &Decoded<'a>, bytes: &'a [u8]) -> Header<'a> {
    match d.transport {
        Transport::Udp {
            src_port,
            dst_port,
            payload,
        } if udp_tunnel_ports(src_port, dst_port) => match dst_port {
            VXLAN_PORT => vxlan(payload),
            _ => geneve(payload),
        },
        Transport::Other(IPPROTO_GRE) => ip::payload(bytes).map_or(Header::Plain, gre),
        _ => Header::Plain,
    }
}

/// VXLAN (RFC 7348): flags with I (0x08), 24 reserved bits, the VNI, 8
/// reserved bits, then an Ethernet frame. The reserved bits are ignored, as
/// the RFC asks of a receiver (VXLAN-GBP uses some of them).
fn vxlan(p: &[u8]) -> Header<'_> {
    match (p.first(), p.get(8..)) {
        (Some(flags), Some(frame)) if flags & 0x08 != 0 => {
            Header::Tunnel(Encap::Vxlan, Payload::Ether(frame))
        }
        _ => Header::Broken(Reason::VxlanMalformed),
    }
}

/// Geneve (RFC 8926): version (2 bits, 0) and options length (6 bits, in
/// 4-byte words), O and C flags, the protocol type, the VNI, then the
/// options, skipped unread.
fn geneve(p: &[u8]) -> Header<'_> {
    let (Some(&b0), Some(proto)) = (p.first(), be16(p, 2)) else {
        return Header::Broken(Reason::GeneveMalformed);
    };
    let len = 8 + usize::from(b0 & 0x3f) * 4;
    let inner = match p.get(len..) {
        Some(inner) if b0 >> 6 == 0 => inner,
        _ => return Header::Broken(Reason::GeneveMalformed),
    };
    match proto {
        ETH_TEB => Header::Tunnel(Encap::Geneve, Payload::Ether(inner)),
        ETH_IPV4 | ETH_IPV6 => Header::Tunnel(Encap::Geneve, Payload::Ip(inner)),
        _ => Header::Plain,
    }
}

/// GRE (RFC 2784, keys and sequence numbers RFC 2890): C, R, K, S, s and
/// recursion bits, flags, version, protocol type; then a checksum and
/// reserved word (C), a key (K), a sequence number (S). Version 1 is PPTP's
/// enhanced GRE (RFC 2637).
fn gre(p: &[u8]) -> Header<'_> {
    let (Some(&b0), Some(&b1), Some(proto)) = (p.first(), p.get(1), be16(p, 2)) else {
        return Header::Broken(Reason::GreMalformed);
    };
    match b1 & 0x07 {
        0 => {}
        1 => return pptp(p, b0, b1, proto),
        _ => return Header::Broken(Reason::GreMalformed),
    }
    // Source routing (R, s) and recursion are RFC 1701 relics a receiver
    // must refuse (RFC 2784 section 2.3).
    if b0 & 0x4f != 0 {
        return Header::Broken(Reason::GreMalformed);
    }
    let seq = b0 & 0x10 != 0;
    let words = [0x80u8, 0x20, 0x10]
        .iter()
        .filter(|f| b0 & **f != 0)
        .count();
    let Some(rest) = p.get(4 + 4 * words..) else {
        return Header::Broken(Reason::GreMalformed);
    };
    match proto {
        ETH_TEB => Header::Tunnel(Encap::Gre, Payload::Ether(rest)),
        ETH_IPV4 | ETH_IPV6 => Header::Tunnel(Encap::Gre, Payload::Ip(rest)),
        ETH_ERSPAN_1_2 if !seq => Header::Tunnel(Encap::Erspan1, Payload::Ether(rest)),
        ETH_ERSPAN_1_2 => erspan(rest, Encap::Erspan2, 8, 1),
        ETH_ERSPAN_3 => erspan(rest, Encap::Erspan3, 12, 2),
        _ => Header::Plain,
    }
}

/// An ERSPAN header of `len` bytes whose version (first 4 bits) must be
/// `version`, then the mirrored Ethernet frame. Type III's last bit (O)
/// says an 8-byte platform-specific subheader follows.
fn erspan(p: &[u8], encap: Encap, len: usize, version: u8) -> Header<'_> {
    let sub = match (p.first(), p.get(11)) {
        (Some(b0), _) if b0 >> 4 != version => return Header::Broken(Reason::ErspanMalformed),
        (_, Some(last)) if encap == Encap::Erspan3 && last & 1 == 1 => 8,
        _ => 0,
    };
    match p.get(len + sub..) {
        Some(frame) => Header::Tunnel(encap, Payload::Ether(frame)),
        None => Header::Broken(Reason::ErspanMalformed),
    }
}

/// PPTP's enhanced GRE (RFC 2637): K always set, S and A optional, no
/// checksum or routing; protocol PPP; payload length and call ID, then the
/// sequence and acknowledgement numbers. The PPP frame inside is IP only
/// when the tunnel is not encrypted (MPPE is protocol 0x00FD); anything else
/// is the plain GRE packet between client and server.
fn pptp(p: &[u8], b0: u8, b1: u8, proto: u16) -> Header<'_> {
    if b0 & 0xef != 0x20 || b1 & 0x78 != 0 || proto != ETH_PPP {
        return Header::Broken(Reason::GreMalformed);
    }
    let words = usize::from(b0 & 0x10 != 0) + usize::from(b1 & 0x80 != 0);
    let (Some(len), Some(rest)) = (be16(p, 4), p.get(8 + 4 * words..)) else {
        return Header::Broken(Reason::GreMalformed);
    };
    if len == 0 {
        return Header::Plain; // an acknowledgement only
    }
    let ppp = &rest[..rest.len().min(usize::from(len))];
    // Address and control (0xFF 0x03) may be left out (ACFC), and the
    // protocol compressed to one byte (PFC: an odd first byte ends it).
    let ppp = match ppp {
        [0xff, 0x03, r @ ..] => r,
        [0xff, ..] | [] => return Header::Broken(Reason::GreMalformed),
        r => r,
    };
    let (proto, inner) = match ppp {
        [b, r @ ..] if b & 1 == 1 => (u16::from(*b), r),
        [a, b, r @ ..] => (u16::from_be_bytes([*a, *b]), r),
        _ => return Header::Broken(Reason::GreMalformed),
    };
    match proto {
        0x0021 | 0x0057 => Header::Tunnel(Encap::Gre, Payload::Ip(inner)),
        _ => Header::Plain,
    }
}

/// The big-endian u16 at `at`, if `b` holds it.
#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Some(u16::from_be_bytes([x, y])),
        _ => None,
    }
}
