//! The retro-hunt's history in the store: per UTC day and internal host,
//! the names and addresses it resolved, named and contacted (see
//! `detect::history` for what is recorded, `run::retro` for the hunt).
//!
//! Invariants:
//! - Each name or address is stored once (`history_values`); a history row
//!   is five small integers and the host's address, keyed by (day, host,
//!   value, how, port), so a repeat only moves first/last seen.
//! - A host keeps at most `max_items_per_host_day` rows a day; what does
//!   not fit is counted in `history_days.dropped`, so a report can say the
//!   day is incomplete instead of silently missing contacts.
//! - Days older than the retention (counted back from the newest day
//!   written) are deleted with their rows; values no row names go with them.

use super::{Store, StoreError};
use crate::detect::HitSource;
use crate::detect::history::{DAY_NS, HistoryItem, Seen, day_of};
use rusqlite::{CachedStatement, OptionalExtension, Transaction, params};
use std::collections::HashMap;
use std::net::IpAddr;

/// Schema step 3's history tables (see `MIGRATIONS`).
pub(super) const SCHEMA: &str = "CREATE TABLE history_values (
        id    INTEGER PRIMARY KEY,
        kind  TEXT NOT NULL CHECK (kind IN ('name', 'address')),
        value TEXT NOT NULL,
        UNIQUE (kind, value)
    );
    CREATE TABLE history (
        day        INTEGER NOT NULL,
        host       TEXT NOT NULL,
        value      INTEGER NOT NULL,
        how        INTEGER NOT NULL,
        port       INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        PRIMARY KEY (day, host, value, how, port)
    ) WITHOUT ROWID;
    CREATE INDEX history_by_value ON history (value);
    CREATE TABLE history_days (
        day     INTEGER NOT NULL,
        host    TEXT NOT NULL,
        unit    TEXT NOT NULL,
        items   INTEGER NOT NULL,
        dropped INTEGER NOT NULL,
        PRIMARY KEY (day, host)
    ) WITHOUT ROWID;
    CREATE INDEX history_days_unit ON history_days (unit, day);";

/// How an item was seen, as stored: small integers keep rows short.
const HOW: [(HitSource, i64); 6] = [
    (HitSource::DnsQuery, 1),
    (HitSource::DnsAnswer, 2),
    (HitSource::TlsSni, 3),
    (HitSource::QuicSni, 4),
    (HitSource::HttpHost, 5),
    (HitSource::Ip, 6),
];

fn how_code(h: HitSource) -> i64 {
    HOW.iter().find(|(s, _)| *s == h).map_or(0, |&(_, c)| c)
}

fn how_source(c: i64) -> Option<HitSource> {
    HOW.iter().find(|&&(_, x)| x == c).map(|&(s, _)| s)
}

/// Values and host-days the writer looked up, so a busy day costs one
/// statement per item. Bounded: cleared when full.
#[derive(Default)]
pub(super) struct HistoryCache {
    values: HashMap<Seen, i64>,
    days: HashMap<(i64, IpAddr), u32>,
    /// The newest day written, which retention counts back from.
    pub newest_day: Option<i64>,
}

const CACHE_MAX: usize = 1 << 20;

impl HistoryCache {
    /// Forget ids that a rolled-back transaction may have made.
    pub fn clear(&mut self) {
        self.values.clear();
        self.days.clear();
    }
}

/// The statements writing history, prepared once per transaction.
pub(super) struct HistoryWriter<'c> {
    value: CachedStatement<'c>,
    touch: CachedStatement<'c>,
    insert: CachedStatement<'c>,
    day_get: CachedStatement<'c>,
    day_new: CachedStatement<'c>,
    day_add: CachedStatement<'c>,
    /// Rows added and items dropped per host-day in this batch, written
    /// once at its end.
    added: HashMap<(i64, IpAddr), (i64, i64)>,
}

/// What writing one item did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Written {
    /// A new row.
    New,
    /// A repeat: first/last seen moved.
    Repeat,
    /// The host's day was full.
    Dropped,
}

impl<'c> HistoryWriter<'c> {
    pub fn prepare(tx: &'c Transaction<'_>) -> rusqlite::Result<HistoryWriter<'c>> {
        Ok(HistoryWriter {
            value: tx.prepare_cached(
                "INSERT INTO history_values (kind, value) VALUES (?1, ?2)
                 ON CONFLICT (kind, value) DO UPDATE SET kind = excluded.kind
                 RETURNING id",
            )?,
            touch: tx.prepare_cached(
                "UPDATE history SET first_seen = min(first_seen, ?6),
                                    last_seen = max(last_seen, ?6)
                 WHERE day = ?1 AND host = ?2 AND value = ?3 AND how = ?4 AND port = ?5",
            )?,
            insert: tx.prepare_cached(
                "INSERT INTO history (day, host, value, how, port, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            )?,
            day_get: tx.prepare_cached("SELECT items FROM history_days WHERE day = ?1 AND host = ?2")?,
            day_new: tx.prepare_cached(
                "INSERT INTO history_days (day, host, unit, items, dropped) VALUES (?1, ?2, ?3, 0, 0)
                 ON CONFLICT (day, host) DO NOTHING",
            )?,
            day_add: tx.prepare_cached(
                "UPDATE history_days SET items = items + ?3, dropped = dropped + ?4
                 WHERE day = ?1 AND host = ?2",
            )?,
            added: HashMap::new(),
        })
    }

    /// Write the batch's per host-day counts.
    pub fn finish(&mut self) -> rusqlite::Result<()> {
        for ((day, host), (items, dropped)) in self.added.drain() {
            self.day_add
                .execute(params![day, host.to_string(), items, dropped])?;
        }
        Ok(())
    }

    /// Write one item, keeping at most `cap` rows per host and day.
    pub fn write(
        &mut self,
        it: &HistoryItem,
        cap: u32,
        cache: &mut HistoryCache,
    ) -> rusqlite::Result<Written> {
        let day = day_of(it.ts_ns);
        cache.newest_day = Some(cache.newest_day.map_or(day, |d| d.max(day)));
        let id = self.value_id(&it.value, cache)?;
        let host = it.host.to_string();
        let (how, port) = (how_code(it.how), i64::from(it.port));
        if self
            .touch
            .execute(params![day, host, id, how, port, it.ts_ns])?
            > 0
        {
            return Ok(Written::Repeat);
        }
        let items = self.day_items(day, it, &host, cache)?;
        let fits = *items < cap;
        if fits {
            self.insert
                .execute(params![day, host, id, how, port, it.ts_ns])?;
            *items += 1;
        }
        let a = self.added.entry((day, it.host)).or_default();
        a.0 += i64::from(fits);
        a.1 += i64::from(!fits);
        Ok(if fits { Written::New } else { Written::Dropped })
    }

    fn value_id(&mut self, v: &Seen, cache: &mut HistoryCache) -> rusqlite::Result<i64> {
        if let Some(&id) = cache.values.get(v) {
            return Ok(id);
        }
        let (kind, text) = match v {
            Seen::Name(n) => ("name", n.to_string()),
            Seen::Address(a) => ("address", a.to_string()),
        };
        let id: i64 = self.value.query_row(params![kind, text], |r| r.get(0))?;
        if cache.values.len() >= CACHE_MAX {
            cache.values.clear();
        }
        cache.values.insert(v.clone(), id);
        Ok(id)
    }

    /// The count of rows `it.host` has on `day`, made if new.
    fn day_items<'a>(
        &mut self,
        day: i64,
        it: &HistoryItem,
        host: &str,
        cache: &'a mut HistoryCache,
    ) -> rusqlite::Result<&'a mut u32> {
        let key = (day, it.host);
        if !cache.days.contains_key(&key) {
            self.day_new.execute(params![day, host, it.unit.code])?;
            let n: i64 = self.day_get.query_row(params![day, host], |r| r.get(0))?;
            if cache.days.len() >= CACHE_MAX {
                cache.days.clear();
            }
            cache.days.insert(key, n.max(0) as u32);
        }
        Ok(cache.days.get_mut(&key).expect("just inserted"))
    }
}

/// One history row as the retro-hunt reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    pub day: i64,
    pub host: IpAddr,
    pub how: HitSource,
    pub port: u16,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
}

/// How big the history is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistorySize {
    pub days: u64,
    pub host_days: u64,
    pub rows: u64,
    pub values: u64,
    /// Items left out because a host's day was full.
    pub dropped: u64,
}

impl Store {
    /// Every stored name and address with its id, seen on `since_day` or
    /// later.
    pub fn history_values(&self, since_day: i64) -> Result<Vec<(i64, Seen)>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, kind, value FROM history_values v
                 WHERE EXISTS (SELECT 1 FROM history h WHERE h.value = v.id AND h.day >= ?1)",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![since_day], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, kind, text) in rows {
            let v = match kind.as_str() {
                "name" => Seen::Name(text.into()),
                _ => match text.parse() {
                    Ok(a) => Seen::Address(a),
                    Err(_) => return Err(self.bad(&format!("history address {text:?}"))),
                },
            };
            out.push((id, v));
        }
        Ok(out)
    }

    /// The rows of value `id` from `since_day` on.
    pub fn history_rows(&self, id: i64, since_day: i64) -> Result<Vec<HistoryRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT day, host, how, port, first_seen, last_seen FROM history
                 WHERE value = ?1 AND day >= ?2 ORDER BY first_seen",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![id, since_day], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(day, host, how, port, first, last)| {
                Ok(HistoryRow {
                    day,
                    host: host.parse().map_err(|_| self.bad("history host"))?,
                    how: how_source(how).ok_or_else(|| self.bad("history how"))?,
                    port: u16::try_from(port).map_err(|_| self.bad("history port"))?,
                    first_seen_ns: first,
                    last_seen_ns: last,
                })
            })
            .collect()
    }

    /// The ports each contacted address was reached on, from `since_day`
    /// on: only needed when a feed lists `address:port` entries.
    pub fn history_contact_ports(&self, since_day: i64) -> Result<Vec<(i64, u16)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT value, port FROM history WHERE how = ?1 AND day >= ?2")
            .map_err(|e| self.err(e))?;
        st.query_map(params![how_code(HitSource::Ip), since_day], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .and_then(|r| r.collect::<Result<Vec<_>, _>>())
        .map_err(|e| self.err(e))
        .map(|v| {
            v.into_iter()
                .filter_map(|(id, p)| Some((id, u16::try_from(p).ok()?)))
                .collect()
        })
    }

    /// When `ip` first hit an indicator with this value (any feed), if it
    /// did: the retro-hunt's line between what the sensor already reported
    /// and what it could not know then.
    pub fn first_hit(&self, ip: IpAddr, value: &str) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT min(hi.first_seen) FROM host_indicators hi
                 JOIN indicators i ON i.id = hi.indicator
                 WHERE hi.ip = ?1 AND i.value = ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![ip.to_string(), value], |r| {
                    r.get::<_, Option<i64>>(0)
                })
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Every (host, indicator value) pair the store holds: what a
    /// retro-hunt is compared on.
    pub fn host_indicator_pairs(&self) -> Result<Vec<(IpAddr, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT DISTINCT hi.ip, i.value FROM host_indicators hi
                 JOIN indicators i ON i.id = hi.indicator ORDER BY 1, 2",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(ip, v)| Ok((ip.parse().map_err(|_| self.bad("host address"))?, v)))
            .collect()
    }

    /// The history's size.
    pub fn history_size(&self) -> Result<HistorySize, StoreError> {
        let q = |sql: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
                .map(|n| n.unwrap_or(0).max(0) as u64)
                .map_err(|e| self.err(e))
        };
        Ok(HistorySize {
            days: q("SELECT count(DISTINCT day) FROM history_days")?,
            host_days: q("SELECT count(*) FROM history_days")?,
            rows: q("SELECT count(*) FROM history")?,
            values: q("SELECT count(*) FROM history_values")?,
            dropped: q("SELECT sum(dropped) FROM history_days")?,
        })
    }

    /// Hosts of `unit` (all when `None`) with any history between the two
    /// times: the machines seen on the network in a period.
    pub fn active_hosts(
        &self,
        unit: Option<&str>,
        from_ns: i64,
        to_ns: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT unit, host FROM history_days
                 WHERE day >= ?2 AND day <= ?3 AND (?1 IS NULL OR unit = ?1)
                 GROUP BY unit, host ORDER BY unit, host",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![unit, day_of(from_ns), day_of(to_ns)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .and_then(|r| r.collect::<Result<Vec<_>, _>>())
        .map_err(|e| self.err(e))
    }

    /// Delete history days before `newest_day - days + 1`, and the values
    /// no row names any more. Returns the rows deleted.
    pub fn prune_history(&mut self, newest_day: i64, days: u32) -> Result<usize, StoreError> {
        let before = newest_day - i64::from(days) + 1;
        let tx = self
            .conn
            .transaction()
            .map_err(|e| super::sql_error(&self.path, e))?;
        let n = tx
            .execute("DELETE FROM history WHERE day < ?1", params![before])
            .and_then(|n| {
                tx.execute("DELETE FROM history_days WHERE day < ?1", params![before])?;
                if n > 0 {
                    tx.execute(
                        "DELETE FROM history_values WHERE NOT EXISTS
                         (SELECT 1 FROM history h WHERE h.value = history_values.id)",
                        [],
                    )?;
                }
                Ok(n)
            })
            .map_err(|e| super::sql_error(&self.path, e))?;
        tx.commit().map_err(|e| super::sql_error(&self.path, e))?;
        Ok(n)
    }

    fn bad(&self, what: &str) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("bad {what}"),
        }
    }
}

/// The first nanosecond of `day`.
pub fn day_start_ns(day: i64) -> i64 {
    day.saturating_mul(DAY_NS)
}
