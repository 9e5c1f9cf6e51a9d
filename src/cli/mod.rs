//! Command-line interface: argument parsing and the commands' glue, one file
//! per command. Everything here is orchestration; the work lives in the
//! layers below. Settings that also exist in `gatewatch.toml` become
//! [`Overrides`] and reach the run through [`Config::resolve`], so replay,
//! bench and the live sensor read them the same way.

mod bench;
mod central;
mod check;
mod export;
mod feeds;
mod hosts;
mod publish;
mod replay;
mod report;
mod retro;
mod run;
mod serve;
mod ship;
mod users;

use crate::run::config::{Config, Overrides};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code when the run finished but some input was skipped.
pub const EXIT_SKIPPED: u8 = 3;

/// Queue between the sink and the store writer, in hits.
const STORE_QUEUE: usize = 65_536;

#[derive(Parser, Debug)]
#[command(
    name = "gatewatch",
    version,
    about = "Find and attribute malware-infected hosts from gateway traffic"
)]
pub struct Cli {
    /// Log level filter (error, warn, info, debug, trace), or RUST_LOG syntax.
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Replay pcap/pcapng files (optionally .gz) and write alerts.
    Replay(replay::ReplayArgs),
    /// List offender hosts per unit from the offender store (CSV, JSON, XLSX).
    Export(export::ExportArgs),
    /// Validate the feeds and units files and print what they load.
    Check(IntelArgs),
    /// Feeds: report per feed (`feeds check`), sign and compile them into a
    /// snapshot file (`feeds keygen`, `feeds compile`), publish it on the
    /// central (`feeds publish`).
    #[command(subcommand)]
    Feeds(feeds::FeedsCmd),
    /// Capture live on the mirror port until SIGINT/SIGTERM.
    Run(run::RunArgs),
    /// Push capture files through the full multi-worker pipeline and report
    /// packets/s, Gbit/s, drops and peak RSS against a bare read loop.
    Bench(bench::BenchArgs),
    /// Offender hosts in the store: mark a host cleaned.
    #[command(subcommand)]
    Hosts(hosts::HostsCmd),
    /// Campaign report per unit for a period (md, html or xlsx), after the
    /// form "Mẫu thống kê, báo cáo kết quả triển khai".
    Report(report::ReportArgs),
    /// Hunt the store's history with the feeds as they are now: past
    /// contacts with indicators learned since become hits marked `retro`.
    Retro(retro::RetroArgs),
    /// The web console over the store: each account sees its units.
    Serve(serve::ServeArgs),
    /// Send the store's journal (hits, status changes) to the central
    /// PostgreSQL, up to its newest row.
    Ship(ship::ShipArgs),
    /// The central PostgreSQL's upkeep: drop old days of hits (`central
    /// prune`).
    #[command(subcommand)]
    Central(central::CentralCmd),
    /// Console accounts: add, passwd, disable, list, token.
    #[command(subcommand)]
    Users(users::UsersCmd),
}

/// The feeds, the units and the internal networks.
#[derive(Args, Debug, Clone)]
pub struct IntelArgs {
    /// Feeds file (TOML).
    #[arg(long, default_value = "feeds/feeds.toml")]
    pub feeds: PathBuf,
    /// Match with this signed, compiled snapshot (`gatewatch feeds
    /// compile`) instead of loading the feeds.
    #[arg(long, value_name = "FILE.snap", requires = "snapshot_key")]
    pub snapshot: Option<PathBuf>,
    /// The public key the snapshot's signature must verify with.
    #[arg(long, value_name = "KEY.pub", requires = "snapshot")]
    pub snapshot_key: Option<PathBuf>,
    /// Units file (CSV: code,name,cidrs).
    #[arg(long, default_value = "feeds/units.csv")]
    pub units: PathBuf,
    /// Internal network (repeatable); replaces the RFC 1918/ULA defaults.
    /// Unit networks are always internal.
    #[arg(long = "internal", value_name = "CIDR")]
    pub internal: Vec<IpNet>,
}

/// How the engines are set up, for the commands without a config file.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// No DNS-to-connection correlation (hits only on listed addresses and
    /// names seen in the packets themselves).
    #[arg(long)]
    pub no_dns_correlation: bool,
    /// No TCP flow table or reassembly: each segment is read alone (for
    /// comparison; messages split over segments are then missed).
    #[arg(long)]
    pub no_reassembly: bool,
    /// An internal DNS resolver (repeat for several): its DNS hits are
    /// marked `via_resolver`, and the addresses it looks up for listed names
    /// match any internal host that connects to them.
    #[arg(long = "dns-resolver", value_name = "IP")]
    pub dns_resolvers: Vec<std::net::IpAddr>,
    /// No heuristics (scans, DGA, sinkhole answers, DNS tunnels, beacons):
    /// hits from the lists only.
    #[arg(long)]
    pub no_heuristics: bool,
    /// Heuristic thresholds and allowlists: the `[heuristics]` table of this
    /// TOML file (a gatewatch.toml will do; nothing else in it is read).
    #[arg(long, value_name = "FILE")]
    pub heuristics: Option<PathBuf>,
}

impl IntelArgs {
    /// These arguments as overrides of the built-in configuration.
    fn overrides(&self) -> Overrides {
        Overrides {
            feeds: Some(self.feeds.clone()),
            snapshot: self.snapshot.clone(),
            snapshot_key: self.snapshot_key.clone(),
            units: Some(self.units.clone()),
            internal: self.internal.clone(),
            ..Overrides::default()
        }
    }

    /// The built-in configuration with these feeds, units and networks.
    fn config(&self) -> Result<Config> {
        Ok(Config::resolve(None, &self.overrides())?)
    }
}

impl EngineArgs {
    /// Add these switches to `o`.
    fn apply(&self, o: &mut Overrides) -> Result<()> {
        o.no_dns_correlation = self.no_dns_correlation;
        o.no_reassembly = self.no_reassembly;
        o.dns_resolvers = self.dns_resolvers.clone();
        o.no_heuristics = self.no_heuristics;
        if let Some(p) = &self.heuristics {
            o.heuristics = Some(crate::detect::heuristics::settings::load(p)?);
        }
        Ok(())
    }
}

/// Codes and names of a units file, or why it cannot be read.
fn unit_names(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let u = crate::detect::attribution::Units::load(path, &[])?;
    Ok(u.units()
        .iter()
        .map(|u| (u.code.clone(), u.name.clone()))
        .collect())
}

/// Open the store a sensor writes, naming it as that sensor's: a store is
/// one sensor's spool for the central, so another sensor's is refused.
fn open_store_for(path: &std::path::Path, sensor: &str) -> Result<crate::store::Store> {
    let mut s = crate::store::Store::open(path)?;
    if let Some(other) = s.claim_sensor(sensor)? {
        anyhow::bail!(
            "{}: this store is sensor {other:?}'s, not {sensor:?}'s; give this sensor its own store, or set sensor_id = {other:?}",
            path.display()
        );
    }
    Ok(s)
}

/// Log to standard error; colours only on a terminal (under systemd,
/// journalctl shows a line with escape codes as "[N blob data]").
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    crate::run::contain::install_hook();
    match cli.cmd {
        Cmd::Replay(a) => replay::cmd_replay(a),
        Cmd::Export(a) => export::cmd_export(a),
        Cmd::Check(a) => check::cmd_check(a),
        Cmd::Feeds(feeds::FeedsCmd::Check(a)) => feeds::cmd_feeds_check(a),
        Cmd::Feeds(feeds::FeedsCmd::Keygen(a)) => feeds::cmd_feeds_keygen(a),
        Cmd::Feeds(feeds::FeedsCmd::Compile(a)) => feeds::cmd_feeds_compile(a),
        Cmd::Feeds(feeds::FeedsCmd::Publish(a)) => publish::cmd_feeds_publish(a),
        Cmd::Run(a) => run::cmd_run(a),
        Cmd::Bench(a) => bench::cmd_bench(a),
        Cmd::Hosts(hosts::HostsCmd::MarkCleaned(a)) => hosts::cmd_mark_cleaned(a),
        Cmd::Report(a) => report::cmd_report(a),
        Cmd::Retro(a) => retro::cmd_retro(a),
        Cmd::Users(c) => users::cmd_users(c),
        Cmd::Serve(a) => serve::cmd_serve(a),
        Cmd::Ship(a) => ship::cmd_ship(a),
        Cmd::Central(central::CentralCmd::Prune(a)) => central::cmd_prune(a),
    }
}
