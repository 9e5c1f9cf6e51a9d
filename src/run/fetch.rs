//! Fetching the newest feed snapshot from the central (`run` with both
//! `snapshot` and `[central]`): a thread asks every `snapshot_interval_s`
//! for the newest published version above the running one and offers its
//! bytes to the snapshot reloader.
//!
//! Invariants:
//! - The fetched bytes go through `SnapshotReloader::offer`: the key, the
//!   checksum, the format and the swap rules of a snapshot file, with the
//!   same refusal reasons and metrics; nothing here decides what runs.
//! - Only an accepted snapshot reaches the snapshot path (the reloader
//!   writes it: temporary file, fsync, rename).
//! - A central that cannot be reached or read is counted
//!   (`FetchStats::failures`), logged, and asked again next interval; it
//!   never stops the sensor.
//! - The same refused bytes are not fetched and refused again every
//!   interval: their checksum is remembered until something else is
//!   published.

use crate::intel::snap::swap::SnapshotReloader;
use crate::intel::triggers::OnReload;
use crate::store::central::{Central, CentralError, FetchStats};
use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

/// Where to fetch from.
#[derive(Clone, Debug)]
pub struct FetchSource {
    pub url: String,
    pub ca: Option<PathBuf>,
}

/// What the fetcher keeps between passes.
#[derive(Default)]
pub struct FetchState {
    central: Option<Central>,
    /// The checksum of the last refused snapshot.
    refused: Option<String>,
}

/// One fetch: ask the central, offer what is newer, report to `on`.
/// Whether a snapshot was offered.
pub fn fetch_once(
    src: &FetchSource,
    state: &mut FetchState,
    reloader: &SnapshotReloader,
    on: &OnReload,
) -> Result<bool, CentralError> {
    let c = match &mut state.central {
        Some(c) => c,
        None => state
            .central
            .insert(Central::connect(&src.url, src.ca.as_deref())?),
    };
    let running = reloader.running().version;
    let Some(listed) = c.newest_snapshot_above(running)? else {
        return Ok(false);
    };
    if state.refused.as_deref() == Some(listed.sha256.as_str()) {
        tracing::debug!(
            "snapshot version {} on the central was refused already",
            listed.version
        );
        return Ok(false);
    }
    // Gone between the two queries (a publisher's rollback): next time.
    let Some(bytes) = c.snapshot_bytes(listed.version)? else {
        return Ok(false);
    };
    let from = format!("from the central {}", c.shown());
    let report = reloader.offer(&bytes, &from);
    if report.refused_reason.is_some() {
        state.refused = Some(listed.sha256);
    }
    on(&report);
    Ok(true)
}

/// The fetching thread; dropping it stops it.
pub struct Fetcher {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Fetcher {
    /// Fetch at once (a newer snapshot published while the sensor was
    /// down), then every `every`.
    pub fn start(
        src: FetchSource,
        every: Duration,
        reloader: Arc<SnapshotReloader>,
        on: OnReload,
        stats: Arc<FetchStats>,
    ) -> std::io::Result<Fetcher> {
        let (tx, rx) = bounded::<()>(0);
        // Failing is counted from the start until the first fetch succeeds.
        stats.last_success_s.store(now_s(), Ordering::Relaxed);
        let thread = std::thread::Builder::new()
            .name("gw-snapfetch".into())
            .spawn(move || {
                let mut state = FetchState::default();
                let mut wait = Duration::ZERO;
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(wait) {
                    wait = every;
                    match fetch_once(&src, &mut state, &reloader, &on) {
                        Ok(_) => stats.last_success_s.store(now_s(), Ordering::Relaxed),
                        Err(e) => {
                            stats.failures.fetch_add(1, Ordering::Relaxed);
                            state.central = None;
                            tracing::warn!(
                                "fetching the feed snapshot from the central failed (retrying in {} s): {e}",
                                every.as_secs()
                            );
                        }
                    }
                }
            })?;
        Ok(Fetcher {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
