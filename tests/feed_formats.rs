//! Every feed format parsed from real public files (tests/corpus/feeds, and
//! the whole shared data set when GATEWATCH_SHARED_DATA is set) or, where no
//! public file exists (Maltrail trails.csv, CERT annex tables), from small
//! faithful fixtures written here.

use gatewatch::intel::SnapshotBuilder;
use gatewatch::intel::feeds::{
    FeedReport, FeedSpec, FeedsConfig, Format, build_snapshot, load_feed,
};
use gatewatch::testkit::corpus;
use std::path::Path;

fn load(spec: &FeedSpec) -> (gatewatch::intel::Snapshot, FeedReport) {
    let mut b = SnapshotBuilder::default();
    let rep = load_feed(spec, &mut b);
    assert!(rep.failed.is_none(), "{:?}", rep.failed);
    (b.build(), rep)
}

fn reasons(rep: &FeedReport, needle: &str) -> usize {
    rep.skipped
        .iter()
        .filter(|s| s.reason.contains(needle))
        .count()
}

fn data_lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

#[test]
fn zeek_intel_urls_become_patterns() {
    let path = corpus("feeds/zeek-intel/openphish.intel");
    let (snap, rep) = load(&FeedSpec::new("openphish", &path, Format::Zeek));
    assert_eq!(
        rep.accepted + rep.rejected.len() + rep.skipped.len(),
        data_lines(&path)
    );
    assert!(snap.has_patterns());
    // A URL that is only a host (`https://x.example/`) matches as a domain.
    use gatewatch::intel::indicator::IndicatorKind;
    assert_eq!(snap.counts[&IndicatorKind::Url], 89);
    assert_eq!(snap.counts[&IndicatorKind::Domain], 211);
}

/// MISP: ESET's Glupteba event. 40 ip-dst, 270 domain and 4 domain|ip
/// attributes (each giving a domain and an address) load; the 6
/// filename|sha1 are skipped as sha1 hashes and the regkey as not a network
/// indicator.
#[test]
fn misp_event_attributes_by_type() {
    let path = corpus("feeds/misp/glupteba__glupteba.misp-event.json");
    let (snap, rep) = load(&FeedSpec::new("eset", &path, Format::Misp));
    assert_eq!(rep.accepted, 40 + 270 + 4 * 2);
    assert_eq!(reasons(&rep, "sha1 file hash"), 6);
    assert_eq!(reasons(&rep, "\"regkey\" is not a network indicator"), 1);
    assert!(rep.rejected.is_empty(), "{:?}", rep.rejected);
    // Every attribute line is found in the file.
    assert!(rep.skipped.iter().all(|s| s.line > 0));
    let any_domain = snap.counts[&gatewatch::intel::indicator::IndicatorKind::Domain];
    assert!(any_domain >= 270);
}

/// ESET's Zebrocy event marks nothing `to_ids`: skipped and counted by
/// default, loaded with `to_ids_only = false`.
#[test]
fn misp_to_ids_is_honoured() {
    let path = corpus("feeds/misp/sednit__2018-11-20_Zebrocy.json");
    let (_, rep) = load(&FeedSpec::new("zebrocy", &path, Format::Misp));
    assert_eq!(rep.accepted, 0);
    assert_eq!(reasons(&rep, "to_ids is false"), 2);
    assert_eq!(reasons(&rep, "file hash"), 15);
    let mut all = FeedSpec::new("zebrocy", &path, Format::Misp);
    all.to_ids_only = Some(false);
    let (snap, rep) = load(&all);
    assert_eq!(rep.accepted, 2);
    assert!(snap.has_patterns());
}

/// STIX: Unit 42's IcedID playbook: 14 IPv4, 10 domain and 1 URL pattern
/// load; 26 file hashes and a file name are skipped; the reference is the
/// STIX id and the description the indicator's name.
#[test]
fn stix_bundle_indicators_with_reference() {
    let path = corpus("feeds/stix2/icedid.json");
    let (snap, rep) = load(&FeedSpec::new("unit42", &path, Format::Stix));
    assert_eq!(rep.accepted, 14 + 10 + 1, "{:?}", rep.rejected);
    assert_eq!(reasons(&rep, "file hash"), 26);
    assert_eq!(reasons(&rep, "file:name cannot be matched"), 1);
    assert!(
        rep.skipped.iter().all(|s| s.line > 0),
        "every object's line found"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ind = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["pattern"]
                .as_str()
                .is_some_and(|p| p.starts_with("[domain-name"))
        })
        .unwrap();
    let pattern = ind["pattern"].as_str().unwrap();
    let domain = pattern.split('\'').nth(1).unwrap();
    let id = snap.match_domain(domain).expect("listed domain matches");
    let i = snap.indicator(id, domain);
    assert_eq!(i.reference.as_deref(), ind["id"].as_str());
    assert!(i.description.is_some());
}

/// Bad STIX and MISP input: a named failure, never a panic.
#[test]
fn malformed_json_feeds_fail_with_a_reason() {
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, Format, &str); 6] = [
        (
            "a.json",
            "{\"type\": \"report\"}",
            Format::Stix,
            "not a STIX bundle",
        ),
        ("b.json", "[1, 2", Format::Stix, "not JSON"),
        (
            "c.json",
            "{\"objects\": 3}",
            Format::Misp,
            "not a MISP event",
        ),
        (
            "d.intel",
            "1.2.3.4\tIntel::ADDR\n",
            Format::Zeek,
            "before the `#fields`",
        ),
        ("e.csv", "a,b\n1,2\n", Format::Annex, "no header row"),
        ("f.json", "", Format::Misp, "not JSON"),
    ];
    for (name, text, fmt, want) in cases {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        let mut b = SnapshotBuilder::default();
        let rep = load_feed(&FeedSpec::new("x", &p, fmt), &mut b);
        let f = rep.failed.unwrap_or_default();
        assert!(f.contains(want), "{name}: {f}");
    }
    // Patterns a per-packet matcher cannot honour are rejected one by one.
    let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
 {"type":"indicator","id":"indicator--a","pattern":"[ipv4-addr:value = '203.0.113.1' AND domain-name:value = 'x.example']","valid_from":"2020-01-01T00:00:00Z"},
 {"type":"indicator","id":"indicator--b","pattern":"[ipv4-addr:value = '203.0.113.2'","valid_from":"2020-01-01T00:00:00Z"},
 {"type":"indicator","id":"indicator--c","pattern":"[domain-name:value = 'old.example']","valid_until":"2001-01-01T00:00:00Z"},
 {"type":"indicator","id":"indicator--d","pattern":"[domain-name:value = 'ok.example'] OR [ipv4-addr:value = '203.0.113.3']","revoked":false}
]}"#;
    let p = d.path().join("g.json");
    std::fs::write(&p, bundle).unwrap();
    let (snap, rep) = load(&FeedSpec::new("g", &p, Format::Stix));
    assert_eq!(rep.accepted, 2);
    assert_eq!(reasons(&rep, "AND needs several observations"), 1);
    assert_eq!(reasons(&rep, "unbalanced"), 1);
    assert_eq!(reasons(&rep, "expired"), 1);
    assert!(snap.match_domain("www.ok.example").is_some());
    assert!(snap.match_domain("old.example").is_none());
}

/// A file far larger than any feed: refused by size, not read into memory.
#[test]
fn huge_file_is_refused_not_read() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("huge.json");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(2 << 30).unwrap();
    // Issue 14, defect 7: iprep (and its categories file) and annexes too.
    for fmt in [Format::Stix, Format::Plain, Format::Iprep, Format::Annex] {
        let mut b = SnapshotBuilder::default();
        let rep = load_feed(&FeedSpec::new("huge", &p, fmt), &mut b);
        let f = rep.failed.unwrap_or_default();
        assert!(f.contains("split it"), "{fmt:?}: {f}");
    }
    let small = d.path().join("small.list");
    std::fs::write(&small, "192.0.2.1,1,100\n").unwrap();
    let mut s = FeedSpec::new("huge-categories", &small, Format::Iprep);
    s.categories = Some(p.clone());
    let rep = load_feed(&s, &mut SnapshotBuilder::default());
    let f = rep.failed.unwrap_or_default();
    assert!(
        f.contains("categories file") && f.contains("split it"),
        "{f}"
    );
}

/// Maltrail trails.csv (fixture in Maltrail's `trail,info,reference` form).
#[test]
fn maltrail_trails_csv() {
    let path = corpus("feeds/fixtures/trails.csv");
    let (snap, rep) = load(&FeedSpec::new("trails", &path, Format::Maltrail));
    assert_eq!(rep.accepted, 4);
    assert_eq!(rep.rejected.len(), 1);
    assert_eq!(rep.rejected[0].line, 5);
    assert_eq!(reasons(&rep, "md5 file hash"), 1);
    let id = snap.match_domain("www.evil-c2.example").unwrap();
    let i = snap.indicator(id, "www.evil-c2.example");
    assert_eq!(i.description.as_deref(), Some("zeus (malware)"));
    assert_eq!(i.reference.as_deref(), Some("abuse.ch"));
    assert!(
        snap.match_ip("203.0.113.66".parse().unwrap(), Some(8080))
            .is_some()
    );
    assert!(
        snap.match_ip("203.0.113.66".parse().unwrap(), Some(80))
            .is_none()
    );
    assert!(
        snap.match_pattern(b"cdn-bad.example/update/get.php?x=1")
            .is_some()
    );
}

/// Suricata iprep (the real ET export of suricata-verify issue-4280) with
/// its categories file; `min_score` drops low scores with a named reason.
#[test]
fn suricata_iprep_with_categories_and_min_score() {
    let mut s = FeedSpec::new(
        "et",
        corpus("suricata-verify/scirius-iprep.list"),
        Format::Iprep,
    );
    s.categories = Some(corpus("suricata-verify/scirius-categories.txt"));
    let (snap, rep) = load(&s);
    assert!(rep.accepted > 27_000, "{}", rep.accepted);
    let id = snap.match_ip("4.4.4.4".parse().unwrap(), None).unwrap();
    let desc = snap.indicator(id, "4.4.4.4").description.unwrap();
    assert!(desc.contains("(score"), "{desc}");
    s.min_score = Some(101);
    let (_, high) = load(&s);
    assert!(high.accepted < rep.accepted);
    assert_eq!(
        high.accepted + reasons(&high, "below min_score"),
        rep.accepted
    );
}

/// A CERT annex as CSV: title rows above the header, Vietnamese headers,
/// defanged entries, a hash row and a typo row.
#[test]
fn annex_csv_with_vietnamese_headers() {
    let path = corpus("feeds/fixtures/annex-congvan.csv");
    let (snap, rep) = load(&FeedSpec::new("congvan-123", &path, Format::Annex));
    assert_eq!(rep.accepted, 4, "{:?}", rep.rejected);
    assert_eq!(reasons(&rep, "sha256 file hash"), 1);
    assert_eq!(rep.rejected.len(), 1);
    assert_eq!(rep.rejected[0].line, 9);
    let id = snap.match_domain("x.bad-apt.example").unwrap();
    assert_eq!(
        snap.indicator(id, "x.bad-apt.example")
            .description
            .as_deref(),
        Some("Máy chủ điều khiển APT")
    );
    // The internationalised name is kept as its ASCII (punycode) form,
    // which is how it appears in DNS, SNI and Host.
    assert!(snap.match_domain("xn--chi-uqa6598asja.example").is_some());
    assert!(snap.match_domain("xn--chi-zna4t.example").is_none());
    assert!(snap.match_pattern(b"phish.example/login").is_some());
}

/// The same annex as an XLSX workbook (written here with rust_xlsxwriter,
/// read back with calamine); the reference names the sheet and row.
#[test]
fn annex_xlsx() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("phu-luc.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet().set_name("Phụ lục 1").unwrap();
    let rows = [
        ["DANH SÁCH IOC", "", "", ""],
        ["STT", "Chỉ số", "Loại", "Ghi chú"],
        ["1", "c2[.]bad-apt.example", "Domain", "APT C2"],
        ["2", "192.0.2.200", "IP", "Scanner"],
        ["3", "44d88612fea8a8f36de82e1278abb02f", "MD5", "EICAR"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(r as u32, c as u16, *v).unwrap();
            }
        }
    }
    wb.save(&p).unwrap();
    let (snap, rep) = load(&FeedSpec::new("annex", &p, Format::Annex));
    assert_eq!(rep.accepted, 2, "{:?}", rep.rejected);
    assert_eq!(reasons(&rep, "md5 file hash"), 1);
    let id = snap.match_domain("c2.bad-apt.example").unwrap();
    let i = snap.indicator(id, "c2.bad-apt.example");
    assert_eq!(i.reference.as_deref(), Some("Phụ lục 1!3"));
    assert_eq!(i.description.as_deref(), Some("APT C2"));
}

/// A directory feed loads every file in it (documentation files left out),
/// each rejection naming its own file.
#[test]
fn directory_feed_reads_every_file() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("lists");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.txt"), "a.bad.example\n").unwrap();
    std::fs::write(dir.join("sub/b.txt"), "b.bad.example\nnot valid\n").unwrap();
    std::fs::write(dir.join("README.md"), "# not a list\nhello world\n").unwrap();
    std::fs::write(dir.join("LICENSE"), "MIT License\n").unwrap();
    std::fs::write(
        d.path().join("feeds.toml"),
        "[[feed]]\nname = \"dir\"\npath = \"lists\"\nformat = \"plain\"\ncategory = \"malware\"\n",
    )
    .unwrap();
    let cfg = FeedsConfig::load(&d.path().join("feeds.toml")).unwrap();
    let (snap, reps, _) = build_snapshot(&cfg);
    assert_eq!(reps[0].files, 2);
    assert_eq!(reps[0].accepted, 2);
    assert_eq!(reps[0].rejected.len(), 1);
    assert!(reps[0].rejected[0].file.ends_with("sub/b.txt"));
    assert!(snap.match_domain("x.b.bad.example").is_some());
}

/// The whole shared data set: every format's totals agree with the data
/// README's ground truth (counts per file type).
#[test]
fn shared_feeds_load_with_ground_truth_counts() {
    let Some(data) = gatewatch::testkit::shared_data() else {
        eprintln!("GATEWATCH_SHARED_DATA not set: the shared feeds were not checked (skipped)");
        return;
    };
    let feeds = data.join("feeds");
    // Zeek intel: 8 files, 20,788 indicators, each accepted, rejected or skipped.
    let mut b = SnapshotBuilder::default();
    let rep = load_feed(
        &FeedSpec::new("z", feeds.join("zeek-intel"), Format::Zeek),
        &mut b,
    );
    assert_eq!(rep.files, 8);
    assert_eq!(
        rep.accepted + rep.rejected.len() + rep.skipped.len(),
        20_788
    );
    // STIX: every domain-name, url and ipv4-addr term of every indicator
    // pattern (counted here from the JSON: 686 + 224 + 98; the data README's
    // per-bundle figures give 221 URLs for Maze, the bundles hold 224).
    let mut terms = 0;
    for f in std::fs::read_dir(feeds.join("stix2/unit42-playbooks")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            for o in v["objects"].as_array().unwrap() {
                let pat = o["pattern"].as_str().unwrap_or("");
                for t in [
                    "domain-name:value = '",
                    "url:value = '",
                    "ipv4-addr:value = '",
                ] {
                    terms += pat.matches(t).count();
                }
            }
        }
    }
    assert_eq!(terms, 686 + 224 + 98);
    let mut b = SnapshotBuilder::default();
    let rep = load_feed(
        &FeedSpec::new("s", feeds.join("stix2/unit42-playbooks"), Format::Stix),
        &mut b,
    );
    assert_eq!(rep.files, 3);
    assert!(rep.failed.is_none());
    assert_eq!(rep.accepted + rep.rejected.len(), terms);
    // MISP: four ESET events parse; only to_ids attributes load.
    let mut b = SnapshotBuilder::default();
    let rep = load_feed(
        &FeedSpec::new("m", feeds.join("misp/eset"), Format::Misp),
        &mut b,
    );
    assert_eq!(rep.files, 4);
    assert!(rep.failed.is_none());
    assert!(rep.accepted > 300);
    // Maltrail static trails: 1,038 files.
    let mut b = SnapshotBuilder::default();
    let rep = load_feed(
        &FeedSpec::new("t", feeds.join("maltrail/static"), Format::Plain),
        &mut b,
    );
    assert_eq!(rep.files, 1_038);
    assert!(rep.accepted > 360_000, "{}", rep.accepted);
    let hits = std::fs::read_to_string(data.join("EXPECTED-FEED-HITS.tsv")).unwrap();
    assert!(!hits.is_empty());
}

#[test]
fn hits_from_structured_feeds_keep_their_source() {
    // A domain hit from a STIX feed reports the observed suffix as the
    // indicator, with the STIX id as reference.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("b.json");
    std::fs::write(
        &p,
        r#"{"type":"bundle","objects":[{"type":"indicator","id":"indicator--x1","name":"C2","pattern":"[domain-name:value = 'c2.example']"}]}"#,
    )
    .unwrap();
    let (snap, _) = load(&FeedSpec::new("s", &p, Format::Stix));
    let id = snap.match_domain("a.c2.example").unwrap();
    let i = snap.indicator(id, "a.c2.example");
    assert_eq!(&*i.value, "c2.example");
    assert_eq!(i.reference.as_deref(), Some("indicator--x1"));
}
