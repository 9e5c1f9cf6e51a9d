//! The store's only writer: a thread that takes hit and host-name records
//! from one bounded queue and commits them in batches.
//!
//! The sink offers records with `try_send`: a slow or full disk fills the
//! queue, and what does not fit is counted (`overflow`), never waited for,
//! so capture and matching never block on the disk. A batch is committed at
//! least every [`FLUSH_EVERY`], so a `kill -9` loses at most that much; a
//! failed commit (disk full, locked) is counted, logged and retried with the
//! same batch on the next tick.
//!
//! Host names share the queue with hits, in arrival order, so a hit that
//! creates a host picks up a name learned just before it, and a name learned
//! later updates the host (`hosts.hostname` is always the latest name).

use super::{NAME_ORDER, Store, StoreError};
use crate::detect::Hit;
use crate::protocols::hostnames::{HostName, NameSource};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use rusqlite::{CachedStatement, OptionalExtension, Transaction, params};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest time a committed-later hit waits in memory.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Most records per transaction.
const MAX_BATCH: usize = 4096;
/// How often raw alerts past the retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// One hit as the store keeps it.
#[derive(Clone, Debug)]
pub struct StoreRecord {
    pub ts_ns: i64,
    pub host: IpAddr,
    pub unit: String,
    pub unit_name: String,
    pub value: String,
    pub kind: &'static str,
    pub feed: String,
    pub category: String,
    pub severity: &'static str,
    /// The alert line as written to the alert log.
    pub json: String,
}

impl StoreRecord {
    pub fn from_hit(hit: &Hit, json: String) -> StoreRecord {
        let ind = &hit.indicator;
        StoreRecord {
            ts_ns: hit.ts_ns,
            host: hit.host,
            unit: hit.unit.code.clone(),
            unit_name: hit.unit.name.clone(),
            value: ind.value.to_string(),
            kind: ind.kind.as_str(),
            feed: ind.feed.name.clone(),
            category: ind.feed.category.clone(),
            severity: ind.feed.severity.as_str(),
            json,
        }
    }
}

/// One host name as the store keeps it: `ip` was called `name` at `ts_ns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRecord {
    pub ts_ns: i64,
    pub ip: IpAddr,
    pub name: String,
    /// The client's hardware address when the protocol carries it (DHCP).
    pub mac: Option<[u8; 6]>,
    pub source: NameSource,
}

impl NameRecord {
    /// A name parsed from a packet captured at `ts_ns`.
    pub fn from_host_name(ts_ns: i64, n: HostName) -> NameRecord {
        NameRecord {
            ts_ns,
            ip: n.ip,
            name: n.name,
            mac: n.mac,
            source: n.source,
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`, the form `host_names.mac` holds.
pub fn mac_text(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// What the queue carries: hits and names in the order they were seen.
enum StoreMsg {
    Hit(StoreRecord),
    Name(NameRecord),
}

/// Counters shared with metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Records committed.
    pub written: AtomicU64,
    /// Records refused because the queue (or the retry backlog) was full.
    pub overflow: AtomicU64,
    /// Failed commits (each retried).
    pub errors: AtomicU64,
    /// Committed transactions.
    pub batches: AtomicU64,
    /// Host-name records committed.
    pub names_written: AtomicU64,
    /// Host-name records refused because the queue (or backlog) was full.
    pub names_overflow: AtomicU64,
}

impl WriterStats {
    /// Count records that will not be written, by kind.
    fn lost(&self, msgs: &[StoreMsg]) {
        let names = msgs
            .iter()
            .filter(|m| matches!(m, StoreMsg::Name(_)))
            .count() as u64;
        self.names_overflow.fetch_add(names, Ordering::Relaxed);
        self.overflow
            .fetch_add(msgs.len() as u64 - names, Ordering::Relaxed);
    }
}

/// Handle to the writer thread.
pub struct StoreWriter {
    tx: Sender<StoreMsg>,
    handle: std::thread::JoinHandle<()>,
    pub stats: Arc<WriterStats>,
}

impl StoreWriter {
    /// Start writing into `store`. `capacity` bounds both the queue and the
    /// backlog kept for retry; `retention` prunes raw alerts older than that
    /// (relative to the newest hit, so replaying old captures keeps them).
    pub fn start(store: Store, capacity: usize, retention: Option<Duration>) -> StoreWriter {
        let (tx, rx) = bounded(capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let st = stats.clone();
        let handle = std::thread::Builder::new()
            .name("gw-store".into())
            .spawn(move || run(store, rx, st, capacity.max(1), retention))
            .expect("spawn store thread");
        StoreWriter { tx, handle, stats }
    }

    /// Queue a record without waiting; false (and counted) when full.
    pub fn offer(&self, rec: StoreRecord) -> bool {
        self.try_queue(StoreMsg::Hit(rec))
    }

    /// Queue a record, waiting for room: for replay, where nothing is
    /// captured live and no hit may be left out of the store.
    pub fn put(&self, rec: StoreRecord) {
        self.queue(StoreMsg::Hit(rec));
    }

    /// Queue a host name without waiting, on the same bounded queue as hits;
    /// false (and counted in `names_overflow`) when full. For live capture:
    /// a name is announced again (DHCP renewals, NetBIOS refreshes), a
    /// stalled sensor is not.
    pub fn offer_name(&self, rec: NameRecord) -> bool {
        self.try_queue(StoreMsg::Name(rec))
    }

    /// Queue a host name, waiting for room: for replay.
    pub fn put_name(&self, rec: NameRecord) {
        self.queue(StoreMsg::Name(rec));
    }

    fn try_queue(&self, msg: StoreMsg) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(m)) | Err(TrySendError::Disconnected(m)) => {
                self.stats.lost(std::slice::from_ref(&m));
                false
            }
        }
    }

    fn queue(&self, msg: StoreMsg) {
        if let Err(e) = self.tx.send(msg) {
            self.stats.lost(std::slice::from_ref(&e.0));
        }
    }

    /// Close the queue and wait until everything queued is committed (or
    /// given up after repeated failures, which are logged).
    pub fn finish(self) -> Arc<WriterStats> {
        drop(self.tx);
        if self.handle.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
        self.stats
    }
}

fn run(
    mut store: Store,
    rx: Receiver<StoreMsg>,
    stats: Arc<WriterStats>,
    capacity: usize,
    retention: Option<Duration>,
) {
    let mut batch: Vec<StoreMsg> = Vec::new();
    let mut ids: HashMap<(String, String), i64> = HashMap::new();
    let mut last_flush = Instant::now();
    // None: prune after the first commit, then every PRUNE_EVERY.
    let mut last_prune: Option<Instant> = None;
    let mut newest_ns = i64::MIN;
    let mut closed = false;
    let mut failures_in_a_row = 0u32;
    while !closed || !batch.is_empty() {
        if !closed {
            let wait = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
            closed = receive(&rx, &mut batch, wait);
        }
        let due = closed || batch.len() >= MAX_BATCH || last_flush.elapsed() >= FLUSH_EVERY;
        if !due || batch.is_empty() {
            if due {
                last_flush = Instant::now();
            }
            continue;
        }
        last_flush = Instant::now();
        match commit(&mut store, &batch, &mut ids) {
            Ok(()) => {
                committed(&mut batch, &stats, &mut newest_ns);
                failures_in_a_row = 0;
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                failures_in_a_row += 1;
                // The ids cache may name rows of a rolled-back transaction.
                ids.clear();
                retry_later(&e, &mut batch, &stats, capacity, closed, failures_in_a_row);
            }
        }
        if let Some(keep) = retention
            && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
            && newest_ns != i64::MIN
        {
            last_prune = Some(Instant::now());
            prune(&mut store, newest_ns, keep);
        }
    }
}

/// Wait up to `wait` for a record, then take whatever else is queued, up to
/// [`MAX_BATCH`]. True once the queue is closed (every sender gone).
fn receive(rx: &Receiver<StoreMsg>, batch: &mut Vec<StoreMsg>, wait: Duration) -> bool {
    match rx.recv_timeout(wait) {
        Ok(r) => {
            batch.push(r);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            false
        }
        Err(RecvTimeoutError::Timeout) => false,
        Err(RecvTimeoutError::Disconnected) => true,
    }
}

/// Count a committed batch by kind and empty it; `newest_ns` follows the
/// newest hit, which retention is measured from.
fn committed(batch: &mut Vec<StoreMsg>, stats: &WriterStats, newest_ns: &mut i64) {
    let mut names = 0;
    for m in batch.iter() {
        match m {
            StoreMsg::Hit(r) => *newest_ns = (*newest_ns).max(r.ts_ns),
            StoreMsg::Name(_) => names += 1,
        }
    }
    stats.names_written.fetch_add(names, Ordering::Relaxed);
    stats
        .written
        .fetch_add(batch.len() as u64 - names, Ordering::Relaxed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    batch.clear();
}

/// After a failed commit: log it (the first and every power of two in a
/// row), keep at most `capacity` of the newest records for the next try, and
/// give them up at shutdown after three failures; while running, pause a
/// flush interval before the retry.
fn retry_later(
    e: &StoreError,
    batch: &mut Vec<StoreMsg>,
    stats: &WriterStats,
    capacity: usize,
    closed: bool,
    failures_in_a_row: u32,
) {
    if failures_in_a_row == 1 || failures_in_a_row.is_power_of_two() {
        tracing::error!("store write failed ({failures_in_a_row} in a row): {e}");
    }
    if batch.len() > capacity {
        let excess = batch.len() - capacity;
        stats.lost(&batch[..excess]);
        batch.drain(..excess);
    }
    if closed && failures_in_a_row >= 3 {
        tracing::error!(
            "store: {} record(s) not written at shutdown (hits are in the alert log)",
            batch.len()
        );
        stats.lost(batch);
        batch.clear();
    } else if !closed {
        std::thread::sleep(FLUSH_EVERY);
    }
}

/// Delete raw alerts older than `keep` before the newest hit.
fn prune(store: &mut Store, newest_ns: i64, keep: Duration) {
    let before = newest_ns.saturating_sub(keep.as_nanos() as i64);
    match store.prune_alerts(before) {
        Ok(n) if n > 0 => tracing::info!("store: pruned {n} alert(s) past retention"),
        Ok(_) => {}
        Err(e) => tracing::warn!("store: pruning failed: {e}"),
    }
}

/// Write one batch in one transaction.
fn commit(
    store: &mut Store,
    batch: &[StoreMsg],
    ids: &mut HashMap<(String, String), i64>,
) -> Result<(), StoreError> {
    let path = store.path().to_path_buf();
    let sql = |e| super::sql_error(&path, e);
    let tx = store.conn_mut().transaction().map_err(sql)?;
    write_all(&tx, batch, ids).map_err(sql)?;
    tx.commit().map_err(sql)
}

/// Write every record of `batch` inside `tx`. `ids` caches indicator row ids
/// across batches.
fn write_all(
    tx: &Transaction<'_>,
    batch: &[StoreMsg],
    ids: &mut HashMap<(String, String), i64>,
) -> rusqlite::Result<()> {
    let mut st = Statements::prepare(tx)?;
    let mut units_seen: Vec<&str> = Vec::new();
    for msg in batch {
        let r = match msg {
            StoreMsg::Hit(r) => r,
            StoreMsg::Name(n) => {
                st.name(n)?;
                continue;
            }
        };
        if !units_seen.contains(&r.unit.as_str()) {
            st.unit.execute(params![r.unit, r.unit_name])?;
            units_seen.push(&r.unit);
        }
        let id = st.indicator_id(r, ids)?;
        st.hit(r, id)?;
    }
    Ok(())
}

/// The statements a batch runs, prepared once per transaction (and cached
/// by the connection across transactions).
struct Statements<'c> {
    unit: CachedStatement<'c>,
    indicator: CachedStatement<'c>,
    prior: CachedStatement<'c>,
    host: CachedStatement<'c>,
    event: CachedStatement<'c>,
    pair: CachedStatement<'c>,
    alert: CachedStatement<'c>,
    name: CachedStatement<'c>,
    host_name: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    /// Every statement the batch may need, prepared before the first record.
    fn prepare(tx: &'c Transaction<'_>) -> rusqlite::Result<Statements<'c>> {
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
            name,
            host_name,
        })
    }

    /// Record a host name and refresh the host's name to the latest one.
    fn name(&mut self, n: &NameRecord) -> rusqlite::Result<()> {
        let ip = n.ip.to_string();
        let mac = n.mac.as_ref().map(mac_text);
        self.name
            .execute(params![ip, n.name, mac, n.source.as_str(), n.ts_ns])?;
        self.host_name.execute(params![ip])?;
        Ok(())
    }

    /// The row id of the hit's indicator: from `ids`, else inserted (or
    /// updated) and remembered.
    fn indicator_id(
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
    fn hit(&mut self, r: &StoreRecord, id: i64) -> rusqlite::Result<()> {
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
        self.alert.execute(params![r.ts_ns, ip, id, r.json])?;
        Ok(())
    }
}
