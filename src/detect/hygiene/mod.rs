//! Campaign hygiene seen from the network (issue 16): signs of cracked
//! software per host, reported as estimates with their basis, never as
//! infections. The first observation of a signal per host is an event
//! (EVE `hygiene`).
//!
//! So far: Windows/Office KMS activation (TCP 1688) against a public
//! address, the network sign of a KMS activator (a licensed organisation's
//! KMS host is internal). Crack and antivirus-update domains come with
//! their shipped lists.

use super::attribution::Unit;
use super::engine::Engine;
use super::heuristics::table::{Keep, Table};
use super::{Sink, heuristics};
use serde::Deserialize;
use std::net::IpAddr;
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
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::KmsActivationPublic => "kms_activation_public",
        }
    }

    /// What the signal suggests, and why it is only an estimate.
    pub fn basis(self) -> &'static str {
        match self {
            Signal::KmsActivationPublic => {
                "Windows/Office activation against a KMS server on a public address: the usual sign of a KMS activator (cracked licence); an organisation's own KMS host is internal"
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
    /// The server the host talked to.
    pub server: IpAddr,
    pub port: u16,
}

/// `[hygiene]` in `gatewatch.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HygieneSettings {
    /// KMS activation against a public address.
    pub kms_activation: bool,
}

impl Default for HygieneSettings {
    fn default() -> Self {
        HygieneSettings {
            kms_activation: true,
        }
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
        let n = if settings.kms_activation { HOSTS } else { 64 };
        Hygiene {
            settings,
            seen: Table::new(n),
        }
    }

    /// True when (host, signal) was not reported in the last day; marks it.
    fn first(&mut self, host: IpAddr, signal: Signal, ts: i64) -> bool {
        let s = self
            .seen
            .entry(heuristics::key((host, signal)), ts, REPORT_AGAIN_NS);
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
        if !self.hygiene.first(host, signal, ts) {
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
        });
    }
}
