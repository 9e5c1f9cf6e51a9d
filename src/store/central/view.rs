//! What the central console shows: a unit's hosts, one host's hits and
//! status history, the sensors and how fresh their shipping is. Callers
//! scope by province and unit (the console's account checks); these reads
//! return what they are asked for.

use super::{Central, CentralError, CentralHost};

/// A host with its times (Unix nanoseconds).
#[derive(Clone, Debug)]
pub struct HostDetail {
    pub host: CentralHost,
    pub unit_name: String,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub cleaned_at_ns: Option<i64>,
}

/// One hit as the central keeps it.
#[derive(Clone, Debug)]
pub struct CentralHit {
    pub ts_ns: i64,
    pub indicator: String,
    pub kind: String,
    pub feed: String,
    pub category: String,
    pub severity: String,
    /// Where the indicator was seen (`dns.query`, `tls.sni`, ...).
    pub observed_in: String,
}

/// One status change of a host, at the sensor or centrally.
#[derive(Clone, Debug)]
pub struct CentralEvent {
    pub at_ns: i64,
    pub status: String,
    pub actor: String,
    pub note: String,
    pub origin: String,
}

/// A sensor and its shipping.
#[derive(Clone, Debug)]
pub struct SensorRow {
    pub sensor: String,
    pub province: String,
    pub acked: i64,
    /// When it last shipped a batch (Unix nanoseconds).
    pub shipped_ns: Option<i64>,
    pub hosts: i64,
}

/// Nanoseconds of a timestamptz column, in SQL.
const NS: &str = "(extract(epoch FROM {}) * 1e9)::bigint";

fn ns(col: &str) -> String {
    NS.replace("{}", col)
}

/// The select list of a [`CentralHost`] (`h`: gw_hosts, `s`: gw_sensors),
/// which [`central_host`] reads.
pub(super) const HOST_COLUMNS: &str =
    "h.sensor, s.province, host(h.ip), h.unit, h.hostname, h.status, h.hits";

/// A [`CentralHost`] from the first columns of `r` ([`HOST_COLUMNS`]).
pub(super) fn central_host(r: &postgres::Row) -> CentralHost {
    CentralHost {
        sensor: r.get(0),
        province: r.get(1),
        ip: r.get(2),
        unit: r.get(3),
        hostname: r.get(4),
        status: r.get(5),
        hits: r.get(6),
    }
}

/// The select list `host_row` reads.
fn host_columns() -> String {
    format!(
        "{HOST_COLUMNS}, h.unit_name, {}, {}, {}",
        ns("h.first_seen"),
        ns("h.last_seen"),
        ns("h.cleaned_at")
    )
}

fn host_row(r: &postgres::Row) -> HostDetail {
    HostDetail {
        host: central_host(r),
        unit_name: r.get(7),
        first_seen_ns: r.get(8),
        last_seen_ns: r.get(9),
        cleaned_at_ns: r.get(10),
    }
}

impl Central {
    /// Provinces with a sensor, by name.
    pub fn provinces(&mut self) -> Result<Vec<String>, CentralError> {
        let rows = self
            .client
            .query(
                "SELECT DISTINCT province FROM gw_sensors ORDER BY province",
                &[],
            )
            .map_err(|e| self.sql(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Hosts of unit `unit` in `province`, most recently seen first.
    pub fn unit_hosts(
        &mut self,
        province: &str,
        unit: &str,
    ) -> Result<Vec<HostDetail>, CentralError> {
        let q = format!(
            "SELECT {} FROM gw_hosts h JOIN gw_sensors s USING (sensor)
             WHERE s.province = $1 AND h.unit = $2
             ORDER BY h.last_seen DESC, h.sensor, h.ip",
            host_columns()
        );
        let rows = self
            .client
            .query(&q, &[&province, &unit])
            .map_err(|e| self.sql(e))?;
        Ok(rows.iter().map(host_row).collect())
    }

    /// Host `ip` of `sensor`, if the central knows it.
    pub fn host(
        &mut self,
        sensor: &str,
        ip: std::net::IpAddr,
    ) -> Result<Option<HostDetail>, CentralError> {
        let q = format!(
            "SELECT {} FROM gw_hosts h JOIN gw_sensors s USING (sensor)
             WHERE h.sensor = $1 AND h.ip = $2::text::inet",
            host_columns()
        );
        let row = self
            .client
            .query_opt(&q, &[&sensor, &ip.to_string()])
            .map_err(|e| self.sql(e))?;
        Ok(row.as_ref().map(host_row))
    }

    /// The newest `limit` hits of host `ip` of `sensor`, newest first.
    pub fn host_hits(
        &mut self,
        sensor: &str,
        ip: std::net::IpAddr,
        limit: usize,
    ) -> Result<Vec<CentralHit>, CentralError> {
        let q = format!(
            "SELECT {}, indicator, kind, feed, category, severity,
                    coalesce(json->>'observed_in', '')
             FROM gw_hits WHERE sensor = $1 AND ip = $2::text::inet
             ORDER BY ts DESC, seq DESC LIMIT $3",
            ns("ts")
        );
        let rows = self
            .client
            .query(&q, &[&sensor, &ip.to_string(), &(limit as i64)])
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .iter()
            .map(|r| CentralHit {
                ts_ns: r.get(0),
                indicator: r.get(1),
                kind: r.get(2),
                feed: r.get(3),
                category: r.get(4),
                severity: r.get(5),
                observed_in: r.get(6),
            })
            .collect())
    }

    /// Status changes of host `ip` of `sensor`, newest first.
    pub fn host_events(
        &mut self,
        sensor: &str,
        ip: std::net::IpAddr,
    ) -> Result<Vec<CentralEvent>, CentralError> {
        let q = format!(
            "SELECT {}, status, actor, note, origin FROM gw_host_events
             WHERE sensor = $1 AND ip = $2::text::inet ORDER BY at DESC, id DESC",
            ns("at")
        );
        let rows = self
            .client
            .query(&q, &[&sensor, &ip.to_string()])
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .iter()
            .map(|r| CentralEvent {
                at_ns: r.get(0),
                status: r.get(1),
                actor: r.get(2),
                note: r.get(3),
                origin: r.get(4),
            })
            .collect())
    }

    /// Sensors of a province (every province when `None`), with their
    /// shipping and how many hosts they reported.
    pub fn sensor_rows(&mut self, province: Option<&str>) -> Result<Vec<SensorRow>, CentralError> {
        let q = format!(
            "SELECT s.sensor, s.province, s.acked, {},
                    (SELECT count(*) FROM gw_hosts h WHERE h.sensor = s.sensor)
             FROM gw_sensors s WHERE $1::text IS NULL OR s.province = $1
             ORDER BY s.province, s.sensor",
            ns("s.shipped_at")
        );
        let rows = self
            .client
            .query(&q, &[&province])
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .iter()
            .map(|r| SensorRow {
                sensor: r.get(0),
                province: r.get(1),
                acked: r.get(2),
                shipped_ns: r.get(3),
                hosts: r.get(4),
            })
            .collect())
    }
}

/// One (province, unit)'s counts of a day.
pub type UnitDay = (String, String, crate::store::console::DayCounts);

impl Central {
    /// Per (province, unit) and local day (days since the epoch at
    /// `offset_s` east of UTC) from `from_ns`: hosts first detected, hosts
    /// cleaned, hosts reinfected; `province` narrows to one.
    pub fn daily_counts(
        &mut self,
        from_ns: i64,
        offset_s: i64,
        province: Option<&str>,
    ) -> Result<Vec<UnitDay>, CentralError> {
        let day = |col: &str| {
            format!("floor((extract(epoch FROM {col})::float8 + $2::float8) / 86400)::bigint")
        };
        let q = format!(
            "SELECT s.province, h.unit, {d}, 'detected', count(*)
             FROM gw_hosts h JOIN gw_sensors s USING (sensor)
             WHERE h.first_seen >= to_timestamp($1::bigint / 1e9)
               AND ($3::text IS NULL OR s.province = $3)
             GROUP BY 1, 2, 3
             UNION ALL
             SELECT s.province, h.unit, {e}, e.status, count(DISTINCT (e.sensor, e.ip))
             FROM gw_host_events e JOIN gw_hosts h USING (sensor, ip) JOIN gw_sensors s USING (sensor)
             WHERE e.at >= to_timestamp($1::bigint / 1e9) AND e.status IN ('cleaned', 'reinfected')
               AND ($3::text IS NULL OR s.province = $3)
             GROUP BY 1, 2, 3, 4",
            d = day("h.first_seen"),
            e = day("e.at"),
        );
        let rows = self
            .client
            .query(&q, &[&from_ns, &(offset_s as f64), &province])
            .map_err(|e| self.sql(e))?;
        let mut out: std::collections::BTreeMap<
            (String, String, i64),
            crate::store::console::DayCounts,
        > = Default::default();
        for r in &rows {
            let (p, u, d, what, n): (String, String, i64, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            let c = out.entry((p, u, d)).or_default();
            c.day = d;
            let n = n.max(0) as u64;
            match what.as_str() {
                "detected" => c.detected += n,
                "cleaned" => c.cleaned += n,
                _ => c.reinfected += n,
            }
        }
        Ok(out.into_iter().map(|((p, u, _), c)| (p, u, c)).collect())
    }
}
