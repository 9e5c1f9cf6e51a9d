//! The web console over HTTP (`gatewatch serve`): logins (pre-login CSRF
//! pair, throttling), scoping of every page, download and report, the
//! status workflow with its audit rows, the province pages, the escaping
//! of a host name learned from DHCP, and the security headers.

use gatewatch::protocols::hostnames::NameSource;
use gatewatch::store::Store;
use gatewatch::store::writer::{NameRecord, StoreWriter};
use gatewatch::testkit::console::{
    ADMIN, CONSOLE_PW, ConsoleStore, OFFICER, VIEWER, console_store, csrf_of, form_value, login,
    request, serve,
};
use std::net::SocketAddr;

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fixture() -> (tempfile::TempDir, ConsoleStore) {
    let d = tempfile::tempdir().unwrap();
    let f = console_store(d.path(), now_s());
    (d, f)
}

fn get(a: SocketAddr, path: &str, cookie: &str) -> (u16, String) {
    let r = request(a, "GET", path, cookie, "", "");
    (r.status, r.text())
}

fn post(a: SocketAddr, path: &str, cookie: &str, form: &str) -> u16 {
    request(a, "POST", path, cookie, "", form).status
}

#[test]
fn an_officer_sees_its_unit_only_and_changes_status_with_an_audit_trail() {
    let (_d, f) = fixture();
    let c = serve(&f.db, Some(&f.units), &[]);
    let a = c.addr;
    assert_eq!(get(a, "/", "").0, 303, "no session: to the login page");
    let forged = format!("csrf=x&name={OFFICER}&password={}", form_value(CONSOLE_PW));
    assert_eq!(
        post(a, "/login", "", &forged),
        403,
        "login without its pair"
    );
    let (code, s) = login(a, OFFICER, CONSOLE_PW);
    assert_eq!(code, 303);
    let (code, body) = get(a, "/", &s);
    assert!(
        code == 200 && body.contains(&format!("/unit/{}", f.unit)),
        "{body}"
    );
    assert_eq!(body.matches("href=\"/unit/").count(), 1, "one unit: {body}");
    assert!(
        body.contains("<svg") && body.contains("Phát hiện mới"),
        "chart"
    );
    let st = Store::open_read_only(&f.db).unwrap();
    let other = st.offender(f.other_host).unwrap().unwrap();
    assert_eq!(get(a, &format!("/unit/{}", other.unit), &s).0, 403);
    assert_eq!(get(a, &format!("/host/{}", f.other_host), &s).0, 404);
    assert_eq!(get(a, "/host/10.99.99.99", &s).0, 404);
    assert_eq!(get(a, "/host/not-an-ip", &s).0, 404);
    let (code, page) = get(a, &format!("/unit/{}", f.unit), &s);
    assert!(
        code == 200 && page.contains(&f.own_host.to_string()),
        "{page}"
    );
    assert!(!page.contains(&f.other_host.to_string()));

    let host = format!("/host/{}", f.own_host);
    let (_, page) = get(a, &host, &s);
    let csrf = csrf_of(&page);
    let path = format!("{host}/status");
    let before = st.host(f.own_host).unwrap().unwrap().status;
    assert_eq!(post(a, &path, &s, "action=cleaned&note=x"), 403, "no token");
    let zero = "0".repeat(64);
    assert_eq!(
        post(a, &path, &s, &format!("csrf={zero}&action=cleaned")),
        403
    );
    assert_eq!(st.host(f.own_host).unwrap().unwrap().status, before);
    let note = form_value("cài lại <b>máy</b>");
    for action in ["cleaned", "reopen"] {
        let form = format!("csrf={csrf}&action={action}&note={note}");
        assert_eq!(post(a, &path, &s, &form), 303, "{action}");
    }
    let h = st.host(f.own_host).unwrap().unwrap();
    assert_eq!(h.status.as_str(), "open", "reopened");
    let audit = st.audit_log(5).unwrap();
    let mine: Vec<_> = audit
        .iter()
        .filter(|e| e.3 == f.own_host.to_string() && e.1 == OFFICER)
        .map(|e| (e.2.as_str(), e.4.as_str()))
        .collect();
    assert_eq!(
        mine,
        [
            ("host-reopened", "cài lại <b>máy</b>"),
            ("host-cleaned", "cài lại <b>máy</b>")
        ]
    );
    let (_, page) = get(a, &host, &s);
    assert!(
        page.contains("cài lại &lt;b&gt;máy&lt;/b&gt;"),
        "note escaped"
    );
    assert_eq!(get(a, "/audit", &s).0, 403, "audit log: admins only");
    let (code, log) = get(a, "/audit", &login(a, ADMIN, CONSOLE_PW).1);
    assert!(code == 200 && log.contains("host-reopened") && log.contains(OFFICER));
}

#[test]
fn viewers_read_only_and_wrong_passwords_are_throttled() {
    let (_d, f) = fixture();
    let c = serve(&f.db, Some(&f.units), &[]);
    let a = c.addr;
    let (_, s) = login(a, VIEWER, CONSOLE_PW);
    let (code, page) = get(a, &format!("/host/{}", f.own_host), &s);
    assert!(code == 200 && !page.contains("/status"), "no form: {page}");
    let csrf = csrf_of(&get(a, "/", &s).1);
    let path = format!("/host/{}/status", f.own_host);
    assert_eq!(
        post(a, &path, &s, &format!("csrf={csrf}&action=cleaned")),
        403
    );
    for _ in 0..5 {
        assert_eq!(login(a, ADMIN, "sai-mat-khau-roi").0, 401);
    }
    assert_eq!(
        login(a, ADMIN, CONSOLE_PW).0,
        429,
        "locked out, right password or not"
    );
    assert_eq!(login(a, OFFICER, CONSOLE_PW).0, 303, "other names are not");
    assert_eq!(login(a, "không-có", CONSOLE_PW).0, 401);
}

#[test]
fn a_script_host_name_from_dhcp_is_inert_and_headers_forbid_scripts() {
    let (_d, f) = fixture();
    let w = StoreWriter::start(Store::open(&f.db).unwrap(), 16, None);
    w.put_name(NameRecord {
        ts_ns: i64::MAX / 2,
        ip: f.own_host,
        name: "<script>alert(1)</script>".into(),
        mac: None,
        source: NameSource::Dhcp,
    });
    w.finish();
    let c = serve(&f.db, Some(&f.units), &[]);
    let (_, s) = login(c.addr, OFFICER, CONSOLE_PW);
    for path in [format!("/unit/{}", f.unit), format!("/host/{}", f.own_host)] {
        let r = request(c.addr, "GET", &path, &s, "", "");
        let page = r.text();
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<script"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    let r = request(c.addr, "GET", "/login", "", "", "");
    let set = r.header("set-cookie").unwrap_or("");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"));
}

#[test]
fn disabling_an_account_ends_its_session() {
    let (_d, f) = fixture();
    let c = serve(&f.db, Some(&f.units), &["--secure-cookies"]);
    let r = request(c.addr, "GET", "/login", "", "", "");
    assert!(r.header("set-cookie").unwrap_or("").contains("Secure"));
    let (_, s) = login(c.addr, OFFICER, CONSOLE_PW);
    assert_eq!(get(c.addr, "/", &s).0, 200);
    Store::open(&f.db)
        .unwrap()
        .disable_account(OFFICER, "test", 2)
        .unwrap();
    assert_eq!(get(c.addr, "/", &s).0, 303, "to the login page");
    assert_eq!(login(c.addr, OFFICER, CONSOLE_PW).0, 401);
}

#[test]
fn province_pages_are_for_province_accounts() {
    let (_d, f) = fixture();
    let c = serve(&f.db, Some(&f.units), &[]);
    let a = c.addr;
    let (_, officer) = login(a, OFFICER, CONSOLE_PW);
    let (_, admin) = login(a, ADMIN, CONSOLE_PW);
    for p in ["/feeds", "/sensors", "/audit", "/report"] {
        assert_eq!(get(a, p, &officer).0, 403, "{p}");
    }
    let (code, feeds) = get(a, "/feeds", &admin);
    assert!(
        code == 200 && feeds.contains("Cảm biến") && feeds.contains("domain"),
        "{feeds}"
    );
    let (code, sensors) = get(a, "/sensors", &admin);
    assert!(
        code == 200 && sensors.contains("phát lại pcap"),
        "{sensors}"
    );
    let (code, front) = get(a, "/", &admin);
    assert!(
        code == 200 && front.matches("href=\"/unit/").count() == 40,
        "every unit"
    );
    assert!(front.contains("Số máy tái nhiễm"), "{front}");
}
