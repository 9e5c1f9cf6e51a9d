//! Journals for the central view's load test: synthetic hits shaped like
//! the sensor's EVE alerts, appended straight to a store's alerts and
//! journal.

use crate::store::Store;
use rusqlite::params;
use std::path::Path;

/// Append `rows` hit rows of `sensor` to the journal of the store at `db`
/// (created if needed), spread over `hosts` internal hosts and 5,000
/// indicators, timestamps from `start_ns` a millisecond apart; returns the
/// journal's head.
pub fn fill_journal(db: &Path, sensor: &str, rows: usize, hosts: u32, start_ns: i64) -> i64 {
    fill_journal_every(db, sensor, rows, hosts, start_ns, 1_000_000)
}

/// [`fill_journal`] with the hits `step_ns` apart (spread over days for
/// the central's read benchmark).
pub fn fill_journal_every(
    db: &Path,
    sensor: &str,
    rows: usize,
    hosts: u32,
    start_ns: i64,
    step_ns: i64,
) -> i64 {
    let mut s = Store::open(db).expect("open the store");
    s.claim_sensor(sensor).expect("claim the store");
    let tx = s.conn_mut().transaction().expect("a transaction");
    {
        let mut alert = tx
            .prepare_cached("INSERT INTO alerts (ts, ip, indicator, json) VALUES (?1, ?2, 0, ?3)")
            .expect("prepare");
        let mut st = tx
            .prepare_cached(crate::store::journal::JOURNAL_HIT)
            .expect("prepare");
        for i in 0..rows {
            let h = (i as u32).wrapping_mul(2_654_435_761) % hosts.max(1);
            let ts = start_ns + i as i64 * step_ns;
            let ip = format!("10.{}.{}.{}", 20 + h / 65_536 % 200, h / 256 % 256, h % 256);
            let unit = format!("U{:03}", h % 40 + 1);
            let json = serde_json::json!({
                "timestamp": ts, "event_type": "alert", "host": sensor,
                "src_ip": ip, "src_port": 49_152 + (i % 16_000), "dest_ip": "203.0.113.7",
                "dest_port": 443, "proto": "TCP", "app_proto": "tls",
                "alert": {"action": "allowed", "gid": 1, "signature_id": 0, "rev": 0,
                          "signature": "gatewatch malware domain", "category": "malware",
                          "severity": 2},
                "tls": {"sni": format!("c2-{}.example", i % 5_000)},
                "sensor_id": sensor, "host_ip": ip, "hostname": format!("PC-{h}"),
                "unit": unit, "unit_name": format!("Đơn vị {unit}"), "direction": "outbound",
                "indicator": format!("c2-{}.example", i % 5_000), "indicator_kind": "domain",
                "observed": format!("c2-{}.example", i % 5_000), "observed_in": "tls.sni",
                "feed": "load-test", "category": "malware", "severity": "high",
            });
            let json = json.to_string();
            let id = alert.insert(params![ts, ip, json]).expect("insert");
            st.execute(params![ts, json, id]).expect("insert");
        }
    }
    tx.commit().expect("commit");
    s.journal_head().expect("head")
}

/// The central console's two provinces (their sensors use the same
/// addresses: both journals come from [`fill_journal`] with 50 hosts).
pub const HN: &str = "Hà Nội";
pub const HUE: &str = "Thừa Thiên Huế";
/// `/p/{HN}` and `/p/{HUE}` as links carry them.
pub const HN_PATH: &str = "/p/H%C3%A0%20N%E1%BB%99i";
pub const HUE_PATH: &str = "/p/Th%E1%BB%ABa%20Thi%C3%AAn%20Hu%E1%BA%BF";
/// Of unit U001 in both provinces (host h is 10.20.0.h, unit U{h % 40 + 1}).
pub const HOST: &str = "10.20.0.40";

/// `gatewatch ship` of the store `db` to `url` as `province`.
pub fn ship(db: &Path, url: &str, province: &str) {
    let o = super::bin()
        .args(["ship", "--store"])
        .arg(db)
        .args(["--central", url, "--province", province])
        .output()
        .expect("run gatewatch ship");
    assert!(o.status.success(), "{}", super::text(&o));
}

/// `gatewatch users ARGS --central URL`, the password `pw` on stdin.
pub fn users(url: &str, pw: &str, args: &[&str]) {
    use std::io::Write;
    use std::process::Stdio;
    let mut c = super::bin()
        .args(["users"])
        .args(args)
        .args(["--central", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gatewatch users");
    // Only add and passwd read it.
    let _ = writeln!(c.stdin.take().expect("stdin"), "{pw}");
    let o = c.wait_with_output().expect("gatewatch users");
    assert!(o.status.success(), "users {args:?}: {}", super::text(&o));
}

/// A central PostgreSQL in `dir` with two sensors of two provinces
/// (`hn-gw1` of [`HN`], `hue-gw1` of [`HUE`]), 600 hits each in the last
/// hour, and accounts with password `pw`: `ncsc` (the nation), `hn-admin`
/// (province admin of HN), `hn-u1` (unit officer of HN's U001) and
/// `hue-view` (viewer of HUE). Returns the server and its URL.
pub fn two_provinces(dir: &Path, pw: &str) -> (super::postgres::Postgres, String) {
    let pg = super::postgres::Postgres::start(dir);
    let url = pg.url();
    let start = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - 3_600_000_000_000;
    for (sensor, province) in [("hn-gw1", HN), ("hue-gw1", HUE)] {
        let db = dir.join(format!("{sensor}.db"));
        fill_journal(&db, sensor, 600, 50, start);
        ship(&db, &url, province);
    }
    let add = |name: &str, role: &str, scope: &[&str]| {
        let mut a = vec!["add", name, "--role", role, "--password-stdin"];
        a.extend_from_slice(scope);
        users(&url, pw, &a);
    };
    add("ncsc", "province-admin", &[]);
    add("hn-admin", "province-admin", &["--province", HN]);
    add(
        "hn-u1",
        "unit-officer",
        &["--province", HN, "--unit", "U001"],
    );
    add("hue-view", "viewer", &["--province", HUE]);
    (pg, url)
}
