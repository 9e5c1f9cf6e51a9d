//! The link layer, walked by offset: the frame header of each link type, then
//! any VLAN tags and a PPPoE session header, down to the IP header.

use super::DecodeCounters;
use crate::packet::{LinkType, RawPacket, Reason};

/// VLAN tags stripped before giving up; real networks use one or two (QinQ).
const MAX_VLAN_DEPTH: usize = 4;

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_PPPOE_SESSION: u16 = 0x8864;

/// The bytes from the IP header on, and the outermost VLAN id.
pub(super) fn walk<'a>(
    pkt: &RawPacket<'a>,
    counts: &mut DecodeCounters,
) -> Result<(&'a [u8], Option<u16>), Reason> {
    let (ether_type, rest) = frame_header(pkt)?;
    strip_tags(ether_type, rest, counts)
}

/// An Ethernet frame carried inside a tunnel (VXLAN, Geneve, GRE bridging,
/// ERSPAN): its tags stripped as on the wire, down to the IP header.
pub(super) fn ethernet<'a>(
    frame: &'a [u8],
    counts: &mut DecodeCounters,
) -> Result<(&'a [u8], Option<u16>), Reason> {
    if frame.len() < 14 {
        return Err(Reason::LinkTruncated);
    }
    strip_tags(be16(frame, 12), &frame[14..], counts)
}

/// The EtherType (or its equivalent) and what follows the link header.
fn frame_header<'a>(pkt: &RawPacket<'a>) -> Result<(u16, &'a [u8]), Reason> {
    let data = pkt.data;
    let fixed = |len: usize, et_at: usize| {
        if data.len() < len {
            Err(Reason::LinkTruncated)
        } else {
            Ok((be16(data, et_at), &data[len..]))
        }
    };
    match pkt.link {
        LinkType::Ethernet => fixed(14, 12),
        LinkType::LinuxSll => fixed(16, 14),
        LinkType::LinuxSll2 => fixed(20, 0),
        LinkType::Null => {
            if data.len() < 4 {
                return Err(Reason::LinkTruncated);
            }
            // The family is in the writer's byte order; AF_INET is 2 everywhere,
            // AF_INET6 is 24, 28 or 30 depending on the BSD.
            let fam = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let fam = if fam > 0xffff { fam.swap_bytes() } else { fam };
            match fam {
                2 => Ok((ETH_IPV4, &data[4..])),
                24 | 28 | 30 => Ok((ETH_IPV6, &data[4..])),
                _ => Err(Reason::NonIp),
            }
        }
        LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6 => match data.first() {
            Some(b) if b >> 4 == 4 => Ok((ETH_IPV4, data)),
            Some(b) if b >> 4 == 6 => Ok((ETH_IPV6, data)),
            _ => Err(Reason::IpMalformed),
        },
        LinkType::Other(_) => Err(Reason::LinkTypeUnsupported),
    }
}

/// Strip VLAN tags and a PPPoE session header until IP. Inlined in both
/// callers: every packet crosses it once.
#[inline(always)]
fn strip_tags<'a>(
    mut ether_type: u16,
    mut rest: &'a [u8],
    counts: &mut DecodeCounters,
) -> Result<(&'a [u8], Option<u16>), Reason> {
    let mut vlan = None;
    let mut depth = 0;
    loop {
        match ether_type {
            ETH_IPV4 | ETH_IPV6 => return Ok((rest, vlan)),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                if depth == MAX_VLAN_DEPTH {
                    return Err(Reason::VlanTooDeep);
                }
                if rest.len() < 4 {
                    return Err(Reason::LinkTruncated);
                }
                if vlan.is_none() {
                    vlan = Some(be16(rest, 0) & 0x0fff);
                    counts.vlan_tagged += 1;
                }
                depth += 1;
                ether_type = be16(rest, 2);
                rest = &rest[4..];
            }
            ETH_PPPOE_SESSION => {
                (ether_type, rest) = pppoe_session(rest)?;
                counts.pppoe += 1;
            }
            _ => return Err(Reason::NonIp),
        }
    }
}

/// A PPPoE session header: ver/type, code, session id, length, then the PPP
/// protocol, which may be compressed to one byte (RFC 1661 PFC: an odd first
/// byte ends the field).
fn pppoe_session(rest: &[u8]) -> Result<(u16, &[u8]), Reason> {
    if rest.len() < 8 || rest[0] != 0x11 || rest[1] != 0 {
        return Err(Reason::PppoeMalformed);
    }
    let len = be16(rest, 4) as usize;
    let (proto, hdr) = if rest[6] & 1 == 1 {
        (u16::from(rest[6]), 7)
    } else {
        (be16(rest, 6), 8)
    };
    let ether_type = match proto {
        0x0021 => ETH_IPV4,
        0x0057 => ETH_IPV6,
        _ => return Err(Reason::NonIp), // LCP, IPCP, ...
    };
    // The PPPoE length counts from the PPP protocol field; it trims Ethernet
    // padding when it fits.
    let end = (6 + len).clamp(hdr, rest.len());
    Ok((ether_type, &rest[hdr..end]))
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
