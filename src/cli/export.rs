//! `gatewatch export`: offender hosts per unit, from the store (or, for logs
//! from before the store, from alert logs).

use crate::detect::attribution::Units;
use crate::reports::export::{ExportFormat, read_alert_logs, select, write_rows};
use crate::reports::export::{parse_since, select_hygiene, select_offenders, text, xlsx};
use crate::run::config::DEFAULT_STORE;
use crate::store::Store;
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Unit code to export.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub unit: Option<String>,
    /// Export every unit.
    #[arg(long)]
    pub all: bool,
    /// Only hosts seen since DATE: YYYY-MM-DD (from local midnight) or an
    /// RFC 3339 time.
    #[arg(long, value_name = "DATE", value_parser = parse_since, conflicts_with = "alerts")]
    pub since: Option<i64>,
    /// csv (UTF-8 with BOM), json, or xlsx (one sheet per unit; needs -o).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Offender store to read (read-only; a running sensor may write to it).
    #[arg(long, default_value = DEFAULT_STORE, conflicts_with = "alerts")]
    pub store: PathBuf,
    /// Read these alert logs instead of the store (logs from before the
    /// store; older column layout).
    #[arg(long, value_name = "FILE")]
    pub alerts: Vec<PathBuf>,
    /// With --alerts: units file, to accept a unit code that has no offenders.
    #[arg(long, default_value = "feeds/units.csv")]
    pub units: PathBuf,
    /// List every host with a sign of cracked software or an antivirus
    /// update, or seen on the network (history), offender or not, instead
    /// of the offenders: estimates to check, not infections.
    #[arg(long, conflicts_with = "alerts")]
    pub hygiene: bool,
    /// Output file; standard output if omitted.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Export the hosts of the central PostgreSQL instead of a store (CSV
    /// or JSON): the nation, or one --province.
    #[arg(long, env = "GATEWATCH_CENTRAL_URL", hide_env_values = true, conflicts_with_all = ["alerts", "hygiene"])]
    pub central: Option<String>,
    /// PEM certificate of the CA of the central's certificate (TLS).
    #[arg(long, value_name = "PEM", requires = "central")]
    pub central_ca: Option<PathBuf>,
    /// With --central: one province only.
    #[arg(long, requires = "central")]
    pub province: Option<String>,
}

pub fn cmd_export(a: ExportArgs) -> Result<ExitCode> {
    if a.format == ExportFormat::Xlsx && a.output.is_none() {
        bail!("--format xlsx writes a workbook file: give it with -o FILE.xlsx");
    }
    if !a.alerts.is_empty() {
        return export_alert_logs(a);
    }
    if let Some(url) = &a.central {
        let c = super::central::CentralArgs {
            url,
            ca: a.central_ca.as_deref(),
            province: a.province.as_deref(),
        };
        let n = emit(
            &a,
            &|w| super::central::export(&c, a.unit.as_deref(), a.format, w).map(|_| ()),
            &|_| bail!("--central exports CSV or JSON"),
        )?;
        if let Some(p) = n {
            tracing::info!("central hosts written to {}", p.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut store = Store::open_read_only(&a.store).context(
        "cannot export from the offender store (for an alert log from before the store, pass --alerts FILE)",
    )?;
    if a.hygiene {
        return export_hygiene(&a, &mut store);
    }
    let sel = select_offenders(&store, a.unit.as_deref(), a.since)?;
    let wrote = emit(
        &a,
        &|w| match a.format {
            ExportFormat::Json => text::write_json(&sel.rows, w),
            _ => text::write_csv(&sel.rows, w),
        },
        &|p| xlsx::write_xlsx(&sel, p),
    )?;
    if let Some(p) = wrote {
        tracing::info!(
            "{} host(s) in {} unit(s) written to {}",
            sel.rows.len(),
            sel.units.len(),
            p.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--hygiene`: the hygiene hosts, in the formats of the offender export.
fn export_hygiene(a: &ExportArgs, store: &mut Store) -> Result<ExitCode> {
    let sel = select_hygiene(store, a.unit.as_deref(), a.since)?;
    let wrote = emit(
        a,
        &|w| match a.format {
            ExportFormat::Json => text::write_json(&sel.rows, w),
            _ => text::write_hygiene_csv(&sel.rows, w),
        },
        &|p| xlsx::write_hygiene_xlsx(&sel, p),
    )?;
    if let Some(p) = wrote {
        tracing::info!(
            "{} hygiene host(s) in {} unit(s) written to {} (estimates, not infections)",
            sel.rows.len(),
            sel.units.len(),
            p.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Write an export to standard output or `-o` (a workbook for xlsx);
/// returns the file written, if any.
fn emit<'a>(
    a: &'a ExportArgs,
    text_out: &dyn Fn(&mut dyn Write) -> Result<()>,
    workbook: &dyn Fn(&Path) -> Result<()>,
) -> Result<Option<&'a Path>> {
    let Some(p) = a.output.as_deref() else {
        text_out(&mut std::io::stdout().lock())?;
        return Ok(None);
    };
    if a.format == ExportFormat::Xlsx {
        workbook(p)?;
        return Ok(Some(p));
    }
    let file =
        std::fs::File::create(p).with_context(|| format!("{}: cannot create", p.display()))?;
    let mut w = std::io::BufWriter::new(file);
    text_out(&mut w)?;
    w.flush()
        .with_context(|| format!("{}: cannot write", p.display()))?;
    Ok(Some(p))
}

/// The export as it was before the store: from alert logs.
fn export_alert_logs(a: ExportArgs) -> Result<ExitCode> {
    if a.format == ExportFormat::Xlsx {
        bail!("--format xlsx reads the offender store; drop --alerts, or export csv or json");
    }
    let (table, rep) = read_alert_logs(&a.alerts)?;
    for b in rep.bad_lines.iter().take(10) {
        tracing::warn!("{b}");
    }
    let known = Units::load(&a.units, &[]).ok();
    let rows = select(&table, a.unit.as_deref(), |c| {
        known.as_ref().is_some_and(|u| u.find(c).is_some())
    })?;
    match &a.output {
        Some(p) => {
            let mut f = std::fs::File::create(p)
                .with_context(|| format!("{}: cannot create", p.display()))?;
            write_rows(&rows, a.format, &mut f)?;
            tracing::info!("{} host(s) written to {}", rows.len(), p.display());
        }
        None => write_rows(&rows, a.format, &mut std::io::stdout().lock())?,
    }
    Ok(ExitCode::SUCCESS)
}
