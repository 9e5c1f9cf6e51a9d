//! Feeds: indicators per feed and kind, load and failure times, reloads and
//! what they refused.

use super::family::{counter_vec, float_gauge, float_gauge_vec, gauge_vec};
use crate::intel::Snapshot;
use crate::intel::reload::{Outcome, ReloadReport};
use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGaugeVec, Registry};

pub struct FeedMetrics {
    indicators: IntGaugeVec,
    last_load: GaugeVec,
    last_failure: GaugeVec,
    refused: IntCounterVec,
    reloads: IntCounterVec,
    reload_seconds: Gauge,
    snapshot_version: Gauge,
    snapshot_refused: IntCounterVec,
}

impl FeedMetrics {
    pub(super) fn new(r: &Registry) -> FeedMetrics {
        FeedMetrics {
            indicators: gauge_vec(
                r,
                "gatewatch_feed_indicators",
                "Indicators loaded, per feed and kind (ip, cidr, ip_port, domain, url, keyword).",
                &["feed", "kind"],
            ),
            last_load: float_gauge_vec(
                r,
                "gatewatch_feed_last_load_timestamp_seconds",
                "Unix time of the last successful load of a feed.",
                &["feed"],
            ),
            last_failure: float_gauge_vec(
                r,
                "gatewatch_feed_last_failure_timestamp_seconds",
                "Unix time of the last refused or failed load of a feed.",
                &["feed"],
            ),
            refused: counter_vec(
                r,
                "gatewatch_feed_reload_refused_total",
                "Rebuilt feeds refused at reload (previous version kept), by reason: parse, empty, shrunk.",
                &["feed", "reason"],
            ),
            reloads: counter_vec(
                r,
                "gatewatch_feeds_reloads_total",
                "Feed reloads by result: ok, partial (a feed refused), refused (feeds file invalid).",
                &["result"],
            ),
            reload_seconds: float_gauge(
                r,
                "gatewatch_feeds_reload_duration_seconds",
                "How long the last feed reload took.",
            ),
            snapshot_version: float_gauge(
                r,
                "gatewatch_snapshot_version",
                "Version of the signed feed snapshot file running (when the sensor started from one).",
            ),
            snapshot_refused: counter_vec(
                r,
                "gatewatch_snapshot_refused_total",
                "Snapshot files refused at reload (the running one kept), by reason: unreadable, format, signature, corrupt, not_newer, empty, shrunk.",
                &["reason"],
            ),
        }
    }

    /// The version of the snapshot file running.
    pub fn snapshot_version(&self, v: u64) {
        self.snapshot_version.set(v as f64);
    }

    /// Record a loaded snapshot: indicators per feed and kind, load time of
    /// the feeds named in `fresh`.
    pub fn loaded(&self, snap: &Snapshot, fresh: &[String]) {
        let now = unix_now();
        self.indicators.reset();
        for p in snap.parts() {
            let Some(name) = p.feed_names().next() else {
                continue;
            };
            for (k, n) in &p.counts {
                self.indicators
                    .with_label_values(&[name, k.as_str()])
                    .set(*n as i64);
            }
            if fresh.iter().any(|f| f == name) {
                self.last_load.with_label_values(&[name]).set(now);
            }
        }
    }

    /// Record a reload's outcome and the snapshot it left in place.
    pub fn reloaded(&self, r: &ReloadReport, snap: &Snapshot) {
        self.reloads.with_label_values(&[r.result()]).inc();
        self.reload_seconds.set(r.took.as_secs_f64());
        if let Some(reason) = r.refused_reason {
            self.snapshot_refused.with_label_values(&[reason]).inc();
        }
        if let Some(v) = r.snapshot_version {
            self.snapshot_version(v);
        }
        let now = unix_now();
        let mut fresh = Vec::new();
        for (name, o, _) in &r.feeds {
            let reason = match o {
                Outcome::Loaded { .. } => {
                    fresh.push(name.clone());
                    continue;
                }
                Outcome::Unchanged => continue,
                Outcome::Refused { reason, .. } => reason.as_str(),
                Outcome::Failed { .. } => "parse",
            };
            self.refused.with_label_values(&[name, reason]).inc();
            self.last_failure.with_label_values(&[name]).set(now);
        }
        self.loaded(snap, &fresh);
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
