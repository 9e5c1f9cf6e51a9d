//! Prometheus metrics and the localhost HTTP endpoint (`/metrics`,
//! `/healthz`, the read-only `/api/*` and `POST /api/reload`).
//!
//! The hot path never touches a Prometheus object: each stage counts in its
//! own plain or atomic counters (capture threads in `CaptureShared`, workers
//! in their `Stats`, the store writer in `WriterStats`), and a scrape folds
//! what grew into the registry ([`Metrics::refresh`]). The families are
//! grouped by the stage that counts them: [`CaptureMetrics`],
//! [`WorkerMetrics`], [`FeedMetrics`], [`SinkMetrics`]. Label values are
//! bounded sets only (feed, category, severity, unit, interface, worker,
//! reason, stage): never an address or a domain.

mod capture;
mod family;
mod feeds;
mod http;
mod process;
mod ship;
mod sink;
mod status;
mod workers;

pub use capture::CaptureMetrics;
pub use feeds::FeedMetrics;
pub use http::{Api, serve};
pub use process::{peak_rss_mib, reset_peak_rss, rss_mib};
pub use ship::ShipMetrics;
pub use sink::SinkMetrics;
pub use workers::{WorkerMetrics, WorkerReport, WorkerSource};

use family::{Deltas, counter_vec, gauge_vec};
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::{Arc, Mutex};

/// What `POST /api/reload` calls: (HTTP status, JSON body).
pub type ReloadHook = Arc<dyn Fn() -> (u16, String) + Send + Sync>;

pub struct Metrics {
    pub registry: Registry,
    pub capture: CaptureMetrics,
    pub workers: WorkerMetrics,
    pub feeds: FeedMetrics,
    /// Also the sink's observer (`Arc<dyn SinkObserver>`).
    pub sink: Arc<SinkMetrics>,
    pub ship: ShipMetrics,
    /// Runs a reload for `POST /api/reload`.
    reload_hook: Mutex<Option<ReloadHook>>,
    deltas: Mutex<Deltas>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let r = Registry::new();
        let build = gauge_vec(
            &r,
            "gatewatch_build_info",
            "Build information (always 1).",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = r.register(Box::new(pc));
        }
        // One family for every stage that drops: each adds its own label.
        let drops = counter_vec(
            &r,
            "gatewatch_drops_total",
            "Packets dropped, by stage (kernel, interface, queue); stage store counts hits the offender store could not take.",
            &["stage"],
        );
        Arc::new(Metrics {
            capture: CaptureMetrics::new(&r, drops.clone()),
            workers: WorkerMetrics::new(&r, drops.clone()),
            feeds: FeedMetrics::new(&r),
            sink: Arc::new(SinkMetrics::new(&r, drops)),
            ship: ShipMetrics::new(&r),
            registry: r,
            reload_hook: Mutex::new(None),
            deltas: Mutex::new(Deltas::default()),
        })
    }

    /// Let `POST /api/reload` run `hook`.
    pub fn set_reload_hook(&self, hook: ReloadHook) {
        if let Ok(mut g) = self.reload_hook.lock() {
            *g = Some(hook);
        }
    }

    fn reload_hook(&self) -> Option<ReloadHook> {
        self.reload_hook.lock().ok().and_then(|g| g.clone())
    }

    /// Fold what every stage counted since the last scrape into the registry.
    pub fn refresh(&self) {
        let Ok(mut d) = self.deltas.lock() else {
            return;
        };
        self.workers.refresh(&mut d);
        self.capture.refresh(&mut d);
        self.sink.refresh(&mut d);
        self.ship.refresh(&mut d);
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        self.refresh();
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// `/healthz`: see [`CaptureMetrics::healthy`].
    pub fn healthy(&self) -> (bool, String) {
        self.capture.healthy()
    }
}
