//! Hygiene signals per host in the store (issue 16): signs of cracked
//! software and antivirus update traffic, kept as estimates beside the
//! offenders, never as hits. One row per (host, signal, detail): the
//! detail is the antivirus vendor, empty for the other signals; the row
//! keeps the latest evidence and when it was first and last seen.

use super::{Store, StoreError};
use crate::detect::hygiene::HygieneEvent;
use rusqlite::{CachedStatement, Transaction, params};
use std::net::IpAddr;

/// Schema step 3's hygiene table (see `MIGRATIONS`).
pub(super) const SCHEMA: &str = "CREATE TABLE host_hygiene (
        ip         TEXT NOT NULL,
        signal     TEXT NOT NULL,
        detail     TEXT NOT NULL,
        unit       TEXT NOT NULL,
        evidence   TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        events     INTEGER NOT NULL,
        PRIMARY KEY (ip, signal, detail)
    ) WITHOUT ROWID;
    CREATE INDEX host_hygiene_unit ON host_hygiene (unit, signal);";

/// One hygiene event as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HygieneRecord {
    pub ts_ns: i64,
    pub host: IpAddr,
    pub unit: String,
    pub unit_name: String,
    pub signal: &'static str,
    /// The antivirus vendor; empty for the other signals.
    pub detail: String,
    /// What was seen: `address:port`, or the domain.
    pub evidence: String,
}

impl HygieneRecord {
    pub fn from_event(e: &HygieneEvent) -> HygieneRecord {
        HygieneRecord {
            ts_ns: e.ts_ns,
            host: e.host,
            unit: e.unit.code.clone(),
            unit_name: e.unit.name.clone(),
            signal: e.signal.as_str(),
            detail: e.vendor.as_deref().unwrap_or("").to_string(),
            evidence: e.evidence(),
        }
    }
}

/// The statement writing hygiene rows, prepared once per transaction.
pub(super) struct HygieneWriter<'c> {
    upsert: CachedStatement<'c>,
}

impl<'c> HygieneWriter<'c> {
    pub fn prepare(tx: &'c Transaction<'_>) -> rusqlite::Result<HygieneWriter<'c>> {
        Ok(HygieneWriter {
            upsert: tx.prepare_cached(
                "INSERT INTO host_hygiene
                   (ip, signal, detail, unit, evidence, first_seen, last_seen, events)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1)
                 ON CONFLICT (ip, signal, detail) DO UPDATE SET
                   unit = excluded.unit,
                   evidence = CASE WHEN excluded.last_seen >= last_seen
                                   THEN excluded.evidence ELSE evidence END,
                   first_seen = min(first_seen, excluded.first_seen),
                   last_seen = max(last_seen, excluded.last_seen),
                   events = events + 1",
            )?,
        })
    }

    pub fn write(&mut self, r: &HygieneRecord) -> rusqlite::Result<()> {
        self.upsert.execute(params![
            r.host.to_string(),
            r.signal,
            r.detail,
            r.unit,
            r.evidence,
            r.ts_ns
        ])?;
        Ok(())
    }
}

/// One host's signal as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HygieneRow {
    pub ip: IpAddr,
    pub unit: String,
    pub signal: String,
    pub detail: String,
    pub evidence: String,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub events: u64,
}

impl Store {
    /// Hygiene rows of `unit` (all when `None`) last seen in the period, by
    /// unit, host and signal.
    pub fn hygiene(
        &self,
        unit: Option<&str>,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<HygieneRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT ip, unit, signal, detail, evidence, first_seen, last_seen, events
                 FROM host_hygiene
                 WHERE (?1 IS NULL OR unit = ?1) AND last_seen >= ?2 AND first_seen <= ?3
                 ORDER BY unit, ip, signal, detail",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![unit, from_ns, to_ns], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    HygieneRow {
                        ip: IpAddr::from([0, 0, 0, 0]),
                        unit: r.get(1)?,
                        signal: r.get(2)?,
                        detail: r.get(3)?,
                        evidence: r.get(4)?,
                        first_seen_ns: r.get(5)?,
                        last_seen_ns: r.get(6)?,
                        events: r.get::<_, i64>(7)?.max(0) as u64,
                    },
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(ip, row)| match ip.parse() {
                Ok(ip) => Ok(HygieneRow { ip, ..row }),
                Err(_) => Err(StoreError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("bad address {ip:?} in host_hygiene"),
                }),
            })
            .collect()
    }
}
