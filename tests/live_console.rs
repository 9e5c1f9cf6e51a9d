//! `gatewatch run` with `[console]`: the sensor serves the web console and
//! its API over the store it writes, and reports its status (capture,
//! feeds) there for the console's pages.
//!
//! Runs in its own network namespace like `tests/live.rs` (root, iproute2,
//! tcpreplay, curl); fails, never skips, where they are missing.

use gatewatch::store::Store;
use gatewatch::store::accounts::Role;
use gatewatch::testkit::live::*;
use gatewatch::testkit::root;
use serde_json::Value;

const CONSOLE: &str = "127.0.0.1:19483";

#[test]
fn the_sensor_serves_the_console_over_the_store_it_writes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let small = root().join("tests/corpus/gateway-small");
    let db = dir.path().join("g.db");
    let token = {
        let mut s = Store::open(&db).unwrap();
        s.add_account("tinh", Role::ProvinceAdmin, &[], "mật-khẩu-dài-đủ", "t", 1)
            .unwrap();
        s.new_token("tinh", "t", 1).unwrap()
    };
    let conf = dir.path().join("gatewatch.toml");
    std::fs::write(&conf, format!("[console]\nlisten = \"{CONSOLE}\"\n")).unwrap();
    let ns = capture_ns();
    let extra = [
        "--workers",
        "2",
        "--config",
        conf.to_str().unwrap(),
        "--store",
        db.to_str().unwrap(),
    ];
    let feeds = small.join("feeds.toml");
    let units = small.join("units.csv");
    let s = Sensor::spawn_with(&ns, dir.path(), 19482, (&feeds, &units), &[RX], &extra);
    let mut s = s.healthy(&ns);
    let (code, page) = ns.http_get(&format!("http://{CONSOLE}/login")).unwrap();
    assert!(code == 200 && page.contains("Đăng nhập"), "{code} {page}");
    let sent = tcpreplay_all(&ns, dir.path(), &[SMALL_PCAP]);
    wait_processed(&ns, &s, sent);
    let api = |path: &str, auth: bool| {
        let mut c = ns.cmd("curl");
        c.args(["-s", "-m", "5", "-w", "\n%{http_code}"]);
        if auth {
            c.arg("-H").arg(format!("Authorization: Bearer {token}"));
        }
        let o = c.arg(format!("http://{CONSOLE}{path}")).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse::<u16>().unwrap_or(0), body.to_owned())
    };
    assert_eq!(api("/api/offenders", false).0, 401);
    gatewatch::testkit::wait_for(
        "the store to list offenders",
        std::time::Duration::from_secs(20),
        || {
            let (code, body) = api("/api/offenders", true);
            let n = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.as_array().map(Vec::len))
                .unwrap_or(0);
            if code == 200 && n > 0 {
                Ok(())
            } else {
                Err(format!("{code} {body}"))
            }
        },
    );
    let (st, _) = s.terminate();
    assert!(st.success(), "{st}{}", s.logs());
    let status = Store::open_read_only(&db)
        .unwrap()
        .sensor_statuses()
        .unwrap();
    let status = status[0].as_ref().unwrap();
    assert_eq!(status.mode, "live");
    let cap = status.captures.iter().find(|c| c.interface == RX);
    assert!(cap.is_some_and(|c| c.packets >= sent), "{status:?}");
    assert!(
        status
            .feeds
            .iter()
            .any(|f| f.name == "gen-domains" && f.last_load_s.is_some())
    );
}
