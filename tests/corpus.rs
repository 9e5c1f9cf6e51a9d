//! The corpus manifest (`tests/corpus/manifest.toml`), row by row: for every
//! capture, the tshark ground truth (DNS names, CNAMEs, TLS/QUIC SNI, HTTP
//! requests, packet count) and a feed of the names it saw, the counters its
//! flags promise, and each `[[capture.expect]]` block (feeds, units, the hits
//! they must give). Shared rows run when `GATEWATCH_SHARED_DATA` is set, and
//! then every capture with a summary under its `pcaps/` is compared with
//! tshark even without a row. Adding a capture means adding a row; the
//! schema is in `tests/corpus/README.md`. The checks themselves are in the
//! test kit (`gatewatch::testkit::corpus`).

use gatewatch::testkit::corpus::{Manifest, Run, capture_files};
use gatewatch::testkit::{corpus, shared_data};

fn manifest() -> Manifest {
    Manifest::load(&corpus("manifest.toml")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn corpus_manifest() {
    let t0 = std::time::Instant::now();
    let m = manifest();
    let shared = shared_data();
    let mut run = Run::default();
    for row in &m.capture {
        run.row(&m, row, shared.as_deref());
    }
    match &shared {
        None => eprintln!(
            "GATEWATCH_SHARED_DATA not set: the {} shared rows of the manifest were not run",
            run.tally.skipped_shared
        ),
        Some(dir) => run.unlisted_shared(&m, dir),
    }
    for n in &run.notes {
        eprintln!("{n}");
    }
    eprintln!(
        "corpus manifest: {} rows; {}; {:.1}s",
        m.capture.len(),
        run.tally,
        t0.elapsed().as_secs_f64()
    );
    minimums(&mut run, shared.is_some());
    let fail = &run.failures.0;
    assert!(
        fail.is_empty(),
        "{} failure(s):\n{}",
        fail.len(),
        fail.join("\n")
    );
}

/// The least the run must have checked, so that rows silently skipped (a
/// summary gone, a names feed no longer built) fail rather than pass.
fn minimums(run: &mut Run, shared: bool) {
    let t = &run.tally;
    let mut want = vec![
        (t.tshark.0, 10, "corpus captures compared with tshark"),
        (t.names.0, 8, "corpus captures had a names-feed check"),
        (t.quiet_checked, 10, "captures replayed with no indicators"),
        (
            t.retro_checked,
            20,
            "expect blocks and names feeds retro-hunted",
        ),
    ];
    if shared {
        want.push((t.tshark.1, 30, "shared captures compared with tshark"));
        want.push((t.names.1, 8, "shared captures had a names-feed check"));
    }
    for (got, min, what) in want {
        run.at_least(got, min, what);
    }
}

/// Every capture file under `tests/corpus/` has a row (and a shared capture
/// without one is named, as the generic pass only compares it with tshark).
#[test]
fn every_corpus_capture_has_a_manifest_row() {
    let m = manifest();
    let missing: Vec<String> = capture_files(m.dir())
        .into_iter()
        .filter(|p| !m.has_row_for(p))
        .map(|p| p.strip_prefix(m.dir()).unwrap_or(&p).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "captures under {} with no row in {}: {missing:?}",
        m.dir().display(),
        m.path.display()
    );
    if let Some(dir) = shared_data() {
        let listed = m.shared_paths(&dir);
        for p in capture_files(&dir) {
            if !listed.contains(&p) {
                eprintln!("note: shared capture {} has no manifest row", p.display());
            }
        }
    }
}
