//! Reading the central view: per-unit figures of a period (nation ->
//! province -> unit), hosts, and the central's status changes.

use super::{Central, CentralError};
use crate::store::Status;
use crate::store::query::UnitFigures;
use serde::Serialize;

/// A host as the central knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CentralHost {
    pub sensor: String,
    pub province: String,
    pub ip: String,
    pub unit: String,
    pub hostname: Option<String>,
    pub status: String,
    pub hits: i64,
}

fn to_ts(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339()
}

impl Central {
    /// Per (province, unit), hosts with a hit in `[from_ns, to_ns)` (read
    /// from their days and hours, `rollup.rs`), by the status they have now (the figures a store gives per unit, with no
    /// top lists); `province` narrows to one. Ordered by province, then unit.
    pub fn unit_figures(
        &mut self,
        from_ns: i64,
        to_ns: i64,
        province: Option<&str>,
    ) -> Result<Vec<(String, UnitFigures)>, CentralError> {
        let q = format!(
            "WITH hit AS ({})
             SELECT s.province, h.unit, max(h.unit_name),
                    count(*),
                    count(*) FILTER (WHERE h.status = 'cleaned'),
                    count(*) FILTER (WHERE h.status <> 'cleaned'),
                    count(*) FILTER (WHERE h.status = 'reinfected')
             FROM hit JOIN gw_hosts h USING (sensor, ip)
             JOIN gw_sensors s USING (sensor)
             WHERE $7::text IS NULL OR s.province = $7
             GROUP BY s.province, h.unit
             ORDER BY s.province, h.unit",
            super::rollup::PERIOD_HOSTS
        );
        let b = super::rollup::tiles(from_ns, to_ns).map(to_ts);
        let rows = self
            .client
            .query(&q, &[&b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &province])
            .map_err(|e| self.sql(e))?;
        let n = |v: i64| v.max(0) as u64;
        Ok(rows
            .iter()
            .map(|r| {
                let f = UnitFigures {
                    code: r.get(1),
                    name: r.get(2),
                    detected: n(r.get(3)),
                    cleaned: n(r.get(4)),
                    still_infected: n(r.get(5)),
                    reinfected: n(r.get(6)),
                    ..UnitFigures::default()
                };
                (r.get(0), f)
            })
            .collect())
    }

    /// Hosts of a province (every province when `None`), by sensor, address.
    pub fn hosts(&mut self, province: Option<&str>) -> Result<Vec<CentralHost>, CentralError> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT {} FROM gw_hosts h JOIN gw_sensors s USING (sensor)
                     WHERE $1::text IS NULL OR s.province = $1
                     ORDER BY s.province, h.sensor, h.ip",
                    super::view::HOST_COLUMNS
                ),
                &[&province],
            )
            .map_err(|e| self.sql(e))?;
        Ok(rows.iter().map(super::view::central_host).collect())
    }

    /// Mark a host (of `sensor`) cleaned or open centrally, by `actor`.
    /// The central is authoritative: a later hit shipped by the sensor
    /// makes it reinfected here.
    pub fn set_status(
        &mut self,
        sensor: &str,
        ip: std::net::IpAddr,
        status: Status,
        actor: &str,
        note: &str,
    ) -> Result<(), CentralError> {
        if status == Status::Reinfected {
            return Err(CentralError::Invalid(
                "only a hit after cleaning marks a host reinfected".into(),
            ));
        }
        let ip = ip.to_string();
        let st = status.as_str();
        let shown = self.shown.clone();
        let sql = |source| CentralError::Sql {
            url: shown.clone(),
            source,
        };
        let mut tx = self.client.transaction().map_err(sql)?;
        let n = tx
            .execute(
                "UPDATE gw_hosts SET status = $3,
                        cleaned_at = CASE WHEN $3 = 'cleaned' THEN now() ELSE NULL END
                 WHERE sensor = $1 AND ip = $2::text::inet",
                &[&sensor, &ip, &st],
            )
            .and_then(|n| {
                tx.execute(
                    "INSERT INTO gw_host_events (sensor, ip, at, status, actor, note, origin)
                     VALUES ($1, $2::text::inet, now(), $3, $4, $5, 'central')",
                    &[&sensor, &ip, &st, &actor, &note],
                )
                .map(|_| n)
            })
            .and_then(|n| {
                let province: Option<String> = tx
                    .query_opt(
                        "SELECT province FROM gw_sensors WHERE sensor = $1",
                        &[&sensor],
                    )?
                    .map(|r| r.get(0));
                let target = format!("{sensor}/{ip}");
                let action = match status {
                    Status::Cleaned => "host-cleaned",
                    _ => "host-reopened",
                };
                super::accounts::audit(&mut tx, actor, action, &target, province.as_deref(), note)
                    .map(|_| n)
            })
            .map_err(sql)?;
        if n == 0 {
            return Err(CentralError::Invalid(format!(
                "no host {ip} of sensor {sensor:?} in the central view"
            )));
        }
        tx.commit().map_err(sql)
    }
}

impl Central {
    /// Sensors of a province (every province when `None`), by name.
    pub fn sensors(&mut self, province: Option<&str>) -> Result<Vec<String>, CentralError> {
        let rows = self
            .client
            .query(
                "SELECT sensor FROM gw_sensors WHERE $1::text IS NULL OR province = $1 ORDER BY sensor",
                &[&province],
            )
            .map_err(|e| self.sql(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

impl Central {
    /// Rows and bytes on disk (with indexes) of each central table.
    pub fn sizes(&mut self) -> Result<Vec<(String, i64, i64)>, CentralError> {
        let mut out = Vec::new();
        // Fixed table names: identifiers cannot be bound parameters. A
        // partitioned table's bytes are its partitions' (and a plain
        // table has no partition tree).
        for t in [
            "gw_sensors",
            "gw_hits",
            "gw_hosts",
            "gw_host_events",
            "gw_host_days",
            "gw_host_hours",
        ] {
            let r = self
                .client
                .query_one(
                    &format!(
                        "SELECT count(*), greatest(pg_total_relation_size('{t}'),
                             (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint
                              FROM pg_partition_tree('{t}'))) FROM {t}"
                    ),
                    &[],
                )
                .map_err(|e| self.sql(e))?;
            out.push((t.to_owned(), r.get(0), r.get(1)));
        }
        Ok(out)
    }
}
