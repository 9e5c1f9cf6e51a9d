//! Crafted captures (built with etherparse and hickory-proto through the
//! test kit): VLAN, IPv6, IPv4 fragments, CNAME answers, allowlists.

use gatewatch::detect::{Engine, HitSource};
use gatewatch::testkit::{
    Collector, T0_US, client_hello_record, dns_query, dns_response, ip, one_unit, replay_frames,
    snapshot_of, sni_ext, tcp_frame, udp_frame,
};
use hickory_proto::rr::RecordType;

/// `block` and `allow` on one feed; unit U1 over an IPv4 and an IPv6
/// network.
fn engine(block: &[&str], allow: &[&str]) -> Engine {
    let snap = snapshot_of("t", "malware", block, allow);
    let units = one_unit("U1", "Phòng Một", "10.1.0.0/16 fd00:1::/64");
    gatewatch::testkit::engine(snap, units)
}

/// Frames one microsecond apart.
fn run(e: &mut Engine, frames: &[Vec<u8>]) -> Collector {
    replay_frames(
        e,
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| (T0_US + i as u64, f.as_slice())),
    )
}

#[test]
fn vlan_tagged_ipv6_dns_query_hits_with_unit() {
    let mut e = engine(&["bad.example"], &[]);
    let q = dns_query(7, "WWW.Bad.Example.", RecordType::AAAA);
    let c = run(
        &mut e,
        &[udp_frame(
            ip("fd00:1::5"),
            ip("2001:4860::8888"),
            40000,
            53,
            Some(100),
            &q,
        )],
    );
    assert_eq!(c.hits.len(), 1);
    let h = &c.hits[0];
    assert_eq!(h.host, ip("fd00:1::5"));
    assert_eq!(h.unit.code, "U1");
    assert_eq!(&*h.observed, "www.bad.example");
    assert_eq!(h.vlan, Some(100));
    assert_eq!(h.source, HitSource::DnsQuery);
    assert_eq!(e.stats.decode.vlan_tagged, 1);
    assert_eq!(e.stats.decode.ipv6, 1);
}

#[test]
fn listed_cname_target_in_answer_blames_the_client() {
    let mut e = engine(&["c2.example"], &[]);
    let r = dns_response(
        9,
        "innocent.example",
        &["edge.c2.example"],
        "198.51.100.9".parse().unwrap(),
    );
    let c = run(
        &mut e,
        &[udp_frame(
            ip("8.8.8.8"),
            ip("10.1.2.3"),
            53,
            40000,
            None,
            &r,
        )],
    );
    assert_eq!(c.hits.len(), 1);
    assert_eq!(c.hits[0].host, ip("10.1.2.3"));
    assert_eq!(c.hits[0].source, HitSource::DnsAnswer);
    assert_eq!(&*c.hits[0].indicator.value, "c2.example");
}

#[test]
fn inbound_from_listed_address_blames_the_internal_end_once_per_flow() {
    let mut e = engine(&["203.0.113.0/24"], &[]);
    let f = tcp_frame(ip("203.0.113.50"), ip("10.1.0.9"), 443, 50000, 1, b"x");
    let c = run(&mut e, &[f.clone(), f.clone(), f]);
    assert_eq!(c.hits.len(), 1);
    assert_eq!(c.hits[0].host, ip("10.1.0.9"));
    assert!(!c.hits[0].outbound);
    assert_eq!(e.stats.ip_hit_packets_repeat, 2);
}

#[test]
fn ipv4_fragments_first_matched_later_counted() {
    let mut e = engine(&["bad.example"], &[]);
    let q = dns_query(1, "bad.example", RecordType::A);
    let mut first = udp_frame(ip("10.1.0.7"), ip("8.8.8.8"), 5000, 53, None, &q);
    first[14 + 6] |= 0x20; // more fragments
    let mut later = first.clone();
    later[14 + 6] = 0x00;
    later[14 + 7] = 0x10; // offset 16 * 8 bytes
    let c = run(&mut e, &[first, later]);
    assert_eq!(e.stats.decode.ip_fragments_first, 1);
    assert_eq!(e.stats.decode.ip_fragments_later, 1);
    assert_eq!(c.hits.len(), 1);
}

#[test]
fn allowlist_suppresses_and_counts() {
    let mut e = engine(
        &["bad.example", "198.51.100.1"],
        &["ok.bad.example", "10.1.9.0/24"],
    );
    let c = run(
        &mut e,
        &[
            udp_frame(
                ip("10.1.0.1"),
                ip("8.8.8.8"),
                5000,
                53,
                None,
                &dns_query(1, "ok.bad.example", RecordType::A),
            ),
            tcp_frame(ip("10.1.9.9"), ip("198.51.100.1"), 5000, 80, 1, b""),
            udp_frame(
                ip("10.1.0.1"),
                ip("8.8.8.8"),
                5000,
                53,
                None,
                &dns_query(2, "x.bad.example", RecordType::A),
            ),
        ],
    );
    assert_eq!(c.hits.len(), 1);
    assert_eq!(&*c.hits[0].observed, "x.bad.example");
    assert_eq!(e.stats.hits_allowlisted, 2);
}

#[test]
fn external_only_match_is_counted_not_alerted() {
    let mut e = engine(&["bad.example"], &[]);
    let q = dns_query(1, "bad.example", RecordType::A);
    let c = run(
        &mut e,
        &[udp_frame(
            ip("198.18.0.1"),
            ip("8.8.8.8"),
            5000,
            53,
            None,
            &q,
        )],
    );
    assert!(c.hits.is_empty());
    assert_eq!(e.stats.hits_without_internal_host, 1);
}

#[test]
fn http_url_pattern_and_sni() {
    let mut e = engine(&["evil.example/gate.php", "c2.example"], &[]);
    let req = b"POST /gate.php?id=1 HTTP/1.1\r\nHost: EVIL.example\r\n\r\n";
    let hello = client_hello_record(&[(10, vec![0, 2, 0, 29]), sni_ext("api.c2.example")]);
    let c = run(
        &mut e,
        &[
            tcp_frame(ip("10.1.0.2"), ip("192.0.2.80"), 51000, 8080, 1, req),
            tcp_frame(ip("10.1.0.3"), ip("192.0.2.44"), 51001, 8443, 1, &hello),
        ],
    );
    let got: Vec<(HitSource, String)> = c
        .hits
        .iter()
        .map(|h| (h.source, h.observed.to_string()))
        .collect();
    assert_eq!(
        got,
        vec![
            (HitSource::HttpUrl, "evil.example/gate.php?id=1".to_string()),
            (HitSource::TlsSni, "api.c2.example".to_string()),
        ]
    );
}
