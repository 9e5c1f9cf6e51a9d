//! Results independent of the worker count: the same capture through the
//! pipeline with 1, 2 and 4 workers must give the alerts one inline engine
//! gives. Used by the corpus manifest (every expect block and names check)
//! and by the generated mixes.

use crate::detect::{Hit, Recipe};
use crate::output::eve::alert_json;
use crate::output::sink::{HitSink, SinkOptions};
use crate::run::pipeline::Sizing;
use crate::run::replay::replay_parallel;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The worker counts compared.
pub const WORKER_COUNTS: [usize; 3] = [1, 2, 4];

const SENSOR: &str = "workers-check";

/// An alert line without what legitimately differs between worker counts:
/// the flow id (it carries the worker number).
fn key(line: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).expect("alert line is JSON");
    if let Some(m) = v.as_object_mut() {
        m.remove("flow_id");
    }
    v.to_string()
}

/// The alert set of an inline replay's hits.
pub fn alert_set(hits: &[Hit]) -> BTreeSet<String> {
    hits.iter().map(|h| key(&alert_json(h, SENSOR))).collect()
}

/// A writer the test keeps a handle on.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The alert set of `files` through the pipeline with `workers` workers,
/// engines from `recipe(workers)`.
pub fn pipeline_alerts(
    files: &[PathBuf],
    recipe: &dyn Fn(usize) -> Recipe,
    workers: usize,
) -> BTreeSet<String> {
    let buf = Shared::default();
    let sink = HitSink::new(Box::new(buf.clone()), SinkOptions::new(SENSOR, 0));
    let sizing = Sizing {
        workers,
        queue_batches: 16,
        batch_packets: 64,
    };
    replay_parallel(files, sizing, &recipe(workers), sink);
    let bytes = buf.0.lock().expect("buffer").clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .map(key)
        .collect()
}

/// Replay `files` through the pipeline with each of [`WORKER_COUNTS`] and
/// compare with `inline`, the hits one engine found in them: a description
/// of every difference (empty when all agree).
pub fn worker_differences(
    files: &[PathBuf],
    recipe: &dyn Fn(usize) -> Recipe,
    inline: &[Hit],
) -> Vec<String> {
    let want = alert_set(inline);
    let mut diffs = Vec::new();
    for w in WORKER_COUNTS {
        let got = pipeline_alerts(files, recipe, w);
        if got != want {
            let missing: Vec<_> = want.difference(&got).take(3).collect();
            let extra: Vec<_> = got.difference(&want).take(3).collect();
            diffs.push(format!(
                "{w} worker(s): {} alerts, inline {}; missing {missing:?}, extra {extra:?}",
                got.len(),
                want.len()
            ));
        }
    }
    diffs
}

/// Replay `file` inline with `snap` and `units` (default options), then
/// through the pipeline with each of [`WORKER_COUNTS`]: the inline result
/// and every difference (see [`worker_differences`]).
pub fn replay_with_any_workers(
    file: &std::path::Path,
    snap: crate::intel::Snapshot,
    units: crate::detect::attribution::Units,
) -> (super::Replayed, Vec<String>) {
    use crate::detect::EngineOptions;
    let (intel, units) = (Arc::new(crate::intel::Intel::new(snap)), Arc::new(units));
    let recipe =
        |w: usize| Recipe::new(intel.clone(), units.clone(), EngineOptions::default()).workers(w);
    let files = [file.to_path_buf()];
    let r = super::replay_recipe(&files, &recipe(1));
    let diffs = worker_differences(&files, &recipe, &r.sink.hits);
    (r, diffs)
}
