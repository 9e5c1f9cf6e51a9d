//! The retro-hunt's memory (issue 16): what each internal host resolved,
//! named (SNI, HTTP Host) and contacted, per day, so that indicators a feed
//! learns later can be matched against the past (`run::retro`).
//!
//! Invariants:
//! - Only internal hosts are remembered, and only what the engine would
//!   match: names where `match_name` looks (DNS questions and CNAME targets,
//!   TLS/QUIC server names, HTTP Host), the remote address and port of each
//!   new flow (or of every untracked packet), and DNS answer addresses (what
//!   the sinkhole check matches).
//! - Per worker, a fixed table remembers which (host, day, item) were
//!   passed on, so an item reaches the store about once an hour per host and
//!   day (the repeat moves its last-seen time), not once per packet. A
//!   forgotten entry only repeats an item; the store merges repeats.
//! - A name costs one allocation when it is passed on; addresses none.
//!   Items cross to the sink in batches (up to [`BATCH`], or what waited a
//!   second of packet time), not one by one.

use super::HitSource;
use super::attribution::{Unit, Units};
use super::engine::Engine;
use super::heuristics::table::{Keep, Table};
use super::{Sink, heuristics};
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;

/// Nanoseconds in a day: history is kept per UTC day.
pub const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// An item already passed on is passed on again after this long.
const REFRESH_NS: i64 = 3_600 * 1_000_000_000;
/// (host, day, item) entries remembered per worker, by default.
pub const ENTRIES: usize = 1 << 18;
/// Items handed to the sink at once.
pub const BATCH: usize = 256;
/// The longest an item waits in a batch, in packet time.
const WAIT_NS: i64 = 1_000_000_000;

/// The UTC day of a packet time.
pub fn day_of(ts_ns: i64) -> i64 {
    ts_ns.div_euclid(DAY_NS)
}

/// What was seen: a name or an address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seen {
    Name(Box<str>),
    Address(IpAddr),
}

/// One thing a host did, passed on to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryItem {
    pub ts_ns: i64,
    pub host: IpAddr,
    /// The host's unit when it was seen.
    pub unit: Arc<Unit>,
    /// Where it was seen: `DnsQuery`, `DnsAnswer` (a CNAME target, or an
    /// answer address), `TlsSni`, `QuicSni`, `HttpHost`, or `Ip` (a
    /// contact).
    pub how: HitSource,
    /// The remote port of a contact; 0 otherwise.
    pub port: u16,
    pub value: Seen,
}

/// `[history]` in `gatewatch.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Keep the history (it needs `--store`).
    pub enabled: bool,
    /// Days kept, counted back from the newest day recorded.
    pub retention_days: u32,
    /// Items kept per host and day; past it the day is marked incomplete
    /// (a scanner or a crawler must not fill the store).
    pub max_items_per_host_day: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            enabled: true,
            retention_days: 30,
            max_items_per_host_day: 5_000,
        }
    }
}

impl HistorySettings {
    /// What is wrong with the settings, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.retention_days == 0 || self.retention_days > 3_660 {
            out.push(format!(
                "[history] retention_days = {}: give 1 to 3660 days (or enabled = false)",
                self.retention_days
            ));
        }
        if self.max_items_per_host_day == 0 {
            out.push(
                "[history] max_items_per_host_day = 0: give at least 1 (or enabled = false)".into(),
            );
        }
        out
    }
}

#[derive(Clone, Copy, Default)]
struct Sent {
    at: i64,
}

impl Keep for Sent {}

/// One worker's record of what it passed on.
pub struct History {
    on: bool,
    sent: Table<Sent>,
    /// Items not yet handed to the sink, and when the first was seen.
    out: Vec<HistoryItem>,
    since: i64,
}

impl History {
    pub fn new(on: bool, entries: usize) -> History {
        History {
            on,
            sent: Table::new(if on { entries.max(4) } else { 4 }),
            out: Vec::new(),
            since: 0,
        }
    }

    /// Pass on the item of table key `key` (seen at `ts` by `host`, `how`,
    /// on `port`) unless it was within the hour; `value` is made only then
    /// (a name allocates).
    fn record(
        &mut self,
        units: &Units,
        key: u64,
        (ts, host, how, port): (i64, IpAddr, HitSource, u16),
        value: impl FnOnce() -> Seen,
    ) {
        if self.due(key, ts) {
            self.push(HistoryItem {
                ts_ns: ts,
                host,
                unit: units.unit_of(host).clone(),
                how,
                port,
                value: value(),
            });
        }
    }

    fn push(&mut self, it: HistoryItem) {
        if self.out.is_empty() {
            self.since = it.ts_ns;
            self.out.reserve(BATCH);
        }
        self.out.push(it);
    }

    /// True when the item was not passed on within [`REFRESH_NS`]; marks it.
    fn due(&mut self, key: u64, ts: i64) -> bool {
        let s = self.sent.entry(key, ts, DAY_NS);
        let due = s.at == 0 || ts.saturating_sub(s.at) >= REFRESH_NS;
        if due {
            s.at = ts.max(1);
        }
        due
    }

    /// Entries pushed out by new ones (each may repeat an item).
    pub fn evicted(&self) -> u64 {
        self.sent.evicted
    }
}

/// The table key of a name seen from `host`.
fn name_key(ts: i64, host: IpAddr, how: HitSource, name: &str) -> u64 {
    heuristics::key((host, day_of(ts), how, name))
}

/// The table key of an address seen by `host` (`how` `Ip`: contacted on
/// `port`; `DnsAnswer`: answered).
fn address_key(ts: i64, host: IpAddr, remote: IpAddr, how: HitSource, port: u16) -> u64 {
    heuristics::key((host, day_of(ts), how, remote, port))
}

impl Engine {
    /// Start loading the table line of the name in `self.name`, so the
    /// probe after the feed look-up finds it in the cache.
    #[inline]
    pub(super) fn history_prefetch_name(&self, ts: i64, host: IpAddr, how: HitSource) {
        if self.history.on {
            let key = name_key(ts, host, how, self.name.as_str());
            self.history.sent.prefetch(key);
        }
    }

    /// Likewise for the contact a client's SYN may open.
    #[inline]
    pub(super) fn history_prefetch_syn(&self, ts: i64, src: IpAddr, dst: IpAddr, port: u16) {
        if self.history.on {
            let key = address_key(ts, src, dst, HitSource::Ip, port);
            self.history.sent.prefetch(key);
        }
    }

    /// The name in `self.name`, seen from internal `host`.
    pub(super) fn history_name(&mut self, ts: i64, host: IpAddr, how: HitSource) {
        if !self.history.on || self.name.is_empty() || !self.units.is_internal(host) {
            return;
        }
        let key = name_key(ts, host, how, self.name.as_str());
        let name = &self.name;
        let value = || Seen::Name(name.as_str().into());
        self.history
            .record(&self.units, key, (ts, host, how, 0), value);
    }

    /// An address internal `host` exchanged packets with (`how` is `Ip`,
    /// with the remote port) or got in a DNS answer (`DnsAnswer`, port 0).
    pub(super) fn history_address(
        &mut self,
        ts: i64,
        host: IpAddr,
        remote: IpAddr,
        how: HitSource,
        port: u16,
    ) {
        if !self.history.on {
            return;
        }
        let key = address_key(ts, host, remote, how, port);
        self.history
            .record(&self.units, key, (ts, host, how, port), || {
                Seen::Address(remote)
            });
    }

    /// Hand the waiting items to the sink when there are [`BATCH`] of
    /// them, the first waited [`WAIT_NS`], or `now` is `None` (idle, end).
    pub(super) fn history_flush<S: Sink>(&mut self, now: Option<i64>, sink: &mut S) {
        let h = &mut self.history;
        if h.out.is_empty() {
            return;
        }
        let due = now.is_none_or(|t| h.out.len() >= BATCH || t.saturating_sub(h.since) >= WAIT_NS);
        if due {
            sink.history(std::mem::take(&mut h.out));
        }
    }

    /// A packet between `src` and `dst`: the contact of its internal end
    /// with the external one, as `match_ips` would blame it.
    pub(super) fn history_contact(&mut self, ts: i64, flow: &crate::packet::FlowKey) {
        if !self.history.on {
            return;
        }
        let src_in = self.units.is_internal(flow.src);
        if src_in == self.units.is_internal(flow.dst) {
            return;
        }
        let (host, remote, port) = if src_in {
            (flow.src, flow.dst, flow.dst_port)
        } else {
            (flow.dst, flow.src, flow.src_port)
        };
        self.history_address(ts, host, remote, HitSource::Ip, port);
    }
}
