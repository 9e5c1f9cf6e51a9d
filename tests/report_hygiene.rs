//! Issue 16's estimates in `gatewatch report` and `gatewatch export`, on a
//! store written through the one writer with crafted hits, hygiene rows
//! and history: per-unit counts (a host with several signs counted once,
//! active hosts without an antivirus update), "không có dữ liệu" where the
//! history has nothing, the same numbers in Markdown, HTML and XLSX,
//! escaped unit names, and the export's hygiene columns and list.

use calamine::{Data, Reader, Xlsx, open_workbook};
use chrono::{FixedOffset, TimeZone};
use gatewatch::detect::HitSource;
use gatewatch::detect::attribution::Unit;
use gatewatch::detect::history::{HistoryItem, Seen};
use gatewatch::protocols::hostnames::NameSource;
use gatewatch::reports::report::hygiene::{
    ACTIVE, ANTIVIRUS, CRACKED, HYGIENE_LINES, HYGIENE_TITLE, NO_ANTIVIRUS, NOT_AVAILABLE,
};
use gatewatch::reports::report::{ROLLUP_TITLE, TOTAL};
use gatewatch::store::Store;
use gatewatch::store::hygiene::HygieneRecord;
use gatewatch::store::writer::{NameRecord, StoreRecord, StoreWriter};
use gatewatch::testkit::{ICT, bin_tz, ip, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

/// 2026-10-11T03:00:00Z: inside the period below.
const IN: i64 = 1_791_687_600_000_000_000;
/// 2026-10-05T03:00:00Z: before it (and inside the history's retention).
const OUT: i64 = 1_791_169_200_000_000_000;
/// The period, local days in UTC+7.
const FROM: &str = "2026-10-10";
const TO: &str = "2026-10-12";
/// A unit name that is HTML and Markdown.
const EVIL: &str = "<b>Phòng</b> & 'A'";
const LABELS: [&str; 4] = [ACTIVE, CRACKED, ANTIVIRUS, NO_ANTIVIRUS];
/// Key of the roll-up in the maps below.
const ALL: &str = "*";

/// Estimates by unit code (and [`ALL`]), as the report prints them.
type Estimates = BTreeMap<String, [String; 4]>;

fn est(v: [&str; 4]) -> [String; 4] {
    v.map(str::to_owned)
}

fn unit_name(code: &str) -> String {
    match code {
        "U-A" => EVIL.into(),
        c => format!("Phòng {c}"),
    }
}

fn hit(host: &str, unit: &str) -> StoreRecord {
    StoreRecord {
        ts_ns: IN,
        host: ip(host),
        unit: unit.into(),
        unit_name: unit_name(unit),
        value: "198.51.100.7".into(),
        kind: "ipv4",
        feed: "c2".into(),
        category: "botnet-c2".into(),
        severity: "high",
        json: "{}".into(),
    }
}

fn sign(host: &str, unit: &str, signal: &'static str, detail: &str, ev: &str) -> HygieneRecord {
    HygieneRecord {
        ts_ns: IN,
        host: ip(host),
        unit: unit.into(),
        unit_name: unit_name(unit),
        signal,
        detail: detail.into(),
        evidence: ev.into(),
    }
}

fn seen(host: &str, unit: &str, ts_ns: i64) -> HistoryItem {
    HistoryItem {
        ts_ns,
        host: ip(host),
        unit: Arc::new(Unit {
            code: unit.into(),
            name: unit_name(unit),
            nets: Vec::new(),
        }),
        how: HitSource::DnsQuery,
        port: 0,
        value: Seen::Name("example.org".into()),
    }
}

/// The crafted store. U-A: four hosts active in the period; 10.1.0.1 an
/// offender with KMS, a crack domain and Kaspersky; .3 Eset; .4 a crack
/// domain (and a name); .5 only before the period. U-B: an offender and a
/// crack domain, no history. U-C: an offender only. U-D: no offender,
/// two active hosts, one with Avast. With `history` false, none at all.
fn store(dir: &Path, history: bool) -> PathBuf {
    let db = dir.join("hygiene.db");
    let w = StoreWriter::start(Store::open(&db).unwrap(), 1000, None);
    for (h, u) in [
        ("10.1.0.1", "U-A"),
        ("10.2.0.1", "U-B"),
        ("10.3.0.1", "U-C"),
    ] {
        w.put(hit(h, u));
    }
    let kms = "kms_activation_public";
    let crack = "crack_domain";
    let av = "antivirus_update";
    for r in [
        sign("10.1.0.1", "U-A", kms, "", "203.0.113.5:1688"),
        sign("10.1.0.1", "U-A", crack, "", "getintopc.com"),
        sign("10.1.0.1", "U-A", av, "kaspersky", "upd.kaspersky.com"),
        sign("10.1.0.3", "U-A", av, "eset", "update.eset.com"),
        sign("10.1.0.4", "U-A", crack, "", "kmspico.io"),
        HygieneRecord {
            ts_ns: OUT,
            ..sign("10.1.0.5", "U-A", crack, "", "old-crack.example")
        },
        sign("10.2.0.2", "U-B", crack, "", "getintopc.com"),
        sign("10.4.0.2", "U-D", av, "avast", "avcdn.net"),
    ] {
        w.hygiene(r, true);
    }
    if history {
        for (h, u) in [
            ("10.1.0.1", "U-A"),
            ("10.1.0.2", "U-A"),
            ("10.1.0.3", "U-A"),
            ("10.1.0.4", "U-A"),
            ("10.4.0.1", "U-D"),
            ("10.4.0.2", "U-D"),
        ] {
            w.history(vec![seen(h, u, IN)], true);
        }
        w.history(vec![seen("10.1.0.5", "U-A", OUT)], true);
    }
    w.put_name(NameRecord {
        ts_ns: IN,
        ip: ip("10.1.0.4"),
        name: "PC-KETOAN".into(),
        mac: None,
        source: NameSource::Netbios,
    });
    let st = w.finish();
    assert_eq!(st.errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    db
}

fn run(db: &Path, args: &[&str]) -> Output {
    let o = bin_tz(ICT)
        .args(args)
        .arg("--store")
        .arg(db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    o
}

fn report(db: &Path, extra: &[&str]) -> String {
    let args = [&["report", "--from", FROM, "--to", TO], extra].concat();
    String::from_utf8(run(db, &args).stdout).unwrap()
}

fn report_file(db: &Path, format: &str) -> PathBuf {
    let out = db.with_file_name(format!("report.{format}"));
    let p = out.to_str().unwrap();
    run(db, &["report", "--from", FROM, "--to", TO, "-o", p]);
    out
}

/// The estimates of a Markdown report: each section's own table, then the
/// roll-up's per-unit lines (with the total under [`ALL`]).
fn md_estimates(md: &str) -> (Estimates, Estimates) {
    let (mut tables, mut lines) = (Estimates::new(), Estimates::new());
    for sec in md.split("\n## ").skip(1) {
        let head = sec.lines().next().unwrap();
        let key = match head.strip_prefix("Đơn vị: ") {
            Some(rest) => rest.split(" — ").next().unwrap().to_owned(),
            None => ALL.to_owned(),
        };
        let mut table: [String; 4] = Default::default();
        let mut sub = "";
        for row in sec.lines() {
            if let Some(h) = row.strip_prefix("### ") {
                sub = h;
            }
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            if sub == HYGIENE_TITLE && cells.len() == 5 {
                if let Some(i) = LABELS.iter().position(|l| cells[2] == format!("**{l}**")) {
                    table[i] = cells[3].to_owned();
                }
            } else if sub == HYGIENE_LINES && cells.len() == 9 && cells[1] != "STT" {
                let unit = if cells[3] == format!("**{TOTAL}**") {
                    ALL.into()
                } else {
                    cells[2].to_owned()
                };
                if !cells[4].starts_with("--") {
                    let v: [&str; 4] = cells[4..8].try_into().unwrap();
                    lines.insert(unit, est(v));
                }
            }
        }
        assert!(table.iter().all(|c| !c.is_empty()), "{key}: {sec}");
        tables.insert(key, table);
    }
    (tables, lines)
}

/// The cells of an HTML table's rows: `<td>`/`<th>` text, tags dropped.
fn html_rows(table: &str) -> Vec<Vec<String>> {
    table
        .split("<tr")
        .skip(1)
        .map(|row| {
            row[..row.find("</tr>").unwrap()]
                .split("</t")
                .filter_map(|c| c.rfind('>').map(|i| c[i + 1..].to_owned()))
                .collect()
        })
        .collect()
}

/// The estimates of an HTML report, as [`md_estimates`].
fn html_estimates(html: &str) -> (Estimates, Estimates) {
    let (mut tables, mut lines) = (Estimates::new(), Estimates::new());
    let table_of = |sec: &str, class: &str| -> Option<String> {
        let t = sec.split(&format!("<table class=\"{class}\">")).nth(1)?;
        Some(t[..t.find("</table>").unwrap()].to_owned())
    };
    for sec in html.split("<section").skip(1) {
        let key = match sec.split("data-unit=\"").nth(1) {
            Some(a) if !sec.starts_with(" class=\"rollup\"") => a[..a.find('"').unwrap()].into(),
            _ => ALL.to_owned(),
        };
        let rows = html_rows(&table_of(sec, "hygiene").unwrap());
        let v: Vec<String> = rows[1..].iter().map(|r| r[2].clone()).collect();
        let labels: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
        assert_eq!(labels, LABELS);
        tables.insert(key, v.try_into().unwrap());
        for r in table_of(sec, "hygiene-lines").map_or(vec![], |t| html_rows(&t)) {
            if r[0] == "STT" {
                continue;
            }
            let unit = if r[2] == TOTAL { ALL } else { &r[1] };
            let v: [String; 4] = r[3..7].to_vec().try_into().unwrap();
            lines.insert(unit.to_owned(), v);
        }
    }
    (tables, lines)
}

fn cell(r: &[Data], c: usize) -> String {
    match r.get(c) {
        Some(Data::Float(f)) => format!("{f}"),
        Some(d) => d.to_string(),
        None => String::new(),
    }
}

/// The estimates of an XLSX report, as [`md_estimates`]; counts must be
/// numbers, and the not-available cells text.
fn xlsx_estimates(path: &Path) -> (Estimates, Estimates) {
    let mut wb: Xlsx<_> = open_workbook(path).unwrap();
    let (mut tables, mut lines) = (Estimates::new(), Estimates::new());
    for sheet in wb.sheet_names() {
        let range = wb.worksheet_range(&sheet).unwrap();
        let rows: Vec<&[Data]> = range.rows().collect();
        let key = rows
            .iter()
            .find(|r| cell(r, 0) == "Mã đơn vị:")
            .map_or(ALL.to_owned(), |r| cell(r, 1));
        let mut v: [String; 4] = Default::default();
        for r in &rows {
            if let Some(i) = LABELS.iter().position(|l| cell(r, 1) == *l) {
                assert!(matches!(r[2], Data::Float(_)) || cell(r, 2) == NOT_AVAILABLE);
                v[i] = cell(r, 2);
            }
        }
        tables.insert(key, v);
        let Some(at) = rows.iter().position(|r| cell(r, 0) == HYGIENE_LINES) else {
            continue;
        };
        for r in &rows[at + 2..] {
            let unit = match (cell(r, 1), cell(r, 2)) {
                (_, t) if t == TOTAL => ALL.to_owned(),
                (c, _) => c,
            };
            lines.insert(unit.clone(), [3, 4, 5, 6].map(|c| cell(r, c)));
            if unit == ALL {
                break;
            }
        }
    }
    (tables, lines)
}

const NA: &str = NOT_AVAILABLE;

/// The crafted store's estimates: (active, cracked, antivirus, without).
fn expected() -> (Estimates, Estimates) {
    let a = est(["4", "2", "2", "2"]);
    let b = est([NA, "1", "0", NA]);
    let c = est([NA, "0", "0", NA]);
    let d = est(["2", "0", "1", "1"]);
    let all = est(["6", "3", "3", "3"]);
    let tables = BTreeMap::from([
        (ALL.into(), all.clone()),
        ("U-A".into(), a.clone()),
        ("U-B".into(), b.clone()),
        ("U-C".into(), c.clone()),
    ]);
    let mut lines = tables.clone();
    lines.insert("U-D".into(), d);
    (tables, lines)
}

#[test]
fn estimates_are_counted_per_unit_and_rolled_up_in_every_format() {
    let d = tempfile::tempdir().unwrap();
    let db = store(d.path(), true);
    let md = report(&db, &[]);
    let want = expected();
    assert_eq!(md_estimates(&md), want, "{md}");
    let html = std::fs::read_to_string(report_file(&db, "html")).unwrap();
    let (t, l) = html_estimates(&html);
    assert_eq!((t, l), want, "html");
    assert_eq!(xlsx_estimates(&report_file(&db, "xlsx")), want, "xlsx");

    // The offender figures are the form's, untouched: one host per unit.
    let form = "| 1 | **Tổng số máy tính phát hiện kết nối đến địa chỉ độc hại** |";
    assert!(md.contains(&format!("{form} 3 |")), "{md}");
    assert_eq!(md.matches(&format!("{form} 1 |")).count(), 3, "{md}");
    // U-D has no offender: a line of the estimates, no section of its own.
    assert!(!md.contains("## Đơn vị: U-D"), "{md}");
    for s in [
        "không phải số máy nhiễm mã độc",
        "KMS (cổng 1688)",
        "BKAV",
        "Các đơn vị không có dữ liệu về máy hoạt động: U-B, U-C",
        "Phòng U-D",
    ] {
        assert!(md.contains(s), "{s:?} missing from\n{md}");
    }
}

#[test]
fn without_history_the_antivirus_estimate_is_not_available_and_says_why() {
    let d = tempfile::tempdir().unwrap();
    let db = store(d.path(), false);
    let md = report(&db, &[]);
    let (tables, lines) = md_estimates(&md);
    assert_eq!(tables[ALL], est([NA, "3", "3", NA]), "{md}");
    assert_eq!(tables["U-A"], est([NA, "2", "2", NA]));
    assert_eq!(lines["U-D"], est([NA, "0", "1", NA]));
    assert!(md.contains("máy hoạt động của toàn tỉnh trong kỳ"), "{md}");
    assert!(md.contains("\\[history\\] bị tắt"), "{md}");
    // One unit, with its own history: counted; without: not available.
    let one = report(&store(&d.path().join("h"), true), &["--unit", "U-B"]);
    let (t, l) = md_estimates(&one);
    assert_eq!(t, BTreeMap::from([("U-B".into(), est([NA, "1", "0", NA]))]));
    assert!(l.is_empty(), "no roll-up for one unit");
    assert!(one.contains("máy hoạt động của đơn vị trong kỳ"), "{one}");
}

#[test]
fn a_unit_without_offenders_reports_its_estimates_alone() {
    let d = tempfile::tempdir().unwrap();
    let db = store(d.path(), true);
    let md = report(&db, &["--unit", "U-D"]);
    let (t, _) = md_estimates(&md);
    assert_eq!(
        t,
        BTreeMap::from([("U-D".into(), est(["2", "0", "1", "1"]))])
    );
    assert!(
        md.contains("không phát hiện máy tính nào của đơn vị"),
        "{md}"
    );
}

#[test]
fn unit_names_in_the_estimates_are_escaped() {
    let d = tempfile::tempdir().unwrap();
    let db = store(d.path(), true);
    let html = std::fs::read_to_string(report_file(&db, "html")).unwrap();
    assert!(!html.contains("<b>Phòng"), "unescaped name in the HTML");
    let lines = html
        .split("<table class=\"hygiene-lines\">")
        .nth(1)
        .unwrap();
    let lines = &lines[..lines.find("</table>").unwrap()];
    assert!(
        lines.contains("<td>&lt;b&gt;Phòng&lt;/b&gt; &amp; &#39;A&#39;</td>"),
        "{lines}"
    );
    assert!(html.contains("<td class=\"na\">không có dữ liệu</td>"));
    let md = report(&db, &[]);
    let row = md
        .lines()
        .find(|l| l.starts_with("| 1 | U-A |") && l.contains(" | 4 | 2 | 2 | 2 |"))
        .unwrap_or_else(|| panic!("no U-A estimates line in\n{md}"));
    assert!(row.contains("\\<b\\>Phòng\\</b\\> \\& 'A'"), "{row}");
    assert!(md.contains(&format!("## {ROLLUP_TITLE}")));
}

/// A time as the export shows it in UTC+7.
fn ict(ns: i64) -> String {
    FixedOffset::east_opt(7 * 3600)
        .unwrap()
        .timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.6f%z")
        .to_string()
}

fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap());
    let headers = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (headers, rows)
}

fn column(headers: &[String], name: &str) -> usize {
    headers.iter().position(|h| h == name).unwrap()
}

#[test]
fn the_offender_export_carries_signs_and_antivirus_per_host() {
    let d = tempfile::tempdir().unwrap();
    let db = store(d.path(), true);
    let (headers, rows) = csv_rows(&run(&db, &["export", "--all"]).stdout);
    let (cracked, av) = (
        column(&headers, "Dấu hiệu bẻ khóa (ước tính)"),
        column(&headers, "Phần mềm diệt virus (lần cuối thấy)"),
    );
    let by_ip: BTreeMap<&str, &Vec<String>> = rows.iter().map(|r| (r[0].as_str(), r)).collect();
    let a = by_ip["10.1.0.1"];
    assert_eq!(
        a[cracked],
        "crack_domain getintopc.com; kms_activation_public 203.0.113.5:1688"
    );
    assert_eq!(a[av], format!("kaspersky {}", ict(IN)));
    // An offender with no sign; the non-offender 10.2.0.2 is not listed.
    assert_eq!(
        (&by_ip["10.2.0.1"][cracked][..], &by_ip["10.2.0.1"][av][..]),
        ("", "")
    );
    assert_eq!(rows.len(), 3);

    let o = run(&db, &["export", "--unit", "U-A", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v[0]["cracked_signs"][1],
        serde_json::json!({"signal": "kms_activation_public", "evidence": "203.0.113.5:1688",
                           "first_seen": ict(IN), "last_seen": ict(IN)})
    );
    assert_eq!(
        v[0]["antivirus"],
        serde_json::json!([{"vendor": "kaspersky", "evidence": "upd.kaspersky.com",
                            "last_seen": ict(IN)}])
    );

    let out = d.path().join("all.xlsx");
    run(
        &db,
        &[
            "export",
            "--all",
            "--format",
            "xlsx",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let mut wb: Xlsx<_> = open_workbook(&out).unwrap();
    let sheet = wb.worksheet_range("U-A").unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(cell(rows[0], cracked), "Dấu hiệu bẻ khóa (ước tính)");
    assert_eq!(cell(rows[1], av), format!("kaspersky {}", ict(IN)));
}

#[test]
fn the_hygiene_list_names_hosts_that_are_not_offenders() {
    let d = tempfile::tempdir().unwrap();
    let db = store(d.path(), true);
    let o = run(&db, &["export", "--unit", "U-A", "--hygiene"]);
    let (headers, rows) = csv_rows(&o.stdout);
    assert_eq!(
        headers,
        [
            "Địa chỉ IP",
            "Tên máy",
            "Mã đơn vị",
            "Đơn vị",
            "Dấu hiệu bẻ khóa (ước tính)",
            "Phần mềm diệt virus (lần cuối thấy)",
            "Lần đầu thấy dấu hiệu",
            "Lần cuối thấy dấu hiệu",
            "Máy nhiễm (trạng thái)",
        ]
    );
    let ips: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        ips,
        ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5"]
    );
    assert_eq!(rows[0][8], "Chưa xử lý", "the offender");
    let none = String::new();
    // Seen on the network only: nothing to show but that it is there.
    assert_eq!(
        rows[1][2..],
        ["U-A", EVIL, "", "", "", "", ""].map(str::to_owned)
    );
    assert_eq!(rows[2][5], format!("eset {}", ict(IN)));
    assert_eq!(
        rows[3][..9],
        [
            "10.1.0.4",
            "PC-KETOAN",
            "U-A",
            EVIL,
            "crack_domain kmspico.io",
            "",
            &ict(IN),
            &ict(IN),
            "",
        ]
        .map(str::to_owned)
    );
    assert_eq!((&rows[4][6], &rows[4][8]), (&ict(OUT), &none));

    // --since leaves out the host last seen before it.
    let o = run(
        &db,
        &["export", "--unit", "U-A", "--hygiene", "--since", FROM],
    );
    assert_eq!(csv_rows(&o.stdout).1.len(), 4);
}

#[test]
fn the_hygiene_list_covers_every_unit_in_json_and_xlsx() {
    let d = tempfile::tempdir().unwrap();
    let db = store(d.path(), true);
    let o = run(&db, &["export", "--all", "--hygiene", "--format", "json"]);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let units: Vec<&str> = v.iter().map(|r| r["unit"].as_str().unwrap()).collect();
    assert_eq!(
        units,
        ["U-A", "U-A", "U-A", "U-A", "U-A", "U-B", "U-D", "U-D"]
    );
    let b = &v[5];
    assert_eq!(
        (
            &b["host_ip"],
            &b["offender_status"],
            &b["cracked_signs"][0]["evidence"]
        ),
        (
            &"10.2.0.2".into(),
            &serde_json::Value::Null,
            &"getintopc.com".into()
        )
    );

    let out = d.path().join("h.xlsx");
    let p = out.to_str().unwrap();
    run(
        &db,
        &["export", "--all", "--hygiene", "--format", "xlsx", "-o", p],
    );
    let wb: Xlsx<_> = open_workbook(&out).unwrap();
    assert_eq!(wb.sheet_names(), ["U-A", "U-B", "U-D"]);

    let o = bin_tz(ICT)
        .args(["export", "--unit", "NOPE", "--hygiene", "--store"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("unknown unit code \"NOPE\""),
        "{}",
        text(&o)
    );
}
