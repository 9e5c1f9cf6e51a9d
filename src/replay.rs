//! Replaying capture files through the engine into the alert log.
//!
//! Single-threaded by design for files: reading, decoding and matching one
//! packet at a time keeps the packet bytes in cache and never copies them.
//! Live capture brings its own sources and workers; both share [`Engine`].

use crate::aggregate::Aggregator;
use crate::alert::{alert_json, flow_json, observation_json};
use crate::capture::SourceProblem;
use crate::capture::file::read_file;
use crate::detect::{Engine, FlowKey, Hit, Observation, Sink};
use crate::flow::FlowRecord;
use crate::hostnames::HostName;
use crate::offenders::OffenderTable;
use crate::stats::{Reason, Stats};
use crate::store::writer::{NameRecord, StoreRecord, StoreWriter};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Per-packet problems logged individually per file and reason; the rest are
/// only counted (a snaplen-96 capture would otherwise log every frame).
const LOGGED_PER_REASON: u64 = 5;

/// Writes alerts (and optionally observations) and builds the offender table.
pub struct ReplaySink<'a> {
    pub sensor_id: String,
    pub alerts: Box<dyn Write + 'a>,
    pub observations: Option<Box<dyn Write + 'a>>,
    pub offenders: OffenderTable,
    pub alert_count: u64,
    pub io_error: Option<std::io::Error>,
    /// The offender store, when replaying with `--store`.
    pub store: Option<StoreWriter>,
    /// Repeats of a (host, indicator) pair become summary events.
    pub aggregator: Aggregator,
    /// Summary events written.
    pub summaries: u64,
    /// `flow` events written.
    pub flows: u64,
}

impl ReplaySink<'_> {
    fn write_line(&mut self, line: &str) {
        if let Err(e) = writeln!(self.alerts, "{line}") {
            self.io_error.get_or_insert(e);
        }
    }

    /// Write every pending repeat count (at the end of the replay).
    pub fn flush_summaries(&mut self) {
        let mut due = Vec::new();
        self.aggregator.flush_all(&self.sensor_id, &mut due);
        for l in &due {
            self.write_line(l);
        }
        self.summaries += due.len() as u64;
    }
}

impl Sink for ReplaySink<'_> {
    fn hit(&mut self, hit: Hit) {
        self.alert_count += 1;
        self.offenders.add(
            &hit.unit.code,
            &hit.unit.name,
            hit.host,
            &hit.indicator.value,
            &hit.indicator.feed.category,
            hit.ts_ns,
        );
        let line = alert_json(&hit, &self.sensor_id);
        let mut due = Vec::new();
        if self.aggregator.offer(&hit, &self.sensor_id, &mut due) {
            self.write_line(&line);
        }
        for l in &due {
            self.write_line(l);
        }
        self.summaries += due.len() as u64;
        if let Some(s) = &self.store {
            s.put(StoreRecord::from_hit(&hit, line));
        }
    }

    fn host_name(&mut self, ts_ns: i64, name: HostName) {
        if let Some(s) = &self.store {
            s.put_name(NameRecord::from_host_name(ts_ns, name));
        }
    }

    fn flow(&mut self, flow: FlowRecord) {
        self.flows += 1;
        let line = flow_json(&flow, &self.sensor_id);
        self.write_line(&line);
    }

    fn wants_observations(&self) -> bool {
        self.observations.is_some()
    }

    fn observe(&mut self, ts_ns: i64, flow: &FlowKey, o: &Observation<'_>) {
        let line = observation_json(ts_ns, flow, o, &self.sensor_id);
        if let Some(w) = &mut self.observations
            && let Err(e) = writeln!(w, "{line}")
        {
            self.io_error.get_or_insert(e);
        }
    }
}

/// Outcome of a replay.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub stats: Stats,
    pub problems: Vec<SourceProblem>,
    /// Per-file counts of packets with decode problems, by reason.
    pub packet_problems: Vec<(PathBuf, Reason, u64)>,
}

impl ReplayReport {
    /// True when some input could not be inspected: the exit code says so.
    pub fn skipped_something(&self) -> bool {
        !self.problems.is_empty() || self.stats.lost() > 0
    }
}

/// Replay `files` in order through `engine` into `sink`.
pub fn replay<S: Sink>(files: &[PathBuf], engine: &mut Engine, sink: &mut S) -> ReplayReport {
    let mut report = ReplayReport::default();
    for file in files {
        let mut per_reason: HashMap<Reason, u64> = HashMap::new();
        let mut n = 0u64;
        let before = engine.stats.clone();
        let fr = read_file(file, |pkt| {
            n += 1;
            let ev = engine.stats.error_events;
            let errs = engine.stats.errors;
            engine.process(pkt, sink);
            if engine.stats.error_events != ev {
                for r in Reason::ALL {
                    if engine.stats.errors[r as usize] != errs[r as usize] && r.is_loss() {
                        let c = per_reason.entry(r).or_insert(0);
                        *c += 1;
                        if *c <= LOGGED_PER_REASON && r != Reason::SnaplenCut {
                            tracing::warn!("{}: packet {n}: {r}", file.display());
                        }
                    }
                }
            }
        });
        for p in &fr.problems {
            tracing::warn!("{p}");
        }
        let mut reasons: Vec<_> = per_reason.into_iter().collect();
        reasons.sort_by_key(|(r, _)| *r as u8);
        for (r, c) in reasons {
            if c > LOGGED_PER_REASON && r != Reason::SnaplenCut {
                tracing::warn!(
                    "{}: {} more packet(s) with {r}",
                    file.display(),
                    c - LOGGED_PER_REASON
                );
            }
            report.packet_problems.push((file.clone(), r, c));
        }
        tracing::info!(
            "{}: {} packets, {} hits",
            file.display(),
            fr.packets,
            engine.stats.total_hits() - before.total_hits()
        );
        report.problems.extend(fr.problems);
    }
    // Flows still open when the captures end are reported now.
    engine.finish(sink);
    report.stats = engine.stats.clone();
    report
}

/// Open the alert log: `-` is standard output.
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
