//! The central console (`gatewatch serve --central`) on a real PostgreSQL:
//! two provinces whose sensors use the same addresses; a nation account
//! sees both, a province account its province only, a unit officer its
//! unit only; a host is named by sensor and address, so cleaning one does
//! not touch the other province's host with the same address; a hit
//! shipped after a central "cleaned" shows as a reinfection; a disabled
//! account is out at its next page.

use gatewatch::store::central::Central;
use gatewatch::testkit::central::{
    HN, HN_PATH, HOST, HUE, HUE_PATH, fill_journal, ship, two_provinces, users,
};
use gatewatch::testkit::console::{
    ServedConsole, csrf_of, form_value, login, request, serve_central,
};

const PW: &str = "mat-khau-du-dai";

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
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

#[test]
fn each_account_sees_its_part_of_the_nation_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_pg, url) = two_provinces(dir.path(), PW);
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
    let (_pg, url) = two_provinces(dir.path(), PW);
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
    let admin = log_in(&c, "hn-admin");
    let (_, audit) = admin.get("/audit");
    assert!(audit.contains("hn-gw1/10.20.0.40"), "{audit}");
    // The per-day chart counts the cleaning in its province only.
    assert!(admin.get(HN_PATH).1.contains(": 1 Đã xử lý"));
    let (_, hue) = viewer.get(HUE_PATH);
    assert!(
        hue.contains("Đã xử lý") && !hue.contains(": 1 Đã xử lý"),
        "{hue}"
    );

    // The sensor sees the host again and ships it.
    let hn_db = dir.path().join("hn-gw1.db");
    fill_journal(&hn_db, "hn-gw1", 600, 50, now_ns());
    ship(&hn_db, &url, HN);
    assert_eq!(status(&mut db, "hn-gw1"), "reinfected");
    assert!(officer.get(&host).1.contains("Tái nhiễm"));

    // Disabled: out at the next page.
    users(&url, PW, &["disable", "hn-u1"]);
    assert_eq!(officer.get(&host), (303, "/login".to_owned()));
    assert_eq!(login(c.addr, "hn-u1", PW).0, 401);
}
