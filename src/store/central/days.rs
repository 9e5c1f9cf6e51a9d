//! `gw_hits` by UTC day: a batch's day partitions made before its rows
//! go in, and retention by dropping whole days.
//!
//! Creating a partition takes a lock on `gw_hits` that waits for every
//! open insert, and two sessions creating the same table at once would
//! collide in the catalog; so every creation and drop first takes one
//! advisory lock (always before the table lock: no two sessions wait for
//! each other in the other order), and a connection remembers the days it
//! has seen, so a batch of known days takes no lock at all.

use super::{Central, CentralError};
use chrono::NaiveDate;
use postgres::Transaction;
use std::collections::HashSet;

/// The advisory lock every partition creation and drop holds.
const PARTITION_LOCK: i64 = 7_177_611_901;

/// Day numbers (since 1970-01-01, UTC) of the hit timestamps `ts_ns`,
/// computed as the insert computes `ts` (so a row near midnight lands in
/// the day made for it).
const BATCH_DAYS: &str = "
SELECT DISTINCT ((to_timestamp(t / 1e9) AT TIME ZONE 'UTC')::date - DATE '1970-01-01')
FROM unnest($1::bigint[]) t";

/// Make the partitions of the days of `ts_ns` not in `known`, in `tx`;
/// the days made or found (to remember once `tx` commits).
pub(super) fn ensure_days(
    tx: &mut Transaction<'_>,
    ts_ns: &Vec<i64>,
    known: &HashSet<i32>,
) -> Result<Vec<i32>, postgres::Error> {
    let new: Vec<i32> = tx
        .query(BATCH_DAYS, &[ts_ns])?
        .iter()
        .map(|r| r.get::<_, i32>(0))
        .filter(|d| !known.contains(d))
        .collect();
    if !new.is_empty() {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
        tx.execute(
            "SELECT gw_hits_partition(DATE '1970-01-01' + d) FROM unnest($1::int[]) d",
            &[&new],
        )?;
    }
    Ok(new)
}

/// Days since 1970-01-01 of `day`.
fn day_number(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

/// `gw_hits_dYYYYMMDD` of a day partition; `None` for any other name, so
/// a name put into SQL is always one of ours.
fn partition_day(name: &str) -> Option<NaiveDate> {
    let digits = name.strip_prefix("gw_hits_d")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

impl Central {
    /// The day partitions of `gw_hits`, oldest first: (name, day).
    pub fn hit_days(&mut self) -> Result<Vec<(String, NaiveDate)>, CentralError> {
        let rows = self
            .client
            .query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'gw_hits'::regclass ORDER BY 1",
                &[],
            )
            .map_err(|e| self.sql(e))?;
        let mut days: Vec<(String, NaiveDate)> = rows
            .iter()
            .filter_map(|r| {
                let name: String = r.get(0);
                partition_day(&name).map(|d| (name, d))
            })
            .collect();
        days.sort_by_key(|(_, d)| *d);
        Ok(days)
    }

    /// Drop the hit partitions of the days before `day` (UTC), whole: no
    /// row is deleted one by one, hosts and their status history stay.
    /// Each day is dropped in its own short transaction; the names dropped.
    pub fn drop_days_before(&mut self, day: NaiveDate) -> Result<Vec<String>, CentralError> {
        let mut dropped = Vec::new();
        for (name, d) in self.hit_days()? {
            if d >= day {
                break;
            }
            let shown = self.shown.clone();
            let sql = |source| CentralError::Sql {
                url: shown.clone(),
                source,
            };
            let mut tx = self.client.transaction().map_err(sql)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
                .map_err(sql)?;
            // An identifier cannot be a bound parameter; `name` is a
            // partition name checked by `partition_day`, quoted as well.
            tx.batch_execute(&format!("DROP TABLE IF EXISTS \"{name}\""))
                .map_err(sql)?;
            tx.commit().map_err(sql)?;
            self.days.remove(&day_number(d));
            dropped.push(name);
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::{day_number, partition_day};
    use chrono::NaiveDate;

    #[test]
    fn only_day_partition_names_are_days() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert_eq!(partition_day("gw_hits_d20261128"), Some(d));
        for bad in [
            "gw_hits_d2026112",
            "gw_hits_d20261328",
            "gw_hits_d2026112x",
            "gw_hits_d20261128\"; DROP TABLE gw_hosts; --",
            "gw_hosts",
        ] {
            assert_eq!(partition_day(bad), None, "{bad}");
        }
        assert_eq!(day_number(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
    }
}
