//! Beaconing: an implant calling home at a steady period. Per (internal
//! host, external address, port), the times of connection attempts (SYNs);
//! attempts closer than `min_period_s` to the last are one burst (a client
//! opening two connections at once), a gap longer than `max_period_s`
//! starts the series over. When the last `min_connections - 1` gaps have a
//! standard deviation within `max_jitter` of their mean, the destination
//! is reported once, as a low-severity suspicion: update checks, mail
//! polling and monitoring agents are periodic too, which is why it counts
//! the host as an offender only when configured.

use super::settings::BeaconSettings;
use super::table::{Keep, Table};
use super::{Finding, Heuristic, key};
use serde_json::json;
use std::net::IpAddr;

/// Gaps kept per series (the most `min_connections - 1` may use).
const GAPS: usize = 12;

#[derive(Clone, Copy, Default)]
struct Series {
    last: i64,
    /// Gaps in milliseconds, a ring.
    gaps: [u32; GAPS],
    n: u16,
    reported: bool,
}

impl Keep for Series {
    /// A series under way is worth more than a destination seen once.
    fn worth(&self) -> u32 {
        u32::from(self.n) + u32::from(self.last != 0)
    }
}

/// Most bits of each generation of the first-sighting filter (2^20 bits:
/// 128 KiB); a small table gets a filter of eight bits an entry.
const SEEN_BITS: u32 = 20;

pub(super) struct Beacons {
    series: Table<Series>,
    /// Destinations seen once, in two generations of `max_period_s` each:
    /// a series starts at the second connection, so the many destinations
    /// a host reaches once never take (or evict) a table entry.
    seen: [Box<[u64]>; 2],
    /// log2 of the bits of each generation.
    seen_bits: u32,
    generation_at: i64,
}

/// Mean and standard deviation of the newest `k` gaps, in seconds.
fn spread(s: &Series, k: usize) -> (f64, f64) {
    let n = usize::from(s.n);
    let gaps = (n - k..n).map(|i| f64::from(s.gaps[i % GAPS]) / 1e3);
    let mean = gaps.clone().sum::<f64>() / k as f64;
    let var = gaps.map(|g| (g - mean).powi(2)).sum::<f64>() / k as f64;
    (mean, var.sqrt())
}

impl Beacons {
    pub fn new(entries: usize) -> Beacons {
        let seen_bits = (entries.max(1) * 8)
            .next_power_of_two()
            .ilog2()
            .clamp(6, SEEN_BITS);
        let bits = || vec![0u64; 1 << (seen_bits - 6)].into_boxed_slice();
        Beacons {
            series: Table::new(entries),
            seen: [bits(), bits()],
            seen_bits,
            generation_at: i64::MIN,
        }
    }

    fn bit(&self, k: u64) -> (usize, u64) {
        let i = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.seen_bits)) as usize;
        (i / 64, 1 << (i % 64))
    }

    /// Whether `k` was seen in this generation or the last; marks it.
    fn seen_before(&mut self, k: u64, ts: i64, max: i64) -> bool {
        if ts.saturating_sub(self.generation_at) > max {
            self.seen.swap(0, 1);
            self.seen[0].fill(0);
            self.generation_at = ts;
        }
        let (w, b) = self.bit(k);
        let before = (self.seen[0][w] | self.seen[1][w]) & b != 0;
        self.seen[0][w] |= b;
        before
    }

    pub fn evicted(&self) -> u64 {
        self.series.evicted
    }

    pub fn live(&self) -> usize {
        self.series.live()
    }

    #[inline]
    pub fn prefetch(&self, host: IpAddr, dst: IpAddr, dp: u16) {
        let (w, _) = self.bit(key((host, dst, dp)));
        crate::packet::prefetch_read(&self.seen[0][w]);
        crate::packet::prefetch_read(&self.seen[1][w]);
    }

    /// A SYN from internal `host` to external `dst:dp`.
    pub fn connect(
        &mut self,
        b: &BeaconSettings,
        ts: i64,
        host: IpAddr,
        dst: IpAddr,
        dp: u16,
        found: &mut Vec<Finding>,
    ) {
        let max = i64::from(b.max_period_s) * 1_000_000_000;
        let k = key((host, dst, dp));
        if !self.seen_before(k, ts, max) {
            return;
        }
        let s = self.series.entry(k, ts, max);
        if s.last == 0 {
            s.last = ts;
            return;
        }
        let gap = ts.saturating_sub(s.last);
        if gap < i64::from(b.min_period_s) * 1_000_000_000 {
            return;
        }
        if gap > max {
            *s = Series {
                last: ts,
                ..Series::default()
            };
            return;
        }
        s.gaps[usize::from(s.n) % GAPS] = (gap / 1_000_000) as u32;
        s.n = s.n.saturating_add(1).min(u16::MAX - 1);
        s.last = ts;
        let k = (b.min_connections as usize - 1).min(GAPS);
        if s.reported || usize::from(s.n) < k {
            return;
        }
        let (mean, sd) = spread(s, k);
        if sd > b.max_jitter * mean {
            return;
        }
        s.reported = true;
        found.push(Finding {
            heuristic: Heuristic::Beacon,
            ts,
            host,
            remote: dst,
            port: dp,
            proto: 6,
            indicator: format!("{dst}:{dp}"),
            observed: format!("{dst}:{dp}"),
            evidence: json!({
                "destination": dst.to_string(),
                "port": dp,
                "connections": usize::from(s.n) + 1,
                "period_s": (mean * 10.0).round() / 10.0,
                "jitter": ((sd / mean) * 1000.0).round() / 1000.0,
            }),
            signature: format!(
                "gatewatch heuristic beacon: {host} connects to {dst}:{dp} every {mean:.0} s (jitter {:.0}%)",
                sd / mean * 100.0
            ),
        });
    }
}
