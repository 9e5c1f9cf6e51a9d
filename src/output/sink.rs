//! The one sink: every hit, ended flow and learned host name of a run goes
//! through [`HitSink`], whether the engine calls it inline (`replay`) or the
//! pipeline's workers send it [`Event`]s over a queue (`run`, parallel
//! replay, `bench`). It writes the alert log (first alert per pair, then
//! `alert_summary` events), builds the offender table, feeds the offender
//! store and tells an optional [`SinkObserver`] (the live metrics), and it
//! keeps the one count of what it wrote ([`SinkCounts`]).
//!
//! The only difference between replay and live is the [`StorePolicy`]:
//! replay waits for the store, live drops (counted) rather than stall.

use super::aggregate::{Aggregator, DEFAULT_PAIRS};
use super::eve::{alert_json, flow_json, hygiene_json, observation_json};
use super::offenders::OffenderTable;
use crate::detect::history::HistoryItem;
use crate::detect::hygiene::HygieneEvent;
use crate::detect::{Event, FlowRecord, Hit, Observation, Sink};
use crate::packet::FlowKey;
use crate::protocols::hostnames::HostName;
use crate::store::hygiene::HygieneRecord;
use crate::store::writer::{NameRecord, StoreRecord, StoreWriter, WriterStats};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The alert log is flushed at least this often, bounding what a crash loses.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// How hits reach the offender store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorePolicy {
    /// Replay: wait for room in the store's queue; nothing is lost.
    Wait,
    /// Live: never wait (a slow disk must not stall capture); what does not
    /// fit is counted by the store writer.
    DropWhenFull,
}

/// Told what the sink did: the live sensor's metrics.
pub trait SinkObserver: Send + Sync {
    /// A hit; `alerted` when its full alert line was written (not folded
    /// into a summary); `unit_hosts` when the host is new: how many offender
    /// hosts its unit has now.
    fn hit(&self, hit: &Hit, alerted: bool, unit_hosts: Option<u64>);
    /// A `flow` event was written.
    fn flow_event(&self);
    /// A `hygiene` event was written.
    fn hygiene(&self, _e: &HygieneEvent) {}
}

/// What the sink is set up with besides the alert log.
pub struct SinkOptions<'w> {
    pub sensor_id: String,
    /// Repeats of a (host, indicator, feed) pair: one `alert_summary` per
    /// this many seconds of packet time after the first alert; 0 writes
    /// every hit.
    pub summary_interval_s: u64,
    pub store: Option<(StoreWriter, StorePolicy)>,
    /// Every DNS/TLS/HTTP observation as an EVE line (replay only: the
    /// pipeline does not forward observations).
    pub observations: Option<Box<dyn Write + Send + 'w>>,
    pub observer: Option<Arc<dyn SinkObserver>>,
}

impl SinkOptions<'_> {
    /// Alerts only: no store, no observations, no observer.
    pub fn new(sensor_id: &str, summary_interval_s: u64) -> Self {
        SinkOptions {
            sensor_id: sensor_id.into(),
            summary_interval_s,
            store: None,
            observations: None,
            observer: None,
        }
    }
}

/// What the sink wrote. Every line of the alert log is counted in exactly
/// one of `alerts`, `summaries`, `flows` and `hygiene`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Hits received (each is in the store, the metrics and the offender
    /// table, whether or not it got an alert line of its own).
    pub hits: u64,
    /// `alert` lines written.
    pub alerts: u64,
    /// `alert_summary` lines written (aggregated repeats).
    pub summaries: u64,
    /// `flow` lines written (TCP flows with hits, when they ended).
    pub flows: u64,
    /// Host names passed on to the store.
    pub names: u64,
    /// `hygiene` lines written (signs of cracked software, per host).
    pub hygiene: u64,
    /// History items passed on to the store (for the retro-hunt).
    pub history: u64,
}

/// What the sink hands back at the end.
pub struct SinkResult {
    pub offenders: OffenderTable,
    pub counts: SinkCounts,
    /// The first write error of the alert log or the observations, if any.
    pub io_error: Option<std::io::Error>,
    /// The store writer's counters, after everything queued was committed.
    pub store: Option<Arc<WriterStats>>,
}

/// The alert log `out` is borrowed for `'w` (a test's buffer) or owned
/// (`'static`, which [`HitSink::spawn`] needs).
pub struct HitSink<'w> {
    opts: SinkOptions<'w>,
    out: Box<dyn Write + Send + 'w>,
    agg: Aggregator,
    /// Summary lines due, reused between hits.
    due: Vec<String>,
    offenders: OffenderTable,
    /// Offender hosts per unit, for the observer.
    unit_hosts: HashMap<String, u64>,
    counts: SinkCounts,
    io_error: Option<std::io::Error>,
    last_flush: Instant,
}

impl<'w> HitSink<'w> {
    pub fn new(out: Box<dyn Write + Send + 'w>, opts: SinkOptions<'w>) -> Self {
        HitSink {
            agg: Aggregator::new(opts.summary_interval_s, DEFAULT_PAIRS),
            opts,
            out,
            due: Vec::new(),
            offenders: OffenderTable::default(),
            unit_hosts: HashMap::new(),
            counts: SinkCounts::default(),
            io_error: None,
            last_flush: Instant::now(),
        }
    }

    /// What has been written so far.
    pub fn counts(&self) -> SinkCounts {
        self.counts
    }

    /// One event from a worker.
    pub fn event(&mut self, e: Event) {
        match e {
            Event::Hit(h) => self.hit(*h),
            Event::Flow(f) => self.flow(*f),
            Event::Name(ts, n) => self.host_name(ts, *n),
            Event::Hygiene(h) => self.hygiene(*h),
            Event::History(h) => self.history(h),
        }
    }

    /// Periodic work while events are quiet: summaries that are due, and a
    /// flush of the alert log.
    pub fn tick(&mut self) {
        self.agg.due(&self.opts.sensor_id, &mut self.due);
        self.write_due();
        let r = self.out.flush();
        self.note_io(r);
        self.last_flush = Instant::now();
    }

    /// Write every pending summary, flush, wait for the store: the run is
    /// over.
    pub fn finish(mut self) -> SinkResult {
        self.agg.flush_all(&self.opts.sensor_id, &mut self.due);
        self.write_due();
        let r = self.out.flush();
        self.note_io(r);
        if let Some(o) = &mut self.opts.observations {
            let r = o.flush();
            self.note_io(r);
        }
        SinkResult {
            offenders: self.offenders,
            counts: self.counts,
            io_error: self.io_error,
            store: self.opts.store.map(|(w, _)| w.finish()),
        }
    }

    fn write_line(&mut self, line: &str) {
        let r = writeln!(self.out, "{line}");
        self.note_io(r);
    }

    fn write_due(&mut self) {
        let due = std::mem::take(&mut self.due);
        for l in &due {
            self.write_line(l);
        }
        self.counts.summaries += due.len() as u64;
        self.due = due;
        self.due.clear();
    }

    /// Keep the first error (and log it once): the alert log is the record.
    fn note_io(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r
            && self.io_error.is_none()
        {
            tracing::error!("alert log write failed: {e}");
            self.io_error = Some(e);
        }
    }

    /// Count the hit in the offender table; when the host is new, how many
    /// hosts its unit has now.
    fn count_offender(&mut self, hit: &Hit) -> Option<u64> {
        let ind = &hit.indicator;
        let new = self.offenders.add(
            &hit.unit.code,
            &hit.unit.name,
            hit.host,
            &ind.value,
            &ind.feed.category,
            hit.ts_ns,
        );
        new.then(|| {
            let n = self.unit_hosts.entry(hit.unit.code.clone()).or_insert(0);
            *n += 1;
            *n
        })
    }
}

impl HitSink<'static> {
    /// Run the sink on its own thread, taking events from `rx` until every
    /// sender is gone.
    pub fn spawn(mut self, rx: Receiver<Event>) -> std::thread::JoinHandle<SinkResult> {
        std::thread::Builder::new()
            .name("gw-sink".into())
            .spawn(move || {
                loop {
                    match rx.recv_timeout(FLUSH_EVERY) {
                        Ok(e) => {
                            self.event(e);
                            if self.last_flush.elapsed() >= FLUSH_EVERY {
                                self.tick();
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => self.tick(),
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                self.finish()
            })
            .expect("spawn sink thread")
    }
}

impl Sink for HitSink<'_> {
    fn hit(&mut self, hit: Hit) {
        self.counts.hits += 1;
        let alerted = self.agg.offer(&hit, &self.opts.sensor_id, &mut self.due);
        // Formatted only where it goes: an aggregated repeat without a store
        // (replay during an outbreak) needs no line of its own.
        let line =
            (alerted || self.opts.store.is_some()).then(|| alert_json(&hit, &self.opts.sensor_id));
        if let (true, Some(l)) = (alerted, &line) {
            self.write_line(l);
            self.counts.alerts += 1;
        }
        self.write_due();
        // A suspicion (beaconing) is in the alert log and the metrics, but
        // neither the offender lists nor the store.
        if !hit.offender() {
            if let Some(o) = &self.opts.observer {
                o.hit(&hit, alerted, None);
            }
            return;
        }
        let unit_hosts = self.count_offender(&hit);
        if let Some(o) = &self.opts.observer {
            o.hit(&hit, alerted, unit_hosts);
        }
        if let (Some((s, policy)), Some(line)) = (&self.opts.store, line) {
            let rec = StoreRecord::from_hit(&hit, line);
            match policy {
                StorePolicy::Wait => s.put(rec),
                StorePolicy::DropWhenFull => {
                    s.offer(rec);
                }
            }
        }
    }

    fn flow(&mut self, flow: FlowRecord) {
        let line = flow_json(&flow, &self.opts.sensor_id);
        self.write_line(&line);
        self.counts.flows += 1;
        if let Some(o) = &self.opts.observer {
            o.flow_event();
        }
    }

    fn host_name(&mut self, ts_ns: i64, name: HostName) {
        let Some((s, policy)) = &self.opts.store else {
            return;
        };
        let rec = NameRecord::from_host_name(ts_ns, name);
        match policy {
            StorePolicy::Wait => s.put_name(rec),
            StorePolicy::DropWhenFull => {
                s.offer_name(rec);
            }
        }
        self.counts.names += 1;
    }

    fn hygiene(&mut self, e: HygieneEvent) {
        let line = hygiene_json(&e, &self.opts.sensor_id);
        self.write_line(&line);
        self.counts.hygiene += 1;
        if let Some(o) = &self.opts.observer {
            o.hygiene(&e);
        }
        if let Some((s, policy)) = &self.opts.store {
            s.hygiene(HygieneRecord::from_event(&e), *policy == StorePolicy::Wait);
        }
    }

    fn history(&mut self, items: Vec<HistoryItem>) {
        if let Some((s, policy)) = &self.opts.store {
            self.counts.history += items.len() as u64;
            s.history(items, *policy == StorePolicy::Wait);
        }
    }

    fn wants_observations(&self) -> bool {
        self.opts.observations.is_some()
    }

    fn observe(&mut self, ts_ns: i64, flow: &FlowKey, o: &Observation<'_>) {
        let line = observation_json(ts_ns, flow, o, &self.opts.sensor_id);
        if let Some(w) = &mut self.opts.observations {
            let r = writeln!(w, "{line}");
            self.note_io(r);
        }
    }
}

/// Open the alert log (or the observations log): `-` is standard output.
pub fn open_output(path: &Path, append: bool) -> std::io::Result<Box<dyn Write + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufWriter::new(std::io::stdout())));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 16, f)))
}
