//! Command-line interface: argument parsing and the commands' glue.
//!
//! Everything here is orchestration; the work lives in the library modules.

use crate::attribution::{Units, default_internal};
use crate::detect::Engine;
use crate::export::{ExportFormat, read_alert_logs, select, write_rows};
use crate::export::{parse_since, select_offenders, text, xlsx};
use crate::intel::feeds::{ConfigErrors, FeedReport, FeedsConfig, build_snapshot};
use crate::intel::{Intel, Snapshot};
use crate::replay::{ReplaySink, open_output, replay};
use crate::store::Store;
use crate::store::writer::StoreWriter;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Exit code when the run finished but some input was skipped.
pub const EXIT_SKIPPED: u8 = 3;

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
    Replay(ReplayArgs),
    /// List offender hosts per unit from the offender store (CSV, JSON, XLSX).
    Export(ExportArgs),
    /// Validate the feeds and units files and print what they load.
    Check(IntelArgs),
    /// Feeds: parse everything and report per feed (`feeds check`).
    #[command(subcommand)]
    Feeds(FeedsCmd),
    /// Capture live on the mirror port until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Push capture files through the full multi-worker pipeline and report
    /// packets/s, Gbit/s, drops and peak RSS against a bare read loop.
    Bench(BenchArgs),
    /// Offender hosts in the store: mark a host cleaned.
    #[command(subcommand)]
    Hosts(HostsCmd),
    /// Campaign report per unit for a period (md, html or xlsx), after the
    /// form "Mẫu thống kê, báo cáo kết quả triển khai".
    Report(ReportArgs),
}

#[derive(clap::Subcommand, Debug)]
pub enum FeedsCmd {
    /// Parse every feed and print, per feed: indicators by kind, rejected
    /// entries with file:line and reason, skipped entries, duplicates
    /// within and across feeds, and the memory the built tables take.
    Check(FeedsCheckArgs),
}

#[derive(Args, Debug)]
pub struct FeedsCheckArgs {
    /// Feeds file (TOML).
    #[arg(long, default_value = "feeds/feeds.toml")]
    pub feeds: PathBuf,
    /// Rejected entries listed per feed (0 = all).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
}

#[derive(clap::Subcommand, Debug)]
pub enum HostsCmd {
    /// Mark a host cleaned (a later hit marks it reinfected).
    MarkCleaned(MarkArgs),
}

#[derive(Args, Debug)]
pub struct MarkArgs {
    /// The host's address.
    pub ip: std::net::IpAddr,
    /// What was done (kept with the status change).
    #[arg(long, default_value = "")]
    pub note: String,
    /// Who did it (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    /// Offender store.
    #[arg(long, default_value = crate::config::DEFAULT_STORE)]
    pub store: PathBuf,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// First day: YYYY-MM-DD (from local midnight) or RFC 3339.
    #[arg(long, value_name = "DATE", value_parser = crate::report::DateArg::parse)]
    pub from: crate::report::DateArg,
    /// Last day, included: YYYY-MM-DD (to the next local midnight) or
    /// RFC 3339 (up to and including that instant).
    #[arg(long, value_name = "DATE", value_parser = crate::report::DateArg::parse)]
    pub to: crate::report::DateArg,
    /// Output format (default: from the -o extension, else md).
    #[arg(long, value_enum)]
    pub format: Option<crate::report::ReportFormat>,
    /// Offender store written by `run` or `replay --store`.
    #[arg(long, default_value = crate::config::DEFAULT_STORE)]
    pub store: PathBuf,
    /// Report this unit only (no province roll-up).
    #[arg(long, value_name = "CODE")]
    pub unit: Option<String>,
    /// Units file, to accept a --unit that has no offenders yet.
    #[arg(long, default_value = "feeds/units.csv")]
    pub units: PathBuf,
    /// Output file; standard output if omitted (md and html only).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Sensor configuration (TOML); see deploy/gatewatch.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Interface to capture on (repeatable); replaces the configured list.
    #[arg(long = "interface", short = 'i')]
    pub interfaces: Vec<String>,
    /// Metrics and health listener, e.g. 127.0.0.1:9477.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Decode/match workers (0 = cores minus one).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Alert log; overrides the config.
    #[arg(long)]
    pub alerts: Option<PathBuf>,
    #[arg(long)]
    pub feeds: Option<PathBuf>,
    #[arg(long)]
    pub units: Option<PathBuf>,
    #[arg(long)]
    pub sensor_id: Option<String>,
    /// Offender store (SQLite); overrides the config. `--no-store` turns it off.
    #[arg(long, conflicts_with = "no_store")]
    pub store: Option<PathBuf>,
    #[arg(long)]
    pub no_store: bool,
    /// Repeated hits of a (host, indicator) pair: one `alert_summary` per
    /// this many seconds after the first alert (0: every hit); overrides
    /// `alert_summary_interval_s` (default 300).
    #[arg(long, value_name = "SECONDS")]
    pub summary_interval: Option<u64>,
    /// No DNS-to-connection correlation; overrides `dns_correlation`.
    #[arg(long)]
    pub no_dns_correlation: bool,
    /// Print the counters at exit.
    #[arg(long)]
    pub stats: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub intel: IntelArgs,
    /// Worker counts to measure, e.g. `--workers 1 --workers 3`
    /// (default: 1 and cores minus one).
    #[arg(long)]
    pub workers: Vec<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct IntelArgs {
    /// Feeds file (TOML).
    #[arg(long, default_value = "feeds/feeds.toml")]
    pub feeds: PathBuf,
    /// Units file (CSV: code,name,cidrs).
    #[arg(long, default_value = "feeds/units.csv")]
    pub units: PathBuf,
    /// Internal network (repeatable); replaces the RFC 1918/ULA defaults.
    /// Unit networks are always internal.
    #[arg(long = "internal", value_name = "CIDR")]
    pub internal: Vec<IpNet>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Capture files, read in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub intel: IntelArgs,
    /// Alert log (EVE JSON lines); `-` for standard output.
    #[arg(long, default_value = "gatewatch-data/alerts.jsonl")]
    pub alerts: PathBuf,
    /// Append to the alert log instead of replacing it.
    #[arg(long)]
    pub append: bool,
    /// Repeated hits of a (host, indicator) pair: after the first alert, one
    /// `alert_summary` event with counts per this many seconds of capture
    /// time (0, the default for replay: every hit is an alert).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub summary_interval: u64,
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
    /// Also log every DNS, TLS and HTTP observation (EVE dns/tls/http events).
    #[arg(long, value_name = "FILE")]
    pub observations: Option<PathBuf>,
    /// Print packet, protocol, parse-error and hit counters.
    #[arg(long)]
    pub stats: bool,
    /// Write the counters as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Sensor name written in every alert.
    #[arg(long, env = "GATEWATCH_SENSOR_ID", default_value = "gatewatch")]
    pub sensor_id: String,
    /// Also record the hits in this offender store (SQLite).
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Unit code to export.
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub unit: Option<String>,
    /// Export every unit.
    #[arg(long)]
    pub all: bool,
    /// Only hosts seen since DATE: YYYY-MM-DD (from local midnight) or an
    /// RFC 3339 time.
    #[arg(long, value_name = "DATE", value_parser = parse_since, conflicts_with = "alerts")]
    pub since: Option<i64>,
    /// csv (UTF-8 with BOM), json, or xlsx (one sheet per unit; needs -o).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Offender store to read (read-only; a running sensor may write to it).
    #[arg(long, default_value = crate::config::DEFAULT_STORE, conflicts_with = "alerts")]
    pub store: PathBuf,
    /// Read these alert logs instead of the store (logs from before the
    /// store; older column layout).
    #[arg(long, value_name = "FILE")]
    pub alerts: Vec<PathBuf>,
    /// With --alerts: units file, to accept a unit code that has no offenders.
    #[arg(long, default_value = "feeds/units.csv")]
    pub units: PathBuf,
    /// Output file; standard output if omitted.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Load feeds and units, reporting every configuration problem at once.
pub fn load_intel(a: &IntelArgs) -> Result<(Snapshot, Vec<FeedReport>, usize, Units)> {
    let internal = if a.internal.is_empty() {
        default_internal()
    } else {
        a.internal.clone()
    };
    load_intel_from(&a.feeds, &a.units, &internal, Vec::new())
}

/// As [`load_intel`], adding `problems` already found (e.g. in the config).
pub fn load_intel_from(
    feeds: &std::path::Path,
    units: &std::path::Path,
    internal: &[IpNet],
    mut problems: Vec<String>,
) -> Result<(Snapshot, Vec<FeedReport>, usize, Units)> {
    let feeds = FeedsConfig::load(feeds)
        .map_err(|e| problems.extend(e.0))
        .ok();
    let units = Units::load(units, internal)
        .map_err(|e| problems.extend(e.0))
        .ok();
    let (Some(feeds), Some(units), true) = (feeds, units, problems.is_empty()) else {
        return Err(ConfigErrors(problems))
            .context("configuration refused; fix these and run again");
    };
    let (snap, reports, dups) = build_snapshot(&feeds);
    for r in &reports {
        if let Some(f) = &r.failed {
            tracing::error!("feed {:?} not loaded: {f}", r.name);
        }
        for (i, rej) in r.rejected.iter().enumerate() {
            if i < 10 {
                tracing::warn!("{rej}");
            }
        }
        for w in r.warnings.iter().take(10) {
            tracing::warn!(
                "{}:{}: {:?}: {}",
                w.file.display(),
                w.line,
                w.entry,
                w.reason
            );
        }
        if r.rejected.len() > 10 {
            tracing::warn!(
                "feed {:?}: {} more rejected entries",
                r.name,
                r.rejected.len() - 10
            );
        }
    }
    Ok((snap, reports, dups, units))
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Replay(a) => cmd_replay(a),
        Cmd::Export(a) => cmd_export(a),
        Cmd::Check(a) => cmd_check(a),
        Cmd::Feeds(FeedsCmd::Check(a)) => crate::cli_feeds::cmd_feeds_check(a),
        Cmd::Run(a) => crate::cli_run::cmd_run(a),
        Cmd::Bench(a) => crate::cli_run::cmd_bench(a),
        Cmd::Hosts(HostsCmd::MarkCleaned(a)) => cmd_mark_cleaned(a),
        Cmd::Report(a) => crate::cli_report::cmd_report(a),
    }
}

fn cmd_replay(a: ReplayArgs) -> Result<ExitCode> {
    let (snap, reports, _, units) = load_intel(&a.intel)?;
    let loaded: usize = reports.iter().map(|r| r.accepted).sum();
    tracing::info!(
        "{} indicators from {} feed(s), {} unit(s)",
        snap.len(),
        reports.len(),
        units.units().len()
    );
    if loaded == 0 {
        tracing::warn!("no indicators loaded: nothing can match");
    }
    let mut engine = Engine::new(Arc::new(Intel::new(snap)), Arc::new(units));
    if a.no_dns_correlation {
        engine = engine.without_correlation();
    }
    engine = engine.with_resolvers(&a.dns_resolvers);
    if a.no_reassembly {
        engine = engine.without_reassembly();
    }
    let alerts = open_output(&a.alerts, a.append)
        .with_context(|| format!("{}: cannot open alert log", a.alerts.display()))?;
    let observations = match &a.observations {
        Some(p) => {
            Some(open_output(p, false).with_context(|| format!("{}: cannot open", p.display()))?)
        }
        None => None,
    };
    let mut sink = ReplaySink {
        sensor_id: a.sensor_id.clone(),
        alerts,
        observations: observations.map(|o| o as Box<dyn std::io::Write>),
        offenders: Default::default(),
        alert_count: 0,
        io_error: None,
        store: match &a.store {
            Some(p) => Some(StoreWriter::start(Store::open(p)?, STORE_QUEUE, None)),
            None => None,
        },
        aggregator: crate::aggregate::Aggregator::new(
            a.summary_interval,
            crate::aggregate::DEFAULT_PAIRS,
        ),
        summaries: 0,
        flows: 0,
    };
    let report = replay(&a.files, &mut engine, &mut sink);
    sink.flush_summaries();
    if let (Some(w), Some(p)) = (sink.store.take(), &a.store) {
        let st = w.finish();
        let (n, lost) = (
            st.written.load(Ordering::Relaxed),
            st.overflow.load(Ordering::Relaxed),
        );
        tracing::info!("{n} hit(s) recorded in the store {}", p.display());
        if lost > 0 {
            bail!(
                "{}: {lost} hit(s) could not be stored (see the errors above); they are in the alert log",
                p.display()
            );
        }
    }
    sink.alerts.flush()?;
    if let Some(o) = &mut sink.observations {
        o.flush()?;
    }
    if let Some(e) = sink.io_error.take() {
        bail!("{}: writing alerts failed: {e}", a.alerts.display());
    }
    print!("{}", sink.offenders.summary());
    println!(
        "\n{} alert(s) written to {}",
        sink.alert_count,
        if a.alerts.as_os_str() == "-" {
            "standard output".into()
        } else {
            a.alerts.display().to_string()
        }
    );
    if sink.flows > 0 {
        println!(
            "{} flow event(s): TCP flows with hits, with their totals",
            sink.flows
        );
    }
    if a.stats {
        println!("\n{}", report.stats);
    }
    if let Some(p) = &a.stats_json {
        std::fs::write(p, serde_json::to_string_pretty(&report.stats)?)
            .with_context(|| format!("{}: cannot write stats", p.display()))?;
    }
    if report.skipped_something() {
        eprintln!(
            "warning: some input was skipped or only partly inspected ({} file problem(s), {} packet problem(s)); exit code {EXIT_SKIPPED}",
            report.problems.len(),
            report.stats.lost()
        );
        return Ok(ExitCode::from(EXIT_SKIPPED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Queue between the sink and the store writer, in hits.
pub const STORE_QUEUE: usize = 65_536;

fn cmd_mark_cleaned(a: MarkArgs) -> Result<ExitCode> {
    let mut s = Store::open(&a.store)?;
    let by =
        a.by.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "operator".into());
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let h = s.mark_cleaned(a.ip, &by, &a.note, now)?;
    println!(
        "{} [{}] marked {} ({}) by {by}",
        h.ip,
        h.unit,
        h.status.as_str(),
        h.status.label_vi()
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_export(a: ExportArgs) -> Result<ExitCode> {
    if a.format == ExportFormat::Xlsx && a.output.is_none() {
        bail!("--format xlsx writes a workbook file: give it with -o FILE.xlsx");
    }
    if !a.alerts.is_empty() {
        return cmd_export_alert_log(a);
    }
    let store = Store::open_read_only(&a.store).context(
        "cannot export from the offender store (for an alert log from before the store, pass --alerts FILE)",
    )?;
    let sel = select_offenders(&store, a.unit.as_deref(), a.since)?;
    let Some(p) = &a.output else {
        let mut out = std::io::stdout().lock();
        match a.format {
            ExportFormat::Json => text::write_json(&sel.rows, &mut out)?,
            _ => text::write_csv(&sel.rows, &mut out)?,
        }
        return Ok(ExitCode::SUCCESS);
    };
    match a.format {
        ExportFormat::Xlsx => xlsx::write_xlsx(&sel, p)?,
        f => {
            let file = std::fs::File::create(p)
                .with_context(|| format!("{}: cannot create", p.display()))?;
            let mut w = std::io::BufWriter::new(file);
            match f {
                ExportFormat::Json => text::write_json(&sel.rows, &mut w)?,
                _ => text::write_csv(&sel.rows, &mut w)?,
            }
            std::io::Write::flush(&mut w)
                .with_context(|| format!("{}: cannot write", p.display()))?;
        }
    }
    tracing::info!(
        "{} host(s) in {} unit(s) written to {}",
        sel.rows.len(),
        sel.units.len(),
        p.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The export as it was before the store: from alert logs.
fn cmd_export_alert_log(a: ExportArgs) -> Result<ExitCode> {
    if a.format == ExportFormat::Xlsx {
        bail!("--format xlsx reads the offender store; drop --alerts, or export csv or json");
    }
    let (table, rep) = read_alert_logs(&a.alerts)?;
    for b in rep.bad_lines.iter().take(10) {
        tracing::warn!("{b}");
    }
    let known = Units::load(&a.units, &[]).ok();
    let rows = select(&table, a.unit.as_deref(), |c| {
        known.as_ref().is_some_and(|u| u.find(c).is_some())
    })?;
    match &a.output {
        Some(p) => {
            let mut f = std::fs::File::create(p)
                .with_context(|| format!("{}: cannot create", p.display()))?;
            write_rows(&rows, a.format, &mut f)?;
            tracing::info!("{} host(s) written to {}", rows.len(), p.display());
        }
        None => write_rows(&rows, a.format, &mut std::io::stdout().lock())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_check(a: IntelArgs) -> Result<ExitCode> {
    let (snap, reports, _, units) = load_intel(&a)?;
    println!("feeds ({}):", a.feeds.display());
    crate::cli_feeds::print_feeds(&snap, &reports, 10, false);
    println!("units ({}): {}", a.units.display(), units.units().len());
    for u in units.units() {
        let nets: Vec<String> = u.nets.iter().map(|n| n.to_string()).collect();
        println!("  {:<10} {:<40} {}", u.code, u.name, nets.join(" "));
    }
    let failed = reports.iter().any(|r| r.failed.is_some());
    Ok(if failed {
        ExitCode::from(EXIT_SKIPPED)
    } else {
        ExitCode::SUCCESS
    })
}
