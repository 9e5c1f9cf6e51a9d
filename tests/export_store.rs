//! `gatewatch export` from the offender store, read back the way a unit's
//! spreadsheet program or a script reads it: XLSX sheets (calamine), CSV
//! with its BOM (csv), JSON (serde_json), against what the store holds.

use calamine::{Data, Reader, Xlsx, open_workbook};
use chrono::{FixedOffset, TimeZone};
use gatewatch::store::Store;
use gatewatch::store::query::OffenderDetail;
use gatewatch::testkit::{DEMO_CAPTURES, ICT, bin_tz, text};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

const HEADERS: [&str; 14] = [
    "Địa chỉ IP",
    "Tên máy",
    "Mã đơn vị",
    "Đơn vị",
    "Trạng thái",
    "Lần đầu phát hiện",
    "Lần cuối phát hiện",
    "Số lần kết nối",
    "Số địa chỉ độc hại",
    "Địa chỉ độc hại (nhiều nhất)",
    "Loại",
    "Mức độ",
    "Dấu hiệu bẻ khóa (ước tính)",
    "Phần mềm diệt virus (lần cuối thấy)",
];
const SUMMARY: &str = "Tổng hợp";
const UNITS: [&str; 5] = ["SO-TTTT", "U001", "U002", "U003", "U004"];
/// The real C2 client of samples/c2-tls-clienthello.pcap.
const C2_HOST: &str = "192.168.46.2";

/// A store filled by replaying captures on the demo feeds.
struct Fixture {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        Self::replay(Path::new("feeds/units.csv"), &DEMO_CAPTURES)
    }

    fn replay(units: &Path, captures: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("gatewatch.db");
        let o = bin_tz(ICT)
            .args(["replay", "--feeds", "samples/demo-feeds.toml", "--units"])
            .arg(units)
            .arg("--alerts")
            .arg(dir.path().join("alerts.jsonl"))
            .arg("--store")
            .arg(&db)
            .args(captures)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        Fixture { dir, db }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn store(&self) -> Store {
        Store::open_read_only(&self.db).unwrap()
    }

    fn offenders(&self) -> Vec<OffenderDetail> {
        self.store().offenders(None, None, None).unwrap()
    }

    /// `gatewatch export --store DB ARGS...`
    fn export(&self, args: &[&str]) -> Output {
        bin_tz(ICT)
            .arg("export")
            .arg("--store")
            .arg(&self.db)
            .args(args)
            .output()
            .unwrap()
    }

    fn export_ok(&self, args: &[&str]) -> Output {
        let o = self.export(args);
        assert!(o.status.success(), "export {args:?}: {}", text(&o));
        o
    }
}

/// Every sheet of a workbook: name and rows of cells.
fn read_xlsx(path: &Path) -> Vec<(String, Vec<Vec<Data>>)> {
    let mut wb: Xlsx<_> = open_workbook(path).unwrap();
    wb.sheet_names()
        .into_iter()
        .map(|n| {
            let range = wb.worksheet_range(&n).unwrap();
            let rows = range.rows().map(<[Data]>::to_vec).collect();
            (n, rows)
        })
        .collect()
}

fn strings(row: &[Data]) -> Vec<String> {
    row.iter().map(Data::to_string).collect()
}

/// A timestamp as the export shows it in UTC+7.
fn ict(ns: i64) -> String {
    FixedOffset::east_opt(7 * 3600)
        .unwrap()
        .timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.6f%z")
        .to_string()
}

fn top(d: &OffenderDetail) -> String {
    let v: Vec<String> = d
        .top_indicators
        .iter()
        .map(|(i, n)| format!("{i} ×{n}"))
        .collect();
    v.join("; ")
}

/// The CSV/sheet row a store host must export as.
fn expected_row(d: &OffenderDetail, status_label: &str) -> Vec<String> {
    vec![
        d.ip.clone(),
        d.hostname.clone().unwrap_or_default(),
        d.unit.clone(),
        d.unit_name.clone(),
        status_label.to_owned(),
        ict(d.first_seen_ns),
        ict(d.last_seen_ns),
        d.hits.to_string(),
        d.indicator_count.to_string(),
        top(d),
        d.categories.join(", "),
        d.severity.clone(),
        // The demo captures carry no hygiene signal.
        String::new(),
        String::new(),
    ]
}

fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let body = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .expect("CSV starts with a UTF-8 BOM");
    let mut r = csv::Reader::from_reader(body);
    let headers = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (headers, rows)
}

/// One sheet per unit of a workbook: the headers, then one row per host
/// the store holds for unit `name`, each as the store's `all` offenders
/// export it (the unit's code in column 3, the hits as a number).
fn assert_unit_sheet(name: &str, rows: &[Vec<Data>], store: &Store, all: &[OffenderDetail]) {
    assert_eq!(strings(&rows[0]), HEADERS, "header of {name}");
    let hosts = store.hosts(Some(name)).unwrap();
    assert_eq!(rows.len() - 1, hosts.len(), "rows of {name}");
    let want: BTreeSet<String> = hosts.iter().map(|h| h.ip.to_string()).collect();
    let got: BTreeSet<String> = rows[1..].iter().map(|r| r[0].to_string()).collect();
    assert_eq!(got, want, "hosts of {name}");
    for r in &rows[1..] {
        assert_eq!(r[2].to_string(), *name);
        assert!(matches!(r[7], Data::Float(_)), "hits are numbers: {r:?}");
        let d = all.iter().find(|d| d.ip == r[0].to_string()).unwrap();
        assert_eq!(strings(r), expected_row(d, "Chưa xử lý"));
    }
}

/// The first host row of the SO-TTTT sheet is the real C2 client, cell for
/// cell.
fn assert_c2_row(c2: &[Vec<Data>]) {
    assert_eq!(
        strings(&c2[1]),
        [
            C2_HOST,
            "",
            "SO-TTTT",
            "Sở Thông tin và Truyền thông",
            "Chưa xử lý",
            "2022-11-24T17:16:15.849397+0700",
            "2022-11-24T17:16:15.849397+0700",
            "1",
            "1",
            "91.254.215.167 ×1",
            "botnet-c2",
            "high",
            "",
            "",
        ]
    );
}

/// The summary sheet: its headers, one row per unit of the store with its
/// counts, then a total row counting all `hosts` offenders.
fn assert_summary(summary: &[Vec<Data>], store: &Store, hosts: usize) {
    assert_eq!(
        strings(&summary[0]),
        [
            "Mã đơn vị",
            "Đơn vị",
            "Số máy nhiễm",
            "Chưa xử lý",
            "Đã xử lý",
            "Tái nhiễm"
        ]
    );
    let units = store.units().unwrap();
    for (u, row) in units.iter().zip(&summary[1..]) {
        let n = |x: u64| x.to_string();
        assert_eq!(
            strings(row),
            [
                u.code.clone(),
                u.name.clone(),
                n(u.hosts),
                n(u.open),
                n(u.cleaned),
                n(u.reinfected)
            ]
        );
    }
    let total = strings(&summary[units.len() + 1]);
    assert_eq!(total[0], "Tổng cộng");
    assert_eq!(total[2], hosts.to_string());
}

/// One unit: its sheet only, no summary.
fn assert_one_unit_workbook(f: &Fixture, store: &Store) {
    let one = f.path("u002.xlsx");
    f.export_ok(&[
        "--unit",
        "U002",
        "--format",
        "xlsx",
        "-o",
        one.to_str().unwrap(),
    ]);
    let sheets = read_xlsx(&one);
    assert_eq!(sheets.len(), 1);
    assert_eq!(sheets[0].0, "U002");
    assert_eq!(
        sheets[0].1.len() - 1,
        store.hosts(Some("U002")).unwrap().len()
    );
}

/// `--all` gives a summary sheet, then one sheet per unit holding exactly
/// its hosts; `--unit` gives that unit's sheet alone.
#[test]
fn xlsx_has_a_summary_then_one_sheet_per_unit_holding_its_hosts() {
    let f = Fixture::new();
    let out = f.path("all.xlsx");
    f.export_ok(&["--all", "--format", "xlsx", "-o", out.to_str().unwrap()]);
    let sheets = read_xlsx(&out);
    let names: Vec<&str> = sheets.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, [&[SUMMARY][..], &UNITS[..]].concat());

    let store = f.store();
    let all = f.offenders();
    for (name, rows) in &sheets[1..] {
        assert_unit_sheet(name, rows, &store, &all);
    }
    assert_c2_row(&sheets[1].1);
    assert_summary(&sheets[0].1, &store, all.len());
    assert_one_unit_workbook(&f, &store);
}

#[test]
fn csv_has_a_bom_vietnamese_headers_and_the_stores_rows() {
    let f = Fixture::new();
    let out = f.path("all.csv");
    f.export_ok(&["--all", "--format", "csv", "-o", out.to_str().unwrap()]);
    let (headers, rows) = csv_rows(&std::fs::read(&out).unwrap());
    assert_eq!(headers, HEADERS);
    let all = f.offenders();
    assert_eq!(rows.len(), all.len());
    for r in &rows {
        let d = all.iter().find(|d| d.ip == r[0]).unwrap();
        assert_eq!(*r, expected_row(d, "Chưa xử lý"));
    }
    // Rows by unit, then by address as a number (10.20.1.10 before 10.20.1.13).
    let order: Vec<(String, std::net::IpAddr)> = rows
        .iter()
        .map(|r| (r[2].clone(), r[0].parse().unwrap()))
        .collect();
    assert!(order.is_sorted(), "{order:?}");

    // One unit to standard output (the default format): BOM too.
    let o = f.export_ok(&["--unit", "U002"]);
    let (headers, rows) = csv_rows(&o.stdout);
    assert_eq!(headers, HEADERS);
    assert_eq!(rows.len(), f.store().hosts(Some("U002")).unwrap().len());
    assert!(rows.iter().all(|r| r[2] == "U002"));
}

#[test]
fn json_rows_keep_stable_keys_and_equal_the_store() {
    let f = Fixture::new();
    let o = f.export_ok(&["--all", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    let all = f.offenders();
    assert_eq!(rows.len(), all.len());
    let keys: BTreeSet<&str> = [
        "host_ip",
        "hostname",
        "unit",
        "unit_name",
        "status",
        "status_label",
        "first_seen",
        "last_seen",
        "hits",
        "distinct_indicators",
        "top_indicators",
        "categories",
        "severity",
        "cracked_signs",
        "antivirus",
    ]
    .into();
    for r in rows {
        let got: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(got, keys);
        let d = all.iter().find(|d| d.ip == r["host_ip"]).unwrap();
        let tops: Vec<serde_json::Value> = d
            .top_indicators
            .iter()
            .map(|(i, n)| serde_json::json!({"indicator": i, "hits": n}))
            .collect();
        assert_eq!(
            *r,
            serde_json::json!({
                "host_ip": d.ip,
                "hostname": d.hostname,
                "unit": d.unit,
                "unit_name": d.unit_name,
                "status": "open",
                "status_label": "Chưa xử lý",
                "first_seen": ict(d.first_seen_ns),
                "last_seen": ict(d.last_seen_ns),
                "hits": d.hits,
                "distinct_indicators": d.indicator_count,
                "top_indicators": tops,
                "categories": d.categories,
                "severity": d.severity,
                "cracked_signs": [],
                "antivirus": [],
            })
        );
    }
}

#[test]
fn since_keeps_the_hosts_last_seen_from_then() {
    let f = Fixture::new();
    let hosts = |args: &[&str]| -> Vec<String> {
        let o = f.export_ok(&[&["--all", "--format", "json"], args].concat());
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["host_ip"].as_str().unwrap().to_owned())
            .collect()
    };
    let total = f.offenders().len();
    // The synthetic hosts were all seen on 2022-10-01 (UTC), the C2 client
    // on 2022-11-24 at 10:16:15.849397 UTC.
    assert_eq!(hosts(&["--since", "2022-10-01"]).len(), total);
    assert_eq!(hosts(&["--since", "2022-11-01"]), [C2_HOST]);
    assert_eq!(hosts(&["--since", "2022-11-24T10:16:15Z"]), [C2_HOST]);
    assert_eq!(hosts(&["--since", "2022-11-24T17:16:15+07:00"]), [C2_HOST]);
    assert!(hosts(&["--since", "2022-11-24T10:16:16Z"]).is_empty());
    assert!(hosts(&["--since", "2022-11-25"]).is_empty());
    // A date starts at local midnight: 2022-11-24 00:00 in UTC-11 is 11:00
    // UTC, after the C2 hit; in UTC+7 it is the evening before.
    assert_eq!(hosts(&["--since", "2022-11-24"]), [C2_HOST]);
    let o = bin_tz("SST11")
        .args([
            "export",
            "--all",
            "--format",
            "json",
            "--since",
            "2022-11-24",
            "--store",
        ])
        .arg(&f.db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");

    // A unit with nothing in the period still gets its sheet, header only.
    let out = f.path("none.xlsx");
    let p = out.to_str().unwrap();
    f.export_ok(&[
        "--unit",
        "U001",
        "--since",
        "2023-01-01",
        "--format",
        "xlsx",
        "-o",
        p,
    ]);
    let sheets = read_xlsx(&out);
    assert_eq!(sheets.len(), 1);
    assert_eq!(strings(&sheets[0].1[0]), HEADERS);
    assert_eq!(sheets[0].1.len(), 1);
}

#[test]
fn bad_dates_unknown_units_and_a_workbook_to_stdout_are_refused() {
    let f = Fixture::new();
    for bad in ["2022-13-45", "24/11/2022", "yesterday"] {
        let o = f.export(&["--all", "--since", bad]);
        assert!(!o.status.success());
        let t = text(&o);
        for want in ["--since", bad, "YYYY-MM-DD", "RFC 3339"] {
            assert!(t.contains(want), "{want:?} missing: {t}");
        }
    }

    let o = f.export(&["--unit", "NOPE"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("unknown unit code \"NOPE\""), "{t}");
    assert!(t.contains("SO-TTTT, U001, U002, U003, U004"), "{t}");
    assert!(o.stdout.is_empty(), "nothing exported: {t}");

    let o = f.export(&["--all", "--format", "xlsx"]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(text(&o).contains("-o FILE"), "{}", text(&o));

    let missing = f.path("none.db");
    let o = bin_tz(ICT)
        .args(["export", "--all", "--store"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("none.db") && t.contains("--alerts"), "{t}");

    // The alert-log export has no workbook.
    let log = f.path("alerts.jsonl");
    let out = f.path("log.xlsx");
    let o = bin_tz(ICT)
        .args(["export", "--all", "--format", "xlsx", "--alerts"])
        .arg(&log)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("offender store"), "{}", text(&o));
    assert!(!out.exists());
}

#[test]
fn a_host_marked_cleaned_exports_as_da_xu_ly() {
    let f = Fixture::new();
    let o = bin_tz(ICT)
        .args([
            "hosts",
            "mark-cleaned",
            "10.20.0.13",
            "--by",
            "an",
            "--store",
        ])
        .arg(&f.db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    let (_, rows) = csv_rows(&f.export_ok(&["--unit", "U001"]).stdout);
    let row = rows.iter().find(|r| r[0] == "10.20.0.13").unwrap();
    assert_eq!(row[4], "Đã xử lý");

    let o = f.export_ok(&["--unit", "U001", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let host = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host_ip"] == "10.20.0.13")
        .unwrap();
    assert_eq!(
        (&host["status"], &host["status_label"]),
        (&"cleaned".into(), &"Đã xử lý".into())
    );

    let out = f.path("all.xlsx");
    f.export_ok(&["--all", "--format", "xlsx", "-o", out.to_str().unwrap()]);
    let sheets = read_xlsx(&out);
    let u001 = &sheets.iter().find(|s| s.0 == "U001").unwrap().1;
    let row = u001.iter().find(|r| r[0] == "10.20.0.13").unwrap();
    assert_eq!(row[4].to_string(), "Đã xử lý");
    let summary = &sheets[0].1;
    let u = summary.iter().find(|r| r[0] == "U001").unwrap();
    let hosts = f.store().hosts(Some("U001")).unwrap().len();
    assert_eq!(
        strings(&u[2..]),
        [
            hosts.to_string(),
            (hosts - 1).to_string(),
            "1".into(),
            "0".into()
        ]
    );
}

#[test]
fn a_long_unit_code_becomes_a_valid_sheet_name() {
    let code = "SO-THONG-TIN-VA-TRUYEN-THONG-QUANG-NAM";
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units.csv");
    std::fs::write(
        &units,
        format!("code,name,cidrs\n{code},\"Sở Thông tin và Truyền thông\",192.168.46.0/24\n"),
    )
    .unwrap();
    let f = Fixture::replay(&units, &["samples/c2-tls-clienthello.pcap"]);
    let out = f.path("long.xlsx");
    f.export_ok(&["--all", "--format", "xlsx", "-o", out.to_str().unwrap()]);
    let sheets = read_xlsx(&out);
    let names: Vec<&str> = sheets.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, [SUMMARY, &code[..31]]);
    // The sheet name is cut; the unit code in the rows is whole.
    assert_eq!(sheets[1].1[1][2].to_string(), code);
    assert_eq!(sheets[1].1[1][0].to_string(), C2_HOST);
}
