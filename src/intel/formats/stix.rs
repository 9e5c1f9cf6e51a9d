//! STIX 2.0/2.1 bundles: indicator objects whose patterns are equality
//! comparisons joined by OR.

use super::{Item, Take, hash_skip, lines_of, note};
use crate::intel::indicator::{EntryType, file_hash_kind};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// STIX 2.0/2.1 bundle: indicator objects with simple patterns.
pub fn stix(text: &str, take: &mut Take<'_>) -> Result<(), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let objects = match (v.get("type").and_then(Value::as_str), v.get("objects")) {
        (Some("bundle"), Some(Value::Array(o))) => o,
        _ => return Err("not a STIX bundle (no \"type\": \"bundle\" with \"objects\")".into()),
    };
    let lines = lines_of(text, "id", "indicator--");
    let now = Utc::now();
    for o in objects {
        if o.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        let id = o.get("id").and_then(Value::as_str).unwrap_or("");
        let line = lines.get(id).copied().unwrap_or(0);
        indicator(o, id, line, now, take);
    }
    Ok(())
}

/// One indicator object: skipped whole with a reason, or each term of its
/// pattern handed on (terms that cannot be seen on the wire skipped).
fn indicator(o: &Value, id: &str, line: u64, now: DateTime<Utc>, take: &mut Take<'_>) {
    let pattern = o.get("pattern").and_then(Value::as_str).unwrap_or("");
    let skip = |take: &mut Take<'_>, reason: String| {
        take(Item::Skip {
            line,
            value: pattern,
            reason,
        })
    };
    if let Some(reason) = unusable(o, id, now) {
        skip(take, reason);
        return;
    }
    let desc = description(o);
    match stix_pattern(pattern) {
        Ok(terms) => {
            for (path, value) in terms {
                let as_type = match path.as_str() {
                    "ipv4-addr:value" | "ipv6-addr:value" => EntryType::Ip,
                    "domain-name:value" => EntryType::Domain,
                    "url:value" => EntryType::Url,
                    p if p.starts_with("file:hashes") => {
                        let kind = file_hash_kind(&value).unwrap_or("file");
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

/// Why an indicator object must not be loaded at all (revoked, expired or
/// with an unreadable expiry, or a pattern language other than STIX), in
/// that order; `None` when it may.
fn unusable(o: &Value, id: &str, now: DateTime<Utc>) -> Option<String> {
    if o.get("revoked").and_then(Value::as_bool) == Some(true) {
        return Some(format!("{id} is revoked"));
    }
    if let Some(until) = o.get("valid_until").and_then(Value::as_str) {
        match DateTime::parse_from_rfc3339(until) {
            Ok(t) if t < now => return Some(format!("{id} expired (valid_until {until})")),
            Ok(_) => {}
            Err(_) => return Some(format!("{id}: valid_until {until:?} is not a date")),
        }
    }
    match o.get("pattern_type").and_then(Value::as_str) {
        None | Some("stix") => None,
        Some(t) => Some(format!("{id}: pattern_type {t:?} is not a STIX pattern")),
    }
}

/// What the object says the indicator is: its name and its labels (STIX
/// 2.0) or indicator types (2.1), for the alert.
fn description(o: &Value) -> Option<String> {
    let name = o.get("name").and_then(Value::as_str);
    let labels: Vec<&str> = ["labels", "indicator_types"]
        .iter()
        .filter_map(|k| o.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match (name, labels.is_empty()) {
        (Some(n), false) => Some(format!("{n} ({})", labels.join(", "))),
        (Some(n), true) => Some(n.to_string()),
        (None, false) => Some(labels.join(", ")),
        (None, true) => None,
    }
}

/// The `(object path, value)` terms of a STIX pattern made of equality
/// comparisons joined by OR, within or between observation brackets.
/// Anything else (AND, other operators, qualifiers) is refused: it needs
/// several observations at once, which a per-packet matcher cannot see.
pub fn stix_pattern(p: &str) -> Result<Vec<(String, String)>, String> {
    let b = p.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let mut depth = 0;
    let mut expect_term = true;
    loop {
        skip_ws(b, &mut i);
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
            out.push(comparison(p, &mut i)?);
            expect_term = false;
        } else {
            let w = word(p, &mut i);
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

/// Move `i` past whitespace.
fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

/// The word at `i` (up to whitespace, a bracket, a quote or an operator);
/// `i` moved past it.
fn word<'p>(p: &'p str, i: &mut usize) -> &'p str {
    let b = p.as_bytes();
    let s = *i;
    while *i < b.len() && !b[*i].is_ascii_whitespace() && !b"[]'=!<>()".contains(&b[*i]) {
        *i += 1;
    }
    &p[s..*i]
}

/// The `path = 'value'` comparison at `i`, the path without its quotes;
/// `i` moved past it.
fn comparison(p: &str, i: &mut usize) -> Result<(String, String), String> {
    let b = p.as_bytes();
    // An object path may hold quoted segments (`file:hashes.'SHA-256'`).
    let s = *i;
    while *i < b.len() && !b[*i].is_ascii_whitespace() && !b"=!<>[]".contains(&b[*i]) {
        *i += 1;
    }
    let path = &p[s..*i];
    if path.is_empty() || !path.contains(':') {
        return Err(format!("expected an object path at byte {}", *i));
    }
    skip_ws(b, i);
    if b.get(*i) != Some(&b'=') {
        let op = word(p, i);
        return Err(format!("operator {op:?} is not supported (only =)"));
    }
    *i += 1;
    skip_ws(b, i);
    if b.get(*i) != Some(&b'\'') {
        return Err("expected a quoted value".into());
    }
    *i += 1;
    let v = quoted(p, i)?;
    Ok((path.replace(['"', '\''], ""), v))
}

/// The rest of a single-quoted string whose opening quote is just before
/// `i`, with backslash escapes undone; `i` moved past the closing quote.
fn quoted(p: &str, i: &mut usize) -> Result<String, String> {
    let b = p.as_bytes();
    let mut v = String::new();
    loop {
        match b.get(*i) {
            None => return Err("unterminated string".into()),
            Some(b'\\') if *i + 1 < b.len() => {
                // The escaped character, whole: it may be several bytes
                // (`'a\é.example'` once sliced inside the é and panicked).
                let c = p[*i + 1..].chars().next().unwrap_or('?');
                v.push(c);
                *i += 1 + c.len_utf8();
            }
            Some(b'\'') => {
                *i += 1;
                return Ok(v);
            }
            Some(_) => {
                let c = p[*i..].chars().next().unwrap_or('?');
                v.push(c);
                *i += c.len_utf8();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14, defect 1: an escaped multi-byte character is taken whole
    /// (it used to panic, which stopped start-up and killed reloads).
    #[test]
    fn an_escaped_multibyte_character_is_no_panic() {
        let mut i = 1;
        assert_eq!(quoted("'a\\é.example'", &mut i).unwrap(), "aé.example");
        let mut i = 1;
        assert_eq!(quoted("'\\\\x\\''", &mut i).unwrap(), "\\x'");
        assert!(stix_pattern("[domain-name:value = 'a\\é.example']").is_ok());
        for s in ["'\\é", "'\\", "'é\\ü'", "'\\😀'"] {
            let mut i = 1;
            let _ = quoted(s, &mut i);
        }
    }

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
