//! The `run` and `bench` commands: glue between the CLI, the config and the
//! sensor/pipeline.

use crate::cli::STORE_QUEUE;
use crate::cli::{BenchArgs, RunArgs, load_intel, load_intel_from};
use crate::config::Config;
use crate::intel::Intel;
use crate::intel::reload::Reloader;
use crate::metrics::{Metrics, serve};
use crate::pipeline::Sizing;
use crate::replay::open_output;
use crate::sensor::{
    capture_summary, capture_table, open_interfaces, override_interfaces, run_live,
};
use crate::store::Store;
use crate::store::writer::StoreWriter;
use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub fn cmd_run(a: RunArgs) -> Result<ExitCode> {
    let mut cfg = match &a.config {
        Some(p) => Config::load(p).context("configuration refused; fix these and run again")?,
        None => Config::default(),
    };
    override_interfaces(&mut cfg, &a.interfaces);
    if let Some(v) = a.metrics_listen {
        cfg.metrics.listen = v;
    }
    if let Some(v) = a.workers {
        cfg.workers = v;
    }
    if let Some(v) = a.alerts {
        cfg.alerts = v;
    }
    if let Some(v) = a.feeds {
        cfg.feeds = v;
    }
    if let Some(v) = a.units {
        cfg.units = v;
    }
    if let Some(v) = a.sensor_id {
        cfg.sensor_id = v;
    }
    if a.store.is_some() {
        cfg.store = a.store;
    }
    if a.no_store {
        cfg.store = Some(PathBuf::new());
    }
    if let Some(s) = a.summary_interval {
        cfg.alert_summary_interval_s = s;
    }
    if a.no_dns_correlation {
        cfg.dns_correlation = false;
    }
    let problems = cfg
        .validate("configuration")
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    let (snap, reports, _, units) =
        load_intel_from(&cfg.feeds, &cfg.units, &cfg.internal(), problems)?;
    let metrics = Metrics::new();
    let loaded: Vec<String> = reports
        .iter()
        .filter(|r| r.failed.is_none())
        .map(|r| r.name.clone())
        .collect();
    metrics.feeds_loaded(&snap, &loaded);
    tracing::info!(
        "{} indicators from {} feed(s), {} unit(s)",
        snap.len(),
        reports.len(),
        units.units().len()
    );
    let store_path = cfg.store_path();
    let (addr, _) = serve(cfg.metrics_addr(), metrics.clone(), store_path.clone())?;
    tracing::info!("metrics on http://{addr}/metrics");
    // Interfaces first: a start that fails on them creates no alert log.
    let opened = open_interfaces(&cfg)?;
    let out = open_output(&cfg.alerts, true)
        .with_context(|| format!("{}: cannot open alert log", cfg.alerts.display()))?;
    let store = match &store_path {
        Some(p) => {
            let s = Store::open(p)?;
            tracing::info!("offender store {}", p.display());
            let keep = Duration::from_secs(u64::from(cfg.store_retention_days) * 86_400);
            Some(StoreWriter::start(s, STORE_QUEUE, Some(keep)))
        }
        None => None,
    };
    let intel = Arc::new(Intel::new(snap));
    let feeds_cfg =
        crate::intel::feeds::FeedsConfig::load(&cfg.feeds).map_err(|e| anyhow::anyhow!("{e}"))?;
    let reloader = Arc::new(Reloader::new(&feeds_cfg, &reports, intel.clone()));
    let on_reload: crate::intel::triggers::OnReload = {
        let (m, intel) = (metrics.clone(), intel.clone());
        Arc::new(move |r| m.reloaded(r, &intel.load_full()))
    };
    {
        let (r, on) = (reloader.clone(), on_reload.clone());
        metrics.set_reload_hook(Arc::new(move || {
            let rep = r.reload();
            on(&rep);
            let code = if rep.config_error.is_some() { 422 } else { 200 };
            (code, rep.to_json())
        }));
    }
    let _triggers = crate::intel::triggers::start(reloader, on_reload, cfg.watch_feeds)
        .context("cannot set up feed reloading (SIGHUP handler or file watcher)")?;
    let o = run_live(&cfg, opened, intel, Arc::new(units), metrics, out, store)?;
    print!("{}", o.sink.offenders.summary());
    println!(
        "\n{} alert(s) and {} repeat summary event(s) appended to {}",
        o.sink.alerts,
        o.sink.summaries,
        cfg.alerts.display()
    );
    println!("{}", capture_summary(&o.captures, o.queue_drops));
    if let (Some(st), Some(p)) = (&o.sink.store, &store_path) {
        let (n, lost, errs) = (
            st.written.load(Ordering::Relaxed),
            st.overflow.load(Ordering::Relaxed),
            st.errors.load(Ordering::Relaxed),
        );
        println!(
            "store: {n} hit(s) recorded in {}, {lost} not stored, {errs} failed commit(s)",
            p.display()
        );
    }
    if a.stats {
        println!("\n{}\n  {:<28} {}", o.stats, "queue_drops", o.queue_drops);
        print!("{}", capture_table(&o.captures));
    }
    if let Some(e) = o.sink.io_error {
        anyhow::bail!("{}: writing alerts failed: {e}", cfg.alerts.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn cmd_bench(a: BenchArgs) -> Result<ExitCode> {
    let t = Instant::now();
    let (snap, _, _, units) = load_intel(&a.intel)?;
    println!(
        "feeds and units loaded in {:.3} s ({} indicators)",
        t.elapsed().as_secs_f64(),
        snap.len()
    );
    let intel = Arc::new(Intel::new(snap));
    let units = Arc::new(units);
    let counts = if a.workers.is_empty() {
        vec![1, Sizing::default_workers().max(2)]
    } else {
        a.workers.clone()
    };
    let rows = crate::benchmark::measure(&a.files, &intel, &units, &counts)
        .context("benchmark input must be classic pcap files")?;
    crate::benchmark::print(&mut std::io::stdout().lock(), &rows)?;
    Ok(ExitCode::SUCCESS)
}
