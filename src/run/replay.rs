//! Replaying capture files: inline, one packet at a time on the reading
//! thread ([`replay`]: the bytes stay in cache and are never copied), or
//! through the pipeline's workers ([`replay_parallel`], what `gatewatch
//! bench` measures). Both hand what the engines find to the one sink.

use super::pipeline::{Backpressure, Pipeline, RunOutcome, Sizing};
use crate::capture::SourceProblem;
use crate::capture::file::{read_file, read_file_shared};
use crate::detect::{Engine, Event, Recipe, Sink, Stats};
use crate::output::sink::{HitSink, SinkCounts, SinkResult};
use crate::packet::{Problems, Reason};
use crossbeam_channel::bounded;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Per-packet problems logged individually per file and reason; the rest are
/// only counted (a snaplen-96 capture would otherwise log every frame).
const LOGGED_PER_REASON: u64 = 5;

/// Capacity of the worker -> sink event queue. Workers block when it is full
/// (hits are never dropped); at a few hits per thousand packets it never is.
pub const EVENT_QUEUE: usize = 65_536;

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
        !self.problems.is_empty() || self.stats.lost() > 0 || self.stats.panics_recovered > 0
    }
}

/// Replay `files` in order through `engine` into `sink`.
pub fn replay<S: Sink>(files: &[PathBuf], engine: &mut Engine, sink: &mut S) -> ReplayReport {
    replay_with_progress(files, engine, sink, &mut |_| {})
}

/// Packets between two progress reports.
const PROGRESS_EVERY: u64 = 16_384;

/// [`replay`], telling `progress` how many bytes of the files were read so
/// far (about: record headers are counted as a classic pcap's), every
/// [`PROGRESS_EVERY`] packets and at the end of each file.
pub fn replay_with_progress<S: Sink>(
    files: &[PathBuf],
    engine: &mut Engine,
    sink: &mut S,
    progress: &mut dyn FnMut(u64),
) -> ReplayReport {
    let mut report = ReplayReport::default();
    let mut done = 0u64;
    for file in files {
        replay_file(file, engine, sink, &mut report, &mut |b| progress(done + b));
        done += std::fs::metadata(file).map_or(0, |m| m.len());
        progress(done);
    }
    // Flows still open when the captures end are reported now.
    engine.finish(sink);
    report.stats = engine.stats.clone();
    report
}

/// One file of [`replay`]: its packets, then what went wrong, per reason.
fn replay_file<S: Sink>(
    file: &Path,
    engine: &mut Engine,
    sink: &mut S,
    report: &mut ReplayReport,
    progress: &mut dyn FnMut(u64),
) {
    let mut per_reason: HashMap<Reason, u64> = HashMap::new();
    let mut n = 0u64;
    let mut bytes = 0u64;
    let hits_before = engine.stats.total_hits();
    let fr = read_file(file, |pkt| {
        n += 1;
        bytes += 16 + pkt.data.len() as u64;
        if n.is_multiple_of(PROGRESS_EVERY) {
            progress(bytes);
        }
        let before: Problems = engine.stats.problems;
        if !engine.process_contained(pkt, sink) {
            let at = format!("{} packet {n}", file.display());
            super::contain::log_recovered(&at, pkt, engine.stats.panics_recovered);
        }
        if engine.stats.problems.events() != before.events() {
            note_packet_problems(file, n, &before, &engine.stats.problems, &mut per_reason);
        }
    });
    for p in &fr.problems {
        tracing::warn!("{p}");
    }
    let mut reasons: Vec<_> = per_reason.into_iter().collect();
    reasons.sort_by_key(|(r, _)| *r as u8);
    for (r, c) in reasons {
        if c > LOGGED_PER_REASON && r != Reason::SnaplenCut {
            let more = c - LOGGED_PER_REASON;
            tracing::warn!("{}: {more} more packet(s) with {r}", file.display());
        }
        report.packet_problems.push((file.to_path_buf(), r, c));
    }
    let hits = engine.stats.total_hits() - hits_before;
    tracing::info!("{}: {} packets, {hits} hits", file.display(), fr.packets);
    report.problems.extend(fr.problems);
}

/// Count (and log the first few of) the losses packet `n` added.
fn note_packet_problems(
    file: &Path,
    n: u64,
    before: &Problems,
    after: &Problems,
    per_reason: &mut HashMap<Reason, u64>,
) {
    for r in Reason::ALL {
        if after.of(r) != before.of(r) && r.is_loss() {
            let c = per_reason.entry(r).or_insert(0);
            *c += 1;
            if *c <= LOGGED_PER_REASON && r != Reason::SnaplenCut {
                tracing::warn!("{}: packet {n}: {r}", file.display());
            }
        }
    }
}

/// Replay files through the full pipeline (blocking queues: nothing
/// dropped), engines from `recipe` (made for `sizing.workers`), into `sink`.
pub fn replay_parallel(
    files: &[PathBuf],
    sizing: Sizing,
    recipe: &Recipe,
    sink: HitSink<'static>,
) -> RunOutcome {
    let (tx, rx) = bounded::<Event>(EVENT_QUEUE);
    let sink = sink.spawn(rx);
    let pipe = Pipeline::start(sizing, recipe, tx);
    {
        let mut router = pipe.router(Backpressure::Block);
        for f in files {
            let rep = read_file_shared(f, |p, map| router.route_in(p, map));
            for p in rep.problems {
                tracing::warn!("{p}");
            }
        }
    }
    let queue_drops = pipe.queue_drops();
    let stats = pipe.finish();
    let sink = sink.join().unwrap_or_else(|_| SinkResult {
        offenders: Default::default(),
        counts: SinkCounts::default(),
        io_error: Some(std::io::Error::other("sink thread panicked")),
        store: None,
    });
    RunOutcome {
        stats,
        queue_drops,
        sink,
        captures: Vec::new(),
    }
}
