//! `gatewatch feeds check|keygen|compile` and the feed section of
//! `gatewatch check` (`feeds publish` is in `publish.rs`).

use crate::intel::feeds::{FeedReport, FeedsConfig, build_snapshot};
use crate::intel::snap::{self, SigningKey};
use crate::intel::{Part, Snapshot};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum FeedsCmd {
    /// Parse every feed and print, per feed: indicators by kind, rejected
    /// entries with file:line and reason, skipped entries, duplicates
    /// within and across feeds, and the memory the built tables take.
    Check(FeedsCheckArgs),
    /// Generate an ed25519 key pair for signing feed snapshots: the
    /// private key (PKCS#8 PEM, mode 0600) and the public key (PEM) that
    /// sensors verify with. Existing files are never overwritten.
    Keygen(KeygenArgs),
    /// Load the feeds as a run does and write them compiled into one
    /// signed snapshot file, which `run` and `replay` load in milliseconds
    /// (`--snapshot FILE --snapshot-key KEY.pub`).
    Compile(CompileArgs),
    /// Publish a compiled snapshot on the central PostgreSQL: sensors
    /// running from a snapshot with `[central]` fetch the newest one and
    /// swap it in under the usual rules. Refused unless newer than every
    /// published version (the same file again is no change).
    Publish(super::publish::PublishArgs),
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Private key file to create (keep it on the machine that compiles).
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// Public key file to create (give it to every sensor).
    #[arg(long = "pub", value_name = "KEY.pub")]
    pub public: PathBuf,
}

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// Feeds file (TOML).
    #[arg(long, default_value = "feeds/feeds.toml")]
    pub feeds: PathBuf,
    /// Private key to sign with (from `gatewatch feeds keygen`).
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
    /// Snapshot file to write (replaced whole, by rename).
    #[arg(short = 'o', long = "output", value_name = "FILE.snap")]
    pub output: PathBuf,
    /// Snapshot version; sensors take only a version newer than the one
    /// they run. Default: the compile time in unix seconds.
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
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

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Skipped entries grouped by reason family: file hashes by kind, else
/// the reason up to its first colon.
fn skipped_summary(r: &FeedReport) -> Vec<String> {
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for s in &r.skipped {
        let key = match s.reason.split_once(" file hash") {
            Some((kind, _)) if !kind.contains(' ') => format!("{kind} file hash"),
            _ => {
                let tail = s
                    .reason
                    .rsplit_once(": ")
                    .map_or(s.reason.as_str(), |x| x.1);
                let short = tail.split(" (").next().unwrap_or(tail);
                if short.starts_with("indicator--") || short.contains("expired") {
                    "expired".to_string()
                } else {
                    short.to_string()
                }
            }
        };
        *groups.entry(key).or_default() += 1;
    }
    groups
        .into_iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect()
}

/// Per feed: accepted, rejected, skipped and warnings, then the snapshot's
/// kinds. `show` rejected entries are listed per feed (0 = all).
pub fn print_feeds(snap: &Snapshot, reports: &[FeedReport], show: usize, detail: bool) {
    let cross = if detail {
        snap.cross_feed_duplicates()
    } else {
        Vec::new()
    };
    for (i, r) in reports.iter().enumerate() {
        let other = print_feed_line(r);
        if !detail {
            continue;
        }
        if let Some(p) = snap.parts().get(i) {
            print_feed_tables(r, p, cross.get(i).copied().unwrap_or(0));
        }
        if !other.is_empty() {
            println!("      skipped: {}", other.join(", "));
        }
        print_feed_entries(r, show);
    }
    let mut kinds: Vec<_> = snap.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    kinds.sort();
    println!(
        "snapshot: {} indicators ({} duplicates merged within feeds)",
        kinds.iter().map(|k| k.1).sum::<usize>(),
        snap.duplicates
    );
    for (k, v) in kinds {
        println!("  {k:<10} {v}");
    }
}

/// The feed's summary line and, when it skipped file hashes (no packet can
/// match one), their kinds. Returns the other skipped groups, which only the
/// detailed listing prints.
fn print_feed_line(r: &FeedReport) -> Vec<String> {
    let state = match &r.failed {
        Some(f) => format!("FAILED: {f}"),
        None => "ok".into(),
    };
    println!(
        "  {:<32} {:>8} accepted {:>6} rejected {:>6} skipped  {state}",
        r.name,
        r.accepted,
        r.rejected.len(),
        r.skipped.len()
    );
    let (hashes, other): (Vec<String>, Vec<String>) = skipped_summary(r)
        .into_iter()
        .partition(|s| s.ends_with("file hash"));
    let hashes: Vec<&str> = hashes
        .iter()
        .map(|s| s.trim_end_matches(" file hash"))
        .collect();
    if !hashes.is_empty() {
        println!(
            "  {:<32} skipped file hashes (not visible on the wire): {}",
            "",
            hashes.join(", ")
        );
    }
    other
}

/// What the feed's part of the snapshot holds: files, indicators by kind,
/// duplicates (`cross` of them already in an earlier feed) and table size.
fn print_feed_tables(r: &FeedReport, p: &Part, cross: usize) {
    let mut kinds: Vec<_> = p.counts.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    kinds.sort();
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "      files {}, indicators: {}",
        r.files,
        if kinds.is_empty() {
            "none".into()
        } else {
            kinds.join(", ")
        }
    );
    println!(
        "      duplicates: {} within the feed, {} already in an earlier feed; tables {:.1} MiB",
        p.duplicates,
        cross,
        mib(p.heap_bytes())
    );
}

/// The feed's rejected entries and warnings, `show` of each (0 = all).
fn print_feed_entries(r: &FeedReport, show: usize) {
    let n = if show == 0 { usize::MAX } else { show };
    for rej in r.rejected.iter().take(n) {
        println!("      rejected {rej}");
    }
    if r.rejected.len() > n {
        println!(
            "      ... {} more rejected (--show 0 lists all)",
            r.rejected.len() - n
        );
    }
    for w in r.warnings.iter().take(n) {
        println!(
            "      warning {}:{}: {:?}: {}",
            w.file.display(),
            w.line,
            w.entry,
            w.reason
        );
    }
}

pub fn cmd_feeds_check(a: FeedsCheckArgs) -> Result<ExitCode> {
    let cfg = FeedsConfig::load(&a.feeds)
        .map_err(anyhow::Error::new)
        .context("feeds file refused; fix these and run again")?;
    let rss0 = crate::metrics::rss_mib();
    let t = std::time::Instant::now();
    let (snap, reports, _) = build_snapshot(&cfg);
    let took = t.elapsed();
    let rss1 = crate::metrics::rss_mib();
    println!("feeds ({}):", a.feeds.display());
    print_feeds(&snap, &reports, a.show, true);
    let source: u64 = cfg
        .feeds
        .iter()
        .flat_map(|f| crate::intel::feeds::feed_files(f).unwrap_or_default())
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    println!(
        "memory: tables and filters {:.1} MiB for {:.1} MiB of feed files ({:.2}x); resident set grew {:.1} MiB while loading; built in {:.2} s",
        mib(snap.heap_bytes()),
        mib(source as usize),
        snap.heap_bytes() as f64 / (source.max(1)) as f64,
        (rss1 - rss0).max(0.0),
        took.as_secs_f64()
    );
    let failed = reports.iter().any(|r| r.failed.is_some());
    Ok(if failed {
        ExitCode::from(super::EXIT_SKIPPED)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn cmd_feeds_keygen(a: KeygenArgs) -> Result<ExitCode> {
    let pk = snap::keygen(&a.key, &a.public).map_err(anyhow::Error::msg)?;
    println!(
        "wrote {} (private, mode 0600) and {} (public), key id {}",
        a.key.display(),
        a.public.display(),
        pk.id_hex()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn cmd_feeds_compile(a: CompileArgs) -> Result<ExitCode> {
    let key = SigningKey::load(&a.key).map_err(anyhow::Error::msg)?;
    let cfg = FeedsConfig::load(&a.feeds)
        .map_err(anyhow::Error::new)
        .context("feeds file refused; fix these and run again")?;
    let t = std::time::Instant::now();
    let (snapshot, reports, _) = build_snapshot(&cfg);
    for r in &reports {
        r.log_problems();
    }
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| r.failed.as_ref().map(|f| format!("{}: {f}", r.name)))
        .collect();
    if !failed.is_empty() {
        bail!(
            "not compiled: {} feed(s) did not load, and a snapshot without them would ship without warning:\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    if snapshot.indicators() == 0 {
        bail!(
            "not compiled: the feeds in {} list no indicators",
            a.feeds.display()
        );
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let version = a.version.unwrap_or(created);
    let bytes = snap::compile(&snapshot, &reports, version, created, &key);
    snap::write_file(&a.output, &bytes)
        .with_context(|| format!("{}: cannot write the snapshot", a.output.display()))?;
    print_compiled(&a, &snapshot, &reports, version, bytes.len(), &key);
    println!("compiled in {:.2} s", t.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// What `feeds compile` wrote: the file, its version, its indicators by
/// kind and by feed.
fn print_compiled(
    a: &CompileArgs,
    s: &Snapshot,
    reports: &[FeedReport],
    version: u64,
    bytes: usize,
    key: &SigningKey,
) {
    println!(
        "wrote {}: version {version}, {} indicators from {} feed(s), {bytes} bytes ({:.1} MiB), signed by key id {}",
        a.output.display(),
        s.indicators(),
        reports.len(),
        mib(bytes),
        key.public().id_hex()
    );
    let mut kinds: Vec<_> = s.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    kinds.sort();
    for (k, v) in kinds {
        println!("  {k:<10} {v}");
    }
    for (r, p) in reports.iter().zip(s.parts()) {
        println!(
            "  feed {:<32} {:>9} indicators ({} accepted, {} duplicates merged)",
            r.name,
            p.len(),
            r.accepted,
            p.duplicates
        );
    }
}
