//! The end-to-end throughput table shared by `gatewatch bench` and
//! `cargo bench --bench pipeline`: the floor (a bare mmap record walk of the
//! same files) next to the full pipeline with each worker count.

use super::pipeline::Sizing;
use super::replay::replay_parallel;
use crate::capture::file::floor_walk;
use crate::detect::attribution::Units;
use crate::detect::{EngineOptions, Recipe};
use crate::intel::Intel;
use crate::metrics::{peak_rss_mib, reset_peak_rss};
use crate::output::sink::{HitSink, SinkOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// One measured stage.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub packets: u64,
    pub wire_bytes: u64,
    pub seconds: f64,
    pub queue_drops: Option<u64>,
    pub parse_problems: Option<u64>,
    pub peak_rss_mib: f64,
    pub alerts: Option<u64>,
}

impl Row {
    pub fn mpps(&self) -> f64 {
        self.packets as f64 / self.seconds / 1e6
    }

    pub fn gbps(&self) -> f64 {
        self.wire_bytes as f64 * 8.0 / self.seconds / 1e9
    }
}

/// Measure the floor, then the pipeline with each count in `workers`.
pub fn measure(
    files: &[PathBuf],
    intel: &Arc<Intel>,
    units: &Arc<Units>,
    options: &EngineOptions,
    workers: &[usize],
) -> std::io::Result<Vec<Row>> {
    let mut rows = vec![floor(files)?];
    for &w in workers {
        let sizing = Sizing {
            workers: w.max(1),
            queue_batches: 512,
            batch_packets: 64,
        };
        let recipe =
            Recipe::new(intel.clone(), units.clone(), options.clone()).workers(sizing.workers);
        let sink = HitSink::new(Box::new(std::io::sink()), SinkOptions::new("bench", 0));
        reset_peak_rss();
        let t = Instant::now();
        let o = replay_parallel(files, sizing, &recipe, sink);
        rows.push(Row {
            label: format!("pipeline, {} worker(s)", sizing.workers),
            packets: o.stats.packets,
            wire_bytes: o.stats.bytes,
            seconds: t.elapsed().as_secs_f64(),
            queue_drops: Some(o.queue_drops),
            parse_problems: Some(o.stats.lost()),
            peak_rss_mib: peak_rss_mib(),
            alerts: Some(o.sink.counts.alerts),
        });
    }
    Ok(rows)
}

/// The floor: a bare mmap record walk of the same files, after one walk to
/// warm the page cache (every stage then reads from memory).
fn floor(files: &[PathBuf]) -> std::io::Result<Row> {
    for f in files {
        floor_walk(f)?;
    }
    reset_peak_rss();
    let (mut p, mut b) = (0u64, 0u64);
    let t = Instant::now();
    for f in files {
        let (fp, fb) = floor_walk(f)?;
        p += fp;
        b += fb;
    }
    Ok(Row {
        label: "floor: mmap record walk".into(),
        packets: p,
        wire_bytes: b,
        seconds: t.elapsed().as_secs_f64(),
        queue_drops: None,
        parse_problems: None,
        peak_rss_mib: peak_rss_mib(),
        alerts: None,
    })
}

/// Print rows as the table the README quotes.
pub fn print(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<26} {:>10} {:>8} {:>7} {:>7} {:>8} {:>11} {:>8} {:>8}",
        "stage",
        "packets",
        "seconds",
        "Mpps",
        "Gbit/s",
        "% floor",
        "drops q/p",
        "RSS MiB",
        "alerts"
    )?;
    let floor = rows.first().map_or(0.0, Row::mpps);
    for r in rows {
        let drops = match (r.queue_drops, r.parse_problems) {
            (Some(q), Some(p)) => format!("{q}/{p}"),
            _ => "-".into(),
        };
        writeln!(
            out,
            "{:<26} {:>10} {:>8.3} {:>7.2} {:>7.2} {:>7.0}% {:>11} {:>8.1} {:>8}",
            r.label,
            r.packets,
            r.seconds,
            r.mpps(),
            r.gbps(),
            r.mpps() / floor * 100.0,
            drops,
            r.peak_rss_mib,
            r.alerts.map_or("-".into(), |a| a.to_string())
        )?;
    }
    writeln!(
        out,
        "drops q/p: packets dropped at a queue (0 in replay: queues wait) / packets with parse problems\n\
         RSS MiB: the stage's own peak, including the mapped capture pages it touched \
         (the whole file for the floor, a trailing window of about 100 MiB for the pipeline)"
    )
}
