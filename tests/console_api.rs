//! The console's downloads, reports and JSON API, each scoped to the
//! account, and the console over TLS.

use calamine::{Data, Reader, Xlsx};
use gatewatch::store::Store;
use gatewatch::testkit::console::{
    ADMIN, CONSOLE_PW, ConsoleStore, OFFICER, VIEWER, console_store, login, request, serve,
};
use serde_json::Value;
use std::io::Cursor;
use std::net::SocketAddr;

fn fixture() -> (tempfile::TempDir, ConsoleStore) {
    let d = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let f = console_store(d.path(), now);
    (d, f)
}

fn bearer(t: &str) -> String {
    format!("Authorization: Bearer {t}\r\n")
}

fn api(a: SocketAddr, path: &str, cookie: &str, headers: &str) -> (u16, Value) {
    let r = request(a, "GET", path, cookie, headers, "");
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

/// Every address in the first column of every sheet but a summary.
fn sheet_ips(bytes: Vec<u8>) -> Vec<String> {
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("an XLSX workbook");
    let mut out = Vec::new();
    for name in wb.sheet_names() {
        let range = wb.worksheet_range(&name).unwrap();
        for row in range.rows().skip(1) {
            if let Some(Data::String(s)) = row.first()
                && s.parse::<std::net::IpAddr>().is_ok()
            {
                out.push(s.clone());
            }
        }
    }
    out
}

#[test]
fn downloads_hold_the_accounts_units_only() {
    let (_d, f) = fixture();
    let c = serve(&f.db, Some(&f.units), &[]);
    let a = c.addr;
    let (_, s) = login(a, OFFICER, CONSOLE_PW);
    let st = Store::open_read_only(&f.db).unwrap();
    let own: Vec<String> = st
        .offenders(Some(&f.unit), None, None)
        .unwrap()
        .into_iter()
        .map(|o| o.ip)
        .collect();
    let other_unit = st.offender(f.other_host).unwrap().unwrap().unit;

    let csv = request(
        a,
        "GET",
        &format!("/unit/{}/offenders.csv", f.unit),
        &s,
        "",
        "",
    );
    assert_eq!(csv.status, 200);
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    let text = csv.text();
    assert_eq!(text.lines().count(), own.len() + 1, "{text}");
    assert!(own.iter().all(|ip| text.contains(ip.as_str())));

    let x = request(
        a,
        "GET",
        &format!("/unit/{}/offenders.xlsx", f.unit),
        &s,
        "",
        "",
    );
    assert_eq!(x.status, 200);
    let mut got = sheet_ips(x.body);
    got.sort();
    let mut want = own.clone();
    want.sort();
    assert_eq!(got, want);

    let filtered = format!("/unit/{}/offenders.csv?status=cleaned&q=", f.unit);
    let cleaned = request(a, "GET", &filtered, &s, "", "").text();
    assert!(
        cleaned.lines().skip(1).all(|l| l.contains("Đã xử lý")),
        "{cleaned}"
    );

    for path in [
        format!("/unit/{other_unit}/offenders.csv"),
        format!("/unit/{other_unit}/offenders.xlsx"),
    ] {
        assert_eq!(request(a, "GET", &path, &s, "", "").status, 403, "{path}");
    }
}

#[test]
fn reports_are_the_units_and_the_province_report_the_provinces() {
    let (_d, f) = fixture();
    let c = serve(&f.db, Some(&f.units), &[]);
    let a = c.addr;
    let (_, s) = login(a, OFFICER, CONSOLE_PW);
    let other = Store::open_read_only(&f.db)
        .unwrap()
        .offender(f.other_host)
        .unwrap()
        .unwrap();
    for path in [
        format!("/unit/{}/report?format=xlsx", other.unit),
        "/report?format=xlsx".to_string(),
    ] {
        assert_eq!(request(a, "GET", &path, &s, "", "").status, 403, "{path}");
    }
    let r = request(
        a,
        "GET",
        &format!("/unit/{}/report?format=xlsx", f.unit),
        &s,
        "",
        "",
    );
    assert_eq!(r.status, 200);
    let wb: Xlsx<_> = Xlsx::new(Cursor::new(r.body)).unwrap();
    assert_eq!(wb.sheet_names().len(), 1, "one unit, no roll-up");
    let html = request(
        a,
        "GET",
        &format!("/unit/{}/report?format=html", f.unit),
        &s,
        "",
        "",
    );
    assert!(html.text().contains("BÁO CÁO KẾT QUẢ"));
    let bad = format!("/unit/{}/report?from=hôm-qua", f.unit);
    assert_eq!(request(a, "GET", &bad, &s, "", "").status, 400);

    let (_, admin) = login(a, ADMIN, CONSOLE_PW);
    let r = request(a, "GET", "/report?format=xlsx", &admin, "", "");
    assert_eq!(r.status, 200);
    let wb: Xlsx<_> = Xlsx::new(Cursor::new(r.body)).unwrap();
    assert!(wb.sheet_names().len() > 2, "roll-up and units");
}

#[test]
fn every_api_route_needs_an_account_and_is_scoped_to_it() {
    let (_d, f) = fixture();
    let mut st = Store::open(&f.db).unwrap();
    let officer = st.new_token(OFFICER, "test", 1).unwrap();
    let viewer = st.new_token(VIEWER, "test", 1).unwrap();
    let admin = st.new_token(ADMIN, "test", 1).unwrap();
    let other_unit = st.offender(f.other_host).unwrap().unwrap().unit;
    drop(st);
    let c = serve(&f.db, Some(&f.units), &[]);
    let a = c.addr;
    let routes = [
        "/api/units".to_string(),
        "/api/offenders".to_string(),
        format!("/api/offenders?unit={}", f.unit),
        format!("/api/hosts/{}", f.own_host),
    ];
    for r in &routes {
        assert_eq!(api(a, r, "", "").0, 401, "no token: {r}");
        assert_eq!(
            api(a, r, "", &bearer(&"0".repeat(64))).0,
            401,
            "bad token: {r}"
        );
        assert_eq!(api(a, r, "", &bearer(&officer)).0, 200, "own: {r}");
        assert_eq!(api(a, r, "", &bearer(&admin)).0, 200, "admin: {r}");
    }
    let (_, v) = api(a, "/api/offenders", "", &bearer(&officer));
    let units: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["unit"].as_str().unwrap())
        .collect();
    assert!(
        !units.is_empty() && units.iter().all(|u| *u == f.unit),
        "{v}"
    );
    let other = [
        (format!("/api/offenders?unit={other_unit}"), 403),
        (format!("/api/hosts/{}", f.other_host), 404),
    ];
    for (r, code) in &other {
        assert_eq!(api(a, r, "", &bearer(&officer)).0, *code, "{r}");
        assert_eq!(api(a, r, "", &bearer(&viewer)).0, *code, "{r}");
    }
    let (_, session) = login(a, OFFICER, CONSOLE_PW);
    assert_eq!(
        api(a, &routes[3], &session, "").0,
        200,
        "a session works too"
    );
    assert_eq!(api(a, &other[1].0, &session, "").0, 404);
    Store::open(&f.db)
        .unwrap()
        .disable_account(OFFICER, "test", 2)
        .unwrap();
    for r in &routes {
        assert_eq!(api(a, r, "", &bearer(&officer)).0, 401, "disabled: {r}");
        assert_eq!(api(a, r, &session, "").0, 401, "disabled session: {r}");
    }
}

#[test]
fn the_console_speaks_tls_with_secure_cookies() {
    let (d, f) = fixture();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (crt, key) = (d.path().join("c.pem"), d.path().join("k.pem"));
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
    let args = [
        "--tls-cert",
        crt.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let c = serve(&f.db, Some(&f.units), &args);
    assert!(c.url.starts_with("https://"), "{}", c.url);
    let o = std::process::Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(&crt)
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", c.addr.port()))
        .arg(format!("https://localhost:{}/login", c.addr.port()))
        .output()
        .expect("curl (scripts/setup-debian.sh installs it)");
    let head = String::from_utf8_lossy(&o.stdout);
    let ok = head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/2 200");
    assert!(ok, "{head}{}", String::from_utf8_lossy(&o.stderr));
    assert!(head.to_lowercase().contains("; secure"), "{head}");
    let plain = std::net::TcpStream::connect(c.addr).and_then(|mut s| {
        use std::io::{Read, Write};
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        s.write_all(b"GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut v = Vec::new();
        let _ = s.read_to_end(&mut v);
        Ok(v)
    });
    assert!(
        !plain.unwrap_or_default().starts_with(b"HTTP/1.1 200"),
        "no plain HTTP"
    );
}
