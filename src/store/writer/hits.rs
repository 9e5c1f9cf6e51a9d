//! The statements that write hits and host names.

use super::{NameRecord, StoreRecord, mac_text};
use crate::store::NAME_ORDER;
use rusqlite::{CachedStatement, OptionalExtension, Transaction, params};
use std::collections::HashMap;

/// The statements a batch runs, prepared once per transaction (and cached
/// by the connection across transactions).
pub(super) struct Statements<'c> {
    pub unit: CachedStatement<'c>,
    indicator: CachedStatement<'c>,
    prior: CachedStatement<'c>,
    host: CachedStatement<'c>,
    event: CachedStatement<'c>,
    pair: CachedStatement<'c>,
    alert: CachedStatement<'c>,
    journal: CachedStatement<'c>,
    name: CachedStatement<'c>,
    host_name: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    /// Every statement the batch may need, prepared before the first record.
    pub fn prepare(tx: &'c Transaction<'_>) -> rusqlite::Result<Statements<'c>> {
        let unit = tx.prepare_cached(
            "INSERT INTO units (code, name) VALUES (?1, ?2)
         ON CONFLICT (code) DO UPDATE SET name = excluded.name",
        )?;
        let indicator = tx.prepare_cached(
            "INSERT INTO indicators (value, kind, feed, category, severity)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (value, feed) DO UPDATE
           SET kind = excluded.kind, category = excluded.category, severity = excluded.severity
         RETURNING id",
        )?;
        let prior = tx.prepare_cached("SELECT status, cleaned_at FROM hosts WHERE ip = ?1")?;
        let latest =
            format!("(SELECT name FROM host_names WHERE ip = ?1 ORDER BY {NAME_ORDER} LIMIT 1)");
        // A new host takes the latest name already learned for its address.
        let host = tx.prepare_cached(&format!(
            "INSERT INTO hosts (ip, unit, hostname, first_seen, last_seen, hits)
         VALUES (?1, ?2, {latest}, ?3, ?3, 1)
         ON CONFLICT (ip) DO UPDATE SET
           unit = excluded.unit,
           first_seen = min(first_seen, excluded.first_seen),
           last_seen = max(last_seen, excluded.last_seen),
           hits = hits + 1,
           status = CASE WHEN status = 'cleaned' AND excluded.last_seen > cleaned_at
                         THEN 'reinfected' ELSE status END"
        ))?;
        let event = tx.prepare_cached(
            "INSERT INTO host_events (ip, at, status, actor, note)
         VALUES (?1, ?2, 'reinfected', 'gatewatch', ?3)",
        )?;
        let pair = tx.prepare_cached(
            "INSERT INTO host_indicators (ip, indicator, first_seen, last_seen, hits)
         VALUES (?1, ?2, ?3, ?3, 1)
         ON CONFLICT (ip, indicator) DO UPDATE SET
           first_seen = min(first_seen, excluded.first_seen),
           last_seen = max(last_seen, excluded.last_seen),
           hits = hits + 1",
        )?;
        let alert = tx.prepare_cached(
            "INSERT INTO alerts (ts, ip, indicator, json) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let journal = tx.prepare_cached(crate::store::journal::JOURNAL_HIT)?;
        let name = tx.prepare_cached(
            "INSERT INTO host_names (ip, name, mac, source, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (ip, name, source, coalesce(mac, '')) DO UPDATE SET
           first_seen = min(first_seen, excluded.first_seen),
           last_seen = max(last_seen, excluded.last_seen)",
        )?;
        let host_name = tx.prepare_cached(&format!(
            "UPDATE hosts SET hostname = {latest} WHERE ip = ?1"
        ))?;
        Ok(Statements {
            unit,
            indicator,
            prior,
            host,
            event,
            pair,
            alert,
            journal,
            name,
            host_name,
        })
    }

    /// Record a host name and refresh the host's name to the latest one.
    pub fn name(&mut self, n: &NameRecord) -> rusqlite::Result<()> {
        let ip = n.ip.to_string();
        let mac = n.mac.as_ref().map(mac_text);
        self.name
            .execute(params![ip, n.name, mac, n.source.as_str(), n.ts_ns])?;
        self.host_name.execute(params![ip])?;
        Ok(())
    }

    /// The row id of the hit's indicator: from `ids`, else inserted (or
    /// updated) and remembered.
    pub fn indicator_id(
        &mut self,
        r: &StoreRecord,
        ids: &mut HashMap<(String, String), i64>,
    ) -> rusqlite::Result<i64> {
        let key = (r.value.clone(), r.feed.clone());
        if let Some(&id) = ids.get(&key) {
            return Ok(id);
        }
        let id: i64 = self.indicator.query_row(
            params![r.value, r.kind, r.feed, r.category, r.severity],
            |row| row.get(0),
        )?;
        ids.insert(key, id);
        Ok(id)
    }

    /// Record a hit on indicator row `id`: the host, the host-indicator
    /// pair and the raw alert, and a `reinfected` event when a cleaned host
    /// hits after it was cleaned.
    pub fn hit(&mut self, r: &StoreRecord, id: i64) -> rusqlite::Result<()> {
        let ip = r.host.to_string();
        let was: Option<(String, Option<i64>)> = self
            .prior
            .query_row(params![ip], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        self.host.execute(params![ip, r.unit, r.ts_ns])?;
        if let Some((status, Some(cleaned_at))) = was
            && status == "cleaned"
            && r.ts_ns > cleaned_at
        {
            self.event
                .execute(params![ip, r.ts_ns, format!("hit {} again", r.value)])?;
        }
        self.pair.execute(params![ip, id, r.ts_ns])?;
        let alert = self.alert.insert(params![r.ts_ns, ip, id, r.json])?;
        self.journal.execute(params![r.ts_ns, r.json, alert])?;
        Ok(())
    }
}
