//! Reading one file of a feed into a builder, whatever its format: plain
//! and hosts lists line by line, CSV columns, and the structured formats.

use super::entries::load_with;
use crate::intel::FeedMeta;
use crate::intel::SnapshotBuilder;
use crate::intel::feeds::{Column, FeedReport, FeedSpec, Format};
use crate::intel::formats::{self, Item};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

/// Every feed file is held in memory whole while it is parsed; a larger
/// one is refused with a named reason instead.
const MAX_WHOLE_FILE: u64 = 1 << 30;

/// Read one file of a feed, whatever its format. Every format is read
/// whole (at most [`MAX_WHOLE_FILE`] bytes) and parsed from memory by
/// [`load_bytes`], the entry point the fuzz targets share.
pub(super) fn load_file(
    spec: &FeedSpec,
    meta: &Arc<FeedMeta>,
    path: &Path,
    b: &mut SnapshotBuilder,
) -> FeedReport {
    let failed = |why: String| FeedReport {
        name: spec.name.clone(),
        failed: Some(why),
        ..Default::default()
    };
    let bytes = match read_capped(path) {
        Ok(bytes) => bytes,
        Err(e) => return failed(format!("{}: {e}", path.display())),
    };
    let categories = match (&spec.format, &spec.categories) {
        (Format::Iprep, Some(c)) => match read_capped(c) {
            Ok(c) => Some(c),
            Err(e) => return failed(format!("categories file {}: {e}", c.display())),
        },
        _ => None,
    };
    load_bytes(spec, meta, path, &bytes, categories.as_deref(), b)
}

/// Parse the whole text of one feed file (`path` names it in reports; it is
/// not opened) into `b`; `categories` is an iprep feed's categories file.
pub fn load_bytes(
    spec: &FeedSpec,
    meta: &Arc<FeedMeta>,
    path: &Path,
    bytes: &[u8],
    categories: Option<&[u8]>,
    b: &mut SnapshotBuilder,
) -> FeedReport {
    #[cfg(feature = "testkit")]
    crate::packet::inject::check(bytes);
    let text = || String::from_utf8_lossy(bytes);
    match spec.format {
        Format::Plain | Format::Hosts => load_lines(spec, meta, path, bytes, 1, b),
        Format::Csv => load_with(spec, meta, path, b, |take| {
            read_csv(spec, path, bytes, &mut |line, v| {
                take(Item::Entry {
                    line,
                    value: v,
                    as_type: spec.entry_type,
                    note: None,
                })
            })
            .map_err(|e| e.to_string())
        }),
        Format::Zeek => load_with(spec, meta, path, b, |take| formats::zeek(&text(), take)),
        Format::Stix => load_with(spec, meta, path, b, |take| formats::stix(&text(), take)),
        Format::Misp => load_with(spec, meta, path, b, |take| {
            formats::misp(&text(), spec.to_ids_only.unwrap_or(true), take)
        }),
        Format::Maltrail => load_with(spec, meta, path, b, |take| formats::maltrail(bytes, take)),
        Format::Iprep => load_with(spec, meta, path, b, |take| {
            let cats = categories.map(String::from_utf8_lossy);
            let min = spec.min_score.unwrap_or(0);
            formats::iprep(&text(), cats.as_deref(), min, take)
        }),
        Format::Annex => load_with(spec, meta, path, b, |take| {
            let mut s = spec.clone();
            s.path = path.to_path_buf();
            formats::annex(&s, bytes, take)
        }),
    }
}

/// Run `load` (reading `path` of `spec` into a fresh builder whose first
/// feed ranks `rank`), surviving a panic: a reader bug must not take the
/// loader (start-up, the reload thread, the HTTP listener) down. The feed
/// is refused with the reason and an empty builder, and the panic counted;
/// a reload then keeps the feed's last version.
pub(super) fn contained(
    spec: &FeedSpec,
    path: &Path,
    rank: u32,
    load: impl FnOnce(&mut SnapshotBuilder) -> FeedReport,
) -> (SnapshotBuilder, FeedReport) {
    let mut b = SnapshotBuilder::ranked(rank);
    match catch_unwind(AssertUnwindSafe(|| load(&mut b))) {
        Ok(rep) => (b, rep),
        Err(e) => {
            crate::packet::panics::FEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let why = panic_message(e.as_ref());
            let failed = format!(
                "{}: the {:?} reader panicked ({why}); feed refused. This is a bug: please \
                 report it with this file",
                path.display(),
                spec.format
            );
            tracing::error!("feed {}: {failed}", spec.name);
            let rep = FeedReport {
                name: spec.name.clone(),
                failed: Some(failed),
                ..Default::default()
            };
            (SnapshotBuilder::ranked(rank), rep)
        }
    }
}

/// The text a panic was raised with.
pub(crate) fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// The whole file, unless it is larger than any feed should be.
pub(super) fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
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
pub(super) fn load_lines(
    spec: &FeedSpec,
    meta: &Arc<FeedMeta>,
    path: &Path,
    bytes: &[u8],
    first_line: u64,
    b: &mut SnapshotBuilder,
) -> FeedReport {
    #[cfg(feature = "testkit")]
    crate::packet::inject::check(bytes);
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

fn read_csv(
    spec: &FeedSpec,
    path: &Path,
    bytes: &[u8],
    take: &mut dyn FnMut(u64, &str),
) -> std::io::Result<()> {
    let has_headers = spec.has_headers.unwrap_or(true);
    let mut rb = csv::ReaderBuilder::new();
    rb.has_headers(has_headers).flexible(true);
    if let Some(d) = &spec.delimiter {
        rb.delimiter(d.as_bytes()[0]);
    }
    if let Some(c) = &spec.comment {
        rb.comment(Some(c.as_bytes()[0]));
    }
    let mut r = rb.from_reader(bytes);
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
