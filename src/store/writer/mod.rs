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
//! Host names and hygiene signals share the queue with hits, in arrival
//! order, so a hit that creates a host picks up a name learned just before
//! it, and a name learned later updates the host (`hosts.hostname` is always
//! the latest name). The retro-hunt's history has a queue of its own, read
//! after the main one: a burst of history can fill only its own queue,
//! never crowd hits out.

mod hits;

use super::history::{HistoryCache, HistoryWriter, Written};
use super::hygiene::{HygieneRecord, HygieneWriter};
use super::{Store, StoreError};
use crate::detect::Hit;
use crate::detect::history::{HistoryItem, HistorySettings};
use crate::protocols::hostnames::{HostName, NameSource};
use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, TrySendError, bounded};
use hits::Statements;
use rusqlite::{Transaction, params};
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

/// What the queues carry: hits, names and hygiene in the order they were
/// seen; history on its own queue.
enum StoreMsg {
    Hit(StoreRecord),
    Name(NameRecord),
    Hygiene(HygieneRecord),
    /// A batch, as an engine handed it over.
    History(Vec<HistoryItem>),
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
    /// Hygiene records committed.
    pub hygiene_written: AtomicU64,
    /// History items committed: new rows, and repeats that moved a row's
    /// times.
    pub history_new: AtomicU64,
    pub history_repeat: AtomicU64,
    /// History items left out because their host's day was full.
    pub history_dropped: AtomicU64,
    /// History items refused because their queue was full.
    pub history_overflow: AtomicU64,
    /// Other records (names, hygiene) refused because the queue was full.
    pub other_overflow: AtomicU64,
}

impl WriterStats {
    /// Count records that will not be written, by kind.
    fn lost(&self, msgs: &[StoreMsg]) {
        for m in msgs {
            let (c, n) = match m {
                StoreMsg::Hit(_) => (&self.overflow, 1),
                StoreMsg::Name(_) => (&self.names_overflow, 1),
                StoreMsg::Hygiene(_) => (&self.other_overflow, 1),
                StoreMsg::History(v) => (&self.history_overflow, v.len() as u64),
            };
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Handle to the writer thread.
pub struct StoreWriter {
    tx: Sender<StoreMsg>,
    history: Sender<StoreMsg>,
    handle: std::thread::JoinHandle<()>,
    pub stats: Arc<WriterStats>,
}

impl StoreWriter {
    /// Start writing into `store`. `capacity` bounds both the queue and the
    /// backlog kept for retry; `retention` prunes raw alerts older than that
    /// (relative to the newest hit, so replaying old captures keeps them).
    pub fn start(store: Store, capacity: usize, retention: Option<Duration>) -> StoreWriter {
        Self::start_with(store, capacity, retention, HistorySettings::default())
    }

    /// [`StoreWriter::start`], with the history's retention and bound.
    pub fn start_with(
        store: Store,
        capacity: usize,
        retention: Option<Duration>,
        history: HistorySettings,
    ) -> StoreWriter {
        let (tx, rx) = bounded(capacity.max(1));
        let (htx, hrx) = bounded(capacity.max(1));
        let stats = Arc::new(WriterStats::default());
        let st = stats.clone();
        let queues = Queues { rx, history: hrx };
        let handle = std::thread::Builder::new()
            .name("gw-store".into())
            .spawn(move || run(store, queues, st, capacity.max(1), retention, history))
            .expect("spawn store thread");
        StoreWriter {
            tx,
            history: htx,
            handle,
            stats,
        }
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

    /// Queue a hygiene record without waiting (live) or waiting (`wait`,
    /// replay).
    pub fn hygiene(&self, rec: HygieneRecord, wait: bool) -> bool {
        let m = StoreMsg::Hygiene(rec);
        if wait {
            self.queue(m);
            true
        } else {
            self.try_queue(m)
        }
    }

    /// Queue a batch of history items on the history queue, without
    /// waiting (live) or waiting (`wait`, replay). The queue's capacity
    /// counts batches.
    pub fn history(&self, items: Vec<HistoryItem>, wait: bool) -> bool {
        let m = StoreMsg::History(items);
        let r = if wait {
            self.history.send(m).map_err(|e| e.0)
        } else {
            self.history.try_send(m).map_err(|e| match e {
                TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
            })
        };
        r.map_err(|m| self.stats.lost(std::slice::from_ref(&m)))
            .is_ok()
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
        drop(self.history);
        if self.handle.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
        self.stats
    }
}

/// The writer's two queues.
struct Queues {
    rx: Receiver<StoreMsg>,
    history: Receiver<StoreMsg>,
}

/// What the writer thread keeps between batches.
struct Writer {
    store: Store,
    stats: Arc<WriterStats>,
    capacity: usize,
    retention: Option<Duration>,
    history: HistorySettings,
    ids: HashMap<(String, String), i64>,
    cache: HistoryCache,
    newest_ns: i64,
    /// None: prune after the first commit, then every PRUNE_EVERY.
    last_prune: Option<Instant>,
    failures_in_a_row: u32,
}

fn run(
    store: Store,
    q: Queues,
    stats: Arc<WriterStats>,
    capacity: usize,
    retention: Option<Duration>,
    history: HistorySettings,
) {
    let mut w = Writer {
        store,
        stats,
        capacity,
        retention,
        history,
        ids: HashMap::new(),
        cache: HistoryCache::default(),
        newest_ns: i64::MIN,
        last_prune: None,
        failures_in_a_row: 0,
    };
    let mut batch: Vec<StoreMsg> = Vec::new();
    let mut last_flush = Instant::now();
    let mut closed = false;
    while !closed || !batch.is_empty() {
        if !closed {
            let wait = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
            closed = receive(&q, &mut batch, wait);
        }
        let due = closed || batch.len() >= MAX_BATCH || last_flush.elapsed() >= FLUSH_EVERY;
        if !due || batch.is_empty() {
            if due {
                last_flush = Instant::now();
            }
            continue;
        }
        last_flush = Instant::now();
        w.commit_batch(&mut batch, closed);
        w.prune_due();
    }
}

impl Writer {
    fn commit_batch(&mut self, batch: &mut Vec<StoreMsg>, closed: bool) {
        let cap = self.history.max_items_per_host_day;
        match commit(&mut self.store, batch, &mut self.ids, &mut self.cache, cap) {
            Ok(tally) => {
                committed(batch, &self.stats, &mut self.newest_ns, tally);
                self.failures_in_a_row = 0;
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.failures_in_a_row += 1;
                // The caches may name rows of a rolled-back transaction.
                self.ids.clear();
                self.cache.clear();
                let n = self.failures_in_a_row;
                retry_later(&e, batch, &self.stats, self.capacity, closed, n);
            }
        }
    }

    /// Prune raw alerts past their retention and history days past theirs,
    /// at most every [`PRUNE_EVERY`].
    fn prune_due(&mut self) {
        if self.last_prune.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
            return;
        }
        self.last_prune = Some(Instant::now());
        if let Some(keep) = self.retention
            && self.newest_ns != i64::MIN
        {
            prune(&mut self.store, self.newest_ns, keep);
        }
        if let Some(day) = self.cache.newest_day {
            match self.store.prune_history(day, self.history.retention_days) {
                Ok(n) if n > 0 => tracing::info!("store: pruned {n} history row(s) past retention"),
                Ok(_) => {}
                Err(e) => tracing::warn!("store: pruning history failed: {e}"),
            }
        }
    }
}

/// Wait up to `wait` for a record on either queue, then take whatever is
/// queued, up to [`MAX_BATCH`] records (and a 64th as many history
/// batches). True once both queues are closed
/// (every sender gone) and drained.
fn receive(q: &Queues, batch: &mut Vec<StoreMsg>, wait: Duration) -> bool {
    let mut sel = Select::new();
    sel.recv(&q.rx);
    sel.recv(&q.history);
    // Ready, closed, or the flush interval is over: drain either way.
    let _ = sel.ready_timeout(wait);
    let main_closed = drain(&q.rx, batch, MAX_BATCH);
    // History comes in batches of up to 256 items.
    let history_closed = drain(&q.history, batch, MAX_BATCH / 64);
    main_closed && history_closed
}

/// Take up to `n` messages from `rx`; true when it is closed and empty.
fn drain(rx: &Receiver<StoreMsg>, batch: &mut Vec<StoreMsg>, n: usize) -> bool {
    for _ in 0..n {
        match rx.try_recv() {
            Ok(m) => batch.push(m),
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => return true,
        }
    }
    false
}

/// History items written in one batch, by outcome.
#[derive(Default)]
struct Tally {
    new: u64,
    repeat: u64,
    dropped: u64,
}

/// Count a committed batch by kind and empty it; `newest_ns` follows the
/// newest hit, which retention is measured from.
fn committed(batch: &mut Vec<StoreMsg>, stats: &WriterStats, newest_ns: &mut i64, t: Tally) {
    let (mut hits, mut names, mut hygiene) = (0, 0, 0);
    for m in batch.iter() {
        match m {
            StoreMsg::Hit(r) => {
                hits += 1;
                *newest_ns = (*newest_ns).max(r.ts_ns);
            }
            StoreMsg::Name(_) => names += 1,
            StoreMsg::Hygiene(_) => hygiene += 1,
            StoreMsg::History(_) => {}
        }
    }
    let add = |c: &AtomicU64, n: u64| c.fetch_add(n, Ordering::Relaxed);
    add(&stats.written, hits);
    add(&stats.names_written, names);
    add(&stats.hygiene_written, hygiene);
    add(&stats.history_new, t.new);
    add(&stats.history_repeat, t.repeat);
    add(&stats.history_dropped, t.dropped);
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
    // Shipped (or never to be shipped) journal rows go with the alerts.
    match store.prune_journal(before) {
        Ok(n) if n > 0 => tracing::info!("store: pruned {n} shipped journal row(s)"),
        Ok(_) => {}
        Err(e) => tracing::warn!("store: pruning the journal failed: {e}"),
    }
}

/// Write one batch in one transaction.
fn commit(
    store: &mut Store,
    batch: &[StoreMsg],
    ids: &mut HashMap<(String, String), i64>,
    cache: &mut HistoryCache,
    cap: u32,
) -> Result<Tally, StoreError> {
    let path = store.path().to_path_buf();
    let sql = |e| super::sql_error(&path, e);
    let tx = store.conn_mut().transaction().map_err(sql)?;
    let tally = write_all(&tx, batch, ids, cache, cap).map_err(sql)?;
    tx.commit().map_err(sql)?;
    Ok(tally)
}

/// Write every record of `batch` inside `tx`. `ids` caches indicator row ids
/// across batches, `cache` the history's value ids and host-days.
fn write_all(
    tx: &Transaction<'_>,
    batch: &[StoreMsg],
    ids: &mut HashMap<(String, String), i64>,
    cache: &mut HistoryCache,
    cap: u32,
) -> rusqlite::Result<Tally> {
    let mut st = Statements::prepare(tx)?;
    let mut hygiene = HygieneWriter::prepare(tx)?;
    let mut history = HistoryWriter::prepare(tx)?;
    let mut tally = Tally::default();
    let mut units_seen: Vec<(&str, &str)> = Vec::new();
    for msg in batch {
        let (unit, unit_name) = match msg {
            StoreMsg::Hit(r) => (r.unit.as_str(), r.unit_name.as_str()),
            StoreMsg::Hygiene(r) => (r.unit.as_str(), r.unit_name.as_str()),
            StoreMsg::Name(n) => {
                st.name(n)?;
                continue;
            }
            StoreMsg::History(items) => {
                for it in items {
                    match history.write(it, cap, cache)? {
                        Written::New => tally.new += 1,
                        Written::Repeat => tally.repeat += 1,
                        Written::Dropped => tally.dropped += 1,
                    }
                }
                continue;
            }
        };
        if !units_seen.iter().any(|&(u, _)| u == unit) {
            st.unit.execute(params![unit, unit_name])?;
            units_seen.push((unit, unit_name));
        }
        match msg {
            StoreMsg::Hit(r) => {
                let id = st.indicator_id(r, ids)?;
                st.hit(r, id)?;
            }
            StoreMsg::Hygiene(r) => hygiene.write(r)?,
            _ => {}
        }
    }
    history.finish()?;
    Ok(tally)
}
