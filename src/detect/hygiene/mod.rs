//! Campaign hygiene seen from the network (issue 16): signs of cracked
//! software per host, reported as estimates with their basis, never as
//! infections. The first observation of a signal per host is an event
//! (EVE `hygiene`).
//!
//! - KMS activation (TCP 1688) against a public address: the network sign
//!   of a KMS activator (a licensed organisation's KMS host is internal);
//! - a name on the shipped crack/keygen/activator list ([`lists`]);
//! - a name on the antivirus vendors' update list: the vendor's product
//!   is there and updating (its absence is what the report estimates).
//!
//! Names are checked where the engine matches them against the feeds (DNS
//! questions, TLS/QUIC server names, HTTP Host), from internal clients; a
//! configured resolver's look-ups are not its own and are skipped.

pub mod lists;

use super::attribution::Unit;
use super::engine::{Engine, Pkt};
use super::heuristics::table::{Keep, Table};
use super::{HitSource, Sink, heuristics};
use lists::{HygieneLists, Listed};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The Key Management Service port Windows and Office activate against.
pub const KMS_PORT: u16 = 1688;
/// Hosts remembered per engine; one forgotten may be reported again.
const HOSTS: usize = 16_384;
/// A signal is reported again after this long (so a day's log shows who
/// still does it).
const REPORT_AGAIN_NS: i64 = 24 * 3_600 * 1_000_000_000;

/// What was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// KMS activation (TCP 1688) against a public address.
    KmsActivationPublic,
    /// A name on the crack/keygen/activator list.
    CrackDomain,
    /// A name on an antivirus vendor's update list.
    AntivirusUpdate,
}

impl Signal {
    pub const ALL: [Signal; 3] = [
        Signal::KmsActivationPublic,
        Signal::CrackDomain,
        Signal::AntivirusUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::KmsActivationPublic => "kms_activation_public",
            Signal::CrackDomain => "crack_domain",
            Signal::AntivirusUpdate => "antivirus_update",
        }
    }

    /// A sign of cracked software (the other signal says antivirus is there).
    pub fn cracked(self) -> bool {
        !matches!(self, Signal::AntivirusUpdate)
    }

    /// What the signal suggests, and why it is only an estimate.
    pub fn basis(self) -> &'static str {
        match self {
            Signal::KmsActivationPublic => {
                "Windows/Office activation against a KMS server on a public address: the usual sign of a KMS activator (cracked licence); an organisation's own KMS host is internal"
            }
            Signal::CrackDomain => {
                "a name on the shipped list of crack/keygen/activator download sites (feeds/hygiene): the machine visited or resolved one; it may not have installed anything"
            }
            Signal::AntivirusUpdate => {
                "a name on the shipped list of antivirus vendors' update servers (feeds/hygiene): that vendor's product is installed and updating on the machine"
            }
        }
    }
}

/// One host's first observation of a signal.
#[derive(Clone, Debug)]
pub struct HygieneEvent {
    pub ts_ns: i64,
    pub host: IpAddr,
    pub unit: Arc<Unit>,
    pub host_name: Option<Arc<str>>,
    pub signal: Signal,
    /// The server the host talked to (for a name seen in DNS, the DNS
    /// server).
    pub server: IpAddr,
    pub port: u16,
    /// The name seen, for the domain signals.
    pub domain: Option<Box<str>>,
    /// The antivirus vendor, for `antivirus_update`.
    pub vendor: Option<Arc<str>>,
}

impl HygieneEvent {
    /// What was seen, in one string: the domain, else `address:port`.
    pub fn evidence(&self) -> String {
        match &self.domain {
            Some(d) => d.to_string(),
            None => std::net::SocketAddr::new(self.server, self.port).to_string(),
        }
    }
}

/// `[hygiene]` in `gatewatch.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HygieneSettings {
    /// KMS activation against a public address.
    pub kms_activation: bool,
    /// Names on the crack/keygen/activator list.
    pub crack_domains: bool,
    /// Antivirus update traffic.
    pub antivirus: bool,
    /// A crack-domain list replacing the shipped one (one domain a line).
    pub crack_list: Option<PathBuf>,
    /// An antivirus list replacing the shipped one (`vendor,domain,source`).
    pub antivirus_list: Option<PathBuf>,
    /// Both lists, loaded by [`HygieneSettings::load_lists`].
    #[serde(skip)]
    pub lists: Arc<HygieneLists>,
}

impl Default for HygieneSettings {
    fn default() -> Self {
        HygieneSettings {
            kms_activation: true,
            crack_domains: true,
            antivirus: true,
            crack_list: None,
            antivirus_list: None,
            lists: Arc::new(HygieneLists::shipped()),
        }
    }
}

impl HygieneSettings {
    /// Load the lists the settings name (the shipped ones otherwise); every
    /// problem is returned, each naming its file and line.
    pub fn load_lists(&mut self) -> Result<(), Vec<String>> {
        let l = HygieneLists::load(self.crack_list.as_deref(), self.antivirus_list.as_deref())?;
        self.lists = Arc::new(l);
        Ok(())
    }

    fn names(&self) -> bool {
        self.crack_domains || self.antivirus
    }
}

#[derive(Clone, Copy, Default)]
struct Seen {
    at: i64,
}

impl Keep for Seen {}

/// One engine's memory of what it reported.
pub struct Hygiene {
    settings: HygieneSettings,
    seen: Table<Seen>,
}

impl Hygiene {
    pub fn new(settings: HygieneSettings) -> Hygiene {
        let on = settings.kms_activation || settings.names();
        let n = if on { HOSTS } else { 64 };
        Hygiene {
            settings,
            seen: Table::new(n),
        }
    }

    /// True when (host, signal) was not reported in the last day; marks it.
    fn first(&mut self, host: IpAddr, signal: Signal, detail: &str, ts: i64) -> bool {
        let s = self
            .seen
            .entry(heuristics::key((host, signal, detail)), ts, REPORT_AGAIN_NS);
        let new = s.at == 0 || ts.saturating_sub(s.at) >= REPORT_AGAIN_NS;
        if new {
            s.at = ts;
        }
        new
    }
}

impl Engine {
    /// A SYN from internal `host` to external `server:port`.
    pub(super) fn hygiene_syn<S: Sink>(
        &mut self,
        ts: i64,
        host: IpAddr,
        server: IpAddr,
        port: u16,
        sink: &mut S,
    ) {
        let signal = match port {
            KMS_PORT if self.hygiene.settings.kms_activation => Signal::KmsActivationPublic,
            _ => return,
        };
        if !self.hygiene.first(host, signal, "", ts) {
            return;
        }
        self.stats.hygiene_events += 1;
        sink.hygiene(HygieneEvent {
            ts_ns: ts,
            host,
            unit: self.units.unit_of(host).clone(),
            host_name: self.known.get(host),
            signal,
            server,
            port,
            domain: None,
            vendor: None,
        });
    }

    /// The name in `self.name`, seen from `client` (see `match_name`).
    pub(super) fn hygiene_name<S: Sink>(
        &mut self,
        client: IpAddr,
        source: HitSource,
        p: &Pkt,
        sink: &mut S,
    ) {
        let h = &self.hygiene.settings;
        let dns = matches!(source, HitSource::DnsQuery | HitSource::DnsAnswer);
        if !h.names() || (dns && p.via_resolver) {
            return;
        }
        let (signal, vendor) = match h.lists.find(self.name.as_str()).map(|(_, l)| l) {
            Some(Listed::Crack) if h.crack_domains => (Signal::CrackDomain, None),
            Some(Listed::Antivirus(v)) if h.antivirus => (Signal::AntivirusUpdate, Some(v.clone())),
            _ => return,
        };
        if !self.units.is_internal(client) {
            return;
        }
        let detail = vendor.as_deref().unwrap_or("");
        if !self.hygiene.first(client, signal, detail, p.ts) {
            return;
        }
        self.stats.hygiene_events += 1;
        let server = if client == p.flow.src {
            p.flow.dst
        } else {
            p.flow.src
        };
        let port = if client == p.flow.src {
            p.flow.dst_port
        } else {
            p.flow.src_port
        };
        sink.hygiene(HygieneEvent {
            ts_ns: p.ts,
            host: client,
            unit: self.units.unit_of(client).clone(),
            host_name: self.known.get(client),
            signal,
            server,
            port,
            domain: Some(self.name.as_str().into()),
            vendor,
        });
    }
}
