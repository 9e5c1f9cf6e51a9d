//! The retro-hunt (issue 16): match the store's history against the feeds
//! as they are now, and turn past contacts with indicators the sensor did
//! not know then into hits marked `retro`, at their original times.
//!
//! Invariants:
//! - Each stored name and address is matched once (with the engine's
//!   matchers and allowlists); only the rows of a matching value are read.
//! - A row is new only if the host's first hit on that indicator value (in
//!   the store, or earlier in this process) is later than the row's first
//!   contact: what the sensor reported live is never reported again, and a
//!   second hunt over the same history finds nothing new.
//! - Hosts are attributed with the units as they are now, as a fresh replay
//!   would; a host no longer internal is skipped (counted).
//! - Not kept, so not hunted: URL and keyword indicators (the history keeps
//!   names and addresses, not request paths).

use crate::detect::attribution::Units;
use crate::detect::heuristics::{Behaviour, Heuristic};
use crate::detect::history::Seen;
use crate::detect::{Context, Event, Hit, HitSource};
use crate::intel::{Id, Indicator, Snapshot};
use crate::metrics::Metrics;
use crate::packet::FlowKey;
use crate::store::history::HistoryRow;
use crate::store::{Store, StoreError};
use crossbeam_channel::Sender;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to hunt.
#[derive(Clone, Debug, Default)]
pub struct RetroOptions {
    /// Only history from this time on (`None`: all that is kept).
    pub since_ns: Option<i64>,
    /// Match DNS answer addresses against the IP feeds, as the
    /// `sinkhole_answer` heuristic does live.
    pub sinkhole: bool,
}

/// What a hunt did.
#[derive(Clone, Debug, Default)]
pub struct RetroReport {
    /// Distinct names and addresses matched against the feeds.
    pub values: usize,
    /// Of those, on a feed now.
    pub matched: usize,
    /// History rows of matching values read.
    pub rows: usize,
    /// Hits made.
    pub hits: usize,
    /// Rows the sensor had already reported (or this process had).
    pub known: usize,
    /// Rows of a host an allowlist names, or no longer internal.
    pub skipped: usize,
    /// Hosts with retro hits.
    pub hosts: BTreeSet<IpAddr>,
    pub took: Duration,
}

/// First retro hit per (host, indicator value) made by this process:
/// hunts after reloads must not repeat what the store has not committed yet.
pub type Reported = HashMap<(IpAddr, Box<str>), i64>;

/// Hunt `store`'s history with `snap`; every hit goes to `emit`, oldest
/// contact first per value.
pub fn hunt(
    store: &Store,
    snap: &Snapshot,
    units: &Units,
    o: &RetroOptions,
    reported: &mut Reported,
    mut emit: impl FnMut(Hit),
) -> Result<RetroReport, StoreError> {
    let t0 = Instant::now();
    let since_day = o.since_ns.map_or(i64::MIN, crate::detect::history::day_of);
    let values = store.history_values(since_day)?;
    let ports = if snap.has_port_entries() {
        contact_ports(store, since_day)?
    } else {
        HashMap::new()
    };
    let mut rep = RetroReport {
        values: values.len(),
        ..RetroReport::default()
    };
    let h = Hunt { snap, units, o };
    for (id, v) in &values {
        if !h.may_match(*id, v, &ports) {
            continue;
        }
        rep.matched += 1;
        for r in store.history_rows(*id, since_day)? {
            if o.since_ns.is_some_and(|s| r.last_seen_ns < s) {
                continue;
            }
            rep.rows += 1;
            let Some(hit) = h.row(v, &r, &mut rep) else {
                continue;
            };
            let key = (r.host, hit.indicator.value.clone());
            let first = store.first_hit(r.host, &hit.indicator.value)?;
            let earlier = reported.get(&key).copied();
            if [first, earlier]
                .into_iter()
                .flatten()
                .any(|t| t <= r.first_seen_ns)
            {
                rep.known += 1;
                continue;
            }
            reported.insert(key, r.first_seen_ns);
            rep.hits += 1;
            rep.hosts.insert(r.host);
            emit(hit);
        }
    }
    rep.took = t0.elapsed();
    Ok(rep)
}

/// The ports each contacted address was reached on.
fn contact_ports(store: &Store, since_day: i64) -> Result<HashMap<i64, Vec<u16>>, StoreError> {
    let mut m: HashMap<i64, Vec<u16>> = HashMap::new();
    for (id, p) in store.history_contact_ports(since_day)? {
        m.entry(id).or_default().push(p);
    }
    Ok(m)
}

struct Hunt<'a> {
    snap: &'a Snapshot,
    units: &'a Units,
    o: &'a RetroOptions,
}

impl Hunt<'_> {
    /// Whether any row of value `id` can match: a listed, not allowed name;
    /// an address listed alone or with one of the ports it was reached on.
    fn may_match(&self, id: i64, v: &Seen, ports: &HashMap<i64, Vec<u16>>) -> bool {
        let s = self.snap;
        match v {
            Seen::Name(n) => s.match_domain(n).is_some() && !s.allow_domain(n),
            Seen::Address(a) if s.allow_ip(*a) => false,
            Seen::Address(a) => {
                s.match_ip(*a, None).is_some()
                    || ports
                        .get(&id)
                        .is_some_and(|ps| ps.iter().any(|&p| s.match_ip(*a, Some(p)).is_some()))
            }
        }
    }

    /// The hit row `r` of value `v` makes, if any.
    fn row(&self, v: &Seen, r: &HistoryRow, rep: &mut RetroReport) -> Option<Hit> {
        if !self.units.is_internal(r.host) || self.snap.allow_ip(r.host) {
            rep.skipped += 1;
            return None;
        }
        let port = (r.port != 0).then_some(r.port);
        let found = match (v, r.how) {
            (Seen::Name(n), how) if how != HitSource::Ip => self
                .snap
                .match_domain(n)
                .map(|id| (id, n.to_string(), how, None)),
            (Seen::Address(a), HitSource::Ip) => self
                .snap
                .match_ip(*a, port)
                .map(|id| (id, a.to_string(), HitSource::Ip, Some(*a))),
            (Seen::Address(a), HitSource::DnsAnswer) if self.o.sinkhole => self
                .snap
                .match_ip(*a, None)
                .map(|id| (id, a.to_string(), HitSource::DnsAnswer, Some(*a))),
            _ => None,
        };
        found.map(|(id, observed, how, remote)| self.hit(id, &observed, how, remote, r))
    }

    fn hit(
        &self,
        id: Id,
        observed: &str,
        how: HitSource,
        remote: Option<IpAddr>,
        r: &HistoryRow,
    ) -> Hit {
        let indicator: Indicator = self.snap.indicator(id, observed);
        let unspecified = match r.host {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let behaviour = (how == HitSource::DnsAnswer && remote.is_some()).then(|| {
            Box::new(Behaviour {
                heuristic: Heuristic::SinkholeAnswer,
                evidence: serde_json::json!({ "address": observed, "feed": indicator.feed.name }),
                signature: format!(
                    "gatewatch heuristic sinkhole_answer (retro): {observed} was in a DNS answer to {}, listed by {}",
                    r.host, indicator.feed.name
                ),
                offender: true,
            })
        });
        Hit {
            ts_ns: r.first_seen_ns,
            flow: FlowKey {
                src: r.host,
                src_port: 0,
                dst: remote.unwrap_or(unspecified),
                dst_port: r.port,
                proto: 0,
            },
            vlan: None,
            host: r.host,
            unit: self.units.unit_of(r.host).clone(),
            source: how,
            indicator,
            observed: observed.into(),
            outbound: true,
            context: Context::None,
            flow_id: None,
            via_resolver: false,
            host_name: None,
            behaviour,
            retro: true,
        }
    }
}

/// The live sensor's retro-hunt: after each feed reload that published a
/// new snapshot, one thread hunts the store's history and sends the hits
/// into the sink's queue, like the workers' (alert log, store, metrics).
/// Hunts run one at a time; hits already sent by an earlier hunt are
/// remembered, as the store may not have committed them yet.
pub struct LiveRetro {
    store: PathBuf,
    units: Arc<Units>,
    options: RetroOptions,
    events: Mutex<Option<Sender<Event>>>,
    /// Held by the running hunt.
    reported: Mutex<Reported>,
    metrics: Arc<Metrics>,
}

impl LiveRetro {
    pub fn new(
        store: PathBuf,
        units: Arc<Units>,
        options: RetroOptions,
        metrics: Arc<Metrics>,
    ) -> Arc<LiveRetro> {
        Arc::new(LiveRetro {
            store,
            units,
            options,
            events: Mutex::new(None),
            reported: Mutex::new(Reported::new()),
            metrics,
        })
    }

    /// Where hits go while the sensor runs.
    pub fn connect(&self, tx: Sender<Event>) {
        if let Ok(mut g) = self.events.lock() {
            *g = Some(tx);
        }
    }

    /// The sensor stops: no new hunt starts, and a running one is waited
    /// for (it holds a sender of the sink's queue).
    pub fn disconnect(&self) {
        if let Ok(mut g) = self.events.lock() {
            *g = None;
        }
        drop(self.reported.lock());
    }

    /// Hunt with `snap` on a thread of its own.
    pub fn after_reload(self: &Arc<Self>, snap: Arc<Snapshot>) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("gw-retro".into())
            .spawn(move || me.run(&snap));
        if let Err(e) = spawned {
            tracing::error!("retro-hunt not started: {e}");
        }
    }

    fn run(&self, snap: &Snapshot) {
        let Ok(mut reported) = self.reported.lock() else {
            return;
        };
        let Some(tx) = self.events.lock().ok().and_then(|g| g.clone()) else {
            return;
        };
        let store = match Store::open_read_only(&self.store) {
            Ok(s) => s,
            Err(e) => return tracing::warn!("retro-hunt skipped: {e}"),
        };
        let sent = |hit: Hit| {
            let _ = tx.send(Event::Hit(Box::new(hit)));
        };
        match hunt(
            &store,
            snap,
            &self.units,
            &self.options,
            &mut reported,
            sent,
        ) {
            Ok(r) => {
                self.metrics.sink.retro_run(r.took.as_secs_f64());
                tracing::info!(
                    "retro-hunt: {} value(s) on a feed now, {} new hit(s) on {} host(s), {} already reported, {:.2} s",
                    r.matched,
                    r.hits,
                    r.hosts.len(),
                    r.known,
                    r.took.as_secs_f64()
                );
            }
            Err(e) => tracing::warn!("retro-hunt failed: {e}"),
        }
    }
}
