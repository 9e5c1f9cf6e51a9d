//! `gatewatch run`: the live sensor, from `gatewatch.toml` and the command
//! line's overrides.

use super::STORE_QUEUE;
use crate::detect::Recipe;
use crate::detect::attribution::Units;
use crate::intel::Intel;
use crate::intel::feeds::{FeedReport, FeedsConfig};
use crate::intel::reload::{Reload, Reloader};
use crate::intel::snap::swap::SnapshotReloader;
use crate::intel::triggers::{self, OnReload};
use crate::metrics::{Api, Metrics, serve};
use crate::output::sink::{HitSink, SinkOptions, SinkResult, StorePolicy, open_output};
use crate::run::config::{Config, FromSnapshot, Overrides, load_inputs};
use crate::run::fetch::Fetcher;
use crate::run::pipeline::RunOutcome;
use crate::run::retro::{LiveRetro, RetroOptions};
use crate::run::sensor::{capture_summary, capture_table, open_interfaces, run_live, sizing};
use crate::run::ship::Shipper;
use crate::run::status::{EVERY, StatusReporter};
use crate::store::Store;
use crate::store::central::{FetchStats, ShipStats, shown_url};
use crate::store::writer::StoreWriter;
use anyhow::{Context as _, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Sensor configuration (TOML); see deploy/gatewatch.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Interface to capture on (repeatable); replaces the configured list.
    #[arg(long = "interface", short = 'i')]
    pub interfaces: Vec<String>,
    /// Metrics and health listener, e.g. 127.0.0.1:9477.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Decode/match workers (0 = cores minus one).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Alert log; overrides the config.
    #[arg(long)]
    pub alerts: Option<PathBuf>,
    #[arg(long)]
    pub feeds: Option<PathBuf>,
    /// Match with this signed, compiled snapshot instead of the feeds;
    /// re-read on SIGHUP, `POST /api/reload` and when it changes.
    #[arg(long, value_name = "FILE.snap", requires = "snapshot_key")]
    pub snapshot: Option<PathBuf>,
    /// The public key snapshot files must be signed with.
    #[arg(long, value_name = "KEY.pub", requires = "snapshot")]
    pub snapshot_key: Option<PathBuf>,
    #[arg(long)]
    pub units: Option<PathBuf>,
    #[arg(long)]
    pub sensor_id: Option<String>,
    /// Offender store (SQLite); overrides the config. `--no-store` turns it off.
    #[arg(long, conflicts_with = "no_store")]
    pub store: Option<PathBuf>,
    #[arg(long)]
    pub no_store: bool,
    /// Repeated hits of a (host, indicator) pair: one `alert_summary` per
    /// this many seconds after the first alert (0: every hit); overrides
    /// `alert_summary_interval_s` (default 300).
    #[arg(long, value_name = "SECONDS")]
    pub summary_interval: Option<u64>,
    /// No DNS-to-connection correlation; overrides `dns_correlation`.
    #[arg(long)]
    pub no_dns_correlation: bool,
    /// Print the counters at exit.
    #[arg(long)]
    pub stats: bool,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            interfaces: self.interfaces.clone(),
            metrics_listen: self.metrics_listen.clone(),
            workers: self.workers,
            alerts: self.alerts.clone(),
            feeds: self.feeds.clone(),
            snapshot: self.snapshot.clone(),
            snapshot_key: self.snapshot_key.clone(),
            units: self.units.clone(),
            sensor_id: self.sensor_id.clone(),
            store: self.store.clone(),
            no_store: self.no_store,
            summary_interval_s: self.summary_interval,
            no_dns_correlation: self.no_dns_correlation,
            ..Overrides::default()
        }
    }
}

pub fn cmd_run(a: RunArgs) -> Result<ExitCode> {
    let cfg = Config::resolve(a.config.as_deref(), &a.overrides())
        .context("configuration refused; fix these and run again")?;
    let inputs = load_inputs(&cfg)?;
    let metrics = Metrics::new();
    let loaded: Vec<String> = inputs
        .reports
        .iter()
        .filter(|r| r.failed.is_none())
        .map(|r| r.name.clone())
        .collect();
    metrics.feeds.loaded(&inputs.snapshot, &loaded);
    tracing::info!(
        "{} indicators from {} feed(s), {} unit(s)",
        inputs.snapshot.len(),
        inputs.reports.len(),
        inputs.units.units().len()
    );
    let api = Api {
        store: cfg.store_path(),
        token: cfg.api_token().map_err(|e| anyhow::anyhow!(e))?,
    };
    let (addr, _) = serve(cfg.metrics_addr(), metrics.clone(), api)?;
    tracing::info!("metrics on http://{addr}/metrics");
    let _console = console(&cfg)?;
    // Interfaces first: a start that fails on them creates no alert log.
    let opened = open_interfaces(&cfg)?;
    let sink = live_sink(&cfg, &metrics)?;
    let intel = Arc::new(Intel::new(inputs.snapshot));
    let units = Arc::new(inputs.units);
    let retro = live_retro(&cfg, &units, &metrics);
    let (reloader, snapshot) = reloader(
        &cfg,
        &inputs.reports,
        inputs.from_snapshot,
        &intel,
        &metrics,
    )?;
    let on_reload = on_reload(&intel, &metrics, retro.clone());
    let _triggers = start_reloading(&cfg, reloader, on_reload.clone(), &metrics)?;
    let _fetcher = fetcher(&cfg, snapshot, on_reload, &metrics)?;
    let recipe = Recipe::new(intel, units, cfg.engine_options()).workers(sizing(&cfg).workers);
    let status = match cfg.store_path() {
        Some(p) => Some(StatusReporter::start(
            p,
            metrics.clone(),
            cfg.sensor_id.clone(),
            EVERY,
        )?),
        None => None,
    };
    let shipper = shipper(&cfg, &metrics)?;
    let o = run_live(&cfg, opened, &recipe, metrics, sink, retro)?;
    drop(status);
    drop(shipper);
    print_outcome(&o, &cfg, a.stats);
    if let Some(e) = &o.sink.io_error {
        anyhow::bail!("{}: writing alerts failed: {e}", cfg.alerts.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The web console, when `[console]` asks for it; its store must exist
/// (with an account) before the sensor starts, so it is opened here.
fn console(cfg: &Config) -> Result<Option<crate::console::Console>> {
    let Some(o) = super::serve::console_of(cfg) else {
        return Ok(None);
    };
    if let crate::console::Source::Store(store) = &o.source
        && !Store::open(store)?.has_accounts()?
    {
        tracing::warn!(
            "[console]: {} has no account yet, so no one can log in; add one: printf '%s\\n' \"$PW\" | gatewatch users add NAME --role province-admin --password-stdin --store {}",
            store.display(),
            store.display()
        );
    }
    Ok(Some(crate::console::start(o)?))
}

/// Shipping to the central, when `[central]` asks for it.
fn shipper(cfg: &Config, metrics: &Arc<Metrics>) -> Result<Option<Shipper>> {
    let (Some(c), Some(store)) = (&cfg.central, cfg.store_path()) else {
        return Ok(None);
    };
    let stats = Arc::new(ShipStats::default());
    metrics.ship.watch(stats.clone());
    tracing::info!(
        "shipping to {} as province {:?}",
        shown_url(&c.url),
        c.province
    );
    Ok(Some(Shipper::start(
        store,
        c.target(),
        c.interval(),
        stats,
    )?))
}

/// The live sink: appends to the alert log, never waits for the store
/// (drops and counts instead), tells the metrics.
fn live_sink(cfg: &Config, metrics: &Arc<Metrics>) -> Result<HitSink<'static>> {
    let out = open_output(&cfg.alerts, true)
        .with_context(|| format!("{}: cannot open alert log", cfg.alerts.display()))?;
    let mut o = SinkOptions::new(&cfg.sensor_id, cfg.alert_summary_interval_s);
    if let Some(p) = cfg.store_path() {
        let s = super::open_store_for(&p, &cfg.sensor_id)?;
        tracing::info!("offender store {}", p.display());
        let keep = Duration::from_secs(u64::from(cfg.store_retention_days) * 86_400);
        let w = StoreWriter::start_with(s, STORE_QUEUE, Some(keep), cfg.history.clone());
        metrics.sink.watch_store(w.stats.clone());
        o.store = Some((w, StorePolicy::DropWhenFull));
    }
    o.observer = Some(metrics.sink.clone());
    Ok(HitSink::new(out, o))
}

/// The retro-hunt after reloads, when the store keeps a history.
fn live_retro(cfg: &Config, units: &Arc<Units>, metrics: &Arc<Metrics>) -> Option<Arc<LiveRetro>> {
    let store = cfg.store_path().filter(|_| cfg.history.enabled)?;
    let h = &cfg.heuristics;
    let options = RetroOptions {
        since_ns: None,
        sinkhole: h.enabled && h.sinkhole.enabled,
    };
    Some(LiveRetro::new(
        store,
        units.clone(),
        options,
        metrics.clone(),
    ))
}

/// What reloads go through, and the snapshot reloader itself when the run
/// started from a snapshot file (the fetcher offers it what it fetches).
type Reloaders = (Arc<dyn Reload>, Option<Arc<SnapshotReloader>>);

/// What a reload re-reads: the snapshot file the run started from (its
/// reloader also returned, for the fetcher), else the feeds.
fn reloader(
    cfg: &Config,
    reports: &[FeedReport],
    from_snapshot: Option<FromSnapshot>,
    intel: &Arc<Intel>,
    metrics: &Metrics,
) -> Result<Reloaders> {
    if let Some(s) = from_snapshot {
        metrics.feeds.snapshot_version(s.info.version);
        let r = Arc::new(SnapshotReloader::new(
            &s.path,
            s.key,
            cfg.snapshot_min_fraction,
            intel.clone(),
            (&s.info, s.feeds),
        ));
        return Ok((r.clone(), Some(r)));
    }
    let feeds_cfg = FeedsConfig::load(&cfg.feeds).map_err(|e| anyhow::anyhow!("{e}"))?;
    let r = Reloader::new(&feeds_cfg, reports, intel.clone());
    Ok((Arc::new(r), None))
}

/// What follows every reload or fetched snapshot: the metrics, and a
/// retro-hunt after one that published a new snapshot.
fn on_reload(
    intel: &Arc<Intel>,
    metrics: &Arc<Metrics>,
    retro: Option<Arc<LiveRetro>>,
) -> OnReload {
    let (m, intel) = (metrics.clone(), intel.clone());
    Arc::new(move |r| {
        let snap = intel.load_full();
        m.feeds.reloaded(r, &snap);
        if let Some(retro) = retro.as_ref().filter(|_| r.swapped) {
            retro.after_reload(snap);
        }
    })
}

/// Reloads on SIGHUP, `POST /api/reload` and file changes, each followed
/// by `on_reload`.
fn start_reloading(
    cfg: &Config,
    reloader: Arc<dyn Reload>,
    on_reload: OnReload,
    metrics: &Arc<Metrics>,
) -> Result<triggers::Triggers> {
    {
        let (r, on) = (reloader.clone(), on_reload.clone());
        metrics.set_reload_hook(Arc::new(move || {
            let rep = r.reload();
            on(&rep);
            let code = if rep.config_error.is_some() { 422 } else { 200 };
            (code, rep.to_json())
        }));
    }
    triggers::start(reloader, on_reload, cfg.watch_feeds)
        .context("cannot set up feed reloading (SIGHUP handler or file watcher)")
}

/// Fetching newer snapshots from the central, when the run started from a
/// snapshot and `[central]` is set.
fn fetcher(
    cfg: &Config,
    snapshot: Option<Arc<SnapshotReloader>>,
    on_reload: OnReload,
    metrics: &Metrics,
) -> Result<Option<Fetcher>> {
    let (Some(c), Some(reloader)) = (&cfg.central, snapshot) else {
        return Ok(None);
    };
    let stats = Arc::new(FetchStats::default());
    metrics.ship.watch_fetch(stats.clone());
    tracing::info!(
        "asking {} for a newer feed snapshot every {} s",
        shown_url(&c.url),
        c.snapshot_interval_s
    );
    let f = Fetcher::start(
        c.fetch_source(),
        c.snapshot_interval(),
        reloader,
        on_reload,
        stats,
    )?;
    Ok(Some(f))
}

fn print_outcome(o: &RunOutcome, cfg: &Config, stats: bool) {
    print!("{}", o.sink.offenders.summary());
    println!(
        "\n{} alert(s) and {} repeat summary event(s) appended to {}",
        o.sink.counts.alerts,
        o.sink.counts.summaries,
        cfg.alerts.display()
    );
    println!("{}", capture_summary(&o.captures, o.queue_drops));
    print_store(&o.sink, cfg);
    if stats {
        println!("\n{}\n  {:<28} {}", o.stats, "queue_drops", o.queue_drops);
        print!("{}", capture_table(&o.captures));
    }
}

fn print_store(sink: &SinkResult, cfg: &Config) {
    let (Some(st), Some(p)) = (&sink.store, cfg.store_path()) else {
        return;
    };
    let n = st.written.load(Ordering::Relaxed);
    let lost = st.overflow.load(Ordering::Relaxed);
    let errs = st.errors.load(Ordering::Relaxed);
    println!(
        "store: {n} hit(s) recorded in {}, {lost} not stored, {errs} failed commit(s)",
        p.display()
    );
}
