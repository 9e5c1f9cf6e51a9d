//! Alert aggregation: a beaconing bot hits the same indicator every few
//! seconds; the alert log should say so once, then count.
//!
//! The first hit of a (host, indicator, feed) pair is written as a full
//! alert. Later hits are counted; once `interval` has passed since the
//! pair's last written event, the next hit (or the periodic flush) writes one
//! `alert_summary` event with the count since then, first and last seen.
//! At the end every pending count is written, so the alert log's alerts plus
//! summary counts equal the hits (metrics and the store still see each hit).
//! The pair table is bounded: when full, every pending count is written and
//! the table starts afresh (counted).

use crate::detect::Hit;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// Default bound on (host, indicator) pairs remembered.
pub const DEFAULT_PAIRS: usize = 1 << 20;

struct Pair {
    hit: Arc<Hit>,
    first_ns: i64,
    last_ns: i64,
    /// Time of the last event written for the pair.
    written_ns: i64,
    /// Hits since then, not yet written.
    pending: u64,
}

#[derive(Serialize)]
struct Summary<'a> {
    timestamp: String,
    event_type: &'static str,
    sensor_id: &'a str,
    host_ip: IpAddr,
    unit: &'a str,
    unit_name: &'a str,
    indicator: &'a str,
    indicator_kind: &'static str,
    feed: &'a str,
    category: &'a str,
    severity: &'static str,
    /// Hits since the pair's previous event.
    count: u64,
    first_seen: String,
    last_seen: String,
    interval_s: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    heuristic: Option<&'static str>,
    /// `false` for a suspicion, as in the alert.
    #[serde(skip_serializing_if = "crate::output::eve::is_true")]
    offender: bool,
}

/// Decides, per hit, whether the alert log gets it.
pub struct Aggregator {
    interval_ns: i64,
    pairs: FxHashMap<(IpAddr, Box<str>, Box<str>), Pair>,
    cap: usize,
    /// Times the table was full and started afresh.
    pub resets: u64,
    latest_ns: i64,
}

impl Aggregator {
    /// `interval_s == 0`: every hit is written (no aggregation).
    pub fn new(interval_s: u64, cap: usize) -> Aggregator {
        Aggregator {
            interval_ns: (interval_s as i64).saturating_mul(1_000_000_000),
            pairs: FxHashMap::default(),
            cap: cap.max(1),
            resets: 0,
            latest_ns: i64::MIN,
        }
    }

    pub fn enabled(&self) -> bool {
        self.interval_ns > 0
    }

    /// Take a hit. Returns whether its full alert should be written, and
    /// appends any summary that is due to `out`.
    pub fn offer(&mut self, hit: &Hit, sensor_id: &str, out: &mut Vec<String>) -> bool {
        if !self.enabled() {
            return true;
        }
        self.latest_ns = self.latest_ns.max(hit.ts_ns);
        let key = (
            hit.host,
            hit.indicator.value.clone(),
            hit.indicator.feed.name.as_str().into(),
        );
        if let Some(p) = self.pairs.get_mut(&key) {
            p.pending += 1;
            p.last_ns = p.last_ns.max(hit.ts_ns);
            if hit.ts_ns.saturating_sub(p.written_ns) >= self.interval_ns {
                out.push(self.summary_of(&key, sensor_id));
            }
            return false;
        }
        if self.pairs.len() >= self.cap {
            self.flush_all(sensor_id, out);
            self.pairs.clear();
            self.resets += 1;
        }
        self.pairs.insert(
            key,
            Pair {
                hit: Arc::new(hit.clone()),
                first_ns: hit.ts_ns,
                last_ns: hit.ts_ns,
                written_ns: hit.ts_ns,
                pending: 0,
            },
        );
        true
    }

    fn summary_of(&mut self, key: &(IpAddr, Box<str>, Box<str>), sensor_id: &str) -> String {
        let interval_s = (self.interval_ns / 1_000_000_000) as u64;
        let Some(p) = self.pairs.get_mut(key) else {
            return String::new();
        };
        let h = &p.hit;
        let s = Summary {
            timestamp: crate::output::eve::eve_time(p.last_ns),
            event_type: "alert_summary",
            sensor_id,
            host_ip: h.host,
            unit: &h.unit.code,
            unit_name: &h.unit.name,
            indicator: &h.indicator.value,
            indicator_kind: h.indicator.kind.as_str(),
            feed: &h.indicator.feed.name,
            category: &h.indicator.feed.category,
            severity: h.indicator.feed.severity.as_str(),
            count: p.pending,
            first_seen: crate::output::eve::eve_time(p.first_ns),
            last_seen: crate::output::eve::eve_time(p.last_ns),
            interval_s,
            heuristic: h.heuristic(),
            offender: h.offender(),
        };
        let line = serde_json::to_string(&s).unwrap_or_default();
        p.pending = 0;
        p.written_ns = p.last_ns;
        line
    }

    /// Summaries of pairs whose interval has passed by the newest hit time
    /// seen (called periodically while hits are quiet).
    pub fn due(&mut self, sensor_id: &str, out: &mut Vec<String>) {
        let (now, interval) = (self.latest_ns, self.interval_ns);
        self.summaries_where(sensor_id, out, |p| {
            now.saturating_sub(p.written_ns) >= interval
        });
    }

    /// Every pending count, now (at the end of a run).
    pub fn flush_all(&mut self, sensor_id: &str, out: &mut Vec<String>) {
        self.summaries_where(sensor_id, out, |_| true);
    }

    /// Summaries of the pairs with pending hits that `pick` selects.
    fn summaries_where(
        &mut self,
        sensor_id: &str,
        out: &mut Vec<String>,
        pick: impl Fn(&Pair) -> bool,
    ) {
        let keys: Vec<_> = self
            .pairs
            .iter()
            .filter(|(_, p)| p.pending > 0 && pick(p))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            out.push(self.summary_of(&k, sensor_id));
        }
    }
}
