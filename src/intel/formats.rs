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

use super::feeds::FeedSpec;
use super::indicator::{EntryType, Reject};
use super::part::Note;
use serde_json::Value;
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
                let kind = super::indicator::file_hash_kind(value).unwrap_or("file");
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

/// STIX 2.0/2.1 bundle: indicator objects with simple patterns.
pub fn stix(text: &str, take: &mut Take<'_>) -> Result<(), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let objects = match (v.get("type").and_then(Value::as_str), v.get("objects")) {
        (Some("bundle"), Some(Value::Array(o))) => o,
        _ => return Err("not a STIX bundle (no \"type\": \"bundle\" with \"objects\")".into()),
    };
    let lines = lines_of(text, "id", "indicator--");
    let now = chrono::Utc::now();
    for o in objects {
        if o.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        let id = o.get("id").and_then(Value::as_str).unwrap_or("");
        let line = lines.get(id).copied().unwrap_or(0);
        let pattern = o.get("pattern").and_then(Value::as_str).unwrap_or("");
        let skip = |take: &mut Take<'_>, reason: String| {
            take(Item::Skip {
                line,
                value: pattern,
                reason,
            })
        };
        if o.get("revoked").and_then(Value::as_bool) == Some(true) {
            skip(take, format!("{id} is revoked"));
            continue;
        }
        if let Some(until) = o.get("valid_until").and_then(Value::as_str) {
            match chrono::DateTime::parse_from_rfc3339(until) {
                Ok(t) if t < now => {
                    skip(take, format!("{id} expired (valid_until {until})"));
                    continue;
                }
                Ok(_) => {}
                Err(_) => {
                    skip(take, format!("{id}: valid_until {until:?} is not a date"));
                    continue;
                }
            }
        }
        match o.get("pattern_type").and_then(Value::as_str) {
            None | Some("stix") => {}
            Some(t) => {
                skip(
                    take,
                    format!("{id}: pattern_type {t:?} is not a STIX pattern"),
                );
                continue;
            }
        }
        let name = o.get("name").and_then(Value::as_str);
        let labels: Vec<&str> = ["labels", "indicator_types"]
            .iter()
            .filter_map(|k| o.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let desc = match (name, labels.is_empty()) {
            (Some(n), false) => Some(format!("{n} ({})", labels.join(", "))),
            (Some(n), true) => Some(n.to_string()),
            (None, false) => Some(labels.join(", ")),
            (None, true) => None,
        };
        match stix_pattern(pattern) {
            Ok(terms) => {
                for (path, value) in terms {
                    let as_type = match path.as_str() {
                        "ipv4-addr:value" | "ipv6-addr:value" => EntryType::Ip,
                        "domain-name:value" => EntryType::Domain,
                        "url:value" => EntryType::Url,
                        p if p.starts_with("file:hashes") => {
                            let kind = super::indicator::file_hash_kind(&value).unwrap_or("file");
                            skip(take, hash_skip(kind));
                            continue;
                        }
                        p => {
                            skip(take, format!("{id}: {p} cannot be matched on the wire"));
                            continue;
                        }
                    };
                    take(Item::Entry {
                        line,
                        value: &value,
                        as_type,
                        note: note(Some(id), desc.as_deref()),
                    });
                }
            }
            Err(why) => skip(take, format!("{id}: pattern not usable: {why}")),
        }
    }
    Ok(())
}

/// The `(object path, value)` terms of a STIX pattern made of equality
/// comparisons joined by OR, within or between observation brackets.
/// Anything else (AND, other operators, qualifiers) is refused: it needs
/// several observations at once, which a per-packet matcher cannot see.
pub fn stix_pattern(p: &str) -> Result<Vec<(String, String)>, String> {
    let b = p.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let word = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && !b[*i].is_ascii_whitespace() && !b"[]'=!<>()".contains(&b[*i]) {
            *i += 1;
        }
        &p[s..*i]
    };
    let mut depth = 0;
    let mut expect_term = true;
    loop {
        ws(&mut i);
        if i >= b.len() {
            break;
        }
        match b[i] {
            b'[' if expect_term => {
                depth += 1;
                i += 1;
                continue;
            }
            b']' if !expect_term && depth > 0 => {
                depth -= 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        if expect_term {
            if depth == 0 {
                return Err("comparison outside [ ]".into());
            }
            // An object path may hold quoted segments (`file:hashes.'SHA-256'`).
            let s = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !b"=!<>[]".contains(&b[i]) {
                i += 1;
            }
            let path = &p[s..i];
            if path.is_empty() || !path.contains(':') {
                return Err(format!("expected an object path at byte {i}"));
            }
            ws(&mut i);
            if b.get(i) != Some(&b'=') {
                let op = word(&mut i);
                return Err(format!("operator {op:?} is not supported (only =)"));
            }
            i += 1;
            ws(&mut i);
            if b.get(i) != Some(&b'\'') {
                return Err("expected a quoted value".into());
            }
            i += 1;
            let mut v = String::new();
            loop {
                match b.get(i) {
                    None => return Err("unterminated string".into()),
                    Some(b'\\') if i + 1 < b.len() => {
                        v.push(b[i + 1] as char);
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let c = p[i..].chars().next().unwrap_or('?');
                        v.push(c);
                        i += c.len_utf8();
                    }
                }
            }
            out.push((path.replace(['"', '\''], ""), v));
            expect_term = false;
        } else {
            let w = word(&mut i);
            match w {
                "OR" => expect_term = true,
                "AND" => return Err("AND needs several observations at once".into()),
                "" => return Err(format!("unexpected {:?}", b[i] as char)),
                q => return Err(format!("{q} is not supported")),
            }
        }
    }
    if depth != 0 || expect_term || out.is_empty() {
        return Err("unbalanced or empty pattern".into());
    }
    Ok(out)
}

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
        let direct = ev.get("Attribute").and_then(Value::as_array).into_iter();
        let in_objects = ev
            .get("Object")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("Attribute").and_then(Value::as_array));
        for a in direct.chain(in_objects).flatten() {
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
                continue;
            }
            let to_ids = match a.get("to_ids") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s == "1" || s == "true",
                _ => false,
            };
            let comment = a
                .get("comment")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty());
            let desc = comment.or(info);
            let n = || note(reference.as_deref(), desc);
            let entry = |take: &mut Take<'_>, value: &str, as_type| {
                take(Item::Entry {
                    line,
                    value,
                    as_type,
                    note: n(),
                })
            };
            let hash_kind = ty.rsplit('|').next().unwrap_or(ty);
            match ty {
                _ if !matches!(
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
                ) =>
                {
                    let reason = match hash_kind {
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
                    };
                    skip(take, reason);
                }
                _ if to_ids_only && !to_ids => {
                    skip(
                        take,
                        format!("to_ids is false ({ty}); set to_ids_only = false to load it"),
                    );
                }
                "ip-dst" | "ip-src" => entry(take, value, EntryType::Ip),
                "ip-dst|port" | "ip-src|port" => {
                    let joined = value.replacen('|', ":", 1);
                    let joined = if joined.matches(':').count() > 1 {
                        let (ip, port) = value.split_once('|').unwrap_or((value, ""));
                        format!("[{ip}]:{port}")
                    } else {
                        joined
                    };
                    entry(take, &joined, EntryType::Auto)
                }
                "domain" | "hostname" => entry(take, value, EntryType::Domain),
                "hostname|port" => entry(
                    take,
                    value.split('|').next().unwrap_or(""),
                    EntryType::Domain,
                ),
                "domain|ip" => {
                    let (d, ip) = value.split_once('|').unwrap_or((value, ""));
                    entry(take, d, EntryType::Domain);
                    entry(take, ip, EntryType::Ip);
                }
                _ => entry(take, value, EntryType::Url),
            }
        }
    }
    Ok(())
}

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

/// Maltrail `trails.csv`: `trail,info,reference`, no header.
pub fn maltrail(path: &std::path::Path, take: &mut Take<'_>) -> Result<(), String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| e.to_string())?;
    let mut rec = csv::StringRecord::new();
    loop {
        match r.read_record(&mut rec) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = rec.position().map_or(0, |p| p.line());
                let value = rec.get(0).unwrap_or("");
                take(Item::Entry {
                    line,
                    value,
                    as_type: EntryType::Auto,
                    note: note(rec.get(2), rec.get(1)),
                });
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                let line = e.position().map_or(0, |p| p.line());
                take(Item::Skip {
                    line,
                    value: "",
                    reason: "not UTF-8".into(),
                });
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Suricata IP reputation: `ip-or-cidr,category,score`, no header; the
/// optional categories file (`id,short,description`) names the category.
pub fn iprep(spec: &FeedSpec, take: &mut Take<'_>) -> Result<(), String> {
    let mut names: HashMap<String, String> = HashMap::new();
    if let Some(c) = &spec.categories {
        let text = std::fs::read_to_string(c)
            .map_err(|e| format!("categories file {}: {e}", c.display()))?;
        for l in text.lines() {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() >= 2 {
                names.insert(f[0].trim().to_string(), f[1].trim().to_string());
            }
        }
    }
    let min = spec.min_score.unwrap_or(0);
    let text = std::fs::read_to_string(&spec.path).map_err(|e| e.to_string())?;
    for (i, l) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let (Some(ip), Some(cat), Some(score)) = (f.first(), f.get(1), f.get(2)) else {
            take(Item::Skip {
                line,
                value: l,
                reason: "expected ip-or-cidr,category,score".into(),
            });
            continue;
        };
        let Ok(score) = score.parse::<u32>() else {
            take(Item::Skip {
                line,
                value: l,
                reason: format!("score {score:?} is not a number"),
            });
            continue;
        };
        if score < min {
            take(Item::Skip {
                line,
                value: ip,
                reason: format!("score {score} below min_score {min}"),
            });
            continue;
        }
        let cat_name = names.get(*cat).map_or(*cat, String::as_str);
        take(Item::Entry {
            line,
            value: ip,
            as_type: EntryType::Ip,
            note: note(None, Some(&format!("{cat_name} (score {score})"))),
        });
    }
    Ok(())
}

/// Header cells that name the indicator column of an annex table.
const INDICATOR_HEADERS: [&str; 10] = [
    "indicator",
    "ioc",
    "value",
    "giá trị",
    "chỉ số",
    "địa chỉ",
    "tên miền/ip",
    "ip/tên miền",
    "tên miền",
    "địa chỉ ip",
];
const TYPE_HEADERS: [&str; 4] = ["type", "loại", "kiểu", "indicator_type"];
const DESC_HEADERS: [&str; 5] = ["description", "mô tả", "ghi chú", "comment", "note"];

/// A CERT annex table: rows of (row number, indicator, type, description)
/// below a header row that may follow title rows. Columns are found by
/// header name (English or Vietnamese) unless `column` names one.
pub fn annex(spec: &FeedSpec, take: &mut Take<'_>) -> Result<(), String> {
    let is_xlsx = spec
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx") || e.eq_ignore_ascii_case("xls"));
    let sheets: Sheets = if is_xlsx {
        read_xlsx(spec)?
    } else {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(&spec.path)
            .map_err(|e| e.to_string())?;
        let rows = r
            .records()
            .map(|rec| {
                rec.map(|r| {
                    r.iter()
                        .map(|c| c.trim_start_matches('\u{feff}').to_string())
                        .collect()
                })
                .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<Vec<String>>, String>>()?;
        vec![(String::new(), rows)]
    };
    let mut found_any = false;
    for (sheet, rows) in &sheets {
        let norm = |s: &str| s.trim().to_lowercase();
        let pick = |row: &[String], names: &[&str]| {
            row.iter().position(|c| names.iter().any(|n| norm(c) == *n))
        };
        // The header row: the first whose cells name an indicator column.
        let header = rows.iter().position(|r| match &spec.column {
            Some(super::feeds::Column::Name(n)) => r.iter().any(|c| norm(c) == norm(n)),
            _ => pick(r, &INDICATOR_HEADERS).is_some(),
        });
        let (first, vi, ti, di) = match (header, &spec.column) {
            (_, Some(super::feeds::Column::Index(i))) => (0, *i, None, None),
            (Some(h), col) => {
                let vi = match col {
                    Some(super::feeds::Column::Name(n)) => {
                        rows[h].iter().position(|c| norm(c) == norm(n))
                    }
                    _ => pick(&rows[h], &INDICATOR_HEADERS),
                };
                let Some(vi) = vi else { continue };
                (
                    h + 1,
                    vi,
                    pick(&rows[h], &TYPE_HEADERS),
                    pick(&rows[h], &DESC_HEADERS),
                )
            }
            (None, _) => continue,
        };
        found_any = true;
        for (r, row) in rows.iter().enumerate().skip(first) {
            let line = r as u64 + 1;
            let Some(value) = row.get(vi).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
                continue;
            };
            let ty = ti
                .and_then(|i| row.get(i))
                .map(|t| norm(t))
                .unwrap_or_default();
            let as_type = if ty.contains("hash") || ty.contains("md5") || ty.contains("sha") {
                let kind = super::indicator::file_hash_kind(value).unwrap_or("file");
                take(Item::Skip {
                    line,
                    value,
                    reason: hash_skip(kind),
                });
                continue;
            } else if ty.contains("url") || ty.contains("đường dẫn") {
                EntryType::Url
            } else if ty.contains("domain") || ty.contains("tên miền") || ty.contains("hostname")
            {
                EntryType::Domain
            } else if ty.starts_with("ip") || ty.contains("địa chỉ ip") {
                EntryType::Ip
            } else {
                EntryType::Auto
            };
            let desc = di.and_then(|i| row.get(i)).map(String::as_str);
            let reference = (!sheet.is_empty()).then(|| format!("{sheet}!{line}"));
            take(Item::Entry {
                line,
                value,
                as_type,
                note: note(reference.as_deref(), desc),
            });
        }
    }
    if !found_any {
        return Err(format!(
            "no header row naming the indicator column (looked for: {}); set `column`",
            INDICATOR_HEADERS.join(", ")
        ));
    }
    Ok(())
}

/// Sheets as (name, rows of cells).
type Sheets = Vec<(String, Vec<Vec<String>>)>;

fn read_xlsx(spec: &FeedSpec) -> Result<Sheets, String> {
    use calamine::{Reader, open_workbook_auto};
    let mut wb = open_workbook_auto(&spec.path).map_err(|e| e.to_string())?;
    let names: Vec<String> = match &spec.sheet {
        Some(s) => vec![s.clone()],
        None => wb.sheet_names().to_vec(),
    };
    let mut out = Vec::new();
    for name in names {
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| format!("sheet {name:?}: {e}"))?;
        let rows = range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        out.push((name, rows));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stix_patterns() {
        let p = |s| stix_pattern(s);
        assert_eq!(
            p("[ipv4-addr:value = '1.2.3.4']").unwrap(),
            vec![("ipv4-addr:value".into(), "1.2.3.4".into())]
        );
        let two = p("[domain-name:value = 'a.example' OR url:value = 'http://x/\\'q']").unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].1, "http://x/'q");
        assert_eq!(
            p("[domain-name:value = 'a'] OR [ipv4-addr:value = '5.6.7.8']")
                .unwrap()
                .len(),
            2
        );
        for bad in [
            "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'x']",
            "[ipv4-addr:value != '1.2.3.4']",
            "[url:value MATCHES '^x']",
            "[ipv4-addr:value = '1.2.3.4'] WITHIN 10 SECONDS",
            "[ipv4-addr:value = '1.2.3.4'",
            "ipv4-addr:value = '1.2.3.4'",
            "[ipv4-addr:value = '1.2.3.4]",
            "[]",
            "",
            "[file:hashes.'SHA-256' = ']",
        ] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
        let h = p("[file:hashes.'SHA-256' = 'abcd']").unwrap();
        assert_eq!(h[0].0, "file:hashes.SHA-256");
    }
}
