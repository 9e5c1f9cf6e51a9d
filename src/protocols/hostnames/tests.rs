//! Host-name parsing over messages built by the test kit: which address
//! each name is bound to, what is skipped, and that no input panics.

use super::*;
use crate::testkit::names::{
    DHCPACK, DHCPDISCOVER, DHCPINFORM, DHCPREQUEST, DhcpMsg, NbnsMsg, local_name,
};
use crate::testkit::{dhcp_request, mdns_announcement, nbns_registration};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const MAC: [u8; 6] = [0x3c, 0x52, 0x82, 0x1a, 0x2b, 0x3c];
const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const BCAST: IpAddr = IpAddr::V4(Ipv4Addr::BROADCAST);

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Parse as a client's broadcast to the server (68 -> 67).
fn dhcp(payload: &[u8]) -> Result<Vec<HostName>, Reason> {
    names(ANY, BCAST, 68, 67, payload)
}

fn names(
    src: IpAddr,
    dst: IpAddr,
    sp: u16,
    dp: u16,
    payload: &[u8],
) -> Result<Vec<HostName>, Reason> {
    let mut out = Vec::new();
    let n = parse(src, dst, sp, dp, payload, &mut out)?;
    assert_eq!(n, out.len());
    Ok(out)
}

fn hn(ip_s: &str, name: &str, mac: Option<[u8; 6]>, source: NameSource) -> HostName {
    HostName {
        ip: ip(ip_s),
        name: name.into(),
        mac,
        source,
    }
}

#[test]
fn ports_and_sources() {
    assert!(is_name_port(68, 67) && is_name_port(67, 67) && is_name_port(137, 137));
    assert!(is_name_port(5353, 5353) && is_name_port(51000, 5353));
    assert!(!is_name_port(53, 51000) && !is_name_port(443, 51000));
    for s in NameSource::ALL {
        assert_eq!(NameSource::parse(s.as_str()), Some(s));
    }
    assert_eq!(NameSource::DhcpFqdn.as_str(), "dhcp_fqdn");
}

#[test]
fn request_binds_option_12_to_option_50() {
    let p = dhcp_request(MAC, 7, Some(v4("10.20.1.13")), Some("PC-KeToan01"), None);
    assert_eq!(
        dhcp(&p).unwrap(),
        [hn("10.20.1.13", "PC-KeToan01", Some(MAC), NameSource::Dhcp)]
    );
    // Renewing: ciaddr set, no option 50; ciaddr wins over option 50.
    let mut m = DhcpMsg::new(DHCPREQUEST, MAC, 8).host_name("pc2");
    m.ciaddr = v4("10.20.1.14");
    assert_eq!(dhcp(&m.encode()).unwrap()[0].ip, ip("10.20.1.14"));
    let m = m.requested_ip(v4("10.20.1.99"));
    assert_eq!(dhcp(&m.encode()).unwrap()[0].ip, ip("10.20.1.14"));
    // No address at all (or a DISCOVER): nothing to bind the name to.
    assert_eq!(
        dhcp(&dhcp_request(MAC, 9, None, Some("pc3"), None)),
        Ok(vec![])
    );
    let disc = DhcpMsg::new(DHCPDISCOVER, MAC, 9).host_name("pc3");
    assert_eq!(dhcp(&disc.encode()), Ok(vec![]));
    // A non-Ethernet chaddr gives no MAC.
    let mut p = dhcp_request(MAC, 7, Some(v4("10.20.1.13")), Some("pc"), None);
    p[1] = 6; // IEEE 802
    assert_eq!(dhcp(&p).unwrap()[0].mac, None);
}

#[test]
fn inform_uses_ciaddr_or_its_own_source() {
    let mut m = DhcpMsg::new(DHCPINFORM, MAC, 1).host_name("SRV-FILE");
    m.ciaddr = v4("10.20.2.5");
    let got = names(ip("10.20.2.5"), ip("10.0.0.1"), 68, 67, &m.encode()).unwrap();
    assert_eq!(
        got,
        [hn("10.20.2.5", "SRV-FILE", Some(MAC), NameSource::Dhcp)]
    );
    // ciaddr left empty: the client's own source address, unless relayed.
    m.ciaddr = Ipv4Addr::UNSPECIFIED;
    let got = names(ip("10.20.2.6"), ip("10.0.0.1"), 68, 67, &m.encode()).unwrap();
    assert_eq!(got[0].ip, ip("10.20.2.6"));
    let relayed = m.relayed_by(v4("10.20.2.1")).encode();
    assert_eq!(
        names(ip("10.20.2.1"), ip("10.0.0.1"), 67, 67, &relayed),
        Ok(vec![])
    );
}

#[test]
fn ack_binds_echoed_names_to_yiaddr() {
    let mut m = DhcpMsg::new(DHCPACK, MAC, 3).host_name("PC-VanThu");
    m.yiaddr = v4("10.20.3.40");
    let got = names(ip("10.0.0.1"), BCAST, 67, 68, &m.encode()).unwrap();
    assert_eq!(
        got,
        [hn("10.20.3.40", "PC-VanThu", Some(MAC), NameSource::Dhcp)]
    );
    // The usual ACK carries no client name: nothing, and no error.
    let mut plain = DhcpMsg::new(DHCPACK, MAC, 3);
    plain.yiaddr = v4("10.20.3.40");
    assert_eq!(
        names(ip("10.0.0.1"), BCAST, 67, 68, &plain.encode()),
        Ok(vec![])
    );
}

#[test]
fn option_81_in_both_encodings() {
    let at = Some(v4("10.20.1.13"));
    let fq = |name: &str| hn("10.20.1.13", name, Some(MAC), NameSource::DhcpFqdn);
    // Wire format, fully qualified, next to option 12: both kept.
    let p = dhcp_request(MAC, 1, at, Some("PC01"), Some("PC01.so-tttt.gov.vn"));
    assert_eq!(
        dhcp(&p).unwrap(),
        [
            hn("10.20.1.13", "PC01", Some(MAC), NameSource::Dhcp),
            fq("PC01.so-tttt.gov.vn")
        ]
    );
    let base = DhcpMsg::new(DHCPREQUEST, MAC, 2).requested_ip(v4("10.20.1.13"));
    // Wire format, partial (no root label).
    let p = base.clone().fqdn_wire("pc01", false).encode();
    assert_eq!(dhcp(&p).unwrap(), [fq("pc01")]);
    // ASCII (E clear), with a trailing dot and a NUL some clients add.
    let p = base.clone().fqdn_ascii("PC01.so-tttt.gov.vn.\0").encode();
    assert_eq!(dhcp(&p).unwrap(), [fq("PC01.so-tttt.gov.vn")]);
    // An empty name asks the server to pick one: nothing announced.
    assert_eq!(dhcp(&base.clone().fqdn_ascii("").encode()), Ok(vec![]));
    assert_eq!(
        dhcp(&base.clone().option(81, &[4, 0, 0, 0]).encode()),
        Ok(vec![])
    );
    // Broken wire names: a compression pointer, a label past the end,
    // bytes after the root, fewer than three header bytes.
    for bad in [
        &[4u8, 0, 0, 3, b'p', b'c', b'1', 0xC0, 3][..],
        &[4, 0, 0, 9, b'p', b'c'],
        &[4, 0, 0, 2, b'p', b'c', 0, 1],
        &[4, 0],
    ] {
        let p = base.clone().option(81, bad).encode();
        assert_eq!(dhcp(&p), Err(Reason::HostNameMalformed), "{bad:?}");
    }
}

#[test]
fn relayed_request_reads_like_a_local_one() {
    let local = DhcpMsg::new(DHCPREQUEST, MAC, 5)
        .requested_ip(v4("10.30.7.21"))
        .host_name("KT-01");
    let relayed = local.clone().relayed_by(v4("10.30.7.1")).encode();
    let got = names(ip("10.30.7.1"), ip("10.0.0.10"), 67, 67, &relayed).unwrap();
    assert_eq!(got, dhcp(&local.encode()).unwrap());
    assert_eq!(
        got,
        [hn("10.30.7.21", "KT-01", Some(MAC), NameSource::Dhcp)]
    );
}

#[test]
fn split_and_padded_options() {
    // RFC 3396: one option split in several instances is concatenated.
    let p = DhcpMsg::new(DHCPREQUEST, MAC, 1)
        .requested_ip(v4("10.20.1.13"))
        .option(0, &[])
        .option(12, b"PC-")
        .option(12, b"KETOAN")
        .encode();
    // (code 0 with a zero length reads as two pads: harmless.)
    assert_eq!(dhcp(&p).unwrap()[0].name, "PC-KETOAN");
    let p = dhcp_request(MAC, 1, Some(v4("10.20.1.13")), Some("PC01\0"), None);
    assert_eq!(dhcp(&p).unwrap()[0].name, "PC01");
}

#[test]
fn names_unsafe_to_show_are_rejected_and_counted() {
    let at = Some(v4("10.20.1.13"));
    let long = "a".repeat(MAX_NAME_LEN + 1);
    for bad in ["PC\u{7}01", "PC\u{202E}10", "\u{85}x", &long, "\0"] {
        let p = dhcp_request(MAC, 1, at, Some(bad), None);
        assert_eq!(dhcp(&p), Err(Reason::HostNameRejected), "{bad:?}");
    }
    let p = DhcpMsg::new(DHCPREQUEST, MAC, 1)
        .requested_ip(v4("10.20.1.13"))
        .option(12, b"PC\xff01")
        .encode();
    assert_eq!(dhcp(&p), Err(Reason::HostNameRejected));
    // A bad option 12 next to a good option 81: the good one is kept.
    let p = dhcp_request(MAC, 1, at, Some("a\tb"), Some("pc01.local.vn"));
    assert_eq!(dhcp(&p).unwrap().len(), 1);
    // Vietnamese names, spaces and case are kept exactly.
    let ok = "Máy Kế Toán-01";
    let p = dhcp_request(MAC, 1, at, Some(ok), None);
    assert_eq!(dhcp(&p).unwrap()[0].name, ok);
    assert_eq!(
        clean_name("a".repeat(MAX_NAME_LEN).as_bytes())
            .unwrap()
            .len(),
        253
    );
}

#[test]
fn broken_dhcp_is_malformed_and_leaves_out_untouched() {
    let good = dhcp_request(MAC, 1, Some(v4("10.20.1.13")), Some("PC01"), None);
    let mut cookie = good.clone();
    cookie[236] = 0;
    let mut op = good.clone();
    op[0] = 7;
    let ack_from_client = {
        let mut m = DhcpMsg::new(DHCPACK, MAC, 1).host_name("x");
        m.op = 1;
        m.yiaddr = v4("10.20.1.13");
        m.encode()
    };
    let bad_50 = DhcpMsg::new(DHCPREQUEST, MAC, 1)
        .option(50, &[10, 20, 1])
        .host_name("x")
        .encode();
    for p in [&good[..239], &cookie, &op, &ack_from_client, &bad_50] {
        let mut out = vec![hn("10.0.0.1", "kept", None, NameSource::Mdns)];
        let r = parse(ANY, BCAST, 68, 67, p, &mut out);
        assert_eq!(r, Err(Reason::HostNameMalformed));
        assert_eq!(out.len(), 1, "nothing pushed on error");
    }
    // An option whose length runs past the end of the datagram.
    let end = good.iter().rposition(|&b| b == 255).unwrap();
    let mut cut = good[..end].to_vec();
    cut.extend_from_slice(&[12, 40, b'x']);
    assert_eq!(dhcp(&cut), Err(Reason::HostNameMalformed));
    // Without the end option (and padding) the list still reads.
    assert_eq!(dhcp(&good[..end]).unwrap().len(), 1);
}

#[test]
fn netbios_registration_refresh_and_answers() {
    let nb = |s: &str, n: &str| hn(s, n, None, NameSource::Netbios);
    let reg = nbns_registration("PC-KETOAN01", v4("10.20.1.13"));
    let got = names(ip("10.20.1.13"), ip("10.20.1.255"), 137, 137, &reg).unwrap();
    assert_eq!(got, [nb("10.20.1.13", "PC-KETOAN01")]);
    let msg = |opcode: u8, response: bool, suffix: u8, group: bool, addrs: &[&str]| {
        NbnsMsg {
            opcode,
            response,
            name: "SRV-HOSO".into(),
            suffix,
            group,
            addrs: addrs.iter().map(|a| v4(a)).collect(),
        }
        .encode()
    };
    let parse_nb = |p: &[u8]| names(ip("10.20.1.20"), ip("10.0.0.2"), 137, 137, p);
    // Refresh (RFC opcode 8, Windows 9), server suffix, multi-homed.
    for op in [8, 9] {
        let got = parse_nb(&msg(op, false, 0x20, false, &["10.20.1.20"]));
        assert_eq!(got.unwrap(), [nb("10.20.1.20", "SRV-HOSO")]);
    }
    let got = parse_nb(&msg(15, false, 0, false, &["10.20.1.20", "10.21.0.20"])).unwrap();
    assert_eq!(
        got,
        [nb("10.20.1.20", "SRV-HOSO"), nb("10.21.0.20", "SRV-HOSO")]
    );
    // A WINS server's positive answer names the queried host's address.
    let got = parse_nb(&msg(0, true, 0, false, &["10.20.1.20"])).unwrap();
    assert_eq!(got, [nb("10.20.1.20", "SRV-HOSO")]);
    // Group names, other suffixes, releases, queries: no machine name.
    for p in [
        msg(5, false, 0, true, &["10.20.1.20"]),
        msg(5, false, 0x1B, false, &["10.20.1.20"]),
        msg(6, false, 0, false, &["10.20.1.20"]),
        msg(0, false, 0, false, &[]),
    ] {
        assert_eq!(parse_nb(&p), Ok(vec![]));
    }
    // Issue 14, defect 4: a request from another machine naming this
    // address is not believed; an answer (a WINS server's) is.
    let foreign = |p: &[u8]| names(ip("10.20.1.99"), ip("10.0.0.2"), 137, 137, p);
    assert_eq!(
        foreign(&msg(5, false, 0, false, &["10.20.1.20"])),
        Err(Reason::HostNameRejected)
    );
    assert_eq!(
        foreign(&msg(0, true, 0, false, &["10.20.1.20"])).unwrap(),
        [nb("10.20.1.20", "SRV-HOSO")]
    );
    // A negative answer (rcode 3).
    let mut neg = msg(0, true, 0, false, &[]);
    neg[3] |= 3;
    assert_eq!(parse_nb(&neg), Ok(vec![]));
}

#[test]
fn broken_netbios_is_malformed() {
    let reg = nbns_registration("PC01", v4("10.20.1.13"));
    let nb = |p: &[u8]| names(ANY, ANY, 137, 137, p);
    let mut bad_letter = reg.clone();
    bad_letter[13] = b'Z';
    let mut forward_ptr = reg.clone();
    let ptr = reg.len() - 18; // the additional record's pointer
    forward_ptr[ptr + 1] = 200;
    let mut odd_rdata = reg.clone();
    let n = odd_rdata.len();
    odd_rdata[n - 7] = 5; // RDLENGTH 5
    odd_rdata.pop();
    for p in [
        &reg[..11],
        &reg[..reg.len() - 1],
        &bad_letter,
        &forward_ptr,
        &odd_rdata,
    ] {
        assert_eq!(nb(p), Err(Reason::HostNameMalformed));
    }
    // A space-only or control-character name is refused, not shown.
    let mut ctl = nbns_registration("PC\u{1}", v4("10.20.1.13"));
    assert_eq!(nb(&ctl), Err(Reason::HostNameRejected));
    ctl = nbns_registration("", v4("10.20.1.13"));
    assert_eq!(nb(&ctl), Err(Reason::HostNameRejected));
}

#[test]
fn mdns_announcement_names_both_addresses() {
    let addrs = [ip("10.20.5.31"), ip("2001:db8:20::31"), ip("fe80::1")];
    let p = mdns_announcement("Lans-MacBook-Pro", &addrs);
    let md = |s: &str, n: &str| hn(s, n, None, NameSource::Mdns);
    let got = names(ip("10.20.5.31"), ip("224.0.0.251"), 5353, 5353, &p).unwrap();
    // Case kept; the PTR record and the link-local address give nothing.
    assert_eq!(
        got,
        [
            md("10.20.5.31", "Lans-MacBook-Pro"),
            md("2001:db8:20::31", "Lans-MacBook-Pro")
        ]
    );
    let p = mdns_announcement("Máy-Kế-Toán.phong2", &addrs[..1]);
    let v6 = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb));
    let got = names(ip("fe80::2"), v6, 5353, 5353, &p).unwrap();
    assert_eq!(got, [md("10.20.5.31", "Máy-Kế-Toán.phong2")]);
}

#[test]
fn mdns_queries_goodbyes_and_other_names_give_nothing() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{RData, Record, RecordType, rdata::A};
    let mdns = |p: &[u8]| names(ip("10.20.5.31"), ip("224.0.0.251"), 5353, 5353, p);
    let mut q = Message::new(0, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(local_name("printer"), RecordType::A));
    assert_eq!(mdns(&q.to_vec().unwrap()), Ok(vec![]));
    let a = RData::A(A(v4("10.20.5.31")));
    for (owner, ttl) in [
        (local_name("pc"), 0),
        (
            hickory_proto::rr::Name::from_ascii("pc.example.vn.").unwrap(),
            120,
        ),
        (hickory_proto::rr::Name::from_ascii("local.").unwrap(), 120),
    ] {
        let mut m = Message::new(0, MessageType::Response, OpCode::Query);
        m.add_answer(Record::from_rdata(owner, ttl, a.clone()));
        assert_eq!(mdns(&m.to_vec().unwrap()), Ok(vec![]));
    }
    // The additional section counts too (answers to a PTR query).
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.add_additional(Record::from_rdata(local_name("nas"), 120, a));
    assert_eq!(mdns(&m.to_vec().unwrap()).unwrap()[0].name, "nas");
}

#[test]
fn mdns_cut_after_its_first_record_keeps_it() {
    let addrs = [ip("10.20.5.31"), ip("2001:db8:20::31")];
    let p = mdns_announcement("pc", &addrs);
    let mdns = |p: &[u8]| names(ANY, ANY, 5353, 5353, p);
    let got = mdns(&p[..p.len() - 3]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(mdns(&p[..20]), Err(Reason::HostNameMalformed));
}

/// Every message of these tests, with the ports it travels on.
fn samples() -> Vec<(u16, u16, Vec<u8>)> {
    let at = Some(v4("10.20.1.13"));
    let mut ack = DhcpMsg::new(DHCPACK, MAC, 3)
        .host_name("PC")
        .fqdn_wire("pc.vn", true);
    ack.yiaddr = v4("10.20.3.40");
    vec![
        (
            68,
            67,
            dhcp_request(MAC, 1, at, Some("PC01"), Some("PC01.so.gov.vn")),
        ),
        (67, 68, ack.encode()),
        (137, 137, nbns_registration("PC-KETOAN01", v4("10.20.1.13"))),
        (
            137,
            137,
            NbnsMsg {
                opcode: 0,
                response: true,
                name: "SRV".into(),
                suffix: 0x20,
                group: false,
                addrs: vec![v4("10.1.1.1"), v4("10.1.1.2")],
            }
            .encode(),
        ),
        (
            5353,
            5353,
            mdns_announcement("pc", &[ip("10.20.5.31"), ip("2001:db8::1")]),
        ),
    ]
}

#[test]
fn truncated_at_every_length_never_panics_nor_invents_names() {
    for (sp, dp, p) in samples() {
        let full = names(ANY, ANY, sp, dp, &p).unwrap();
        assert!(!full.is_empty());
        for cut in 0..p.len() {
            if let Ok(got) = names(ANY, ANY, sp, dp, &p[..cut]) {
                assert!(
                    got.iter().all(|n| full.contains(n)),
                    "{sp}: cut at {cut}: {got:?}"
                );
            }
        }
        // Each byte flipped in turn: no panic, a bounded answer.
        for i in 0..p.len() {
            let mut m = p.clone();
            m[i] ^= 0xA5;
            if let Ok(got) = names(ANY, ANY, sp, dp, &m) {
                assert!(got.len() <= 8);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..700),
        port in prop::sample::select(vec![67u16, 68, 137, 5353]),
    ) {
        let mut out = Vec::new();
        let r = parse(ANY, ANY, port, 40000, &data, &mut out);
        match r {
            Ok(n) => prop_assert_eq!(n, out.len()),
            Err(_) => prop_assert!(out.is_empty()),
        }
    }

    #[test]
    fn random_options_after_a_valid_header_never_panic(
        opts in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut p = dhcp_request(MAC, 1, None, None, None);
        p.truncate(240);
        p.extend_from_slice(&opts);
        let mut out = Vec::new();
        let _ = parse(ANY, ANY, 68, 67, &p, &mut out);
        for n in &out {
            prop_assert!(clean_name(n.name.as_bytes()).is_ok());
        }
    }
}
