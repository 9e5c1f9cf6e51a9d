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
            let ts = start_ns + i as i64 * 1_000_000;
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
