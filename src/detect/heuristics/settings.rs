//! `[heuristics]` in `gatewatch.toml`: switches, thresholds and allowlists.
//! Every key has a default (the numbers behind them are in
//! `docs/HEURISTICS.md`); [`Settings::problems`] lists every bad value.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;

/// Hosts and destinations a heuristic must not report, as written: hosts
/// or networks (`10.0.5.9`, `10.9.0.0/24`: an IT scanner, a monitoring
/// server), and remote addresses, networks or domains (a domain covers its
/// subdomains) that traffic to is never counted.
#[derive(Clone, Copy)]
pub(super) struct Allow<'a> {
    pub hosts: &'a [String],
    pub destinations: &'a [String],
}

macro_rules! allow_of {
    ($($t:ty),*) => {$(
        impl $t {
            pub(super) fn allow(&self) -> Allow<'_> {
                Allow { hosts: &self.allow_hosts, destinations: &self.allow_destinations }
            }
        }
    )*};
}
allow_of!(
    Settings,
    ScanSettings,
    DgaSettings,
    SinkholeSettings,
    TunnelSettings,
    BeaconSettings
);

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanSettings {
    pub enabled: bool,
    /// Attempts older than this are forgotten.
    pub window_s: u32,
    /// Distinct addresses tried on one port (horizontal scan).
    pub min_addresses: u32,
    /// Distinct ports tried on one address (vertical scan).
    pub min_ports: u32,
    /// Largest share of the targets that may answer with a SYN-ACK.
    pub max_answered: f64,
    /// How long a candidate waits for late SYN-ACKs before it is judged.
    pub confirm_ms: u32,
    /// Internal hosts or networks never reported.
    pub allow_hosts: Vec<String>,
    /// Remote addresses, networks or domains never counted.
    pub allow_destinations: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DgaSettings {
    pub enabled: bool,
    pub window_s: u32,
    /// Distinct registered domains among random-looking NXDOMAIN names.
    pub min_domains: u32,
    /// Shortest label judged for randomness.
    pub min_length: u32,
    /// Internal hosts or networks never reported.
    pub allow_hosts: Vec<String>,
    /// Remote addresses, networks or domains never counted.
    pub allow_destinations: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkholeSettings {
    pub enabled: bool,
    /// Internal hosts or networks never reported.
    pub allow_hosts: Vec<String>,
    /// Remote addresses, networks or domains never counted.
    pub allow_destinations: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TunnelSettings {
    pub enabled: bool,
    pub window_s: u32,
    /// Distinct long, high-entropy query names under one registered domain.
    pub min_names: u32,
    /// Characters below the registered domain for a name to count.
    pub min_length: u32,
    /// Bytes of those names together.
    pub min_bytes: u32,
    /// Seconds from the first counted name to the latest.
    pub min_span_s: u32,
    /// Zones added to the built-in exemptions (antivirus and reputation
    /// look-ups, reverse DNS, DNS blocklists).
    pub exempt_zones: Vec<String>,
    /// Internal hosts or networks never reported.
    pub allow_hosts: Vec<String>,
    /// Remote addresses, networks or domains never counted.
    pub allow_destinations: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BeaconSettings {
    pub enabled: bool,
    /// Connections in a row (their gaps are judged) before a report.
    pub min_connections: u32,
    pub min_period_s: u32,
    pub max_period_s: u32,
    /// Largest standard deviation of the gaps, as a share of their mean.
    pub max_jitter: f64,
    /// Count a beaconing host as an offender (default: a suspicion only).
    pub offender: bool,
    /// Internal hosts or networks never reported.
    pub allow_hosts: Vec<String>,
    /// Remote addresses, networks or domains never counted.
    pub allow_destinations: Vec<String>,
}

/// `[heuristics]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// All heuristics at once (each also has its own `enabled`).
    pub enabled: bool,
    /// Entries of each state table, all workers together (split evenly).
    pub max_tracked: usize,
    /// Internal hosts or networks never reported.
    pub allow_hosts: Vec<String>,
    /// Remote addresses, networks or domains never counted.
    pub allow_destinations: Vec<String>,
    pub scan: ScanSettings,
    pub dga: DgaSettings,
    pub sinkhole: SinkholeSettings,
    pub tunnel: TunnelSettings,
    pub beacon: BeaconSettings,
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            enabled: true,
            window_s: 300,
            min_addresses: 32,
            min_ports: 32,
            max_answered: 0.2,
            confirm_ms: 500,
            allow_hosts: Vec::new(),
            allow_destinations: Vec::new(),
        }
    }
}

impl Default for DgaSettings {
    fn default() -> Self {
        DgaSettings {
            enabled: true,
            window_s: 900,
            min_domains: 10,
            min_length: 8,
            allow_hosts: Vec::new(),
            allow_destinations: Vec::new(),
        }
    }
}

impl Default for SinkholeSettings {
    fn default() -> Self {
        SinkholeSettings {
            enabled: true,
            allow_hosts: Vec::new(),
            allow_destinations: Vec::new(),
        }
    }
}

impl Default for TunnelSettings {
    fn default() -> Self {
        TunnelSettings {
            enabled: true,
            window_s: 600,
            min_names: 40,
            min_length: 24,
            min_bytes: 2_000,
            min_span_s: 10,
            exempt_zones: Vec::new(),
            allow_hosts: Vec::new(),
            allow_destinations: Vec::new(),
        }
    }
}

impl Default for BeaconSettings {
    fn default() -> Self {
        BeaconSettings {
            enabled: true,
            min_connections: 10,
            min_period_s: 5,
            max_period_s: 6 * 3600,
            max_jitter: 0.1,
            offender: false,
            allow_hosts: Vec::new(),
            allow_destinations: Vec::new(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            max_tracked: 1 << 16,
            allow_hosts: Vec::new(),
            allow_destinations: Vec::new(),
            scan: ScanSettings::default(),
            dga: DgaSettings::default(),
            sinkhole: SinkholeSettings::default(),
            tunnel: TunnelSettings::default(),
            beacon: BeaconSettings::default(),
        }
    }
}

/// `host` or `host/len`: a bare address is a /32 or /128.
pub(super) fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A domain as written in an allowlist: lower case, no trailing dot, and
/// only the characters a host name has.
pub(super) fn parse_domain(s: &str) -> Option<String> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    ok.then_some(d)
}

impl Allow<'_> {
    fn problems(&self, at: &str, errs: &mut Vec<String>) {
        for h in self.hosts {
            if parse_net(h).is_none() {
                errs.push(format!(
                    "{at} allow_hosts: {h:?} is not an address or CIDR (e.g. 10.0.5.9 or 10.9.0.0/24)"
                ));
            }
        }
        for d in self.destinations {
            if parse_net(d).is_none() && parse_domain(d).is_none() {
                errs.push(format!(
                    "{at} allow_destinations: {d:?} is not an address, CIDR or domain"
                ));
            }
        }
    }
}

fn range<T: PartialOrd + std::fmt::Display>(
    errs: &mut Vec<String>,
    at: &str,
    key: &str,
    v: T,
    lo: T,
    hi: T,
) {
    if v < lo || v > hi {
        errs.push(format!("{at} {key} = {v} must be {lo}..={hi}"));
    }
}

/// The `[heuristics]` table of a TOML file, validated; every problem named
/// with the file (and line, for a syntax or type error).
pub fn load(path: &std::path::Path) -> Result<Settings, crate::intel::feeds::ConfigErrors> {
    use crate::intel::feeds::ConfigErrors;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors(vec![format!("{shown}: cannot read: {e}")]))?;
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        heuristics: Settings,
    }
    let f: File =
        toml::from_str(&text).map_err(|e| crate::intel::feeds::toml_error(&shown, &text, &e))?;
    let problems = f.heuristics.problems(&shown);
    if problems.is_empty() {
        Ok(f.heuristics)
    } else {
        Err(ConfigErrors(problems))
    }
}

impl Settings {
    /// Every bad value, each naming its table and key; `shown` is the file.
    pub fn problems(&self, shown: &str) -> Vec<String> {
        let mut e = Vec::new();
        let at = |t: &str| format!("{shown}: [heuristics{t}]");
        range(
            &mut e,
            &at(""),
            "max_tracked",
            self.max_tracked,
            1_024,
            1 << 26,
        );
        self.allow().problems(&at(""), &mut e);
        let s = &self.scan;
        let a = at(".scan");
        range(&mut e, &a, "window_s", s.window_s, 1, 86_400);
        range(&mut e, &a, "min_addresses", s.min_addresses, 2, 100_000);
        range(&mut e, &a, "min_ports", s.min_ports, 2, 65_535);
        range(&mut e, &a, "max_answered", s.max_answered, 0.0, 1.0);
        range(&mut e, &a, "confirm_ms", s.confirm_ms, 0, 60_000);
        s.allow().problems(&a, &mut e);
        let d = &self.dga;
        let a = at(".dga");
        range(&mut e, &a, "window_s", d.window_s, 1, 86_400);
        range(&mut e, &a, "min_domains", d.min_domains, 2, 100_000);
        range(&mut e, &a, "min_length", d.min_length, 4, 63);
        d.allow().problems(&a, &mut e);
        self.sinkhole.allow().problems(&at(".sinkhole"), &mut e);
        let t = &self.tunnel;
        let a = at(".tunnel");
        range(&mut e, &a, "window_s", t.window_s, 1, 86_400);
        range(&mut e, &a, "min_names", t.min_names, 2, 1_000_000);
        range(&mut e, &a, "min_length", t.min_length, 8, 250);
        range(&mut e, &a, "min_bytes", t.min_bytes, 0, u32::MAX);
        range(&mut e, &a, "min_span_s", t.min_span_s, 0, t.window_s);
        for z in &t.exempt_zones {
            if parse_domain(z).is_none() {
                e.push(format!("{a} exempt_zones: {z:?} is not a domain"));
            }
        }
        t.allow().problems(&a, &mut e);
        let b = &self.beacon;
        let a = at(".beacon");
        range(&mut e, &a, "min_connections", b.min_connections, 4, 13);
        range(
            &mut e,
            &a,
            "min_period_s",
            b.min_period_s,
            1,
            b.max_period_s,
        );
        range(&mut e, &a, "max_period_s", b.max_period_s, 1, 7 * 86_400);
        range(&mut e, &a, "max_jitter", b.max_jitter, 0.0, 1.0);
        b.allow().problems(&a, &mut e);
        e
    }
}
