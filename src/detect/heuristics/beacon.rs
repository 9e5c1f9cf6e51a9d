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
const GAPS: usize = 16;

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

pub(super) struct Beacons {
    series: Table<Series>,
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
        Beacons {
            series: Table::new(entries),
        }
    }

    pub fn evicted(&self) -> u64 {
        self.series.evicted
    }

    pub fn live(&self) -> usize {
        self.series.live()
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
        let s = self.series.entry(key((host, dst, dp)), ts, max);
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
