//! `gatewatch report`: the command's glue (arguments to a written file).

use crate::reports::report::{
    DateArg, Period, Report, ReportFormat, Request, html, markdown, xlsx,
};
use crate::run::config::DEFAULT_STORE;
use crate::store::Store;
use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// First day: YYYY-MM-DD (from local midnight) or RFC 3339.
    #[arg(long, value_name = "DATE", value_parser = DateArg::parse)]
    pub from: DateArg,
    /// Last day, included: YYYY-MM-DD (to the next local midnight) or
    /// RFC 3339 (up to and including that instant).
    #[arg(long, value_name = "DATE", value_parser = DateArg::parse)]
    pub to: DateArg,
    /// Output format (default: from the -o extension, else md).
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// Offender store written by `run` or `replay --store`.
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: PathBuf,
    /// Report this unit only (no province roll-up).
    #[arg(long, value_name = "CODE")]
    pub unit: Option<String>,
    /// Units file, to accept a --unit that has no offenders yet.
    #[arg(long, default_value = "feeds/units.csv")]
    pub units: PathBuf,
    /// Output file; standard output if omitted (md and html only).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Report from the central PostgreSQL instead of a store: the nation,
    /// or one --province (units of the nation are named province/code).
    #[arg(long, env = "GATEWATCH_CENTRAL_URL", hide_env_values = true)]
    pub central: Option<String>,
    /// PEM certificate of the CA of the central's certificate (TLS).
    #[arg(long, value_name = "PEM", requires = "central")]
    pub central_ca: Option<PathBuf>,
    /// With --central: one province only.
    #[arg(long, requires = "central")]
    pub province: Option<String>,
}

pub fn cmd_report(a: ReportArgs) -> Result<ExitCode> {
    let period = Period::new(a.from, a.to).map_err(|e| anyhow!(e))?;
    let format = a
        .format
        .or_else(|| a.output.as_deref().and_then(ReportFormat::from_path))
        .unwrap_or(ReportFormat::Md);
    if format == ReportFormat::Xlsx && a.output.is_none() {
        bail!("--format xlsx writes a workbook file: give its path with -o FILE");
    }
    let report = match &a.central {
        Some(url) => {
            let c = super::central::CentralArgs {
                url,
                ca: a.central_ca.as_deref(),
                province: a.province.as_deref(),
            };
            super::central::report(&c, period, a.unit.as_deref())?
        }
        None => {
            let mut store = open_store(&a.store)?;
            let req = Request {
                period,
                unit: a.unit.as_deref(),
                known_units: known_units(&a.units),
            };
            Report::build(&mut store, &req)?
        }
    };
    write(&report, format, a.output.as_deref())?;
    let to = a
        .output
        .as_ref()
        .map_or("standard output".into(), |p| p.display().to_string());
    tracing::info!(
        "report {} for {} unit(s) written to {to}",
        report.period_line(),
        report.units.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// A missing store is the usual first-run mistake: say how to make one.
fn open_store(path: &Path) -> Result<Store> {
    if !path.is_file() {
        bail!(
            "--store {}: no offender store there; record one first with \
             `gatewatch run --store {0}` (live) or `gatewatch replay --store {0} CAPTURE...`, \
             or point --store at the sensor's store",
            path.display()
        );
    }
    Ok(Store::open_read_only(path)?)
}

/// Codes and names from the units file, so `--unit` accepts a unit with no
/// offenders yet; an unreadable file only narrows that, as in `export`.
fn known_units(path: &Path) -> Vec<(String, String)> {
    super::unit_names(path).unwrap_or_else(|e| {
        tracing::debug!("units file not used: {e}");
        Vec::new()
    })
}

fn write(r: &Report, format: ReportFormat, out: Option<&Path>) -> Result<()> {
    let text = match format {
        ReportFormat::Md => markdown::render(r),
        ReportFormat::Html => html::render(r),
        ReportFormat::Xlsx => {
            let p = out.context("xlsx needs -o")?;
            return xlsx::write(r, p).with_context(|| format!("{}: cannot write", p.display()));
        }
    };
    match out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("{}: cannot write", p.display()))
        }
        None => {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes())?;
            Ok(o.flush()?)
        }
    }
}
