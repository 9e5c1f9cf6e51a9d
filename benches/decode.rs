//! The cost of decoding, plain and inside each tunnel: `decode` and
//! `flow_hash` (the router's share) over the same 256 inner frames (DNS over
//! UDP, TCP segments), bare and wrapped by the test kit.
//!
//! Usage: cargo bench --bench decode -- [ROUNDS]   (default 20,000)

use gatewatch::decode::{DecodeCounters, decode, flow_hash};
use gatewatch::packet::{LinkType, Problems, RawPacket};
use gatewatch::testkit::{Wrap, dns_query, ip, tcp_frame, udp_frame, wrap};
use hickory_proto::rr::RecordType;
use std::hint::black_box;
use std::time::Instant;

fn inner_frames() -> Vec<Vec<u8>> {
    let q = dns_query(7, "www.example.org.", RecordType::A);
    (0..256u16)
        .map(|i| {
            let host = ip(&format!("10.1.{}.{}", i / 200, i % 200 + 1));
            if i % 2 == 0 {
                udp_frame(host, ip("8.8.8.8"), 40000 + i, 53, None, &q)
            } else {
                tcp_frame(host, ip("93.184.216.34"), 50000 + i, 443, 9, &[0u8; 200])
            }
        })
        .collect()
}

fn raw(f: &[u8]) -> RawPacket<'_> {
    RawPacket {
        ts_ns: 0,
        orig_len: f.len() as u32,
        link: LinkType::Ethernet,
        data: f,
    }
}

/// Nanoseconds per frame of `decode` and of `flow_hash` over `frames`.
fn time(frames: &[Vec<u8>], rounds: usize) -> (f64, f64) {
    let (mut c, mut p) = (DecodeCounters::default(), Problems::default());
    let n = (frames.len() * rounds) as f64;
    let t = Instant::now();
    for _ in 0..rounds {
        for f in frames {
            black_box(decode(&raw(black_box(f)), &mut c, &mut p));
        }
    }
    let d = t.elapsed().as_nanos() as f64 / n;
    assert_eq!(p.events(), 0, "{p:?}");
    let t = Instant::now();
    for _ in 0..rounds {
        for f in frames {
            black_box(flow_hash(&raw(black_box(f))));
        }
    }
    (d, t.elapsed().as_nanos() as f64 / n)
}

fn main() {
    let rounds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let plain = inner_frames();
    let (d0, h0) = time(&plain, rounds);
    println!(
        "{:<34} {:>9} {:>9} {:>8}",
        "frames", "decode ns", "hash ns", "% plain"
    );
    println!("{:<34} {d0:>9.1} {h0:>9.1} {:>7.0}%", "plain", 100.0);
    for w in Wrap::EACH {
        let wrapped: Vec<Vec<u8>> = plain.iter().map(|f| wrap(f, w)).collect();
        let (d, h) = time(&wrapped, rounds);
        let label = format!("{w:?}");
        println!(
            "{label:<34} {d:>9.1} {h:>9.1} {:>7.0}%",
            (d0 + h0) / (d + h) * 100.0
        );
    }
}
