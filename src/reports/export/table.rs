//! The offender rows every store export writes, whatever the format, and
//! which hosts and units an export covers.

use super::hygiene::{
    ANTIVIRUS_HEADER, AntivirusSeen, CRACKED_HEADER, CrackedSign, HostHygiene, antivirus_text,
    cracked_text,
};
use crate::store::query::{OffenderDetail, UnitRow};
use crate::store::{Status, Store};
use anyhow::{Result, bail};
use chrono::{DateTime, Local, NaiveDate, TimeZone};
use serde::Serialize;
use std::net::IpAddr;

/// Column headers of the CSV file and the unit sheets, in the order of
/// [`ExportRow::cells`]. Vietnamese: unit staff read them, not programs
/// (JSON keeps the field names).
pub const HEADERS: [&str; 14] = [
    "Địa chỉ IP",
    "Tên máy",
    "Mã đơn vị",
    "Đơn vị",
    "Trạng thái",
    "Lần đầu phát hiện",
    "Lần cuối phát hiện",
    "Số lần kết nối",
    "Số địa chỉ độc hại",
    "Địa chỉ độc hại (nhiều nhất)",
    "Loại",
    "Mức độ",
    CRACKED_HEADER,
    ANTIVIRUS_HEADER,
];

/// One cell: counts stay numbers so a sheet can sort and sum them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Count(u64),
}

/// An indicator and how often the host hit it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct IndicatorHits {
    pub indicator: String,
    pub hits: u64,
}

/// One offender host as exported. Field names are the JSON keys.
#[derive(Clone, Debug, Serialize)]
pub struct ExportRow {
    pub host_ip: String,
    pub hostname: Option<String>,
    pub unit: String,
    pub unit_name: String,
    /// `open`, `cleaned` or `reinfected`.
    pub status: &'static str,
    /// The status in Vietnamese, as the sheets show it.
    pub status_label: &'static str,
    pub first_seen: String,
    pub last_seen: String,
    /// The same two times as nanoseconds, for sorting (not exported).
    #[serde(skip)]
    pub first_seen_ns: i64,
    #[serde(skip)]
    pub last_seen_ns: i64,
    pub hits: u64,
    pub distinct_indicators: u64,
    /// The most-hit indicators (at most five), most first.
    pub top_indicators: Vec<IndicatorHits>,
    pub categories: Vec<String>,
    pub severity: String,
    /// Signs of cracked software on the host (estimates, not infections).
    pub cracked_signs: Vec<CrackedSign>,
    /// Antivirus products seen updating on the host.
    pub antivirus: Vec<AntivirusSeen>,
}

impl ExportRow {
    fn from_detail(d: OffenderDetail, hygiene: Option<HostHygiene>) -> ExportRow {
        let h = hygiene.unwrap_or_default();
        ExportRow {
            cracked_signs: h.cracked,
            antivirus: h.antivirus,
            status_label: Status::parse(d.status).map_or(d.status, Status::label_vi),
            status: d.status,
            first_seen: local_time(d.first_seen_ns),
            last_seen: local_time(d.last_seen_ns),
            first_seen_ns: d.first_seen_ns,
            last_seen_ns: d.last_seen_ns,
            top_indicators: d
                .top_indicators
                .into_iter()
                .map(|(indicator, hits)| IndicatorHits { indicator, hits })
                .collect(),
            host_ip: d.ip,
            hostname: d.hostname,
            unit: d.unit,
            unit_name: d.unit_name,
            hits: d.hits,
            distinct_indicators: d.indicator_count,
            categories: d.categories,
            severity: d.severity,
        }
    }

    /// The row under [`HEADERS`].
    pub fn cells(&self) -> [Cell; 14] {
        let top: Vec<String> = self
            .top_indicators
            .iter()
            .map(|t| format!("{} ×{}", t.indicator, t.hits))
            .collect();
        [
            Cell::Text(self.host_ip.clone()),
            Cell::Text(self.hostname.clone().unwrap_or_default()),
            Cell::Text(self.unit.clone()),
            Cell::Text(self.unit_name.clone()),
            Cell::Text(self.status_label.to_owned()),
            Cell::Text(self.first_seen.clone()),
            Cell::Text(self.last_seen.clone()),
            Cell::Count(self.hits),
            Cell::Count(self.distinct_indicators),
            Cell::Text(top.join("; ")),
            Cell::Text(self.categories.join(", ")),
            Cell::Text(self.severity.clone()),
            Cell::Text(cracked_text(&self.cracked_signs)),
            Cell::Text(antivirus_text(&self.antivirus)),
        ]
    }
}

/// Local time with its offset, shaped like the alert log's EVE timestamps
/// (`2022-11-24T17:16:15.849397+0700`) so both can be matched by eye.
pub fn local_time(ns: i64) -> String {
    Local
        .timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.6f%z")
        .to_string()
}

/// `--since`: a date (`YYYY-MM-DD`, from local midnight) or an RFC 3339
/// time; nanoseconds since the epoch.
pub fn parse_since(s: &str) -> Result<i64, String> {
    let expected = "expected a date YYYY-MM-DD (from local midnight) or an RFC 3339 time \
                    such as 2024-06-01T08:00:00+07:00";
    let t = if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Local
            .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|t| t.fixed_offset())
            .ok_or_else(|| format!("local midnight of {s} does not exist here; {expected}"))?
    } else {
        DateTime::parse_from_rfc3339(s).map_err(|_| expected.to_owned())?
    };
    t.timestamp_nanos_opt()
        .ok_or_else(|| format!("{s} is out of range; {expected}"))
}

/// What one export covers.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Every unit was asked for (`--all`): the workbook gets a summary sheet.
    pub all: bool,
    pub since_ns: Option<i64>,
    /// Units to list, by code: `(code, name)`.
    pub units: Vec<(String, String)>,
    /// Hosts by unit, then address.
    pub rows: Vec<ExportRow>,
}

impl Selection {
    pub fn rows_of<'a>(&'a self, unit: &'a str) -> impl Iterator<Item = &'a ExportRow> {
        self.rows.iter().filter(move |r| r.unit == unit)
    }

    /// Host counts by status for each listed unit.
    pub fn unit_counts(&self) -> Vec<UnitRow> {
        self.units
            .iter()
            .map(|(code, name)| {
                let mut u = UnitRow {
                    code: code.clone(),
                    name: name.clone(),
                    hosts: 0,
                    open: 0,
                    cleaned: 0,
                    reinfected: 0,
                };
                for r in self.rows_of(code) {
                    u.hosts += 1;
                    match Status::parse(r.status) {
                        Some(Status::Open) => u.open += 1,
                        Some(Status::Cleaned) => u.cleaned += 1,
                        Some(Status::Reinfected) => u.reinfected += 1,
                        None => {}
                    }
                }
                u
            })
            .collect()
    }
}

/// Offender hosts of `unit` (every unit when `None`) last seen at or after
/// `since_ns`. A unit code the store does not know is refused with the list
/// of those it knows, since it is most likely a typo.
pub fn select_offenders(
    store: &Store,
    unit: Option<&str>,
    since_ns: Option<i64>,
) -> Result<Selection> {
    let known = store.units()?;
    if let Some(u) = unit
        && !store.has_unit(u)?
    {
        let codes: Vec<&str> = known.iter().map(|k| k.code.as_str()).collect();
        bail!(
            "unknown unit code {u:?}: no offender of that unit in {}; known unit codes: {}",
            store.path().display(),
            if codes.is_empty() {
                "none yet (the store holds no offender)".to_owned()
            } else {
                codes.join(", ")
            }
        );
    }
    let mut hygiene = super::hygiene::read(store, unit, since_ns)?;
    let mut rows: Vec<ExportRow> = store
        .offenders(unit, since_ns, None)?
        .into_iter()
        .map(|d| {
            let h = d.ip.parse().ok().and_then(|ip| hygiene.remove(&ip));
            ExportRow::from_detail(d, h)
        })
        .collect();
    // Numeric address order: 10.0.0.9 before 10.0.0.10, as people expect.
    rows.sort_by_cached_key(|r| (r.unit.clone(), r.host_ip.parse::<IpAddr>().ok()));
    let units = match unit {
        Some(u) => vec![(
            u.to_owned(),
            known
                .iter()
                .find(|k| k.code == u)
                .map(|k| k.name.clone())
                .unwrap_or_default(),
        )],
        None => {
            let mut v: Vec<(String, String)> = rows
                .iter()
                .map(|r| (r.unit.clone(), r.unit_name.clone()))
                .collect();
            v.dedup();
            v
        }
    };
    Ok(Selection {
        all: unit.is_none(),
        since_ns,
        units,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_a_date_or_rfc3339_and_names_the_formats_otherwise() {
        let rfc = parse_since("2022-11-24T10:16:15Z").unwrap();
        assert_eq!(rfc, 1_669_284_975_000_000_000);
        let day = parse_since("2022-11-24").unwrap();
        let midnight = Local.timestamp_nanos(day);
        assert_eq!(
            midnight.format("%Y-%m-%d %H:%M:%S").to_string(),
            "2022-11-24 00:00:00"
        );
        for bad in ["2022-13-01", "yesterday", "24/11/2022", ""] {
            let e = parse_since(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD") && e.contains("RFC 3339"), "{e}");
        }
    }
}
