//! Synthetic retro-hunt history: what an office's machines resolve, name
//! and contact in a day, for the retro benchmark and tests.
//!
//! Each host-day draws `items` things from fixed universes of names and
//! addresses, skewed toward the popular ones (a few services most machines
//! use, a long tail each uses alone), as DNS questions, answer addresses,
//! TLS server names and contacts. Deterministic for a seed.

use crate::detect::HitSource;
use crate::detect::attribution::Unit;
use crate::detect::history::{DAY_NS, HistoryItem, Seen};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Distinct names and addresses the office draws from.
pub const NAMES: u32 = 200_000;
pub const ADDRESSES: u32 = 300_000;
/// 2025-12-01 00:00 UTC: day 0.
pub const DAY0_NS: i64 = 1_764_547_200_000_000_000;

/// The `i`th name of the universe.
pub fn name(i: u32) -> String {
    format!("svc{i}.site{}.example-{}.com", i % 97, i % 13)
}

/// The `i`th address of the universe (public space, 100.x avoided).
pub fn address(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x2d00_0000u32 + i * 7))
}

/// Host `h` of the office: 10.20.0.0/16.
pub fn host(h: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a14_0000u32 + h + 1))
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Skewed index below `n`: u^3 puts most draws on the first few.
    fn popular(&mut self, n: u32) -> u32 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * f64::from(n)) as u32
    }
}

/// The items of `hosts` machines on `day`, about `items` each: 40% names
/// (three in four DNS questions, the rest TLS server names), 25% answer
/// addresses, 35% contacts on 443, 80 or a high port.
pub fn office_day(day: i64, hosts: u32, items: u32, seed: u64) -> Vec<HistoryItem> {
    let unit = Arc::new(Unit {
        code: "U1".into(),
        name: "Văn phòng".into(),
        nets: Vec::new(),
    });
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (day as u64 + 1) | 1);
    let mut out = Vec::with_capacity((hosts * items) as usize);
    for h in 0..hosts {
        for k in 0..items {
            let ts_ns = DAY0_NS + day * DAY_NS + i64::from(k) * 60_000_000_000 + i64::from(h);
            let pick = rng.next() % 100;
            let (how, port, value) = if pick < 30 {
                (
                    HitSource::DnsQuery,
                    0,
                    Seen::Name(name(rng.popular(NAMES)).into()),
                )
            } else if pick < 40 {
                (
                    HitSource::TlsSni,
                    0,
                    Seen::Name(name(rng.popular(NAMES)).into()),
                )
            } else if pick < 65 {
                (
                    HitSource::DnsAnswer,
                    0,
                    Seen::Address(address(rng.popular(ADDRESSES))),
                )
            } else {
                let port = [443, 443, 443, 80, 8080, 50_000][(rng.next() % 6) as usize];
                (
                    HitSource::Ip,
                    port,
                    Seen::Address(address(rng.popular(ADDRESSES))),
                )
            };
            out.push(HistoryItem {
                ts_ns,
                host: host(h),
                unit: unit.clone(),
                how,
                port,
                value,
            });
        }
    }
    out
}
