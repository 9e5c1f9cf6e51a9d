//! Which hosts hit in which UTC hour (`gw_host_hours`): what the figures
//! of a period read instead of the period's raw hits.
//!
//! The figures ask "which hosts had a hit in [from, to)". Answered from
//! `gw_hits` that costs a scan of every hit of the period (2.6 s for 2M
//! hits; a campaign month is 90M), answered from here one row per host and
//! active hour. Invariants:
//! - A row is added or counted up in the same statement that inserts the
//!   hits (`ship::TAKE_HITS`), from the hits actually inserted, so a batch
//!   taken twice counts nothing twice.
//! - Hours are UTC hours, so they tile any period whose ends fall on a
//!   whole hour (local midnight in any whole-hour time zone); the slivers
//!   of a period that does not start or end on one are read from
//!   `gw_hits` ([`PERIOD_HOSTS`]), so the answer is exact for any period.
//! - Rows outlive the raw hits they count (`gatewatch central prune`
//!   keeps them longer), so a past period's figures need no raw hits.

use super::{Central, CentralError};

/// The table, created if absent and, on its creation, filled from the
/// hits already held (a central of an earlier gatewatch).
pub(super) const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7177611903);
DO $h$
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
END $h$;
COMMIT;";

/// The hosts, as (sensor, ip), with a hit in [`$1`, `$2`) (text
/// timestamps); `$3`, `$4`: the whole UTC hours inside it, from
/// [`whole_hours`].
pub(super) const PERIOD_HOSTS: &str = "
    SELECT sensor, ip FROM gw_host_hours
    WHERE hour >= $3::text::timestamptz AND hour < $4::text::timestamptz
    UNION
    SELECT sensor, ip FROM gw_hits
    WHERE (ts >= $1::text::timestamptz AND ts < least($3::text::timestamptz, $2::text::timestamptz))
       OR (ts >= greatest($4::text::timestamptz, $1::text::timestamptz) AND ts < $2::text::timestamptz)";

const HOUR_NS: i64 = 3_600_000_000_000;

/// The whole UTC hours of `[from_ns, to_ns)`: the first hour start at or
/// after `from_ns`, the last at or before `to_ns` (an empty range when the
/// period is inside one hour; the slivers then cover all of it).
pub(super) fn whole_hours(from_ns: i64, to_ns: i64) -> (i64, i64) {
    let up = from_ns.div_euclid(HOUR_NS) * HOUR_NS;
    let first = if up < from_ns {
        up.saturating_add(HOUR_NS)
    } else {
        up
    };
    (first, to_ns.div_euclid(HOUR_NS) * HOUR_NS)
}

impl Central {
    /// Delete the hour rows of the days before `day` (UTC); the row count.
    pub fn drop_hours_before(&mut self, day: chrono::NaiveDate) -> Result<u64, CentralError> {
        let cut = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().to_rfc3339());
        self.client
            .execute(
                "DELETE FROM gw_host_hours WHERE hour < $1::text::timestamptz",
                &[&cut],
            )
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::{HOUR_NS, whole_hours};

    #[test]
    fn whole_hours_lie_inside_the_period() {
        let h = HOUR_NS;
        assert_eq!(whole_hours(0, 24 * h), (0, 24 * h));
        assert_eq!(whole_hours(1, 24 * h - 1), (h, 23 * h));
        assert_eq!(
            whole_hours(h + 5, h + 10),
            (2 * h, h),
            "inside one hour: none"
        );
        assert_eq!(whole_hours(-h - 1, 0), (-h, 0));
    }
}
