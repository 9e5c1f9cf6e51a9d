//! NetBIOS name service (RFC 1001/1002, UDP 137) host names: registrations,
//! refreshes and multi-homed registrations (the NB record in the additional
//! section carries the address), and positive name query responses (the
//! answer's NB record). Unicast registrations to a WINS server and WINS
//! answers cross routers, so they reach a gateway mirror.
//!
//! A NetBIOS name is 15 characters padded with spaces plus a suffix byte
//! that says which service registered it; only the workstation (0x00) and
//! server (0x20) names name a machine. Group names (NB flags G bit) name a
//! workgroup or domain, not a machine, and are skipped.

use super::{HostName, NameSource, Names};
use crate::packet::Reason;
use std::net::{IpAddr, Ipv4Addr};

const HEADER_LEN: usize = 12;
/// First-level encoded NetBIOS name: 16 bytes as 32 letters 'A'..='P'.
const ENCODED_LEN: usize = 32;
const TYPE_NB: u16 = 0x0020;
const CLASS_IN: u16 = 1;
/// NB_FLAGS group bit.
const NB_GROUP: u16 = 0x8000;

const OP_QUERY: u16 = 0;
const OP_REGISTRATION: u16 = 5;
/// RFC 1002 says 8 for refresh; Windows sends 9 (a known erratum).
const OP_REFRESH: u16 = 8;
const OP_REFRESH_ALT: u16 = 9;
const OP_MULTI_HOMED: u16 = 15;

const SUFFIX_WORKSTATION: u8 = 0x00;
const SUFFIX_SERVER: u8 = 0x20;

/// Most compression pointers followed in one name (a loop guard; pointers
/// must also point backwards).
const MAX_JUMPS: usize = 8;

const BAD: Reason = Reason::HostNameMalformed;

/// The names `p` binds, pushed to `out`. A request (registration, refresh)
/// is sent by the machine itself, so a record is believed only if `src`, its
/// sender, is one of its addresses (a multi-homed machine lists all of its
/// own; issue 14, defect 4: one datagram could otherwise rename any internal
/// address). Answers come from a WINS server too and are taken whole. A
/// request naming only other addresses is `HostNameRejected`.
pub(super) fn parse(src: IpAddr, p: &[u8], out: &mut Vec<HostName>) -> Result<(), Reason> {
    let Some(h) = p.get(..HEADER_LEN) else {
        return Err(BAD);
    };
    let u16_at = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let flags = u16_at(2);
    let response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xF;
    let rcode = flags & 0xF;
    let counts = [u16_at(4), u16_at(6), u16_at(8), u16_at(10)];
    // Which section holds the NB records that bind names to addresses.
    let section = match (response, opcode) {
        (false, OP_REGISTRATION | OP_REFRESH | OP_REFRESH_ALT | OP_MULTI_HOMED) => 3,
        (true, OP_QUERY) if rcode == 0 => 1,
        _ => return Ok(()),
    };
    let mut pos = HEADER_LEN;
    for _ in 0..counts[0] {
        pos = skip_name(p, pos)? + 4; // QUESTION_TYPE, QUESTION_CLASS
    }
    if pos > p.len() {
        return Err(BAD);
    }
    let mut names = Names::new(out);
    for (i, &count) in counts.iter().enumerate().skip(1) {
        for _ in 0..count {
            let (name, after) = if i == section {
                read_name(p, pos)?
            } else {
                (None, skip_name(p, pos)?)
            };
            let Some(fixed) = p.get(after..after + 10) else {
                return Err(BAD);
            };
            let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
            let class = u16::from_be_bytes([fixed[2], fixed[3]]);
            let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
            let Some(rdata) = p.get(after + 10..after + 10 + rdlen) else {
                return Err(BAD);
            };
            pos = after + 10 + rdlen;
            if i != section || rtype != TYPE_NB || class != CLASS_IN {
                continue;
            }
            // NB records hold (NB_FLAGS, NB_ADDRESS) pairs, one per address.
            if rdata.len() % 6 != 0 {
                return Err(BAD);
            }
            let Some(name) = name else { return Err(BAD) };
            let (text, suffix) = (&name[..15], name[15]);
            if suffix != SUFFIX_WORKSTATION && suffix != SUFFIX_SERVER {
                continue;
            }
            let text = text.trim_ascii_end();
            let own = |e: &[u8]| IpAddr::V4(Ipv4Addr::new(e[2], e[3], e[4], e[5])) == src;
            let believed = response || src.is_unspecified() || rdata.chunks_exact(6).any(own);
            for entry in rdata.chunks_exact(6) {
                if u16::from_be_bytes([entry[0], entry[1]]) & NB_GROUP != 0 {
                    continue;
                }
                let ip = IpAddr::V4(Ipv4Addr::new(entry[2], entry[3], entry[4], entry[5]));
                if !believed {
                    names.refuse();
                    continue;
                }
                names.push(ip, text, None, NameSource::Netbios);
            }
        }
    }
    names.finish()
}

/// Skip a name (labels or a pointer); the position after it.
fn skip_name(p: &[u8], mut pos: usize) -> Result<usize, Reason> {
    loop {
        let len = *p.get(pos).ok_or(BAD)?;
        match len {
            0 => return Ok(pos + 1),
            1..=63 => pos += 1 + usize::from(len),
            0xC0..=0xFF => return Ok(pos + 2),
            _ => return Err(BAD),
        }
    }
}

/// Read the name at `pos`: its decoded 16-byte NetBIOS name (`None` when the
/// name is empty, the root) and the position after it in the message. Scope
/// labels after the NetBIOS name are skipped; compression pointers are
/// followed backwards only, at most [`MAX_JUMPS`] times.
fn read_name(p: &[u8], pos: usize) -> Result<(Option<[u8; 16]>, usize), Reason> {
    let (mut at, mut after, mut jumps) = (pos, None, 0);
    let mut first = None;
    loop {
        let len = *p.get(at).ok_or(BAD)?;
        match len {
            0 => {
                return Ok((first, after.unwrap_or(at + 1)));
            }
            1..=63 => {
                let label = p.get(at + 1..at + 1 + usize::from(len)).ok_or(BAD)?;
                if first.is_none() {
                    first = Some(decode_netbios(label)?);
                }
                at += 1 + usize::from(len);
            }
            0xC0..=0xFF => {
                let lo = *p.get(at + 1).ok_or(BAD)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3F, lo]));
                jumps += 1;
                if target >= at || jumps > MAX_JUMPS {
                    return Err(BAD);
                }
                after.get_or_insert(at + 2);
                at = target;
            }
            _ => return Err(BAD),
        }
    }
}

/// First-level decoding (RFC 1001 section 14.1): each byte is two letters
/// 'A' + high nibble, 'A' + low nibble.
fn decode_netbios(label: &[u8]) -> Result<[u8; 16], Reason> {
    if label.len() != ENCODED_LEN {
        return Err(BAD);
    }
    let nibble = |c: u8| match c {
        b'A'..=b'P' => Ok(c - b'A'),
        _ => Err(BAD),
    };
    let mut name = [0u8; 16];
    for (b, pair) in name.iter_mut().zip(label.chunks_exact(2)) {
        *b = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(name)
}
