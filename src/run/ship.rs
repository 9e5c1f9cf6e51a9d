//! Shipping the store's journal to the central PostgreSQL: a thread of the
//! live sensor (`[central]`) and the one-shot `gatewatch ship`.
//!
//! Each pass asks the central what it holds of this sensor (its
//! acknowledged sequence number), sends the rows after it in batches, one
//! transaction each, and records the acknowledgement locally (for
//! pruning). A failure is counted and retried after a back-off; because
//! the central's acknowledgement commits with the rows, a restart on
//! either side resumes exactly where the last commit ended.

use crate::store::Store;
use crate::store::central::{Central, ShipStats};
use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

/// Where and as what to ship.
#[derive(Clone, Debug)]
pub struct ShipTarget {
    pub url: String,
    pub ca: Option<PathBuf>,
    /// The province (group of sensors) the central files this sensor under.
    pub province: String,
    /// Rows per batch (one transaction each).
    pub batch: usize,
    /// Stop a pass after this many rows (`None`: when caught up).
    pub max_rows: Option<u64>,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub rows: u64,
    pub batches: u64,
    /// The central's acknowledged sequence number after the pass.
    pub acked: i64,
    /// Rows still not acknowledged.
    pub lag: u64,
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Ship everything `store` has that the central lacks; `central` is
/// reused across passes (reconnect by passing `None`).
pub fn pass(
    store: &Path,
    target: &ShipTarget,
    central: &mut Option<Central>,
    stats: &ShipStats,
) -> anyhow::Result<Pass> {
    let mut st = Store::open(store)?;
    let c = match central {
        Some(c) => c,
        None => central.insert(Central::connect(&target.url, target.ca.as_deref())?),
    };
    let Some(sensor) = st.sensor_id()? else {
        anyhow::bail!(
            "{}: this store names no sensor (gatewatch run or replay names it when they write to it); nothing to ship",
            store.display()
        );
    };
    let mut done = Pass {
        acked: c.acked(&sensor)?,
        ..Pass::default()
    };
    while target.max_rows.is_none_or(|m| done.rows < m) {
        let rows = st.journal_after(done.acked, target.batch.max(1))?;
        if rows.is_empty() {
            break;
        }
        let taken = c.take(&target.province, &rows)?;
        let acked = taken.acked;
        stats.skipped.fetch_add(taken.skipped, Ordering::Relaxed);
        done.rows += rows.len() as u64;
        done.batches += 1;
        done.acked = acked;
        stats.rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
        st.set_acked(c.shown(), acked, crate::run::status::now_ns())?;
    }
    done.lag = (st.journal_head()? - done.acked).max(0) as u64;
    stats.lag.store(done.lag, Ordering::Relaxed);
    stats.last_success_s.store(now_s(), Ordering::Relaxed);
    Ok(done)
}

/// The live sensor's shipping thread; dropping it makes a last pass.
pub struct Shipper {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Shipper {
    pub fn start(
        store: PathBuf,
        target: ShipTarget,
        every: Duration,
        stats: Arc<ShipStats>,
    ) -> std::io::Result<Shipper> {
        let (tx, rx) = bounded::<()>(0);
        // Stalled is counted from the start until the first pass succeeds.
        stats.last_success_s.store(now_s(), Ordering::Relaxed);
        let thread = std::thread::Builder::new()
            .name("gw-ship".into())
            .spawn(move || {
                let mut central = None;
                // The first pass at once: a backlog from before a restart.
                let mut wait = Duration::ZERO;
                loop {
                    let last = !matches!(rx.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
                    wait = match pass(&store, &target, &mut central, &stats) {
                        Ok(_) => every,
                        Err(e) => {
                            failed(&e, &stats);
                            central = None;
                            (wait * 2).clamp(every, Duration::from_secs(60))
                        }
                    };
                    if last {
                        break;
                    }
                }
            })?;
        Ok(Shipper {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

fn failed(e: &anyhow::Error, stats: &ShipStats) {
    stats.failures.fetch_add(1, Ordering::Relaxed);
    tracing::warn!("shipping to the central failed (retrying): {e:#}");
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
