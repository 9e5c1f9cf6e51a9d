//! Readers for the structured feed formats: Zeek intel TSV, STIX 2.x
//! bundles, MISP events, Maltrail `trails.csv`, Suricata IP reputation and
//! CERT annex tables (XLSX or CSV).
//!
//! Each reader turns a file into [`Item`]s: an entry with the type the
//! format declares and what the format said about it, or a skip with a
//! named reason (file hashes, expired or revoked indicators, types that
//! cannot be seen on the wire). Classification (`indicator::classify`) is
//! left to the loader so every format is validated the same way. For JSON
//! formats the line is the line of the object's id in the file (0 when it
//! cannot be found, e.g. a one-line file).

mod annex;
mod iprep;
mod maltrail;
mod misp;
mod stix;
mod zeek;

pub use annex::annex;
pub use iprep::iprep;
pub use maltrail::maltrail;
pub use misp::misp;
pub use stix::stix;
pub use zeek::zeek;

use super::indicator::{EntryType, Reject};
use super::part::Note;
use std::collections::HashMap;

/// What a reader hands the loader.
pub enum Item<'a> {
    Entry {
        line: u64,
        value: &'a str,
        as_type: EntryType,
        note: Option<Note>,
    },
    Skip {
        line: u64,
        value: &'a str,
        reason: String,
    },
}

type Take<'t> = dyn FnMut(Item<'_>) + 't;

fn note(reference: Option<&str>, description: Option<&str>) -> Option<Note> {
    let clean = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty() && *s != "-")
            .map(Box::from)
    };
    let n = Note {
        reference: clean(reference),
        description: clean(description),
    };
    (n.reference.is_some() || n.description.is_some()).then_some(n)
}

fn hash_skip(kind: &'static str) -> String {
    Reject::FileHash(kind).to_string()
}

/// Line of each `"key": "value"` whose value starts with `prefix`, keyed by
/// the value: lets JSON readers report a line per object.
fn lines_of<'a>(text: &'a str, key: &str, prefix: &str) -> HashMap<&'a str, u64> {
    let mut out = HashMap::new();
    let pat = format!("\"{key}\"");
    for (i, line) in text.lines().enumerate() {
        let Some(k) = line.find(&pat) else { continue };
        let rest = line[k + pat.len()..].trim_start_matches([' ', ':', '\t']);
        let Some(v) = rest.strip_prefix('"') else {
            continue;
        };
        if let Some(end) = v.find('"')
            && v.starts_with(prefix)
        {
            out.entry(&v[..end]).or_insert(i as u64 + 1);
        }
    }
    out
}
