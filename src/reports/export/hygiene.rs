//! Hygiene estimates in the unit export (issue 16): signs of cracked
//! software and antivirus updates seen per host, as extra columns on the
//! offender rows, and as a list of their own (`export --hygiene`) that
//! also names machines no indicator flagged.

use super::table::{Cell, local_time};
use crate::detect::hygiene::Signal;
use crate::reports::report::hygiene::stored_units;
use crate::store::hygiene::HygieneRow;
use crate::store::{Store, StoreError};
use anyhow::{Result, bail};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub const CRACKED_HEADER: &str = "Dấu hiệu bẻ khóa (ước tính)";
pub const ANTIVIRUS_HEADER: &str = "Phần mềm diệt virus (lần cuối thấy)";

/// Column headers of `export --hygiene`, in the order of
/// [`HygieneHostRow::cells`].
pub const HYGIENE_HEADERS: [&str; 9] = [
    "Địa chỉ IP",
    "Tên máy",
    "Mã đơn vị",
    "Đơn vị",
    CRACKED_HEADER,
    ANTIVIRUS_HEADER,
    "Lần đầu thấy dấu hiệu",
    "Lần cuối thấy dấu hiệu",
    "Máy nhiễm (trạng thái)",
];

/// One sign of cracked software on a host.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CrackedSign {
    /// `kms_activation_public` or `crack_domain`.
    pub signal: String,
    /// `address:port` or the domain.
    pub evidence: String,
    pub first_seen: String,
    pub last_seen: String,
}

/// One antivirus product seen updating on a host.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AntivirusSeen {
    pub vendor: String,
    /// The update server's name.
    pub evidence: String,
    pub last_seen: String,
}

/// What the store holds on one host's hygiene.
#[derive(Clone, Debug, Default)]
pub struct HostHygiene {
    pub unit: String,
    pub cracked: Vec<CrackedSign>,
    pub antivirus: Vec<AntivirusSeen>,
    pub first_ns: i64,
    pub last_ns: i64,
}

/// "kms_activation_public 203.0.113.5:1688; crack_domain getintopc.com".
pub fn cracked_text(signs: &[CrackedSign]) -> String {
    let v: Vec<String> = signs
        .iter()
        .map(|s| format!("{} {}", s.signal, s.evidence))
        .collect();
    v.join("; ")
}

/// "kaspersky 2026-10-11T10:00:00.000000+0700; ...".
pub fn antivirus_text(seen: &[AntivirusSeen]) -> String {
    let v: Vec<String> = seen
        .iter()
        .map(|a| format!("{} {}", a.vendor, a.last_seen))
        .collect();
    v.join("; ")
}

/// Hygiene rows of `unit` (all when `None`) last seen at or after
/// `since_ns`, gathered per host.
pub fn read(
    store: &Store,
    unit: Option<&str>,
    since_ns: Option<i64>,
) -> Result<BTreeMap<IpAddr, HostHygiene>, StoreError> {
    let rows = store.hygiene(unit, since_ns.unwrap_or(i64::MIN), i64::MAX)?;
    Ok(by_host(rows))
}

fn by_host(rows: Vec<HygieneRow>) -> BTreeMap<IpAddr, HostHygiene> {
    let mut out: BTreeMap<IpAddr, HostHygiene> = BTreeMap::new();
    for r in rows {
        let h = out.entry(r.ip).or_insert_with(|| HostHygiene {
            unit: r.unit.clone(),
            first_ns: r.first_seen_ns,
            last_ns: r.last_seen_ns,
            ..Default::default()
        });
        h.first_ns = h.first_ns.min(r.first_seen_ns);
        h.last_ns = h.last_ns.max(r.last_seen_ns);
        if r.signal == Signal::AntivirusUpdate.as_str() {
            h.antivirus.push(AntivirusSeen {
                vendor: r.detail,
                evidence: r.evidence,
                last_seen: local_time(r.last_seen_ns),
            });
        } else {
            h.cracked.push(CrackedSign {
                signal: r.signal,
                evidence: r.evidence,
                first_seen: local_time(r.first_seen_ns),
                last_seen: local_time(r.last_seen_ns),
            });
        }
    }
    out
}

/// One host of `export --hygiene`. Field names are the JSON keys.
#[derive(Clone, Debug, Serialize)]
pub struct HygieneHostRow {
    pub host_ip: String,
    pub hostname: Option<String>,
    pub unit: String,
    pub unit_name: String,
    pub cracked_signs: Vec<CrackedSign>,
    pub antivirus: Vec<AntivirusSeen>,
    /// When its first and last hygiene signal was seen; `None` for a host
    /// only the history saw (no sign, no antivirus update).
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// `open`, `cleaned` or `reinfected` when the host is an offender.
    pub offender_status: Option<&'static str>,
    pub offender_status_label: Option<&'static str>,
}

impl HygieneHostRow {
    /// The row under [`HYGIENE_HEADERS`].
    pub fn cells(&self) -> [Cell; 9] {
        let text = |s: &Option<String>| Cell::Text(s.clone().unwrap_or_default());
        [
            Cell::Text(self.host_ip.clone()),
            text(&self.hostname),
            Cell::Text(self.unit.clone()),
            Cell::Text(self.unit_name.clone()),
            Cell::Text(cracked_text(&self.cracked_signs)),
            Cell::Text(antivirus_text(&self.antivirus)),
            text(&self.first_seen),
            text(&self.last_seen),
            Cell::Text(self.offender_status_label.unwrap_or_default().to_owned()),
        ]
    }
}

/// What `export --hygiene` covers.
#[derive(Clone, Debug)]
pub struct HygieneSelection {
    /// Units to list, by code: `(code, name)`.
    pub units: Vec<(String, String)>,
    /// Hosts by unit, then address.
    pub rows: Vec<HygieneHostRow>,
}

impl HygieneSelection {
    pub fn rows_of<'a>(&'a self, unit: &'a str) -> impl Iterator<Item = &'a HygieneHostRow> {
        self.rows.iter().filter(move |r| r.unit == unit)
    }
}

/// Every host of `unit` (all when `None`) with a hygiene row, or seen on
/// the network (history), at or after `since_ns`: the machines to check
/// for cracked software and for a missing antivirus.
pub fn select_hygiene(
    store: &mut Store,
    unit: Option<&str>,
    since_ns: Option<i64>,
) -> Result<HygieneSelection> {
    let names: BTreeMap<String, String> = stored_units(store)?.into_iter().collect();
    let from = since_ns.unwrap_or(i64::MIN);
    let active = store.active_hosts(unit, from, i64::MAX)?;
    if let Some(u) = unit
        && !names.contains_key(u)
        && active.is_empty()
    {
        let codes: Vec<&str> = names.keys().map(String::as_str).collect();
        bail!(
            "unknown unit code {u:?}: no host of that unit in {}; known unit codes: {}",
            store.path().display(),
            if codes.is_empty() {
                "none yet".to_owned()
            } else {
                codes.join(", ")
            }
        );
    }
    let mut seen = read(store, unit, since_ns)?;
    for (u, ip) in active {
        if let Ok(ip) = ip.parse::<IpAddr>() {
            seen.entry(ip).or_insert_with(|| HostHygiene {
                unit: u,
                ..Default::default()
            });
        }
    }
    let offenders: BTreeMap<IpAddr, _> = store
        .hosts(unit)?
        .into_iter()
        .map(|h| (h.ip, (h.status, h.hostname)))
        .collect();
    let mut rows = Vec::with_capacity(seen.len());
    for (ip, h) in seen {
        let off = offenders.get(&ip);
        let hostname = match store.host_names(ip)?.into_iter().next() {
            Some(n) => Some(n.name),
            None => off.and_then(|o| o.1.clone()),
        };
        let signalled = !h.cracked.is_empty() || !h.antivirus.is_empty();
        rows.push(HygieneHostRow {
            host_ip: ip.to_string(),
            hostname,
            unit_name: names.get(&h.unit).cloned().unwrap_or_default(),
            unit: h.unit,
            cracked_signs: h.cracked,
            antivirus: h.antivirus,
            first_seen: signalled.then(|| local_time(h.first_ns)),
            last_seen: signalled.then(|| local_time(h.last_ns)),
            offender_status: off.map(|o| o.0.as_str()),
            offender_status_label: off.map(|o| o.0.label_vi()),
        });
    }
    // By unit, then address as a number (the map's order is already
    // numeric within one address family).
    rows.sort_by_cached_key(|r| (r.unit.clone(), r.host_ip.parse::<IpAddr>().ok()));
    let units = match unit {
        Some(u) => vec![(u.to_owned(), names.get(u).cloned().unwrap_or_default())],
        None => {
            let set: BTreeSet<(String, String)> = rows
                .iter()
                .map(|r| (r.unit.clone(), r.unit_name.clone()))
                .collect();
            set.into_iter().collect()
        }
    };
    Ok(HygieneSelection { units, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ip: &str, signal: &str, detail: &str, evidence: &str, t: i64) -> HygieneRow {
        HygieneRow {
            ip: ip.parse().unwrap(),
            unit: "U".into(),
            signal: signal.into(),
            detail: detail.into(),
            evidence: evidence.into(),
            first_seen_ns: t,
            last_seen_ns: t + 10,
            events: 1,
        }
    }

    #[test]
    fn rows_gather_per_host_into_signs_and_vendors() {
        let m = by_host(vec![
            row("10.0.0.1", "crack_domain", "", "getintopc.com", 5),
            row(
                "10.0.0.1",
                "kms_activation_public",
                "",
                "203.0.113.5:1688",
                1,
            ),
            row(
                "10.0.0.1",
                "antivirus_update",
                "kaspersky",
                "upd.kaspersky.com",
                7,
            ),
            row("10.0.0.2", "antivirus_update", "eset", "update.eset.com", 3),
        ]);
        let a = &m[&"10.0.0.1".parse::<IpAddr>().unwrap()];
        assert_eq!(
            cracked_text(&a.cracked),
            "crack_domain getintopc.com; kms_activation_public 203.0.113.5:1688"
        );
        assert_eq!((a.first_ns, a.last_ns), (1, 17));
        assert!(antivirus_text(&a.antivirus).starts_with("kaspersky "));
        let b = &m[&"10.0.0.2".parse::<IpAddr>().unwrap()];
        assert!(b.cracked.is_empty() && b.antivirus[0].vendor == "eset");
    }
}
