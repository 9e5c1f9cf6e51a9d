//! Loading feeds into per-feed [`Part`]s: every format, files or whole
//! directories, each entry classified or rejected with its file and line.
//! Large line-based files are cut at line ends and loaded on every core,
//! then merged; the result does not depend on how the work was split.

mod entries;
mod file;
mod parallel;

pub use parallel::load_parts;

use super::feeds::{FeedReport, FeedSpec, FeedsConfig};
use super::{FeedMeta, Snapshot, SnapshotBuilder};
pub(crate) use file::panic_message;
use file::{load_bytes, load_file};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Whether a file in a feed directory is documentation rather than data.
fn is_doc_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.starts_with('.')
        || name.starts_with("license")
        || name.starts_with("licence")
        || name.starts_with("readme")
        || name.starts_with("copying")
        || name.ends_with(".md")
        || name.ends_with(".source")
}

/// The files of a feed: the path itself, or every file under a directory
/// (recursively, in path order; hidden files, READMEs and licences left out).
pub fn feed_files(spec: &FeedSpec) -> Result<Vec<PathBuf>, String> {
    let meta =
        std::fs::metadata(&spec.path).map_err(|e| format!("{}: {e}", spec.path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![spec.path.clone()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![spec.path.clone()];
    while let Some(d) = dirs.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in rd {
            let e = e.map_err(|e| format!("{}: {e}", d.display()))?;
            let p = e.path();
            if is_doc_file(&p) {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Who an indicator of the feed `spec` is blamed on (an allowlist names
/// no category).
fn feed_meta(spec: &FeedSpec) -> Arc<FeedMeta> {
    Arc::new(FeedMeta {
        name: spec.name.clone(),
        category: spec.category.clone().unwrap_or_else(|| "allowlist".into()),
        severity: spec.severity,
    })
}

/// One feed file given as bytes (`categories`: an iprep feed's categories
/// file), parsed and compiled as `spec` says without touching the disk:
/// the in-memory entry point of the fuzz targets and format tests.
pub fn feed_from_bytes(
    spec: &FeedSpec,
    bytes: &[u8],
    categories: Option<&[u8]>,
) -> (Snapshot, FeedReport) {
    let mut b = SnapshotBuilder::ranked(0);
    let rep = load_bytes(
        spec,
        &feed_meta(spec),
        &spec.path,
        bytes,
        categories,
        &mut b,
    );
    (b.build(), rep)
}

/// Load every feed of `cfg` into a new snapshot, on every core.
pub fn build_snapshot(cfg: &FeedsConfig) -> (Snapshot, Vec<FeedReport>, usize) {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    build_snapshot_on(cfg, threads)
}

/// [`build_snapshot`] on `threads` threads (tests check that the split does
/// not change the result).
pub fn build_snapshot_on(cfg: &FeedsConfig, threads: usize) -> (Snapshot, Vec<FeedReport>, usize) {
    let all: Vec<usize> = (0..cfg.feeds.len()).collect();
    let mut parts = Vec::with_capacity(all.len());
    let mut reports = Vec::with_capacity(all.len());
    for (_, part, rep) in load_parts(cfg, &all, threads) {
        parts.push(Arc::new(part));
        reports.push(rep);
    }
    let snap = Snapshot::assemble(parts);
    let dups = snap.duplicates;
    (snap, reports, dups)
}

/// Read one feed (every file of it) into `b`.
pub fn load_feed(spec: &FeedSpec, b: &mut SnapshotBuilder) -> FeedReport {
    let meta = feed_meta(spec);
    let files = match feed_files(spec) {
        Ok(f) => f,
        Err(e) => {
            return FeedReport {
                name: spec.name.clone(),
                failed: Some(e),
                ..Default::default()
            };
        }
    };
    let mut rep = FeedReport {
        name: spec.name.clone(),
        files: files.len(),
        ..Default::default()
    };
    for f in files {
        let r = load_file(spec, &meta, &f, b);
        rep.accepted += r.accepted;
        rep.rejected.extend(r.rejected);
        rep.skipped.extend(r.skipped);
        rep.warnings.extend(r.warnings);
        rep.failed = rep.failed.or(r.failed);
    }
    rep
}
