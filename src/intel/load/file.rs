//! Reading one file of a feed into a builder, whatever its format: plain
//! and hosts lists line by line, CSV columns, and the structured formats.

use super::entries::load_with;
use crate::intel::FeedMeta;
use crate::intel::SnapshotBuilder;
use crate::intel::feeds::{Column, FeedReport, FeedSpec, Format};
use crate::intel::formats::{self, Item};
use std::path::Path;
use std::sync::Arc;

/// Files no reader should hold in memory whole (JSON and spreadsheets are
/// parsed in one piece): refused with a named reason instead.
const MAX_WHOLE_FILE: u64 = 1 << 30;

/// A reader of a whole file's text into items.
type WholeReader<'r> = &'r dyn Fn(&str, &mut dyn FnMut(Item<'_>)) -> Result<(), String>;

/// Read one file of a feed, whatever its format.
pub(super) fn load_file(
    spec: &FeedSpec,
    meta: &Arc<FeedMeta>,
    path: &Path,
    b: &mut SnapshotBuilder,
) -> FeedReport {
    let whole = |b: &mut SnapshotBuilder, f: WholeReader<'_>| {
        load_with(spec, meta, path, b, |take| {
            within_cap(spec, path)?;
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
            within_cap(spec, path)?;
            if let Some(c) = &spec.categories {
                within_cap(spec, c).map_err(|e| format!("categories file {}: {e}", c.display()))?;
            }
            let mut s = spec.clone();
            s.path = path.to_path_buf();
            formats::iprep(&s, take)
        }),
        Format::Annex => load_with(spec, meta, path, b, |take| {
            within_cap(spec, path)?;
            let mut s = spec.clone();
            s.path = path.to_path_buf();
            formats::annex(&s, take)
        }),
    }
}

/// Refuse a file larger than a reader may hold whole (every format but
/// plain, hosts and CSV, which are read in pieces or capped on their own).
fn within_cap(spec: &FeedSpec, path: &Path) -> Result<(), String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_WHOLE_FILE {
        return Err(format!(
            "{len} bytes: larger than the {} MiB a {:?} file may have; split it",
            MAX_WHOLE_FILE >> 20,
            spec.format
        ));
    }
    Ok(())
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
