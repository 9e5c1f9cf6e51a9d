//! DNS-to-connection correlation on crafted captures: a host that resolved a
//! listed domain and then connects to the answer's address (on no list) is
//! a hit on the domain, `correlated_from: dns`; spoofed answers, other hosts,
//! expired links are covered (worker counts: `tests/recipe.rs`).

use gatewatch::detect::{EngineOptions, HitSource};
use gatewatch::output::eve::alert_json;
use gatewatch::testkit::{
    Collector, crafted_engine, crafted_recipe, dns_query, dns_response, ip, replay_at_secs,
    tcp_frame, udp_frame,
};
use hickory_proto::rr::RecordType;

const HOST: &str = "10.1.0.5";
const OTHER: &str = "10.1.0.6";
const RESOLVER: &str = "8.8.8.8";
const C2: &str = "203.0.113.50";

fn query(id: u16, name: &str) -> Vec<u8> {
    udp_frame(
        ip(HOST),
        ip(RESOLVER),
        40000,
        53,
        None,
        &dns_query(id, name, RecordType::A),
    )
}

fn answer(id: u16, name: &str, cnames: &[&str], to: &str) -> Vec<u8> {
    let a = dns_response(id, name, cnames, C2.parse().unwrap());
    udp_frame(ip(RESOLVER), ip(to), 53, 40000, None, &a)
}

fn connect(from: &str, seq: u32) -> Vec<u8> {
    tcp_frame(ip(from), ip(C2), 50000, 443, seq, b"\x16\x03\x01")
}

fn linked(c: &Collector) -> Vec<&gatewatch::detect::Hit> {
    c.hits
        .iter()
        .filter(|h| h.source == HitSource::DnsLink)
        .collect()
}

#[test]
fn connection_after_a_listed_answer_is_a_hit_on_the_domain() {
    let mut e = crafted_engine(&["c2.example"]);
    let c = replay_at_secs(
        &mut e,
        &[
            (0, query(7, "beacon.c2.example")),
            (0, answer(7, "beacon.c2.example", &[], HOST)),
            (5, connect(HOST, 1)),
            (5, connect(HOST, 2)),
            (6, connect(OTHER, 1)),
        ],
    );
    let l = linked(&c);
    assert_eq!(l.len(), 1, "one alert per flow; the other host never asked");
    let h = l[0];
    assert_eq!(h.host, ip(HOST));
    assert_eq!(&*h.indicator.value, "c2.example");
    assert_eq!(&*h.observed, C2);
    assert!(h.outbound);
    let json = alert_json(h, "s");
    assert!(json.contains("\"correlated_from\":\"dns\""), "{json}");
    assert!(json.contains("\"indicator\":\"c2.example\""), "{json}");
    // The query itself was a hit too.
    assert!(c.hits.iter().any(|h| h.source == HitSource::DnsQuery));
}

#[test]
fn a_listed_cname_target_links_the_final_address() {
    let mut e = crafted_engine(&["tracker.bad.example"]);
    let c = replay_at_secs(
        &mut e,
        &[
            (0, query(9, "innocent.example")),
            (
                0,
                answer(
                    9,
                    "innocent.example",
                    &["edge.cdn.example", "tracker.bad.example"],
                    HOST,
                ),
            ),
            (1, connect(HOST, 1)),
        ],
    );
    let l = linked(&c);
    assert_eq!(l.len(), 1);
    assert_eq!(&*l[0].indicator.value, "tracker.bad.example");
}

#[test]
fn spoofed_and_unsolicited_answers_teach_nothing() {
    let mut e = crafted_engine(&["c2.example"]);
    let c = replay_at_secs(
        &mut e,
        &[
            // No query at all.
            (0, answer(1, "c2.example", &[], HOST)),
            // A query, but the answer has another transaction id.
            (1, query(2, "c2.example")),
            (1, answer(3, "c2.example", &[], HOST)),
            (2, connect(HOST, 1)),
        ],
    );
    assert!(linked(&c).is_empty());
    assert_eq!(e.stats.dns_answers_unsolicited, 2);
    assert!(e.links().is_empty());
}

#[test]
fn links_expire() {
    let mut e = crafted_engine(&["c2.example"]);
    // TTL 60 s is raised to the 300 s minimum; a connection after it is not linked.
    let c = replay_at_secs(
        &mut e,
        &[
            (0, query(7, "c2.example")),
            (0, answer(7, "c2.example", &[], HOST)),
            (400, connect(HOST, 1)),
        ],
    );
    assert!(linked(&c).is_empty());
}

/// At the WAN gateway only an internal resolver's own lookups are seen: its
/// DNS hit is blamed on it and marked `via_resolver`, and the address it got
/// finds the real client when that client connects.
#[test]
fn internal_resolver_hits_are_marked_and_its_answers_find_the_client() {
    const LOCAL_RESOLVER: &str = "10.1.0.53";
    let frames = [
        (
            0,
            udp_frame(
                ip(LOCAL_RESOLVER),
                ip(RESOLVER),
                40000,
                53,
                None,
                &dns_query(11, "cdn.c2.example", RecordType::A),
            ),
        ),
        (0, answer(11, "cdn.c2.example", &[], LOCAL_RESOLVER)),
        (3, connect(OTHER, 1)),
    ];
    let resolver = EngineOptions {
        resolvers: vec![ip(LOCAL_RESOLVER)],
        ..EngineOptions::default()
    };
    let mut e = crafted_recipe(&["c2.example"], resolver).engine(0);
    let c = replay_at_secs(&mut e, &frames);
    let q: Vec<_> = c
        .hits
        .iter()
        .filter(|h| h.source == HitSource::DnsQuery)
        .collect();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].host, ip(LOCAL_RESOLVER));
    assert!(q[0].via_resolver);
    assert!(alert_json(q[0], "s").contains("\"via_resolver\":true"));
    let l = linked(&c);
    assert_eq!(l.len(), 1, "{:?}", c.hits);
    assert_eq!(l[0].host, ip(OTHER));
    assert!(l[0].via_resolver);
    assert_eq!(&*l[0].indicator.value, "c2.example");

    // Not configured as a resolver: the link is the resolver's own, the
    // client behind it is not found, and nothing says via_resolver.
    let mut e = crafted_engine(&["c2.example"]);
    let c = replay_at_secs(&mut e, &frames);
    assert!(linked(&c).is_empty());
    assert!(c.hits.iter().all(|h| !h.via_resolver));
}

/// Issue 14, defect 3: an allowlisted host, or an allowlisted address, gives
/// no correlated hit either (the link is learned; the alert is cancelled and
/// counted like any other allowlisted match).
#[test]
fn allowlists_cancel_correlated_hits() {
    use gatewatch::testkit::{engine, one_unit, snapshot_of};
    for allow in [HOST, C2] {
        let snap = snapshot_of("ncsc", "botnet-c2", &["c2.example"], &[allow]);
        let mut e = engine(snap, one_unit("U1", "Phòng Một", "10.1.0.0/16"));
        let c = replay_at_secs(
            &mut e,
            &[
                (0, query(7, "beacon.c2.example")),
                (0, answer(7, "beacon.c2.example", &[], HOST)),
                (5, connect(HOST, 1)),
            ],
        );
        assert!(linked(&c).is_empty(), "allow {allow}: {:?}", c.hits);
        assert!(e.stats.hits_allowlisted >= 1, "allow {allow}");
        assert_eq!(
            e.links().len(),
            1,
            "allow {allow}: the link itself is learned"
        );
    }
}
