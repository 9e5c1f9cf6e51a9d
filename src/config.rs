//! `gatewatch.toml`: the sensor's configuration, validated at start-up with
//! every problem listed at once.

use crate::intel::feeds::ConfigErrors;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Metrics listen address when none is configured: loopback only.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9477";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    pub name: String,
    #[serde(default = "default_snaplen")]
    pub snaplen: i32,
    #[serde(default = "default_buffer_mib")]
    pub buffer_mib: i32,
    #[serde(default = "yes")]
    pub promisc: bool,
    #[serde(default)]
    pub filter: Option<String>,
}

fn default_snaplen() -> i32 {
    65535
}
fn default_buffer_mib() -> i32 {
    64
}
fn yes() -> bool {
    true
}

impl InterfaceConfig {
    pub fn named(name: &str) -> Self {
        InterfaceConfig {
            name: name.into(),
            snaplen: default_snaplen(),
            buffer_mib: default_buffer_mib(),
            promisc: true,
            filter: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    DEFAULT_METRICS.into()
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_listen(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_sensor")]
    pub sensor_id: String,
    #[serde(default = "default_feeds")]
    pub feeds: PathBuf,
    #[serde(default = "default_units")]
    pub units: PathBuf,
    #[serde(default = "default_alerts")]
    pub alerts: PathBuf,
    /// Offender store (SQLite). Unset: `gatewatch.db` next to the alert
    /// log; `store = ""` turns it off. Read it through [`Config::store_path`].
    #[serde(default)]
    pub store: Option<PathBuf>,
    /// Days of raw alerts kept in the store (aggregates are kept for good).
    #[serde(default = "default_retention")]
    pub store_retention_days: u32,
    /// Repeated hits of one (host, indicator) pair: the alert log gets the
    /// first, then one `alert_summary` with counts per this many seconds;
    /// 0 writes every hit. Metrics and the store count every hit.
    #[serde(default = "default_summary")]
    pub alert_summary_interval_s: u64,
    /// DNS-to-connection correlation: a flow to an address a host got in an
    /// answer for a listed domain is a hit on that domain.
    #[serde(default = "default_true")]
    pub dns_correlation: bool,
    /// Reload the feeds when the feeds file or a feed file changes
    /// (SIGHUP and `POST /api/reload` always work).
    #[serde(default = "default_true")]
    pub watch_feeds: bool,
    /// Internal DNS resolvers. Their lookups cross the gateway for the hosts
    /// behind them: DNS hits are blamed on the resolver and marked
    /// `via_resolver`, and the addresses they get for listed names match
    /// whichever internal host connects to them.
    #[serde(default)]
    pub dns_resolvers: Vec<String>,
    /// The TCP flow table.
    #[serde(default)]
    pub flows: FlowsConfig,
    #[serde(default)]
    pub internal_networks: Option<Vec<String>>,
    /// 0 = cores minus one, at least one.
    #[serde(default)]
    pub workers: usize,
    #[serde(default = "default_queue")]
    pub queue_batches: usize,
    #[serde(default = "default_batch")]
    pub batch_packets: usize,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub interface: Vec<InterfaceConfig>,
}

/// `[flows]`: size and timeouts of the TCP flow table. A key left out takes
/// its value from [`crate::flow::FlowConfig::default`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Track TCP flows and reassemble segments (default on). Off: each
    /// segment is read alone, no `flow` events.
    pub reassembly: bool,
    /// Flows tracked at once, all workers together (split evenly).
    pub max: usize,
    pub embryonic_timeout_s: u32,
    pub established_timeout_s: u32,
    pub closed_timeout_s: u32,
    pub hard_timeout_s: u32,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        let f = crate::flow::FlowConfig::default();
        FlowsConfig {
            reassembly: true,
            max: f.max_flows,
            embryonic_timeout_s: f.embryonic_s,
            established_timeout_s: f.established_s,
            closed_timeout_s: f.closed_s,
            hard_timeout_s: f.hard_s,
        }
    }
}

fn default_sensor() -> String {
    "gatewatch".into()
}
fn default_feeds() -> PathBuf {
    "feeds/feeds.toml".into()
}
fn default_units() -> PathBuf {
    "feeds/units.csv".into()
}
/// Where `gatewatch hosts` looks for the store unless told.
pub const DEFAULT_STORE: &str = "gatewatch-data/gatewatch.db";
/// The store's file name next to the alert log.
pub const STORE_FILE: &str = "gatewatch.db";

fn default_summary() -> u64 {
    300
}
fn default_true() -> bool {
    true
}
fn default_retention() -> u32 {
    30
}
fn default_alerts() -> PathBuf {
    "gatewatch-data/alerts.jsonl".into()
}
fn default_queue() -> usize {
    512
}
fn default_batch() -> usize {
    64
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl Config {
    /// The offender store's path, `None` when turned off (or when alerts go
    /// to standard output and no store is configured).
    pub fn store_path(&self) -> Option<PathBuf> {
        match &self.store {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p.clone()),
            None if self.alerts.as_os_str() == "-" => None,
            None => Some(
                self.alerts
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(STORE_FILE),
            ),
        }
    }

    /// Read and validate; relative paths are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors(vec![format!("{shown}: cannot read config: {e}")]))?;
        let mut c: Config = toml::from_str(&text)
            .map_err(|e| crate::intel::feeds::toml_error(&shown.to_string(), &text, &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut c.feeds, &mut c.units, &mut c.alerts] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = &mut c.store
            && !p.as_os_str().is_empty()
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
        c.validate(&shown.to_string())?;
        Ok(c)
    }

    /// Check everything that can be checked before opening anything.
    pub fn validate(&self, shown: &str) -> Result<(), ConfigErrors> {
        let mut errs = Vec::new();
        if self.sensor_id.trim().is_empty() {
            errs.push(format!("{shown}: sensor_id is empty"));
        }
        if self.workers > 256 {
            errs.push(format!(
                "{shown}: workers = {} is more than 256",
                self.workers
            ));
        }
        if !(1..=100_000).contains(&self.queue_batches) {
            errs.push(format!("{shown}: queue_batches must be 1..=100000"));
        }
        if !(1..=4096).contains(&self.batch_packets) {
            errs.push(format!("{shown}: batch_packets must be 1..=4096"));
        }
        if self.metrics.listen.parse::<SocketAddr>().is_err() {
            errs.push(format!(
                "{shown}: [metrics] listen = {:?} is not an address:port (e.g. {DEFAULT_METRICS})",
                self.metrics.listen
            ));
        }
        for r in &self.dns_resolvers {
            if r.parse::<IpAddr>().is_err() {
                errs.push(format!(
                    "{shown}: dns_resolvers: {r:?} is not an IP address (list each resolver's address)"
                ));
            }
        }
        let f = &self.flows;
        if !(1_000..=100_000_000).contains(&f.max) {
            errs.push(format!("{shown}: [flows] max must be 1000..=100000000"));
        }
        for (k, v) in [
            ("embryonic_timeout_s", f.embryonic_timeout_s),
            ("established_timeout_s", f.established_timeout_s),
            ("closed_timeout_s", f.closed_timeout_s),
            ("hard_timeout_s", f.hard_timeout_s),
        ] {
            if !(1..=604_800).contains(&v) {
                errs.push(format!("{shown}: [flows] {k} must be 1..=604800 seconds"));
            }
        }
        for n in self.internal_networks.iter().flatten() {
            if n.parse::<IpNet>().is_err() {
                errs.push(format!("{shown}: internal_networks: {n:?} is not a CIDR"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for i in &self.interface {
            if i.name.is_empty() {
                errs.push(format!("{shown}: an [[interface]] has an empty name"));
            }
            if !names.insert(i.name.clone()) {
                errs.push(format!("{shown}: interface {:?} listed twice", i.name));
            }
            if !(64..=262_144).contains(&i.snaplen) {
                errs.push(format!(
                    "{shown}: interface {:?}: snaplen must be 64..=262144",
                    i.name
                ));
            }
            if !(1..=4096).contains(&i.buffer_mib) {
                errs.push(format!(
                    "{shown}: interface {:?}: buffer_mib must be 1..=4096",
                    i.name
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errs))
        }
    }

    pub fn resolvers(&self) -> Vec<IpAddr> {
        self.dns_resolvers
            .iter()
            .filter_map(|r| r.parse().ok())
            .collect()
    }

    /// One worker's share of the flow table.
    pub fn flow_config(&self, workers: usize) -> crate::flow::FlowConfig {
        let f = &self.flows;
        crate::flow::FlowConfig {
            max_flows: (f.max / workers.max(1)).max(1),
            embryonic_s: f.embryonic_timeout_s,
            established_s: f.established_timeout_s,
            closed_s: f.closed_timeout_s,
            hard_s: f.hard_timeout_s,
        }
    }

    pub fn internal(&self) -> Vec<IpNet> {
        match &self.internal_networks {
            Some(v) => v.iter().filter_map(|s| s.parse().ok()).collect(),
            None => crate::attribution::default_internal(),
        }
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
            .listen
            .parse()
            .unwrap_or_else(|_| DEFAULT_METRICS.parse().expect("default address"))
    }

    pub fn workers(&self) -> usize {
        if self.workers == 0 {
            crate::pipeline::Sizing::default_workers()
        } else {
            self.workers
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback() {
        let c = Config::default();
        c.validate("x").unwrap();
        assert!(c.metrics_addr().ip().is_loopback());
        assert!(c.workers() >= 1);
    }

    #[test]
    fn a_partial_flows_table_keeps_the_other_defaults() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.toml");
        std::fs::write(&p, "[flows]\nmax = 4000\n").unwrap();
        let c = Config::load(&p).unwrap();
        let f = c.flow_config(2);
        assert_eq!(f.max_flows, 2000);
        assert_eq!(f.embryonic_s, 30);
        assert_eq!(f.hard_s, 3600);
        assert!(c.flows.reassembly);
    }

    #[test]
    fn all_problems_listed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.toml");
        std::fs::write(
            &p,
            "workers = 1000\nbatch_packets = 0\ninternal_networks = [\"10.0.0.0/33\"]\ndns_resolvers = [\"10.0.0.x\"]\n[flows]\nmax = 5\nhard_timeout_s = 0\n[metrics]\nlisten = \"nowhere\"\n[[interface]]\nname = \"eth1\"\nsnaplen = 10\n[[interface]]\nname = \"eth1\"\n",
        )
        .unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        for want in [
            "more than 256",
            "batch_packets",
            "not a CIDR",
            "not an address:port",
            "listed twice",
            "snaplen",
            "\"10.0.0.x\" is not an IP address",
            "[flows] max",
            "[flows] hard_timeout_s",
        ] {
            assert!(e.contains(want), "{want} missing in {e}");
        }
    }

    #[test]
    fn unknown_key_names_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.toml");
        std::fs::write(&p, "sensor_id = \"a\"\nworkerz = 2\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("g.toml:2:"), "{e}");
    }
}
