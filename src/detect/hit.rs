//! What the engine produces: hits, the flows that had them, observations,
//! and the [`Sink`] they are handed to.

use super::HitSource;
use super::attribution::Unit;
use super::heuristics::Behaviour;
use super::history::HistoryItem;
use super::hygiene::HygieneEvent;
use crate::intel::Indicator;
use crate::packet::FlowKey;
use crate::protocols::dns;
use crate::protocols::hostnames::HostName;
use crate::protocols::http;
use crate::tcp::flow::Mark;
use std::net::IpAddr;
use std::sync::Arc;

/// Protocol details of a hit, mirrored into EVE's `dns`/`tls`/`http` objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Context {
    Dns {
        id: u16,
        rrname: Box<str>,
        rrtype: Box<str>,
        response: bool,
    },
    Tls {
        sni: Box<str>,
    },
    /// The server name of a ClientHello carried in QUIC Initials.
    Quic {
        sni: Box<str>,
    },
    Http {
        method: Box<str>,
        hostname: Option<Box<str>>,
        url: Box<str>,
    },
    None,
}

/// One match, attributed to an internal host.
#[derive(Clone, Debug)]
pub struct Hit {
    pub ts_ns: i64,
    pub flow: FlowKey,
    pub vlan: Option<u16>,
    /// The internal end: the machine to clean.
    pub host: IpAddr,
    pub unit: Arc<Unit>,
    pub source: HitSource,
    pub indicator: Indicator,
    /// What was seen on the wire (query name, SNI, URL, address).
    pub observed: Box<str>,
    /// True when the internal host was the one that started the exchange.
    pub outbound: bool,
    pub context: Context,
    /// The TCP flow the hit happened in (EVE `flow_id`, repeated in the
    /// flow's `flow` event).
    pub flow_id: Option<u64>,
    /// DNS hit: the host is a configured internal resolver asking for some
    /// client. Correlated hit: the address came from such a resolver's
    /// lookup.
    pub via_resolver: bool,
    /// The host's name as last announced on the wire (DHCP, NetBIOS, mDNS),
    /// exactly as seen.
    pub host_name: Option<Arc<str>>,
    /// Set when a heuristic, not a list, found it.
    pub behaviour: Option<Box<Behaviour>>,
    /// Found by the retro-hunt (`run::retro`) in the history, not in a packet.
    pub retro: bool,
}

impl Hit {
    /// Whether the host counts as an offender for this hit: every list hit
    /// does; a heuristic's only when it says so (a beacon is a suspicion).
    pub fn offender(&self) -> bool {
        self.behaviour.as_ref().is_none_or(|b| b.offender)
    }

    pub fn heuristic(&self) -> Option<&'static str> {
        self.behaviour.as_ref().map(|b| b.heuristic.as_str())
    }
}

/// What the flow event repeats from the flow's hits: the engine's [`Mark`]
/// on a TCP flow.
#[derive(Clone, Debug)]
pub struct FlowAlert {
    pub host: IpAddr,
    pub unit: Arc<Unit>,
    /// Distinct indicators the flow hit, first ones first (at most 8).
    pub indicators: Vec<Box<str>>,
    pub vlan: Option<u16>,
    pub hits: u32,
}

const MAX_FLOW_INDICATORS: usize = 8;

impl FlowAlert {
    /// Count a hit on `indicator`, listing it if it is new.
    pub(super) fn add(&mut self, indicator: &str) {
        self.hits += 1;
        if self.indicators.len() < MAX_FLOW_INDICATORS
            && !self.indicators.iter().any(|i| **i == *indicator)
        {
            self.indicators.push(indicator.into());
        }
    }
}

impl Mark for FlowAlert {
    /// The session's next report is still about the hosts and indicators it
    /// hit (a repeat in the flow raises no new alert), with its own count.
    fn carry_over(&self) -> Self {
        FlowAlert {
            hits: 0,
            ..self.clone()
        }
    }
}

/// A TCP flow that had hits, ended: its totals and what it hit.
pub type FlowRecord = crate::tcp::flow::FlowRecord<FlowAlert>;

/// Protocol observations, for logging and ground-truth tests. Only built when
/// the sink asks for them.
#[derive(Debug)]
pub enum Observation<'a> {
    Dns(&'a dns::Message),
    Tls { sni: Option<&'a str> },
    Http(&'a http::Request<'a>),
}

/// What a worker sends to the sink stage.
#[derive(Debug)]
pub enum Event {
    Hit(Box<Hit>),
    Flow(Box<FlowRecord>),
    /// A name an internal address announced, at packet time.
    Name(i64, Box<HostName>),
    /// A host's first sign of cracked software (not a hit).
    Hygiene(Box<HygieneEvent>),
    /// What hosts did, for the retro-hunt's history: one batch.
    History(Vec<HistoryItem>),
}

/// Where hits (and optionally observations) go.
pub trait Sink {
    fn hit(&mut self, hit: Hit);
    /// A TCP flow that had hits has ended: its totals.
    fn flow(&mut self, _flow: FlowRecord) {}
    /// An internal address announced its name (new, changed, or again
    /// after a while).
    fn host_name(&mut self, _ts_ns: i64, _name: HostName) {}
    /// A host's first observation of a hygiene signal.
    fn hygiene(&mut self, _e: HygieneEvent) {}
    /// What internal hosts did, new to this worker's memory that hour: a
    /// batch (see [`super::history`]).
    fn history(&mut self, _items: Vec<HistoryItem>) {}
    fn wants_observations(&self) -> bool {
        false
    }
    fn observe(&mut self, _ts_ns: i64, _flow: &FlowKey, _o: &Observation<'_>) {}
}

impl Sink for Vec<Hit> {
    fn hit(&mut self, hit: Hit) {
        self.push(hit)
    }
}
