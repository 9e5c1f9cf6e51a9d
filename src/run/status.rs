//! The sensor's status in the store, for the console's feeds and status
//! pages: written at start, every [`EVERY`] and at the end, by a thread of
//! its own with its own connection (never the hit writer's queue, so a
//! busy store delays a status row, not a hit).

use crate::metrics::Metrics;
use crate::store::Store;
use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a live sensor reports.
pub const EVERY: Duration = Duration::from_secs(15);

/// The running status thread; dropping it writes the last status and joins.
pub struct StatusReporter {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StatusReporter {
    pub fn start(
        store: PathBuf,
        metrics: Arc<Metrics>,
        sensor: String,
        every: Duration,
    ) -> std::io::Result<StatusReporter> {
        let (tx, rx) = bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("gw-status".into())
            .spawn(move || {
                let (mut failing, mut last) = (false, false);
                loop {
                    let s = metrics.status(&sensor, "live", now_ns());
                    match write(&store, &s) {
                        Ok(()) => failing = false,
                        // Said once per failing stretch, not every period.
                        Err(e) if !failing => {
                            tracing::warn!("sensor status not written: {e}");
                            failing = true;
                        }
                        Err(_) => {}
                    }
                    if last {
                        break;
                    }
                    last = !matches!(rx.recv_timeout(every), Err(RecvTimeoutError::Timeout));
                }
            })?;
        Ok(StatusReporter {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for StatusReporter {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Write one status row (replays write theirs once, at the end).
pub fn write(
    store: &std::path::Path,
    s: &crate::store::console::SensorStatus,
) -> anyhow::Result<()> {
    let mut st = Store::open(store)?;
    st.put_sensor_status(s)?;
    Ok(())
}

pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}
