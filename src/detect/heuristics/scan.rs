//! Scanning: an internal host trying many addresses on one port
//! (horizontal: a worm spreading, lateral movement) or many ports of one
//! address (vertical), most of them never completing.
//!
//! A SYN (no ACK) from an internal host is an attempt; a SYN-ACK back to
//! it marks the target as answered. A reset is not an answer: a refused
//! connection failed. When the distinct targets of a (host, port) or
//! (host, address) reach the threshold the entry becomes a candidate and
//! waits `confirm_ms` for the SYN-ACKs still in flight; then it is reported
//! if at most `max_answered` of its targets answered. A browser opening
//! sixty sites is answered by all of them and is never reported.
//!
//! Distinct targets are counted in 256-bit sets: the threshold is compared
//! with the bits set, which never exceed the targets (a scan of 32 targets
//! sets about 30, of 36 about 33), and the evidence reports the
//! linear-counting estimate. Answers, only a share, get 128 bits.

use super::settings::ScanSettings;
use super::table::{Keep, Table};
use super::{Finding, Heuristic, at_least, distinct, key, set_bit};
use serde_json::json;
use std::net::IpAddr;

/// Candidates waiting at once, per engine; more are dropped (counted).
const MAX_WAITING: usize = 1024;
const WIDE: u8 = 0;
const DEEP: u8 = 1;

/// 72 bytes: the tables are probed on every SYN, and their size decides
/// how many of those probes hit the cache (see `docs/HEURISTICS.md`).
#[derive(Clone, Copy, Default)]
struct Probe {
    first: i64,
    tried: [u64; 4],
    answered: [u64; 2],
    /// Milliseconds from `first` to the latest attempt.
    last_ms: u32,
    attempts: u16,
    /// Judge again only when this many targets were tried.
    next_check: u16,
    /// The latest port tried (vertical evidence).
    last_port: u16,
    waiting: bool,
    reported: bool,
}

impl Keep for Probe {
    /// A growing scan is worth more than a one-off connection.
    fn worth(&self) -> u32 {
        self.tried.iter().map(|w| w.count_ones()).sum()
    }
}

#[derive(Clone, Copy)]
struct Candidate {
    due: i64,
    host: IpAddr,
    /// `WIDE`: `port` is the port (`addr` the target that made it a
    /// candidate); `DEEP`: `addr` is the address.
    kind: u8,
    port: u16,
    addr: IpAddr,
}

pub(super) struct Scans {
    wide: Table<Probe>,
    deep: Table<Probe>,
    waiting: Vec<Candidate>,
    next_due: i64,
    pub dropped: u64,
}

fn wide_key(host: IpAddr, port: u16) -> u64 {
    key((host, port, WIDE))
}

fn deep_key(host: IpAddr, addr: IpAddr) -> u64 {
    key((host, addr, DEEP))
}

impl Scans {
    pub fn new(entries: usize) -> Scans {
        Scans {
            wide: Table::new(entries),
            deep: Table::new(entries),
            waiting: Vec::with_capacity(MAX_WAITING),
            next_due: i64::MAX,
            dropped: 0,
        }
    }

    pub fn evicted(&self) -> u64 {
        self.wide.evicted + self.deep.evicted
    }

    pub fn live(&self) -> usize {
        self.wide.live() + self.deep.live()
    }

    /// Start loading the entries a SYN (or SYN-ACK) will touch.
    #[inline]
    pub fn prefetch(&self, host: IpAddr, port: u16) {
        self.wide.prefetch(wide_key(host, port));
    }

    /// A SYN from internal `host` to `dst:dp`.
    pub fn attempt(&mut self, s: &ScanSettings, ts: i64, host: IpAddr, dst: IpAddr, dp: u16) {
        let window = i64::from(s.window_s) * 1_000_000_000;
        let due = ts + i64::from(s.confirm_ms) * 1_000_000;
        let w = self.wide.entry(wide_key(host, dp), ts, window);
        let c = Candidate {
            due,
            host,
            kind: WIDE,
            port: dp,
            addr: dst,
        };
        let wide = note(w, ts, window, key(dst), s.min_addresses, dp);
        // Only a port new to the host can add to a vertical scan: the
        // second probe is skipped for the common case (a host's 443 again).
        let deep = w.attempts == 1 && {
            let d = self.deep.entry(deep_key(host, dst), ts, window);
            note(d, ts, window, key(dp), s.min_ports, dp)
        };
        if wide {
            self.wait(c);
        }
        if deep {
            self.wait(Candidate { kind: DEEP, ..c });
        }
    }

    fn wait(&mut self, c: Candidate) {
        if self.waiting.len() >= MAX_WAITING {
            self.dropped += 1;
            return;
        }
        self.next_due = self.next_due.min(c.due);
        self.waiting.push(c);
    }

    /// A SYN-ACK from `remote:sp` to internal `host`.
    pub fn answered(&mut self, ts: i64, host: IpAddr, remote: IpAddr, sp: u16) {
        let Some(w) = self.wide.get(wide_key(host, sp), ts) else {
            return;
        };
        set_bit(&mut w.answered, key(remote));
        // As in `attempt`: a port the host tried more than twice counted in
        // no vertical scan.
        if w.attempts <= 2
            && let Some(d) = self.deep.get(deep_key(host, remote), ts)
        {
            set_bit(&mut d.answered, key(sp));
        }
    }

    /// Judge the candidates due by `now`.
    pub fn confirm(&mut self, s: &ScanSettings, now: i64, found: &mut Vec<Finding>) {
        if now < self.next_due {
            return;
        }
        let mut next = i64::MAX;
        let mut i = 0;
        while i < self.waiting.len() {
            let c = self.waiting[i];
            if c.due > now {
                next = next.min(c.due);
                i += 1;
                continue;
            }
            self.waiting.swap_remove(i);
            let p = match c.kind {
                WIDE => self.wide.get(wide_key(c.host, c.port), now),
                _ => self.deep.get(deep_key(c.host, c.addr), now),
            };
            if let Some(p) = p
                && let Some(f) = judge(s, p, &c)
            {
                found.push(f);
            }
        }
        self.next_due = next;
    }
}

/// Count an attempt in `p`; true when it just became a candidate.
fn note(p: &mut Probe, ts: i64, window: i64, target: u64, min: u32, port: u16) -> bool {
    if p.attempts == 0 || ts.saturating_sub(p.first) > window {
        *p = Probe {
            first: ts,
            next_check: min.min(u32::from(u16::MAX)) as u16,
            ..Probe::default()
        };
    }
    p.attempts = p.attempts.saturating_add(1);
    p.last_ms = ((ts - p.first) / 1_000_000).clamp(0, i64::from(u32::MAX)) as u32;
    p.last_port = port;
    if !set_bit(&mut p.tried, target) || p.waiting || p.reported {
        return false;
    }
    p.waiting = at_least(&p.tried) >= u32::from(p.next_check);
    p.waiting
}

/// Report `p` if few enough of its targets answered; else wait for more.
fn judge(s: &ScanSettings, p: &mut Probe, c: &Candidate) -> Option<Finding> {
    p.waiting = false;
    // The estimate, kept between what the bits prove and the attempts.
    let tried = distinct(&p.tried)
        .min(u32::from(p.attempts))
        .max(at_least(&p.tried));
    let answered = distinct(&p.answered).min(tried);
    if f64::from(answered) > s.max_answered * f64::from(tried) {
        let bits = at_least(&p.tried);
        p.next_check = (bits + bits / 4 + 1).min(u32::from(u16::MAX)) as u16;
        return None;
    }
    p.reported = true;
    let secs = f64::from(p.last_ms) / 1e3;
    let (indicator, observed, evidence, what);
    if c.kind == WIDE {
        indicator = format!("tcp/{}", c.port);
        observed = format!("{tried} addresses on tcp/{}", c.port);
        what = format!("{tried} addresses on tcp/{}", c.port);
        evidence = json!({
            "kind": "horizontal",
            "port": c.port,
            "distinct_addresses": tried,
            "answered": answered,
            "attempts": p.attempts,
            "sample_target": c.addr.to_string(),
            "seconds": (secs * 1000.0).round() / 1000.0,
        });
    } else {
        indicator = format!("tcp/*@{}", c.addr);
        observed = format!("{tried} ports of {}", c.addr);
        what = format!("{tried} ports of {}", c.addr);
        evidence = json!({
            "kind": "vertical",
            "address": c.addr.to_string(),
            "distinct_ports": tried,
            "answered": answered,
            "attempts": p.attempts,
            "last_port": p.last_port,
            "seconds": (secs * 1000.0).round() / 1000.0,
        });
    }
    Some(Finding {
        heuristic: Heuristic::Scan,
        ts: p.first + i64::from(p.last_ms) * 1_000_000,
        host: c.host,
        remote: c.addr,
        port: if c.kind == WIDE { c.port } else { p.last_port },
        proto: 6,
        signature: format!(
            "gatewatch heuristic scan: {} tried {what} in {secs:.1} s, {answered} answered",
            c.host
        ),
        indicator,
        observed,
        evidence,
    })
}
