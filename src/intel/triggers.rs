//! What sets off a reload: SIGHUP, a change to the feeds file or a feed
//! file (notify, debounced), or `POST /api/reload` (which calls
//! [`Reload::reload`] directly). Signal and file triggers go through one
//! thread that coalesces bursts into one reload. What is reloaded is the
//! feeds ([`super::reload::Reloader`]) or a snapshot file
//! ([`super::snap::swap::SnapshotReloader`]).

use super::reload::{Reload, ReloadReport};
use crossbeam_channel::{Receiver, Sender, bounded};
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A burst of file events ends after this much quiet (editors and
/// downloads write in several steps).
pub const DEBOUNCE: Duration = Duration::from_millis(1000);

/// Called after every reload (metrics, logs).
pub type OnReload = Arc<dyn Fn(&ReloadReport) + Send + Sync>;

/// Keeps the trigger threads and the file watcher alive.
pub struct Triggers {
    tx: Sender<&'static str>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Triggers {
    /// Ask for a reload (coalesced with any already queued).
    pub fn request(&self, why: &'static str) {
        let _ = self.tx.try_send(why);
    }
}

/// Start the reload thread, the SIGHUP handler and (if `watch`) the file
/// watcher.
pub fn start(
    reloader: Arc<dyn Reload>,
    on_reload: OnReload,
    watch: bool,
) -> anyhow::Result<Triggers> {
    let (tx, rx) = bounded::<&'static str>(1);
    {
        let reloader = reloader.clone();
        std::thread::Builder::new()
            .name("gw-reload".into())
            .spawn(move || run(reloader, rx, on_reload))?;
    }
    {
        let tx = tx.clone();
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
        std::thread::Builder::new()
            .name("gw-sighup".into())
            .spawn(move || {
                for _ in signals.forever() {
                    tracing::info!("SIGHUP: reloading feeds");
                    let _ = tx.try_send("SIGHUP");
                }
            })?;
    }
    let watcher = if watch {
        Some(watch_files(reloader.watched_paths(), tx.clone())?)
    } else {
        None
    };
    Ok(Triggers {
        tx,
        _watcher: watcher,
    })
}

fn run(reloader: Arc<dyn Reload>, rx: Receiver<&'static str>, on_reload: OnReload) {
    while let Ok(why) = rx.recv() {
        tracing::debug!("reload requested by {why}");
        let r = reloader.reload();
        on_reload(&r);
    }
}

/// Watch the directories holding `paths` (a feed written by rename is a new
/// file, so the file itself cannot be watched) and request a reload after
/// each burst of changes to one of them.
fn watch_files(
    paths: Vec<PathBuf>,
    tx: Sender<&'static str>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let (etx, erx) = crossbeam_channel::unbounded::<notify::Event>();
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(e) = ev {
            let _ = etx.send(e);
        }
    })?;
    let canon = |p: &PathBuf| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
    let targets: Vec<PathBuf> = paths.iter().map(canon).collect();
    let mut dirs: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    for p in &targets {
        let (d, mode) = if p.is_dir() {
            (p.clone(), RecursiveMode::Recursive)
        } else {
            (
                p.parent()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(".")),
                RecursiveMode::NonRecursive,
            )
        };
        if !dirs.iter().any(|x| x.0 == d && x.1 == mode) {
            dirs.push((d, mode));
        }
    }
    for (d, mode) in &dirs {
        w.watch(d, *mode)?;
    }
    let relevant = move |e: &notify::Event| {
        !matches!(e.kind, notify::EventKind::Access(_))
            && e.paths
                .iter()
                .any(|p| targets.iter().any(|t| p == t || p.starts_with(t)))
    };
    std::thread::Builder::new()
        .name("gw-watch".into())
        .spawn(move || {
            while let Ok(e) = erx.recv() {
                if !relevant(&e) {
                    continue;
                }
                // Wait for the burst to end. Only watched files' events
                // extend the wait: the directory may hold files written
                // all the time (the store and the alert log next to a
                // snapshot), which must not hold the reload off forever.
                let mut quiet_from = Instant::now() + DEBOUNCE;
                loop {
                    let left = quiet_from.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match erx.recv_timeout(left) {
                        Ok(e) if relevant(&e) => quiet_from = Instant::now() + DEBOUNCE,
                        Ok(_) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(_) => return,
                    }
                }
                tracing::info!("watched files changed: reloading");
                let _ = tx.try_send("file change");
            }
        })?;
    Ok(w)
}
