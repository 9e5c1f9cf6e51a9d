//! The JSON API with console accounts (issue 17): once an account exists,
//! every request needs a token; an account's token sees its units only
//! (others left out of lists, 403 by code, 404 for their hosts); a disabled
//! account's token and a wrong one get 401; the configured operator token
//! still sees everything.

use gatewatch::metrics::{Api, Metrics, serve};
use gatewatch::store::Store;
use gatewatch::store::accounts::Role;
use gatewatch::testkit::{demo_store, http_request_with};
use serde_json::Value;
use std::net::SocketAddr;

fn call(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, Value) {
    let h = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let r = http_request_with(addr, "GET", path, &h);
    let code = r[9..12].parse().unwrap();
    let body = r.split_once("\r\n\r\n").unwrap().1;
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn ips(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| o["ip"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn account_tokens_see_their_units_only() {
    let d = tempfile::tempdir().unwrap();
    let db = demo_store(d.path());
    let mut s = Store::open(&db).unwrap();
    let pw = "mật-khẩu-dài-đủ";
    let so = ["SO-TTTT".to_string()];
    s.add_account("so.officer", Role::UnitOfficer, &so, pw, "test", 1)
        .unwrap();
    s.add_account("admin", Role::ProvinceAdmin, &[], pw, "test", 1)
        .unwrap();
    s.add_account("gone", Role::Viewer, &[], pw, "test", 1)
        .unwrap();
    let officer = s.new_token("so.officer", "test", 2).unwrap();
    let admin = s.new_token("admin", "test", 2).unwrap();
    let gone = s.new_token("gone", "test", 2).unwrap();
    s.disable_account("gone", "test", 3).unwrap();
    let all = s.offenders(None, None, None).unwrap();
    let other = all
        .iter()
        .find(|o| o.unit != "SO-TTTT")
        .expect("another unit's host");
    drop(s);
    let api = Api {
        store: Some(db.clone()),
        token: Some("operator-token-0123456789".into()),
    };
    let (addr, _h) = serve("127.0.0.1:0".parse().unwrap(), Metrics::new(), api).unwrap();

    for t in [None, Some("wrong"), Some(gone.as_str())] {
        assert_eq!(call(addr, "/api/units", t).0, 401, "{t:?}");
    }
    let (code, units) = call(addr, "/api/units", Some(&officer));
    assert_eq!(code, 200);
    let codes: Vec<&str> = units
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["SO-TTTT"]);
    let (code, list) = call(addr, "/api/offenders", Some(&officer));
    assert_eq!((code, ips(&list)), (200, vec!["192.168.46.2".to_string()]));
    let by_code = format!("/api/offenders?unit={}", other.unit);
    assert_eq!(call(addr, &by_code, Some(&officer)).0, 403);
    let host = format!("/api/hosts/{}", other.ip);
    assert_eq!(call(addr, &host, Some(&officer)).0, 404);
    assert_eq!(call(addr, "/api/hosts/192.168.46.2", Some(&officer)).0, 200);
    assert_eq!(call(addr, "/api/reload", Some(&officer)).0, 403);

    for t in [admin.as_str(), "operator-token-0123456789"] {
        let (code, list) = call(addr, "/api/offenders", Some(t));
        assert_eq!((code, ips(&list).len()), (200, all.len()));
        assert_eq!(call(addr, &host, Some(t)).0, 200);
    }
}

#[test]
fn without_a_configured_token_accounts_still_close_the_api() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("g.db");
    let mut s = Store::open(&db).unwrap();
    let api = || Api {
        store: Some(db.clone()),
        token: None,
    };
    let (addr, _h) = serve("127.0.0.1:0".parse().unwrap(), Metrics::new(), api()).unwrap();
    assert_eq!(
        call(addr, "/api/units", None).0,
        200,
        "no accounts: this host may ask"
    );
    s.add_account("v", Role::Viewer, &[], "mật-khẩu-dài-đủ", "test", 1)
        .unwrap();
    let t = s.new_token("v", "test", 2).unwrap();
    assert_eq!(
        call(addr, "/api/units", None).0,
        401,
        "accounts: a token is needed"
    );
    assert_eq!(call(addr, "/api/units", Some(&t)).0, 200);
}
