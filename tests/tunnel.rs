//! Tunnel decapsulation (VXLAN, Geneve, GRE, PPTP, ERSPAN I/II/III) on
//! frames the test kit wraps: the inner packet is what decoding returns and
//! what the engine matches, nesting is bounded, and a broken or cut tunnel
//! header is a named reason (the outer packet kept), never a panic.

use gatewatch::decode::{self, DecodeCounters, Decoded, Encap, MAX_TUNNEL_DEPTH, Transport};
use gatewatch::detect::HitSource;
use gatewatch::packet::{LinkType, Problems, RawPacket, Reason};
use gatewatch::testkit::{
    T0_US, TUNNEL_SRC, Wrap, dns_query, gre_packet, ip, one_unit, replay_frames, snapshot_of,
    tcp_frame, udp_frame, wrap, wrap_all, wrap_between,
};
use hickory_proto::rr::RecordType;
use std::net::IpAddr;

/// An inner packet and what decoding it must give.
struct Inner {
    frame: Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    ports: (u16, u16),
    proto: u8,
}

/// A DNS query over IPv4/UDP and a segment over IPv6/TCP.
fn inners() -> Vec<Inner> {
    let q = dns_query(7, "www.example.org.", RecordType::A);
    vec![
        Inner {
            frame: udp_frame(ip("10.1.0.5"), ip("8.8.8.8"), 40000, 53, None, &q),
            src: ip("10.1.0.5"),
            dst: ip("8.8.8.8"),
            ports: (40000, 53),
            proto: 17,
        },
        Inner {
            frame: tcp_frame(ip("fd00:1::5"), ip("2001:db8::1"), 50000, 443, 9, b"hello"),
            src: ip("fd00:1::5"),
            dst: ip("2001:db8::1"),
            ports: (50000, 443),
            proto: 6,
        },
    ]
}

/// Decode `data` as a frame `orig_len` bytes long on the wire.
fn decode_cut(data: &[u8], orig_len: usize) -> (Option<Decoded<'_>>, DecodeCounters, Problems) {
    let (mut c, mut p) = (DecodeCounters::default(), Problems::default());
    let pkt = RawPacket {
        ts_ns: 0,
        orig_len: orig_len as u32,
        link: LinkType::Ethernet,
        data,
    };
    let d = decode::decode(&pkt, &mut c, &mut p);
    (d, c, p)
}

fn decode(data: &[u8]) -> (Option<Decoded<'_>>, DecodeCounters, Problems) {
    decode_cut(data, data.len())
}

fn encap_of(w: Wrap) -> Encap {
    match w {
        Wrap::Vxlan => Encap::Vxlan,
        Wrap::Geneve { .. } => Encap::Geneve,
        Wrap::Gre { .. } | Wrap::Pptp => Encap::Gre,
        Wrap::Erspan1 => Encap::Erspan1,
        Wrap::Erspan2 => Encap::Erspan2,
        Wrap::Erspan3 { .. } => Encap::Erspan3,
    }
}

/// The length of `w`'s tunnel header (PPTP: with the PPP header).
fn header_len(w: Wrap) -> usize {
    match w {
        Wrap::Vxlan => 8,
        Wrap::Geneve { options, .. } => 8 + 4 * usize::from(options),
        Wrap::Gre {
            checksum, key, seq, ..
        } => 4 + 4 * [checksum, key, seq].iter().filter(|x| **x).count(),
        Wrap::Pptp => 16 + 4,
        Wrap::Erspan1 => 4,
        Wrap::Erspan2 => 8 + 8,
        Wrap::Erspan3 { subheader } => 8 + 12 + if subheader { 8 } else { 0 },
    }
}

/// The reason a cut `at` bytes into `w`'s tunnel header must give.
fn reason_for_cut(w: Wrap, at: usize) -> Reason {
    match w {
        Wrap::Vxlan => Reason::VxlanMalformed,
        Wrap::Geneve { .. } => Reason::GeneveMalformed,
        Wrap::Erspan2 | Wrap::Erspan3 { .. } if at >= 8 => Reason::ErspanMalformed,
        _ => Reason::GreMalformed,
    }
}

/// Each kind around IPv4 and IPv6 inner packets, behind an outer IPv4
/// (read by offset) and an outer IPv6 (through the full IP decoder).
#[test]
fn each_encapsulation_gives_the_inner_packet() {
    let outer_v6 = (ip("2001:db8:7::1"), ip("2001:db8:7::2"));
    for (w, v6) in Wrap::EACH.iter().flat_map(|w| [(*w, false), (*w, true)]) {
        for inner in inners() {
            let f = match v6 {
                false => wrap(&inner.frame, w),
                true => wrap_between(&inner.frame, w, outer_v6.0, outer_v6.1),
            };
            let (d, c, p) = decode(&f);
            let d = d.unwrap_or_else(|| panic!("{w:?}: not decoded, {p:?}"));
            assert_eq!((d.src, d.dst), (inner.src, inner.dst), "{w:?}");
            assert_eq!(d.transport.ports(), inner.ports, "{w:?}");
            assert_eq!(d.transport.proto_number(d.src.is_ipv6()), inner.proto);
            assert_eq!(d.tunnel, Some(encap_of(w)), "{w:?}");
            assert!(!d.truncated, "{w:?}");
            assert_eq!(p.events(), 0, "{w:?}: {p:?}");
            assert_eq!(encap_of(w).count_in(&c), 1, "{w:?}: {c:?}");
            // ERSPAN rides in GRE, and the outer IPv4 is counted too.
            assert_eq!(
                c.gre,
                u64::from(encap_of(w) != Encap::Vxlan && encap_of(w) != Encap::Geneve)
            );
            assert_eq!(
                (c.ipv4 + c.ipv6, c.ipv6),
                (2, u64::from(v6) + u64::from(inner.src.is_ipv6()))
            );
            assert_eq!(c.udp + c.tcp + c.other_ip, 2, "{w:?}: {c:?}");
            if let Transport::Udp { payload, .. } = d.transport {
                assert_eq!(payload, &inner.frame[42..], "{w:?}: inner UDP payload");
            }
        }
    }
}

/// `f` with its outer IPv4 header grown by a no-op option, so that the
/// decoder's shortcut for plain outer headers does not take it.
fn with_ipv4_option(f: &[u8]) -> Vec<u8> {
    let mut g = [&f[..34], &[1, 1, 1, 0], &f[34..]].concat();
    g[14] = 0x46;
    let total = u16::from_be_bytes([g[16], g[17]]) + 4;
    g[16..18].copy_from_slice(&total.to_be_bytes());
    g
}

/// The shortcut for a plain outer IPv4 header gives what the full decoder
/// gives, counters included.
#[test]
fn the_outer_ipv4_shortcut_agrees_with_the_full_decoder() {
    let inner = wrap(&inners()[1].frame, Wrap::Vxlan);
    for w in Wrap::EACH {
        for f in [wrap(&inners()[0].frame, w), wrap(&inner, w)] {
            let (fast, fc, fp) = decode(&f);
            let g = with_ipv4_option(&f);
            let (full, gc, gp) = decode(&g);
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{w:?}");
            assert_eq!((fc, fp), (gc, gp), "{w:?}");
        }
    }
}

#[test]
fn nested_tunnels_are_stripped_up_to_the_limit() {
    let inner = udp_frame(ip("10.1.0.5"), ip("8.8.8.8"), 40000, 53, None, b"q");
    let gre = Wrap::Gre {
        checksum: false,
        key: true,
        seq: false,
        ip: false,
    };
    let gre_ip = Wrap::Gre {
        checksum: false,
        key: false,
        seq: false,
        ip: true,
    };
    let nests = [
        vec![gre, gre],
        vec![Wrap::Vxlan, gre],
        vec![gre_ip, Wrap::Vxlan],
        vec![
            Wrap::Erspan3 { subheader: false },
            Wrap::Vxlan,
            Wrap::Geneve {
                options: 1,
                ip: false,
            },
        ],
        vec![gre; MAX_TUNNEL_DEPTH],
    ];
    for layers in nests {
        let f = wrap_all(&inner, &layers);
        let (d, c, p) = decode(&f);
        let d = d.unwrap_or_else(|| panic!("{layers:?}: {p:?}"));
        assert_eq!((d.src, d.transport.ports()), (ip("10.1.0.5"), (40000, 53)));
        // The outermost encapsulation is the one named.
        assert_eq!(d.tunnel, Some(encap_of(*layers.last().unwrap())));
        assert_eq!(p.events(), 0, "{layers:?}: {p:?}");
        assert_eq!(c.ipv4, layers.len() as u64 + 1);
    }
    let f = wrap_all(&inner, &[gre; MAX_TUNNEL_DEPTH + 1]);
    let (d, _, p) = decode(&f);
    assert!(d.is_none(), "one tunnel too many is dropped");
    assert_eq!(p.of(Reason::TunnelTooDeep), 1);
    assert_eq!(p.events(), 1);
}

#[test]
fn the_inner_frame_keeps_its_vlan_tag() {
    let inner = udp_frame(ip("10.1.0.5"), ip("8.8.8.8"), 40000, 53, Some(100), b"q");
    for w in [Wrap::Vxlan, Wrap::Erspan2] {
        let f = wrap(&inner, w);
        let (d, c, _) = decode(&f);
        let d = d.unwrap();
        assert_eq!((d.vlan, c.vlan_tagged), (Some(100), 1), "{w:?}");
        assert_eq!(d.src, ip("10.1.0.5"));
    }
}

/// Every cut of every wrapped frame decodes without a panic, marks what it
/// returns truncated, drops nothing without a reason, and a cut in the
/// tunnel header names that header's reason and keeps the outer packet.
#[test]
fn every_cut_of_every_wrapped_frame_is_counted() {
    for w in Wrap::EACH {
        for inner in inners() {
            let f = wrap(&inner.frame, w);
            let (start, end) = (w.header_at(), w.header_at() + header_len(w));
            for cut in 0..f.len() {
                let (d, _, p) = decode_cut(&f[..cut], f.len());
                let at = format!("{w:?} cut at {cut}");
                assert!(d.is_some() || p.events() > 0, "{at}: dropped silently");
                if let Some(d) = &d {
                    assert!(d.truncated, "{at}: not marked truncated");
                }
                if (start..end).contains(&cut) {
                    let want = reason_for_cut(w, cut - start);
                    assert_eq!((p.of(want), p.events()), (1, 1), "{at}: {p:?}");
                    let d = d.unwrap_or_else(|| panic!("{at}: outer packet lost"));
                    assert_eq!((d.src, d.tunnel), (IpAddr::V4(TUNNEL_SRC), None), "{at}");
                } else if let Some(d) = d.filter(|_| cut >= end) {
                    assert_eq!((d.src, d.tunnel), (inner.src, Some(encap_of(w))), "{at}");
                }
            }
        }
    }
}

/// `w` around a DNS query, with each byte `at` of the tunnel header set to
/// its `v`.
fn patched(w: Wrap, bytes: &[(usize, u8)]) -> Vec<u8> {
    let inner = udp_frame(ip("10.1.0.5"), ip("8.8.8.8"), 40000, 53, None, b"q");
    let mut f = wrap(&inner, w);
    for (at, v) in bytes {
        f[w.header_at() + at] = *v;
    }
    f
}

#[test]
fn broken_headers_are_named_and_the_outer_packet_kept() {
    let gre = Wrap::Gre {
        checksum: false,
        key: false,
        seq: false,
        ip: false,
    };
    let geneve = Wrap::Geneve {
        options: 1,
        ip: false,
    };
    let cases = [
        ("VXLAN without the I flag", patched(Wrap::Vxlan, &[(0, 0)])),
        ("Geneve version 1", patched(geneve, &[(0, 0x41)])),
        ("Geneve options past the end", patched(geneve, &[(0, 0x3f)])),
        ("GRE version 2", patched(gre, &[(1, 2)])),
        ("GRE with routing", patched(gre, &[(0, 0x40)])),
        ("GRE with recursion", patched(gre, &[(0, 0x01)])),
        ("PPTP without a key", patched(Wrap::Pptp, &[(0, 0x10)])),
        (
            "PPTP with another protocol",
            patched(Wrap::Pptp, &[(2, 0x08)]),
        ),
        (
            "ERSPAN II of version 2",
            patched(Wrap::Erspan2, &[(8, 0x20)]),
        ),
        (
            "ERSPAN III of version 1",
            patched(Wrap::Erspan3 { subheader: false }, &[(8, 0x10)]),
        ),
    ];
    let want = [
        Reason::VxlanMalformed,
        Reason::GeneveMalformed,
        Reason::GeneveMalformed,
        Reason::GreMalformed,
        Reason::GreMalformed,
        Reason::GreMalformed,
        Reason::GreMalformed,
        Reason::GreMalformed,
        Reason::ErspanMalformed,
        Reason::ErspanMalformed,
    ];
    for ((what, f), reason) in cases.iter().zip(want) {
        let (d, c, p) = decode(f);
        let d = d.unwrap_or_else(|| panic!("{what}: outer packet lost"));
        assert_eq!((p.of(reason), p.events()), (1, 1), "{what}: {p:?}");
        assert_eq!((d.src, d.tunnel), (IpAddr::V4(TUNNEL_SRC), None), "{what}");
        assert!(Encap::ALL.iter().all(|e| e.count_in(&c) == 0), "{what}");
    }
}

/// Payloads that are no tunnel we strip: the outer packet, no reason.
#[test]
fn other_gre_and_geneve_payloads_stay_plain() {
    let geneve = Wrap::Geneve {
        options: 0,
        ip: false,
    };
    let cases = [
        (
            "GRE carrying MPLS",
            gre_packet(&[0, 0, 0x88, 0x47, 0, 0, 0x11, 0xff]),
        ),
        ("GRE keepalive", gre_packet(&[0, 0, 0, 0])),
        (
            "PPTP acknowledgement",
            gre_packet(&[0x20, 0x81, 0x88, 0x0b, 0, 0, 0, 9, 0, 0, 0, 1]),
        ),
        (
            "PPTP encrypted (MPPE)",
            patched(Wrap::Pptp, &[(18, 0), (19, 0xfd)]),
        ),
        (
            "Geneve carrying NSH",
            patched(geneve, &[(2, 0x89), (3, 0x4f)]),
        ),
        (
            "UDP from port 4789",
            udp_frame(ip("10.1.0.5"), ip("8.8.8.8"), 4789, 53, None, b"q"),
        ),
    ];
    for (what, f) in &cases {
        let (d, c, p) = decode(f);
        let d = d.unwrap_or_else(|| panic!("{what}: lost"));
        assert_eq!(p.events(), 0, "{what}: {p:?}");
        assert_eq!(d.tunnel, None, "{what}");
        assert!(Encap::ALL.iter().all(|e| e.count_in(&c) == 0), "{what}");
    }
}

#[test]
fn a_tunnelled_flow_hashes_as_its_inner_flow() {
    let raw = |f: &[u8]| {
        let data = f.to_vec();
        move || {
            decode::flow_hash(&RawPacket {
                ts_ns: 0,
                orig_len: data.len() as u32,
                link: LinkType::Ethernet,
                data: &data,
            })
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for port in 40000..40032 {
        let a = udp_frame(ip("10.1.0.5"), ip("8.8.8.8"), port, 53, None, b"q");
        let b = udp_frame(ip("8.8.8.8"), ip("10.1.0.5"), 53, port, None, b"r");
        let plain = raw(&a)();
        for w in Wrap::EACH {
            assert_eq!(raw(&wrap(&a, w))(), plain, "{w:?}");
            assert_eq!(raw(&wrap(&b, w))(), plain, "{w:?}, reply");
        }
        seen.insert(plain % 4);
    }
    assert_eq!(
        seen.len(),
        4,
        "inner flows of one tunnel spread over workers"
    );
}

/// Through the engine: a listed name asked inside each tunnel is a hit on
/// the inner client, in its unit; the tunnel endpoints, listed too, are
/// never matched.
#[test]
fn the_engine_matches_inner_hosts_never_tunnel_endpoints() {
    let snap = snapshot_of(
        "t",
        "malware",
        &["bad.example", "192.0.2.1", "192.0.2.2"],
        &[],
    );
    let mut e = gatewatch::testkit::engine(snap, one_unit("U1", "Phòng Một", "10.1.0.0/16"));
    let q = dns_query(7, "www.bad.example.", RecordType::A);
    let frames: Vec<Vec<u8>> = Wrap::EACH
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let host = ip(&format!("10.1.0.{}", i + 1));
            wrap(&udp_frame(host, ip("9.9.9.9"), 40000, 53, None, &q), *w)
        })
        .collect();
    let c = replay_frames(
        &mut e,
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| (T0_US + i as u64, f.as_slice())),
    );
    assert_eq!(c.hits.len(), Wrap::EACH.len(), "{:#?}", c.hits);
    for (i, h) in c.hits.iter().enumerate() {
        assert_eq!(h.host, ip(&format!("10.1.0.{}", i + 1)));
        assert_eq!(
            (h.unit.code.as_str(), h.source),
            ("U1", HitSource::DnsQuery)
        );
        assert_eq!(&*h.observed, "www.bad.example");
    }
    assert_eq!(e.stats.dns_queries, Wrap::EACH.len() as u64);
    assert_eq!(e.stats.lost(), 0);
}

/// A service answering a client that picked port 4789 or 6081 is that
/// service's traffic, not a broken tunnel: only datagrams from a port that
/// is not well-known are read as VXLAN or Geneve.
#[test]
fn an_answer_to_a_tunnel_port_is_not_a_tunnel() {
    let a =
        gatewatch::testkit::dns_response(7, "www.example.org.", &[], "192.0.2.80".parse().unwrap());
    for port in [
        gatewatch::decode::VXLAN_PORT,
        gatewatch::decode::GENEVE_PORT,
    ] {
        for with_option in [false, true] {
            let mut f = udp_frame(ip("8.8.8.8"), ip("10.1.0.5"), 53, port, None, &a);
            if with_option {
                f = with_ipv4_option(&f);
            }
            let (d, counts, problems) = decode(&f);
            let d = d.expect("decoded");
            assert_eq!(d.tunnel, None, "port {port}");
            assert_eq!(d.transport.ports(), (53, port));
            assert_eq!(problems.lost(), 0, "port {port}: {problems:?}");
            assert_eq!((counts.vxlan, counts.geneve), (0, 0));
        }
    }
}
