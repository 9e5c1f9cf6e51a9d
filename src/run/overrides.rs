//! Settings given on the command line, put over the config file's.

use super::config::{Config, InterfaceConfig};
use crate::intel::feeds::ConfigErrors;
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Settings given on the command line. Each one that is set replaces the
/// config file's value; [`Config::apply`] is the only place that does it.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Interfaces to capture on, replacing the configured list (keeping the
    /// settings configured for the same name).
    pub interfaces: Vec<String>,
    pub metrics_listen: Option<String>,
    pub workers: Option<usize>,
    pub alerts: Option<PathBuf>,
    pub feeds: Option<PathBuf>,
    /// A snapshot file and its public key, replacing the configured ones.
    pub snapshot: Option<PathBuf>,
    pub snapshot_key: Option<PathBuf>,
    pub units: Option<PathBuf>,
    /// Internal networks, replacing the configured ones (or the defaults).
    pub internal: Vec<IpNet>,
    pub sensor_id: Option<String>,
    pub store: Option<PathBuf>,
    pub no_store: bool,
    pub summary_interval_s: Option<u64>,
    pub no_dns_correlation: bool,
    pub no_reassembly: bool,
    /// Internal DNS resolvers, replacing the configured ones.
    pub dns_resolvers: Vec<IpAddr>,
    pub heuristics: Option<crate::detect::heuristics::Settings>,
    pub no_heuristics: bool,
}

impl Config {
    /// The config file (the defaults without one), then `o` on top. The
    /// result is validated by [`load_inputs`], with the feeds and units.
    pub fn resolve(path: Option<&Path>, o: &Overrides) -> Result<Config, ConfigErrors> {
        let mut cfg = match path {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        cfg.apply(o);
        Ok(cfg)
    }

    /// Put the command line's settings over the file's.
    pub fn apply(&mut self, o: &Overrides) {
        self.apply_interfaces(&o.interfaces);
        let set = |dst: &mut PathBuf, v: &Option<PathBuf>| {
            if let Some(v) = v {
                *dst = v.clone();
            }
        };
        set(&mut self.alerts, &o.alerts);
        set(&mut self.feeds, &o.feeds);
        set(&mut self.units, &o.units);
        if o.snapshot.is_some() {
            self.snapshot = o.snapshot.clone();
            self.snapshot_key = o.snapshot_key.clone();
        }
        if let Some(v) = &o.metrics_listen {
            self.metrics.listen = v.clone();
        }
        if let Some(v) = o.workers {
            self.workers = v;
        }
        if let Some(v) = &o.sensor_id {
            self.sensor_id = v.clone();
        }
        if o.store.is_some() {
            self.store = o.store.clone();
        }
        if o.no_store {
            self.store = Some(PathBuf::new());
        }
        if let Some(v) = o.summary_interval_s {
            self.alert_summary_interval_s = v;
        }
        self.dns_correlation &= !o.no_dns_correlation;
        self.flows.reassembly &= !o.no_reassembly;
        if let Some(h) = &o.heuristics {
            self.heuristics = h.clone();
        }
        self.heuristics.enabled &= !o.no_heuristics;
        if !o.internal.is_empty() {
            self.internal_networks = Some(o.internal.iter().map(|n| n.to_string()).collect());
        }
        if !o.dns_resolvers.is_empty() {
            self.dns_resolvers = o.dns_resolvers.iter().map(|r| r.to_string()).collect();
        }
    }

    /// Interfaces named on the command line replace the configured ones,
    /// keeping any settings configured for the same name.
    fn apply_interfaces(&mut self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        self.interface = names
            .iter()
            .map(|n| {
                self.interface
                    .iter()
                    .find(|i| &i.name == n)
                    .cloned()
                    .unwrap_or_else(|| InterfaceConfig::named(n))
            })
            .collect();
    }
}
