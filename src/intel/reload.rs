//! Hot reload of the feeds without a gap in matching.
//!
//! A reload re-reads `feeds.toml`, rebuilds only the feeds whose settings or
//! files (size, modification time) changed, validates each rebuilt feed and
//! swaps one new snapshot in with arc-swap. Unchanged feeds' parts are
//! shared (`Arc`), so peak memory during a reload is the steady state plus
//! the changed feeds' new tables and the filters, not twice the snapshot.
//!
//! A rebuilt feed replaces its previous version only if it loaded (no read
//! or parse failure), is not empty and did not shrink below
//! [`MIN_KEEP`] of its previous size; otherwise the previous version stays
//! and the refusal is reported (metrics and log). Matching never pauses:
//! workers keep the old snapshot until they load the new pointer.

use super::feeds::{FeedReport, FeedSpec, FeedsConfig, feed_files, load_parts};
use super::{Intel, Part, Snapshot};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// A rebuilt feed must keep at least this share of its previous indicators
/// (a truncated download must not silently empty the blocklist).
pub const MIN_KEEP: f64 = 0.5;

/// What identifies a feed's files on disk: path, size, modification time.
type Stamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn stamp(spec: &FeedSpec) -> Stamp {
    let mut files = feed_files(spec).unwrap_or_default();
    files.extend(spec.categories.clone());
    files
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).ok();
            let len = m.as_ref().map_or(0, |m| m.len());
            let mtime = m.and_then(|m| m.modified().ok());
            (p, len, mtime)
        })
        .collect()
}

/// One feed as it is in the published snapshot.
#[derive(Clone)]
struct Loaded {
    spec: FeedSpec,
    position: usize,
    stamp: Stamp,
    part: Arc<Part>,
    accepted: usize,
}

/// What a reload did with one feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Rebuilt and swapped in.
    Loaded { accepted: usize },
    /// Settings and files unchanged: the previous part is shared.
    Unchanged,
    /// Rebuilt but refused; the previous version stays.
    Refused {
        reason: RefuseReason,
        detail: String,
    },
    /// New feed that could not be loaded: absent until it loads.
    Failed { detail: String },
}

/// Why a rebuilt feed was refused (a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    Parse,
    Empty,
    Shrunk,
}

impl RefuseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::Parse => "parse",
            RefuseReason::Empty => "empty",
            RefuseReason::Shrunk => "shrunk",
        }
    }
}

/// The result of one reload.
#[derive(Debug)]
pub struct ReloadReport {
    /// Per feed of the new configuration: name, outcome, and its load report
    /// when it was rebuilt.
    pub feeds: Vec<(String, Outcome, Option<FeedReport>)>,
    /// The feeds file itself was refused: nothing changed.
    pub config_error: Option<String>,
    pub took: Duration,
    /// Whether a new snapshot was published.
    pub swapped: bool,
    /// A snapshot file refused: why (a metric label).
    pub refused_reason: Option<&'static str>,
    /// The version of the snapshot file running after the reload (when
    /// the run started from one).
    pub snapshot_version: Option<u64>,
}

impl ReloadReport {
    /// `ok`, `partial` (some feed refused or failed) or `refused` (the
    /// feeds file was refused).
    pub fn result(&self) -> &'static str {
        if self.config_error.is_some() {
            "refused"
        } else if self
            .feeds
            .iter()
            .any(|f| matches!(f.1, Outcome::Refused { .. } | Outcome::Failed { .. }))
        {
            "partial"
        } else {
            "ok"
        }
    }

    /// A short JSON summary (for `POST /api/reload`).
    pub fn to_json(&self) -> String {
        let feeds: Vec<serde_json::Value> = self
            .feeds
            .iter()
            .map(|(name, o, _)| {
                let (state, detail) = match o {
                    Outcome::Loaded { accepted } => ("loaded", format!("{accepted} indicators")),
                    Outcome::Unchanged => ("unchanged", String::new()),
                    Outcome::Refused { reason, detail } => (reason.as_str(), detail.clone()),
                    Outcome::Failed { detail } => ("failed", detail.clone()),
                };
                serde_json::json!({"feed": name, "state": state, "detail": detail})
            })
            .collect();
        let mut v = serde_json::json!({
            "result": self.result(),
            "error": self.config_error,
            "seconds": self.took.as_secs_f64(),
            "feeds": feeds,
        });
        if let Some(version) = self.snapshot_version {
            v["snapshot_version"] = version.into();
            v["reason"] = self.refused_reason.into();
        }
        v.to_string()
    }
}

/// What a reload trigger calls: the feeds' [`Reloader`], or a snapshot
/// file's (`snap::swap`).
pub trait Reload: Send + Sync {
    /// Re-read and publish what changed; never pauses matching.
    fn reload(&self) -> ReloadReport;
    /// The files a change of which should trigger a reload.
    fn watched_paths(&self) -> Vec<PathBuf>;
}

impl Reload for Reloader {
    fn reload(&self) -> ReloadReport {
        Reloader::reload(self)
    }

    fn watched_paths(&self) -> Vec<PathBuf> {
        Reloader::watched_paths(self)
    }
}

/// Owns the feeds' loaded state and publishes snapshots into an [`Intel`].
pub struct Reloader {
    feeds_path: PathBuf,
    intel: Arc<Intel>,
    state: Mutex<Vec<Loaded>>,
    threads: usize,
}

impl Reloader {
    /// Take over a snapshot built from `cfg` (one part per feed, in order)
    /// and published in `intel`.
    pub fn new(cfg: &FeedsConfig, reports: &[FeedReport], intel: Arc<Intel>) -> Reloader {
        let snap = intel.load_full();
        let state = cfg
            .feeds
            .iter()
            .enumerate()
            .zip(snap.parts())
            .map(|((i, spec), part)| Loaded {
                spec: spec.clone(),
                position: i,
                stamp: stamp(spec),
                part: part.clone(),
                accepted: reports.get(i).map_or(0, |r| r.accepted),
            })
            .collect();
        Reloader {
            feeds_path: cfg.path.clone(),
            intel,
            state: Mutex::new(state),
            threads: std::thread::available_parallelism().map_or(1, |t| t.get()),
        }
    }

    pub fn feeds_path(&self) -> &Path {
        &self.feeds_path
    }

    /// Every file a change of which should trigger a reload.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut v = vec![self.feeds_path.clone()];
        {
            let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for l in s.iter() {
                v.push(l.spec.path.clone());
                v.extend(l.spec.categories.clone());
            }
        }
        v
    }

    /// Re-read the feeds file and swap in a snapshot with every changed
    /// feed rebuilt. Reloads are serialised.
    ///
    /// A panic inside (a reader's panic is already a refused feed) refuses
    /// this reload and leaves the published snapshot and the state as they
    /// were: the state is replaced only whole, after everything succeeded,
    /// so a lock poisoned by an unwind still guards a consistent value.
    pub fn reload(&self) -> ReloadReport {
        let t0 = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match catch_unwind(AssertUnwindSafe(|| self.reload_locked(&mut state, t0))) {
            Ok(r) => r,
            Err(e) => {
                crate::packet::panics::FEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let why = super::load::panic_message(e.as_ref());
                let msg = format!("reload panicked ({why}); nothing changed. This is a bug");
                tracing::error!("{msg}");
                refused(msg, t0)
            }
        }
    }

    fn reload_locked(&self, state: &mut Vec<Loaded>, t0: Instant) -> ReloadReport {
        let cfg = match FeedsConfig::load_for_reload(&self.feeds_path) {
            Ok(c) => c,
            Err(e) => return refused(e.to_string(), t0),
        };
        let stamps: Vec<Stamp> = cfg.feeds.iter().map(stamp).collect();
        let changed = changed_feeds(&cfg, &stamps, state);
        let mut built: Vec<Option<(Part, FeedReport)>> =
            (0..cfg.feeds.len()).map(|_| None).collect();
        for (i, part, rep) in load_parts(&cfg, &changed, self.threads) {
            built[i] = Some((part, rep));
        }
        let mut next: Vec<Loaded> = Vec::with_capacity(cfg.feeds.len());
        let mut feeds = Vec::with_capacity(cfg.feeds.len());
        for (i, spec) in cfg.feeds.iter().enumerate() {
            let old = previous(state, &spec.name);
            let (feed, keep) = match built[i].take() {
                Some(b) => settle(spec, i, &stamps[i], b, old),
                None => ((spec.name.clone(), Outcome::Unchanged, None), old.cloned()),
            };
            feeds.push(feed);
            next.extend(keep);
        }
        let swapped = !changed.is_empty() || next.len() != state.len();
        if swapped {
            let snap = Snapshot::assemble(next.iter().map(|l| l.part.clone()).collect());
            self.intel.store(snap);
            *state = next;
        }
        let r = ReloadReport {
            feeds,
            config_error: None,
            took: t0.elapsed(),
            swapped,
            refused_reason: None,
            snapshot_version: None,
        };
        tracing::info!(
            "feeds reloaded ({}) in {:.3} s: {} rebuilt",
            r.result(),
            r.took.as_secs_f64(),
            changed.len()
        );
        r
    }

    /// Names and indicator counts of the feeds now published.
    pub fn loaded(&self) -> Vec<(String, usize)> {
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.iter()
            .map(|l| (l.spec.name.clone(), l.accepted))
            .collect()
    }
}

/// One feed's line in a [`ReloadReport`].
type FeedOutcome = (String, Outcome, Option<FeedReport>);

/// A reload stopped by `error` before any feed was read: nothing changed.
fn refused(error: String, t0: Instant) -> ReloadReport {
    ReloadReport {
        feeds: Vec::new(),
        config_error: Some(error),
        took: t0.elapsed(),
        swapped: false,
        refused_reason: None,
        snapshot_version: None,
    }
}

/// The published version of the feed named `name`, if any.
fn previous<'s>(state: &'s [Loaded], name: &str) -> Option<&'s Loaded> {
    state.iter().find(|l| l.spec.name == name)
}

/// The feeds of `cfg` to rebuild: new ones, and those whose settings,
/// position or files changed.
fn changed_feeds(cfg: &FeedsConfig, stamps: &[Stamp], state: &[Loaded]) -> Vec<usize> {
    (0..cfg.feeds.len())
        .filter(|&i| match previous(state, &cfg.feeds[i].name) {
            Some(l) => l.spec != cfg.feeds[i] || l.position != i || l.stamp != stamps[i],
            None => true,
        })
        .collect()
}

/// Why a rebuilt feed may not replace `old` (or, new, be published): it
/// did not load, loaded nothing, or lost more than [`MIN_KEEP`] allows.
fn refusal(rep: &FeedReport, old: Option<&Loaded>) -> Option<(RefuseReason, String)> {
    if let Some(f) = &rep.failed {
        Some((RefuseReason::Parse, f.clone()))
    } else if rep.accepted == 0 {
        Some((RefuseReason::Empty, "no indicators loaded".to_string()))
    } else if let Some(o) = old
        && (rep.accepted as f64) < o.accepted as f64 * MIN_KEEP
    {
        Some((
            RefuseReason::Shrunk,
            format!(
                "shrank from {} to {} indicators (more than {:.0}%)",
                o.accepted,
                rep.accepted,
                (1.0 - MIN_KEEP) * 100.0
            ),
        ))
    } else {
        None
    }
}

/// What a reload reports for the rebuilt feed number `i` and what it
/// publishes of it: the new version, else the previous one (the refusal
/// logged), else nothing for a new feed that did not load.
fn settle(
    spec: &FeedSpec,
    i: usize,
    stamp: &Stamp,
    (part, rep): (Part, FeedReport),
    old: Option<&Loaded>,
) -> (FeedOutcome, Option<Loaded>) {
    match (refusal(&rep, old), old) {
        (None, _) => {
            let accepted = rep.accepted;
            let loaded = Loaded {
                spec: spec.clone(),
                position: i,
                stamp: stamp.clone(),
                accepted,
                part: Arc::new(part),
            };
            let feed = (spec.name.clone(), Outcome::Loaded { accepted }, Some(rep));
            (feed, Some(loaded))
        }
        (Some((reason, detail)), Some(o)) => {
            tracing::error!(
                "feed {:?} not reloaded ({}): {detail}; its previous version stays",
                spec.name,
                reason.as_str()
            );
            let feed = (
                spec.name.clone(),
                Outcome::Refused { reason, detail },
                Some(rep),
            );
            (feed, Some(o.clone()))
        }
        (Some((_, detail)), None) => {
            tracing::error!("new feed {:?} not loaded: {detail}", spec.name);
            let feed = (spec.name.clone(), Outcome::Failed { detail }, Some(rep));
            (feed, None)
        }
    }
}
