//! The read-only JSON API over a store filled by a replay, through the same
//! HTTP listener that serves /metrics.

use gatewatch::metrics::{Api, Metrics, serve};
use gatewatch::store::Store;
use gatewatch::testkit::{demo_store, http_request};
use serde_json::Value;
use std::net::SocketAddr;

/// Status and JSON body (`Null` where the body is not JSON).
fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let r = http_request(addr, method, path);
    let code = r[9..12].parse().unwrap();
    let body = r.split_once("\r\n\r\n").unwrap().1;
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn api_answers_from_the_store() {
    let d = tempfile::tempdir().unwrap();
    let db = demo_store(d.path());
    let (addr, _h) = serve(
        "127.0.0.1:0".parse().unwrap(),
        Metrics::new(),
        Api {
            store: Some(db.clone()),
            token: None,
        },
    )
    .unwrap();
    let s = Store::open_read_only(&db).unwrap();

    let (code, units) = get(addr, "GET", "/api/units");
    assert_eq!(code, 200);
    let units = units.as_array().unwrap();
    assert_eq!(units.len(), s.units().unwrap().len());
    let so = units.iter().find(|u| u["code"] == "SO-TTTT").unwrap();
    assert_eq!(so["name"], "Sở Thông tin và Truyền thông");
    assert_eq!(so["hosts"], 1);

    let (code, list) = get(addr, "GET", "/api/offenders?unit=SO-TTTT&status=open");
    assert_eq!(code, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["ip"], "192.168.46.2");
    assert_eq!(list[0]["top_indicators"][0][0], "91.254.215.167");
    let (_, all) = get(addr, "GET", "/api/offenders");
    assert_eq!(
        all.as_array().unwrap().len(),
        s.offenders(None, None, None).unwrap().len()
    );

    let (code, h) = get(addr, "GET", "/api/hosts/192.168.46.2");
    assert_eq!(code, 200);
    assert_eq!(h["unit"], "SO-TTTT");
    assert_eq!(h["status"], "open");
    assert!(h["events"].as_array().unwrap().is_empty());

    // Clear refusals, never SQL errors.
    for (path, want) in [
        ("/api/offenders?unit=NOPE", 400),
        ("/api/offenders?unit=%27%20OR%201%3D1%20--", 400),
        ("/api/offenders?status=gone", 400),
        ("/api/offenders?color=red", 400),
        ("/api/hosts/not-an-ip", 400),
        ("/api/hosts/203.0.113.200", 404),
        ("/api/nothing", 404),
    ] {
        let (code, v) = get(addr, "GET", path);
        assert_eq!(code, want, "{path}: {v}");
        assert!(v["error"].is_string(), "{path}: {v}");
    }
    assert_eq!(get(addr, "POST", "/api/units").0, 405);
}
