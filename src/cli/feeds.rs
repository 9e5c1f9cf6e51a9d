//! `gatewatch feeds check` and the feed section of `gatewatch check`.

use crate::intel::feeds::{FeedReport, FeedsConfig, build_snapshot};
use crate::intel::{Part, Snapshot};
use anyhow::{Context as _, Result};
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
