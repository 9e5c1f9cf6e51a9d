//! The central view on PostgreSQL (issue 18): what every sensor's journal
//! ships, kept per (sensor, sequence number), with hosts identified by
//! sensor and address (two provinces may both use 10.20.0.0/16).
//!
//! Invariants:
//! - Taking a batch is one transaction: the hits, the hosts they update,
//!   the status events and the sensor's acknowledged sequence number commit
//!   together or not at all, so a shipper that resumes from `acked` neither
//!   loses nor doubles a row.
//! - A row seen twice changes nothing: hits are inserted `ON CONFLICT DO
//!   NOTHING`, and only the rows actually inserted update the hosts. The
//!   key is (sensor, seq, ts), since PostgreSQL wants the partition column
//!   in a partitioned table's key; it still finds a re-sent row because a
//!   journal row's `at` never changes (the journal is append-only, and the
//!   shipper re-sends exactly the rows after the acknowledged seq).
//! - `gw_hits` is partitioned by UTC day (`gw_hits_dYYYYMMDD`, range on
//!   `ts`), with no default partition (one would block creating a day
//!   later). A batch's days are created in the batch's transaction, before its
//!   rows go in, under an advisory lock (two sensors creating one day at
//!   once both succeed). Retention drops whole days (`drop_days_before`),
//!   never rows; hosts and their status history stay. A late row of a day
//!   already dropped re-creates that day.
//! - The central is authoritative for a host's status: a sensor's own
//!   status changes are shipped up as events, the central's are not sent
//!   down; a hit after the central's `cleaned` marks the host `reinfected`.
//! - Published feed snapshots (`gw_snapshots`) only grow in version; the
//!   central vouches for none of them (sensors verify, `snapshots.rs`).
//! - Every value reaches SQL as a bound parameter.

mod accounts;
mod days;
mod read;
mod rollup;
mod ship;
mod snapshots;
mod view;

pub use read::CentralHost;
pub use ship::{BATCH_ROWS, Taken};
pub use snapshots::{Listed, Published, sha256_hex};
pub use view::{CentralEvent, CentralHit, HostDetail, SensorRow, UnitDay};

use postgres::{Client, NoTls};
use std::path::Path;

/// Why the central cannot be used; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    #[error(
        "central {url}: {source}; check the URL, that PostgreSQL runs and accepts this client (pg_hba.conf)"
    )]
    Connect {
        url: String,
        source: postgres::Error,
    },
    #[error("central {url}: {}", pg_text(source))]
    Sql {
        url: String,
        source: postgres::Error,
    },
    #[error("central: {0}")]
    Invalid(String),
}

/// What PostgreSQL said (its message, not only "db error").
fn pg_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// The central schema, created if absent. Sensors making first contact at
/// once would race in `CREATE TABLE IF NOT EXISTS` (it is not atomic in
/// PostgreSQL), so the creation holds an advisory lock. A `gw_hits` made
/// by an earlier gatewatch (one plain table) is moved into day partitions
/// once, here.
const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7177611900);
CREATE TABLE IF NOT EXISTS gw_sensors (
    sensor     text PRIMARY KEY,
    province   text NOT NULL,
    acked      bigint NOT NULL DEFAULT 0,
    shipped_at timestamptz
);
DO $m$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('gw_hits') AND relkind = 'r') THEN
        ALTER TABLE gw_hits RENAME TO gw_hits_unpartitioned;
        ALTER TABLE gw_hits_unpartitioned DROP CONSTRAINT gw_hits_pkey;
        DROP INDEX IF EXISTS gw_hits_ts;
        DROP INDEX IF EXISTS gw_hits_host;
    END IF;
END $m$;
CREATE TABLE IF NOT EXISTS gw_hits (
    sensor    text NOT NULL,
    seq       bigint NOT NULL,
    ts        timestamptz NOT NULL,
    ip        inet NOT NULL,
    unit      text NOT NULL,
    unit_name text NOT NULL,
    indicator text NOT NULL,
    kind      text NOT NULL,
    feed      text NOT NULL,
    category  text NOT NULL,
    severity  text NOT NULL,
    json      jsonb NOT NULL,
    PRIMARY KEY (sensor, seq, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS gw_hits_ts ON gw_hits (ts);
CREATE INDEX IF NOT EXISTS gw_hits_host ON gw_hits (sensor, ip);
CREATE OR REPLACE FUNCTION gw_hits_partition(d date) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    name text := 'gw_hits_d' || to_char(d, 'YYYYMMDD');
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF gw_hits FOR VALUES FROM (%L) TO (%L)',
                       name, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
    END IF;
    RETURN name;
END $f$;
DO $m$
BEGIN
    IF to_regclass('gw_hits_unpartitioned') IS NOT NULL THEN
        PERFORM gw_hits_partition(d)
        FROM (SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date AS d FROM gw_hits_unpartitioned) days;
        INSERT INTO gw_hits SELECT * FROM gw_hits_unpartitioned;
        DROP TABLE gw_hits_unpartitioned;
    END IF;
END $m$;
CREATE TABLE IF NOT EXISTS gw_hosts (
    sensor     text NOT NULL,
    ip         inet NOT NULL,
    unit       text NOT NULL,
    unit_name  text NOT NULL,
    hostname   text,
    status     text NOT NULL DEFAULT 'open'
               CHECK (status IN ('open', 'cleaned', 'reinfected')),
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    hits       bigint NOT NULL,
    cleaned_at timestamptz,
    PRIMARY KEY (sensor, ip)
);
CREATE TABLE IF NOT EXISTS gw_host_events (
    id     bigserial PRIMARY KEY,
    sensor text NOT NULL,
    ip     inet NOT NULL,
    at     timestamptz NOT NULL,
    status text NOT NULL,
    actor  text NOT NULL,
    note   text NOT NULL,
    origin text NOT NULL CHECK (origin IN ('sensor', 'central')),
    seq    bigint,
    UNIQUE (sensor, seq)
);
CREATE TABLE IF NOT EXISTS gw_snapshots (
    version      bigint PRIMARY KEY CHECK (version > 0),
    published_at timestamptz NOT NULL,
    indicators   bigint NOT NULL,
    sha256       text NOT NULL,
    bytes        bytea NOT NULL
);
COMMIT;";

/// A connection to the central PostgreSQL.
pub struct Central {
    client: Client,
    /// The URL without its password, for messages.
    shown: String,
    /// Days (since 1970-01-01, UTC) whose `gw_hits` partition this
    /// connection has seen exist; forgotten after any failed take.
    days: std::collections::HashSet<i32>,
}

/// `postgres://user:secret@host/db` without the secret.
pub fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl Central {
    /// Connect to `url` (a libpq URL); with `ca` (a PEM file of the CA
    /// that signed the server's certificate) over TLS, which the URL can
    /// require with `sslmode=require`. Creates the schema if absent.
    pub fn connect(url: &str, ca: Option<&Path>) -> Result<Central, CentralError> {
        let shown = shown_url(url);
        let err = |source| CentralError::Connect {
            url: shown.clone(),
            source,
        };
        let client = match ca {
            Some(ca) => Client::connect(url, tls(ca)?).map_err(err)?,
            None if url.contains("sslmode=require") => {
                return Err(CentralError::Invalid(format!(
                    "{shown} asks for TLS (sslmode=require): give the CA certificate (--central-ca FILE, or ca in [central])"
                )));
            }
            None => Client::connect(url, NoTls).map_err(err)?,
        };
        let mut c = Central {
            client,
            shown,
            days: Default::default(),
        };
        c.client.batch_execute(SCHEMA).map_err(|e| c.sql(e))?;
        for schema in [accounts::SCHEMA, rollup::SCHEMA] {
            c.client.batch_execute(schema).map_err(|e| c.sql(e))?;
        }
        Ok(c)
    }

    fn sql(&self, source: postgres::Error) -> CentralError {
        CentralError::Sql {
            url: self.shown.clone(),
            source,
        }
    }

    /// Whether the connection was lost (a pooled one is then not reused).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The URL as messages show it (no password).
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// rustls with the CA in `ca` as the only root.
fn tls(ca: &Path) -> Result<tokio_postgres_rustls::MakeRustlsConnect, CentralError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |e: String| CentralError::Invalid(format!("{}: {e}", ca.display()));
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
        .map_err(|e| bad(format!("cannot read the CA certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::shown_url;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            shown_url("postgres://gw:s3cr%40t@db.example:5432/gw?sslmode=require"),
            "postgres://gw@db.example:5432/gw?sslmode=require"
        );
        assert_eq!(shown_url("postgres://gw@db/gw"), "postgres://gw@db/gw");
        assert_eq!(shown_url("host=/tmp dbname=gw"), "host=/tmp dbname=gw");
    }
}

/// What a shipper did, counted where it happens and read by the metrics.
#[derive(Debug, Default)]
pub struct ShipStats {
    /// Journal rows the central acknowledged.
    pub rows: std::sync::atomic::AtomicU64,
    /// Batches refused or connections lost (retried).
    pub failures: std::sync::atomic::AtomicU64,
    /// Journal rows left out because they were not alerts.
    pub skipped: std::sync::atomic::AtomicU64,
    /// Rows written here and not acknowledged yet.
    pub lag: std::sync::atomic::AtomicU64,
    /// Unix seconds of the last pass that reached the central and left
    /// nothing behind (0: never).
    pub last_success_s: std::sync::atomic::AtomicU64,
}

/// What a snapshot fetcher did, counted where it happens and read by the
/// metrics.
#[derive(Debug, Default)]
pub struct FetchStats {
    /// Fetches that could not reach or read the central (retried).
    pub failures: std::sync::atomic::AtomicU64,
    /// Unix seconds of the last fetch that reached the central (the start
    /// until the first; 0: not fetching).
    pub last_success_s: std::sync::atomic::AtomicU64,
}
