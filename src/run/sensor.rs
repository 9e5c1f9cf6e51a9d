//! The long-running sensor (`gatewatch run`): live interfaces -> pipeline
//! workers -> the sink, until SIGINT/SIGTERM, then a drain of every queue.

use super::config::{Config, InterfaceConfig};
use super::pipeline::{Backpressure, Pipeline, RunOutcome, Sizing};
use super::replay::EVENT_QUEUE;
use crate::capture::{CaptureShared, CaptureTotals, live};
use crate::detect::{Event, Recipe};
use crate::metrics::Metrics;
use crate::output::sink::HitSink;
use anyhow::{Context as _, Result};
use crossbeam_channel::bounded;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

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

/// The pipeline's size from the config.
pub fn sizing(cfg: &Config) -> Sizing {
    Sizing {
        workers: cfg.workers(),
        queue_batches: cfg.queue_batches,
        batch_packets: cfg.batch_packets,
    }
}

/// Run the live sensor on the `opened` interfaces until SIGINT/SIGTERM, with
/// engines from `recipe` (made for [`sizing`]'s workers), into `sink`.
pub fn run_live(
    cfg: &Config,
    opened: Opened,
    recipe: &Recipe,
    metrics: Arc<Metrics>,
    sink: HitSink<'static>,
    retro: Option<Arc<super::retro::LiveRetro>>,
) -> Result<RunOutcome> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("install signal handler")?;
    }
    let sizing = sizing(cfg);
    let (tx, rx) = bounded::<Event>(EVENT_QUEUE);
    if let Some(r) = &retro {
        r.connect(tx.clone());
    }
    let sink = sink.spawn(rx);
    let pipe = Pipeline::start(sizing, recipe, tx);
    metrics.workers.watch(pipe.worker_source());
    let captures = start_captures(opened, &pipe, &metrics, &stop, sizing.workers)?;
    let mut shared = Vec::new();
    for (c, t) in captures {
        let _ = t.join();
        shared.push(c);
    }
    tracing::info!("stopping: capture closed, draining queues");
    if let Some(r) = &retro {
        r.disconnect();
    }
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
        captures: shared.iter().map(|c| c.totals()).collect(),
    })
}

/// One capture thread per interface, each with its own router.
fn start_captures(
    opened: Opened,
    pipe: &Pipeline,
    metrics: &Metrics,
    stop: &Arc<AtomicBool>,
    workers: usize,
) -> Result<Vec<(Arc<CaptureShared>, std::thread::JoinHandle<()>)>> {
    let mut threads = Vec::new();
    for (icfg, cap) in opened {
        // `up` and `running` are set by the thread once it has read the link
        // state: until then /healthz says "starting".
        let shared = Arc::new(CaptureShared {
            name: icfg.name.clone(),
            ..Default::default()
        });
        metrics.capture.watch(shared.clone());
        let router = pipe.router(Backpressure::Drop);
        let (stop, name, s) = (stop.clone(), icfg.name.clone(), shared.clone());
        let t = std::thread::Builder::new()
            .name(format!("gw-cap-{name}"))
            .spawn(move || live::run(icfg, cap, router, stop, s))
            .context("spawn capture thread")?;
        tracing::info!("capturing on {name:?} with {workers} worker(s)");
        threads.push((shared, t));
    }
    metrics.capture.started();
    Ok(threads)
}
