//! The store as its sensor's spool for the central view (issue 18): every
//! hit and every status change is also a `journal` row with a sequence
//! number, in the same transaction as the row it repeats; the shipper sends
//! rows past what the central has acknowledged.
//!
//! Invariants:
//! - `seq` only grows (AUTOINCREMENT: never reused, even when every row
//!   was pruned), so (sensor, seq) names one row for good and the central
//!   can take a row twice without counting it twice.
//! - A row not yet acknowledged by a central that was ever configured is
//!   never pruned, whatever its age: an outage loses nothing. A hit's row
//!   points at its raw alert (`alert`, schema 7) instead of copying the
//!   line, so the alert is kept as long as its journal row is unacknowledged
//!   ([`Store::prune_alerts`]).

use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Schema step 6 (see `MIGRATIONS`).
pub(super) const SCHEMA: &str = "CREATE TABLE store_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE journal (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        sensor TEXT NOT NULL,
        kind   TEXT NOT NULL CHECK (kind IN ('hit', 'status')),
        at     INTEGER NOT NULL,
        json   TEXT NOT NULL
    );
    CREATE TABLE ship_state (
        central TEXT PRIMARY KEY,
        acked   INTEGER NOT NULL,
        at      INTEGER NOT NULL
    );";

/// Schema step 7: a hit's row names its raw alert (`alerts.id`) rather
/// than repeating its line (which doubled the store's alert bytes).
pub(super) const SCHEMA_ALERT_REF: &str = "ALTER TABLE journal ADD COLUMN alert INTEGER";

/// The journal row of a hit (`?1` time, `?2` the alert line, `?3` its
/// `alerts.id`): its sensor is the alert's own `sensor_id`. A line that is
/// not JSON must not fail the batch it commits with (the shipper reports
/// it), hence `json_valid` before `json_extract`.
pub(crate) const JOURNAL_HIT: &str = "INSERT INTO journal (sensor, kind, at, json, alert)
     VALUES (coalesce(CASE WHEN json_valid(?2) THEN json_extract(?2, '$.sensor_id') END, ''),
             'hit', ?1, '', ?3)";

/// The journal row of a status change, under the store's sensor.
pub(super) const JOURNAL_STATUS: &str = "INSERT INTO journal (sensor, kind, at, json)
     VALUES (coalesce((SELECT value FROM store_meta WHERE key = 'sensor_id'), ''),
             'status', ?1, ?2)";

/// A status change as shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub ip: String,
    /// `cleaned` or `open`.
    pub status: String,
    pub actor: String,
    pub note: String,
}

/// One journal row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRow {
    pub seq: i64,
    pub sensor: String,
    /// `hit` (json: the EVE alert) or `status` (json: [`StatusEvent`]).
    pub kind: String,
    pub at_ns: i64,
    pub json: String,
}

impl Store {
    /// Name the sensor this store belongs to. A store that already has
    /// another sensor keeps it, and the mismatch is returned for the caller
    /// to report (two sensors must not share a spool).
    pub fn claim_sensor(&mut self, sensor: &str) -> Result<Option<String>, StoreError> {
        let had: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM store_meta WHERE key = 'sensor_id'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match had {
            Some(h) if h != sensor => Ok(Some(h)),
            Some(_) => Ok(None),
            None => {
                self.conn
                    .execute(
                        "INSERT INTO store_meta (key, value) VALUES ('sensor_id', ?1)",
                        params![sensor],
                    )
                    .map_err(|e| self.err(e))?;
                Ok(None)
            }
        }
    }

    /// The sensor this store belongs to, if named.
    pub fn sensor_id(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM store_meta WHERE key = 'sensor_id'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Up to `limit` journal rows after `after`, oldest first, each under
    /// the store's sensor (a store is one sensor's spool, whatever sensor
    /// id an alert or a retro-hunt carried).
    pub fn journal_after(&self, after: i64, limit: usize) -> Result<Vec<JournalRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT j.seq, coalesce((SELECT value FROM store_meta WHERE key = 'sensor_id'), j.sensor),
                        j.kind, j.at, coalesce(a.json, j.json)
                 FROM journal j LEFT JOIN alerts a ON a.id = j.alert
                 WHERE j.seq > ?1 ORDER BY j.seq LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![after, limit as i64], |r| {
            Ok(JournalRow {
                seq: r.get(0)?,
                sensor: r.get(1)?,
                kind: r.get(2)?,
                at_ns: r.get(3)?,
                json: r.get(4)?,
            })
        })
        .and_then(|r| r.collect())
        .map_err(|e| self.err(e))
    }

    /// The newest sequence number (0 when the journal never had a row).
    pub fn journal_head(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'journal'), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Remember that `central` acknowledged every row up to `acked`.
    pub fn set_acked(&mut self, central: &str, acked: i64, at_ns: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO ship_state (central, acked, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (central) DO UPDATE SET acked = max(acked, excluded.acked), at = excluded.at",
                params![central, acked, at_ns],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// What `central` acknowledged, as last recorded here.
    pub fn acked(&self, central: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT coalesce((SELECT acked FROM ship_state WHERE central = ?1), 0)",
                params![central],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Delete journal rows older than `before_ns` that every configured
    /// central has acknowledged (all of them when none ever was).
    pub fn prune_journal(&mut self, before_ns: i64) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM journal WHERE at < ?1
                 AND seq <= coalesce((SELECT min(acked) FROM ship_state), seq)",
                params![before_ns],
            )
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_ship_under_the_stores_sensor_and_seq_never_goes_back() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Store::open(&d.path().join("g.db")).unwrap();
        let hit = |s: &mut Store, sensor: &str, at: i64| {
            let json = format!("{{\"sensor_id\":\"{sensor}\",\"host_ip\":\"10.0.0.1\"}}");
            s.conn
                .execute(
                    "INSERT INTO alerts (ts, ip, indicator, json) VALUES (?1, '10.0.0.1', 0, ?2)",
                    params![at, json],
                )
                .unwrap();
            let id = s.conn.last_insert_rowid();
            s.conn.execute(JOURNAL_HIT, params![at, json, id]).unwrap();
        };
        hit(&mut s, "a", 1);
        let first = &s.journal_after(0, 10).unwrap()[0];
        assert_eq!(first.sensor, "a");
        assert!(
            first.json.contains("\"host_ip\""),
            "the alert's line, read by reference"
        );
        assert_eq!(s.claim_sensor("gw1").unwrap(), None);
        assert_eq!(s.claim_sensor("gw2").unwrap(), Some("gw1".into()));
        hit(&mut s, "retro-run", 2);
        let rows = s.journal_after(0, 10).unwrap();
        assert!(rows.iter().all(|r| r.sensor == "gw1"), "{rows:?}");
        // Pruned rows never give their numbers back.
        assert_eq!(s.prune_journal(i64::MAX).unwrap(), 2, "no central: all go");
        hit(&mut s, "gw1", 3);
        assert_eq!(s.journal_after(0, 10).unwrap()[0].seq, 3);
        assert_eq!(s.journal_head().unwrap(), 3);
        // Once a central exists, what it has not acknowledged stays.
        s.set_acked("pg", 2, 0).unwrap();
        assert_eq!(s.prune_journal(i64::MAX).unwrap(), 0);
        s.set_acked("pg", 3, 0).unwrap();
        assert_eq!(s.prune_journal(i64::MAX).unwrap(), 1);
    }

    #[test]
    fn an_alert_stays_while_its_journal_row_is_unacknowledged() {
        let d = tempfile::tempdir().unwrap();
        let mut s = Store::open(&d.path().join("g.db")).unwrap();
        for at in [1, 2, 3] {
            s.conn
                .execute(
                    "INSERT INTO alerts (ts, ip, indicator, json) VALUES (?1, '10.0.0.1', 0, '{}')",
                    params![at],
                )
                .unwrap();
            let id = s.conn.last_insert_rowid();
            s.conn.execute(JOURNAL_HIT, params![at, "{}", id]).unwrap();
        }
        s.set_acked("pg", 1, 0).unwrap();
        assert_eq!(
            s.prune_alerts(i64::MAX).unwrap(),
            1,
            "only the acknowledged one"
        );
        assert_eq!(s.prune_journal(i64::MAX).unwrap(), 1);
        let left = s.journal_after(0, 10).unwrap();
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|r| r.json == "{}"), "{left:?}");
        s.set_acked("pg", 3, 0).unwrap();
        assert_eq!(s.prune_alerts(i64::MAX).unwrap(), 2);
    }
}
