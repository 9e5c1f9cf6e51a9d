//! Criterion micro-benchmarks of the per-packet hot spots: domain and IP
//! lookups (hit and miss) and the engine on single real packets.

use criterion::{Criterion, criterion_group, criterion_main};
use gatewatch::intel::indicator::Entry;
use gatewatch::intel::{FeedMeta, Severity, SnapshotBuilder};
use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;

fn lookups(c: &mut Criterion) {
    let f = Arc::new(FeedMeta {
        name: "bench".into(),
        category: "malware".into(),
        severity: Severity::High,
    });
    let mut b = SnapshotBuilder::default();
    for i in 0..100_000u32 {
        b.add(Entry::Domain(format!("d{i}.bad{}.example", i % 97)), &f);
        b.add(
            Entry::Ip(IpAddr::from((0x0b00_0000u32 + i * 7).to_be_bytes())),
            &f,
        );
    }
    for i in 0..10_000u32 {
        b.add(
            Entry::Net(
                format!("{}.{}.{}.0/24", 20 + i % 50, i % 250, i / 250)
                    .parse()
                    .unwrap(),
            ),
            &f,
        );
    }
    let s = b.build();
    c.bench_function("domain miss (4 labels)", |x| {
        x.iter(|| s.match_domain(black_box("www.static.good.example")))
    });
    c.bench_function("domain hit (subdomain)", |x| {
        x.iter(|| s.match_domain(black_box("x.d42.bad42.example")))
    });
    let miss: IpAddr = "8.8.4.4".parse().unwrap();
    let hit: IpAddr = IpAddr::from((0x0b00_0000u32 + 700).to_be_bytes());
    c.bench_function("ip miss (exact + cidr)", |x| {
        x.iter(|| s.match_ip(black_box(miss), Some(443)))
    });
    c.bench_function("ip hit (exact)", |x| {
        x.iter(|| s.match_ip(black_box(hit), Some(443)))
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
