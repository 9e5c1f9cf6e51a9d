//! Loading many feeds at once: big line-based files are read whole and cut
//! at line ends, every file or piece is parsed on whichever core is free,
//! the pieces are merged per feed in file and line order, and the parts are
//! compiled on every core.

use super::file::{contained, load_file, load_lines, read_capped};
use super::{feed_files, feed_meta};
use crate::intel::feeds::{FeedReport, FeedsConfig};
use crate::intel::{FeedMeta, Part, SnapshotBuilder};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One unit of loading: feed index, file index within the feed, a chunk of
/// the file's bytes with the number of its first line (or the whole file,
/// read by the loader), and its size.
type Work<'a> = (usize, usize, Option<(&'a [u8], u64)>, u64);

/// Feeds at least this large are split over the cores while loading.
const CHUNK_FROM: u64 = 4 << 20;

/// Per feed of the configuration, its files with their sizes (none for a
/// feed not being loaded).
type Files = Vec<Vec<(PathBuf, u64)>>;

/// What one unit of work gave: feed index, file index, first line, the
/// entries and the report.
type Piece = (usize, usize, u64, SnapshotBuilder, FeedReport);

/// One feed ready to compile: feed index, its builders in file and line
/// order, and the report over all of them.
type Pending = (usize, Vec<SnapshotBuilder>, FeedReport);

/// A compiled feed: its position in the pending list, feed index, part and
/// report.
type Built = (usize, usize, Part, FeedReport);

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
    let (files, failed) = list_files(cfg, which);
    let texts = read_big_files(cfg, which, &files, threads);
    let work = work_list(which, &files, &texts, threads);
    let pieces = parse_all(cfg, &metas, &files, &work, threads);
    let t_parse = t0.elapsed();
    let pending = merge_pieces(cfg, which, &files, failed, pieces);
    let built = compile_all(pending, threads);
    tracing::debug!(
        "feeds: read and parsed in {:?}, compiled in {:?}",
        t_parse,
        t0.elapsed() - t_parse
    );
    built.into_iter().map(|(_, i, p, r)| (i, p, r)).collect()
}

/// The files of each feed in `which` with their sizes, or why a feed's
/// files could not be listed.
fn list_files(cfg: &FeedsConfig, which: &[usize]) -> (Files, Vec<Option<String>>) {
    let mut files: Files = vec![Vec::new(); cfg.feeds.len()];
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
    (files, failed)
}

/// Big line-based files, read whole by (feed, file) to be cut into one
/// chunk per thread at line ends, read concurrently (a read is a copy out
/// of the page cache). A file that cannot be read is left to the loader,
/// which says why.
fn read_big_files(
    cfg: &FeedsConfig,
    which: &[usize],
    files: &Files,
    threads: usize,
) -> HashMap<(usize, usize), Vec<u8>> {
    let big: Vec<(usize, usize)> = which
        .iter()
        .flat_map(|&i| (0..files[i].len()).map(move |j| (i, j)))
        .filter(|&(i, j)| {
            threads > 1 && cfg.feeds[i].format.is_line_based() && files[i][j].1 >= CHUNK_FROM
        })
        .collect();
    type Read = ((usize, usize), Option<Vec<u8>>);
    let read: Vec<Read> = std::thread::scope(|sc| {
        let handles: Vec<_> = big
            .iter()
            .map(|&(i, j)| sc.spawn(move || ((i, j), read_capped(&files[i][j].0).ok())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("feed reader panicked"))
            .collect()
    });
    read.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// Every unit of work, largest first: a chunk per thread of each file read
/// above, every other file whole.
fn work_list<'a>(
    which: &[usize],
    files: &Files,
    texts: &'a HashMap<(usize, usize), Vec<u8>>,
    threads: usize,
) -> Vec<Work<'a>> {
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
    work.sort_by_key(|w| Reverse(w.3));
    work
}

/// Parse every unit of `work` on up to `threads` threads, each taking the
/// next unit left until none is.
fn parse_all(
    cfg: &FeedsConfig,
    metas: &[Arc<FeedMeta>],
    files: &Files,
    work: &[Work<'_>],
    threads: usize,
) -> Vec<Piece> {
    let next = AtomicUsize::new(0);
    let run = || parse_some(cfg, metas, files, work, &next);
    std::thread::scope(|sc| {
        let others: Vec<_> = (1..threads.min(work.len()))
            .map(|_| sc.spawn(run))
            .collect();
        let mut all = run();
        for h in others {
            all.extend(h.join().expect("feed loader panicked"));
        }
        all
    })
}

/// One thread's share of [`parse_all`]: units taken off `work` (through
/// `next`) until none is left, each into a builder of its own.
fn parse_some(
    cfg: &FeedsConfig,
    metas: &[Arc<FeedMeta>],
    files: &Files,
    work: &[Work<'_>],
    next: &AtomicUsize,
) -> Vec<Piece> {
    let mut done = Vec::new();
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(&(i, j, chunk, _)) = work.get(k) else {
            break;
        };
        let spec = &cfg.feeds[i];
        let path = &files[i][j].0;
        let (b, rep) = contained(spec, path, i as u32, |b| match chunk {
            Some((bytes, first)) => load_lines(spec, &metas[i], path, bytes, first, b),
            None => load_file(spec, &metas[i], path, b),
        });
        done.push((i, j, chunk.map_or(0, |c| c.1), b, rep));
    }
    done
}

/// Each feed of `which` (in that order) with its pieces' builders in file
/// and line order and one report over them all (the first failure kept).
fn merge_pieces(
    cfg: &FeedsConfig,
    which: &[usize],
    files: &Files,
    mut failed: Vec<Option<String>>,
    mut pieces: Vec<Piece>,
) -> Vec<Pending> {
    // Per feed, pieces in file and line order: the order the builders are
    // merged in (see `merged`).
    pieces.sort_by_key(|p| (p.0, p.1, p.2));
    let mut per_feed: Vec<Pending> = which
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
    per_feed
}

/// Compile the parts, largest first, on up to `threads` threads; returned
/// in the order of `pending`.
fn compile_all(pending: Vec<Pending>, threads: usize) -> Vec<Built> {
    let mut order: Vec<usize> = (0..pending.len()).collect();
    order.sort_by_key(|&k| Reverse(pending[k].1.iter().map(|b| b.entries()).sum::<usize>()));
    let slots: Vec<Mutex<Option<Pending>>> =
        pending.into_iter().map(|s| Mutex::new(Some(s))).collect();
    let next = AtomicUsize::new(0);
    let compile = || compile_some(&order, &slots, &next);
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
    built
}

/// One thread's share of [`compile_all`]: feeds taken off `order` (through
/// `next`) until none is left, each compiled from its merged builders.
fn compile_some(
    order: &[usize],
    slots: &[Mutex<Option<Pending>>],
    next: &AtomicUsize,
) -> Vec<Built> {
    let mut done = Vec::new();
    while let Some(&k) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
        let Some((i, builders, rep)) = slots[k].lock().ok().and_then(|mut s| s.take()) else {
            continue;
        };
        done.push((k, i, merged(i, builders).build_part(), rep));
    }
    done
}

/// A feed's builders as one: the largest (moved, not copied) absorbs the
/// others in order; an empty builder of the feed's rank when there are none.
fn merged(i: usize, mut builders: Vec<SnapshotBuilder>) -> SnapshotBuilder {
    let largest = (0..builders.len()).max_by_key(|&x| builders[x].entries());
    let mut base = match largest {
        Some(x) => builders.swap_remove(x),
        None => SnapshotBuilder::ranked(i as u32),
    };
    for b in builders {
        base.absorb(b);
    }
    base
}
