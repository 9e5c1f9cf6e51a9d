//! Loading feeds into per-feed [`Part`]s: every format, files or whole
//! directories, each entry classified or rejected with its file and line.
//! Large line-based files are cut at line ends and loaded on every core,
//! then merged; the result does not depend on how the work was split.

use super::feeds::{Column, FeedKind, FeedReport, FeedSpec, FeedsConfig, Format, Rejected};
use super::formats::{self, Item};
use super::indicator::{EntryType, Reject, classify, classify_domain};
use super::{FeedMeta, Part, Snapshot, SnapshotBuilder};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One unit of loading: feed index, file index within the feed, a chunk of
/// the file's bytes with the number of its first line (or the whole file,
/// read by the loader), and its size.
type Work<'a> = (usize, usize, Option<(&'a [u8], u64)>, u64);

/// Feeds at least this large are split over the cores while loading.
const CHUNK_FROM: u64 = 4 << 20;

/// Files no reader should hold in memory whole (JSON and spreadsheets are
/// parsed in one piece): refused with a named reason instead.
const MAX_WHOLE_FILE: u64 = 1 << 30;

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

/// Whether a file in a feed directory is documentation rather than data.
fn is_doc_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.starts_with('.')
        || name.starts_with("license")
        || name.starts_with("licence")
        || name.starts_with("readme")
        || name.starts_with("copying")
        || name.ends_with(".md")
        || name.ends_with(".source")
}

/// The files of a feed: the path itself, or every file under a directory
/// (recursively, in path order; hidden files, READMEs and licences left out).
pub fn feed_files(spec: &FeedSpec) -> Result<Vec<PathBuf>, String> {
    let meta =
        std::fs::metadata(&spec.path).map_err(|e| format!("{}: {e}", spec.path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![spec.path.clone()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![spec.path.clone()];
    while let Some(d) = dirs.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in rd {
            let e = e.map_err(|e| format!("{}: {e}", d.display()))?;
            let p = e.path();
            if is_doc_file(&p) {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn feed_meta(spec: &FeedSpec) -> Arc<FeedMeta> {
    Arc::new(FeedMeta {
        name: spec.name.clone(),
        category: spec.category.clone().unwrap_or_else(|| "allowlist".into()),
        severity: spec.severity,
    })
}

/// Load every feed of `cfg` into a new snapshot, on every core.
pub fn build_snapshot(cfg: &FeedsConfig) -> (Snapshot, Vec<FeedReport>, usize) {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    build_snapshot_on(cfg, threads)
}

/// [`build_snapshot`] on `threads` threads (tests check that the split does
/// not change the result).
pub fn build_snapshot_on(cfg: &FeedsConfig, threads: usize) -> (Snapshot, Vec<FeedReport>, usize) {
    let all: Vec<usize> = (0..cfg.feeds.len()).collect();
    let mut parts = Vec::with_capacity(all.len());
    let mut reports = Vec::with_capacity(all.len());
    for (_, part, rep) in load_parts(cfg, &all, threads) {
        parts.push(Arc::new(part));
        reports.push(rep);
    }
    let snap = Snapshot::assemble(parts);
    let dups = snap.duplicates;
    (snap, reports, dups)
}

/// Load the feeds numbered `which` of `cfg`, one [`Part`] each, in the
/// order given. Feeds are read in parallel (largest first, one thread per
/// core); big line-based files are split; parts are compiled in parallel.
pub fn load_parts(
    cfg: &FeedsConfig,
    which: &[usize],
    threads: usize,
) -> Vec<(usize, Part, FeedReport)> {
    let t0 = std::time::Instant::now();
    let threads = threads.max(1);
    let metas: Vec<Arc<FeedMeta>> = cfg.feeds.iter().map(feed_meta).collect();
    let mut files: Vec<Vec<(PathBuf, u64)>> = vec![Vec::new(); cfg.feeds.len()];
    let mut failed: Vec<Option<String>> = vec![None; cfg.feeds.len()];
    for &i in which {
        match feed_files(&cfg.feeds[i]) {
            Ok(fs) => {
                files[i] = fs
                    .into_iter()
                    .map(|p| {
                        let len = std::fs::metadata(&p).map_or(0, |m| m.len());
                        (p, len)
                    })
                    .collect()
            }
            Err(e) => failed[i] = Some(e),
        }
    }
    // Big line-based files are read here and cut into one chunk per thread
    // at line ends, concurrently (a read is a copy out of the page cache).
    // A file that cannot be read is left to the loader, which says why.
    let big: Vec<(usize, usize)> = which
        .iter()
        .flat_map(|&i| (0..files[i].len()).map(move |j| (i, j)))
        .filter(|&(i, j)| {
            threads > 1 && cfg.feeds[i].format.is_line_based() && files[i][j].1 >= CHUNK_FROM
        })
        .collect();
    type Read = ((usize, usize), Option<Vec<u8>>);
    let read: Vec<Read> = std::thread::scope(|sc| {
        let files = &files;
        let handles: Vec<_> = big
            .iter()
            .map(|&(i, j)| sc.spawn(move || ((i, j), read_capped(&files[i][j].0).ok())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("feed reader panicked"))
            .collect()
    });
    let texts: std::collections::HashMap<(usize, usize), Vec<u8>> = read
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let mut work: Vec<Work<'_>> = Vec::new();
    for &i in which {
        for (j, (_, size)) in files[i].iter().enumerate() {
            match texts.get(&(i, j)) {
                Some(bytes) => {
                    for (chunk, first) in chunks(bytes, threads) {
                        work.push((i, j, Some((chunk, first)), chunk.len() as u64));
                    }
                }
                None => work.push((i, j, None, *size)),
            }
        }
    }
    work.sort_by_key(|w| std::cmp::Reverse(w.3));
    let next = AtomicUsize::new(0);
    let run = || {
        let mut done = Vec::new();
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(i, j, chunk, _)) = work.get(k) else {
                break;
            };
            let spec = &cfg.feeds[i];
            let mut b = SnapshotBuilder::ranked(i as u32);
            let path = &files[i][j].0;
            let rep = match chunk {
                Some((bytes, first)) => load_lines(spec, &metas[i], path, bytes, first, &mut b),
                None => load_file(spec, &metas[i], path, &mut b),
            };
            done.push((i, j, chunk.map_or(0, |c| c.1), b, rep));
        }
        done
    };
    let mut pieces = std::thread::scope(|sc| {
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
    // Per feed, pieces in file and line order: the largest becomes the base
    // (moved, not copied), the rest are absorbed.
    pieces.sort_by_key(|p| (p.0, p.1, p.2));
    let mut per_feed: Vec<(usize, Vec<SnapshotBuilder>, FeedReport)> = which
        .iter()
        .map(|&i| {
            let rep = FeedReport {
                name: cfg.feeds[i].name.clone(),
                failed: failed[i].take(),
                files: files[i].len(),
                ..Default::default()
            };
            (i, Vec::new(), rep)
        })
        .collect();
    for (i, _, _, b, rep) in pieces {
        let Some(slot) = per_feed.iter_mut().find(|s| s.0 == i) else {
            continue;
        };
        slot.1.push(b);
        let r = &mut slot.2;
        r.accepted += rep.accepted;
        r.rejected.extend(rep.rejected);
        r.skipped.extend(rep.skipped);
        r.warnings.extend(rep.warnings);
        if rep.failed.is_some() && r.failed.is_none() {
            r.failed = rep.failed;
        }
    }
    // Compile the parts, largest first, on every core.
    let mut order: Vec<usize> = (0..per_feed.len()).collect();
    order.sort_by_key(|&k| {
        std::cmp::Reverse(per_feed[k].1.iter().map(|b| b.entries()).sum::<usize>())
    });
    type Slot = std::sync::Mutex<Option<(usize, Vec<SnapshotBuilder>, FeedReport)>>;
    let slots: Vec<Slot> = per_feed
        .into_iter()
        .map(|s| std::sync::Mutex::new(Some(s)))
        .collect();
    let next = AtomicUsize::new(0);
    let compile = || {
        let mut done = Vec::new();
        while let Some(&k) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let Some((i, mut builders, rep)) = slots[k].lock().ok().and_then(|mut s| s.take())
            else {
                continue;
            };
            let largest = (0..builders.len()).max_by_key(|&x| builders[x].entries());
            let mut base = match largest {
                Some(x) => builders.swap_remove(x),
                None => SnapshotBuilder::ranked(i as u32),
            };
            for b in builders {
                base.absorb(b);
            }
            done.push((k, i, base.build_part(), rep));
        }
        done
    };
    let mut built = std::thread::scope(|sc| {
        let others: Vec<_> = (1..threads.min(slots.len()))
            .map(|_| sc.spawn(compile))
            .collect();
        let mut all = compile();
        for h in others {
            all.extend(h.join().expect("part compiler panicked"));
        }
        all
    });
    built.sort_by_key(|b| b.0);
    tracing::debug!(
        "feeds: read and parsed in {:?}, compiled in {:?}",
        t_parse,
        t0.elapsed() - t_parse
    );
    built.into_iter().map(|(_, i, p, r)| (i, p, r)).collect()
}

/// Read one feed (every file of it) into `b`.
pub fn load_feed(spec: &FeedSpec, b: &mut SnapshotBuilder) -> FeedReport {
    let meta = feed_meta(spec);
    let files = match feed_files(spec) {
        Ok(f) => f,
        Err(e) => {
            return FeedReport {
                name: spec.name.clone(),
                failed: Some(e),
                ..Default::default()
            };
        }
    };
    let mut rep = FeedReport {
        name: spec.name.clone(),
        files: files.len(),
        ..Default::default()
    };
    for f in files {
        let r = load_file(spec, &meta, &f, b);
        rep.accepted += r.accepted;
        rep.rejected.extend(r.rejected);
        rep.skipped.extend(r.skipped);
        rep.warnings.extend(r.warnings);
        rep.failed = rep.failed.or(r.failed);
    }
    rep
}

/// A reader of a whole file's text into items.
type WholeReader<'r> = &'r dyn Fn(&str, &mut dyn FnMut(Item<'_>)) -> Result<(), String>;

/// Read one file of a feed, whatever its format.
fn load_file(
    spec: &FeedSpec,
    meta: &Arc<FeedMeta>,
    path: &Path,
    b: &mut SnapshotBuilder,
) -> FeedReport {
    let whole = |b: &mut SnapshotBuilder, f: WholeReader<'_>| {
        load_with(spec, meta, path, b, |take| {
            let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
            if len > MAX_WHOLE_FILE {
                return Err(format!(
                    "{len} bytes: larger than the {} MiB a {:?} file may have; split it",
                    MAX_WHOLE_FILE >> 20,
                    spec.format
                ));
            }
            let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&bytes);
            f(&text, take)
        })
    };
    match spec.format {
        Format::Plain | Format::Hosts => match read_capped(path) {
            Ok(bytes) => load_lines(spec, meta, path, &bytes, 1, b),
            Err(e) => FeedReport {
                name: spec.name.clone(),
                failed: Some(format!("{}: {e}", path.display())),
                ..Default::default()
            },
        },
        Format::Csv => load_with(spec, meta, path, b, |take| {
            read_csv(spec, path, &mut |line, v| {
                take(Item::Entry {
                    line,
                    value: v,
                    as_type: spec.entry_type,
                    note: None,
                })
            })
            .map_err(|e| e.to_string())
        }),
        Format::Zeek => whole(b, &|t, take| formats::zeek(t, take)),
        Format::Stix => whole(b, &|t, take| formats::stix(t, take)),
        Format::Misp => whole(b, &|t, take| {
            formats::misp(t, spec.to_ids_only.unwrap_or(true), take)
        }),
        Format::Maltrail => load_with(spec, meta, path, b, |take| formats::maltrail(path, take)),
        Format::Iprep => load_with(spec, meta, path, b, |take| {
            let mut s = spec.clone();
            s.path = path.to_path_buf();
            formats::iprep(&s, take)
        }),
        Format::Annex => load_with(spec, meta, path, b, |take| {
            let mut s = spec.clone();
            s.path = path.to_path_buf();
            formats::annex(&s, take)
        }),
    }
}

/// The whole file, unless it is larger than any feed should be.
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_WHOLE_FILE {
        return Err(std::io::Error::other(format!(
            "{len} bytes: larger than the {} MiB a feed file may have; split it",
            MAX_WHOLE_FILE >> 20
        )));
    }
    std::fs::read(path)
}

/// Load the lines in `bytes` (a whole plain/hosts file, or a chunk of one
/// that starts at line `first_line`).
fn load_lines(
    spec: &FeedSpec,
    meta: &Arc<FeedMeta>,
    path: &Path,
    bytes: &[u8],
    first_line: u64,
    b: &mut SnapshotBuilder,
) -> FeedReport {
    load_with(spec, meta, path, b, |take| {
        let mut entry = |line, value: &str| {
            take(Item::Entry {
                line,
                value,
                as_type: spec.entry_type,
                note: None,
            })
        };
        match spec.format {
            Format::Hosts => split_lines(bytes, first_line, |n, l| {
                let Some(e) = strip_comment(l) else { return };
                let mut parts = e.split_whitespace();
                let _sink_addr = parts.next();
                for name in parts.filter(|n| !is_local_hosts_name(n)) {
                    entry(n, name)
                }
            }),
            _ => split_lines(bytes, first_line, |n, l| {
                if let Some(e) = strip_comment(l) {
                    entry(n, e)
                }
            }),
        }
        Ok(())
    })
}

fn note(file: &Path, line: u64, raw: &str, reason: String) -> Rejected {
    Rejected {
        file: file.to_path_buf(),
        line,
        entry: raw.to_owned(),
        reason,
    }
}

/// Classify what `read` hands out into `b`.
fn load_with(
    spec: &FeedSpec,
    meta: &Arc<FeedMeta>,
    path: &Path,
    b: &mut SnapshotBuilder,
    read: impl FnOnce(&mut dyn FnMut(Item<'_>)) -> Result<(), String>,
) -> FeedReport {
    let mut rep = FeedReport {
        name: spec.name.clone(),
        ..Default::default()
    };
    let block = spec.kind == FeedKind::Block;
    let mut take = |item: Item<'_>| {
        let (line, raw, as_type, n) = match item {
            Item::Skip {
                line,
                value,
                reason,
            } => {
                rep.skipped.push(note(path, line, value, reason));
                return;
            }
            Item::Entry {
                line,
                value,
                as_type,
                note,
            } => (line, value, as_type, note),
        };
        if block && as_type == EntryType::Domain && n.is_none() {
            // The bulk case, without an owned entry per line.
            match classify_domain(raw) {
                Ok(d) => {
                    if raw.contains('/') {
                        let why = format!("URL in a domain list: its host {d} was taken");
                        rep.warnings.push(note(path, line, raw, why));
                    }
                    b.add_domain(&d, meta);
                    rep.accepted += 1;
                }
                Err(r @ Reject::FileHash(_)) => {
                    rep.skipped.push(note(path, line, raw, r.to_string()))
                }
                Err(r) => rep.rejected.push(note(path, line, raw, r.to_string())),
            }
            return;
        }
        match classify(raw, as_type) {
            Ok(e) => {
                if as_type == EntryType::Domain && raw.contains('/') {
                    let why = "URL in a domain list: its host was taken".to_string();
                    rep.warnings.push(note(path, line, raw, why));
                }
                if block {
                    b.add_noted(e, meta, n);
                    rep.accepted += 1;
                } else if b.allow(e) {
                    rep.accepted += 1;
                } else {
                    let why = "duplicate, an address:port or a URL/keyword (allowlists take domains, addresses and networks)";
                    rep.rejected.push(note(path, line, raw, why.into()));
                }
            }
            Err(r @ Reject::FileHash(_)) => rep.skipped.push(note(path, line, raw, r.to_string())),
            Err(r) => rep.rejected.push(note(path, line, raw, r.to_string())),
        }
    };
    if let Err(e) = read(&mut take) {
        rep.failed = Some(format!("{}: {e}", path.display()));
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

fn read_csv(spec: &FeedSpec, path: &Path, take: &mut dyn FnMut(u64, &str)) -> std::io::Result<()> {
    let has_headers = spec.has_headers.unwrap_or(true);
    let mut rb = csv::ReaderBuilder::new();
    rb.has_headers(has_headers).flexible(true);
    if let Some(d) = &spec.delimiter {
        rb.delimiter(d.as_bytes()[0]);
    }
    if let Some(c) = &spec.comment {
        rb.comment(Some(c.as_bytes()[0]));
    }
    let mut r = rb.from_path(path).map_err(std::io::Error::other)?;
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
                    path.display()
                );
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    return Err(std::io::Error::other(e));
                }
            }
        }
    }
}
