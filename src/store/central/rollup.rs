//! Which hosts hit in which UTC day and hour (`gw_host_days`,
//! `gw_host_hours`): what the figures of a period read instead of the
//! period's raw hits.
//!
//! The figures ask "which hosts had a hit in [from, to)". From `gw_hits`
//! that is a scan of every hit of the period (a campaign month is 90M);
//! here it is one row per host and active day for the whole UTC days of
//! the period, one per host and active hour for the whole hours left at
//! its ends, and the raw hits only for what is left at its ends below an
//! hour. Invariants:
//! - Rows are added or counted up in the statement that inserts the hits
//!   (`ship::TAKE_HITS`), from the hits actually inserted, so a batch
//!   taken twice counts nothing twice.
//! - Days, hours and slivers tile the period exactly ([`tiles`]), so the
//!   answer equals the raw hits' for any period (tests/central_rollup.rs).
//! - Rows outlive the raw hits they count (`gatewatch central prune
//!   --keep-host-days`), so a past period's figures need no raw hits.

use super::{Central, CentralError};

/// The tables, created if absent and, on creation, filled from the hits
/// already held (a central of an earlier gatewatch).
pub(super) const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7177611903);
DO $r$
BEGIN
    IF to_regclass('gw_host_hours') IS NULL THEN
        CREATE TABLE gw_host_hours (
            hour   timestamptz NOT NULL,
            sensor text NOT NULL,
            ip     inet NOT NULL,
            hits   bigint NOT NULL,
            PRIMARY KEY (hour, sensor, ip)
        );
        INSERT INTO gw_host_hours (hour, sensor, ip, hits)
        SELECT date_trunc('hour', ts, 'UTC'), sensor, ip, count(*)
        FROM gw_hits GROUP BY 1, 2, 3;
    END IF;
    IF to_regclass('gw_host_days') IS NULL THEN
        CREATE TABLE gw_host_days (
            day    timestamptz NOT NULL,
            sensor text NOT NULL,
            ip     inet NOT NULL,
            hits   bigint NOT NULL,
            PRIMARY KEY (day, sensor, ip)
        );
        INSERT INTO gw_host_days (day, sensor, ip, hits)
        SELECT date_trunc('day', ts, 'UTC'), sensor, ip, count(*)
        FROM gw_hits GROUP BY 1, 2, 3;
    END IF;
END $r$;
COMMIT;";

/// The CTEs of `ship::TAKE_HITS` that count the inserted hits (`ins`)
/// into their day and hour.
pub(super) const TAKE: &str = "
hours AS (
    INSERT INTO gw_host_hours (hour, sensor, ip, hits)
    SELECT date_trunc('hour', ts, 'UTC'), $1, ip, count(*) FROM ins GROUP BY 1, 3
    ON CONFLICT (hour, sensor, ip) DO UPDATE SET hits = gw_host_hours.hits + excluded.hits
), days AS (
    INSERT INTO gw_host_days (day, sensor, ip, hits)
    SELECT date_trunc('day', ts, 'UTC'), $1, ip, count(*) FROM ins GROUP BY 1, 3
    ON CONFLICT (day, sensor, ip) DO UPDATE SET hits = gw_host_days.hits + excluded.hits
)";

/// The hosts, as (sensor, ip), with a hit in [`$1`, `$2`); `$3`..`$6`:
/// the whole hours and whole days inside it ([`tiles`]). Every bound is
/// a text timestamp.
pub(super) const PERIOD_HOSTS: &str = "
    SELECT sensor, ip FROM gw_host_days
    WHERE day >= $5::text::timestamptz AND day < $6::text::timestamptz
    UNION
    SELECT sensor, ip FROM gw_host_hours
    WHERE (hour >= $3::text::timestamptz AND hour < least($4::text::timestamptz, $5::text::timestamptz))
       OR (hour >= greatest($6::text::timestamptz, $3::text::timestamptz) AND hour < $4::text::timestamptz)
    UNION
    SELECT sensor, ip FROM gw_hits
    WHERE (ts >= $1::text::timestamptz AND ts < least($2::text::timestamptz, $3::text::timestamptz))
       OR (ts >= greatest($4::text::timestamptz, $1::text::timestamptz) AND ts < $2::text::timestamptz)";

const HOUR_NS: i64 = 3_600_000_000_000;
const DAY_NS: i64 = 24 * HOUR_NS;

/// The whole `unit`s of `[from, to)`: the first start at or after `from`,
/// the last at or before `to` (first > last when none fits).
fn inside(from: i64, to: i64, unit: i64) -> (i64, i64) {
    let down = from.div_euclid(unit) * unit;
    let first = if down < from {
        down.saturating_add(unit)
    } else {
        down
    };
    (first, to.div_euclid(unit) * unit)
}

/// `[from_ns, to_ns)` as `[from, to, first hour, last hour, first day,
/// last day]`: raw slivers [from, first hour) and [last hour, to), hours
/// [first hour, first day) and [last day, last hour), days [first day,
/// last day); the `least`/`greatest` of [`PERIOD_HOSTS`] make the pieces
/// cover the period when no whole hour or day fits.
pub(super) fn tiles(from_ns: i64, to_ns: i64) -> [i64; 6] {
    let (h1, h2) = inside(from_ns, to_ns, HOUR_NS);
    let (d1, d2) = inside(h1, h2, DAY_NS);
    [from_ns, to_ns, h1, h2, d1, d2]
}

impl Central {
    /// Delete the day and hour rows before `day` (UTC); the rows deleted.
    pub fn drop_host_periods_before(
        &mut self,
        day: chrono::NaiveDate,
    ) -> Result<u64, CentralError> {
        let cut = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().to_rfc3339());
        let mut n = 0;
        for q in [
            "DELETE FROM gw_host_hours WHERE hour < $1::text::timestamptz",
            "DELETE FROM gw_host_days WHERE day < $1::text::timestamptz",
        ] {
            n += self.client.execute(q, &[&cut]).map_err(|e| self.sql(e))?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::{DAY_NS, HOUR_NS, tiles};

    #[test]
    fn tiles_lie_inside_the_period() {
        let (h, d) = (HOUR_NS, DAY_NS);
        assert_eq!(tiles(0, 2 * d), [0, 2 * d, 0, 2 * d, 0, 2 * d]);
        assert_eq!(tiles(1, d - 1), [1, d - 1, h, 23 * h, d, 0], "no whole day");
        assert_eq!(tiles(17 * h, d + 17 * h)[2..], [17 * h, d + 17 * h, d, d]);
        assert_eq!(tiles(h + 5, h + 10)[2..4], [2 * h, h], "inside one hour");
    }
}
