//! The shape of `src/`, checked: the layer order written once in
//! `docs/ARCHITECTURE.md` (a ```` ```layers ```` block), every `crate::` and
//! `super::` path pointing to the same layer or an earlier one (no upward
//! import, no cycle), `src/lib.rs` declaring the layers in that order, the
//! fixture kit used by test code only, one module style, a thin `main.rs`,
//! files under 600 lines and functions under 80 (data tables aside).
//!
//! Paths are found in the source with comments and string and char
//! literals blanked out, so a doc link or a message naming a module does not
//! count as an import. The checker's own tests (at the end) prove that each
//! rule fails when broken.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a file in `src/` may be, in lines.
const MAX_FILE_LINES: usize = 600;
/// The longest a function outside test code may be, in lines.
const MAX_FN_LINES: usize = 80;
/// Functions allowed to be longer: data tables, with the reason.
const LONG_FN_ALLOWED: &[(&str, &str, &str)] = &[];
/// Outside the layer stack: may use any layer; only test code may use it.
const TEST_KIT: &str = "testkit";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The layer order from `docs/ARCHITECTURE.md`.
fn layers(doc: &str) -> Vec<String> {
    let block = doc
        .split("```layers")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/ARCHITECTURE.md has no ```layers block");
    block
        .split("->")
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// One source file: its path under `src/` and its text.
struct Source {
    rel: String,
    text: String,
}

fn sources() -> Vec<Source> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root().join("src")).unwrap();
                out.push(Source {
                    rel: rel.to_string_lossy().replace('\\', "/"),
                    text: std::fs::read_to_string(&p).unwrap(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// The module path of a file: `capture/live.rs` -> [capture, live],
/// `capture/mod.rs` -> [capture], `lib.rs` -> [].
fn module_path(rel: &str) -> Vec<String> {
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
fn blank(text: &str) -> String {
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
fn test_spans(blanked: &str) -> Vec<(usize, usize)> {
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
struct Import {
    line: usize,
    to: String,
    in_test: bool,
}

/// Every `crate::x`, `gatewatch::x` and `super::...::x` path of a file,
/// resolved to the top-level module it reaches.
fn imports(rel: &str, text: &str) -> Vec<Import> {
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

/// Where a top-level module sits in the stack; `None` outside it.
fn rank(layers: &[String], m: &str) -> Option<usize> {
    layers.iter().position(|l| l == m)
}

/// Whether the file is a module its parent declares under `#[cfg(test)]`
/// (`#[cfg(test)] mod tests;`): all of it is test code.
fn test_only(rel: &str, files: &[(String, String)]) -> bool {
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
fn file_imports(rel: &str, text: &str, files: &[(String, String)]) -> Vec<Import> {
    let all_test = test_only(rel, files);
    let mut imps = imports(rel, text);
    for i in &mut imps {
        i.in_test |= all_test;
    }
    imps
}

/// Upward imports and imports of the fixture kit from non-test code.
fn layering_problems(layers: &[String], files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (rel, text) in files {
        let me = module_path(rel);
        let Some(top) = me.first() else { continue };
        if top == TEST_KIT {
            continue;
        }
        for imp in file_imports(rel, text, files) {
            if imp.to == *top {
                continue;
            }
            if imp.to == TEST_KIT {
                if !imp.in_test {
                    problems.push(format!(
                        "src/{rel}:{}: {top} uses the fixture kit outside test code",
                        imp.line
                    ));
                }
                continue;
            }
            let (Some(from), Some(to)) = (rank(layers, top), rank(layers, &imp.to)) else {
                continue;
            };
            if to > from && !imp.in_test {
                problems.push(format!(
                    "src/{rel}:{}: {top} (layer {from}) imports {} (layer {to}), a later layer: \
                     pass what it needs as a parameter or a trait instead",
                    imp.line, imp.to
                ));
            }
        }
    }
    problems
}

/// Cycles among top-level modules, each as `a -> b -> a`.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
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
fn graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
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
fn long_functions(text: &str, max: usize) -> Vec<(usize, String, usize)> {
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

fn owned(files: &[Source]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|s| (s.rel.clone(), s.text.clone()))
        .collect()
}

fn arch_layers() -> Vec<String> {
    layers(&std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap())
}

#[test]
fn imports_point_down_the_pipeline_only() {
    let layers = arch_layers();
    assert!(layers.len() >= 10, "layer list too short: {layers:?}");
    let files = owned(&sources());
    let problems = layering_problems(&layers, &files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let found = cycles(&graph(&files));
    assert!(found.is_empty(), "module cycles: {}", found.join("; "));
}

#[test]
fn every_top_level_module_is_a_layer_declared_in_order() {
    let layers = arch_layers();
    let files = sources();
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|s| module_path(&s.rel).first().cloned())
        .collect();
    for t in &tops {
        assert!(
            t == TEST_KIT || layers.contains(t),
            "src/{t}: not in the layer list of docs/ARCHITECTURE.md"
        );
    }
    for l in &layers {
        assert!(tops.contains(l), "layer {l} has no module in src/");
    }
    let lib = &files.iter().find(|s| s.rel == "lib.rs").unwrap().text;
    let declared: Vec<String> = blank(lib)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .filter(|m| m != TEST_KIT)
        .collect();
    assert_eq!(
        declared, layers,
        "src/lib.rs must declare the layers in order"
    );
}

#[test]
fn main_is_thin_and_one_module_style() {
    let files = sources();
    let main = &files.iter().find(|s| s.rel == "main.rs").unwrap().text;
    let used: BTreeSet<String> = imports("main.rs", main).into_iter().map(|i| i.to).collect();
    assert_eq!(
        used,
        BTreeSet::from(["cli".to_string()]),
        "main.rs: {used:?}"
    );
    assert!(
        main.lines().count() <= 30,
        "main.rs should only parse and call cli::run"
    );
    for s in &files {
        let p = Path::new(&s.rel);
        if p.file_name().is_some_and(|n| n != "mod.rs") {
            let dir = root().join("src").join(p.with_extension(""));
            assert!(
                !dir.is_dir(),
                "src/{} beside src/{}/: use {}/mod.rs (one module style)",
                s.rel,
                p.with_extension("").display(),
                p.with_extension("").display()
            );
        }
    }
}

#[test]
fn files_and_functions_stay_small() {
    let mut problems = Vec::new();
    for s in sources() {
        let n = s.text.lines().count();
        if n > MAX_FILE_LINES {
            problems.push(format!(
                "src/{}: {n} lines (at most {MAX_FILE_LINES})",
                s.rel
            ));
        }
        for (line, name, len) in long_functions(&s.text, MAX_FN_LINES) {
            let allowed = LONG_FN_ALLOWED
                .iter()
                .any(|(f, n, _)| *f == s.rel && *n == name);
            if !allowed {
                problems.push(format!(
                    "src/{}:{line}: fn {name} is {len} lines (at most {MAX_FN_LINES})",
                    s.rel
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// The checker itself: each rule must fail when broken.

fn fake(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn stack() -> Vec<String> {
    layers("```layers\npacket -> capture -> run\n```")
}

#[test]
fn checker_finds_an_upward_import() {
    let files = fake(&[
        ("capture/live.rs", "use crate::run::pipeline::Router;\n"),
        ("run/mod.rs", "use crate::capture::PacketSink;\n"),
    ]);
    let p = layering_problems(&stack(), &files);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("src/capture/live.rs:1: capture (layer 1) imports run"));
    assert_eq!(cycles(&graph(&files)), ["capture -> run -> capture"]);
}

#[test]
fn checker_finds_a_cycle_and_resolves_super() {
    let files = fake(&[
        ("capture/mod.rs", "fn f() { super::run::go(); }\n"),
        (
            "run/pipeline.rs",
            "use super::super::capture::x;\nuse super::replay;\n",
        ),
    ]);
    let e = graph(&files);
    assert_eq!(e["capture"], BTreeSet::from(["run".to_string()]));
    assert_eq!(e["run"], BTreeSet::from(["capture".to_string()]));
    assert_eq!(cycles(&e), vec!["capture -> run -> capture".to_string()]);
}

#[test]
fn checker_ignores_comments_strings_and_test_code_but_not_the_kit_outside_tests() {
    let text = r#"//! See [`crate::run`].
/* crate::run in a block comment */
fn f() -> &'static str { let _c = '{'; "crate::run is a string" }
#[cfg(test)]
mod tests {
    use crate::run::x;
    use crate::testkit::y;
}
fn g() { crate::testkit::z(); }
use crate::{packet::RawPacket, run::{a, b}};
"#;
    let imps = imports("capture/file.rs", text);
    let to: Vec<(&str, bool)> = imps.iter().map(|i| (i.to.as_str(), i.in_test)).collect();
    assert_eq!(
        to,
        [
            ("run", true),
            ("testkit", true),
            ("testkit", false),
            ("packet", false),
            ("run", false)
        ]
    );
    let p = layering_problems(&stack(), &fake(&[("capture/file.rs", text)]));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("fixture kit outside test code"), "{p:?}");
    assert!(p[1].contains("imports run"), "{p:?}");
}

#[test]
fn checker_knows_test_only_files() {
    let files = fake(&[
        ("capture/mod.rs", "mod live;\n#[cfg(test)]\nmod tests;\n"),
        ("capture/tests.rs", "use crate::run::x;\n"),
        ("capture/live.rs", "use crate::run::y;\n"),
    ]);
    let p = layering_problems(&stack(), &files);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("src/capture/live.rs:1:"), "{p:?}");
}

#[test]
fn checker_measures_functions() {
    let body = "    let x = 1;\n".repeat(85);
    let text = format!(
        "fn short() {{ let c = '}}'; }}\nfn long() {{\n{body}}}\n#[cfg(test)]\nmod tests {{\n    fn also_long() {{\n{body}    }}\n}}\n"
    );
    let long = long_functions(&text, MAX_FN_LINES);
    assert_eq!(long, vec![(2, "long".to_string(), 87)]);
}
