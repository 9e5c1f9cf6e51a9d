//! Classifying what a reader hands out: entries into the builder (block
//! or allow), rejections, skips and warnings into the feed's report.

use crate::intel::feeds::{FeedKind, FeedReport, FeedSpec, Rejected};
use crate::intel::formats::Item;
use crate::intel::indicator::{EntryType, Reject, classify, classify_domain};
use crate::intel::{FeedMeta, SnapshotBuilder};
use std::path::Path;
use std::sync::Arc;

/// A rejection, skip or warning for the entry `raw` at `file:line`.
fn note(file: &Path, line: u64, raw: &str, reason: String) -> Rejected {
    Rejected {
        file: file.to_path_buf(),
        line,
        entry: raw.to_owned(),
        reason,
    }
}

/// Classify what `read` hands out into `b`.
pub(super) fn load_with(
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
