//! `gatewatch export`: offender hosts per unit for the units to act on.
//!
//! The offender store is the source ([`table`] selects, [`text`] writes CSV
//! and JSON, [`xlsx`] the workbook). Alert logs from before the store are
//! still read by [`read_alert_logs`], in the older column layout.

pub mod hygiene;
pub mod table;
pub mod text;
pub mod xlsx;

pub use hygiene::{HygieneSelection, select_hygiene};
pub use table::{ExportRow, Selection, parse_since, select_offenders};

use crate::output::eve::{AlertRecord, parse_eve_time};
use crate::output::offenders::{OffenderRow, OffenderTable};
use anyhow::{Context as _, Result, bail};
use std::io::{BufRead, Write};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
    /// Excel workbook: one sheet per unit (needs `-o FILE`).
    Xlsx,
}

/// Problems met while reading an alert log; reported, not fatal.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub alerts: u64,
    pub bad_lines: Vec<String>,
}

/// Build the offender table from alert log files.
pub fn read_alert_logs(paths: &[impl AsRef<Path>]) -> Result<(OffenderTable, ReadReport)> {
    let mut t = OffenderTable::default();
    let mut rep = ReadReport::default();
    for p in paths {
        let p = p.as_ref();
        let f = std::fs::File::open(p).with_context(|| {
            format!(
                "{}: cannot open alert log; run `gatewatch replay` first or pass --alerts",
                p.display()
            )
        })?;
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line.with_context(|| format!("{}:{}: read error", p.display(), i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let rec: AlertRecord = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    rep.bad_lines.push(format!(
                        "{}:{}: not a gatewatch alert: {e}",
                        p.display(),
                        i + 1
                    ));
                    continue;
                }
            };
            let hits = match rec.event_type.as_str() {
                _ if !rec.offender => continue,
                "alert" => 1,
                "alert_summary" => rec.count.unwrap_or(0),
                _ => continue,
            };
            let Some(ts) = parse_eve_time(&rec.timestamp) else {
                rep.bad_lines.push(format!(
                    "{}:{}: bad timestamp {:?}",
                    p.display(),
                    i + 1,
                    rec.timestamp
                ));
                continue;
            };
            rep.alerts += 1;
            t.add_n(
                &rec.unit,
                &rec.unit_name,
                rec.host_ip,
                &rec.indicator,
                &rec.category,
                ts,
                hits,
            );
        }
    }
    Ok((t, rep))
}

/// Write alert-log rows in `format`; XLSX is store-only.
pub fn write_rows(rows: &[OffenderRow], format: ExportFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        ExportFormat::Xlsx => bail!("an XLSX export needs the offender store"),
        ExportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)?;
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            if rows.is_empty() {
                w.write_record([
                    "unit",
                    "unit_name",
                    "host_ip",
                    "hits",
                    "distinct_indicators",
                    "indicators",
                    "categories",
                    "first_seen",
                    "last_seen",
                ])?;
            }
            for r in rows {
                w.serialize(r)?;
            }
            w.flush()?;
        }
    }
    Ok(())
}

/// Select rows: one unit (must exist in the log or the units file) or all.
pub fn select(
    t: &OffenderTable,
    unit: Option<&str>,
    known_unit: impl Fn(&str) -> bool,
) -> Result<Vec<OffenderRow>> {
    if let Some(u) = unit
        && !known_unit(u)
        && !t.units().contains(u)
    {
        bail!("unknown unit code {u:?}: not in the units file and no alert names it");
    }
    Ok(t.rows(unit))
}
