//! MISP event JSON: the attributes of network types, as the event marks
//! them for detection.

use super::{Item, Take, hash_skip, lines_of, note};
use crate::intel::indicator::EntryType;
use serde_json::Value;
use std::collections::HashMap;

/// MISP event JSON: `{"Event": ...}`, `{"response": [{"Event": ...}]}` or a
/// list of either.
pub fn misp(text: &str, to_ids_only: bool, take: &mut Take<'_>) -> Result<(), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut events = Vec::new();
    collect_events(&v, &mut events);
    if events.is_empty() {
        return Err("not a MISP event (no \"Event\" object)".into());
    }
    let lines = lines_of(text, "uuid", "");
    for ev in events {
        let info = ev.get("info").and_then(Value::as_str);
        let ev_uuid = ev.get("uuid").and_then(Value::as_str).unwrap_or("");
        let reference = (!ev_uuid.is_empty()).then(|| format!("misp-event:{ev_uuid}"));
        for a in attributes(ev) {
            attribute(a, &lines, reference.as_deref(), info, to_ids_only, take);
        }
    }
    Ok(())
}

/// An event's own attributes, then those of its objects.
fn attributes(ev: &Value) -> impl Iterator<Item = &Value> {
    let direct = ev.get("Attribute").and_then(Value::as_array).into_iter();
    let in_objects = ev
        .get("Object")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("Attribute").and_then(Value::as_array));
    direct.chain(in_objects).flatten()
}

/// One attribute: skipped with a reason (deleted, not a network type, or
/// not marked `to_ids` when only those are wanted), else handed on as its
/// entries with the event's reference and the comment or event info.
fn attribute(
    a: &Value,
    lines: &HashMap<&str, u64>,
    reference: Option<&str>,
    info: Option<&str>,
    to_ids_only: bool,
    take: &mut Take<'_>,
) {
    let ty = a.get("type").and_then(Value::as_str).unwrap_or("");
    let value = a.get("value").and_then(Value::as_str).unwrap_or("");
    let uuid = a.get("uuid").and_then(Value::as_str).unwrap_or("");
    let line = lines.get(uuid).copied().unwrap_or(0);
    let skip = |take: &mut Take<'_>, reason: String| {
        take(Item::Skip {
            line,
            value,
            reason,
        })
    };
    if a.get("deleted").and_then(Value::as_bool) == Some(true) {
        skip(take, "attribute deleted".into());
        return;
    }
    let to_ids = match a.get("to_ids") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "1" || s == "true",
        _ => false,
    };
    if let Some(reason) = unmatchable(ty) {
        skip(take, reason);
        return;
    }
    if to_ids_only && !to_ids {
        skip(
            take,
            format!("to_ids is false ({ty}); set to_ids_only = false to load it"),
        );
        return;
    }
    let comment = a
        .get("comment")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty());
    let desc = comment.or(info);
    entries(ty, value, &mut |value, as_type| {
        take(Item::Entry {
            line,
            value,
            as_type,
            note: note(reference, desc),
        })
    });
}

/// Why an attribute of type `ty` is never loaded, whatever its flags: a
/// file hash, or another type that cannot be seen on the wire.
fn unmatchable(ty: &str) -> Option<String> {
    if matches!(
        ty,
        "ip-dst"
            | "ip-src"
            | "ip-dst|port"
            | "ip-src|port"
            | "domain"
            | "hostname"
            | "domain|ip"
            | "hostname|port"
            | "url"
    ) {
        return None;
    }
    let hash_kind = ty.rsplit('|').next().unwrap_or(ty);
    Some(match hash_kind {
        "md5" | "sha1" | "sha256" | "sha512" | "ssdeep" | "imphash" | "tlsh" => {
            hash_skip(match hash_kind {
                "md5" => "md5",
                "sha1" => "sha1",
                "sha256" => "sha256",
                "sha512" => "sha512",
                "ssdeep" => "ssdeep",
                "imphash" => "imphash",
                _ => "tlsh",
            })
        }
        _ => format!("MISP type {ty:?} is not a network indicator"),
    })
}

/// The entries of a network attribute by its type: an `ip|port` becomes
/// one `address:port` (bracketed for IPv6), a `domain|ip` two entries, a
/// `hostname|port` its host.
fn entries(ty: &str, value: &str, entry: &mut dyn FnMut(&str, EntryType)) {
    match ty {
        "ip-dst" | "ip-src" => entry(value, EntryType::Ip),
        "ip-dst|port" | "ip-src|port" => {
            let joined = value.replacen('|', ":", 1);
            let joined = if joined.matches(':').count() > 1 {
                let (ip, port) = value.split_once('|').unwrap_or((value, ""));
                format!("[{ip}]:{port}")
            } else {
                joined
            };
            entry(&joined, EntryType::Auto)
        }
        "domain" | "hostname" => entry(value, EntryType::Domain),
        "hostname|port" => entry(value.split('|').next().unwrap_or(""), EntryType::Domain),
        "domain|ip" => {
            let (d, ip) = value.split_once('|').unwrap_or((value, ""));
            entry(d, EntryType::Domain);
            entry(ip, EntryType::Ip);
        }
        _ => entry(value, EntryType::Url),
    }
}

/// The events in `v`: an `Event` object, a list, or under `response`.
fn collect_events<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect_events(x, out)),
        Value::Object(o) => {
            if let Some(e) = o.get("Event") {
                out.push(e);
            } else if let Some(r) = o.get("response") {
                collect_events(r, out);
            }
        }
        _ => {}
    }
}
