//! Taking a batch of journal rows: one transaction, idempotent.

use super::{Central, CentralError};
use crate::store::journal::{JournalRow, StatusEvent};
use serde_json::Value;

/// What taking a batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// The sensor's acknowledged sequence number after the batch.
    pub acked: i64,
    /// Hit rows that were not alerts (unreadable JSON, no host), left out
    /// and logged rather than stalling the sensor's shipping.
    pub skipped: u64,
}

/// Rows per batch: one transaction each.
pub const BATCH_ROWS: usize = 5_000;

/// Hits of a batch, as parallel columns (one array parameter each).
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    ts_ns: Vec<i64>,
    ip: Vec<String>,
    unit: Vec<String>,
    unit_name: Vec<String>,
    indicator: Vec<String>,
    kind: Vec<String>,
    feed: Vec<String>,
    category: Vec<String>,
    severity: Vec<String>,
    json: Vec<String>,
    hostname: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, r: &JournalRow) -> Result<(), String> {
        let v: Value = serde_json::from_str(&r.json).map_err(|e| format!("seq {}: {e}", r.seq))?;
        // A suspicion that does not make its host an offender stays local.
        if v["offender"] == false {
            return Ok(());
        }
        let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        let ip = s("host_ip");
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("seq {}: no host_ip in the alert", r.seq));
        }
        self.seq.push(r.seq);
        self.ts_ns.push(r.at_ns);
        self.ip.push(ip);
        self.unit.push(s("unit"));
        self.unit_name.push(s("unit_name"));
        self.indicator.push(s("indicator"));
        self.kind.push(s("indicator_kind"));
        self.feed.push(s("feed"));
        self.category.push(s("category"));
        self.severity.push(s("severity"));
        self.hostname
            .push(v["hostname"].as_str().map(str::to_owned));
        self.json.push(r.json.clone());
        Ok(())
    }
}

/// Insert the hits not seen yet and fold only those into the hosts and
/// their days and hours (`rollup.rs`, in place of `{ROLLUP}`); a host
/// marked cleaned before a new hit becomes reinfected, with an event.
const TAKE_HITS: &str = "
WITH r AS (
    SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                         $12::text[], $13::text[])
        AS r(seq, ts_ns, ip, unit, unit_name, indicator, kind, feed, category, severity,
             json, hostname)
), ins AS (
    INSERT INTO gw_hits (sensor, seq, ts, ip, unit, unit_name, indicator, kind, feed,
                         category, severity, json)
    SELECT $1, seq, to_timestamp(ts_ns / 1e9), ip::inet, unit, unit_name, indicator, kind,
           feed, category, severity, json::jsonb
    FROM r
    ON CONFLICT (sensor, seq, ts) DO NOTHING
    RETURNING seq, ts, ip
), {ROLLUP}, agg AS (
    SELECT i.ip,
           (array_agg(r.unit ORDER BY i.ts DESC))[1] AS unit,
           (array_agg(r.unit_name ORDER BY i.ts DESC))[1] AS unit_name,
           (array_agg(r.hostname ORDER BY i.ts DESC) FILTER (WHERE r.hostname IS NOT NULL))[1]
               AS hostname,
           min(i.ts) AS first_seen, max(i.ts) AS last_seen, count(*) AS hits
    FROM ins i JOIN r ON r.seq = i.seq
    GROUP BY i.ip
), old AS (
    SELECT h.ip, h.status, h.cleaned_at FROM gw_hosts h
    WHERE h.sensor = $1 AND h.ip IN (SELECT ip FROM agg)
), up AS (
    INSERT INTO gw_hosts (sensor, ip, unit, unit_name, hostname, first_seen, last_seen, hits)
    SELECT $1, ip, unit, unit_name, hostname, first_seen, last_seen, hits FROM agg
    ON CONFLICT (sensor, ip) DO UPDATE SET
        unit = excluded.unit,
        unit_name = excluded.unit_name,
        hostname = coalesce(excluded.hostname, gw_hosts.hostname),
        first_seen = least(gw_hosts.first_seen, excluded.first_seen),
        last_seen = greatest(gw_hosts.last_seen, excluded.last_seen),
        hits = gw_hosts.hits + excluded.hits,
        status = CASE WHEN gw_hosts.status = 'cleaned'
                           AND excluded.last_seen > gw_hosts.cleaned_at
                      THEN 'reinfected' ELSE gw_hosts.status END
    RETURNING ip, status, last_seen
)
INSERT INTO gw_host_events (sensor, ip, at, status, actor, note, origin)
SELECT $1, up.ip, up.last_seen, 'reinfected', 'gatewatch', 'hit again after cleaning', 'central'
FROM up JOIN old ON old.ip = up.ip
WHERE old.status = 'cleaned' AND up.status = 'reinfected'";

/// A sensor's own status change, applied once (its seq is unique).
const TAKE_STATUS: &str = "
WITH ev AS (
    INSERT INTO gw_host_events (sensor, ip, at, status, actor, note, origin, seq)
    VALUES ($1, $2::text::inet, to_timestamp($3::bigint / 1e9), $4, $5, $6, 'sensor', $7)
    ON CONFLICT (sensor, seq) DO NOTHING
    RETURNING ip, at, status
)
UPDATE gw_hosts h SET status = ev.status,
       cleaned_at = CASE WHEN ev.status = 'cleaned' THEN ev.at ELSE NULL END
FROM ev WHERE h.sensor = $1 AND h.ip = ev.ip";

/// A batch's hits as columns, its status rows, and how many hit rows
/// were left out.
fn split<'r>(
    rows: &'r [JournalRow],
    sensor: &str,
) -> Result<(Columns, Vec<&'r JournalRow>, u64), CentralError> {
    let mut hits = Columns::default();
    let mut statuses = Vec::new();
    let mut skipped = 0;
    for r in rows {
        match r.kind.as_str() {
            // A row that is not an alert cannot be taken; stalling the
            // sensor's shipping on it would be worse than leaving it.
            "hit" => {
                if let Err(e) = hits.push(r) {
                    tracing::warn!("central: journal row of {sensor} left out: {e}");
                    skipped += 1;
                }
            }
            "status" => statuses.push(r),
            k => return Err(CentralError::Invalid(format!("unknown journal kind {k:?}"))),
        }
    }
    Ok((hits, statuses, skipped))
}

/// Whether `e` is PostgreSQL finding no partition for a row.
fn no_partition(e: &CentralError) -> bool {
    let CentralError::Sql { source, .. } = e else {
        return false;
    };
    source.code() == Some(&postgres::error::SqlState::CHECK_VIOLATION)
}

/// Insert the hits of `c` (their day partitions exist) and fold them
/// into the hosts.
fn take_hits(
    tx: &mut postgres::Transaction<'_>,
    sensor: &String,
    c: &Columns,
) -> Result<u64, postgres::Error> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| TAKE_HITS.replace("{ROLLUP}", super::rollup::TAKE));
    tx.execute(
        SQL.as_str(),
        &[
            sensor,
            &c.seq,
            &c.ts_ns,
            &c.ip,
            &c.unit,
            &c.unit_name,
            &c.indicator,
            &c.kind,
            &c.feed,
            &c.category,
            &c.severity,
            &c.json,
            &c.hostname,
        ],
    )
}

impl Central {
    /// The last sequence number of `sensor` the central holds (0: none).
    pub fn acked(&mut self, sensor: &str) -> Result<i64, CentralError> {
        let row = self
            .client
            .query_opt("SELECT acked FROM gw_sensors WHERE sensor = $1", &[&sensor])
            .map_err(|e| self.sql(e))?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    /// Take `rows` (one sensor's, in order) in one transaction.
    pub fn take(&mut self, province: &str, rows: &[JournalRow]) -> Result<Taken, CentralError> {
        match self.take_once(province, rows) {
            Err(e) if !self.days.is_empty() => {
                // A day this connection knew may have been dropped since
                // (a late row after pruning): forget them all, and try
                // once more when that is what failed.
                self.days.clear();
                if no_partition(&e) {
                    self.take_once(province, rows)
                } else {
                    Err(e)
                }
            }
            r => r,
        }
    }

    fn take_once(&mut self, province: &str, rows: &[JournalRow]) -> Result<Taken, CentralError> {
        let Some(last) = rows.last() else {
            return Err(CentralError::Invalid("empty batch".into()));
        };
        let sensor = last.sensor.clone();
        if rows.iter().any(|r| r.sensor != sensor) {
            return Err(CentralError::Invalid(format!(
                "a batch mixes sensors ({sensor} and others): ship each store's own rows"
            )));
        }
        let (hits, statuses, skipped) = split(rows, &sensor)?;
        let shown = self.shown.clone();
        let sql = |source| CentralError::Sql {
            url: shown.clone(),
            source,
        };
        let mut tx = self.client.transaction().map_err(sql)?;
        tx.execute(
            "INSERT INTO gw_sensors (sensor, province) VALUES ($1, $2)
             ON CONFLICT (sensor) DO UPDATE SET province = excluded.province",
            &[&sensor, &province],
        )
        .map_err(sql)?;
        let mut new_days = Vec::new();
        if !hits.seq.is_empty() {
            new_days = super::days::ensure_days(&mut tx, &hits.ts_ns, &self.days).map_err(sql)?;
            take_hits(&mut tx, &sensor, &hits).map_err(sql)?;
        }
        for r in statuses {
            let ev: StatusEvent = serde_json::from_str(&r.json)
                .map_err(|e| CentralError::Invalid(format!("seq {}: {e}", r.seq)))?;
            tx.execute(
                TAKE_STATUS,
                &[
                    &sensor, &ev.ip, &r.at_ns, &ev.status, &ev.actor, &ev.note, &r.seq,
                ],
            )
            .map_err(sql)?;
        }
        let row = tx
            .query_one(
                "UPDATE gw_sensors SET acked = greatest(acked, $2), shipped_at = now()
                 WHERE sensor = $1 RETURNING acked",
                &[&sensor, &last.seq],
            )
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
        self.days.extend(new_days);
        Ok(Taken {
            acked: row.get(0),
            skipped,
        })
    }
}
