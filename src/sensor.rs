//! The long-running sensor (`gatewatch run`) and the parallel file replay used
//! by `gatewatch bench`: sources -> pipeline workers -> the sink stage.

use crate::aggregate::{Aggregator, DEFAULT_PAIRS};
use crate::alert::{alert_json, flow_json};
use crate::attribution::Units;
use crate::capture::file::read_file_shared;
use crate::capture::live;
use crate::config::{Config, InterfaceConfig};
use crate::detect::{Engine, Event};
use crate::intel::Intel;
use crate::metrics::{CaptureShared, Metrics};
use crate::offenders::OffenderTable;
use crate::pipeline::{Backpressure, Pipeline, Sizing};
use crate::stats::Stats;
use crate::store::writer::{NameRecord, StoreRecord, StoreWriter, WriterStats};
use anyhow::{Context as _, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Capacity of the worker -> sink hit queue. Workers block when it is full
/// (hits are never dropped); at a few hits per thousand packets it never is.
const HIT_QUEUE: usize = 65_536;
/// The alert log is flushed at least this often, bounding what a crash loses.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// What the sink stage hands back when its queue closes.
pub struct SinkResult {
    pub offenders: OffenderTable,
    pub alerts: u64,
    /// `alert_summary` events written (aggregated repeats).
    pub summaries: u64,
    /// `flow` events written (TCP flows with hits, when they ended).
    pub flows: u64,
    pub io_error: Option<std::io::Error>,
    /// The store writer's counters, after everything queued was committed.
    pub store: Option<Arc<WriterStats>>,
}

/// Start the sink stage: alert log, offender table, hit metrics.
pub fn start_sink(
    rx: Receiver<Event>,
    mut out: Box<dyn Write + Send>,
    sensor_id: String,
    metrics: Option<Arc<Metrics>>,
    store: Option<StoreWriter>,
    summary_interval_s: u64,
) -> std::thread::JoinHandle<SinkResult> {
    std::thread::Builder::new()
        .name("gw-sink".into())
        .spawn(move || {
            let mut r = SinkResult {
                offenders: OffenderTable::default(),
                alerts: 0,
                summaries: 0,
                flows: 0,
                io_error: None,
                store: None,
            };
            let mut per_unit: HashMap<String, i64> = HashMap::new();
            let mut agg = Aggregator::new(summary_interval_s, DEFAULT_PAIRS);
            let mut due: Vec<String> = Vec::new();
            let write = |out: &mut Box<dyn Write + Send>, r: &mut SinkResult, line: &str| {
                if let Err(e) = writeln!(out, "{line}") {
                    tracing::error!("alert log write failed: {e}");
                    r.io_error.get_or_insert(e);
                }
            };
            loop {
                let hit = match rx.recv_timeout(FLUSH_EVERY) {
                    Ok(Event::Hit(h)) => h,
                    Ok(Event::Name(ts, n)) => {
                        if let Some(s) = &store {
                            s.offer_name(NameRecord::from_host_name(ts, *n));
                        }
                        continue;
                    }
                    Ok(Event::Flow(f)) => {
                        write(&mut out, &mut r, &flow_json(&f, &sensor_id));
                        r.flows += 1;
                        if let Some(m) = &metrics {
                            m.flow_events.inc();
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        agg.due(&sensor_id, &mut due);
                        for l in due.drain(..) {
                            write(&mut out, &mut r, &l);
                            r.summaries += 1;
                        }
                        if let Err(e) = out.flush() {
                            r.io_error.get_or_insert(e);
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                let line = alert_json(&hit, &sensor_id);
                let full = agg.offer(&hit, &sensor_id, &mut due);
                if full {
                    write(&mut out, &mut r, &line);
                    r.alerts += 1;
                }
                for l in due.drain(..) {
                    write(&mut out, &mut r, &l);
                    r.summaries += 1;
                }
                if let Some(s) = &store {
                    // Never waits: a slow disk costs store records (counted),
                    // never capture.
                    s.offer(StoreRecord::from_hit(&hit, line));
                }
                let ind = &hit.indicator;
                let new = r.offenders.add(
                    &hit.unit.code,
                    &hit.unit.name,
                    hit.host,
                    &ind.value,
                    &ind.feed.category,
                    hit.ts_ns,
                );
                if let Some(m) = &metrics {
                    m.hits
                        .with_label_values(&[
                            &ind.feed.name,
                            &ind.feed.category,
                            ind.feed.severity.as_str(),
                            &hit.unit.code,
                        ])
                        .inc();
                    if full {
                        m.alerts_written.inc();
                    }
                    if new {
                        let n = per_unit.entry(hit.unit.code.clone()).or_insert(0);
                        *n += 1;
                        m.offender_hosts
                            .with_label_values(&[&hit.unit.code])
                            .set(*n);
                    }
                }
            }
            agg.flush_all(&sensor_id, &mut due);
            for l in due.drain(..) {
                write(&mut out, &mut r, &l);
                r.summaries += 1;
            }
            if let Err(e) = out.flush() {
                r.io_error.get_or_insert(e);
            }
            r.store = store.map(StoreWriter::finish);
            r
        })
        .expect("spawn sink thread")
}

/// Everything a run produced.
pub struct RunOutcome {
    pub stats: Stats,
    pub queue_drops: u64,
    pub sink: SinkResult,
    /// Per capture interface (live runs only).
    pub captures: Vec<CaptureTotals>,
}

/// One capture interface at exit: packets its thread read, and libpcap's
/// kernel and interface drop counts, summed over every handle it opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureTotals {
    pub name: String,
    pub received: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
}

impl CaptureTotals {
    fn of(c: &CaptureShared) -> CaptureTotals {
        CaptureTotals {
            name: c.name.clone(),
            received: c.packets.load(Ordering::Relaxed),
            kernel_drops: c.kernel_drops.load(Ordering::Relaxed),
            interface_drops: c.interface_drops.load(Ordering::Relaxed),
        }
    }
}

/// The one-line capture summary printed at shutdown.
pub fn capture_summary(captures: &[CaptureTotals], queue_drops: u64) -> String {
    let sum = |f: fn(&CaptureTotals) -> u64| captures.iter().map(f).sum::<u64>();
    format!(
        "capture: {} received, {} dropped by kernel, {} by interface, {queue_drops} at queues",
        sum(|c| c.received),
        sum(|c| c.kernel_drops),
        sum(|c| c.interface_drops),
    )
}

/// The per-interface table of `run --stats`.
pub fn capture_table(captures: &[CaptureTotals]) -> String {
    let mut t = format!(
        "capture by interface:\n  {:<16} {:>14} {:>14} {:>17}\n",
        "interface", "received", "kernel_dropped", "interface_dropped"
    );
    for c in captures {
        t.push_str(&format!(
            "  {:<16} {:>14} {:>14} {:>17}\n",
            c.name, c.received, c.kernel_drops, c.interface_drops
        ));
    }
    t
}

/// Replay files through the full pipeline (blocking queues: nothing dropped).
pub fn replay_parallel(
    files: &[PathBuf],
    sizing: Sizing,
    intel: Arc<Intel>,
    units: Arc<Units>,
    out: Box<dyn Write + Send>,
    sensor_id: &str,
) -> RunOutcome {
    let (tx, rx) = bounded::<Event>(HIT_QUEUE);
    let sink = start_sink(rx, out, sensor_id.into(), None, None, 0);
    // One table of DNS-learned links for all workers: the answer and the
    // later connection are different flows, often on different workers.
    let links = Arc::new(crate::correlate::DnsLinks::default());
    // Host names, likewise: a DHCP exchange and the host's hits are
    // different flows.
    let known = Arc::new(crate::hostnames::known::KnownNames::default());
    let flows = Config::default().flow_config(sizing.workers);
    let mut worker = 0u64;
    let pipe = Pipeline::start(
        sizing,
        || {
            worker += 1;
            Engine::with_links(intel.clone(), units.clone(), links.clone())
                .with_known_names(known.clone())
                .with_flow_config(flows, worker)
        },
        tx,
    );
    {
        let mut router = pipe.router(Backpressure::Block);
        for f in files {
            let rep = read_file_shared(f, |p, map| router.route_in(p, map));
            for p in rep.problems {
                tracing::warn!("{p}");
            }
        }
    }
    let queue_drops = pipe.queue_drops();
    let stats = pipe.finish();
    let sink = sink.join().unwrap_or_else(|_| SinkResult {
        store: None,
        offenders: OffenderTable::default(),
        alerts: 0,
        summaries: 0,
        flows: 0,
        io_error: Some(std::io::Error::other("sink thread panicked")),
    });
    RunOutcome {
        stats,
        queue_drops,
        sink,
        captures: Vec::new(),
    }
}

/// Capture handles opened at start, one per configured interface.
pub type Opened = Vec<(InterfaceConfig, pcap::Capture<pcap::Active>)>;

/// Open every interface, so that a missing one or a missing capability is
/// an error at start (every problem listed), before any thread runs or any
/// file is created.
pub fn open_interfaces(cfg: &Config) -> Result<Opened> {
    if cfg.interface.is_empty() {
        anyhow::bail!(
            "no interface to capture on: add an [[interface]] to the config or pass --interface IFACE"
        );
    }
    let mut opened = Vec::new();
    let mut errs = Vec::new();
    for i in &cfg.interface {
        match live::open(i) {
            Ok(c) => opened.push((i.clone(), c)),
            Err(e) => errs.push(format!("{e:#}")),
        }
    }
    if !errs.is_empty() {
        anyhow::bail!("{}", errs.join("\n"));
    }
    Ok(opened)
}

/// Run the live sensor on the `opened` interfaces until SIGINT/SIGTERM.
pub fn run_live(
    cfg: &Config,
    opened: Opened,
    intel: Arc<Intel>,
    units: Arc<Units>,
    metrics: Arc<Metrics>,
    out: Box<dyn Write + Send>,
    store: Option<StoreWriter>,
) -> Result<RunOutcome> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("install signal handler")?;
    }
    let sizing = Sizing {
        workers: cfg.workers(),
        queue_batches: cfg.queue_batches,
        batch_packets: cfg.batch_packets,
    };
    let (tx, rx) = bounded::<Event>(HIT_QUEUE);
    if let Some(w) = &store {
        metrics.watch_store(w.stats.clone());
    }
    let sink = start_sink(
        rx,
        out,
        cfg.sensor_id.clone(),
        Some(metrics.clone()),
        store,
        cfg.alert_summary_interval_s,
    );
    // One table of DNS-learned links for all workers: the answer and the
    // later connection are different flows, often on different workers.
    let links = Arc::new(crate::correlate::DnsLinks::default());
    // Host names, likewise: a DHCP exchange and the host's hits are
    // different flows.
    let known = Arc::new(crate::hostnames::known::KnownNames::default());
    metrics.watch_links(links.clone());
    let correlate = cfg.dns_correlation;
    let resolvers = cfg.resolvers();
    let reassemble = cfg.flows.reassembly;
    let flows = cfg.flow_config(sizing.workers);
    let mut worker = 0u64;
    let pipe = Pipeline::start(
        sizing,
        || {
            worker += 1;
            let e = Engine::with_links(intel.clone(), units.clone(), links.clone())
                .with_known_names(known.clone())
                .with_resolvers(&resolvers)
                .with_flow_config(flows, worker);
            let e = if reassemble {
                e
            } else {
                e.without_reassembly()
            };
            if correlate {
                e
            } else {
                e.without_correlation()
            }
        },
        tx,
    );
    metrics.watch_workers(pipe.shared.clone());
    let mut threads = Vec::new();
    let mut captures = Vec::new();
    for (icfg, cap) in opened {
        // `up` and `running` are set by the thread once it has read the link
        // state: until then /healthz says "starting".
        let shared = Arc::new(CaptureShared {
            name: icfg.name.clone(),
            ..Default::default()
        });
        metrics.watch_capture(shared.clone());
        captures.push(shared.clone());
        let router = pipe.router(Backpressure::Drop);
        let stop = stop.clone();
        let name = icfg.name.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("gw-cap-{name}"))
                .spawn(move || live::run(icfg, cap, router, stop, shared))
                .context("spawn capture thread")?,
        );
        tracing::info!("capturing on {name:?} with {} worker(s)", sizing.workers);
    }
    metrics.captures_started();
    for t in threads {
        let _ = t.join();
    }
    tracing::info!("stopping: capture closed, draining queues");
    let queue_drops = pipe.queue_drops();
    let stats = pipe.finish();
    let sink = sink
        .join()
        .map_err(|_| anyhow::anyhow!("sink thread panicked"))?;
    metrics.refresh();
    Ok(RunOutcome {
        stats,
        queue_drops,
        sink,
        captures: captures.iter().map(|c| CaptureTotals::of(c)).collect(),
    })
}

/// Interfaces from `--interface` replace the configured ones, keeping any
/// settings configured for the same name.
pub fn override_interfaces(cfg: &mut Config, names: &[String]) {
    if names.is_empty() {
        return;
    }
    cfg.interface = names
        .iter()
        .map(|n| {
            cfg.interface
                .iter()
                .find(|i| &i.name == n)
                .cloned()
                .unwrap_or_else(|| InterfaceConfig::named(n))
        })
        .collect();
}
