//! Reporting the panics the stages survive (see `detect/contain.rs` for the
//! workers, `intel/load` for feeds, `metrics/http.rs` for the listener).
//!
//! Each survived panic is a bug. The panic hook prints its message and
//! place; the catch site logs where in the input it happened. Both are
//! rate-limited (the first [`LOGGED`], then every power of two), so a
//! packet stream that triggers one bug a million times cannot flood the
//! log; every one is counted in `gatewatch_panics_recovered_total`.

use crate::packet::RawPacket;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// Panics logged in full before the log thins out.
const LOGGED: u64 = 10;

fn worth_logging(n: u64) -> bool {
    n <= LOGGED || n.is_power_of_two()
}

/// Install the rate-limited panic hook (once per process).
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        static SEEN: AtomicU64 = AtomicU64::new(0);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let n = SEEN.fetch_add(1, Ordering::Relaxed) + 1;
            if worth_logging(n) {
                previous(info);
            }
        }));
    });
}

/// Log that a panic at `at` (a worker, or a file and packet number) was
/// survived; `n` is how many that stage has survived so far.
pub fn log_recovered(at: &str, p: &RawPacket<'_>, n: u64) {
    if worth_logging(n) {
        tracing::error!(
            "{at} (capture time {} ns, {} bytes): processing panicked; the packet's flow was \
             reset and processing goes on ({n} so far, gatewatch_panics_recovered_total). \
             This is a bug: please report it with this line and the panic message above",
            p.ts_ns,
            p.data.len()
        );
    }
}
