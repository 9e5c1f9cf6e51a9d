//! `gatewatch replay`: capture files through one engine, inline, into the
//! alert log (and the offender store with `--store`).

use super::{EXIT_SKIPPED, EngineArgs, IntelArgs, STORE_QUEUE};
use crate::detect::Recipe;
use crate::intel::Intel;
use crate::metrics::Metrics;
use crate::output::sink::{HitSink, SinkOptions, SinkResult, StorePolicy, open_output};
use crate::run::config::{Config, Overrides, load_inputs};
use crate::run::replay::{ReplayReport, replay_with_progress};
use crate::run::status;
use crate::store::console::CaptureStatus;
use crate::store::writer::StoreWriter;
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Capture files, read in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub intel: IntelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Alert log (EVE JSON lines); `-` for standard output.
    #[arg(long, default_value = "gatewatch-data/alerts.jsonl")]
    pub alerts: PathBuf,
    /// Append to the alert log instead of replacing it.
    #[arg(long)]
    pub append: bool,
    /// Repeated hits of a (host, indicator) pair: after the first alert, one
    /// `alert_summary` event with counts per this many seconds of capture
    /// time (0, the default for replay: every hit is an alert).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub summary_interval: u64,
    /// Also log every DNS, TLS and HTTP observation (EVE dns/tls/http events).
    #[arg(long, value_name = "FILE")]
    pub observations: Option<PathBuf>,
    /// Print packet, protocol, parse-error and hit counters.
    #[arg(long)]
    pub stats: bool,
    /// Write the counters as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Sensor name written in every alert.
    #[arg(long, env = "GATEWATCH_SENSOR_ID", default_value = "gatewatch")]
    pub sensor_id: String,
    /// Also record the hits in this offender store (SQLite).
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
}

impl ReplayArgs {
    fn overrides(&self) -> Result<Overrides> {
        let mut o = self.intel.overrides();
        self.engine.apply(&mut o)?;
        o.alerts = Some(self.alerts.clone());
        o.sensor_id = Some(self.sensor_id.clone());
        o.summary_interval_s = Some(self.summary_interval);
        o.store = self.store.clone();
        o.no_store = self.store.is_none();
        Ok(o)
    }
}

pub fn cmd_replay(a: ReplayArgs) -> Result<ExitCode> {
    let cfg = Config::resolve(None, &a.overrides()?)?;
    let inputs = load_inputs(&cfg)?;
    let loaded: usize = inputs.reports.iter().map(|r| r.accepted).sum();
    tracing::info!(
        "{} indicators from {} feed(s), {} unit(s)",
        inputs.snapshot.len(),
        inputs.reports.len(),
        inputs.units.units().len()
    );
    if loaded == 0 {
        tracing::warn!("no indicators loaded: nothing can match");
    }
    let intel = Arc::new(Intel::new(inputs.snapshot));
    let fresh: Vec<String> = inputs
        .reports
        .iter()
        .filter(|r| r.failed.is_none())
        .map(|r| r.name.clone())
        .collect();
    let recipe = Recipe::new(intel.clone(), Arc::new(inputs.units), cfg.engine_options());
    let mut sink = HitSink::new(
        open_output(&cfg.alerts, a.append)
            .with_context(|| format!("{}: cannot open alert log", cfg.alerts.display()))?,
        sink_options(&cfg, &a)?,
    );
    let progress = Progress::new(&a.files);
    let report = replay_with_progress(&a.files, &mut recipe.engine(0), &mut sink, &mut |b| {
        progress.at(b)
    });
    progress.done();
    let done = sink.finish();
    check_store(&done, &cfg)?;
    if let Some(p) = cfg.store_path() {
        replay_status(&p, &cfg, &intel, &fresh, &a, &report);
    }
    if let Some(e) = &done.io_error {
        bail!("{}: writing alerts failed: {e}", cfg.alerts.display());
    }
    print_outcome(&done, &report, &a, &cfg)?;
    if report.skipped_something() {
        eprintln!(
            "warning: some input was skipped or only partly inspected ({} file problem(s), {} packet problem(s)); exit code {EXIT_SKIPPED}",
            report.problems.len(),
            report.stats.lost()
        );
        return Ok(ExitCode::from(EXIT_SKIPPED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The console's status row for this replay: its feeds and what it read.
fn replay_status(
    store: &std::path::Path,
    cfg: &Config,
    intel: &Intel,
    fresh: &[String],
    a: &ReplayArgs,
    report: &ReplayReport,
) {
    let m = Metrics::new();
    m.feeds.loaded(&intel.load_full(), fresh);
    let mut s = m.status(&cfg.sensor_id, "replay", status::now_ns());
    s.captures = vec![CaptureStatus {
        interface: format!("{} tệp pcap", a.files.len()),
        up: false,
        packets: report.stats.packets,
        errors: report.problems.len() as u64 + report.stats.lost(),
    }];
    if let Err(e) = status::write(store, &s) {
        tracing::warn!("sensor status not written: {e}");
    }
}

/// Replay's sink: the store waits (nothing is lost), observations if asked.
fn sink_options(cfg: &Config, a: &ReplayArgs) -> Result<SinkOptions<'static>> {
    let mut o = SinkOptions::new(&cfg.sensor_id, cfg.alert_summary_interval_s);
    if let Some(p) = cfg.store_path() {
        let s = super::open_store_for(&p, &cfg.sensor_id)?;
        let w = StoreWriter::start_with(s, STORE_QUEUE, None, cfg.history.clone());
        o.store = Some((w, StorePolicy::Wait));
    }
    if let Some(p) = &a.observations {
        let w = open_output(p, false).with_context(|| format!("{}: cannot open", p.display()))?;
        o.observations = Some(w);
    }
    Ok(o)
}

/// Everything reached the store, or say how much did not.
fn check_store(done: &SinkResult, cfg: &Config) -> Result<()> {
    let (Some(st), Some(p)) = (&done.store, cfg.store_path()) else {
        return Ok(());
    };
    let n = st.written.load(Ordering::Relaxed);
    let lost = st.overflow.load(Ordering::Relaxed);
    tracing::info!("{n} hit(s) recorded in the store {}", p.display());
    if lost > 0 {
        bail!(
            "{}: {lost} hit(s) could not be stored (see the errors above); they are in the alert log",
            p.display()
        );
    }
    Ok(())
}

/// The offender summary, what was written where, and the counters if asked.
fn print_outcome(
    done: &SinkResult,
    report: &ReplayReport,
    a: &ReplayArgs,
    cfg: &Config,
) -> Result<()> {
    print!("{}", done.offenders.summary());
    let to = if cfg.alerts.as_os_str() == "-" {
        "standard output".into()
    } else {
        cfg.alerts.display().to_string()
    };
    let c = done.counts;
    println!("\n{} alert(s) written to {to}", c.alerts);
    if c.summaries > 0 {
        println!(
            "{} repeat summary event(s) (alert_summary) for {} further hit(s)",
            c.summaries,
            c.hits - c.alerts
        );
    }
    if c.flows > 0 {
        println!(
            "{} flow event(s): TCP flows with hits, with their totals",
            c.flows
        );
    }
    if c.hygiene > 0 {
        println!(
            "{} hygiene event(s): hosts with a sign of cracked software (estimates, not infections)",
            c.hygiene
        );
    }
    if a.stats {
        println!("\n{}", report.stats);
    }
    if let Some(p) = &a.stats_json {
        std::fs::write(p, serde_json::to_string_pretty(&report.stats)?)
            .with_context(|| format!("{}: cannot write stats", p.display()))?;
    }
    Ok(())
}

/// A progress bar on standard error for a replay that runs longer than a
/// few seconds, when standard error is a terminal; silent otherwise (logs,
/// pipes, CI).
struct Progress {
    bar: indicatif::ProgressBar,
    terminal: bool,
    started: std::time::Instant,
    after: std::time::Duration,
}

/// How long a replay runs before its bar shows; `GATEWATCH_PROGRESS_AFTER_MS`
/// changes it (the tests use 0).
fn progress_after() -> std::time::Duration {
    let ms = std::env::var("GATEWATCH_PROGRESS_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    std::time::Duration::from_millis(ms)
}

impl Progress {
    fn new(files: &[PathBuf]) -> Progress {
        let total = files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::hidden(),
        );
        let style = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        );
        if let Ok(s) = style {
            bar.set_style(s.progress_chars("=> "));
        }
        Progress {
            bar,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            started: std::time::Instant::now(),
            after: progress_after(),
        }
    }

    fn at(&self, bytes: u64) {
        if self.terminal && self.bar.is_hidden() && self.started.elapsed() >= self.after {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        self.bar.set_position(bytes);
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}
