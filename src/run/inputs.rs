//! What a run reads before it starts: the units, and the indicators from
//! the feed text or from a signed snapshot file, with every problem listed
//! at once.

use super::config::Config;
use crate::detect::attribution::Units;
use crate::intel::Snapshot;
use crate::intel::feeds::{ConfigErrors, FeedReport, FeedsConfig, build_snapshot};
use crate::intel::snap::{self, FeedSummary, Info, PublicKey};
use std::path::PathBuf;

/// The snapshot file a run started from: what a reload re-reads and checks
/// a new version of it against.
pub struct FromSnapshot {
    pub path: PathBuf,
    pub key: PublicKey,
    pub info: Info,
    pub feeds: Vec<FeedSummary>,
}

/// What a run reads before it starts: the feeds and the units.
pub struct Inputs {
    pub snapshot: Snapshot,
    /// Per feed: what loaded, what was rejected or skipped, and why (from
    /// a snapshot file: each feed's name and accepted entries).
    pub reports: Vec<FeedReport>,
    pub units: Units,
    /// Set when the indicators came from a snapshot file.
    pub from_snapshot: Option<FromSnapshot>,
}

/// Where the indicators come from, once read.
enum Source {
    Feeds(FeedsConfig),
    File(Box<(snap::Loaded, FromSnapshot)>),
}

/// Check `cfg` and load the units and the feeds (or the snapshot file) it
/// names, reporting every problem (the configuration's, the feeds file's
/// or the snapshot's, the units file's) at once.
pub fn load_inputs(cfg: &Config) -> anyhow::Result<Inputs> {
    use anyhow::Context as _;
    let mut problems = cfg
        .validate("configuration")
        .err()
        .map_or(Vec::new(), |e| e.0);
    let source = match (&cfg.snapshot, &cfg.snapshot_key) {
        (Some(file), Some(key)) => snapshot_file(file, key)
            .map_err(|e| problems.push(e))
            .ok()
            .map(|lf| Source::File(Box::new(lf))),
        _ => FeedsConfig::load(&cfg.feeds)
            .map_err(|e| problems.extend(e.0))
            .ok()
            .map(Source::Feeds),
    };
    let units = Units::load(&cfg.units, &cfg.internal())
        .map_err(|e| problems.extend(e.0))
        .ok();
    let (Some(source), Some(units), true) = (source, units, problems.is_empty()) else {
        return Err(ConfigErrors(problems))
            .context("configuration refused; fix these and run again");
    };
    Ok(match source {
        Source::Feeds(feeds) => {
            let (snapshot, reports, _) = build_snapshot(&feeds);
            for r in &reports {
                r.log_problems();
            }
            Inputs {
                snapshot,
                reports,
                units,
                from_snapshot: None,
            }
        }
        Source::File(lf) => {
            let (loaded, from) = *lf;
            Inputs {
                snapshot: loaded.snapshot,
                reports: from.feeds.iter().map(FeedSummary::report).collect(),
                units,
                from_snapshot: Some(from),
            }
        }
    })
}

/// Read and verify the snapshot `file` with the public key in `key`.
fn snapshot_file(
    file: &std::path::Path,
    key: &std::path::Path,
) -> Result<(snap::Loaded, FromSnapshot), String> {
    let key = PublicKey::load(key)?;
    let t = std::time::Instant::now();
    let loaded = snap::load(file, &key).map_err(|e| e.message)?;
    tracing::info!(
        "snapshot {} version {}: {} indicators from {} feed(s), verified with key id {} and loaded in {:.3} s",
        file.display(),
        loaded.info.version,
        loaded.info.indicators,
        loaded.feeds.len(),
        key.id_hex(),
        t.elapsed().as_secs_f64()
    );
    let from = FromSnapshot {
        path: file.to_path_buf(),
        key,
        info: loaded.info.clone(),
        feeds: loaded.feeds.clone(),
    };
    Ok((loaded, from))
}
