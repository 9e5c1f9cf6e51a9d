//! `gatewatch retro`: hunt the store's history with the feeds as they are
//! now; past contacts with indicators learned since become hits marked
//! `retro` in the store (and the alert log with `--alerts`).

use super::{IntelArgs, STORE_QUEUE};
use crate::detect::heuristics::settings;
use crate::output::sink::{HitSink, SinkOptions, StorePolicy, open_output};
use crate::reports::report::period::{DateArg, Period};
use crate::run::config::load_inputs;
use crate::run::retro::{Reported, RetroOptions, hunt};
use crate::store::Store;
use crate::store::writer::StoreWriter;
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

#[derive(Args, Debug)]
pub struct RetroArgs {
    #[command(flatten)]
    pub intel: IntelArgs,
    /// The offender store whose history is hunted (and where hits go).
    #[arg(long, value_name = "FILE")]
    pub store: PathBuf,
    /// Only history from this day (local time) or RFC 3339 instant on.
    #[arg(long, value_name = "DATE", value_parser = DateArg::parse)]
    pub since: Option<DateArg>,
    /// Also append the hits as EVE alerts to this file (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// Heuristics settings (TOML, as `[heuristics]`): whether DNS answer
    /// addresses are matched (`sinkhole_answer`).
    #[arg(long, value_name = "FILE")]
    pub heuristics: Option<PathBuf>,
    /// Sensor name written in every alert.
    #[arg(long, env = "GATEWATCH_SENSOR_ID", default_value = "gatewatch")]
    pub sensor_id: String,
}

pub fn cmd_retro(a: RetroArgs) -> Result<ExitCode> {
    let cfg = a.intel.config()?;
    let inputs = load_inputs(&cfg)?;
    let h = match &a.heuristics {
        Some(p) => settings::load(p)?,
        None => settings::Settings::default(),
    };
    let since_ns = match a.since {
        Some(d) => Some(
            Period::new(d, d)
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?
                .from_ns,
        ),
        None => None,
    };
    let o = RetroOptions {
        since_ns,
        sinkhole: h.enabled && h.sinkhole.enabled,
    };
    let reader = Store::open_read_only(&a.store)?;
    let out = match &a.alerts {
        Some(p) => open_output(p, true).with_context(|| format!("{}: cannot open", p.display()))?,
        None => Box::new(std::io::sink()),
    };
    let mut opts = SinkOptions::new(&a.sensor_id, 0);
    let w = StoreWriter::start(Store::open(&a.store)?, STORE_QUEUE, None);
    opts.store = Some((w, StorePolicy::Wait));
    let mut sink = HitSink::new(out, opts);
    let mut reported = Reported::new();
    let rep = hunt(
        &reader,
        &inputs.snapshot,
        &inputs.units,
        &o,
        &mut reported,
        |hit| crate::detect::Sink::hit(&mut sink, hit),
    )?;
    let done = sink.finish();
    let size = reader.history_size()?;
    println!(
        "retro-hunt of {}: {} day(s) of history, {} host-day(s), {} row(s), {} name(s) and address(es)",
        a.store.display(),
        size.days,
        size.host_days,
        size.rows,
        size.values
    );
    println!(
        "{} value(s) on a feed now, {} row(s) read, {} already reported, {} skipped (allowlisted or not internal)",
        rep.matched, rep.rows, rep.known, rep.skipped
    );
    println!(
        "{} retro hit(s) on {} host(s) in {:.2} s",
        rep.hits,
        rep.hosts.len(),
        rep.took.as_secs_f64()
    );
    if let Some(st) = &done.store {
        let lost = st.overflow.load(Ordering::Relaxed);
        let errs = st.errors.load(Ordering::Relaxed);
        if lost > 0 || errs > 0 {
            bail!(
                "{}: {lost} hit(s) not stored, {errs} failed commit(s)",
                a.store.display()
            );
        }
    }
    if let Some(e) = &done.io_error {
        bail!("writing alerts failed: {e}");
    }
    Ok(ExitCode::SUCCESS)
}
