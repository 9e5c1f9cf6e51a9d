//! Shipping to a real PostgreSQL (issue 18): three sensors replaying
//! different captures ship their stores while the central is stopped and
//! started again mid-stream; afterwards the central holds exactly what the
//! stores hold, host by host. A batch taken twice changes nothing, and a
//! hit after a central "cleaned" marks the host reinfected there.

use gatewatch::store::Store;
use gatewatch::store::central::Central;
use gatewatch::testkit::console::retime;
use gatewatch::testkit::postgres::Postgres;
use gatewatch::testkit::{bin, root, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// (sensor id, feeds, units, capture)
const SENSORS: [(&str, &str, &str, &str); 3] = [
    (
        "hanoi-gw1",
        "tests/corpus/gateway-small/feeds.toml",
        "tests/corpus/gateway-small/units.csv",
        "tests/corpus/gateway-small/traffic.pcap",
    ),
    (
        "hanoi-gw2",
        "tests/corpus/gateway-unlisted/feeds.toml",
        "tests/corpus/gateway-unlisted/units.csv",
        "tests/corpus/gateway-unlisted/traffic.pcap",
    ),
    (
        "hue-gw1",
        "samples/demo-feeds.toml",
        "feeds/units.csv",
        "samples/gateway-synthetic.pcap",
    ),
];

fn province(sensor: &str) -> &'static str {
    if sensor.starts_with("hanoi") {
        "Hà Nội"
    } else {
        "Thừa Thiên Huế"
    }
}

fn replay(dir: &Path, i: usize, pcap: &Path) -> PathBuf {
    let (sensor, feeds, units, _) = SENSORS[i];
    let db = dir.join(format!("{sensor}.db"));
    let o = bin()
        .current_dir(root())
        .args([
            "replay",
            "--sensor-id",
            sensor,
            "--feeds",
            feeds,
            "--units",
            units,
        ])
        .arg("--alerts")
        .arg(dir.join(format!(
            "{sensor}-{}.jsonl",
            pcap.display().to_string().len()
        )))
        .arg("--store")
        .arg(&db)
        .arg(pcap)
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 3),
        "{}",
        text(&o)
    );
    db
}

fn ship(db: &Path, sensor: &str, url: &str, extra: &[&str]) -> Child {
    bin()
        .args(["ship", "--store"])
        .arg(db)
        .args(["--central", url, "--province", province(sensor)])
        .args(extra)
        .env("GATEWATCH_SHIP_BATCH", "40")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Host -> (unit, hits), of a store and of the central for one sensor.
type Hosts = BTreeMap<String, (String, i64)>;

fn local(db: &Path) -> Hosts {
    let s = Store::open_read_only(db).unwrap();
    s.hosts(None)
        .unwrap()
        .into_iter()
        .map(|h| (h.ip.to_string(), (h.unit, h.hits as i64)))
        .collect()
}

fn central(c: &mut Central, sensor: &str) -> Hosts {
    c.hosts(None)
        .unwrap()
        .into_iter()
        .filter(|h| h.sensor == sensor)
        .map(|h| (h.ip, (h.unit, h.hits)))
        .collect()
}

#[test]
fn three_sensors_ship_through_a_central_restart_and_add_up_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path());
    let url = pg.url();
    let dbs: Vec<PathBuf> = (0..3)
        .map(|i| replay(dir.path(), i, &root().join(SENSORS[i].3)))
        .collect();
    // Part of each store first, all three at once (their first contact
    // creates the schema together); then all three again in small batches,
    // the central stopping under them; then a pass while it is down.
    let first: Vec<Child> = (0..3)
        .map(|i| ship(&dbs[i], SENSORS[i].0, &url, &["--max-rows", "40"]))
        .collect();
    for (i, c) in first.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        // The other captures have fewer rows than that.
        assert!(i > 0 || out.contains("shipped 40 row(s)"), "{out}");
    }
    let children: Vec<Child> = (0..3)
        .map(|i| ship(&dbs[i], SENSORS[i].0, &url, &[]))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(150));
    pg.stop();
    for c in children {
        let _ = c.wait_with_output();
    }
    let down = ship(&dbs[0], SENSORS[0].0, &url, &[])
        .wait_with_output()
        .unwrap();
    assert!(!down.status.success(), "the central is down");
    pg.up();
    for (i, db) in dbs.iter().enumerate() {
        let o = ship(db, SENSORS[i].0, &url, &[])
            .wait_with_output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("0 row(s) left"));
    }
    let mut c = Central::connect(&url, None).unwrap();
    for (i, db) in dbs.iter().enumerate() {
        let want = local(db);
        assert!(!want.is_empty(), "{} found nothing", SENSORS[i].0);
        assert_eq!(central(&mut c, SENSORS[i].0), want, "{}", SENSORS[i].0);
    }
    // Taking the same rows again changes nothing.
    let s = Store::open_read_only(&dbs[0]).unwrap();
    let rows = s.journal_after(0, 100).unwrap();
    let before = central(&mut c, SENSORS[0].0);
    c.take(province(SENSORS[0].0), &rows).unwrap();
    assert_eq!(central(&mut c, SENSORS[0].0), before);
    // The province figures add up the sensors of the province.
    let figures = c.unit_figures(0, i64::MAX / 2, Some("Hà Nội")).unwrap();
    let detected: u64 = figures.iter().map(|(_, u)| u.detected).sum();
    assert_eq!(
        detected as usize,
        local(&dbs[0]).len() + local(&dbs[1]).len()
    );
}

#[test]
fn a_hit_after_a_central_cleaned_is_a_reinfection_there() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(dir.path());
    let url = pg.url();
    let db = replay(dir.path(), 0, &root().join(SENSORS[0].3));
    let o = ship(&db, SENSORS[0].0, &url, &[])
        .wait_with_output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut c = Central::connect(&url, None).unwrap();
    let hosts = c.hosts(None).unwrap();
    let h = &hosts[0];
    let ip = h.ip.parse().unwrap();
    c.set_status(
        &h.sensor,
        ip,
        gatewatch::store::Status::Cleaned,
        "ncsc",
        "cài lại",
    )
    .unwrap();
    assert_eq!(c.hosts(None).unwrap()[0].status, "cleaned");
    // The same capture again, an hour from now: the host hits again.
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let again = dir.path().join("again.pcap");
    retime(&root().join(SENSORS[0].3), &again, later, 600);
    replay(dir.path(), 0, &again);
    // A row that is no alert is left out (and logged), not a stall.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO journal (sensor, kind, at, json) VALUES ('x', 'hit', 1, 'not json')",
            [],
        )
        .unwrap();
    let o = ship(&db, SENSORS[0].0, &url, &[])
        .wait_with_output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let now = c.hosts(None).unwrap();
    let h2 = now.iter().find(|x| x.ip == h.ip).unwrap();
    assert_eq!(h2.status, "reinfected");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("left out"),
        "logged"
    );
    let others_cleaned = now.iter().filter(|x| x.status == "cleaned").count();
    assert_eq!(others_cleaned, 0, "only the marked host had a status");
}
