//! The central console (`gatewatch serve --central`) on a real PostgreSQL:
//! two provinces whose sensors use the same addresses; a nation account
//! sees both, a province account its province only, a unit officer its
//! unit only; a host is named by sensor and address, so cleaning one does
//! not touch the other province's host with the same address; a hit
//! shipped after a central "cleaned" shows as a reinfection; a disabled
//! account is out at its next page.

use gatewatch::store::central::Central;
use gatewatch::testkit::central::fill_journal;
use gatewatch::testkit::console::{
    ServedConsole, csrf_of, form_value, login, request, serve_central,
};
use gatewatch::testkit::postgres::Postgres;
use gatewatch::testkit::{bin, text};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

const HN: &str = "Hà Nội";
const HUE: &str = "Thừa Thiên Huế";
const HN_PATH: &str = "/p/H%C3%A0%20N%E1%BB%99i";
const HUE_PATH: &str = "/p/Th%E1%BB%ABa%20Thi%C3%AAn%20Hu%E1%BA%BF";
const PW: &str = "mat-khau-du-dai";
/// Of unit U001 in both provinces' journals (`fill_journal`: host h is
/// 10.20.0.h, unit U{h % 40 + 1}).
const HOST: &str = "10.20.0.40";

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn ship(db: &Path, url: &str, province: &str) {
    let o = bin()
        .args(["ship", "--store"])
        .arg(db)
        .args(["--central", url, "--province", province])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn users(url: &str, args: &[&str]) {
    let mut c = bin()
        .args(["users"])
        .args(args)
        .args(["--central", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Only add and passwd read it.
    let _ = writeln!(c.stdin.take().unwrap(), "{PW}");
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "users {args:?}: {}", text(&o));
}

fn add(url: &str, name: &str, role: &str, scope: &[&str]) {
    let mut a = vec!["add", name, "--role", role, "--password-stdin"];
    a.extend_from_slice(scope);
    users(url, &a);
}

struct Session<'a> {
    c: &'a ServedConsole,
    cookie: String,
}

impl Session<'_> {
    fn get(&self, path: &str) -> (u16, String) {
        let r = request(self.c.addr, "GET", path, &self.cookie, "", "");
        let location = r.header("location").unwrap_or("").to_owned();
        (r.status, if r.status == 303 { location } else { r.text() })
    }

    fn post(&self, path: &str, form: &str) -> u16 {
        request(self.c.addr, "POST", path, &self.cookie, "", form).status
    }
}

fn log_in<'a>(c: &'a ServedConsole, name: &str) -> Session<'a> {
    let (status, cookie) = login(c.addr, name, PW);
    assert_eq!(status, 303, "{name} logs in");
    Session { c, cookie }
}

/// Two sensors of two provinces, the same addresses; accounts of the
/// nation, of Hà Nội, of one unit there, and a viewer of Huế.
fn central(dir: &Path) -> (Postgres, String) {
    let pg = Postgres::start(dir);
    let url = pg.url();
    let start = now_ns() - 3_600_000_000_000;
    for (sensor, province) in [("hn-gw1", HN), ("hue-gw1", HUE)] {
        let db = dir.join(format!("{sensor}.db"));
        fill_journal(&db, sensor, 600, 50, start);
        ship(&db, &url, province);
    }
    add(&url, "ncsc", "province-admin", &[]);
    add(&url, "hn-admin", "province-admin", &["--province", HN]);
    add(
        &url,
        "hn-u1",
        "unit-officer",
        &["--province", HN, "--unit", "U001"],
    );
    add(&url, "hue-view", "viewer", &["--province", HUE]);
    (pg, url)
}

#[test]
fn each_account_sees_its_part_of_the_nation_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_pg, url) = central(dir.path());
    let c = serve_central(&url);

    let nation = log_in(&c, "ncsc");
    let (st, page) = nation.get("/");
    assert_eq!(st, 200, "{page}");
    assert!(page.contains(HN) && page.contains(HUE), "{page}");
    assert_eq!(nation.get(HUE_PATH).0, 200);
    assert_eq!(nation.get("/report?format=xlsx").0, 200);

    let hn = log_in(&c, "hn-admin");
    assert_eq!(hn.get("/"), (303, HN_PATH.to_owned()));
    let (st, page) = hn.get(HN_PATH);
    assert_eq!(st, 200);
    assert!(page.contains("U001") && page.contains("U002"), "{page}");
    assert_eq!(hn.get(HUE_PATH).0, 403, "another province");
    assert_eq!(hn.get("/report").0, 403, "the nation's report");
    assert_eq!(hn.get(&format!("{HN_PATH}/report?format=xlsx")).0, 200);
    assert_eq!(hn.get(&format!("/h/hue-gw1/{HOST}")).0, 404, "as if absent");
    assert_eq!(hn.get(&format!("/h/hn-gw1/{HOST}")).0, 200);

    let officer = log_in(&c, "hn-u1");
    let (st, page) = officer.get(HN_PATH);
    assert_eq!(st, 200);
    assert!(page.contains("U001") && !page.contains("U002"), "{page}");
    assert_eq!(officer.get(&format!("{HN_PATH}/u/U002")).0, 403);
    assert_eq!(officer.get(&format!("{HN_PATH}/report")).0, 403);
    assert_eq!(officer.get(&format!("{HN_PATH}/report?unit=U001")).0, 200);
    assert_eq!(
        officer.get("/h/hn-gw1/10.20.0.1").0,
        404,
        "unit U002's host"
    );
    assert_eq!(officer.get("/sensors").0, 403);

    // The unit's list and its CSV agree with the central, host by host.
    let mut db = Central::connect(&url, None).unwrap();
    let want = db.unit_hosts(HN, "U001").unwrap();
    assert!(!want.is_empty());
    let (st, csv) = officer.get(&format!("{HN_PATH}/u/U001/hosts.csv"));
    assert_eq!(st, 200);
    assert_eq!(csv.lines().count(), want.len() + 1, "{csv}");
    for h in &want {
        assert!(csv.contains(&format!("hn-gw1,{},U001", h.host.ip)), "{csv}");
    }
}

#[test]
fn cleaning_centrally_is_per_sensor_and_a_later_hit_reinfects() {
    let dir = tempfile::tempdir().unwrap();
    let (_pg, url) = central(dir.path());
    let c = serve_central(&url);
    let host = format!("/h/hn-gw1/{HOST}");

    let viewer = log_in(&c, "hue-view");
    let (st, page) = viewer.get(&format!("/h/hue-gw1/{HOST}"));
    assert_eq!(st, 200);
    assert!(page.contains("Tài khoản này chỉ được xem"), "{page}");
    // The session's token (the logout form's) does not make a viewer an officer.
    let form = format!("csrf={}&action=cleaned&note=x", csrf_of(&page));
    assert_eq!(viewer.post(&format!("/h/hue-gw1/{HOST}"), &form), 403);

    let officer = log_in(&c, "hn-u1");
    let (st, page) = officer.get(&host);
    assert_eq!(st, 200);
    assert!(page.contains("Đánh dấu đã xử lý"), "{page}");
    assert_eq!(officer.post(&host, "action=cleaned&note=x"), 403, "no CSRF");
    let form = format!(
        "csrf={}&action=cleaned&note={}",
        csrf_of(&page),
        form_value("cài lại Windows")
    );
    assert_eq!(officer.post(&host, &form), 303);

    let mut db = Central::connect(&url, None).unwrap();
    let status = |db: &mut Central, sensor: &str| {
        db.host(sensor, HOST.parse().unwrap())
            .unwrap()
            .unwrap()
            .host
            .status
    };
    assert_eq!(status(&mut db, "hn-gw1"), "cleaned");
    assert_eq!(
        status(&mut db, "hue-gw1"),
        "open",
        "same address, other sensor"
    );
    let (_, page) = officer.get(&host);
    assert!(
        page.contains("console:hn-u1") && page.contains("cài lại Windows"),
        "{page}"
    );
    let (_, audit) = log_in(&c, "hn-admin").get("/audit");
    assert!(audit.contains("hn-gw1/10.20.0.40"), "{audit}");

    // The sensor sees the host again and ships it.
    let hn_db = dir.path().join("hn-gw1.db");
    fill_journal(&hn_db, "hn-gw1", 600, 50, now_ns());
    ship(&hn_db, &url, HN);
    assert_eq!(status(&mut db, "hn-gw1"), "reinfected");
    assert!(officer.get(&host).1.contains("Tái nhiễm"));

    // Disabled: out at the next page.
    users(&url, &["disable", "hn-u1"]);
    assert_eq!(officer.get(&host), (303, "/login".to_owned()));
    assert_eq!(login(c.addr, "hn-u1", PW).0, 401);
}
