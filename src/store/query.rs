//! Read-side queries: offender lists for exports and the API, per-unit
//! figures for the campaign report. Parameterised SQL only.

use super::{HostRow, NAME_ORDER, Status, Store, StoreError, host_row};
use rusqlite::params;
use serde::Serialize;
use std::collections::BTreeMap;

/// How many indicators an offender row lists.
pub const TOP_INDICATORS: usize = 5;

/// A unit and its offender counts.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct UnitRow {
    pub code: String,
    pub name: String,
    pub hosts: u64,
    pub open: u64,
    pub cleaned: u64,
    pub reinfected: u64,
}

/// One offender host with what it hit.
#[derive(Clone, Debug, Serialize)]
pub struct OffenderDetail {
    pub ip: String,
    pub unit: String,
    pub unit_name: String,
    pub hostname: Option<String>,
    pub status: &'static str,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub hits: u64,
    /// Distinct indicators hit.
    pub indicator_count: u64,
    /// The most-hit indicators, most first, with their hit counts.
    pub top_indicators: Vec<(String, u64)>,
    /// Categories of everything the host hit, sorted.
    pub categories: Vec<String>,
    /// The most severe feed severity among its hits.
    pub severity: String,
    pub cleaned_at_ns: Option<i64>,
}

/// One name an address went by, from one source, and when.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct NameSeen {
    pub name: String,
    /// `dhcp`, `dhcp_fqdn`, `netbios` or `mdns`.
    pub source: String,
    /// `aa:bb:cc:dd:ee:ff` when the source carries it (DHCP).
    pub mac: Option<String>,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
}

/// The figures of one unit for a reporting period.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct UnitFigures {
    pub code: String,
    pub name: String,
    /// Hosts with at least one hit in the period.
    pub detected: u64,
    /// Of those, hosts now marked cleaned.
    pub cleaned: u64,
    /// Of those, hosts still open or reinfected.
    pub still_infected: u64,
    /// Of those, hosts reinfected after cleaning.
    pub reinfected: u64,
    /// Categories by number of detected hosts, most first.
    pub top_categories: Vec<(String, u64)>,
    /// Indicators by number of detected hosts, most first.
    pub top_indicators: Vec<(String, u64)>,
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 3,
        "high" => 2,
        "medium" => 1,
        _ => 0,
    }
}

impl Store {
    /// Every unit that has offenders, with counts by status.
    pub fn units(&self) -> Result<Vec<UnitRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT u.code, u.name, count(h.ip),
                        sum(h.status = 'open'), sum(h.status = 'cleaned'),
                        sum(h.status = 'reinfected')
                 FROM units u JOIN hosts h ON h.unit = u.code
                 GROUP BY u.code ORDER BY u.code",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| {
            Ok(UnitRow {
                code: r.get(0)?,
                name: r.get(1)?,
                hosts: r.get::<_, i64>(2)? as u64,
                open: r.get::<_, i64>(3)? as u64,
                cleaned: r.get::<_, i64>(4)? as u64,
                reinfected: r.get::<_, i64>(5)? as u64,
            })
        })
        .and_then(|r| r.collect())
        .map_err(|e| self.err(e))
    }

    /// Whether a unit code is known to the store.
    pub fn has_unit(&self, code: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM units WHERE code = ?1",
                params![code],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Offender hosts, optionally of one unit, seen since `since_ns`, with a
    /// given status; ordered by unit then address.
    pub fn offenders(
        &self,
        unit: Option<&str>,
        since_ns: Option<i64>,
        status: Option<Status>,
    ) -> Result<Vec<OffenderDetail>, StoreError> {
        self.offenders_where(unit, since_ns, status, None)
    }

    /// One offender host with what it hit, if it is in the store.
    pub fn offender(&self, ip: std::net::IpAddr) -> Result<Option<OffenderDetail>, StoreError> {
        Ok(self
            .offenders_where(None, None, None, Some(&ip.to_string()))?
            .pop())
    }

    /// Status changes of a host, oldest first: (time ns, status, who, note).
    pub fn host_events(
        &self,
        ip: std::net::IpAddr,
    ) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT at, status, actor, note FROM host_events WHERE ip = ?1 ORDER BY at, id",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![ip.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .and_then(|r| r.collect())
        .map_err(|e| self.err(e))
    }

    /// What `ip` was called, latest first (the first is the host's
    /// `hostname`): a renamed machine, or an address a DHCP pool gave to
    /// several machines, shows each name with when it was seen. Any address
    /// may be asked, offender or not.
    pub fn host_names(&self, ip: std::net::IpAddr) -> Result<Vec<NameSeen>, StoreError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT name, source, mac, first_seen, last_seen FROM host_names
                 WHERE ip = ?1 ORDER BY {NAME_ORDER}"
            ))
            .map_err(|e| self.err(e))?;
        st.query_map(params![ip.to_string()], |r| {
            Ok(NameSeen {
                name: r.get(0)?,
                source: r.get(1)?,
                mac: r.get(2)?,
                first_seen_ns: r.get(3)?,
                last_seen_ns: r.get(4)?,
            })
        })
        .and_then(|r| r.collect())
        .map_err(|e| self.err(e))
    }

    fn offenders_where(
        &self,
        unit: Option<&str>,
        since_ns: Option<i64>,
        status: Option<Status>,
        ip: Option<&str>,
    ) -> Result<Vec<OffenderDetail>, StoreError> {
        let mut hosts = self
            .conn
            .prepare(
                "SELECT h.ip, h.unit, h.hostname, h.status, h.first_seen, h.last_seen, h.hits,
                        coalesce(u.name, ''), h.cleaned_at
                 FROM hosts h LEFT JOIN units u ON u.code = h.unit
                 WHERE (?1 IS NULL OR h.unit = ?1)
                   AND (?2 IS NULL OR h.last_seen >= ?2)
                   AND (?3 IS NULL OR h.status = ?3)
                   AND (?4 IS NULL OR h.ip = ?4)
                 ORDER BY h.unit, h.ip",
            )
            .map_err(|e| self.err(e))?;
        let rows: Vec<(HostRow, String, Option<i64>)> = hosts
            .query_map(
                params![unit, since_ns, status.map(Status::as_str), ip],
                |r| Ok((host_row(r)?, r.get(7)?, r.get(8)?)),
            )
            .and_then(|r| r.collect())
            .map_err(|e| self.err(e))?;
        let mut inds = self
            .conn
            .prepare_cached(
                "SELECT i.value, i.category, i.severity, hi.hits
                 FROM host_indicators hi JOIN indicators i ON i.id = hi.indicator
                 WHERE hi.ip = ?1 ORDER BY hi.hits DESC, i.value",
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (h, unit_name, cleaned_at) in rows {
            let ip = h.ip.to_string();
            let list: Vec<(String, String, String, i64)> = inds
                .query_map(params![ip], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .and_then(|r| r.collect())
                .map_err(|e| self.err(e))?;
            let mut categories: Vec<String> = list.iter().map(|x| x.1.clone()).collect();
            categories.sort();
            categories.dedup();
            let severity = list
                .iter()
                .map(|x| x.2.as_str())
                .max_by_key(|s| severity_rank(s))
                .unwrap_or("")
                .to_owned();
            out.push(OffenderDetail {
                ip,
                unit: h.unit,
                unit_name,
                hostname: h.hostname,
                status: h.status.as_str(),
                first_seen_ns: h.first_seen_ns,
                last_seen_ns: h.last_seen_ns,
                hits: h.hits,
                indicator_count: list.len() as u64,
                top_indicators: list
                    .iter()
                    .take(TOP_INDICATORS)
                    .map(|x| (x.0.clone(), x.3 as u64))
                    .collect(),
                categories,
                severity,
                cleaned_at_ns: cleaned_at,
            });
        }
        Ok(out)
    }

    /// Per-unit figures for hosts with a hit in `[from_ns, to_ns)`, with the
    /// status they have now. Units with no detected host are left out.
    pub fn unit_figures(&self, from_ns: i64, to_ns: i64) -> Result<Vec<UnitFigures>, StoreError> {
        // A host was detected in the period when one of its host x indicator
        // spans overlaps it (first_seen < to and last_seen >= from).
        let mut st = self
            .conn
            .prepare(
                "SELECT h.unit, coalesce(u.name, ''), h.ip, h.status, i.value, i.category
                 FROM host_indicators hi
                 JOIN hosts h ON h.ip = hi.ip
                 JOIN indicators i ON i.id = hi.indicator
                 LEFT JOIN units u ON u.code = h.unit
                 WHERE hi.first_seen < ?2 AND hi.last_seen >= ?1
                 ORDER BY h.unit, h.ip",
            )
            .map_err(|e| self.err(e))?;
        let rows: Vec<(String, String, String, String, String, String)> = st
            .query_map(params![from_ns, to_ns], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .and_then(|r| r.collect())
            .map_err(|e| self.err(e))?;
        type Acc = (String, BTreeMap<String, String>, Counts, Counts);
        type Counts = BTreeMap<String, std::collections::BTreeSet<String>>;
        let mut by_unit: BTreeMap<String, Acc> = BTreeMap::new();
        for (unit, name, ip, status, value, category) in rows {
            let e = by_unit.entry(unit).or_insert_with(|| {
                (
                    name,
                    Default::default(),
                    Default::default(),
                    Default::default(),
                )
            });
            e.1.insert(ip.clone(), status);
            e.2.entry(category).or_default().insert(ip.clone());
            e.3.entry(value).or_default().insert(ip);
        }
        let top = |m: &Counts| {
            let mut v: Vec<(String, u64)> =
                m.iter().map(|(k, s)| (k.clone(), s.len() as u64)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(TOP_INDICATORS);
            v
        };
        Ok(by_unit
            .into_iter()
            .map(|(code, (name, hosts, cats, inds))| {
                let count = |s: &str| hosts.values().filter(|x| *x == s).count() as u64;
                UnitFigures {
                    code,
                    name,
                    detected: hosts.len() as u64,
                    cleaned: count("cleaned"),
                    still_infected: count("open") + count("reinfected"),
                    reinfected: count("reinfected"),
                    top_categories: top(&cats),
                    top_indicators: top(&inds),
                }
            })
            .collect())
    }
}
