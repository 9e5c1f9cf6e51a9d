//! The shape of `src/`, checked: the layer order written once in
//! `docs/ARCHITECTURE.md` (a ```` ```layers ```` block), every `crate::` and
//! `super::` path pointing to the same layer or an earlier one (no upward
//! import, no cycle), `src/lib.rs` declaring the layers in that order, the
//! fixture kit used by test code only, one module style, a thin `main.rs`,
//! and files under 600 lines and functions under 80 (data tables aside) in
//! `src/`, `tests/` and `benches/` (test modules in `src/` aside).
//!
//! Paths are found in the source with comments and string and char
//! literals blanked out, so a doc link or a message naming a module does not
//! count as an import. The checker's own tests (at the end) prove that each
//! rule fails when broken.

use gatewatch::testkit::source::{
    TEST_KIT, blank, cycles, file_imports, graph, imports, long_functions, module_path,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The longest a file in `src/` may be, in lines.
const MAX_FILE_LINES: usize = 600;
/// The longest a function outside test code may be, in lines.
const MAX_FN_LINES: usize = 80;
/// Functions allowed to be longer: data tables, with the reason.
const LONG_FN_ALLOWED: &[(&str, &str, &str)] = &[];

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
    sources_in("src")
}

/// Every `.rs` file under the repository's `dir`, by path relative to it.
fn sources_in(dir: &str) -> Vec<Source> {
    let base = root().join(dir);
    let mut out = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(&base).unwrap();
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

/// Where a top-level module sits in the stack; `None` outside it.
fn rank(layers: &[String], m: &str) -> Option<usize> {
    layers.iter().position(|l| l == m)
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
    for dir in ["src", "tests", "benches"] {
        for s in sources_in(dir) {
            let n = s.text.lines().count();
            if n > MAX_FILE_LINES {
                problems.push(format!(
                    "{dir}/{}: {n} lines (at most {MAX_FILE_LINES})",
                    s.rel
                ));
            }
            for (line, name, len) in long_functions(&s.text, MAX_FN_LINES) {
                let allowed = LONG_FN_ALLOWED
                    .iter()
                    .any(|(f, n, _)| *f == s.rel && *n == name);
                if !allowed {
                    problems.push(format!(
                        "{dir}/{}:{line}: fn {name} is {len} lines (at most {MAX_FN_LINES})",
                        s.rel
                    ));
                }
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
