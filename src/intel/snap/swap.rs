//! Replacing a running snapshot with a newer file, without a gap in
//! matching: the new file is verified and checked against the running
//! one, then published through [`Intel`] (arc-swap), or refused with a
//! reason while the running one stays.
//!
//! The rules ([`check`]): a file is taken only if it verifies (signature,
//! checksum, format: see `mod.rs`), its version is strictly newer than the
//! running one's (an old file put back, by mistake or by an attacker who
//! kept one, cannot roll the lists back), and it lists indicators, at
//! least `min_fraction` of the running count (a truncated or botched
//! compile must not silently empty the blocklist).
//!
//! The same rules apply to a snapshot offered as bytes (fetched from the
//! central, [`SnapshotReloader::offer`]); only one that passes them is
//! written to the snapshot path (temporary file, fsync, rename), so a
//! restart starts from it and a refused one never replaces the file.

use super::{
    FeedSummary, Info, Loaded, Problem, PublicKey, decode_verified, verify_bytes, verify_header,
    write_file,
};
use crate::intel::Intel;
use crate::intel::arr::Buf;
use crate::intel::reload::{Outcome, Reload, ReloadReport};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The share of the running indicator count a new file must keep, unless
/// configured otherwise.
pub const MIN_FRACTION: f64 = 0.5;

/// Why a file was not swapped in (a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It failed verification (unreadable, format, signature, corrupt).
    File(Problem),
    /// Its version is not newer than the running one's.
    NotNewer,
    /// It lists no indicator.
    Empty,
    /// It lists fewer than `min_fraction` of the running count.
    Shrunk,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::File(p) => p.as_str(),
            Refusal::NotNewer => "not_newer",
            Refusal::Empty => "empty",
            Refusal::Shrunk => "shrunk",
        }
    }
}

/// The running snapshot, as the rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Running {
    pub version: u64,
    pub indicators: u64,
}

/// Whether a verified file described by `next` may replace `running`.
pub fn check(running: Running, next: &Info, min_fraction: f64) -> Result<(), (Refusal, String)> {
    if next.version <= running.version {
        let why = format!(
            "version {} is not newer than the running version {}",
            next.version, running.version
        );
        return Err((Refusal::NotNewer, why));
    }
    if next.indicators == 0 {
        return Err((Refusal::Empty, "it lists no indicators".into()));
    }
    if (next.indicators as f64) < running.indicators as f64 * min_fraction {
        let why = format!(
            "it lists {} indicators, fewer than {:.0}% of the running {}",
            next.indicators,
            min_fraction * 100.0,
            running.indicators
        );
        return Err((Refusal::Shrunk, why));
    }
    Ok(())
}

type Refused = (Refusal, String);

fn file_refusal(e: super::SnapError) -> Refused {
    (Refusal::File(e.problem), e.message)
}

/// Verify `path`, apply [`check`], then decode it.
pub fn accept(
    running: Running,
    path: &Path,
    key: &PublicKey,
    min_fraction: f64,
) -> Result<Loaded, Refused> {
    let (buf, info) = verify_header(path, key).map_err(file_refusal)?;
    let shown = path.display().to_string();
    accept_verified(running, (&buf, &info), &shown, min_fraction)
}

/// [`accept`] of a snapshot already verified, named `shown` in messages.
fn accept_verified(
    running: Running,
    (buf, info): (&Arc<Buf>, &Info),
    shown: &str,
    min_fraction: f64,
) -> Result<Loaded, Refused> {
    check(running, info, min_fraction)
        .map_err(|(r, why)| (r, format!("{shown}: not swapped in: {why}")))?;
    decode_verified(buf, shown).map_err(file_refusal)
}

/// The published file: what the rules compare with, its checksum (the
/// same file read again is no change) and its feeds.
struct Current {
    running: Running,
    checksum: [u8; 32],
    feeds: Vec<FeedSummary>,
}

/// Re-reads one snapshot file on every reload and publishes it when the
/// rules allow.
pub struct SnapshotReloader {
    path: PathBuf,
    key: PublicKey,
    min_fraction: f64,
    intel: Arc<Intel>,
    current: Mutex<Current>,
}

impl SnapshotReloader {
    /// Take over the snapshot `info` and `feeds` describe (the file `path`
    /// verified with `key`), already published in `intel`.
    pub fn new(
        path: &Path,
        key: PublicKey,
        min_fraction: f64,
        intel: Arc<Intel>,
        (info, feeds): (&Info, Vec<FeedSummary>),
    ) -> SnapshotReloader {
        let running = Running {
            version: info.version,
            indicators: info.indicators,
        };
        SnapshotReloader {
            path: path.to_path_buf(),
            key,
            min_fraction,
            intel,
            current: Mutex::new(Current {
                running,
                checksum: info.checksum,
                feeds,
            }),
        }
    }

    pub fn running(&self) -> Running {
        self.lock().running
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file as it is now, when it may replace `cur`: `Ok(None)` when it
    /// is the running file itself (read again: no change, no refusal).
    fn next(&self, cur: &Current) -> Result<Option<Loaded>, Refused> {
        let (buf, info) = verify_header(&self.path, &self.key).map_err(file_refusal)?;
        let shown = self.path.display().to_string();
        Self::unless_running(cur, (&buf, &info), &shown, self.min_fraction)
    }

    /// `Ok(None)` for the running snapshot itself, else [`accept_verified`].
    fn unless_running(
        cur: &Current,
        (buf, info): (&Arc<Buf>, &Info),
        shown: &str,
        min_fraction: f64,
    ) -> Result<Option<Loaded>, Refused> {
        if info.checksum == cur.checksum && info.version == cur.running.version {
            return Ok(None);
        }
        accept_verified(cur.running, (buf, info), shown, min_fraction).map(Some)
    }

    /// Offer the snapshot in `bytes` (fetched from `from`, which messages
    /// name): verified with the configured key and swapped in under the
    /// same rules as a file; only when it is, written to the snapshot path
    /// first. The report says what happened, as a reload's does.
    pub fn offer(&self, bytes: &[u8], from: &str) -> ReloadReport {
        let t0 = Instant::now();
        let mut cur = self.lock();
        let next = verify_bytes(bytes, &self.key, from)
            .map_err(file_refusal)
            .and_then(|(buf, info)| {
                Self::unless_running(&cur, (&buf, &info), from, self.min_fraction)
            });
        self.settle(&mut cur, next, Some(bytes), from, t0)
    }

    /// Publish `next` when it is a new snapshot (after writing `write`, the
    /// bytes it came as, to the snapshot path), and report.
    fn settle(
        &self,
        cur: &mut Current,
        next: Result<Option<Loaded>, Refused>,
        write: Option<&[u8]>,
        shown: &str,
        t0: Instant,
    ) -> ReloadReport {
        let mut r = ReloadReport {
            feeds: Vec::new(),
            config_error: None,
            took: Default::default(),
            swapped: false,
            refused_reason: None,
            snapshot_version: Some(cur.running.version),
        };
        match next {
            Ok(Some(loaded)) => {
                if let Some(bytes) = write {
                    self.keep_on_disk(bytes, loaded.info.version);
                }
                self.intel.store(loaded.snapshot);
                *cur = Current {
                    running: Running {
                        version: loaded.info.version,
                        indicators: loaded.info.indicators,
                    },
                    checksum: loaded.info.checksum,
                    feeds: loaded.feeds,
                };
                r.swapped = true;
                r.snapshot_version = Some(cur.running.version);
                tracing::info!(
                    "snapshot {shown} version {} swapped in: {} indicators",
                    cur.running.version,
                    cur.running.indicators
                );
            }
            Ok(None) => tracing::info!("snapshot {shown} unchanged"),
            Err((why, message)) => {
                tracing::error!("{message}; the running snapshot stays");
                r.config_error = Some(message);
                r.refused_reason = Some(why.as_str());
            }
        }
        // Per feed of what runs now: loaded when swapped, else unchanged.
        for f in &cur.feeds {
            let o = if r.swapped {
                Outcome::Loaded {
                    accepted: f.accepted as usize,
                }
            } else {
                Outcome::Unchanged
            };
            r.feeds.push((f.name.clone(), o, None));
        }
        r.took = t0.elapsed();
        r
    }

    /// Write an accepted snapshot's `bytes` to the snapshot path, so a
    /// restart starts from it. A failure is logged and matching goes on
    /// with it: the snapshot verified, only the disk refused.
    fn keep_on_disk(&self, bytes: &[u8], version: u64) {
        if let Err(e) = write_file(&self.path, bytes) {
            tracing::error!(
                "snapshot version {version} is running but could not be written to {}: {e}; a restart starts from the older file there (and fetches this one again)",
                self.path.display()
            );
        }
    }
}

impl Reload for SnapshotReloader {
    /// Serialised by the lock; the published snapshot changes only after
    /// everything verified and the rules passed.
    fn reload(&self) -> ReloadReport {
        let t0 = Instant::now();
        let mut cur = self.lock();
        let next = self.next(&cur);
        let shown = self.path.display().to_string();
        self.settle(&mut cur, next, None, &shown, t0)
    }

    fn watched_paths(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }
}
