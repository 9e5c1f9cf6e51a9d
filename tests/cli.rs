//! The `gatewatch` binary as an operator runs it: exit codes, error messages
//! that name file and line, the alert log and the export.

use gatewatch::testkit::{DEMO_CAPTURES, bin, demo_replay, root, text};
use std::path::Path;

#[test]
fn demo_replay_then_export() {
    let d = tempfile::tempdir().unwrap();
    let alerts = d.path().join("alerts.jsonl");
    let o = demo_replay(&alerts)
        .arg("--stats")
        .args(DEMO_CAPTURES)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("[SO-TTTT] Sở Thông tin và Truyền thông"),
        "{out}"
    );
    assert!(out.contains("192.168.46.2"), "{out}");
    let log = std::fs::read_to_string(&alerts).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    for k in [
        "timestamp",
        "event_type",
        "src_ip",
        "src_port",
        "dest_ip",
        "dest_port",
        "proto",
        "host_ip",
        "unit",
        "indicator",
        "indicator_kind",
        "observed",
        "feed",
        "category",
        "severity",
        "sensor_id",
    ] {
        assert!(first.get(k).is_some(), "alert lacks {k}: {first}");
    }
    assert_eq!(first["event_type"], "alert");

    let o = bin()
        .args(["export", "--unit", "SO-TTTT", "--format", "csv", "--alerts"])
        .arg(&alerts)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut r = csv::Reader::from_reader(&o.stdout[..]);
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][2], "192.168.46.2");

    let o = bin()
        .args(["export", "--all", "--format", "json", "--alerts"])
        .arg(&alerts)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let synthetic = std::fs::read_to_string(root().join("samples/gateway-synthetic.offenders.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    // Every synthetic offender plus the real C2 client.
    assert_eq!(v.as_array().unwrap().len(), synthetic + 1);

    let o = bin()
        .args(["export", "--unit", "NOPE", "--alerts"])
        .arg(&alerts)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown unit code \"NOPE\""));
}

#[test]
fn skipped_input_sets_exit_code_3() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.pcap");
    std::fs::write(&bad, b"not a pcap").unwrap();
    let full = std::fs::read(root().join("samples/c2-tls-clienthello.pcap")).unwrap();
    let cut = d.path().join("cut.pcap");
    std::fs::write(&cut, &full[..full.len() - 7]).unwrap();
    let o = bin()
        .args(["replay", "--alerts"])
        .arg(d.path().join("a.jsonl"))
        .arg(&bad)
        .arg(&cut)
        .arg("samples/c2-tls-clienthello.pcap")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("bad.pcap: not a pcap or pcapng file"), "{t}");
    assert!(
        t.contains("cut.pcap: packet 9: file ends inside a record"),
        "{t}"
    );
    assert!(
        t.contains("192.168.46.2"),
        "the good file is still replayed: {t}"
    );
}

#[test]
fn bad_units_and_feeds_are_all_listed_at_once() {
    let d = tempfile::tempdir().unwrap();
    let units = d.path().join("units.csv");
    std::fs::write(
        &units,
        "code,name,cidrs\nA,Một,10.0.0.0/16\nB,Hai,10.0.1.0/24\nC,Ba,999.1.1.1/8\n",
    )
    .unwrap();
    let feeds = d.path().join("feeds.toml");
    std::fs::write(
        &feeds,
        "[[feed]]\nname = \"x\"\npath = \"nope.txt\"\nformat = \"plain\"\ncategory = \"malware\"\n",
    )
    .unwrap();
    let o = bin()
        .arg("check")
        .arg("--units")
        .arg(&units)
        .arg("--feeds")
        .arg(&feeds)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("overlaps"), "{t}");
    assert!(
        t.contains("units.csv:4: \"999.1.1.1/8\" is not a CIDR"),
        "{t}"
    );
    assert!(t.contains("nope.txt does not exist"), "{t}");
}

#[test]
fn bad_feed_lines_are_reported_with_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("f.txt"),
        "good.example\nbad example\n127.0.0.1\n",
    )
    .unwrap();
    let feeds = d.path().join("feeds.toml");
    std::fs::write(
        &feeds,
        "[[feed]]\nname = \"x\"\npath = \"f.txt\"\nformat = \"plain\"\ncategory = \"malware\"\n",
    )
    .unwrap();
    let o = bin()
        .arg("check")
        .arg("--feeds")
        .arg(&feeds)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("f.txt:2: \"bad example\" skipped: entry contains whitespace"),
        "{t}"
    );
    assert!(t.contains("f.txt:3: \"127.0.0.1\" skipped"), "{t}");
    assert!(Path::new(&feeds).exists());
}

#[test]
fn check_counts_skipped_file_hashes_and_refangs() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("mixed.txt"),
        "d41d8cd98f00b204e9800998ecf8427e\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
         evil[.]example\n\
         hxxp://bad[.]example/gate.php\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("feeds.toml"),
        "[[feed]]\nname = \"mixed\"\npath = \"mixed.txt\"\nformat = \"plain\"\ncategory = \"malware\"\n",
    )
    .unwrap();
    let o = bin()
        .args(["check", "--feeds"])
        .arg(d.path().join("feeds.toml"))
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2 accepted"), "{out}");
    assert!(
        out.contains("skipped file hashes (not visible on the wire): 1 md5, 1 sha256"),
        "{out}"
    );
}
