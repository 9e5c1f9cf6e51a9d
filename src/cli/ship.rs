//! `gatewatch ship`: send a store's journal to the central PostgreSQL once,
//! up to its newest row, and say what was sent.

use crate::run::config::DEFAULT_STORE;
use crate::run::ship::{ShipTarget, pass};
use crate::store::central::{BATCH_ROWS, ShipStats};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ShipArgs {
    /// The sensor's store (its spool).
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: PathBuf,
    /// The central: a postgres:// URL (its password is never printed).
    #[arg(long, env = "GATEWATCH_CENTRAL_URL", hide_env_values = true)]
    pub central: String,
    /// PEM certificate of the CA that signed the central's certificate (TLS).
    #[arg(long, value_name = "PEM")]
    pub central_ca: Option<PathBuf>,
    /// The province this sensor belongs to.
    #[arg(long)]
    pub province: String,
    /// Rows per batch (one transaction each).
    #[arg(long, env = "GATEWATCH_SHIP_BATCH", default_value_t = BATCH_ROWS)]
    pub batch_rows: usize,
    /// Stop after about this many rows (whole batches): spread a large
    /// backlog over several runs.
    #[arg(long)]
    pub max_rows: Option<u64>,
}

pub fn cmd_ship(a: ShipArgs) -> Result<ExitCode> {
    if !a.store.is_file() {
        bail!(
            "--store {}: no store there; point it at the sensor's store",
            a.store.display()
        );
    }
    let target = ShipTarget {
        url: a.central,
        ca: a.central_ca,
        province: a.province,
        batch: a.batch_rows,
        max_rows: a.max_rows,
    };
    let stats = ShipStats::default();
    let p = pass(&a.store, &target, &mut None, &stats)?;
    println!(
        "shipped {} row(s) in {} batch(es); the central holds this sensor up to row {}; {} row(s) left",
        p.rows, p.batches, p.acked, p.lag
    );
    Ok(ExitCode::SUCCESS)
}
