//! The read-only JSON API served next to `/metrics` (same localhost
//! listener): `GET /api/units`, `GET /api/offenders?unit=CODE&status=open`,
//! `GET /api/hosts/{ip}` (with its status events and the names the address
//! went by, latest first). Each request opens the store read-only (WAL: it
//! never blocks the sensor's writer); every value reaches SQL as a bound
//! parameter.
//!
//! A request made with an account's token sees that account's units only:
//! other units are left out of lists, asking for one by code is 403, and
//! another unit's host is 404, as if it were not there.

use crate::store::accounts::Account;
use crate::store::{Status, Store, StoreError};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::Path;

/// Answer one API request for `who` (`None`: the operator, every unit):
/// (HTTP status, JSON body).
pub fn handle(
    store: Option<&Path>,
    method: &str,
    url: &str,
    who: Option<&Account>,
) -> (u16, String) {
    let (code, v) = route(store, method, url, who);
    (code, v.to_string())
}

/// Whether `who` sees unit `code`.
fn sees(who: Option<&Account>, code: &str) -> bool {
    who.is_none_or(|a| a.sees(code))
}

fn error(code: u16, msg: impl Into<String>) -> (u16, Value) {
    (code, json!({ "error": msg.into() }))
}

fn route(store: Option<&Path>, method: &str, url: &str, who: Option<&Account>) -> (u16, Value) {
    if method != "GET" {
        return error(405, "read-only API: only GET");
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let params = match parse_query(query) {
        Ok(p) => p,
        Err(e) => return error(400, e),
    };
    let Some(store) = store else {
        return error(
            503,
            "no offender store configured (store = \"\" in the config)",
        );
    };
    let s = match Store::open_read_only_unchecked(store) {
        Ok(s) => s,
        Err(e) => return error(503, e.to_string()),
    };
    let result = match path {
        "/api/units" => units(&s, &params, who),
        "/api/offenders" => offenders(&s, &params, who),
        p if p.starts_with("/api/hosts/") => host(&s, &p["/api/hosts/".len()..], who),
        _ => {
            return error(
                404,
                "unknown API path: try /api/units, /api/offenders, /api/hosts/{ip}",
            );
        }
    };
    result.unwrap_or_else(|e| error(500, e.to_string()))
}

type Params = Vec<(String, String)>;

fn units(s: &Store, params: &Params, who: Option<&Account>) -> Result<(u16, Value), StoreError> {
    if let Some((k, _)) = params.first() {
        return Ok(error(400, format!("unknown parameter {k:?}")));
    }
    let mut units = s.units()?;
    units.retain(|u| sees(who, &u.code));
    Ok((200, json!(units)))
}

fn offenders(
    s: &Store,
    params: &Params,
    who: Option<&Account>,
) -> Result<(u16, Value), StoreError> {
    let (mut unit, mut status) = (None, None);
    for (k, v) in params {
        match k.as_str() {
            "unit" => {
                if !sees(who, v) {
                    return Ok(error(
                        403,
                        format!("unit {v:?} is not one of this account's"),
                    ));
                }
                if !s.has_unit(v)? {
                    return Ok(error(400, format!("unknown unit {v:?}")));
                }
                unit = Some(v.as_str());
            }
            "status" => match Status::parse(v) {
                Some(st) => status = Some(st),
                None => {
                    return Ok(error(
                        400,
                        format!("bad status {v:?}: open, cleaned or reinfected"),
                    ));
                }
            },
            _ => return Ok(error(400, format!("unknown parameter {k:?}: unit, status"))),
        }
    }
    let mut list = s.offenders(unit, None, status)?;
    list.retain(|o| sees(who, &o.unit));
    Ok((200, json!(list)))
}

fn host(s: &Store, raw: &str, who: Option<&Account>) -> Result<(u16, Value), StoreError> {
    let text = match percent_decode(raw) {
        Ok(t) => t,
        Err(e) => return Ok(error(400, e)),
    };
    let Ok(ip) = text.parse::<IpAddr>() else {
        return Ok(error(400, format!("not an IP address: {text:?}")));
    };
    let Some(detail) = s.offender(ip)?.filter(|d| sees(who, &d.unit)) else {
        return Ok(error(404, format!("{ip} is not an offender host")));
    };
    let events: Vec<Value> = s
        .host_events(ip)?
        .into_iter()
        .map(|(at, status, actor, note)| {
            json!({ "at_ns": at, "status": status, "by": actor, "note": note })
        })
        .collect();
    let mut v = json!(detail);
    v["events"] = Value::Array(events);
    v["names"] = json!(s.host_names(ip)?);
    Ok((200, v))
}

fn parse_query(q: &str) -> Result<Params, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// `%XX` and `+` decoding of one query component; bad escapes and
/// non-UTF-8 results are refused (HTTP 400), not guessed at.
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad %-escape in {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("unit=S%E1%BB%9F&status=open").unwrap(),
            vec![
                ("unit".into(), "Sở".into()),
                ("status".into(), "open".into())
            ]
        );
        assert!(parse_query("unit=%zz").is_err());
        assert!(parse_query("unit=%ff").is_err());
        assert_eq!(percent_decode("a+b").unwrap(), "a b");
    }

    #[test]
    fn host_view_lists_names_latest_first() {
        use crate::protocols::hostnames::NameSource;
        use crate::store::writer::{NameRecord, StoreRecord, StoreWriter};
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("g.db");
        let w = StoreWriter::start(Store::open(&db).unwrap(), 16, None);
        let ip: IpAddr = "10.20.1.13".parse().unwrap();
        let name = |n: &str, ts_ns| NameRecord {
            ts_ns,
            ip,
            name: n.into(),
            mac: None,
            source: NameSource::Netbios,
        };
        w.put_name(name("PC-OLD", 1));
        w.put(StoreRecord {
            ts_ns: 2,
            host: ip,
            unit: "U1".into(),
            unit_name: "Unit".into(),
            value: "evil.example".into(),
            kind: "domain",
            feed: "f".into(),
            category: "c2".into(),
            severity: "high",
            json: "{}".into(),
        });
        w.put_name(name("PC-NEW", 3));
        w.finish();
        let (code, v) = route(Some(&db), "GET", "/api/hosts/10.20.1.13", None);
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["hostname"], "PC-NEW");
        let names = v["names"].as_array().unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names[0]["name"], "PC-NEW");
        assert_eq!(names[0]["source"], "netbios");
        assert_eq!(names[1]["name"], "PC-OLD");
        assert_eq!(names[1]["last_seen_ns"], 1);
    }

    #[test]
    fn errors_without_a_store() {
        assert_eq!(route(None, "GET", "/api/units", None).0, 503);
        assert_eq!(route(None, "POST", "/api/units", None).0, 405);
        let d = tempfile::tempdir().unwrap();
        let (code, v) = route(Some(&d.path().join("none.db")), "GET", "/api/units", None);
        assert_eq!(code, 503);
        assert!(v["error"].as_str().unwrap().contains("none.db"), "{v}");
    }
}
