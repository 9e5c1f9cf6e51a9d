//! Link, network and transport decoding.
//!
//! The link layer (Ethernet, 802.1Q/802.1ad VLAN stacks, PPPoE sessions, Linux
//! cooked SLL/SLL2, BSD null, raw IP) is walked here by offset: those headers
//! are a few fixed fields, and etherparse has no PPPoE or SLL2. From the IP
//! header down, etherparse's lax slices do the work (IPv4 options, IPv6
//! extension headers, snaplen-cut payloads). Everything borrows the captured
//! bytes; nothing is copied or allocated.

use crate::capture::{LinkType, RawPacket};
use crate::stats::{Reason, Stats};
use etherparse::{IpNumber, Ipv6ExtensionSlice, LaxIpSlice, LenSource, TcpSlice, UdpSlice};
use std::net::IpAddr;

/// VLAN tags stripped before giving up; real networks use one or two (QinQ).
const MAX_VLAN_DEPTH: usize = 4;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_PPPOE_SESSION: u16 = 0x8864;

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

/// A decoded packet: addresses, transport and the bytes above it.
#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport<'a>,
    /// Outermost VLAN id, if tagged.
    pub vlan: Option<u16>,
    pub fragment: Fragment,
    /// Some bytes the headers promise are missing (snaplen or a lying length).
    pub truncated: bool,
}

/// Decode one captured frame. Returns `None` when no IP packet could be
/// found; the reason is counted in `stats`.
pub fn decode<'a>(pkt: &RawPacket<'a>, stats: &mut Stats) -> Option<Decoded<'a>> {
    let data = pkt.data;
    let (mut ether_type, mut rest) = match pkt.link {
        LinkType::Ethernet => {
            if data.len() < 14 {
                return fail(stats, Reason::LinkTruncated);
            }
            (be16(data, 12), &data[14..])
        }
        LinkType::LinuxSll => {
            if data.len() < 16 {
                return fail(stats, Reason::LinkTruncated);
            }
            (be16(data, 14), &data[16..])
        }
        LinkType::LinuxSll2 => {
            if data.len() < 20 {
                return fail(stats, Reason::LinkTruncated);
            }
            (be16(data, 0), &data[20..])
        }
        LinkType::Null => {
            if data.len() < 4 {
                return fail(stats, Reason::LinkTruncated);
            }
            // The family is in the writer's byte order; AF_INET is 2 everywhere,
            // AF_INET6 is 24, 28 or 30 depending on the BSD.
            let fam = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let fam = if fam > 0xffff { fam.swap_bytes() } else { fam };
            let et = match fam {
                2 => ETH_IPV4,
                24 | 28 | 30 => ETH_IPV6,
                _ => return fail(stats, Reason::NonIp),
            };
            (et, &data[4..])
        }
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => match data.first() {
            Some(b) if b >> 4 == 4 => (ETH_IPV4, data),
            Some(b) if b >> 4 == 6 => (ETH_IPV6, data),
            _ => return fail(stats, Reason::IpMalformed),
        },
        LinkType::Other(_) => return fail(stats, Reason::LinkTypeUnsupported),
    };

    let mut vlan = None;
    let mut depth = 0;
    loop {
        match ether_type {
            ETH_IPV4 | ETH_IPV6 => break,
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                if depth == MAX_VLAN_DEPTH {
                    return fail(stats, Reason::VlanTooDeep);
                }
                if rest.len() < 4 {
                    return fail(stats, Reason::LinkTruncated);
                }
                if vlan.is_none() {
                    vlan = Some(be16(rest, 0) & 0x0fff);
                    stats.vlan_tagged += 1;
                }
                depth += 1;
                ether_type = be16(rest, 2);
                rest = &rest[4..];
            }
            ETH_PPPOE_SESSION => {
                // ver/type, code, session id, length, then the PPP protocol,
                // which may be compressed to one byte (RFC 1661 PFC: an odd
                // first byte ends the field).
                if rest.len() < 8 || rest[0] != 0x11 || rest[1] != 0 {
                    return fail(stats, Reason::PppoeMalformed);
                }
                let len = be16(rest, 4) as usize;
                let (proto, hdr) = if rest[6] & 1 == 1 {
                    (u16::from(rest[6]), 7)
                } else {
                    (be16(rest, 6), 8)
                };
                ether_type = match proto {
                    0x0021 => ETH_IPV4,
                    0x0057 => ETH_IPV6,
                    _ => return fail(stats, Reason::NonIp), // LCP, IPCP, ...
                };
                stats.pppoe += 1;
                // The PPPoE length counts from the PPP protocol field; it
                // trims Ethernet padding when it fits.
                let end = (6 + len).clamp(hdr, rest.len());
                rest = &rest[hdr..end];
            }
            _ => return fail(stats, Reason::NonIp),
        }
    }
    decode_ip(rest, vlan, pkt.is_snaplen_cut(), stats)
}

fn decode_ip<'a>(
    bytes: &'a [u8],
    vlan: Option<u16>,
    cut: bool,
    stats: &mut Stats,
) -> Option<Decoded<'a>> {
    let (ip, ext_err) = match LaxIpSlice::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => {
            return fail(
                stats,
                if cut {
                    Reason::IpTruncated
                } else {
                    Reason::IpMalformed
                },
            );
        }
    };
    let (src, dst) = (ip.source_addr(), ip.destination_addr());
    let ipv6 = matches!(ip, LaxIpSlice::Ipv6(_));
    if ipv6 {
        stats.ipv6 += 1;
    } else {
        stats.ipv4 += 1;
    }
    let pl = ip.payload();
    let mut truncated = cut || pl.incomplete || pl.len_source == LenSource::Slice;
    if ext_err.is_some() {
        // Extension headers broke off: addresses are still usable.
        stats.error(Reason::IpMalformed);
        return Some(Decoded {
            src,
            dst,
            transport: Transport::Other(pl.ip_number.0),
            vlan,
            fragment: Fragment::No,
            truncated: true,
        });
    }
    let fragment = if pl.fragmented {
        if fragment_offset(&ip) == 0 {
            stats.ip_fragments_first += 1;
            Fragment::First
        } else {
            stats.ip_fragments_later += 1;
            return Some(Decoded {
                src,
                dst,
                transport: Transport::Other(pl.ip_number.0),
                vlan,
                fragment: Fragment::Later,
                truncated,
            });
        }
    } else {
        Fragment::No
    };

    let payload = pl.payload;
    let transport = match pl.ip_number {
        IpNumber::TCP => match TcpSlice::from_slice(payload) {
            Ok(t) => {
                stats.tcp += 1;
                Transport::Tcp {
                    src_port: t.source_port(),
                    dst_port: t.destination_port(),
                    syn: t.syn(),
                    ack: t.ack(),
                    fin: t.fin(),
                    rst: t.rst(),
                    seq: t.sequence_number(),
                    payload: t.payload(),
                }
            }
            Err(_) => {
                stats.error(if truncated {
                    Reason::IpTruncated
                } else {
                    Reason::TcpMalformed
                });
                Transport::Other(6)
            }
        },
        IpNumber::UDP => match UdpSlice::from_slice_lax(payload) {
            Ok(u) => {
                stats.udp += 1;
                if u.payload_len_source() == LenSource::Slice && !truncated {
                    // The UDP length field disagrees with the IP payload.
                    truncated = u.payload().len() + 8 < u.length() as usize;
                }
                Transport::Udp {
                    src_port: u.source_port(),
                    dst_port: u.destination_port(),
                    payload: u.payload(),
                }
            }
            Err(_) => {
                stats.error(if truncated {
                    Reason::IpTruncated
                } else {
                    Reason::UdpMalformed
                });
                Transport::Other(17)
            }
        },
        IpNumber::ICMP | IpNumber::IPV6_ICMP => {
            stats.icmp += 1;
            Transport::Icmp
        }
        other => {
            stats.other_ip += 1;
            Transport::Other(other.0)
        }
    };
    Some(Decoded {
        src,
        dst,
        transport,
        vlan,
        fragment,
        truncated,
    })
}

/// Symmetric flow hash: both directions of a flow hash alike, so a flow's
/// packets always reach the same worker. Packets without IP hash to 0.
pub fn flow_hash(pkt: &RawPacket<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut scratch = Stats::default();
    let Some(d) = decode(pkt, &mut scratch) else {
        return 0;
    };
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

fn fragment_offset(ip: &LaxIpSlice<'_>) -> u16 {
    match ip {
        LaxIpSlice::Ipv4(v4) => v4.header().fragments_offset().value(),
        LaxIpSlice::Ipv6(v6) => v6
            .extensions()
            .clone()
            .into_iter()
            .find_map(|e| match e {
                Ipv6ExtensionSlice::Fragment(f) => Some(f.fragment_offset().value()),
                _ => None,
            })
            .unwrap_or(0),
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn fail<T>(stats: &mut Stats, reason: Reason) -> Option<T> {
    stats.error(reason);
    None
}
