//! Builders for the messages that announce host names (DHCP, NetBIOS name
//! service, mDNS), written field by field from the RFCs so tests state
//! what a packet says instead of carrying byte blobs.

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use std::net::{IpAddr, Ipv4Addr};

/// DHCP message types (option 53).
pub const DHCPDISCOVER: u8 = 1;
pub const DHCPREQUEST: u8 = 3;
pub const DHCPACK: u8 = 5;
pub const DHCPINFORM: u8 = 8;

/// A DHCP message (RFC 2131) with option 53 first and the options given,
/// in order; [`DhcpMsg::encode`] lays it out on the wire.
#[derive(Clone, Debug)]
pub struct DhcpMsg {
    /// 1 BOOTREQUEST (client or relay to server), 2 BOOTREPLY.
    pub op: u8,
    pub msg_type: u8,
    pub xid: u32,
    pub mac: [u8; 6],
    pub hops: u8,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// (code, data); data longer than 255 bytes is split into several
    /// options of the same code (RFC 3396).
    pub options: Vec<(u8, Vec<u8>)>,
}

impl DhcpMsg {
    /// A message of `msg_type` from the client `mac`; `op` follows from the
    /// type (ACK, OFFER, NAK are replies).
    pub fn new(msg_type: u8, mac: [u8; 6], xid: u32) -> DhcpMsg {
        DhcpMsg {
            op: if matches!(msg_type, 2 | 5 | 6) { 2 } else { 1 },
            msg_type,
            xid,
            mac,
            hops: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            options: Vec::new(),
        }
    }

    pub fn option(mut self, code: u8, data: &[u8]) -> DhcpMsg {
        self.options.push((code, data.to_vec()));
        self
    }

    /// Option 12.
    pub fn host_name(self, name: &str) -> DhcpMsg {
        self.option(12, name.as_bytes())
    }

    /// Option 50.
    pub fn requested_ip(self, ip: Ipv4Addr) -> DhcpMsg {
        self.option(50, &ip.octets())
    }

    /// Option 81 with the E flag set: `name` in DNS wire format, ending
    /// with the root label when `fully_qualified` (a partial name has none).
    pub fn fqdn_wire(self, name: &str, fully_qualified: bool) -> DhcpMsg {
        let mut data = vec![0x01 | 0x04, 0, 0]; // S and E flags, RCODE1/2
        for label in name.trim_end_matches('.').split('.') {
            data.push(label.len() as u8);
            data.extend_from_slice(label.as_bytes());
        }
        if fully_qualified {
            data.push(0);
        }
        self.option(81, &data)
    }

    /// Option 81 with the E flag clear: the deprecated ASCII form.
    pub fn fqdn_ascii(self, name: &str) -> DhcpMsg {
        let mut data = vec![0x01, 0, 0];
        data.extend_from_slice(name.as_bytes());
        self.option(81, &data)
    }

    /// Set `giaddr` and count one hop, as a relay agent does before
    /// unicasting the client's message to the server.
    pub fn relayed_by(mut self, relay: Ipv4Addr) -> DhcpMsg {
        self.giaddr = relay;
        self.hops += 1;
        self
    }

    /// The UDP payload: fixed header, magic cookie, options, end, and zero
    /// padding to the 300-byte BOOTP minimum most clients send.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![self.op, 1, 6, self.hops];
        b.extend_from_slice(&self.xid.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0x80, 0]); // secs, broadcast flag
        for a in [self.ciaddr, self.yiaddr, Ipv4Addr::UNSPECIFIED, self.giaddr] {
            b.extend_from_slice(&a.octets());
        }
        b.extend_from_slice(&self.mac);
        b.resize(236, 0); // chaddr padding, sname, file
        b.extend_from_slice(&[99, 130, 83, 99]);
        b.extend_from_slice(&[53, 1, self.msg_type]);
        for (code, data) in &self.options {
            if data.is_empty() {
                b.extend_from_slice(&[*code, 0]);
            }
            for part in data.chunks(255) {
                b.push(*code);
                b.push(part.len() as u8);
                b.extend_from_slice(part);
            }
        }
        b.push(255);
        if b.len() < 300 {
            b.resize(300, 0);
        }
        b
    }
}

/// A client's DHCPREQUEST payload: option 50 when `requested_ip` is given,
/// option 12 `hostname`, option 81 `fqdn` in wire format.
pub fn dhcp_request(
    mac: [u8; 6],
    xid: u32,
    requested_ip: Option<Ipv4Addr>,
    hostname: Option<&str>,
    fqdn: Option<&str>,
) -> Vec<u8> {
    let mut m = DhcpMsg::new(DHCPREQUEST, mac, xid);
    if let Some(ip) = requested_ip {
        m = m.requested_ip(ip);
    }
    if let Some(h) = hostname {
        m = m.host_name(h);
    }
    if let Some(f) = fqdn {
        m = m.fqdn_wire(f, true);
    }
    m.encode()
}

/// First-level encoding of a NetBIOS name (RFC 1001 section 14.1): the name
/// upper-cased by the caller, padded with spaces to 15 bytes, the suffix
/// byte, then each byte as two letters 'A' + nibble.
pub fn netbios_encode(name: &str, suffix: u8) -> [u8; 32] {
    let mut raw = [b' '; 16];
    raw[..name.len()].copy_from_slice(name.as_bytes());
    raw[15] = suffix;
    let mut out = [0u8; 32];
    for (i, b) in raw.iter().enumerate() {
        out[2 * i] = b'A' + (b >> 4);
        out[2 * i + 1] = b'A' + (b & 0x0F);
    }
    out
}

/// A NetBIOS name service message carrying one NB record.
#[derive(Clone, Debug)]
pub struct NbnsMsg {
    /// 5 registration, 8/9 refresh, 15 multi-homed, 0 query.
    pub opcode: u8,
    pub response: bool,
    pub name: String,
    /// 0x00 workstation, 0x20 server, 0x1B domain master, ...
    pub suffix: u8,
    /// NB flags G bit: a group name.
    pub group: bool,
    pub addrs: Vec<Ipv4Addr>,
}

impl NbnsMsg {
    /// The UDP payload. A request asks one question and repeats the name in
    /// its additional record by a compression pointer, as Windows does; a
    /// response carries the record as its one answer, name in full.
    pub fn encode(&self) -> Vec<u8> {
        let mut flags: u16 = u16::from(self.opcode) << 11 | 0x0010; // B: broadcast
        if self.response {
            flags |= 0x8000 | 0x0400 | 0x0100 | 0x0080; // R, AA, RD, RA
        }
        let (qd, an, ar) = if self.response { (0, 1, 0) } else { (1, 0, 1) };
        let mut b = Vec::new();
        for v in [0x1234u16, flags, qd, an, 0, ar] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        let name = |b: &mut Vec<u8>| {
            b.push(32);
            b.extend_from_slice(&netbios_encode(&self.name, self.suffix));
            b.push(0);
        };
        if self.response {
            name(&mut b);
        } else {
            name(&mut b);
            b.extend_from_slice(&[0, 0x20, 0, 1]); // NB, IN
            b.extend_from_slice(&[0xC0, 12]);
        }
        b.extend_from_slice(&[0, 0x20, 0, 1]); // NB, IN
        b.extend_from_slice(&300_000u32.to_be_bytes()); // TTL
        b.extend_from_slice(&(6 * self.addrs.len() as u16).to_be_bytes());
        for a in &self.addrs {
            let nb_flags: u16 = if self.group { 0x8000 } else { 0 }; // B-node
            b.extend_from_slice(&nb_flags.to_be_bytes());
            b.extend_from_slice(&a.octets());
        }
        b
    }
}

/// A NetBIOS name registration request for the workstation name `name` at
/// `ip` (opcode 5, NB record in the additional section).
pub fn nbns_registration(name: &str, ip: Ipv4Addr) -> Vec<u8> {
    NbnsMsg {
        opcode: 5,
        response: false,
        name: name.into(),
        suffix: 0x00,
        group: false,
        addrs: vec![ip],
    }
    .encode()
}

/// An mDNS announcement (unsolicited response) of `host.local` at `addrs`,
/// encoded by hickory-proto: a reverse PTR record for the first address,
/// then one A or AAAA record per address with the cache-flush bit set.
/// `host` may hold any UTF-8, as mDNS allows.
pub fn mdns_announcement(host: &str, addrs: &[IpAddr]) -> Vec<u8> {
    let owner = local_name(host);
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.metadata.authoritative = true;
    if let Some(first) = addrs.first() {
        let reverse = Name::from(*first);
        m.add_answer(Record::from_rdata(
            reverse,
            120,
            RData::PTR(PTR(owner.clone())),
        ));
    }
    for a in addrs {
        let data = match a {
            IpAddr::V4(v4) => RData::A(A(*v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
        };
        let mut r = Record::from_rdata(owner.clone(), 120, data);
        r.dns_class = DNSClass::Unknown(0x8001); // IN with cache-flush
        m.add_answer(r);
    }
    m.to_vec().expect("encode mDNS announcement")
}

/// `<host>.local` with the labels of `host` as raw bytes (case and UTF-8
/// kept, no punycode).
pub fn local_name(host: &str) -> Name {
    Name::from_labels(
        host.split('.')
            .map(str::as_bytes)
            .chain([b"local".as_slice()]),
    )
    .expect("mDNS name")
}
