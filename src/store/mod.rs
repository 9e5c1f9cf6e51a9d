//! The offender store: every host that hit an indicator, per host × indicator
//! aggregates, the host's cleaning status and the raw alerts, in SQLite.
//!
//! Invariants:
//! - WAL mode, so readers (`export`, `report`, the API) never block the
//!   writer and always see a consistent snapshot.
//! - Only [`writer`] writes hits, in batched transactions; the hot path never
//!   waits on the disk (see `writer.rs`).
//! - The schema version is `PRAGMA user_version`; migrations run in order in
//!   one transaction each, and a database from a newer gatewatch is refused.

pub mod accounts;
pub mod api;
pub mod central;
pub mod console;
pub mod history;
pub mod hygiene;
pub mod journal;
pub mod query;
pub mod writer;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Schema versions, oldest first; index + 1 is the version a step
/// produces. A step is one or more SQL batches, run in one transaction.
const MIGRATIONS: &[&[&str]] = &[
    // 1: hosts, indicators, aggregates, alerts, status history.
    &["CREATE TABLE units (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL
    );
    CREATE TABLE hosts (
        ip         TEXT PRIMARY KEY,
        unit       TEXT NOT NULL,
        hostname   TEXT,
        status     TEXT NOT NULL DEFAULT 'open'
                   CHECK (status IN ('open', 'cleaned', 'reinfected')),
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        hits       INTEGER NOT NULL DEFAULT 0,
        cleaned_at INTEGER
    );
    CREATE INDEX hosts_unit ON hosts (unit, status);
    CREATE TABLE indicators (
        id       INTEGER PRIMARY KEY,
        value    TEXT NOT NULL,
        kind     TEXT NOT NULL,
        feed     TEXT NOT NULL,
        category TEXT NOT NULL,
        severity TEXT NOT NULL,
        UNIQUE (value, feed)
    );
    CREATE TABLE host_indicators (
        ip         TEXT NOT NULL REFERENCES hosts (ip),
        indicator  INTEGER NOT NULL REFERENCES indicators (id),
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        hits       INTEGER NOT NULL,
        PRIMARY KEY (ip, indicator)
    ) WITHOUT ROWID;
    CREATE TABLE alerts (
        id        INTEGER PRIMARY KEY,
        ts        INTEGER NOT NULL,
        ip        TEXT NOT NULL,
        indicator INTEGER NOT NULL,
        json      TEXT NOT NULL
    );
    CREATE INDEX alerts_ts ON alerts (ts);
    CREATE TABLE host_events (
        id     INTEGER PRIMARY KEY,
        ip     TEXT NOT NULL,
        at     INTEGER NOT NULL,
        status TEXT NOT NULL,
        actor  TEXT NOT NULL,
        note   TEXT NOT NULL
    );"],
    // 2: what each address was called, per name source, with when: the
    // history behind hosts.hostname (the latest name). One row per
    // (ip, name, source, mac); a NULL mac (no DHCP) is its own key.
    &["CREATE TABLE host_names (
        ip         TEXT NOT NULL,
        name       TEXT NOT NULL,
        mac        TEXT,
        source     TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX host_names_key
        ON host_names (ip, name, source, coalesce(mac, ''));"],
    // 3: the retro-hunt's history per host and day, and hygiene signals
    // per host.
    &[history::SCHEMA, hygiene::SCHEMA],
    // 4: console accounts, their units and API tokens, and the audit log.
    &[accounts::SCHEMA],
    // 5: each sensor's latest status (feeds, capture) for the console.
    &[console::SCHEMA],
    // 6: the spool for the central view: the store's sensor, the journal of
    // hits and status changes, what each central acknowledged.
    &[journal::SCHEMA],
    // 7: a hit's journal row points at its raw alert instead of a copy.
    &[journal::SCHEMA_ALERT_REF],
];

/// Order of an address's names, latest first: the name seen most recently;
/// at the same time a DHCP host name first (what the machine calls itself),
/// then the FQDN, NetBIOS, mDNS. The first is what `hosts.hostname` shows.
pub(crate) const NAME_ORDER: &str = "last_seen DESC,
    CASE source WHEN 'dhcp' THEN 0 WHEN 'dhcp_fqdn' THEN 1 WHEN 'netbios' THEN 2 ELSE 3 END,
    name";

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Why the store cannot be used; every message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the store: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path}: written by a newer gatewatch (schema {found}, this build knows up to {known}); \
         upgrade gatewatch or point --store at another file"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{path}: the database is damaged ({detail}); restore it from a backup or move it away")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path}: store is busy or locked by another process; retry, or stop the other writer")]
    Locked { path: PathBuf },
    #[error("{path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Cleaning status of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Open,
    Cleaned,
    Reinfected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Cleaned => "cleaned",
            Status::Reinfected => "reinfected",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "open" => Some(Status::Open),
            "cleaned" => Some(Status::Cleaned),
            "reinfected" => Some(Status::Reinfected),
            _ => None,
        }
    }

    /// Vietnamese label for reports and exports.
    pub fn label_vi(self) -> &'static str {
        match self {
            Status::Open => "Chưa xử lý",
            Status::Cleaned => "Đã xử lý",
            Status::Reinfected => "Tái nhiễm",
        }
    }
}

/// A host as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRow {
    pub ip: IpAddr,
    pub unit: String,
    pub hostname: Option<String>,
    pub status: Status,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub hits: u64,
}

/// An open store connection.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) for writing, migrating to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Invalid(format!("{}: cannot create directory: {e}", dir.display()))
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::connect(path, flags, true, true)
    }

    /// Open an existing store read-only (exports, reports, the API); works
    /// while a sensor writes to it.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Invalid(format!(
                "{}: no store here; run the sensor with this --store first",
                path.display()
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::connect(path, flags, false, true)
    }

    /// As [`Store::open_read_only`] without the integrity check, which
    /// reads the whole file: for the console and the API, which open the
    /// store per request after it was checked once at start.
    pub fn open_read_only_unchecked(path: &Path) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Invalid(format!(
                "{}: no store here; run the sensor with this --store first",
                path.display()
            )));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::connect(path, flags, false, false)
    }

    fn connect(
        path: &Path,
        flags: OpenFlags,
        write: bool,
        check: bool,
    ) -> Result<Store, StoreError> {
        let p = path.to_path_buf();
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: p.clone(),
            source,
        })?;
        let mut s = Store { conn, path: p };
        s.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| s.err(e))?;
        let version: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| s.err(e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: s.path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        let check = if check {
            s.conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| s.err(e))?
        } else {
            "ok".to_owned()
        };
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: s.path.clone(),
                detail: check,
            });
        }
        if write {
            s.conn
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| s.err(e))?;
            // NORMAL in WAL mode: a commit survives a process crash; an OS
            // crash may lose the last commits, never consistency.
            s.conn
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| s.err(e))?;
            s.migrate(version)?;
        } else if version < SCHEMA_VERSION {
            return Err(StoreError::Invalid(format!(
                "{}: schema {version} is older than this gatewatch's {SCHEMA_VERSION}; \
                 open it once with the sensor (it migrates) before exporting",
                s.path.display()
            )));
        }
        Ok(s)
    }

    /// Turn an SQLite error into one that names the file.
    fn err(&self, e: rusqlite::Error) -> StoreError {
        sql_error(&self.path, e)
    }

    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        self.migrate_range(from, SCHEMA_VERSION)
    }

    /// Run the steps that take schema `from` to schema `upto`.
    fn migrate_range(&mut self, from: i64, upto: i64) -> Result<(), StoreError> {
        let steps = MIGRATIONS.iter().enumerate().take(upto as usize);
        for (i, batches) in steps.skip(from as usize) {
            let to = i as i64 + 1;
            let tx = self
                .conn
                .transaction()
                .map_err(|e| sql_error(&self.path, e))?;
            batches
                .iter()
                .try_for_each(|sql| tx.execute_batch(sql))
                .and_then(|()| tx.pragma_update(None, "user_version", to))
                .and_then(|()| tx.commit())
                .map_err(|e| sql_error(&self.path, e))?;
            tracing::info!(
                "{}: store schema migrated to version {to}",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Create a new store at `path` with only the first `version` schema
    /// steps, as an older gatewatch left it: migration tests start from a
    /// real older store instead of a copy of its schema.
    #[doc(hidden)]
    pub fn create_with_schema(path: &Path, version: i64) -> Result<(), StoreError> {
        if !(0..=SCHEMA_VERSION).contains(&version) || path.exists() {
            return Err(StoreError::Invalid(format!(
                "{}: cannot create a schema {version} store here",
                path.display()
            )));
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let mut s = Store {
            conn,
            path: path.to_path_buf(),
        };
        s.migrate_range(0, version)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// `PRAGMA integrity_check`: "ok" when the file is consistent.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// One host, if it ever hit an indicator.
    pub fn host(&self, ip: IpAddr) -> Result<Option<HostRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT ip, unit, hostname, status, first_seen, last_seen, hits
                 FROM hosts WHERE ip = ?1",
                params![ip.to_string()],
                host_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Hosts of one unit (all units when `unit` is `None`), by address.
    pub fn hosts(&self, unit: Option<&str>) -> Result<Vec<HostRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT ip, unit, hostname, status, first_seen, last_seen, hits FROM hosts
                 WHERE ?1 IS NULL OR unit = ?1 ORDER BY unit, ip",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![unit], host_row)
            .and_then(|r| r.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))
    }

    /// Number of raw alerts kept.
    pub fn alert_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM alerts", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Mark a host cleaned by `actor` at `at_ns`, with a note. A later hit
    /// makes it `reinfected`. Kept in the host's status history and the
    /// audit log.
    pub fn mark_cleaned(
        &mut self,
        ip: IpAddr,
        actor: &str,
        note: &str,
        at_ns: i64,
    ) -> Result<HostRow, StoreError> {
        self.set_status(ip, Status::Cleaned, actor, note, at_ns)
    }

    /// Delete raw alerts older than `before_ns`; aggregates are kept, and
    /// so is an alert whose journal row a configured central has not
    /// acknowledged yet (the journal ships the alert's line by reference).
    pub fn prune_alerts(&mut self, before_ns: i64) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM alerts WHERE ts < ?1 AND id NOT IN (
                     SELECT alert FROM journal
                     WHERE alert IS NOT NULL
                       AND seq > (SELECT coalesce(min(acked), 9223372036854775807) FROM ship_state))",
                params![before_ns],
            )
            .map_err(|e| self.err(e))
    }
}

/// An SQLite error as a [`StoreError`] naming `path`: busy/locked,
/// damaged, read-only and full disks get their own wording.
pub(crate) fn sql_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Locked { path }
        }
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt {
                path,
                detail: e.to_string(),
            }
        }
        Some(rusqlite::ErrorCode::ReadOnly) => StoreError::Invalid(format!(
            "{}: the store is read-only here (file or file system); \
             give the sensor a writable --store path",
            path.display()
        )),
        Some(rusqlite::ErrorCode::CannotOpen) => StoreError::Invalid(format!(
            "{}: cannot open the database or its WAL files: the directory must exist and be \
             writable by the sensor (a read-only file system?)",
            path.display()
        )),
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Invalid(format!(
            "{}: the disk is full; free space (hits keep going to the alert log)",
            path.display()
        )),
        _ => StoreError::Sql { path, source: e },
    }
}

pub(crate) fn host_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HostRow> {
    let ip: String = r.get(0)?;
    let status: String = r.get(3)?;
    let bad = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("bad {what} in store").into(),
        )
    };
    Ok(HostRow {
        ip: ip.parse().map_err(|_| bad("address"))?,
        unit: r.get(1)?,
        hostname: r.get(2)?,
        status: Status::parse(&status).ok_or_else(|| bad("status"))?,
        first_seen_ns: r.get(4)?,
        last_seen_ns: r.get(5)?,
        hits: r.get::<_, i64>(6)? as u64,
    })
}
