//! IP and transport headers, through etherparse's lax slices.

use super::{DecodeCounters, Decoded, Fragment, Transport};
use crate::packet::{Problems, Reason};
use etherparse::{IpNumber, Ipv6ExtensionSlice, LaxIpSlice, LenSource, TcpSlice, UdpSlice};

pub(super) fn decode_ip<'a>(
    bytes: &'a [u8],
    vlan: Option<u16>,
    cut: bool,
    counts: &mut DecodeCounters,
    problems: &mut Problems,
) -> Option<Decoded<'a>> {
    let Ok((ip, ext_err)) = LaxIpSlice::from_slice(bytes) else {
        problems.count(if cut {
            Reason::IpTruncated
        } else {
            Reason::IpMalformed
        });
        return None;
    };
    let (src, dst) = (ip.source_addr(), ip.destination_addr());
    if matches!(ip, LaxIpSlice::Ipv6(_)) {
        counts.ipv6 += 1;
    } else {
        counts.ipv4 += 1;
    }
    let pl = ip.payload();
    let truncated = cut || pl.incomplete || pl.len_source == LenSource::Slice;
    let addresses_only = |fragment, truncated| Decoded {
        src,
        dst,
        transport: Transport::Other(pl.ip_number.0),
        vlan,
        fragment,
        truncated,
        tunnel: None,
        inner_len: 0,
    };
    if ext_err.is_some() {
        // Extension headers broke off: addresses are still usable.
        problems.count(Reason::IpMalformed);
        return Some(addresses_only(Fragment::No, true));
    }
    // The offset is only looked for in fragments: for IPv6 it means walking
    // the extension headers.
    let fragment = if !pl.fragmented {
        Fragment::No
    } else if fragment_offset(&ip) == 0 {
        counts.ip_fragments_first += 1;
        Fragment::First
    } else {
        counts.ip_fragments_later += 1;
        return Some(addresses_only(Fragment::Later, truncated));
    };
    let (transport, truncated) = transport(pl.ip_number, pl.payload, truncated, counts, problems);
    Some(Decoded {
        src,
        dst,
        transport,
        vlan,
        fragment,
        truncated,
        tunnel: None,
        inner_len: 0,
    })
}

/// The IP payload of the packet at `bytes` when its transport header is in
/// it (not a later fragment, no broken extension header): where a GRE
/// header starts. Read again rather than kept from [`decode_ip`], so that
/// untunnelled packets (nearly all) carry nothing extra.
pub(super) fn payload(bytes: &[u8]) -> Option<&[u8]> {
    match LaxIpSlice::from_slice(bytes) {
        Ok((ip, None)) if !ip.payload().fragmented || fragment_offset(&ip) == 0 => {
            Some(ip.payload().payload)
        }
        _ => None,
    }
}

/// The transport header over `payload`, and whether bytes are missing.
fn transport<'a>(
    number: IpNumber,
    payload: &'a [u8],
    mut truncated: bool,
    counts: &mut DecodeCounters,
    problems: &mut Problems,
) -> (Transport<'a>, bool) {
    let broken = |problems: &mut Problems, malformed: Reason, proto: u8| {
        problems.count(if truncated {
            Reason::IpTruncated
        } else {
            malformed
        });
        Transport::Other(proto)
    };
    let t = match number {
        IpNumber::TCP => match TcpSlice::from_slice(payload) {
            Ok(t) => {
                counts.tcp += 1;
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
            Err(_) => broken(problems, Reason::TcpMalformed, 6),
        },
        IpNumber::UDP => match UdpSlice::from_slice_lax(payload) {
            Ok(u) => {
                counts.udp += 1;
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
            Err(_) => broken(problems, Reason::UdpMalformed, 17),
        },
        IpNumber::ICMP | IpNumber::IPV6_ICMP => {
            counts.icmp += 1;
            Transport::Icmp
        }
        other => {
            counts.other_ip += 1;
            Transport::Other(other.0)
        }
    };
    (t, truncated)
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
