//! Capture threads: packets and errors per interface, whether each is up,
//! kernel and interface drops, and what `/healthz` says about them.

use super::family::{Deltas, counter_vec, gauge_vec};
use crate::capture::CaptureShared;
use prometheus::{IntCounterVec, IntGaugeVec, Registry};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct CaptureMetrics {
    packets: IntCounterVec,
    errors: IntCounterVec,
    up: IntGaugeVec,
    drops: IntCounterVec,
    captures: Mutex<Vec<Arc<CaptureShared>>>,
    /// Every capture interface has been registered ([`CaptureMetrics::started`]).
    all_registered: AtomicBool,
}

impl CaptureMetrics {
    /// `drops` is the shared `gatewatch_drops_total{stage}` family.
    pub(super) fn new(r: &Registry, drops: IntCounterVec) -> CaptureMetrics {
        CaptureMetrics {
            packets: counter_vec(
                r,
                "gatewatch_capture_packets_total",
                "Packets received by a capture thread.",
                &["interface"],
            ),
            errors: counter_vec(
                r,
                "gatewatch_capture_errors_total",
                "Capture read errors and interface losses (link down, no carrier, interface gone).",
                &["interface"],
            ),
            up: gauge_vec(
                r,
                "gatewatch_capture_up",
                "1 while the interface is captured and its link is up; 0 when it is down, has no carrier or is gone.",
                &["interface"],
            ),
            drops,
            captures: Mutex::new(Vec::new()),
            all_registered: AtomicBool::new(false),
        }
    }

    pub fn watch(&self, c: Arc<CaptureShared>) {
        if let Ok(mut g) = self.captures.lock() {
            g.push(c);
        }
    }

    /// Every capture interface has been registered with
    /// [`CaptureMetrics::watch`]: `/healthz` stops saying "starting" once
    /// each of their threads is running.
    pub fn started(&self) {
        self.all_registered.store(true, Ordering::Relaxed);
    }

    pub(super) fn refresh(&self, d: &mut Deltas) {
        let (mut kernel, mut iface) = (0, 0);
        if let Ok(cs) = self.captures.lock() {
            for c in cs.iter() {
                let n = &c.name;
                let packets = c.packets.load(Ordering::Relaxed);
                d.add(
                    format!("cp-{n}"),
                    packets,
                    &self.packets.with_label_values(&[n]),
                );
                let errors = c.errors.load(Ordering::Relaxed);
                d.add(
                    format!("ce-{n}"),
                    errors,
                    &self.errors.with_label_values(&[n]),
                );
                let up = i64::from(c.up.load(Ordering::Relaxed));
                self.up.with_label_values(&[n]).set(up);
                kernel += c.kernel_drops.load(Ordering::Relaxed);
                iface += c.interface_drops.load(Ordering::Relaxed);
            }
        }
        d.add(
            "d-kernel".into(),
            kernel,
            &self.drops.with_label_values(&["kernel"]),
        );
        d.add(
            "d-interface".into(),
            iface,
            &self.drops.with_label_values(&["interface"]),
        );
    }

    /// `/healthz`: "starting" until every capture thread runs (the listener
    /// is up before any interface is opened), then whether every capture
    /// interface is up.
    pub fn healthy(&self) -> (bool, String) {
        let Ok(cs) = self.captures.lock() else {
            return (false, "metrics lock poisoned\n".into());
        };
        if !self.all_registered.load(Ordering::Relaxed)
            || cs.iter().any(|c| !c.running.load(Ordering::Relaxed))
        {
            return (false, "starting\n".into());
        }
        let down: Vec<&str> = cs
            .iter()
            .filter(|c| !c.up.load(Ordering::Relaxed))
            .map(|c| c.name.as_str())
            .collect();
        if down.is_empty() {
            (true, "ok\n".into())
        } else {
            (false, format!("capture down on: {}\n", down.join(", ")))
        }
    }
}
