//! `report` and `export` over the central PostgreSQL (`--central URL`):
//! the nation, or one province (`--province`), with units named per
//! province (two provinces may share a unit code); and `gatewatch central`,
//! the central's own upkeep (`prune`).

use crate::reports::export::ExportFormat;
use crate::reports::report::{Period, Report};
use crate::store::Status;
use crate::store::central::Central;
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where the central is and which part of it.
pub struct CentralArgs<'a> {
    pub url: &'a str,
    pub ca: Option<&'a Path>,
    pub province: Option<&'a str>,
}

/// The campaign report of the central view for `period`.
pub fn report(c: &CentralArgs<'_>, period: Period, unit: Option<&str>) -> Result<Report> {
    let mut central = Central::connect(c.url, c.ca)?;
    match crate::reports::central::report(&mut central, period, c.province, unit)? {
        Some(r) => Ok(r),
        None => bail!(
            "--unit {}: no such unit with a detection in the period in the central view",
            unit.unwrap_or("")
        ),
    }
}

/// The central's hosts as CSV (UTF-8 with BOM, Vietnamese headers) or JSON.
pub fn export(
    c: &CentralArgs<'_>,
    unit: Option<&str>,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<usize> {
    let mut central = Central::connect(c.url, c.ca)?;
    let mut hosts = central.hosts(c.province)?;
    if let Some(u) = unit {
        hosts.retain(|h| h.unit == u);
    }
    match format {
        ExportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &hosts)?;
            writeln!(out)?;
        }
        ExportFormat::Csv => {
            out.write_all(b"\xEF\xBB\xBF")?;
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "Tỉnh",
                "Cảm biến",
                "Địa chỉ IP",
                "Mã đơn vị",
                "Tên máy",
                "Trạng thái",
                "Số lần kết nối",
            ])?;
            for h in &hosts {
                let status = Status::parse(&h.status).map_or("?", Status::label_vi);
                w.write_record([
                    h.province.as_str(),
                    &h.sensor,
                    &h.ip,
                    &h.unit,
                    h.hostname.as_deref().unwrap_or(""),
                    status,
                    &h.hits.to_string(),
                ])?;
            }
            w.flush()?;
        }
        ExportFormat::Xlsx => bail!("--central exports CSV or JSON"),
    }
    Ok(hosts.len())
}

#[derive(Subcommand, Debug)]
pub enum CentralCmd {
    /// Drop the central's raw hits of the days before the last N (whole
    /// day partitions of gw_hits); hosts and their status history stay.
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// The central: a postgres:// URL (its password is never printed).
    #[arg(long, env = "GATEWATCH_CENTRAL_URL", hide_env_values = true)]
    pub central: String,
    /// PEM certificate of the CA that signed the central's certificate (TLS).
    #[arg(long, value_name = "PEM")]
    pub central_ca: Option<PathBuf>,
    /// Keep the hits of this many UTC days, today included.
    #[arg(long, value_name = "N")]
    pub keep_days: u32,
    /// Keep which hosts hit in which day and hour (gw_host_days,
    /// gw_host_hours: what a period's figures read) this many days, so past
    /// periods can be reported after their raw hits are gone.
    #[arg(long, value_name = "N", default_value_t = 400)]
    pub keep_host_days: u32,
}

pub fn cmd_prune(a: PruneArgs) -> Result<ExitCode> {
    if a.keep_days == 0 {
        bail!(
            "--keep-days 0 would drop today's hits too: give the number of days to keep (1 keeps today)"
        );
    }
    if a.keep_host_days < a.keep_days {
        bail!(
            "--keep-host-days {} is below --keep-days {}: the figures of kept hits would go; keep them at least as long",
            a.keep_host_days,
            a.keep_days
        );
    }
    let today = chrono::Utc::now().date_naive();
    let first_day = |n: u32, flag: &str| {
        today
            .checked_sub_days(chrono::Days::new(u64::from(n) - 1))
            .ok_or_else(|| anyhow::anyhow!("{flag} {n}: too many days"))
    };
    let first = first_day(a.keep_days, "--keep-days")?;
    let first_host_day = first_day(a.keep_host_days, "--keep-host-days")?;
    let mut central = Central::connect(&a.central, a.central_ca.as_deref())?;
    let periods = central.drop_host_periods_before(first_host_day)?;
    println!("deleted {periods} host-day and host-hour row(s) before {first_host_day} (UTC)");
    let dropped = central.drop_days_before(first)?;
    let kept = central.hit_days()?.len();
    println!(
        "dropped {} day partition(s) of gw_hits before {first} (UTC){}; {kept} day(s) kept; hosts and status history untouched",
        dropped.len(),
        if dropped.is_empty() {
            String::new()
        } else {
            format!(": {}", dropped.join(", "))
        }
    );
    Ok(ExitCode::SUCCESS)
}
