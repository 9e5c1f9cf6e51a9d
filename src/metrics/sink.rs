//! The sink and the offender store: hits by feed, category, severity and
//! unit; offender hosts per unit; lines written; store commits and losses.

use super::family::{Deltas, counter, counter_vec, gauge_vec};
use crate::detect::Hit;
use crate::output::sink::SinkObserver;
use crate::store::writer::WriterStats;
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Registry};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

pub struct SinkMetrics {
    hits: IntCounterVec,
    offender_hosts: IntGaugeVec,
    alerts_written: IntCounter,
    flow_events: IntCounter,
    store_written: IntCounter,
    store_errors: IntCounter,
    drops: IntCounterVec,
    store: Mutex<Option<Arc<WriterStats>>>,
}

impl SinkMetrics {
    /// `drops` is the shared `gatewatch_drops_total{stage}` family.
    pub(super) fn new(r: &Registry, drops: IntCounterVec) -> SinkMetrics {
        SinkMetrics {
            hits: counter_vec(
                r,
                "gatewatch_hits_total",
                "Matches alerted.",
                &["feed", "category", "severity", "unit"],
            ),
            offender_hosts: gauge_vec(
                r,
                "gatewatch_offender_hosts",
                "Distinct internal hosts with hits since start, per unit.",
                &["unit"],
            ),
            alerts_written: counter(
                r,
                "gatewatch_alerts_written_total",
                "Alert lines written to the alert log.",
            ),
            flow_events: counter(
                r,
                "gatewatch_flow_events_total",
                "flow events written: TCP flows that had hits, reported with their totals when they ended.",
            ),
            store_written: counter(
                r,
                "gatewatch_store_written_total",
                "Hits committed to the offender store.",
            ),
            store_errors: counter(
                r,
                "gatewatch_store_errors_total",
                "Failed offender-store commits (each is retried).",
            ),
            drops,
            store: Mutex::new(None),
        }
    }

    pub fn watch_store(&self, s: Arc<WriterStats>) {
        if let Ok(mut g) = self.store.lock() {
            *g = Some(s);
        }
    }

    pub(super) fn refresh(&self, d: &mut Deltas) {
        let Ok(g) = self.store.lock() else { return };
        let Some(st) = g.as_ref() else { return };
        d.add(
            "st-w".into(),
            st.written.load(Ordering::Relaxed),
            &self.store_written,
        );
        d.add(
            "st-e".into(),
            st.errors.load(Ordering::Relaxed),
            &self.store_errors,
        );
        let lost = st.overflow.load(Ordering::Relaxed);
        d.add(
            "d-store".into(),
            lost,
            &self.drops.with_label_values(&["store"]),
        );
    }
}

impl SinkObserver for SinkMetrics {
    fn hit(&self, hit: &Hit, alerted: bool, unit_hosts: Option<u64>) {
        let f = &hit.indicator.feed;
        self.hits
            .with_label_values(&[&f.name, &f.category, f.severity.as_str(), &hit.unit.code])
            .inc();
        if alerted {
            self.alerts_written.inc();
        }
        if let Some(n) = unit_hosts {
            self.offender_hosts
                .with_label_values(&[&hit.unit.code])
                .set(n as i64);
        }
    }

    fn flow_event(&self) {
        self.flow_events.inc();
    }
}
