//! Zeek intel framework TSV files.

use super::{Item, Take, hash_skip, note};
use crate::intel::indicator::{EntryType, file_hash_kind};
use std::collections::HashMap;

/// Zeek intel framework TSV: a `#fields` header names the columns.
pub fn zeek(text: &str, take: &mut Take<'_>) -> Result<(), String> {
    let mut cols: Option<HashMap<&str, usize>> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.trim_end_matches('\r');
        if let Some(f) = line.strip_prefix("#fields") {
            let names = f.trim_start_matches(['\t', ' ']).split('\t');
            cols = Some(names.enumerate().map(|(i, c)| (c, i)).collect());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some(c) = &cols else {
            return Err(format!(
                "line {n}: data before the `#fields` header (is this a Zeek intel file?)"
            ));
        };
        let (Some(&vi), Some(&ti)) = (c.get("indicator"), c.get("indicator_type")) else {
            return Err("the `#fields` header lacks `indicator` or `indicator_type`".into());
        };
        let f: Vec<&str> = line.split('\t').collect();
        let get = |k: &str| c.get(k).and_then(|&i| f.get(i).copied());
        let (Some(value), Some(ty)) = (f.get(vi).copied(), f.get(ti).copied()) else {
            take(Item::Skip {
                line: n,
                value: line,
                reason: "fewer columns than the `#fields` header".into(),
            });
            continue;
        };
        let desc = match (get("meta.source"), get("meta.desc")) {
            (Some(s), Some(d)) if s != "-" && d != "-" => Some(format!("{s}: {d}")),
            (Some(s), _) if s != "-" => Some(s.to_string()),
            (_, Some(d)) => Some(d.to_string()),
            _ => None,
        };
        let as_type = match ty {
            "Intel::ADDR" | "Intel::SUBNET" => EntryType::Ip,
            "Intel::DOMAIN" => EntryType::Domain,
            "Intel::URL" => EntryType::Url,
            "Intel::FILE_HASH" | "Intel::CERT_HASH" | "Intel::PUBKEY_HASH" => {
                let kind = file_hash_kind(value).unwrap_or("file");
                take(Item::Skip {
                    line: n,
                    value,
                    reason: hash_skip(kind),
                });
                continue;
            }
            other => {
                take(Item::Skip {
                    line: n,
                    value,
                    reason: format!("{other} indicators cannot be matched on the wire"),
                });
                continue;
            }
        };
        take(Item::Entry {
            line: n,
            value,
            as_type,
            note: note(get("meta.url"), desc.as_deref()),
        });
    }
    Ok(())
}
