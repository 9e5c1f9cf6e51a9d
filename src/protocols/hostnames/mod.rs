//! Internal host names learned passively from the wire: DHCP (option 12 host
//! name and option 81 client FQDN), NetBIOS name service registrations and
//! positive query answers, and mDNS announcements of `.local` names.
//!
//! Units know their machines by name, not by address, so an offender list is
//! only actionable when it says which machine an address was. This module is
//! pure parsing over a borrowed UDP payload: no I/O, no state, no panics on
//! any input. The engine calls [`parse`] only when [`is_name_port`] says so;
//! what it returns goes to the store (`store::writer::NameRecord`).
//!
//! Names are kept exactly as seen (case, Vietnamese letters) but must be safe
//! to show in a sheet or a terminal: see [`clean_name`].
//!
//! What is deliberately not learned:
//! - DHCPDISCOVER and DHCPOFFER: no address is bound yet. The client's
//!   DHCPREQUEST carries the same option 12 with option 50 (or ciaddr when
//!   renewing), which is enough in practice; no xid table is kept, so this
//!   stays stateless.
//! - DHCP option 52 (overload): options moved into `sname`/`file` are not read.
//! - DHCPv6, LLMNR and NetBIOS node status answers.
//! - Addresses that can never be an offender seen at a gateway: unspecified,
//!   loopback, multicast, broadcast and link-local.

mod dhcp;
pub mod known;
mod mdns;
mod nbns;
#[cfg(test)]
mod tests;

use crate::packet::Reason;
use std::net::IpAddr;

/// BOOTP/DHCP server and client ports (RFC 2131); relays use 67 both ways.
pub const DHCP_SERVER_PORT: u16 = 67;
pub const DHCP_CLIENT_PORT: u16 = 68;
/// NetBIOS name service (RFC 1002).
pub const NBNS_PORT: u16 = 137;
/// Multicast DNS (RFC 6762).
pub const MDNS_PORT: u16 = 5353;

/// Longest name kept, in bytes: the DNS limit for a whole name.
pub const MAX_NAME_LEN: usize = 253;

/// Where a name came from; the store keeps history per source because the
/// same machine often has different names in each (NetBIOS `PC-KETOAN01`,
/// DHCP FQDN `pc-ketoan01.so.gov.vn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameSource {
    /// DHCP option 12, the client's host name.
    Dhcp,
    /// DHCP option 81, the client's fully qualified domain name.
    DhcpFqdn,
    /// NetBIOS name service registration, refresh or positive answer.
    Netbios,
    /// mDNS A/AAAA record for `<name>.local`.
    Mdns,
}

impl NameSource {
    pub const ALL: [NameSource; 4] = [
        NameSource::Dhcp,
        NameSource::DhcpFqdn,
        NameSource::Netbios,
        NameSource::Mdns,
    ];

    /// Stable name, as stored in `host_names.source` and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Dhcp => "dhcp",
            NameSource::DhcpFqdn => "dhcp_fqdn",
            NameSource::Netbios => "netbios",
            NameSource::Mdns => "mdns",
        }
    }

    /// Inverse of [`NameSource::as_str`].
    pub fn parse(s: &str) -> Option<NameSource> {
        NameSource::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

/// One address-to-name binding announced on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostName {
    /// The address the name belongs to (not necessarily the packet's source:
    /// a DHCPACK names the client's new address, a WINS answer another host).
    pub ip: IpAddr,
    /// Exactly as announced, checked by [`clean_name`].
    pub name: String,
    /// The client's hardware address, when the protocol carries it (DHCP).
    pub mac: Option<[u8; 6]>,
    pub source: NameSource,
}

/// Cheap port test for the hot path: whether a UDP datagram may announce a
/// host name (DHCP 67/68, NetBIOS name service 137, mDNS 5353).
#[inline]
pub fn is_name_port(src_port: u16, dst_port: u16) -> bool {
    let p = |x: u16| {
        matches!(
            x,
            DHCP_SERVER_PORT | DHCP_CLIENT_PORT | NBNS_PORT | MDNS_PORT
        )
    };
    p(src_port) || p(dst_port)
}

/// Names announced in this UDP payload, appended to `out`; `Ok(n)` is how many
/// were pushed (0 for messages that announce nothing, such as queries or a
/// DHCPDISCOVER).
///
/// `Err` means nothing was pushed and names why:
/// [`Reason::HostNameMalformed`] for a message cut short or inconsistent,
/// [`Reason::HostNameRejected`] when its only names are unsafe to show. A
/// message with some usable names answers `Ok` with those (an mDNS answer
/// broken after its first records still yields them).
pub fn parse(
    src: IpAddr,
    _dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
    out: &mut Vec<HostName>,
) -> Result<usize, Reason> {
    let start = out.len();
    let has = |p: u16| src_port == p || dst_port == p;
    let r = if has(DHCP_SERVER_PORT) || has(DHCP_CLIENT_PORT) {
        dhcp::parse(src, payload, out)
    } else if has(NBNS_PORT) {
        nbns::parse(src, payload, out)
    } else if has(MDNS_PORT) {
        mdns::parse(payload, out)
    } else {
        Ok(())
    };
    match r {
        Ok(()) => Ok(out.len() - start),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// A name as announced, if it is safe to show: UTF-8, 1 to
/// [`MAX_NAME_LEN`] bytes, no control characters (C0, DEL, C1) and no
/// bidirectional overrides, which could make a sheet show one name while
/// holding another. Nothing else is changed: case and letters stay as seen.
pub fn clean_name(raw: &[u8]) -> Result<String, Reason> {
    if raw.is_empty() || raw.len() > MAX_NAME_LEN {
        return Err(Reason::HostNameRejected);
    }
    let s = std::str::from_utf8(raw).map_err(|_| Reason::HostNameRejected)?;
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if s.chars().any(unsafe_char) {
        return Err(Reason::HostNameRejected);
    }
    Ok(s.to_owned())
}

/// Whether a host at this address could be an offender seen at a gateway,
/// so that naming it is worth a store write.
pub fn is_host_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_link_local())
        }
        IpAddr::V6(a) => {
            !(a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_unicast_link_local())
        }
    }
}

/// Collects names of one message: a name that fails [`clean_name`] is
/// remembered, so a message whose only names were unsafe answers
/// [`Reason::HostNameRejected`] instead of a silent zero.
struct Names<'a> {
    out: &'a mut Vec<HostName>,
    pushed: usize,
    rejected: bool,
}

impl<'a> Names<'a> {
    fn new(out: &'a mut Vec<HostName>) -> Self {
        Names {
            out,
            pushed: 0,
            rejected: false,
        }
    }

    fn push(&mut self, ip: IpAddr, raw: &[u8], mac: Option<[u8; 6]>, source: NameSource) {
        if !is_host_address(ip) {
            return;
        }
        match clean_name(raw) {
            Ok(name) => {
                self.out.push(HostName {
                    ip,
                    name,
                    mac,
                    source,
                });
                self.pushed += 1;
            }
            Err(_) => self.rejected = true,
        }
    }

    /// A name offered but not believed (see `nbns::parse`).
    fn refuse(&mut self) {
        self.rejected = true;
    }

    /// The message's outcome once every name was offered.
    fn finish(self) -> Result<(), Reason> {
        if self.pushed == 0 && self.rejected {
            Err(Reason::HostNameRejected)
        } else {
            Ok(())
        }
    }
}
