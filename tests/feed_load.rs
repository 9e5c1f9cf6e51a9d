//! Loading feeds: a large list is split over the cores, yet every entry,
//! rejection (with its line number) and duplicate decision is the same as
//! loading it in one piece.

use gatewatch::intel::SnapshotBuilder;
use gatewatch::intel::feeds::{FeedsConfig, build_snapshot_on, load_feed};
use std::fmt::Write as _;

#[test]
fn split_loading_equals_one_piece() {
    let d = tempfile::tempdir().unwrap();
    // 300k lines (> the 4 MiB split threshold) with bad entries scattered,
    // including the very first and last lines, comments, CRLF and a BOM.
    let mut big = String::from("\u{feff}bad..first\n");
    let mut bad_lines = vec![1u64];
    for i in 2..=300_000u64 {
        if i % 9_973 == 0 {
            writeln!(big, "not a domain {i}").unwrap();
            bad_lines.push(i);
        } else if i % 5_000 == 0 {
            writeln!(big, "# comment {i}").unwrap();
        } else if i % 7 == 0 {
            write!(big, "host{i}.Example-Feed.test\r\n").unwrap();
        } else {
            writeln!(big, "host{i}.example-feed.test").unwrap();
        }
    }
    big.push_str("1.2.3\n");
    bad_lines.push(300_001);
    assert!(big.len() > 4 << 20, "{}", big.len());
    std::fs::write(d.path().join("big.txt"), &big).unwrap();
    // The same domain in a small earlier feed (equal severity: it wins) and
    // in a later, more severe one for another domain (that one wins).
    std::fs::write(
        d.path().join("early.txt"),
        "host10.example-feed.test\nhost11.example-feed.test\n",
    )
    .unwrap();
    std::fs::write(d.path().join("late.txt"), "host11.example-feed.test\n").unwrap();
    let toml = r#"
[[feed]]
name = "early"
path = "early.txt"
format = "plain"
category = "malware"
severity = "high"

[[feed]]
name = "big"
path = "big.txt"
format = "plain"
entry_type = "domain"
category = "malware"
severity = "high"

[[feed]]
name = "late"
path = "late.txt"
format = "plain"
category = "c2"
severity = "critical"
"#;
    std::fs::write(d.path().join("feeds.toml"), toml).unwrap();
    let cfg = FeedsConfig::load(&d.path().join("feeds.toml")).unwrap();
    for threads in [1, 2, 3, 5] {
        check(&cfg, threads, &bad_lines);
    }
}

fn check(cfg: &FeedsConfig, threads: usize, bad_lines: &[u64]) {
    let (snap, reports, dups) = build_snapshot_on(cfg, threads);

    let big_rep = &reports[1];
    assert_eq!(big_rep.name, "big");
    let lines: Vec<u64> = big_rep.rejected.iter().map(|r| r.line).collect();
    assert_eq!(
        lines, bad_lines,
        "{threads} threads: rejections in file order"
    );
    assert!(big_rep.rejected[0].entry.starts_with("bad..first"));

    // The same feed loaded in one piece.
    let mut one = SnapshotBuilder::default();
    let whole = load_feed(&cfg.feeds[1], &mut one);
    assert_eq!(whole.accepted, big_rep.accepted);
    let whole_lines: Vec<u64> = whole.rejected.iter().map(|r| r.line).collect();
    assert_eq!(whole_lines, bad_lines);

    assert_eq!(dups, 0, "no feed repeats itself");
    assert_eq!(
        snap.cross_feed_duplicates(),
        vec![0, 2, 1],
        "big repeats host10 and host11, late repeats host11"
    );
    assert_eq!(snap.len(), 2 + big_rep.accepted + 1);
    let who = |n: &str| {
        snap.indicator(snap.match_domain(n).unwrap(), n)
            .feed
            .name
            .clone()
    };
    assert_eq!(who("www.host10.example-feed.test"), "early");
    assert_eq!(who("host11.example-feed.test"), "late");
    assert_eq!(
        who("host14.example-feed.test"),
        "big",
        "CRLF line lower-cased"
    );
    assert_eq!(who("host299999.example-feed.test"), "big");
    assert!(snap.match_domain("host5000.example-feed.test").is_none());
}
