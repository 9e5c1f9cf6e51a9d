//! Waiting on something another thread or process does, with a timeout
//! that fails the test and says what it waited for.

use std::time::{Duration, Instant};

/// Poll `f` every 50 ms until it returns `Ok`, or fail after `timeout`
/// naming `what` and the last state `f` reported in its `Err`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if start.elapsed() > timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last state: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Poll `f` every 50 ms until it is true, or fail after `timeout` naming
/// `what`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, timeout, || {
        if f() { Ok(()) } else { Err("not yet".into()) }
    })
}
