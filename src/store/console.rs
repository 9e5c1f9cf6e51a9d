//! What the web console reads and changes beyond the offender queries:
//! status changes with their audit rows, hosts detected, cleaned and
//! reinfected per day, a host's raw alerts, and each sensor's status.
//!
//! Invariants:
//! - A status change, its `host_events` row and its `audit` row are one
//!   transaction: the audit log never misses a change that happened.
//! - Days are counted in a fixed UTC offset given by the caller (the
//!   console's local time), so a chart and its table agree.

use super::{HostRow, Status, Store, StoreError, sql_error};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Schema step 5 (see `MIGRATIONS`): one row per sensor, replaced as it
/// reports.
pub(super) const SCHEMA: &str = "CREATE TABLE sensor_status (
        sensor TEXT PRIMARY KEY,
        at     INTEGER NOT NULL,
        json   TEXT NOT NULL
    );";

const NS: i64 = 1_000_000_000;

/// Hosts first detected, marked cleaned and found reinfected on one day,
/// per unit (a host counts once per day and status).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    /// Days since 1970-01-01 in the caller's offset.
    pub day: i64,
    pub detected: u64,
    pub cleaned: u64,
    pub reinfected: u64,
}

/// A sensor's status as it last reported it: what the console's status
/// and feeds pages show.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SensorStatus {
    pub sensor: String,
    /// When the sensor wrote it (ns).
    pub at_ns: i64,
    /// `live` or `replay`.
    pub mode: String,
    pub feeds: Vec<FeedStatus>,
    pub captures: Vec<CaptureStatus>,
    /// Packets or events dropped, by reason (never silent).
    pub drops: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedStatus {
    pub name: String,
    /// Indicators loaded, by kind.
    pub indicators: BTreeMap<String, u64>,
    /// Unix seconds of the last successful load, and of the last refused one.
    pub last_load_s: Option<f64>,
    pub last_failure_s: Option<f64>,
    /// Reloads refused, by reason.
    pub refused: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureStatus {
    pub interface: String,
    pub up: bool,
    pub packets: u64,
    pub errors: u64,
}

impl Store {
    /// Set a host's status to cleaned or open (reopened) by `actor`, with a
    /// note, recording the change in its history and the audit log.
    pub fn set_status(
        &mut self,
        ip: IpAddr,
        status: Status,
        actor: &str,
        note: &str,
        at_ns: i64,
    ) -> Result<HostRow, StoreError> {
        let (action, cleaned_at) = match status {
            Status::Cleaned => ("host-cleaned", Some(at_ns)),
            Status::Open => ("host-reopened", None),
            Status::Reinfected => {
                return Err(StoreError::Invalid(
                    "only the sensor marks a host reinfected (a hit after cleaning)".into(),
                ));
            }
        };
        let ip_s = ip.to_string();
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| sql_error(&path, e))?;
        let n = tx
            .execute(
                "UPDATE hosts SET status = ?2, cleaned_at = ?3 WHERE ip = ?1",
                params![ip_s, status.as_str(), cleaned_at],
            )
            .map_err(|e| sql_error(&path, e))?;
        if n == 0 {
            return Err(StoreError::Invalid(format!(
                "{ip}: no such offender host in {}; check the address (`gatewatch export --all` lists them)",
                path.display()
            )));
        }
        tx.execute(
            "INSERT INTO host_events (ip, at, status, actor, note) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ip_s, at_ns, status.as_str(), actor, note],
        )
        .and_then(|_| {
            tx.execute(
                "INSERT INTO audit (at, actor, action, target, note) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![at_ns, actor, action, ip_s, note],
            )
        })
        .and_then(|_| {
            let ev = super::journal::StatusEvent {
                ip: ip_s.clone(),
                status: status.as_str().to_owned(),
                actor: actor.to_owned(),
                note: note.to_owned(),
            };
            let json = serde_json::to_string(&ev).unwrap_or_default();
            tx.execute(super::journal::JOURNAL_STATUS, params![at_ns, json])
        })
        .map_err(|e| sql_error(&path, e))?;
        tx.commit().map_err(|e| sql_error(&path, e))?;
        self.host(ip)?
            .ok_or_else(|| StoreError::Invalid(format!("{ip}: vanished while marking")))
    }

    /// Per unit, the days from `from_day` on (days since the epoch at
    /// `offset_s` east of UTC) with hosts detected, cleaned or reinfected.
    pub fn daily_counts(
        &self,
        from_day: i64,
        offset_s: i64,
    ) -> Result<BTreeMap<String, Vec<DayCounts>>, StoreError> {
        let since = from_day * 86_400 * NS - offset_s * NS;
        let day = |col: &str| format!("(({col} / {NS}) + ?2) / 86400");
        let sql = format!(
            "SELECT unit, {d}, 'detected', count(*) FROM hosts
             WHERE first_seen >= ?1 GROUP BY 1, 2
             UNION ALL
             SELECT h.unit, {e}, e.status, count(DISTINCT e.ip)
             FROM host_events e JOIN hosts h ON h.ip = e.ip
             WHERE e.at >= ?1 AND e.status IN ('cleaned', 'reinfected') GROUP BY 1, 2, 3",
            d = day("first_seen"),
            e = day("e.at"),
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows: Vec<(String, i64, String, i64)> = st
            .query_map(params![since, offset_s], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(|r| r.collect())
            .map_err(|e| self.err(e))?;
        let mut out: BTreeMap<String, BTreeMap<i64, DayCounts>> = BTreeMap::new();
        for (unit, d, what, n) in rows {
            let n = n.max(0) as u64;
            let c = out.entry(unit).or_default().entry(d).or_insert(DayCounts {
                day: d,
                ..Default::default()
            });
            match what.as_str() {
                "detected" => c.detected += n,
                "cleaned" => c.cleaned += n,
                _ => c.reinfected += n,
            }
        }
        Ok(out
            .into_iter()
            .map(|(u, days)| (u, days.into_values().collect()))
            .collect())
    }

    /// A host's raw alerts (EVE JSON), newest first; the store keeps them
    /// `store_retention_days`, the per-indicator counts for good.
    pub fn host_alerts(&self, ip: IpAddr, limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT ts, json FROM alerts WHERE ip = ?1 ORDER BY ts DESC, id DESC LIMIT ?2")
            .map_err(|e| self.err(e))?;
        st.query_map(params![ip.to_string(), limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .and_then(|r| r.collect())
        .map_err(|e| self.err(e))
    }

    /// Replace a sensor's status row.
    pub fn put_sensor_status(&mut self, s: &SensorStatus) -> Result<(), StoreError> {
        let json = serde_json::to_string(s)
            .map_err(|e| StoreError::Invalid(format!("sensor status: {e}")))?;
        self.conn
            .execute(
                "INSERT INTO sensor_status (sensor, at, json) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sensor) DO UPDATE SET at = excluded.at, json = excluded.json",
                params![s.sensor, s.at_ns, json],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Every sensor's latest status, by name; a row this build cannot read
    /// is reported by name instead of hidden.
    pub fn sensor_statuses(&self) -> Result<Vec<Result<SensorStatus, String>>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT sensor, json FROM sensor_status ORDER BY sensor")
            .map_err(|e| self.err(e))?;
        let rows: Vec<(String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|r| r.collect())
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(name, json)| {
                serde_json::from_str(&json).map_err(|e| format!("{name}: unreadable status: {e}"))
            })
            .collect())
    }
}
