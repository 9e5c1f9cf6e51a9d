//! Reading Rust source as text, for the architecture test: comments and
//! literals blanked out, test code told apart, the top-level module each
//! `crate::`, `gatewatch::` and `super::` path reaches, the module graph and
//! its cycles, and the length of every function. Text, not a parser: it
//! relies on `rustfmt`'s layout and on this crate's conventions (a test
//! module sits under `#[cfg(test)]`).

use std::collections::{BTreeMap, BTreeSet};

/// Outside the layer stack: may use any layer; only test code may use it.
pub const TEST_KIT: &str = "testkit";

/// The module path of a file: `capture/live.rs` -> `["capture", "live"]`,
/// `capture/mod.rs` -> `["capture"]`, `lib.rs` -> `[]`.
pub fn module_path(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// `text` with comments and the insides of string and char literals
/// replaced by spaces (newlines kept), so positions and lines still match.
pub fn blank(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = c.clone();
    let mut i = 0;
    let wipe = |out: &mut Vec<char>, from: usize, to: usize| {
        for ch in out.iter_mut().take(to.min(c.len())).skip(from) {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            wipe(&mut out, i, end);
            i = end;
        } else if c[i] == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 1;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 1;
                }
                j += 1;
            }
            wipe(&mut out, i, j);
            i = j;
        } else if let Some(end) = raw_string_end(&c, i) {
            wipe(&mut out, i + 1, end - 1);
            i = end;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            wipe(&mut out, i + 1, j);
            i = j + 1;
        } else if c[i] == '\'' {
            i = char_literal_end(&c, i).map_or(i + 1, |end| {
                wipe(&mut out, i + 1, end - 1);
                end
            });
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// At `r"`, `r#"`, `br"`, ...: the index just past the raw string.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    if c[i] != 'r' || (i > 0 && (c[i - 1].is_alphanumeric() && c[i - 1] != 'b' || c[i - 1] == '_'))
    {
        return None;
    }
    let hashes = c[i + 1..].iter().take_while(|&&x| x == '#').count();
    if c.get(i + 1 + hashes) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let start = i + 2 + hashes;
    (start..c.len())
        .find(|&j| c[j..].starts_with(&close))
        .map(|j| j + close.len())
}

/// At a `'`: the index just past a char literal (`'x'`, `'\n'`,
/// `'\u{1f}'`), or `None` for a lifetime or a label.
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    match c.get(i + 1) {
        Some('\\') => (i + 2..c.len().min(i + 12))
            .find(|&j| c[j] == '\'')
            .map(|j| j + 1),
        Some(_) if c.get(i + 2) == Some(&'\'') => Some(i + 3),
        _ => None,
    }
}

fn line_of(text: &str, pos: usize) -> usize {
    text[..pos].matches('\n').count() + 1
}

/// The byte index of the brace that closes the one at `open`.
fn matching_brace(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (j, &ch) in b.iter().enumerate().skip(open) {
        match ch {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// Byte ranges of test code in a blanked file: `#[cfg(test)]` items (a
/// test module with its body, or a `mod tests;` declaration).
pub fn test_spans(blanked: &str) -> Vec<(usize, usize)> {
    let b = blanked.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(k) = blanked[from..].find("#[cfg(test)]") {
        let at = from + k;
        let rest = &blanked[at..];
        let end = match (rest.find('{'), rest.find(';')) {
            (Some(o), semi) if semi.is_none_or(|s| o < s) => matching_brace(b, at + o),
            (_, Some(s)) => Some(at + s),
            _ => None,
        }
        .unwrap_or(blanked.len() - 1);
        spans.push((at, end + 1));
        from = end + 1;
    }
    spans
}

fn in_spans(spans: &[(usize, usize)], pos: usize) -> bool {
    spans.iter().any(|&(a, b)| pos >= a && pos < b)
}

/// A path from one module to a top-level module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub line: usize,
    /// The top-level module reached.
    pub to: String,
    /// The path is in test code.
    pub in_test: bool,
}

/// Every `crate::x`, `gatewatch::x` and `super::...::x` path of a file,
/// resolved to the top-level module it reaches.
pub fn imports(rel: &str, text: &str) -> Vec<Import> {
    let blanked = blank(text);
    let spans = test_spans(&blanked);
    let me = module_path(rel);
    let bytes = blanked.as_bytes();
    let ident_at = |at: usize| -> String {
        blanked[at..]
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (at, _) in blanked.match_indices("::") {
        let before: String = blanked[..at]
            .chars()
            .rev()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_' || *ch == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        // Only the first `::` of a path starts one.
        if before.contains("::") || (at > 0 && bytes[at - 1] == b':') {
            continue;
        }
        let to = match before.as_str() {
            "crate" | "gatewatch" if bytes.get(at + 2) == Some(&b'{') => {
                let line = line_of(&blanked, at);
                let in_test = in_spans(&spans, at);
                for to in group_heads(&blanked, at + 2) {
                    out.push(Import { line, to, in_test });
                }
                continue;
            }
            "crate" | "gatewatch" => ident_at(at + 2),
            "super" => {
                let mut up = 1;
                let mut p = at + 2;
                while blanked[p..].starts_with("super::") {
                    up += 1;
                    p += "super::".len();
                }
                let base = me.len().saturating_sub(up);
                match me.get(..base).and_then(|m| m.first()) {
                    Some(top) => top.clone(),
                    None => ident_at(p),
                }
            }
            _ => continue,
        };
        if !to.is_empty() {
            out.push(Import {
                line: line_of(&blanked, at),
                to,
                in_test: in_spans(&spans, at),
            });
        }
    }
    out
}

/// The first name of each item of the group `{a::b, c, d::{e, f}}` that
/// opens at `open`.
fn group_heads(blanked: &str, open: usize) -> Vec<String> {
    let Some(close) = matching_brace(blanked.as_bytes(), open) else {
        return Vec::new();
    };
    let mut heads = Vec::new();
    let (mut depth, mut item_start) = (0, true);
    for ch in blanked[open + 1..close].chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && (c.is_alphanumeric() || c == '_') => {
                heads.push(c.to_string());
                item_start = false;
            }
            c if !item_start
                && depth == 0
                && heads.last().is_some()
                && (c.is_alphanumeric() || c == '_') =>
            {
                if let Some(h) = heads.last_mut()
                    && !h.contains(':')
                {
                    h.push(c);
                }
            }
            ':' if depth == 0 => {
                if let Some(h) = heads.last_mut() {
                    h.push(':');
                }
            }
            _ => {}
        }
    }
    heads
        .into_iter()
        .map(|h| h.split(':').next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty())
        .collect()
}

/// Whether the file is a module its parent declares under `#[cfg(test)]`
/// (`#[cfg(test)] mod tests;`): all of it is test code.
pub fn test_only(rel: &str, files: &[(String, String)]) -> bool {
    let me = module_path(rel);
    let Some((name, parent)) = me.split_last() else {
        return false;
    };
    let dir = parent.join("/");
    let candidates = if dir.is_empty() {
        vec!["lib.rs".to_string()]
    } else {
        vec![format!("{dir}/mod.rs"), format!("{dir}.rs")]
    };
    files
        .iter()
        .filter(|(r, _)| candidates.contains(r))
        .any(|(_, text)| {
            let blanked = blank(text);
            let spans = test_spans(&blanked);
            blanked
                .match_indices(&format!("mod {name};"))
                .any(|(at, _)| in_spans(&spans, at))
        })
}

/// Every import of a file, marked as test code where it is.
pub fn file_imports(rel: &str, text: &str, files: &[(String, String)]) -> Vec<Import> {
    let all_test = test_only(rel, files);
    let mut imps = imports(rel, text);
    for i in &mut imps {
        i.in_test |= all_test;
    }
    imps
}

/// Cycles among top-level modules, each as `a -> b -> a`.
pub fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            found.push(c.join(" -> "));
            return;
        }
        if !done.insert(n.to_string()) {
            return;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            visit(m, edges, path, done, found);
        }
        path.pop();
    }
    let (mut done, mut found) = (BTreeSet::new(), Vec::new());
    for n in edges.keys() {
        visit(n, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// The module graph of non-test code (`testkit` left out: it may use all).
pub fn graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let Some(top) = module_path(rel).first().cloned() else {
            continue;
        };
        if top == TEST_KIT {
            continue;
        }
        for imp in file_imports(rel, text, files) {
            if imp.to != top && imp.to != TEST_KIT && !imp.in_test {
                edges.entry(top.clone()).or_default().insert(imp.to);
            }
        }
    }
    edges
}

/// Functions longer than `max` lines outside test code: (line, name, lines).
pub fn long_functions(text: &str, max: usize) -> Vec<(usize, String, usize)> {
    let blanked = blank(text);
    let spans = test_spans(&blanked);
    let b = blanked.as_bytes();
    let mut out = Vec::new();
    for (at, _) in blanked.match_indices("fn ") {
        let word_start = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        if !word_start || in_spans(&spans, at) {
            continue;
        }
        let name: String = blanked[at + 3..]
            .chars()
            .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
            .collect();
        let rest = &blanked[at..];
        let Some(open) = rest.find('{') else { continue };
        if rest.find(';').is_some_and(|s| s < open) || name.is_empty() {
            continue;
        }
        let Some(close) = matching_brace(b, at + open) else {
            continue;
        };
        let n = line_of(&blanked, close) - line_of(&blanked, at) + 1;
        if n > max {
            out.push((line_of(&blanked, at), name, n));
        }
    }
    out
}
