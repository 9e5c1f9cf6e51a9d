//! The web console over HTTP (issue 17, in progress): login with the
//! pre-login CSRF pair and throttling, a unit officer seeing its unit only
//! (403 for another unit, 404 for its host), marking a host cleaned with
//! the session's CSRF token (kept with the officer's name), a viewer unable
//! to, and a host name `<script>` from DHCP rendered inert.

use gatewatch::protocols::hostnames::NameSource;
use gatewatch::store::Store;
use gatewatch::store::accounts::Role;
use gatewatch::store::writer::{NameRecord, StoreWriter};
use gatewatch::testkit::{bin_path, demo_store, root};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};

const PW: &str = "mật-khẩu-dài-đủ";
const C2_HOST: &str = "192.168.46.2";

struct Console(Child, SocketAddr);

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(db: &std::path::Path) -> Console {
    let mut c = Command::new(bin_path())
        .current_dir(root())
        .args([
            "--log",
            "info",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
        ])
        .arg(db)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(c.stderr.take().unwrap()).lines();
    let addr = loop {
        let l = lines.next().expect("console exited").unwrap();
        if let Some(a) = l.split("console on http://").nth(1) {
            break a.trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Console(c, addr)
}

/// One request: (status, headers, body).
fn req(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    form: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (
        head[9..12].parse().unwrap(),
        head.to_string(),
        body.to_string(),
    )
}

fn set_cookie(head: &str, name: &str) -> String {
    let l = head
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie:") && l.contains(name));
    let v = l.expect("a cookie").split_once(':').unwrap().1.trim();
    v.split(';').next().unwrap().to_string()
}

/// Log in as `name`; the session cookie.
fn login(addr: SocketAddr, name: &str, pw: &str) -> (u16, String) {
    let (_, head, _) = req(addr, "GET", "/login", "", "");
    let pre = set_cookie(&head, "gw_login");
    let token = pre.split_once('=').unwrap().1.to_string();
    let form = format!("csrf={token}&name={name}&password={}", urlencode(pw));
    let (code, head, _) = req(addr, "POST", "/login", &pre, &form);
    let session = if code == 303 {
        set_cookie(&head, "gw_session")
    } else {
        String::new()
    };
    (code, session)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn csrf_of(body: &str) -> String {
    let i = body.find("name=\"csrf\" value=\"").expect("a form") + 19;
    body[i..i + 64].to_string()
}

fn store() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let d = tempfile::tempdir().unwrap();
    let db = demo_store(d.path());
    let w = StoreWriter::start(Store::open(&db).unwrap(), 16, None);
    let name = NameRecord {
        ts_ns: i64::MAX / 2,
        ip: C2_HOST.parse().unwrap(),
        name: "<script>alert(1)</script>".into(),
        mac: None,
        source: NameSource::Dhcp,
    };
    w.put_name(name);
    w.finish();
    let mut s = Store::open(&db).unwrap();
    let so = ["SO-TTTT".to_string()];
    s.add_account("officer", Role::UnitOfficer, &so, PW, "test", 1)
        .unwrap();
    s.add_account("viewer", Role::Viewer, &so, PW, "test", 1)
        .unwrap();
    s.add_account("noisy", Role::Viewer, &[], PW, "test", 1)
        .unwrap();
    let other = s
        .offenders(None, None, None)
        .unwrap()
        .into_iter()
        .find(|o| o.unit != "SO-TTTT")
        .unwrap();
    (d, db, other.ip)
}

#[test]
fn an_officer_sees_its_unit_and_marks_a_host_cleaned() {
    let (_d, db, other) = store();
    let c = start(&db);
    let a = c.1;
    assert_eq!(
        req(a, "GET", "/", "", "").0,
        303,
        "no session: to the login page"
    );
    assert_eq!(
        req(
            a,
            "POST",
            "/login",
            "",
            &format!("csrf=x&name=officer&password={PW}")
        )
        .0,
        403
    );
    let (code, s) = login(a, "officer", PW);
    assert_eq!(code, 303);
    let (code, _, body) = req(a, "GET", "/", &s, "");
    assert!(code == 200 && body.contains("SO-TTTT"), "{body}");
    assert!(!body.contains("U002"), "{body}");
    assert_eq!(req(a, "GET", "/unit/U002", &s, "").0, 403);
    assert_eq!(req(a, "GET", &format!("/host/{other}"), &s, "").0, 404);
    let (code, _, page) = req(a, "GET", "/unit/SO-TTTT", &s, "");
    assert_eq!(code, 200);
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>"),
        "{page}"
    );
    let (code, _, page) = req(a, "GET", &format!("/host/{C2_HOST}"), &s, "");
    assert_eq!(code, 200);
    let csrf = csrf_of(&page);
    let path = format!("/host/{C2_HOST}/cleaned");
    assert_eq!(req(a, "POST", &path, &s, "note=x").0, 403, "no CSRF token");
    assert_eq!(
        req(
            a,
            "POST",
            &path,
            &s,
            &format!("csrf={}&note=x", "0".repeat(64))
        )
        .0,
        403
    );
    assert_eq!(
        req(
            a,
            "POST",
            &path,
            &s,
            &format!("csrf={csrf}&note=c%C3%A0i+l%E1%BA%A1i")
        )
        .0,
        303
    );
    let st = Store::open_read_only(&db).unwrap();
    let h = st.host(C2_HOST.parse().unwrap()).unwrap().unwrap();
    assert_eq!(h.status.as_str(), "cleaned");
    let ev = st.host_events(C2_HOST.parse().unwrap()).unwrap();
    assert_eq!(
        (ev[0].1.as_str(), ev[0].2.as_str(), ev[0].3.as_str()),
        ("cleaned", "officer", "cài lại")
    );
    let (_, _, page) = req(a, "GET", &format!("/host/{C2_HOST}"), &s, "");
    assert!(
        page.contains("Đã xử lý") && page.contains("officer"),
        "{page}"
    );
}

#[test]
fn viewers_cannot_change_and_wrong_passwords_are_throttled() {
    let (_d, db, _) = store();
    let c = start(&db);
    let a = c.1;
    let (_, s) = login(a, "viewer", PW);
    let (_, _, page) = req(a, "GET", &format!("/host/{C2_HOST}"), &s, "");
    assert!(!page.contains("/cleaned"), "no form for a viewer: {page}");
    let (_, _, front) = req(a, "GET", "/", &s, "");
    let csrf = csrf_of(&front);
    let path = format!("/host/{C2_HOST}/cleaned");
    assert_eq!(req(a, "POST", &path, &s, &format!("csrf={csrf}")).0, 403);
    for _ in 0..5 {
        assert_eq!(login(a, "noisy", "sai-mat-khau-roi").0, 401);
    }
    assert_eq!(
        login(a, "noisy", PW).0,
        429,
        "locked out even with the right password"
    );
    assert_eq!(login(a, "officer", PW).0, 303, "other names are not");
}
