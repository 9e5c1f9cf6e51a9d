//! `gatewatch.toml`: the sensor's configuration, validated at start-up with
//! every problem listed at once; the command line's [`Overrides`], applied in
//! one place ([`Config::resolve`]); and the engine options it gives.

pub use super::inputs::{FromSnapshot, Inputs, load_inputs};
pub use super::overrides::Overrides;
pub use crate::capture::live::InterfaceConfig;
use crate::detect::EngineOptions;
use crate::intel::feeds::ConfigErrors;
use crate::tcp::flow::FlowConfig;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Metrics listen address when none is configured: loopback only.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9477";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A file holding the token `/api/*` requests must present
    /// (`Authorization: Bearer ...`); without it the API answers this host
    /// only. Kept in a file (mode 0600) so it is in no config and no log.
    #[serde(default)]
    pub api_token_file: Option<PathBuf>,
}

fn default_listen() -> String {
    DEFAULT_METRICS.into()
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_listen(),
            api_token_file: None,
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
    /// A signed, compiled feed snapshot (`gatewatch feeds compile`) to
    /// match with instead of loading `feeds`; needs `snapshot_key`. A
    /// reload re-reads this file.
    #[serde(default)]
    pub snapshot: Option<PathBuf>,
    /// The public key (`gatewatch feeds keygen`) snapshot files must be
    /// signed with.
    #[serde(default)]
    pub snapshot_key: Option<PathBuf>,
    /// A snapshot file replaces the running one on reload only if it lists
    /// at least this share of the running one's indicators.
    #[serde(default = "default_min_fraction")]
    pub snapshot_min_fraction: f64,
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
    /// `[heuristics]`: scans, DGA, sinkhole answers, tunnels, beacons.
    #[serde(default)]
    pub heuristics: crate::detect::heuristics::Settings,
    /// `[hygiene]`: signs of cracked software per host.
    #[serde(default)]
    pub hygiene: crate::detect::hygiene::HygieneSettings,
    /// `[history]`: what hosts did, kept for the retro-hunt.
    #[serde(default)]
    pub history: crate::detect::history::HistorySettings,
    /// `[console]`: serve the web console from the sensor.
    #[serde(default)]
    pub console: Option<super::console::ConsoleConfig>,
    /// `[central]`: ship the store to the central PostgreSQL.
    #[serde(default)]
    pub central: Option<super::central::CentralConfig>,
}

/// `[flows]`: size and timeouts of the TCP flow table. A key left out takes
/// its value from [`FlowConfig::default`].
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
    /// A UDP flow (not DNS or the name protocols) ends after this idle.
    pub udp_timeout_s: u32,
    /// MiB all flows together may hold copied for reassembly.
    pub reassembly_mib: usize,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        let f = FlowConfig::default();
        FlowsConfig {
            reassembly: true,
            max: f.max_flows,
            embryonic_timeout_s: f.embryonic_s,
            established_timeout_s: f.established_s,
            closed_timeout_s: f.closed_s,
            hard_timeout_s: f.hard_s,
            udp_timeout_s: f.udp_s,
            reassembly_mib: f.reassembly_bytes >> 20,
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

fn default_min_fraction() -> f64 {
    crate::intel::snap::swap::MIN_FRACTION
}
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
        Config::parse(
            &shown.to_string(),
            &text,
            path.parent().unwrap_or(Path::new(".")),
        )
    }

    /// [`Config::load`] of the text `text` of the file shown as `shown`,
    /// relative paths resolved against `base`.
    pub fn parse(shown: &str, text: &str, base: &Path) -> Result<Config, ConfigErrors> {
        let mut c: Config =
            toml::from_str(text).map_err(|e| crate::intel::feeds::toml_error(shown, text, &e))?;
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
        let h = &mut c.hygiene;
        for p in [
            &mut c.snapshot,
            &mut c.snapshot_key,
            &mut c.metrics.api_token_file,
            &mut h.crack_list,
            &mut h.antivirus_list,
        ] {
            if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        }
        let lists = h.load_lists().err().unwrap_or_default();
        match c.validate(shown) {
            Err(mut e) if !lists.is_empty() => {
                e.0.extend(lists);
                Err(e)
            }
            Ok(()) if !lists.is_empty() => Err(ConfigErrors(lists)),
            r => r.map(|()| c),
        }
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
        if let Err(e) = self.api_token() {
            errs.push(format!("{shown}: [metrics] {e}"));
        }
        if let Some(c) = &self.console {
            errs.extend(c.problems(shown, self.store_path().is_some()));
        }
        if let Some(c) = &self.central {
            errs.extend(c.problems(shown, self.store_path().is_some()));
        }
        errs.extend(self.snapshot_problems(shown));
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
        errs.extend(self.interface_problems(shown));
        errs.extend(self.heuristics.problems(shown));
        let history = self.history.problems();
        errs.extend(history.into_iter().map(|p| format!("{shown}: {p}")));
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errs))
        }
    }

    /// What is wrong with the snapshot settings, one line each.
    fn snapshot_problems(&self, shown: &str) -> Vec<String> {
        let mut errs = Vec::new();
        match (&self.snapshot, &self.snapshot_key) {
            (Some(s), None) => errs.push(format!(
                "{shown}: snapshot = {:?} needs snapshot_key, the public key its signature is checked with",
                s.display().to_string()
            )),
            (None, Some(_)) => errs.push(format!(
                "{shown}: snapshot_key is set but snapshot is not (set snapshot to the .snap file)"
            )),
            _ => {}
        }
        if !(0.0..=1.0).contains(&self.snapshot_min_fraction) {
            errs.push(format!("{shown}: snapshot_min_fraction must be 0..=1"));
        }
        errs
    }

    /// What is wrong with the `[[interface]]` tables, one line each.
    fn interface_problems(&self, shown: &str) -> Vec<String> {
        let mut errs = Vec::new();
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
        errs
    }

    pub fn resolvers(&self) -> Vec<IpAddr> {
        self.dns_resolvers
            .iter()
            .filter_map(|r| r.parse().ok())
            .collect()
    }

    /// How the engines of this run are set up: the switches and the whole
    /// flow table (the recipe splits it over the workers).
    pub fn engine_options(&self) -> EngineOptions {
        let f = &self.flows;
        EngineOptions {
            correlate: self.dns_correlation,
            reassemble: f.reassembly,
            resolvers: self.resolvers(),
            heuristics: self.heuristics.clone(),
            hygiene: self.hygiene.clone(),
            history: self.history.enabled && self.store_path().is_some(),
            history_entries: crate::detect::history::ENTRIES,
            flows: FlowConfig {
                max_flows: f.max,
                embryonic_s: f.embryonic_timeout_s,
                established_s: f.established_timeout_s,
                closed_s: f.closed_timeout_s,
                hard_s: f.hard_timeout_s,
                udp_s: f.udp_timeout_s,
                reassembly_bytes: f.reassembly_mib << 20,
            },
        }
    }

    pub fn internal(&self) -> Vec<IpNet> {
        match &self.internal_networks {
            Some(v) => v.iter().filter_map(|s| s.parse().ok()).collect(),
            None => crate::detect::attribution::default_internal(),
        }
    }

    /// The API token from `[metrics] api_token_file`, if one is set.
    pub fn api_token(&self) -> Result<Option<String>, String> {
        let Some(p) = &self.metrics.api_token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(p)
            .map_err(|e| format!("api_token_file {}: cannot read: {e}", p.display()))?;
        let token = text.trim();
        if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "api_token_file {}: the token must be one line of at least 16 characters \
                 without spaces (e.g. `openssl rand -hex 24 > {}`)",
                p.display(),
                p.display()
            ));
        }
        Ok(Some(token.to_string()))
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
            .listen
            .parse()
            .unwrap_or_else(|_| DEFAULT_METRICS.parse().expect("default address"))
    }

    pub fn workers(&self) -> usize {
        if self.workers == 0 {
            crate::run::pipeline::Sizing::default_workers()
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
        let f = crate::testkit::recipe_with(
            crate::intel::Snapshot::empty(),
            crate::testkit::units_from("code,name,cidrs\n"),
            c.engine_options(),
        )
        .workers(2)
        .flow_share();
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
    fn snapshot_settings_are_checked_and_resolved() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.toml");
        std::fs::write(&p, "snapshot = \"f.snap\"\nsnapshot_min_fraction = 2.0\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("needs snapshot_key"), "{e}");
        assert!(e.contains("snapshot_min_fraction must be 0..=1"), "{e}");
        std::fs::write(&p, "snapshot = \"f.snap\"\nsnapshot_key = \"k.pub\"\n").unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.snapshot, Some(d.path().join("f.snap")));
        assert_eq!(c.snapshot_key, Some(d.path().join("k.pub")));
        assert_eq!(c.snapshot_min_fraction, 0.5);
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
