//! `gatewatch bench`: the full pipeline on capture files, against the floor.

use super::{EngineArgs, IntelArgs};
use crate::detect::attribution::Units;
use crate::intel::Intel;
use crate::run::bench::{measure, print};
use crate::run::config::{Config, load_inputs};
use crate::run::pipeline::Sizing;
use anyhow::{Context as _, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub intel: IntelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Worker counts to measure, e.g. `--workers 1 --workers 3`
    /// (default: 1 and cores minus one).
    #[arg(long)]
    pub workers: Vec<usize>,
    /// Record the retro-hunt's history as a sensor with a store does (the
    /// items reach the sink, which drops them): its cost on the hot path.
    #[arg(long)]
    pub history: bool,
}

pub fn cmd_bench(a: BenchArgs) -> Result<ExitCode> {
    let t = Instant::now();
    let mut o = a.intel.overrides();
    a.engine.apply(&mut o)?;
    let cfg = Config::resolve(None, &o)?;
    let inputs = load_inputs(&cfg)?;
    println!(
        "feeds and units loaded in {:.3} s ({} indicators)",
        t.elapsed().as_secs_f64(),
        inputs.snapshot.len()
    );
    let intel = Arc::new(Intel::new(inputs.snapshot));
    let units: Arc<Units> = Arc::new(inputs.units);
    let counts = if a.workers.is_empty() {
        vec![1, Sizing::default_workers().max(2)]
    } else {
        a.workers.clone()
    };
    let mut options = cfg.engine_options();
    options.history = a.history;
    let rows = measure(&a.files, &intel, &units, &options, &counts)
        .context("benchmark input must be classic pcap files")?;
    print(&mut std::io::stdout().lock(), &rows)?;
    Ok(ExitCode::SUCCESS)
}
