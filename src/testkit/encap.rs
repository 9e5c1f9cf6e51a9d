//! Frames wrapped the way a remote mirror delivers them: VXLAN, Geneve (with
//! options), GRE (with checksum, key and sequence fields), PPTP's enhanced
//! GRE and ERSPAN types I, II and III, each inside an outer Ethernet + IPv4
//! packet between [`TUNNEL_SRC`] and [`TUNNEL_DST`]. Headers are written by
//! hand, field by field as their RFCs draw them, so a test can also break
//! them.

use super::frames::ip_layer;
use etherparse::{IpNumber, PacketBuilder};
use std::net::{IpAddr, Ipv4Addr};

/// The outer endpoints of every wrapped frame (TEST-NET-1, as
/// `gen-gateway-pcap.py --encap` uses).
pub const TUNNEL_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const TUNNEL_DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// How to wrap a frame. `frame` is always a whole Ethernet frame; the
/// encapsulations that carry IP (`ip: true`, PPTP) take its IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrap {
    /// VXLAN, UDP 4789, VNI 100.
    Vxlan,
    /// Geneve, UDP 6081, with `options` 4-byte words of options (each a
    /// TLV of class 0x0102), carrying the Ethernet frame or its IP packet.
    Geneve { options: u8, ip: bool },
    /// GRE version 0 with the checksum, key and sequence fields asked for,
    /// carrying the Ethernet frame (transparent bridging) or its IP packet.
    Gre {
        checksum: bool,
        key: bool,
        seq: bool,
        ip: bool,
    },
    /// PPTP's enhanced GRE (version 1), sequence and acknowledgement
    /// numbers, PPP (address, control, protocol 0x0021) around the IP packet.
    Pptp,
    /// ERSPAN type I: GRE 0x88BE without a sequence number, no header.
    Erspan1,
    /// ERSPAN type II: GRE 0x88BE with a sequence number, 8-byte header.
    Erspan2,
    /// ERSPAN type III: GRE 0x22EB, 12-byte header, and the 8-byte platform
    /// subheader when `subheader`.
    Erspan3 { subheader: bool },
}

impl Wrap {
    /// One of each kind, with every optional field used somewhere.
    pub const EACH: [Wrap; 10] = [
        Wrap::Vxlan,
        Wrap::Geneve {
            options: 0,
            ip: false,
        },
        Wrap::Geneve {
            options: 5,
            ip: false,
        },
        Wrap::Geneve {
            options: 2,
            ip: true,
        },
        Wrap::Gre {
            checksum: false,
            key: false,
            seq: false,
            ip: false,
        },
        Wrap::Gre {
            checksum: true,
            key: true,
            seq: true,
            ip: true,
        },
        Wrap::Pptp,
        Wrap::Erspan1,
        Wrap::Erspan2,
        Wrap::Erspan3 { subheader: true },
    ];

    /// The tunnel header and what follows it: the IP payload (GRE kinds) or
    /// the UDP payload (VXLAN, Geneve).
    pub fn header_and_payload(self, frame: &[u8]) -> Vec<u8> {
        let eth = || frame.to_vec();
        let ip = || frame[14..].to_vec();
        let ip_proto = || frame[12..14].to_vec();
        match self {
            Wrap::Vxlan => [vec![0x08, 0, 0, 0, 0, 0, 100, 0], eth()].concat(),
            Wrap::Geneve {
                options,
                ip: inner_ip,
            } => {
                let proto = if inner_ip {
                    ip_proto()
                } else {
                    vec![0x65, 0x58]
                };
                let mut h = vec![options & 0x3f, 0, proto[0], proto[1], 0, 0, 100, 0];
                h.extend(geneve_options(options));
                h.extend(if inner_ip { ip() } else { eth() });
                h
            }
            Wrap::Gre {
                checksum,
                key,
                seq,
                ip: inner_ip,
            } => {
                let flags = u8::from(checksum) << 7 | u8::from(key) << 5 | u8::from(seq) << 4;
                let proto = if inner_ip {
                    ip_proto()
                } else {
                    vec![0x65, 0x58]
                };
                let mut h = vec![flags, 0, proto[0], proto[1]];
                for (on, word) in [(checksum, 0u32), (key, 0x2a), (seq, 7)] {
                    if on {
                        h.extend(word.to_be_bytes());
                    }
                }
                h.extend(if inner_ip { ip() } else { eth() });
                h
            }
            Wrap::Pptp => {
                let ppp = [vec![0xff, 0x03, 0x00, 0x21], ip()].concat();
                let len = (ppp.len() as u16).to_be_bytes();
                let mut h = vec![0x30, 0x81, 0x88, 0x0b, len[0], len[1], 0, 9];
                h.extend([0, 0, 0, 1, 0, 0, 0, 0]);
                h.extend(ppp);
                h
            }
            Wrap::Erspan1 => [vec![0, 0, 0x88, 0xbe], eth()].concat(),
            Wrap::Erspan2 => {
                let gre = [0x10, 0, 0x88, 0xbe, 0, 0, 0, 7];
                // Version 1, VLAN 0; En 3 (tag kept), session 7; index 0.
                let ers = [0x10, 0, 0x18, 0x07, 0, 0, 0, 0];
                [&gre[..], &ers, frame].concat()
            }
            Wrap::Erspan3 { subheader } => {
                let gre = [0x10, 0, 0x22, 0xeb, 0, 0, 0, 7];
                // Version 2, VLAN 10; session 7; timestamp; SGT, flags, O.
                let mut ers = vec![0x20, 0x0a, 0, 7, 0x70, 0x50, 0x7e, 0x55, 0, 0, 0, 0];
                if subheader {
                    ers[11] |= 1;
                    ers.extend([0x0c, 0, 0, 3, 0x15, 0xf7, 0x42, 0xe8]);
                }
                [&gre[..], &ers, frame].concat()
            }
        }
    }

    /// Whether the tunnel travels in UDP (else in IP protocol 47).
    fn udp_port(self) -> Option<u16> {
        match self {
            Wrap::Vxlan => Some(4789),
            Wrap::Geneve { .. } => Some(6081),
            _ => None,
        }
    }

    /// Offset of the tunnel header in [`wrap`]'s output: outer Ethernet and
    /// IPv4, and UDP for VXLAN and Geneve (20 more behind an outer IPv6).
    pub fn header_at(self) -> usize {
        14 + 20 + if self.udp_port().is_some() { 8 } else { 0 }
    }
}

/// `options` words of Geneve options: TLVs of class 0x0102 and one to four
/// words, filling exactly that length.
fn geneve_options(options: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = usize::from(options & 0x3f);
    while left > 0 {
        let data_words = (left - 1).min(3);
        out.extend([0x01, 0x02, 0x80, data_words as u8]);
        out.extend(std::iter::repeat_n(0xab, data_words * 4));
        left -= 1 + data_words;
    }
    out
}

/// `frame` (a whole Ethernet frame) as a remote mirror delivers it: outer
/// Ethernet + IPv4 from [`TUNNEL_SRC`] to [`TUNNEL_DST`], then the tunnel.
pub fn wrap(frame: &[u8], how: Wrap) -> Vec<u8> {
    wrap_between(frame, how, TUNNEL_SRC.into(), TUNNEL_DST.into())
}

/// As [`wrap`], with outer addresses `src` and `dst` (IPv4 or IPv6).
pub fn wrap_between(frame: &[u8], how: Wrap, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let inner = how.header_and_payload(frame);
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x11], [2, 0, 0, 0, 0, 0x12]);
    let ip = ip_layer(eth, src, dst);
    let mut out = Vec::new();
    match how.udp_port() {
        Some(port) => ip.udp(49152, port).write(&mut out, &inner),
        None => ip.write(&mut out, IpNumber(47), &inner),
    }
    .expect("build packet");
    out
}

/// `frame` wrapped in each of `layers`, the first innermost.
pub fn wrap_all(frame: &[u8], layers: &[Wrap]) -> Vec<u8> {
    layers.iter().fold(frame.to_vec(), |f, w| wrap(&f, *w))
}

/// An outer Ethernet + IPv4 packet of IP protocol 47 (GRE) from
/// [`TUNNEL_SRC`] to [`TUNNEL_DST`] whose payload is `gre` as given: for
/// headers a test writes itself, broken ones included.
pub fn gre_packet(gre: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x11], [2, 0, 0, 0, 0, 0x12])
        .ipv4(TUNNEL_SRC.octets(), TUNNEL_DST.octets(), 64)
        .write(&mut out, IpNumber(47), gre)
        .expect("build packet");
    out
}
