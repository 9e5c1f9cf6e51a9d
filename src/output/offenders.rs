//! Offender hosts aggregated per unit: the list a unit must clean.
//!
//! Built live from hits during a replay, or from an alert log for `export`,
//! through the same [`OffenderTable::add`], so both always agree.

use crate::output::eve::eve_time;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

/// How many indicators an exported row names (most-hit first).
const TOP_INDICATORS: usize = 5;

#[derive(Clone, Debug, Default)]
struct HostAgg {
    unit_name: String,
    hits: u64,
    indicators: BTreeMap<String, u64>,
    categories: BTreeSet<String>,
    first_ns: i64,
    last_ns: i64,
}

/// (unit code, host) -> aggregate, ordered for stable output.
#[derive(Clone, Debug, Default)]
pub struct OffenderTable {
    hosts: BTreeMap<(String, IpAddr), HostAgg>,
}

/// One exported row.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct OffenderRow {
    pub unit: String,
    pub unit_name: String,
    pub host_ip: IpAddr,
    pub hits: u64,
    pub distinct_indicators: usize,
    pub indicators: String,
    pub categories: String,
    pub first_seen: String,
    pub last_seen: String,
}

impl OffenderTable {
    /// Count one hit; returns true when this host is new to the table.
    pub fn add(
        &mut self,
        unit: &str,
        unit_name: &str,
        host: IpAddr,
        indicator: &str,
        category: &str,
        ts_ns: i64,
    ) -> bool {
        self.add_n(unit, unit_name, host, indicator, category, ts_ns, 1)
    }

    /// [`add`](Self::add) for `n` hits at once (an `alert_summary` event).
    #[allow(clippy::too_many_arguments)]
    pub fn add_n(
        &mut self,
        unit: &str,
        unit_name: &str,
        host: IpAddr,
        indicator: &str,
        category: &str,
        ts_ns: i64,
        n: u64,
    ) -> bool {
        let before = self.hosts.len();
        let a = self
            .hosts
            .entry((unit.to_owned(), host))
            .or_insert_with(|| HostAgg {
                unit_name: unit_name.to_owned(),
                first_ns: ts_ns,
                last_ns: ts_ns,
                ..Default::default()
            });
        a.hits += n;
        *a.indicators.entry(indicator.to_owned()).or_insert(0) += n;
        if !a.categories.contains(category) {
            a.categories.insert(category.to_owned());
        }
        a.first_ns = a.first_ns.min(ts_ns);
        a.last_ns = a.last_ns.max(ts_ns);
        self.hosts.len() > before
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Distinct unit codes that have offenders.
    pub fn units(&self) -> BTreeSet<&str> {
        self.hosts.keys().map(|(u, _)| u.as_str()).collect()
    }

    /// Rows for one unit, or all units when `unit` is `None`.
    pub fn rows(&self, unit: Option<&str>) -> Vec<OffenderRow> {
        self.hosts
            .iter()
            .filter(|((u, _), _)| unit.is_none_or(|want| want == u))
            .map(|((u, ip), a)| {
                let mut top: Vec<(&String, &u64)> = a.indicators.iter().collect();
                top.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
                let mut inds: Vec<&str> = top
                    .iter()
                    .take(TOP_INDICATORS)
                    .map(|(k, _)| k.as_str())
                    .collect();
                if top.len() > TOP_INDICATORS {
                    inds.push("...");
                }
                OffenderRow {
                    unit: u.clone(),
                    unit_name: a.unit_name.clone(),
                    host_ip: *ip,
                    hits: a.hits,
                    distinct_indicators: a.indicators.len(),
                    indicators: inds.join(" "),
                    categories: a.categories.iter().cloned().collect::<Vec<_>>().join(" "),
                    first_seen: eve_time(a.first_ns),
                    last_seen: eve_time(a.last_ns),
                }
            })
            .collect()
    }

    /// The human summary printed at the end of a replay, grouped by unit.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if self.hosts.is_empty() {
            out.push_str("No offending hosts (không phát hiện máy nhiễm mã độc).\n");
            return out;
        }
        let rows = self.rows(None);
        let _ = writeln!(
            out,
            "Offender hosts by unit (máy nhiễm theo đơn vị): {} host(s) in {} unit(s)",
            rows.len(),
            self.units().len()
        );
        let mut current = "";
        for r in &rows {
            if r.unit != current {
                let n = rows.iter().filter(|x| x.unit == r.unit).count();
                let _ = writeln!(out, "\n[{}] {} — {} host(s)", r.unit, r.unit_name, n);
                let _ = writeln!(
                    out,
                    "  {:<39} {:>6} {:>5}  {:<26} {:<26} indicators",
                    "host", "hits", "ind.", "first seen", "last seen"
                );
                current = &r.unit;
            }
            let _ = writeln!(
                out,
                "  {:<39} {:>6} {:>5}  {:<26} {:<26} {}",
                r.host_ip.to_string(),
                r.hits,
                r.distinct_indicators,
                r.first_seen,
                r.last_seen,
                r.indicators
            );
        }
        out
    }
}
