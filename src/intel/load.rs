//! Loading feeds into a snapshot: plain, hosts and CSV files, each entry
//! classified or rejected with its file and line. Large line-based files are
//! cut at line ends and loaded on every core, then merged; the result does
//! not depend on how the work was split.

use super::feeds::{Column, FeedKind, FeedReport, FeedSpec, FeedsConfig, Format, Rejected};
use super::indicator::{EntryType, classify, classify_domain};
use super::{FeedMeta, Snapshot, SnapshotBuilder};
use std::sync::Arc;

/// One unit of loading: feed index, a chunk of its bytes with the number
/// of its first line (or the whole file, read by the loader), and its size.
type Work<'a> = (usize, Option<(&'a [u8], u64)>, u64);

/// Feeds at least this large are split over the cores while loading.
const CHUNK_FROM: u64 = 4 << 20;

/// Cut `bytes` into about `k` pieces at line ends; each with the number of
/// its first line.
fn chunks(bytes: &[u8], k: usize) -> Vec<(&[u8], u64)> {
    let mut out = Vec::with_capacity(k);
    let (mut start, mut line) = (0usize, 1u64);
    for j in 1..=k {
        let target = bytes.len() * j / k;
        let end = if j == k {
            bytes.len()
        } else {
            match bytes[target.max(start)..].iter().position(|&c| c == b'\n') {
                Some(p) => target.max(start) + p + 1,
                None => bytes.len(),
            }
        };
        if end > start {
            let piece = &bytes[start..end];
            out.push((piece, line));
            line += piece.iter().filter(|&&c| c == b'\n').count() as u64;
            start = end;
        }
    }
    out
}

/// Load every feed of `cfg` into a new snapshot. Feeds are read in parallel
/// (largest first, one thread per core) and merged in configuration order, so
/// the result is the same as reading them one by one.
pub fn build_snapshot(cfg: &FeedsConfig) -> (Snapshot, Vec<FeedReport>, usize) {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    build_snapshot_on(cfg, threads)
}

/// [`build_snapshot`] on `threads` threads (tests check that the split does
/// not change the result).
pub fn build_snapshot_on(cfg: &FeedsConfig, threads: usize) -> (Snapshot, Vec<FeedReport>, usize) {
    let t0 = std::time::Instant::now();
    let n = cfg.feeds.len();
    let threads = threads.max(1);
    // Large line-based feeds are read here and cut into one chunk per thread
    // at line boundaries, so one big list does not load on a single core.
    // The big files are read concurrently too (a read is a copy out of the
    // page cache: 60 ms for 26 MB on one core here). A file that cannot be
    // read is left to `load_feed`, which reports why.
    let big: Vec<usize> = (0..n)
        .filter(|&i| {
            let spec = &cfg.feeds[i];
            threads > 1
                && spec.format != Format::Csv
                && std::fs::metadata(&spec.path).is_ok_and(|m| m.len() >= CHUNK_FROM)
        })
        .collect();
    let mut texts: Vec<Option<Vec<u8>>> = vec![None; n];
    let read: Vec<(usize, Option<Vec<u8>>)> = std::thread::scope(|sc| {
        let handles: Vec<_> = big
            .iter()
            .map(|&i| sc.spawn(move || (i, std::fs::read(&cfg.feeds[i].path).ok())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("feed reader panicked"))
            .collect()
    });
    for (i, bytes) in read {
        texts[i] = bytes;
    }
    let mut work: Vec<Work<'_>> = Vec::new();
    for (i, spec) in cfg.feeds.iter().enumerate() {
        match &texts[i] {
            Some(bytes) => {
                for (chunk, first_line) in chunks(bytes, threads) {
                    work.push((i, Some((chunk, first_line)), chunk.len() as u64));
                }
            }
            None => {
                let size = std::fs::metadata(&spec.path).map_or(0, |m| m.len());
                work.push((i, None, size));
            }
        }
    }
    work.sort_by_key(|w| std::cmp::Reverse(w.2));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let run = || {
        let mut done = Vec::new();
        loop {
            let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&(i, chunk, _)) = work.get(k) else {
                break;
            };
            let spec = &cfg.feeds[i];
            let mut b = SnapshotBuilder::ranked(i as u32);
            let t = std::time::Instant::now();
            let rep = match chunk {
                Some((bytes, first)) => load_lines(spec, bytes, first, &mut b),
                None => load_feed(spec, &mut b),
            };
            tracing::trace!(
                "feed {:?} from line {}: {} entries in {:?}",
                spec.name,
                chunk.map_or(1, |c| c.1),
                rep.accepted,
                t.elapsed()
            );
            done.push((i, chunk.map_or(0, |c| c.1), b, rep));
        }
        done
    };
    let t_read = t0.elapsed();
    let mut parts = std::thread::scope(|sc| {
        let others: Vec<_> = (1..threads.min(work.len()))
            .map(|_| sc.spawn(run))
            .collect();
        let mut all = run();
        for h in others {
            all.extend(h.join().expect("feed loader panicked"));
        }
        all
    });
    let t_parse = t0.elapsed();
    // The largest part becomes the base (moved, not copied); feed ranks keep
    // the configuration order for duplicates.
    parts.sort_by_key(|p| std::cmp::Reverse(p.3.accepted));
    let mut pieces: Vec<(usize, u64, FeedReport)> = Vec::with_capacity(parts.len());
    let mut b = SnapshotBuilder::default();
    for (k, (i, first_line, part, rep)) in parts.into_iter().enumerate() {
        if k == 0 {
            b = part;
        } else {
            b.absorb(part);
        }
        pieces.push((i, first_line, rep));
    }
    // One report per feed, chunks in file order.
    pieces.sort_by_key(|p| (p.0, p.1));
    let mut reports: Vec<FeedReport> = Vec::with_capacity(n);
    let mut last = usize::MAX;
    for (i, _, rep) in pieces {
        match reports.last_mut() {
            Some(r) if last == i => {
                r.accepted += rep.accepted;
                r.rejected.extend(rep.rejected);
                r.warnings.extend(rep.warnings);
                r.failed = r.failed.take().or(rep.failed);
            }
            _ => reports.push(rep),
        }
        last = i;
    }
    let t_merge = t0.elapsed();
    let snap = b.build();
    let dups = snap.duplicates;
    tracing::debug!(
        "feeds: read {:?}, parsed {:?}, merged {:?}, tables built {:?}",
        t_read,
        t_parse - t_read,
        t_merge - t_parse,
        t0.elapsed() - t_merge
    );
    (snap, reports, dups)
}

/// Read one feed into `b`.
pub fn load_feed(spec: &FeedSpec, b: &mut SnapshotBuilder) -> FeedReport {
    if spec.format == Format::Csv {
        return load_with(spec, b, |take| read_csv(spec, take));
    }
    match std::fs::read(&spec.path) {
        Ok(bytes) => load_lines(spec, &bytes, 1, b),
        Err(e) => FeedReport {
            name: spec.name.clone(),
            failed: Some(format!("{}: {e}", spec.path.display())),
            ..Default::default()
        },
    }
}

/// Load the lines in `bytes` (a whole plain/hosts feed, or a chunk of one
/// that starts at line `first_line`).
fn load_lines(
    spec: &FeedSpec,
    bytes: &[u8],
    first_line: u64,
    b: &mut SnapshotBuilder,
) -> FeedReport {
    load_with(spec, b, |take| {
        match spec.format {
            Format::Hosts => split_lines(bytes, first_line, |n, l| {
                let Some(e) = strip_comment(l) else { return };
                let mut parts = e.split_whitespace();
                let _sink_addr = parts.next();
                for name in parts.filter(|n| !is_local_hosts_name(n)) {
                    take(n, name)
                }
            }),
            _ => split_lines(bytes, first_line, |n, l| {
                if let Some(e) = strip_comment(l) {
                    take(n, e)
                }
            }),
        }
        Ok(())
    })
}

/// Classify what `read` hands out (line number, entry) into `b`.
fn load_with(
    spec: &FeedSpec,
    b: &mut SnapshotBuilder,
    read: impl FnOnce(&mut dyn FnMut(u64, &str)) -> std::io::Result<()>,
) -> FeedReport {
    let meta = Arc::new(FeedMeta {
        name: spec.name.clone(),
        category: spec.category.clone().unwrap_or_else(|| "allowlist".into()),
        severity: spec.severity,
    });
    let mut rep = FeedReport {
        name: spec.name.clone(),
        ..Default::default()
    };
    let domains_only = spec.kind == FeedKind::Block && spec.entry_type == EntryType::Domain;
    fn note(file: &std::path::Path, line: u64, raw: &str, reason: String) -> Rejected {
        Rejected {
            file: file.to_path_buf(),
            line,
            entry: raw.to_owned(),
            reason,
        }
    }
    let reject = |rep: &mut FeedReport, line, raw: &str, reason| {
        rep.rejected.push(note(&spec.path, line, raw, reason))
    };
    let warn = |rep: &mut FeedReport, line, raw: &str, reason| {
        rep.warnings.push(note(&spec.path, line, raw, reason))
    };
    let mut take = |line: u64, raw: &str| {
        if domains_only {
            // The bulk case, without an owned entry per line.
            match classify_domain(raw) {
                Ok(d) => {
                    if raw.contains('/') {
                        let why = format!("URL in a domain list: its host {d} was taken");
                        warn(&mut rep, line, raw, why);
                    }
                    b.add_domain(&d, &meta);
                    rep.accepted += 1;
                }
                Err(r) => reject(&mut rep, line, raw, r.to_string()),
            }
            return;
        }
        match classify(raw, spec.entry_type) {
            Ok(e) => {
                if spec.entry_type == EntryType::Domain && raw.contains('/') {
                    let why = "URL in a domain list: its host was taken".to_string();
                    warn(&mut rep, line, raw, why);
                }
                let ok = match spec.kind {
                    FeedKind::Block => {
                        b.add(e, &meta);
                        true
                    }
                    FeedKind::Allow => b.allow(e),
                };
                if ok {
                    rep.accepted += 1;
                } else if spec.kind == FeedKind::Allow {
                    let why = "duplicate, or a URL/keyword (allowlists take domains and addresses)";
                    reject(&mut rep, line, raw, why.into());
                }
            }
            Err(r) => reject(&mut rep, line, raw, r.to_string()),
        }
    };
    if let Err(e) = read(&mut take) {
        rep.failed = Some(format!("{}: {e}", spec.path.display()));
    }
    rep
}

/// Text before a `#` that starts the line or follows whitespace; `None` for
/// blank and comment-only lines.
fn strip_comment(line: &str) -> Option<&str> {
    let mut cut = line.len();
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            cut = i;
            break;
        }
    }
    let s = line[..cut].trim();
    (!s.is_empty()).then_some(s)
}

fn is_local_hosts_name(n: &str) -> bool {
    matches!(
        n,
        "localhost" | "localhost.localdomain" | "local" | "broadcasthost"
    ) || n.starts_with("ip6-")
}

/// A line without its carriage return or byte-order mark.
fn clean(l: &str) -> &str {
    l.trim_end_matches('\r').trim_start_matches('\u{feff}')
}

/// Call `f` with each line of `bytes` (numbered from `first_line`), without
/// its line ending or a byte-order mark.
fn split_lines(bytes: &[u8], first_line: u64, mut f: impl FnMut(u64, &str)) {
    if bytes.is_empty() {
        return;
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    match std::str::from_utf8(body) {
        // The common case: validate once, split without copying.
        Ok(text) => {
            for (i, line) in text.split('\n').enumerate() {
                f(first_line + i as u64, clean(line));
            }
        }
        Err(_) => {
            for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
                f(first_line + i as u64, clean(&String::from_utf8_lossy(raw)));
            }
        }
    }
}

fn read_csv(spec: &FeedSpec, take: &mut dyn FnMut(u64, &str)) -> std::io::Result<()> {
    let has_headers = spec.has_headers.unwrap_or(true);
    let mut rb = csv::ReaderBuilder::new();
    rb.has_headers(has_headers).flexible(true);
    if let Some(d) = &spec.delimiter {
        rb.delimiter(d.as_bytes()[0]);
    }
    if let Some(c) = &spec.comment {
        rb.comment(Some(c.as_bytes()[0]));
    }
    let mut r = rb.from_path(&spec.path).map_err(std::io::Error::other)?;
    let idx = match &spec.column {
        Some(Column::Index(i)) => *i,
        Some(Column::Name(name)) => {
            let h = r.headers().map_err(std::io::Error::other)?;
            h.iter()
                .position(|c| {
                    c.trim()
                        .trim_start_matches('\u{feff}')
                        .eq_ignore_ascii_case(name)
                })
                .ok_or_else(|| {
                    std::io::Error::other(format!(
                        "no column named {name:?} in the header row (columns: {})",
                        h.iter().collect::<Vec<_>>().join(", ")
                    ))
                })?
        }
        None => 0,
    };
    let mut rec = csv::StringRecord::new();
    loop {
        match r.read_record(&mut rec) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = rec.position().map_or(0, |p| p.line());
                match rec.get(idx) {
                    Some(v) => take(line, v),
                    None => take(line, ""),
                }
            }
            // A bad record (e.g. invalid UTF-8) is skipped like a bad entry.
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                tracing::warn!(
                    "{}:{line}: unreadable CSV record skipped: {e}",
                    spec.path.display()
                );
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    return Err(std::io::Error::other(e));
                }
            }
        }
    }
}
