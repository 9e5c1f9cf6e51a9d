//! Prometheus metrics and the localhost HTTP endpoint (`/metrics`, `/healthz`).
//!
//! The hot path never touches a Prometheus object: workers and capture
//! threads count in their own plain or atomic counters, and a scrape folds
//! the deltas into the registry ([`Metrics::refresh`]). Label values are
//! bounded sets only (feed, category, severity, unit, interface, worker,
//! reason, stage): never an address or a domain.

mod http;

use crate::intel::Snapshot;
use crate::pipeline::WorkerShared;
use crate::stats::{Reason, Stats};
use crate::store::writer::WriterStats;
use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Per-interface capture counters, written by the capture thread.
#[derive(Default)]
pub struct CaptureShared {
    pub name: String,
    pub packets: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub interface_drops: AtomicU64,
    pub errors: AtomicU64,
    /// Capturing with a working handle on a link that is up.
    pub up: AtomicBool,
    /// The capture thread has started and published its first link state.
    pub running: AtomicBool,
}

pub struct Metrics {
    pub registry: Registry,
    packets: IntCounter,
    bytes: IntCounter,
    dns_queries: IntCounter,
    capture_packets: IntCounterVec,
    capture_errors: IntCounterVec,
    capture_up: IntGaugeVec,
    drops: IntCounterVec,
    worker_packets: IntCounterVec,
    queue_drops: IntCounterVec,
    parse_errors: IntCounterVec,
    pub hits: IntCounterVec,
    pub offender_hosts: IntGaugeVec,
    feed_indicators: IntGaugeVec,
    feed_last_load: GaugeVec,
    feed_last_failure: GaugeVec,
    feed_refused: IntCounterVec,
    reloads: IntCounterVec,
    reload_seconds: prometheus::Gauge,
    hits_allowlisted: IntCounter,
    dns_unsolicited: IntCounter,
    dns_links: prometheus::IntGauge,
    dns_links_evicted: IntCounter,
    links: Mutex<Option<Arc<crate::correlate::DnsLinks>>>,
    /// Runs a reload for `POST /api/reload`: (HTTP status, JSON body).
    reload_hook: Mutex<Option<ReloadHook>>,
    pub alerts_written: IntCounter,
    pub flow_events: IntCounter,
    tcp_flows: prometheus::IntGauge,
    tcp_flows_evicted: IntCounter,
    tcp_gaps: IntCounter,
    tcp_overlap_conflicts: IntCounter,
    store_written: IntCounter,
    store_errors: IntCounter,
    /// Sources folded in on each scrape.
    store: Mutex<Option<Arc<WriterStats>>>,
    workers: Mutex<Option<Arc<Vec<WorkerShared>>>>,
    captures: Mutex<Vec<Arc<CaptureShared>>>,
    /// Every capture interface has been registered ([`Metrics::captures_started`]).
    all_captures_registered: AtomicBool,
    /// Values already folded in, per series, to turn totals into deltas.
    seen: Mutex<HashMap<String, u64>>,
}

/// What `POST /api/reload` calls.
pub type ReloadHook = Arc<dyn Fn() -> (u16, String) + Send + Sync>;

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let c = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
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
        let feed_last_load = GaugeVec::new(
            Opts::new(
                "gatewatch_feed_last_load_timestamp_seconds",
                "Unix time of the last successful load of a feed.",
            ),
            &["feed"],
        )
        .expect("valid metric");
        r.register(Box::new(feed_last_load.clone()))
            .expect("unique metric");
        let feed_last_failure = GaugeVec::new(
            Opts::new(
                "gatewatch_feed_last_failure_timestamp_seconds",
                "Unix time of the last refused or failed load of a feed.",
            ),
            &["feed"],
        )
        .expect("valid metric");
        r.register(Box::new(feed_last_failure.clone()))
            .expect("unique metric");
        let reload_seconds = prometheus::Gauge::new(
            "gatewatch_feeds_reload_duration_seconds",
            "How long the last feed reload took.",
        )
        .expect("valid metric");
        r.register(Box::new(reload_seconds.clone()))
            .expect("unique metric");
        Arc::new(Metrics {
            feed_last_failure,
            feed_refused: counter_vec(
                &r,
                "gatewatch_feed_reload_refused_total",
                "Rebuilt feeds refused at reload (previous version kept), by reason: parse, empty, shrunk.",
                &["feed", "reason"],
            ),
            reloads: counter_vec(
                &r,
                "gatewatch_feeds_reloads_total",
                "Feed reloads by result: ok, partial (a feed refused), refused (feeds file invalid).",
                &["result"],
            ),
            reload_seconds,
            hits_allowlisted: counter(
                &r,
                "gatewatch_hits_allowlisted_total",
                "Matches suppressed by an allowlist.",
            ),
            reload_hook: Mutex::new(None),
            dns_unsolicited: counter(
                &r,
                "gatewatch_dns_answers_unsolicited_total",
                "DNS answers with addresses that answered no query seen (spoofed, unsolicited, or the query was not mirrored); not learned from.",
            ),
            dns_links: {
                let g = prometheus::IntGauge::new(
                    "gatewatch_dns_links",
                    "Addresses internal hosts got in answers for listed domains, remembered for correlation.",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            dns_links_evicted: counter(
                &r,
                "gatewatch_dns_links_evicted_total",
                "Correlation links dropped to keep the table under its cap (before their TTL).",
            ),
            links: Mutex::new(None),
            packets: counter(
                &r,
                "gatewatch_packets_total",
                "Packets processed by the workers.",
            ),
            bytes: counter(
                &r,
                "gatewatch_bytes_total",
                "Bytes (on the wire) processed by the workers.",
            ),
            dns_queries: counter(&r, "gatewatch_dns_queries_total", "DNS queries seen."),
            capture_packets: counter_vec(
                &r,
                "gatewatch_capture_packets_total",
                "Packets received by a capture thread.",
                &["interface"],
            ),
            capture_errors: counter_vec(
                &r,
                "gatewatch_capture_errors_total",
                "Capture read errors and interface losses (link down, no carrier, interface gone).",
                &["interface"],
            ),
            capture_up: gauge_vec(
                &r,
                "gatewatch_capture_up",
                "1 while the interface is captured and its link is up; 0 when it is down, has no carrier or is gone.",
                &["interface"],
            ),
            drops: counter_vec(
                &r,
                "gatewatch_drops_total",
                "Packets dropped, by stage (kernel, interface, queue); stage store counts hits the offender store could not take.",
                &["stage"],
            ),
            worker_packets: counter_vec(
                &r,
                "gatewatch_worker_packets_total",
                "Packets processed, per worker.",
                &["worker"],
            ),
            queue_drops: counter_vec(
                &r,
                "gatewatch_queue_drops_total",
                "Packets dropped because a worker queue was full.",
                &["worker"],
            ),
            parse_errors: counter_vec(
                &r,
                "gatewatch_parse_errors_total",
                "Packets or parts of packets not decoded, by reason.",
                &["reason"],
            ),
            hits: counter_vec(
                &r,
                "gatewatch_hits_total",
                "Matches alerted.",
                &["feed", "category", "severity", "unit"],
            ),
            offender_hosts: gauge_vec(
                &r,
                "gatewatch_offender_hosts",
                "Distinct internal hosts with hits since start, per unit.",
                &["unit"],
            ),
            feed_indicators: gauge_vec(
                &r,
                "gatewatch_feed_indicators",
                "Indicators loaded, per feed and kind (ip, cidr, ip_port, domain, url, keyword).",
                &["feed", "kind"],
            ),
            feed_last_load,
            flow_events: counter(
                &r,
                "gatewatch_flow_events_total",
                "flow events written: TCP flows that had hits, reported with their totals when they ended.",
            ),
            tcp_flows: {
                let g = prometheus::IntGauge::new(
                    "gatewatch_tcp_flows",
                    "TCP flows tracked now, all workers.",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            tcp_flows_evicted: counter(
                &r,
                "gatewatch_tcp_flows_evicted_total",
                "TCP flows pushed out of a full flow table before they ended (a SYN flood, or the table is too small).",
            ),
            tcp_gaps: counter(
                &r,
                "gatewatch_tcp_gaps_total",
                "Holes in TCP payload that inspection skipped (segments missing from the capture).",
            ),
            tcp_overlap_conflicts: counter(
                &r,
                "gatewatch_tcp_overlap_conflicts_total",
                "Overlapping TCP segments whose content differed (the first copy was inspected).",
            ),
            alerts_written: counter(
                &r,
                "gatewatch_alerts_written_total",
                "Alert lines written to the alert log.",
            ),
            store_written: counter(
                &r,
                "gatewatch_store_written_total",
                "Hits committed to the offender store.",
            ),
            store_errors: counter(
                &r,
                "gatewatch_store_errors_total",
                "Failed offender-store commits (each is retried).",
            ),
            registry: r,
            workers: Mutex::new(None),
            captures: Mutex::new(Vec::new()),
            all_captures_registered: AtomicBool::new(false),
            store: Mutex::new(None),
            seen: Mutex::new(HashMap::new()),
        })
    }

    pub fn watch_workers(&self, w: Arc<Vec<WorkerShared>>) {
        if let Ok(mut g) = self.workers.lock() {
            *g = Some(w);
        }
    }

    pub fn watch_links(&self, l: Arc<crate::correlate::DnsLinks>) {
        if let Ok(mut g) = self.links.lock() {
            *g = Some(l);
        }
    }

    pub fn watch_store(&self, s: Arc<WriterStats>) {
        if let Ok(mut g) = self.store.lock() {
            *g = Some(s);
        }
    }

    pub fn watch_capture(&self, c: Arc<CaptureShared>) {
        if let Ok(mut g) = self.captures.lock() {
            g.push(c);
        }
    }

    /// Every capture interface has been registered with
    /// [`Metrics::watch_capture`]: `/healthz` stops saying "starting" once
    /// each of their threads is running.
    pub fn captures_started(&self) {
        self.all_captures_registered.store(true, Ordering::Relaxed);
    }

    /// Record a loaded snapshot: indicators per feed and kind, load time of
    /// the feeds named in `fresh`.
    pub fn feeds_loaded(&self, snap: &Snapshot, fresh: &[String]) {
        let now = unix_now();
        self.feed_indicators.reset();
        for p in snap.parts() {
            let Some(name) = p.feed_names().next() else {
                continue;
            };
            for (k, n) in &p.counts {
                self.feed_indicators
                    .with_label_values(&[name, k.as_str()])
                    .set(*n as i64);
            }
            if fresh.iter().any(|f| f == name) {
                self.feed_last_load.with_label_values(&[name]).set(now);
            }
        }
    }

    /// Record a reload's outcome.
    pub fn reloaded(&self, r: &crate::intel::reload::ReloadReport, snap: &Snapshot) {
        use crate::intel::reload::Outcome;
        self.reloads.with_label_values(&[r.result()]).inc();
        self.reload_seconds.set(r.took.as_secs_f64());
        let now = unix_now();
        let mut fresh = Vec::new();
        for (name, o, _) in &r.feeds {
            match o {
                Outcome::Loaded { .. } => fresh.push(name.clone()),
                Outcome::Unchanged => {}
                Outcome::Refused { reason, .. } => {
                    self.feed_refused
                        .with_label_values(&[name, reason.as_str()])
                        .inc();
                    self.feed_last_failure.with_label_values(&[name]).set(now);
                }
                Outcome::Failed { .. } => {
                    self.feed_refused.with_label_values(&[name, "parse"]).inc();
                    self.feed_last_failure.with_label_values(&[name]).set(now);
                }
            }
        }
        self.feeds_loaded(snap, &fresh);
    }

    /// Let `POST /api/reload` run `hook`.
    pub fn set_reload_hook(&self, hook: ReloadHook) {
        if let Ok(mut g) = self.reload_hook.lock() {
            *g = Some(hook);
        }
    }

    /// Fold the counters of workers and capture threads into the registry.
    pub fn refresh(&self) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let mut add = |key: String, total: u64, c: &IntCounter| {
            let prev = seen.entry(key).or_insert(0);
            if total > *prev {
                c.inc_by(total - *prev);
                *prev = total;
            }
        };
        let mut sum = Stats::default();
        let mut queue_total = 0;
        if let Ok(g) = self.workers.lock()
            && let Some(ws) = g.as_ref()
        {
            for (i, w) in ws.iter().enumerate() {
                let s = w.stats.lock().map(|s| s.clone()).unwrap_or_default();
                let id = i.to_string();
                add(
                    format!("wp{i}"),
                    s.packets,
                    &self.worker_packets.with_label_values(&[&id]),
                );
                let qd = w.queue_drops.load(Ordering::Relaxed);
                add(
                    format!("wq{i}"),
                    qd,
                    &self.queue_drops.with_label_values(&[&id]),
                );
                queue_total += qd;
                sum.merge(&s);
            }
        }
        add("packets".into(), sum.packets, &self.packets);
        add("bytes".into(), sum.bytes, &self.bytes);
        add("dnsq".into(), sum.dns_queries, &self.dns_queries);
        add(
            "allowlisted".into(),
            sum.hits_allowlisted,
            &self.hits_allowlisted,
        );
        add(
            "dns_unsolicited".into(),
            sum.dns_answers_unsolicited,
            &self.dns_unsolicited,
        );
        self.tcp_flows
            .set(sum.flows.created.saturating_sub(sum.flows.ended) as i64);
        add(
            "tcp_evicted".into(),
            sum.flows.evicted,
            &self.tcp_flows_evicted,
        );
        add("tcp_gaps".into(), sum.streams.gaps, &self.tcp_gaps);
        add(
            "tcp_overlap".into(),
            sum.streams.overlap_conflicts,
            &self.tcp_overlap_conflicts,
        );
        if let Ok(g) = self.links.lock()
            && let Some(l) = g.as_ref()
        {
            self.dns_links.set(l.len() as i64);
            let ev = l.stats.evicted.load(Ordering::Relaxed);
            add("dns_links_evicted".into(), ev, &self.dns_links_evicted);
        }
        for r in Reason::ALL {
            add(
                format!("pe-{}", r.as_str()),
                sum.errors_of(r),
                &self.parse_errors.with_label_values(&[r.as_str()]),
            );
        }
        let (mut kernel, mut iface) = (0, 0);
        if let Ok(cs) = self.captures.lock() {
            for c in cs.iter() {
                add(
                    format!("cp-{}", c.name),
                    c.packets.load(Ordering::Relaxed),
                    &self.capture_packets.with_label_values(&[&c.name]),
                );
                add(
                    format!("ce-{}", c.name),
                    c.errors.load(Ordering::Relaxed),
                    &self.capture_errors.with_label_values(&[&c.name]),
                );
                self.capture_up
                    .with_label_values(&[&c.name])
                    .set(i64::from(c.up.load(Ordering::Relaxed)));
                kernel += c.kernel_drops.load(Ordering::Relaxed);
                iface += c.interface_drops.load(Ordering::Relaxed);
            }
        }
        add(
            "d-kernel".into(),
            kernel,
            &self.drops.with_label_values(&["kernel"]),
        );
        add(
            "d-interface".into(),
            iface,
            &self.drops.with_label_values(&["interface"]),
        );
        if let Ok(g) = self.store.lock()
            && let Some(st) = g.as_ref()
        {
            add(
                "st-w".into(),
                st.written.load(Ordering::Relaxed),
                &self.store_written,
            );
            add(
                "st-e".into(),
                st.errors.load(Ordering::Relaxed),
                &self.store_errors,
            );
            add(
                "d-store".into(),
                st.overflow.load(Ordering::Relaxed),
                &self.drops.with_label_values(&["store"]),
            );
        }
        add(
            "d-queue".into(),
            queue_total,
            &self.drops.with_label_values(&["queue"]),
        );
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        self.refresh();
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// `/healthz`: "starting" until every capture thread runs (the listener
    /// is up before any interface is opened), then whether every capture
    /// interface is up.
    pub fn healthy(&self) -> (bool, String) {
        let Ok(cs) = self.captures.lock() else {
            return (false, "metrics lock poisoned\n".into());
        };
        if !self.all_captures_registered.load(Ordering::Relaxed)
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

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reset the kernel's peak-RSS mark (VmHWM), so a benchmark can report each
/// stage's own peak. Best effort: older kernels lack it.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process (VmHWM), in MiB; 0 where unknown.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resident set size of this process now (VmRSS), in MiB; 0 where unknown.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub use http::serve;
