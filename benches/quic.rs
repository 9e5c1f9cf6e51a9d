//! Cost of reading a QUIC client Initial (issue 14 moved it here from an
//! ignored test): a new connection's single-datagram ClientHello (keys
//! derived from its connection ID, packet opened, hello read), the same
//! hello split over two Initials, and a later Initial of a connection
//! already reported (no decryption).
//!
//! `cargo bench --bench quic`

use criterion::{Criterion, criterion_group, criterion_main};
use gatewatch::protocols::quic::seal::{crypto, seal_raw};
use gatewatch::protocols::quic::{Outcome, QuicAssembler, Version};
use gatewatch::testkit::{client_hello_record, sni_ext};
use std::hint::black_box;

fn initials(c: &mut Criterion) {
    // The server name after a long extension, so half the hello lacks it.
    let hello = client_hello_record(&[(13, vec![0; 600]), sni_ext("www.example.com")]);
    let msg = &hello[5..];
    let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
    let whole = seal_raw(&dcid, Version::V1, 0, &dcid, &[], 0, &crypto(0, msg));
    let cut = msg.len() / 2;
    let first = seal_raw(
        &dcid,
        Version::V1,
        0,
        &dcid,
        &[],
        0,
        &crypto(0, &msg[..cut]),
    );
    let second = seal_raw(
        &dcid,
        Version::V1,
        0,
        &dcid,
        &[],
        1,
        &crypto(cut, &msg[cut..]),
    );
    let mut q = QuicAssembler::new();
    let mut key = 0u64;
    c.bench_function("quic: new connection, one Initial", |b| {
        b.iter(|| {
            key += 1;
            let o = q.offer(key, 0, black_box(&whole));
            assert!(matches!(o, Outcome::Sni(Some(_))));
        })
    });
    c.bench_function("quic: new connection, hello over two Initials", |b| {
        b.iter(|| {
            key += 1;
            assert_eq!(q.offer(key, 0, black_box(&first)), Outcome::Pending);
            let o = q.offer(key, 1, black_box(&second));
            assert!(matches!(o, Outcome::Sni(Some(_))));
        })
    });
    assert!(matches!(q.offer(u64::MAX, 0, &whole), Outcome::Sni(_)));
    c.bench_function("quic: later Initial of a reported connection", |b| {
        b.iter(|| assert_eq!(q.offer(u64::MAX, 0, black_box(&whole)), Outcome::Repeat))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = initials
}
criterion_main!(benches);
