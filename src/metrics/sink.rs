//! The sink and the offender store: hits by feed, category, severity and
//! unit; offender hosts per unit; lines written; store commits and losses;
//! hygiene events; the retro-hunt's history and hunts.

use super::family::{Deltas, counter, counter_vec, float_gauge, gauge_vec};
use crate::detect::Hit;
use crate::detect::hygiene::HygieneEvent;
use crate::output::sink::SinkObserver;
use crate::store::writer::WriterStats;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGaugeVec, Registry};
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
    hygiene: IntCounterVec,
    history: IntCounterVec,
    retro_hits: IntCounter,
    retro_runs: IntCounter,
    retro_seconds: Gauge,
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
            hygiene: counter_vec(
                r,
                "gatewatch_hygiene_events_total",
                "Hygiene events (estimates, not infections): a host's first sign of a signal that day.",
                &["signal", "unit"],
            ),
            history: counter_vec(
                r,
                "gatewatch_history_items_total",
                "Retro-hunt history items by outcome: new rows, repeats, dropped (host's day full), overflow (queue full).",
                &["outcome"],
            ),
            retro_hits: counter(
                r,
                "gatewatch_retro_hits_total",
                "Hits the retro-hunt found in the history after a feed reload.",
            ),
            retro_runs: counter(
                r,
                "gatewatch_retro_runs_total",
                "Retro-hunts run after feed reloads.",
            ),
            retro_seconds: float_gauge(
                r,
                "gatewatch_retro_last_seconds",
                "How long the last retro-hunt took.",
            ),
        }
    }

    /// A retro-hunt finished in `secs`.
    pub fn retro_run(&self, secs: f64) {
        self.retro_runs.inc();
        self.retro_seconds.set(secs);
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
        for (outcome, n) in [
            ("new", &st.history_new),
            ("repeat", &st.history_repeat),
            ("dropped", &st.history_dropped),
            ("overflow", &st.history_overflow),
        ] {
            let c = self.history.with_label_values(&[outcome]);
            d.add(format!("hist-{outcome}"), n.load(Ordering::Relaxed), &c);
        }
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
        if hit.retro {
            self.retro_hits.inc();
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

    fn hygiene(&self, e: &HygieneEvent) {
        self.hygiene
            .with_label_values(&[e.signal.as_str(), &e.unit.code])
            .inc();
    }
}
