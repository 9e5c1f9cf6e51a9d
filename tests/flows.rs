//! The TCP flow table and stream reassembly on crafted captures: messages
//! split over segments and out of order, DNS over TCP framing, overlaps,
//! gaps, SYN floods against the table's bound, timeouts, and the `flow`
//! event a flow that hit is reported with.

use gatewatch::detect::{Engine, EngineOptions, HitSource};
use gatewatch::output::eve::{alert_json, flow_json};
use gatewatch::packet::Reason;
use gatewatch::tcp::flow::{EndReason, FlowConfig, State, TO_CLIENT, TO_SERVER};
use gatewatch::testkit::tcp::{ACK, Conn, SYN};
use gatewatch::testkit::{
    Collector, Seen, client_hello_record, crafted_recipe, dns_query, ip, replay_at_secs, sni_ext,
    udp_frame,
};
use hickory_proto::rr::RecordType;
use serde_json::Value;
use std::net::IpAddr;

const HOST: &str = "10.1.0.5";
const C2: &str = "203.0.113.50";

fn engine_with(block: &[&str], cfg: FlowConfig) -> Engine {
    let options = EngineOptions {
        flows: cfg,
        ..EngineOptions::default()
    };
    crafted_recipe(block, options).engine(1)
}

fn engine(block: &[&str]) -> Engine {
    engine_with(block, FlowConfig::default())
}

/// Frames at `t` seconds, replayed through `e` from a pcap file; the engine
/// is finished (open flows reported) when `finish` is set.
fn run(e: &mut Engine, frames: &[(u64, Vec<u8>)], finish: bool) -> Collector {
    let mut c = replay_at_secs(e, frames);
    if finish {
        e.finish(&mut c);
    }
    c
}

fn at(t: u64, frames: Vec<Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    frames.into_iter().map(|f| (t, f)).collect()
}

fn hello(sni: &str) -> Vec<u8> {
    client_hello_record(&[(10, vec![0, 2, 0, 29]), sni_ext(sni), (13, vec![0; 300])])
}

fn conn(port: u16, server_port: u16) -> Conn {
    Conn::new(ip(HOST), port, ip(C2), server_port)
}

#[test]
fn client_hello_in_three_segments_out_of_order_is_one_sni_hit() {
    let c = conn(50000, 443);
    let rec = hello("c2.bad.example");
    // The SNI straddles the first cut; the pieces arrive 3, 1, 2.
    let cuts = [50, 200];
    let mut frames = c.handshake();
    frames.extend(c.client_data(&rec, &cuts, &[2, 0, 1]));
    frames.extend(c.server_data(&[0x16; 900], &[400]));
    frames.extend(c.close(rec.len(), 900));
    let mut e = engine(&["bad.example"]);
    let out = run(&mut e, &at(1, frames), true);
    assert_eq!(out.hits.len(), 1, "{:?}", out.hits);
    let h = &out.hits[0];
    assert_eq!(h.source, HitSource::TlsSni);
    assert_eq!(&*h.observed, "c2.bad.example");
    assert_eq!(h.host, ip(HOST));
    assert_eq!(e.stats.tls_client_hellos, 1);
    assert_eq!(e.stats.errors_of(Reason::TlsTruncated), 0);
    assert_eq!(e.stats.streams.held, 1, "piece 3 waited for 1 and 2");
    // The flow event: totals each way, linked to the alert by flow_id.
    assert_eq!(out.flows.len(), 1);
    let f = &out.flows[0];
    assert_eq!(Some(f.id), h.flow_id);
    assert_eq!(f.client, (ip(HOST), 50000));
    assert_eq!(f.server, (ip(C2), 443));
    assert_eq!(f.pkts[TO_SERVER], 2 + 3 + 2, "SYN, ACK, 3 data, FIN, ACK");
    assert_eq!(f.pkts[TO_CLIENT], 1 + 2 + 1);
    assert!(f.bytes[TO_SERVER] > rec.len() as u64);
    assert_eq!(f.state, State::Closed);
    assert_eq!(f.alert.indicators, vec![Box::<str>::from("bad.example")]);
    let ev: Value = serde_json::from_str(&flow_json(f, "s1")).unwrap();
    assert_eq!(ev["event_type"], "flow");
    assert_eq!(ev["flow"]["pkts_toserver"], 7);
    assert_eq!(ev["flow"]["state"], "closed");
    assert_eq!(ev["unit"], "U1");
    let alert: Value = serde_json::from_str(&alert_json(h, "s1")).unwrap();
    assert_eq!(alert["flow_id"], ev["flow_id"]);
}

#[test]
fn http_headers_split_over_segments_are_read_whole() {
    let c = conn(50001, 80);
    let req = b"GET /gate.php?id=42 HTTP/1.1\r\nUser-Agent: x\r\nAccept: */*\r\nHost: panel.bad.example\r\n\r\n";
    let mut frames = c.handshake();
    // The Host header is cut in the middle of its name; the two halves
    // arrive in reverse order and the first is retransmitted.
    let parts = c.client_data(req, &[55], &[1, 0, 0]);
    frames.extend(parts);
    let mut e = engine(&["panel.bad.example"]);
    let out = run(&mut e, &at(1, frames), true);
    assert_eq!(out.hits.len(), 1, "{:?}", out.hits);
    assert_eq!(out.hits[0].source, HitSource::HttpHost);
    assert_eq!(e.stats.http_requests, 1);
    assert_eq!(e.stats.errors_of(Reason::HttpTruncated), 0);
    assert_eq!(e.stats.streams.retransmitted, 1);
    let http: Vec<_> = out
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::Http { .. }))
        .collect();
    assert_eq!(http.len(), 1);
}

fn framed(id: u16, name: &str) -> Vec<u8> {
    let m = dns_query(id, name, RecordType::A);
    let mut v = (m.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(&m);
    v
}

#[test]
fn dns_over_tcp_two_messages_in_one_segment_and_one_in_two() {
    let c = Conn::new(ip(HOST), 50002, ip("10.9.9.9"), 53);
    let a = framed(1, "one.example");
    let b = framed(2, "two.bad.example");
    let d = framed(3, "three.example");
    let mut stream = a.clone();
    stream.extend_from_slice(&b);
    stream.extend_from_slice(&d);
    // Segment 1: a + b whole; segments 2 and 3: d cut in its name.
    let cut1 = a.len() + b.len();
    let mut frames = c.handshake();
    frames.extend(c.client_data(&stream, &[cut1, cut1 + 9], &[0, 1, 2]));
    let mut e = engine(&["bad.example"]);
    let out = run(&mut e, &at(1, frames), true);
    let names: Vec<_> = out
        .seen
        .iter()
        .filter_map(|s| match s {
            Seen::DnsQuery { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["one.example", "two.bad.example", "three.example"]);
    assert_eq!(e.stats.errors_of(Reason::DnsTcpPartial), 0);
    assert_eq!(out.hits.len(), 1);
    assert_eq!(out.hits[0].source, HitSource::DnsQuery);
}

#[test]
fn overlapping_segments_with_other_content_are_counted_first_copy_wins() {
    let c = conn(50003, 443);
    let rec = hello("good.example");
    let evil = {
        let mut r = rec.clone();
        let s = r.windows(4).position(|w| w == b"good").unwrap();
        r[s..s + 4].copy_from_slice(b"evil");
        r
    };
    let mut frames = c.handshake();
    // Tail first (held), then the same tail with other bytes, then the head.
    let good = c.client_data(&rec, &[20], &[1, 0]);
    let bad_tail = c.client_data(&evil, &[20], &[1]);
    frames.push(good[0].clone());
    frames.push(bad_tail[0].clone());
    frames.push(good[1].clone());
    let mut e = engine(&["evil.example", "good.example"]);
    let out = run(&mut e, &at(1, frames), true);
    assert_eq!(e.stats.streams.overlap_conflicts, 1);
    assert_eq!(out.hits.len(), 1);
    assert_eq!(&*out.hits[0].observed, "good.example");
}

#[test]
fn a_missing_segment_is_a_counted_gap_not_a_crash() {
    let c = conn(50004, 80);
    let mut body =
        b"POST /upload HTTP/1.1\r\nHost: x.example\r\nContent-Length: 200000\r\n\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'A', 200_000));
    let cuts: Vec<usize> = (1..200).map(|i| i * 1000).collect();
    let mut order: Vec<usize> = (0..200).collect();
    order.remove(5); // never captured
    let mut frames = c.handshake();
    frames.extend(c.client_data(&body, &cuts, &order));
    let mut e = engine(&[C2]);
    let out = run(&mut e, &at(1, frames), true);
    assert!(e.stats.streams.gaps >= 1);
    assert_eq!(e.stats.http_requests, 1);
    // The listed server makes the flow report itself; its gap is in it.
    assert_eq!(out.flows.len(), 1);
    assert!(out.flows[0].gaps >= 1);
    assert!(e.flows().heap_bytes() < 1 << 20);
}

#[test]
fn syn_flood_cannot_push_out_a_flow_that_hit() {
    let cfg = FlowConfig {
        max_flows: 1_000,
        ..FlowConfig::default()
    };
    let mut e = engine_with(&[C2], cfg);
    let c = conn(50005, 443);
    let mut frames = at(1, c.handshake());
    frames.extend(at(1, c.client_data(&[1u8; 100], &[], &[0])));
    for i in 0..50_000u32 {
        let src = IpAddr::from([198, 51, (i >> 16) as u8, (i >> 8) as u8]);
        let f = gatewatch::testkit::tcp::segment(
            src,
            ip("10.1.0.80"),
            1024 + (i % 60_000) as u16,
            80,
            i,
            SYN,
            b"",
        );
        frames.push((2, f));
    }
    frames.extend(at(3, vec![c.from_client(1_101, ACK, b"more")]));
    let out = run(&mut e, &frames, false);
    assert!(e.flows().len() <= 1_000);
    assert!(e.stats.flows.evicted >= 49_000);
    assert!(out.flows.is_empty(), "the hit flow was not evicted");
    let mut rest = Collector::default();
    e.finish(&mut rest);
    assert_eq!(rest.flows.len(), 1);
    let f = &rest.flows[0];
    assert_eq!(f.reason, EndReason::Shutdown);
    assert_eq!(f.pkts[TO_SERVER], 4);
}

#[test]
fn idle_and_hard_timeouts_report_the_flow() {
    let cfg = FlowConfig::default();
    let mut e = engine_with(&[C2], cfg);
    let c = conn(50006, 8443);
    let mut frames = at(0, c.handshake());
    frames.extend(at(1, c.client_data(b"beacon", &[], &[0])));
    // Other traffic long after: the sweep finds the idle flow.
    let other = Conn::new(ip("10.1.0.9"), 40000, ip("198.51.100.7"), 80);
    for i in 0..10u64 {
        frames.extend(at(1_000 + i, other.handshake()));
    }
    let out = run(&mut e, &frames, false);
    assert_eq!(out.flows.len(), 1);
    assert_eq!(out.flows[0].reason, EndReason::Timeout);
    assert_eq!(out.flows[0].state, State::Established);

    // A session kept busy for longer than the hard timeout is reported
    // every hour and tracked afresh.
    let mut e = engine_with(&[C2], cfg);
    let c = conn(50007, 8443);
    let mut frames = at(0, c.handshake());
    let mut seq = 1_001u32;
    for t in (60..7_400).step_by(60) {
        frames.push((t, c.from_client(seq, ACK, b"ping")));
        seq += 4;
    }
    let out = run(&mut e, &frames, true);
    assert_eq!(e.stats.flows.hard_timeouts, 2);
    assert_eq!(out.flows.len(), 3);
    assert_eq!(out.flows[0].reason, EndReason::Hard);
    let pkts: u64 = out
        .flows
        .iter()
        .map(|f| f.pkts[TO_SERVER] + f.pkts[TO_CLIENT])
        .sum();
    assert_eq!(
        pkts,
        frames.len() as u64,
        "every packet in exactly one report"
    );
}

#[test]
fn idle_worker_expires_flows_without_new_packets() {
    let mut e = engine(&[C2]);
    let c = conn(50008, 443);
    let out = run(&mut e, &at(0, c.handshake()), false);
    assert!(out.flows.is_empty());
    let mut later = Collector::default();
    e.idle(10 * 1_000_000_000, &mut later);
    assert!(later.flows.is_empty(), "established flows live 600 s");
    e.idle(700 * 1_000_000_000, &mut later);
    assert_eq!(later.flows.len(), 1);
    assert!(e.flows().is_empty());
}

/// Flows that hold out-of-order data share one reassembly budget: past it,
/// the flow that grew gives up its copies (counted), the total never
/// exceeds the budget, and it returns to zero when the flows end.
#[test]
fn reassembly_memory_has_one_budget() {
    let budget = 32 * 1024;
    let cfg = FlowConfig {
        reassembly_bytes: budget,
        ..FlowConfig::default()
    };
    let mut e = engine_with(&[C2], cfg);
    let body = vec![b'x'; 8000];
    let mut frames = Vec::new();
    for k in 0..64u16 {
        let c = conn(40_000 + k, 80);
        frames.extend(c.handshake());
        // Only the second half arrives: it waits for a hole that never fills.
        frames.extend(c.client_data(&body, &[4000], &[1]));
    }
    let mut c = replay_at_secs(&mut e, &at(1, frames));
    let f = e.stats.flows;
    assert!(f.reassembly_bytes as usize <= budget, "{f:?}");
    assert!(
        f.reassembly_bytes > 0,
        "some flows keep their held data: {f:?}"
    );
    assert!(
        f.reassembly_dropped >= 50,
        "64 flows x 4 KB held, 32 KiB budget: {f:?}"
    );
    e.finish(&mut c);
    assert_eq!(e.flows().len(), 0);
    assert_eq!(e.stats.flows.reassembly_bytes, 0, "{:?}", e.stats.flows);
}

/// UDP to a listed address: one alert, and when the conversation goes
/// quiet a `flow` event with its totals each way, proto UDP. DNS is not
/// tracked as UDP flows.
#[test]
fn udp_c2_is_a_flow_with_totals() {
    let mut e = engine(&[C2]);
    let mut frames = Vec::new();
    for i in 0..5u64 {
        frames.push((
            1 + i,
            udp_frame(ip(HOST), ip(C2), 51_000, 4444, None, &[7; 100]),
        ));
        frames.push((
            1 + i,
            udp_frame(ip(C2), ip(HOST), 4444, 51_000, None, &[9; 300]),
        ));
    }
    let q = dns_query(5, "example.org", RecordType::A);
    frames.push((2, udp_frame(ip(HOST), ip("10.9.9.9"), 52_000, 53, None, &q)));
    // Past the UDP idle timeout: the next tracked packet's sweep ends it.
    let other = udp_frame(ip(HOST), ip("198.51.100.1"), 52_001, 5000, None, b"x");
    frames.push((400, other));
    let c = run(&mut e, &frames, false);
    assert_eq!(c.hits.len(), 1, "{:?}", c.hits);
    assert_eq!(e.stats.flows.udp_created, 2, "DNS is no UDP flow");
    assert_eq!(c.flows.len(), 1, "ended by the sweep, not by finish");
    let f = &c.flows[0];
    assert_eq!(f.proto, 17);
    assert_eq!(f.client, (ip(HOST), 51_000));
    assert_eq!((f.pkts[TO_SERVER], f.pkts[TO_CLIENT]), (5, 5));
    assert_eq!(f.state, State::Established);
    assert_eq!(Some(f.id), c.hits[0].flow_id);
    let ev: Value = serde_json::from_str(&flow_json(f, "s1")).unwrap();
    assert_eq!(ev["proto"], "UDP");
    assert_eq!(ev["flow"]["pkts_toclient"], 5);
}

/// Issue 14, defect 5: the flow index is seeded per table (per process),
/// yet flow ids stay reproducible: two engines give one flow the same id.
#[test]
fn flow_ids_do_not_depend_on_the_index_seed() {
    let c = conn(50100, 443);
    let mut frames = c.handshake();
    frames.extend(c.client_data(&hello("c2.bad.example"), &[], &[0]));
    let ids: Vec<u64> = (0..2)
        .map(|_| {
            let mut e = engine(&["bad.example"]);
            let out = run(&mut e, &at(1, frames.clone()), true);
            out.flows[0].id
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}

/// Issue 14, defect 9: a ClientHello (TLS, or the SSL 2.0 form) does not
/// end inspection by itself: plaintext HTTP after a fake one, in the same
/// segment or a later one, is read. A TLS record after the hello, from
/// either side, still ends it (the session is encrypted from there).
#[test]
fn http_after_a_fake_client_hello_is_still_read() {
    let req: &[u8] = b"GET /gate HTTP/1.1\r\nHost: panel.bad.example\r\n\r\n";
    let mut sslv2 = vec![0x80, 0, 1, 3, 1, 0, 3, 0, 0, 0, 16, 0, 0, 0x2f];
    sslv2.extend_from_slice(&[7; 16]);
    sslv2[1] = (sslv2.len() - 2) as u8;
    let fake_tls = hello("innocent.example");
    for (k, (h, cuts)) in [
        (&fake_tls, vec![fake_tls.len()]),
        (&fake_tls, vec![]),
        (&sslv2, vec![sslv2.len()]),
    ]
    .into_iter()
    .enumerate()
    {
        let c = conn(51000 + k as u16, 443);
        let data = [h.as_slice(), req].concat();
        let mut frames = c.handshake();
        frames.extend(c.client_data(&data, &cuts, &(0..=cuts.len()).collect::<Vec<_>>()));
        let mut e = engine(&["panel.bad.example"]);
        let out = run(&mut e, &at(1, frames), true);
        assert_eq!(out.hits.len(), 1, "case {k}: {:?}", out.hits);
        assert_eq!(out.hits[0].source, HitSource::HttpHost, "case {k}");
        assert_eq!(e.stats.tls_client_hellos, 1, "case {k}");
    }
    // A real session: the server's handshake record ends the inspection,
    // so bytes that only look like HTTP after it are not read.
    let c = conn(51010, 443);
    let mut frames = c.handshake();
    frames.extend(c.client_data(&fake_tls, &[], &[0]));
    frames.extend(c.server_data(&[0x16, 3, 3, 0, 4, 2, 0, 0, 0], &[]));
    frames.extend(c.client_data(
        &[fake_tls.as_slice(), req].concat(),
        &[fake_tls.len()],
        &[1],
    ));
    let mut e = engine(&["panel.bad.example"]);
    let out = run(&mut e, &at(1, frames), true);
    assert!(out.hits.is_empty(), "{:?}", out.hits);
    assert_eq!(e.stats.http_requests, 0);
}
