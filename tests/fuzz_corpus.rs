//! The fuzz targets on stable: the minimised corpus under
//! `tests/corpus/fuzz/<target>/` and the seeds the fixture kit builds run
//! through every target body (`gatewatch::testkit::fuzz`), and each crash a
//! fuzzing run found stays a named regression test here.
//!
//! With `GATEWATCH_WRITE_SEEDS=DIR`, the built seeds are also written to
//! `DIR/<target>/` (`fuzz/seed.sh` does this).

use gatewatch::testkit::fuzz::{TARGETS, quic_sni, seeds, target};
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    gatewatch::testkit::corpus("fuzz")
}

#[test]
fn every_target_has_a_minimised_corpus_and_it_replays_cleanly() {
    let dir = corpus_dir();
    let mut ran = 0;
    for (name, body) in TARGETS {
        let d = dir.join(name);
        let files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e}; every target needs a corpus", d.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        assert!(!files.is_empty(), "{}: empty corpus", d.display());
        for f in files {
            let bytes = std::fs::read(&f).expect("read corpus file");
            body(&bytes);
            ran += 1;
        }
    }
    for e in std::fs::read_dir(&dir).expect("fuzz corpus") {
        let name = e.expect("dir entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            name == "README.md" || target(&name).is_some(),
            "tests/corpus/fuzz/{name} names no target"
        );
    }
    println!("{ran} corpus inputs through {} targets", TARGETS.len());
}

#[test]
fn built_seeds_run_through_their_targets() {
    let out = std::env::var_os("GATEWATCH_WRITE_SEEDS").map(PathBuf::from);
    for (t, name, bytes) in seeds::built() {
        let body = target(t).unwrap_or_else(|| panic!("seed for unknown target {t}"));
        body(&bytes);
        if let Some(out) = &out {
            let d = out.join(t);
            std::fs::create_dir_all(&d).expect("seed dir");
            std::fs::write(d.join(format!("built-{name}")), &bytes).expect("write seed");
        }
    }
    if let Some(out) = &out {
        write_capture_sequences(out);
    }
}

/// `engine_sequence` and `engine_frame` seeds from the Ethernet captures of
/// the corpus: the first 64 frames of each, and the first 4 frames alone.
fn write_capture_sequences(out: &std::path::Path) {
    let seq = out.join("engine_sequence");
    let one = out.join("engine_frame");
    std::fs::create_dir_all(&seq).expect("seed dir");
    std::fs::create_dir_all(&one).expect("seed dir");
    for f in gatewatch::testkit::capture_files(&gatewatch::testkit::corpus("")) {
        let frames = seeds::ethernet_frames(&f, 64);
        if frames.is_empty() {
            continue;
        }
        let stem = f
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        std::fs::write(seq.join(&stem), seeds::sequence(&frames)).expect("write seed");
        for (k, fr) in frames.iter().take(4).enumerate() {
            let mut d = vec![0u8];
            d.extend_from_slice(fr);
            std::fs::write(one.join(format!("{stem}-{k}")), d).expect("write seed");
        }
    }
}

/// The QUIC target reaches past the AEAD: its seeds give the server name of
/// the ClientHello they carry, whole, split out of order, and under v2.
#[test]
fn quic_target_decrypts_what_it_seals() {
    let quic: Vec<_> = seeds::built()
        .into_iter()
        .filter(|s| s.0 == "proto_quic")
        .collect();
    assert_eq!(quic.len(), 3);
    for (_, name, bytes) in quic {
        assert_eq!(quic_sni(&bytes).as_deref(), Some("c2.test"), "{name}");
    }
}

#[test]
fn the_behaviour_seed_reaches_every_heuristic_but_the_sinkhole() {
    let (_, _, bytes) = seeds::built()
        .into_iter()
        .find(|s| s.0 == "engine_sequence" && s.1 == "behaviours")
        .expect("the behaviours seed");
    let hits = gatewatch::testkit::fuzz::engine_sequence_hits(&bytes).hits;
    let found: std::collections::BTreeSet<_> = hits.iter().filter_map(|h| h.heuristic()).collect();
    let want = ["beacon", "dga", "dns_tunnel", "scan"];
    assert_eq!(found.into_iter().collect::<Vec<_>>(), want);
}

/// Found by the `capture` target: a pcapng process information block whose
/// length is under the 12 bytes every block has. pcap-parser 0.17
/// subtracts 12 from it unchecked (a panic with overflow checks, as in this
/// test build); the streaming reader now stops the file with a named
/// problem instead.
#[test]
fn crash_pcapng_block_shorter_than_a_block_header() {
    use gatewatch::capture::SourceProblemKind;
    let bytes =
        std::fs::read(corpus_dir().join("capture/crash-pcapng-short-process-information-block"))
            .expect("crash input");
    let (mapped, streamed) = gatewatch::capture::file::read_bytes(
        std::path::Path::new("crash.pcapng"),
        &bytes,
        |_, _| {},
    );
    assert!(mapped.is_none(), "pcapng: the stream reader only");
    assert_eq!(streamed.packets, 0);
    assert!(
        matches!(
            streamed.problems.as_slice(),
            [p] if matches!(&p.kind, SourceProblemKind::Corrupt(_) | SourceProblemKind::Truncated)
        ),
        "{:?}",
        streamed.problems
    );
    target("capture").expect("target")(&bytes);
}
