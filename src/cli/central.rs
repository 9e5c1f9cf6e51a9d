//! `report` and `export` over the central PostgreSQL (`--central URL`):
//! the nation, or one province (`--province`), with units named per
//! province (two provinces may share a unit code).

use crate::reports::export::ExportFormat;
use crate::reports::report::{Period, Report};
use crate::store::Status;
use crate::store::central::Central;
use anyhow::{Result, bail};
use std::io::Write;
use std::path::Path;

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
