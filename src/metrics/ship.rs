//! Shipping to the central view: rows acknowledged, failures, lag and the
//! time of the last complete pass (the alert `GatewatchShippingStalled`
//! fires when it is older than 5 minutes); and fetching the feed snapshot
//! from it: failures and the time of the last fetch that reached it (the
//! alert `GatewatchSnapshotFetchFailing`). What a fetched snapshot did is
//! a reload's outcome ([`super::FeedMetrics`]).

use super::family::{Deltas, counter, float_gauge, gauge};
use crate::store::central::{FetchStats, ShipStats};
use prometheus::{Gauge, IntCounter, IntGauge, Registry};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

pub struct ShipMetrics {
    rows: IntCounter,
    failures: IntCounter,
    skipped: IntCounter,
    lag: IntGauge,
    last: Gauge,
    stats: Mutex<Option<Arc<ShipStats>>>,
    fetch_failures: IntCounter,
    fetch_last: Gauge,
    fetch: Mutex<Option<Arc<FetchStats>>>,
}

impl ShipMetrics {
    pub(super) fn new(r: &Registry) -> ShipMetrics {
        ShipMetrics {
            rows: counter(
                r,
                "gatewatch_ship_rows_total",
                "Journal rows (hits, status changes) the central acknowledged.",
            ),
            failures: counter(
                r,
                "gatewatch_ship_failures_total",
                "Shipping passes that failed (central unreachable, batch refused); each is retried.",
            ),
            skipped: counter(
                r,
                "gatewatch_ship_skipped_total",
                "Journal rows the central could not take as alerts (unreadable), left out and logged.",
            ),
            lag: gauge(
                r,
                "gatewatch_ship_lag_rows",
                "Journal rows written here and not yet acknowledged by the central.",
            ),
            last: float_gauge(
                r,
                "gatewatch_ship_last_success_timestamp_seconds",
                "Unix time of the last shipping pass that reached the central and left nothing behind (the start until the first); 0 when the sensor does not ship.",
            ),
            stats: Mutex::new(None),
            fetch_failures: counter(
                r,
                "gatewatch_snapshot_fetch_failures_total",
                "Fetches of the feed snapshot from the central that failed (unreachable, refused the query); each is retried next snapshot_interval_s.",
            ),
            fetch_last: float_gauge(
                r,
                "gatewatch_snapshot_fetch_last_success_timestamp_seconds",
                "Unix time of the last feed snapshot fetch that reached the central, whether or not it found a newer one (the start until the first); 0 when the sensor does not fetch.",
            ),
            fetch: Mutex::new(None),
        }
    }

    /// Report the snapshot fetcher's `s` from now on.
    pub fn watch_fetch(&self, s: Arc<FetchStats>) {
        if let Ok(mut g) = self.fetch.lock() {
            *g = Some(s);
        }
    }

    /// Report `s` from now on (the shipper's counters).
    pub fn watch(&self, s: Arc<ShipStats>) {
        if let Ok(mut g) = self.stats.lock() {
            *g = Some(s);
        }
    }

    pub(super) fn refresh(&self, d: &mut Deltas) {
        if let Ok(g) = self.fetch.lock()
            && let Some(f) = g.as_ref()
        {
            let n = f.failures.load(Ordering::Relaxed);
            d.add("fetch-f".into(), n, &self.fetch_failures);
            self.fetch_last
                .set(f.last_success_s.load(Ordering::Relaxed) as f64);
        }
        let Ok(g) = self.stats.lock() else { return };
        let Some(s) = g.as_ref() else { return };
        d.add("ship-r".into(), s.rows.load(Ordering::Relaxed), &self.rows);
        d.add(
            "ship-f".into(),
            s.failures.load(Ordering::Relaxed),
            &self.failures,
        );
        d.add(
            "ship-s".into(),
            s.skipped.load(Ordering::Relaxed),
            &self.skipped,
        );
        self.lag.set(s.lag.load(Ordering::Relaxed) as i64);
        self.last
            .set(s.last_success_s.load(Ordering::Relaxed) as f64);
    }
}
