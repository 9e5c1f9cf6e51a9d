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
//! Distinct targets are counted in 256-bit sets (linear counting): fixed
//! size per entry, within a few percent of the truth below a few hundred.

use super::settings::ScanSettings;
use super::table::{Keep, Table};
use super::{Finding, Heuristic, distinct, key, set_bit};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};

/// Candidates waiting at once, per engine; more are dropped (counted).
const MAX_WAITING: usize = 1024;
const WIDE: u8 = 0;
const DEEP: u8 = 1;

#[derive(Clone, Copy)]
struct Probe {
    first: i64,
    last: i64,
    tried: [u64; 4],
    answered: [u64; 4],
    attempts: u32,
    /// Judge again only when this many targets were tried.
    next_check: u32,
    waiting: bool,
    reported: bool,
    /// The latest target: an address (horizontal) or a port (vertical).
    last_addr: IpAddr,
    last_port: u16,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            first: 0,
            last: 0,
            tried: [0; 4],
            answered: [0; 4],
            attempts: 0,
            next_check: 0,
            waiting: false,
            reported: false,
            last_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            last_port: 0,
        }
    }
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
    /// `WIDE`: `port` is the port; `DEEP`: `addr` is the address.
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
        let wide = note(w, ts, window, key(dst), s.min_addresses, dst, dp);
        let d = self.deep.entry(deep_key(host, dst), ts, window);
        let deep = note(d, ts, window, key(dp), s.min_ports, dst, dp);
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
        if let Some(w) = self.wide.get(wide_key(host, sp), ts) {
            set_bit(&mut w.answered, key(remote));
        }
        if let Some(d) = self.deep.get(deep_key(host, remote), ts) {
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
fn note(
    p: &mut Probe,
    ts: i64,
    window: i64,
    target: u64,
    min: u32,
    addr: IpAddr,
    port: u16,
) -> bool {
    if p.attempts == 0 || ts.saturating_sub(p.first) > window {
        *p = Probe {
            first: ts,
            next_check: min,
            ..Probe::default()
        };
    }
    p.attempts = p.attempts.saturating_add(1);
    p.last = ts;
    p.last_addr = addr;
    p.last_port = port;
    if !set_bit(&mut p.tried, target) || p.waiting || p.reported {
        return false;
    }
    p.waiting = distinct(&p.tried) >= p.next_check;
    p.waiting
}

/// Report `p` if few enough of its targets answered; else wait for more.
fn judge(s: &ScanSettings, p: &mut Probe, c: &Candidate) -> Option<Finding> {
    p.waiting = false;
    let tried = distinct(&p.tried);
    let answered = distinct(&p.answered).min(tried);
    if f64::from(answered) > s.max_answered * f64::from(tried) {
        p.next_check = tried + tried / 4 + 1;
        return None;
    }
    p.reported = true;
    let secs = (p.last - p.first) as f64 / 1e9;
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
            "last_target": p.last_addr.to_string(),
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
        ts: p.last,
        host: c.host,
        remote: if c.kind == WIDE { p.last_addr } else { c.addr },
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
