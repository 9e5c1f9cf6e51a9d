//! Adversarial load for the bounds tests (`tests/adversarial.rs`) and the
//! benchmark (`benches/adversarial.rs`): each attack as frames built in
//! memory, and one way to push them through an engine.
//!
//! - [`flow_collisions`]: SYNs whose tuples collide under a fixed or
//!   XOR-folded hash (source and destination swapped, `sport ^ dport`
//!   constant): the flow index is seeded per process, so they spread.
//! - [`name_flood`]: NetBIOS answers from one internal sender, each naming
//!   240 internal addresses.
//! - [`dns_answer_flood`]: answers for listed names with 16 addresses each,
//!   half of them to a query the host sent (learned), half unsolicited.
//! - [`half_streams`]: connections that each send the start of an HTTP
//!   request that never ends, held for reassembly.

use super::names::NbnsMsg;
use super::tcp::{Conn, SYN, segment};
use super::{dns_query, udp_frame};
use crate::detect::{Engine, FlowRecord, Hit, Sink};
use crate::packet::{LinkType, RawPacket};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{IpAddr, Ipv4Addr};

/// Frames, each with its time in nanoseconds.
pub type Frames = Vec<(i64, Vec<u8>)>;

const T0: i64 = 1_700_000_000_000_000_000;

/// The internal network the attacks come from or name: 10.1.0.0/16.
pub fn internal(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a01_0000 | (i & 0xffff)))
}

/// `n` SYNs of distinct tuples that collide under naive hashes.
pub fn flow_collisions(n: u32) -> Frames {
    let ext = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    (0..n)
        .map(|i| {
            let host = internal(i / 64);
            let sport = 1024 + (i % 64) as u16 * 512 + (i / 64 % 512) as u16;
            let dport = sport ^ 0x5a5a;
            let f = if i % 2 == 0 {
                segment(host, ext, sport, dport, i, SYN, b"")
            } else {
                segment(ext, host, dport, sport, i, SYN, b"")
            };
            (T0 + i64::from(i) * 1_000, f)
        })
        .collect()
}

/// Addresses in one NetBIOS record of [`name_flood`].
pub const FLOOD_NAMES: u32 = 240;

/// `n` positive name query answers from 10.1.255.1 (as a WINS server
/// sends them), each binding a name to 240 internal addresses, as many as
/// a datagram holds. (A registration naming other addresses than its
/// sender's is refused outright.)
pub fn name_flood(n: u32) -> Frames {
    let sender = internal(0xff01);
    (0..n)
        .map(|i| {
            let addrs = (0..FLOOD_NAMES)
                .map(|k| Ipv4Addr::from(0x0a01_0000 | ((i * FLOOD_NAMES + k) & 0xffff)))
                .collect();
            let msg = NbnsMsg {
                opcode: 0,
                response: true,
                name: format!("FLOOD{i}"),
                suffix: 0,
                group: false,
                addrs,
            };
            let bcast = IpAddr::V4(Ipv4Addr::new(10, 1, 255, 255));
            let f = udp_frame(sender, bcast, 137, 137, None, &msg.encode());
            (T0 + i64::from(i) * 1_000, f)
        })
        .collect()
}

/// `n` answers for `a{i}.evil.example` with 16 addresses each from
/// 8.8.8.8 to internal hosts; every other one follows its host's query.
pub fn dns_answer_flood(n: u32) -> Frames {
    let resolver = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
    let mut out = Vec::new();
    for i in 0..n {
        let host = internal(i % 4096);
        let name = format!("a{i}.evil.example");
        let id = i as u16;
        let ts = T0 + i64::from(i) * 1_000;
        if i % 2 == 0 {
            let q = dns_query(id, &name, RecordType::A);
            out.push((ts, udp_frame(host, resolver, 40000, 53, None, &q)));
        }
        let answer = answer(id, &name, i);
        out.push((ts + 1, udp_frame(resolver, host, 53, 40000, None, &answer)));
    }
    out
}

fn answer(id: u16, name: &str, i: u32) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    let owner = Name::from_ascii(name).expect("name");
    m.add_query(Query::query(owner.clone(), RecordType::A));
    for k in 0..16u32 {
        let a = Ipv4Addr::from(0xc600_0000 | ((i * 16 + k) & 0x00ff_ffff));
        m.add_answer(Record::from_rdata(
            owner.clone(),
            3600,
            RData::A(hickory_proto::rr::rdata::A(a)),
        ));
    }
    m.to_vec().expect("encode answer")
}

/// `n` connections that each complete the handshake and send the first
/// 12 KiB of an HTTP request that never ends (no blank line), in 1 KiB
/// segments: every byte waits in reassembly for the rest.
pub fn half_streams(n: u32) -> Frames {
    let server = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 80));
    let mut head = b"GET /upload HTTP/1.1\r\nHost: files.example\r\n".to_vec();
    while head.len() < 12 * 1024 {
        head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let cuts: Vec<usize> = (1..12).map(|k| k * 1024).collect();
    let order: Vec<usize> = (0..12).collect();
    let mut out = Vec::new();
    for i in 0..n {
        let c = Conn::new(internal(i / 16), 30000 + (i % 16) as u16, server, 80);
        let ts = T0 + i64::from(i) * 10_000;
        for (k, f) in c.handshake().into_iter().enumerate() {
            out.push((ts + k as i64, f));
        }
        for (k, f) in c.client_data(&head, &cuts, &order).into_iter().enumerate() {
            out.push((ts + 10 + k as i64, f));
        }
    }
    out
}

/// Counts what the engine reports.
#[derive(Default)]
pub struct Tally {
    pub hits: u64,
    pub flows: u64,
}

impl Sink for Tally {
    fn hit(&mut self, _: Hit) {
        self.hits += 1;
    }
    fn flow(&mut self, _: FlowRecord) {
        self.flows += 1;
    }
}

/// Push `frames` through `e` (Ethernet, times as given).
pub fn push(e: &mut Engine, frames: &Frames, sink: &mut Tally) {
    for (ts, f) in frames {
        let p = RawPacket {
            ts_ns: *ts,
            orig_len: f.len() as u32,
            link: LinkType::Ethernet,
            data: f,
        };
        e.process(&p, sink);
    }
}
