//! DHCP (RFC 2131/2132) host names: option 12 and option 81 (RFC 4702) of a
//! client's DHCPREQUEST or DHCPINFORM, or of a server's DHCPACK when it
//! echoes them, bound to the address the message is about.
//!
//! Which address a name belongs to:
//! - DHCPREQUEST: `ciaddr` when renewing or rebinding, else option 50 (the
//!   address being requested after an offer or a reboot);
//! - DHCPINFORM: `ciaddr`, else the packet's source when no relay forwarded
//!   it (the client sends from the address it already has);
//! - DHCPACK: `yiaddr`, else `ciaddr` (the answer to a DHCPINFORM).
//!
//! Relayed messages (`giaddr` set, unicast between relay and server) cross
//! routers and so reach a gateway mirror; nothing here depends on the IP
//! header, so they read the same as local broadcasts.

use super::{HostName, NameSource, Names};
use crate::packet::Reason;
use std::net::{IpAddr, Ipv4Addr};

/// Fixed BOOTP header up to the options field.
const FIXED_LEN: usize = 236;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

const OPT_PAD: u8 = 0;
const OPT_HOST_NAME: u8 = 12;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_CLIENT_FQDN: u8 = 81;
const OPT_END: u8 = 255;

const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;

const DHCPREQUEST: u8 = 3;
const DHCPACK: u8 = 5;
const DHCPINFORM: u8 = 8;

/// RFC 4702 flag: the name is in DNS wire format (else deprecated ASCII).
const FQDN_FLAG_E: u8 = 0x04;

/// The options this parser reads. A code that appears more than once is
/// concatenated (RFC 3396), which is how long host names are split.
#[derive(Default)]
struct Options<'a> {
    message_type: Option<Vec<u8>>,
    requested_ip: Option<Vec<u8>>,
    host_name: Part<'a>,
    client_fqdn: Part<'a>,
}

/// One option's data: borrowed when it appears once (the usual case),
/// copied only when split across several instances.
#[derive(Default)]
enum Part<'a> {
    #[default]
    Absent,
    One(&'a [u8]),
    Joined(Vec<u8>),
}

impl<'a> Part<'a> {
    fn add(&mut self, data: &'a [u8]) {
        *self = match std::mem::take(self) {
            Part::Absent => Part::One(data),
            Part::One(first) => Part::Joined([first, data].concat()),
            Part::Joined(mut v) => {
                v.extend_from_slice(data);
                Part::Joined(v)
            }
        };
    }

    fn get(&self) -> Option<&[u8]> {
        match self {
            Part::Absent => None,
            Part::One(d) => Some(d),
            Part::Joined(v) => Some(v),
        }
    }
}

pub(super) fn parse(src: IpAddr, p: &[u8], out: &mut Vec<HostName>) -> Result<(), Reason> {
    const BAD: Reason = Reason::HostNameMalformed;
    if p.len() < FIXED_LEN + MAGIC_COOKIE.len() || p[FIXED_LEN..FIXED_LEN + 4] != MAGIC_COOKIE {
        return Err(BAD);
    }
    let op = p[0];
    if op != BOOTREQUEST && op != BOOTREPLY {
        return Err(BAD);
    }
    let addr = |at: usize| Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3]);
    let (ciaddr, yiaddr, giaddr) = (addr(12), addr(16), addr(24));
    let mac = (p[1] == 1 && p[2] == 6).then(|| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&p[28..34]);
        m
    });
    let opts = options(&p[FIXED_LEN + 4..])?;
    let Some(kind) = opts.message_type.as_deref() else {
        return Ok(()); // plain BOOTP: no DHCP state, no names
    };
    let &[kind] = kind else { return Err(BAD) };
    let requested = match opts.requested_ip.as_deref() {
        None => None,
        Some(&[a, b, c, d]) => Some(Ipv4Addr::new(a, b, c, d)),
        Some(_) => return Err(BAD),
    };
    let some = |a: Ipv4Addr| (!a.is_unspecified()).then_some(a);
    let ip = match (op, kind) {
        (BOOTREQUEST, DHCPREQUEST) => some(ciaddr).or(requested),
        (BOOTREQUEST, DHCPINFORM) => some(ciaddr).or(match src {
            IpAddr::V4(s) if giaddr.is_unspecified() => some(s),
            _ => None,
        }),
        (BOOTREPLY, DHCPACK) => some(yiaddr).or(some(ciaddr)),
        // A client message type from a server or the other way round.
        (BOOTREPLY, 1 | 3 | 4 | 7 | 8) | (BOOTREQUEST, 2 | 5 | 6) => return Err(BAD),
        _ => None,
    };
    let Some(ip) = ip.map(IpAddr::V4) else {
        return Ok(());
    };
    let mut names = Names::new(out);
    if let Some(name) = opts.host_name.get() {
        // Some clients NUL-terminate option 12 (RFC 2132 says not to).
        names.push(ip, trim_nuls(name), mac, NameSource::Dhcp);
    }
    if let Some(fqdn) = opts.client_fqdn.get() {
        // Flags, RCODE1, RCODE2, then the name; an empty name asks the
        // server to choose one and announces nothing.
        let [flags, _, _, name @ ..] = fqdn else {
            return Err(BAD);
        };
        if flags & FQDN_FLAG_E != 0 {
            if let Some(text) = wire_name(name)? {
                names.push(ip, &text, mac, NameSource::DhcpFqdn);
            }
        } else {
            let text = trim_nuls(name);
            let text = text.strip_suffix(b".").unwrap_or(text);
            if !text.is_empty() {
                names.push(ip, text, mac, NameSource::DhcpFqdn);
            }
        }
    }
    names.finish()
}

/// Walk the option list: every option must fit in the message. The list
/// ends at option 255 or, leniently, at the end of the datagram.
fn options(mut b: &[u8]) -> Result<Options<'_>, Reason> {
    let mut o = Options::default();
    while let [code, rest @ ..] = b {
        match *code {
            OPT_PAD => {
                b = rest;
                continue;
            }
            OPT_END => break,
            _ => {}
        }
        let [len, rest @ ..] = rest else {
            return Err(Reason::HostNameMalformed);
        };
        let Some((data, rest)) = rest.split_at_checked(usize::from(*len)) else {
            return Err(Reason::HostNameMalformed);
        };
        match *code {
            OPT_MESSAGE_TYPE => o
                .message_type
                .get_or_insert_with(Vec::new)
                .extend_from_slice(data),
            OPT_REQUESTED_IP => o
                .requested_ip
                .get_or_insert_with(Vec::new)
                .extend_from_slice(data),
            OPT_HOST_NAME => o.host_name.add(data),
            OPT_CLIENT_FQDN => o.client_fqdn.add(data),
            _ => {}
        }
        b = rest;
    }
    Ok(o)
}

fn trim_nuls(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., 0] = b {
        b = rest;
    }
    b
}

/// An uncompressed DNS wire-format name (RFC 4702 section 2.3.1): labels
/// joined by dots, with or without the final root label (a partial name
/// has none). `None` for the root alone.
fn wire_name(mut b: &[u8]) -> Result<Option<Vec<u8>>, Reason> {
    let mut text = Vec::with_capacity(b.len());
    while let [len, rest @ ..] = b {
        let len = usize::from(*len);
        if len == 0 {
            if !rest.is_empty() {
                return Err(Reason::HostNameMalformed); // bytes after the root
            }
            break;
        }
        // Compression is not allowed here; 64..=255 are pointers or reserved.
        if len > 63 {
            return Err(Reason::HostNameMalformed);
        }
        let Some((label, rest)) = rest.split_at_checked(len) else {
            return Err(Reason::HostNameMalformed);
        };
        if !text.is_empty() {
            text.push(b'.');
        }
        text.extend_from_slice(label);
        b = rest;
    }
    Ok((!text.is_empty()).then_some(text))
}
