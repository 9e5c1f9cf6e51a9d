//! Traffic of infected and clean hosts for the heuristics' tests and
//! benches: scans, DGA bursts, DNS tunnels, beacons, and the clean
//! look-alikes (a busy browser, typos, CDN names that resolve). Every
//! function returns `(microseconds, frame)` pairs from `t0_us` on.

use super::synth::Rng;
use super::tcp::{RST, SYN, SYN_ACK, segment};
use super::{dns_query, udp_frame};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{IpAddr, Ipv4Addr};

pub type Frames = Vec<(u64, Vec<u8>)>;

/// A public address of the test networks' neighbourhood, `i`-th.
pub fn outside(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x2D00_0000 + (i as u32).wrapping_mul(7_919)))
}

/// A DNS response for `name`: `rcode`, and one A record when `a` is given.
pub fn dns_answer(id: u16, name: &str, rcode: ResponseCode, a: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    let owner = Name::from_ascii(name).expect("name");
    m.add_query(Query::query(owner.clone(), RecordType::A));
    m.metadata.response_code = rcode;
    if let Some(a) = a {
        m.add_answer(Record::from_rdata(owner, 60, RData::A(a.into())));
    }
    m.to_vec().expect("encode response")
}

/// `n` characters of `alphabet`, at random.
pub fn random_label(rng: &mut Rng, n: usize, alphabet: &[u8]) -> String {
    (0..n)
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize] as char)
        .collect()
}

pub const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
pub const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

/// SYNs from `host` to each target on `port`, `step_us` apart; every
/// `answer_every`-th target answers with a SYN-ACK, and the others with a
/// reset when `resets`.
pub fn scan(
    host: IpAddr,
    targets: &[(IpAddr, u16)],
    t0_us: u64,
    step_us: u64,
    answer_every: Option<usize>,
    resets: bool,
) -> Frames {
    let mut out = Vec::new();
    for (i, &(dst, port)) in targets.iter().enumerate() {
        let t = t0_us + i as u64 * step_us;
        let sport = 40_000 + (i % 20_000) as u16;
        out.push((t, segment(host, dst, sport, port, 7, SYN, &[])));
        let reply = match answer_every {
            Some(k) if i % k == 0 => Some(SYN_ACK),
            _ if resets => Some(RST),
            _ => None,
        };
        if let Some(f) = reply {
            out.push((t + 300, segment(dst, host, port, sport, 9, f, &[])));
        }
    }
    out
}

/// A browser opening connections to `n` distinct addresses on 443, every
/// one answered, `step_us` apart.
pub fn browser(host: IpAddr, first: u64, n: u64, t0_us: u64, step_us: u64) -> Frames {
    let targets: Vec<_> = (first..first + n).map(|i| (outside(i), 443)).collect();
    scan(host, &targets, t0_us, step_us, Some(1), false)
}

/// `names` looked up by `host` at `resolver`, each answered with `rcode`
/// (an address for NOERROR), `step_us` apart.
pub fn lookups(
    host: IpAddr,
    resolver: IpAddr,
    names: &[String],
    rcode: ResponseCode,
    t0_us: u64,
    step_us: u64,
) -> Frames {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let t = t0_us + i as u64 * step_us;
        let (id, sport) = (i as u16, 30_000 + (i % 30_000) as u16);
        let q = dns_query(id, name, RecordType::A);
        out.push((t, udp_frame(host, resolver, sport, 53, None, &q)));
        let a = (rcode == ResponseCode::NoError).then(|| Ipv4Addr::new(45, 1, 2, 3));
        let r = dns_answer(id, name, rcode, a);
        out.push((t + 2_000, udp_frame(resolver, host, 53, sport, None, &r)));
    }
    out
}

/// `n` random-looking names (12 to 19 characters) under common TLDs: a
/// DGA's domains of the day.
pub fn dga_names(rng: &mut Rng, n: usize) -> Vec<String> {
    let tlds = ["com", "net", "info", "biz", "ru", "xyz"];
    (0..n)
        .map(|_| {
            let len = 12 + rng.below(8) as usize;
            let tld = tlds[rng.below(tlds.len() as u64) as usize];
            format!("{}.{tld}", random_label(rng, len, ALNUM))
        })
        .collect()
}

/// `n` query names carrying data under `zone`: two base32 labels of 30
/// characters, as iodine and dnscat2 send.
pub fn tunnel_names(rng: &mut Rng, zone: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let a = random_label(rng, 30, BASE32);
            let b = random_label(rng, 30, BASE32);
            format!("{a}.{b}.{zone}")
        })
        .collect()
}

/// A beacon: `n` connection attempts (SYN, SYN-ACK) from `host` to
/// `dst:port`, `period_us` apart give or take up to `jitter_us`.
#[derive(Clone, Copy)]
pub struct Beacon {
    pub host: IpAddr,
    pub dst: IpAddr,
    pub port: u16,
    pub n: usize,
    pub t0_us: u64,
    pub period_us: u64,
    pub jitter_us: u64,
}

impl Beacon {
    pub fn frames(&self, rng: &mut Rng) -> Frames {
        let mut out = Vec::new();
        let mut t = self.t0_us;
        let (h, d, p) = (self.host, self.dst, self.port);
        for i in 0..self.n {
            let sport = 50_000 + i as u16;
            out.push((t, segment(h, d, sport, p, 7, SYN, &[])));
            out.push((t + 500, segment(d, h, p, sport, 9, SYN_ACK, &[])));
            let j = match self.jitter_us {
                0 => 0,
                j => rng.below(2 * j),
            };
            t += self.period_us - self.jitter_us + j;
        }
        out
    }
}

/// Frames from several builders, in time order (what a capture holds).
pub fn merge(parts: Vec<Frames>) -> Frames {
    let mut all: Frames = parts.into_iter().flatten().collect();
    all.sort_by_key(|(t, _)| *t);
    all
}
