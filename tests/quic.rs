//! QUIC Initial decryption on real captures: the server names read from the
//! client's UDP/443 datagrams are exactly those tshark lists, each
//! connection reported once, and no datagram of them, cut or mutated, panics.

use gatewatch::capture::file::read_file;
use gatewatch::decode::{Transport, decode};
use gatewatch::protocols::quic::{Outcome, QuicAssembler};
use gatewatch::testkit::{Summary, corpus, summary_path};
use proptest::prelude::*;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

const CAPTURES: [&str; 2] = [
    "suricata-verify/quic-ietf.pcap",
    "zeek/quic__curl-8.1.2-dev-http3-www-google-de.pcap",
];

/// A client datagram to UDP port 443: packet time, flow, payload.
struct Datagram {
    ts_ns: i64,
    src: IpAddr,
    dst: IpAddr,
    key: u64,
    payload: Vec<u8>,
}

fn client_datagrams(path: &Path) -> Vec<Datagram> {
    let mut out = Vec::new();
    let (mut counts, mut problems) = (Default::default(), Default::default());
    let report = read_file(path, |pkt| {
        let Some(d) = decode(pkt, &mut counts, &mut problems) else {
            return;
        };
        if let Transport::Udp {
            src_port,
            dst_port: 443,
            payload,
        } = d.transport
        {
            let mut h = DefaultHasher::new();
            (d.src, src_port, d.dst, 443u16).hash(&mut h);
            out.push(Datagram {
                ts_ns: pkt.ts_ns,
                src: d.src,
                dst: d.dst,
                key: h.finish(),
                payload: payload.to_vec(),
            });
        }
    });
    assert!(!report.skipped_something(), "{}", path.display());
    out
}

/// Every client datagram of both captures, read once for all proptest cases.
fn all_datagrams() -> &'static [Datagram] {
    static ALL: OnceLock<Vec<Datagram>> = OnceLock::new();
    ALL.get_or_init(|| {
        CAPTURES
            .iter()
            .flat_map(|n| client_datagrams(&corpus(n)))
            .collect()
    })
}

#[test]
fn server_names_match_tshark() {
    for name in CAPTURES {
        let path = corpus(name);
        let text = std::fs::read_to_string(summary_path(&path)).unwrap();
        let mut want: Vec<(u64, IpAddr, IpAddr, u16, String)> = Summary::parse(&text).sni;
        assert!(!want.is_empty(), "{name}: no SNI in the summary");
        let mut q = QuicAssembler::new();
        let mut got: Vec<(u64, IpAddr, IpAddr, u16, String)> = Vec::new();
        let mut repeats = 0;
        for d in client_datagrams(&path) {
            match q.offer(d.key, d.ts_ns, &d.payload) {
                Outcome::Sni(sni) => {
                    let sni = String::from_utf8_lossy(sni.unwrap_or_default()).into_owned();
                    match got
                        .iter_mut()
                        .find(|g| (g.1, g.2, &g.4) == (d.src, d.dst, &sni))
                    {
                        Some(g) => g.0 += 1,
                        None => got.push((1, d.src, d.dst, 443, sni)),
                    }
                }
                Outcome::Failed(r) => panic!("{name}: {r}"),
                Outcome::Repeat => repeats += 1,
                Outcome::NotQuic | Outcome::Pending => {}
            }
        }
        want.sort();
        got.sort();
        assert_eq!(got, want, "{name}");
        assert_eq!((q.pending(), q.evicted(), q.expired()), (0, 0, 0), "{name}");
        // curl's second Initial (an ACK under the server's connection ID) is
        // known as the same connection, not decrypted again.
        let want_repeats = if name.contains("curl") { 1 } else { 0 };
        assert_eq!(repeats, want_repeats, "{name}");
    }
}

#[test]
fn real_datagrams_cut_at_every_length() {
    for d in all_datagrams() {
        let mut q = QuicAssembler::new();
        for n in 0..d.payload.len() {
            let _ = q.offer(d.key, d.ts_ns, &d.payload[..n]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn mutated_real_datagrams_never_panic(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let all = all_datagrams();
        let mut d = all[which % all.len()].payload.clone();
        for (at, v) in edits {
            if !d.is_empty() {
                let at = at % d.len();
                d[at] = v;
            }
        }
        let mut q = QuicAssembler::new();
        let _ = q.offer(1, 0, &d);
    }
}
