//! Signed feed snapshots through the binary: `feeds keygen`, `feeds
//! compile`, and `replay --snapshot` giving the alert log line for line
//! that `replay --feeds` gives on the same feeds; damaged, foreign or
//! unknown files refused at start with a message naming the file.

use gatewatch::testkit::snapshot_cli::{compile, keygen};
use gatewatch::testkit::{DEMO_CAPTURES, bin, text};
use std::path::Path;

/// A key pair in `dir`: (private, public).
/// `replay` of `captures` with `source` (`--feeds F` or `--snapshot S
/// --snapshot-key K`) into the alert log `alerts`: what it printed on
/// standard output, the alert log's name left out.
fn replay(source: &[&std::ffi::OsStr], units: &str, captures: &[&str], alerts: &Path) -> String {
    let o = bin()
        .arg("replay")
        .args(source)
        .args(["--units", units, "--alerts"])
        .arg(alerts)
        .args(captures)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).replace(&alerts.display().to_string(), "ALERTS")
}

/// The two alert logs, line for line (they hold no time of the run: every
/// timestamp is the packet's).
fn same_lines(a: &Path, b: &Path) -> usize {
    let (a, b) = (
        std::fs::read_to_string(a).unwrap(),
        std::fs::read_to_string(b).unwrap(),
    );
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for (i, (x, y)) in la.iter().zip(&lb).enumerate() {
        assert_eq!(x, y, "alert log line {} differs", i + 1);
    }
    assert_eq!(la.len(), lb.len(), "alert logs of different lengths");
    la.len()
}

fn both_ways(feeds: &str, units: &str, captures: &[&str], min_alerts: usize) {
    let d = tempfile::tempdir().unwrap();
    let (k, p) = keygen(d.path(), "sign");
    let s = d.path().join("feeds.snap");
    let out = compile(Path::new(feeds), &k, &s, None);
    assert!(out.contains("indicators from"), "{out}");
    let (ta, sa) = (d.path().join("text.jsonl"), d.path().join("snap.jsonl"));
    let text_out = replay(&["--feeds".as_ref(), feeds.as_ref()], units, captures, &ta);
    let source = [
        "--snapshot".as_ref(),
        s.as_os_str(),
        "--snapshot-key".as_ref(),
        p.as_os_str(),
    ];
    let snap_out = replay(&source, units, captures, &sa);
    let n = same_lines(&ta, &sa);
    assert!(n >= min_alerts, "only {n} alert lines");
    // The offender tables and counts printed are the same too.
    assert!(
        text_out.contains("alert(s) written to ALERTS"),
        "{text_out}"
    );
    assert_eq!(text_out, snap_out);
}

#[test]
fn gateway_small_replays_the_same_from_a_snapshot() {
    let c = "tests/corpus/gateway-small";
    both_ways(
        &format!("{c}/feeds.toml"),
        &format!("{c}/units.csv"),
        &[&format!("{c}/traffic.pcap")],
        500,
    );
}

#[test]
fn the_samples_replay_the_same_from_a_snapshot() {
    both_ways(
        "samples/demo-feeds.toml",
        "feeds/units.csv",
        &DEMO_CAPTURES,
        20,
    );
}

#[test]
fn keygen_and_compile_say_what_they_wrote() {
    let d = tempfile::tempdir().unwrap();
    let (k, p) = keygen(d.path(), "a");
    let mode = std::fs::metadata(&k).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&p)
            .unwrap()
            .contains("BEGIN PUBLIC KEY")
    );
    let again = bin()
        .args(["feeds", "keygen", "--key"])
        .arg(&k)
        .arg("--pub")
        .arg(d.path().join("b.pub"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    let s = d.path().join("x.snap");
    let out = compile(Path::new("samples/demo-feeds.toml"), &k, &s, Some(77));
    let bytes = std::fs::metadata(&s).unwrap().len();
    for want in [
        "version 77".to_string(),
        format!("{bytes} bytes"),
        "domain".to_string(),
        "feed demo-domains".to_string(),
    ] {
        assert!(out.contains(&want), "{want} missing in {out}");
    }
    // A feed that does not load refuses the compile.
    let bad = d.path().join("feeds.toml");
    std::fs::write(
        &bad,
        "[[feed]]\nname = \"gone\"\npath = \"missing.txt\"\nformat = \"plain\"\ncategory = \"malware\"\n",
    )
    .unwrap();
    let o = bin()
        .args(["feeds", "compile", "--feeds"])
        .arg(&bad)
        .arg("--key")
        .arg(&k)
        .arg("-o")
        .arg(d.path().join("y.snap"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("gone"), "{}", text(&o));
    assert!(!d.path().join("y.snap").exists());
}

/// Each damaged or foreign file stops the start (exit 1) with a message
/// that names the file and says what to do.
#[test]
fn bad_snapshots_are_refused_at_start() {
    let d = tempfile::tempdir().unwrap();
    let (k, p) = keygen(d.path(), "a");
    let (_, other) = keygen(d.path(), "b");
    let s = d.path().join("good.snap");
    compile(Path::new("samples/demo-feeds.toml"), &k, &s, None);
    let good = std::fs::read(&s).unwrap();
    let mut damaged = good.clone();
    damaged[good.len() / 2] ^= 4;
    let mut format = good.clone();
    format[8] = 2;
    let mut signature = good.clone();
    signature[200] ^= 1;
    let cases: Vec<(&str, Vec<u8>, &Path, &str)> = vec![
        ("foreign key", good.clone(), &other, "another key"),
        ("bad signature", signature, &p, "signature does not verify"),
        (
            "truncated",
            good[..good.len() - 100].to_vec(),
            &p,
            "truncated",
        ),
        ("damaged", damaged, &p, "checksum"),
        ("format", format, &p, "format 2"),
        (
            "not a snapshot",
            b"[[feed]]\n".to_vec(),
            &p,
            "not a gatewatch snapshot",
        ),
    ];
    for (what, bytes, key, want) in cases {
        let f = d.path().join(format!("{}.snap", what.replace(' ', "-")));
        std::fs::write(&f, bytes).unwrap();
        let o = bin()
            .args(["replay", "--snapshot"])
            .arg(&f)
            .arg("--snapshot-key")
            .arg(key)
            .args(["--alerts", "-"])
            .args(DEMO_CAPTURES)
            .output()
            .unwrap();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {out}");
        assert!(out.contains(&f.display().to_string()), "{what}: {out}");
        assert!(out.contains(want), "{what}: {want} missing in {out}");
        assert!(!out.contains("alert(s) written"), "{what}: {out}");
    }
}
