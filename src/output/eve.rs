//! Alerts and observations as Suricata-EVE-compatible JSON lines.
//!
//! EVE field names are used wherever EVE has one (`timestamp`, `event_type`,
//! `src_ip`, `src_port`, `dest_ip`, `dest_port`, `proto`, `app_proto`,
//! `alert.*`, `dns.*`, `tls.sni`, `http.*`), so a SIEM pipeline that reads EVE
//! takes gatewatch alerts as they are. gatewatch's own facts (host, unit,
//! indicator, feed) sit beside them at the top level.

use crate::detect::{Context, FlowRecord, Hit, HitSource, Observation};
use crate::packet::FlowKey;
use crate::protocols::dns;
use crate::protocols::name::NameBuf;
use crate::tcp::flow::{TO_CLIENT, TO_SERVER};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// EVE timestamp: `2022-11-24T10:16:15.849397+0000`.
pub fn eve_time(ts_ns: i64) -> String {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000) as u32;
    match chrono::DateTime::from_timestamp(secs, nanos) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string(),
        None => "1970-01-01T00:00:00.000000+0000".into(),
    }
}

/// Parse an EVE timestamp back to nanoseconds.
pub fn parse_eve_time(s: &str) -> Option<i64> {
    let t = chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok()?;
    t.timestamp_nanos_opt()
}

pub fn proto_name(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        1 => "ICMP".into(),
        58 => "IPv6-ICMP".into(),
        n => n.to_string(),
    }
}

#[derive(Serialize)]
struct EveAlertBody<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: String,
    category: &'a str,
    severity: u8,
}

#[derive(Serialize)]
struct EveDns<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u16,
    rrname: &'a str,
    rrtype: &'a str,
}

#[derive(Serialize)]
struct EveTls<'a> {
    sni: &'a str,
}

#[derive(Serialize)]
struct EveHttp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    url: &'a str,
    http_method: &'a str,
}

#[derive(Serialize)]
struct EveAlert<'a> {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    event_type: &'static str,
    /// EVE's `host` is the sensor's name.
    host: &'a str,
    src_ip: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    dest_port: u16,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<[u16; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    alert: EveAlertBody<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<EveDns<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<EveTls<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<EveHttp<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quic: Option<EveTls<'a>>,
    sensor_id: &'a str,
    host_ip: IpAddr,
    /// The machine's name as last announced (DHCP, NetBIOS, mDNS).
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    unit: &'a str,
    unit_name: &'a str,
    direction: &'static str,
    indicator: &'a str,
    indicator_kind: &'static str,
    observed: &'a str,
    observed_in: &'static str,
    feed: &'a str,
    category: &'a str,
    severity: &'static str,
    /// The feed's reference for the indicator (STIX id, MISP event...).
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// `dns` for a hit on an address the host got in an answer for a listed
    /// domain (the address itself is on no list).
    #[serde(skip_serializing_if = "Option::is_none")]
    correlated_from: Option<&'static str>,
    /// The querier is an internal resolver (the real client is behind it),
    /// or the correlated address came from a resolver's lookup.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    via_resolver: bool,
    /// The heuristic that found it (`scan`, `dga`, `sinkhole_answer`,
    /// `dns_tunnel`, `beacon`), with what made it fire.
    #[serde(skip_serializing_if = "Option::is_none")]
    heuristic: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<&'a serde_json::Value>,
    /// `false` for a suspicion that does not make the host an offender.
    #[serde(skip_serializing_if = "is_true")]
    offender: bool,
    /// Found by the retro-hunt in the history, at the time of the contact:
    /// the indicator was not known then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    retro: bool,
}

pub(crate) fn is_true(b: &bool) -> bool {
    *b
}

/// A `hygiene` event: a host's first sign of cracked software or of
/// antivirus updates that day, with the server it talked to, the name and
/// vendor for the domain signals, and the basis of the estimate.
#[derive(Serialize)]
struct EveHygiene<'a> {
    timestamp: String,
    event_type: &'static str,
    host: &'a str,
    sensor_id: &'a str,
    signal: &'static str,
    host_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    unit: &'a str,
    unit_name: &'a str,
    dest_ip: IpAddr,
    dest_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor: Option<&'a str>,
    /// An estimate, not an infection: what the signal suggests and why.
    basis: &'static str,
}

/// One hygiene event as a JSON line (no trailing newline).
pub fn hygiene_json(e: &crate::detect::hygiene::HygieneEvent, sensor_id: &str) -> String {
    let ev = EveHygiene {
        timestamp: eve_time(e.ts_ns),
        event_type: "hygiene",
        host: sensor_id,
        sensor_id,
        signal: e.signal.as_str(),
        host_ip: e.host,
        hostname: e.host_name.as_deref(),
        unit: &e.unit.code,
        unit_name: &e.unit.name,
        dest_ip: e.server,
        dest_port: e.port,
        domain: e.domain.as_deref(),
        vendor: e.vendor.as_deref(),
        basis: e.signal.basis(),
    };
    serde_json::to_string(&ev).unwrap_or_default()
}

/// One alert as a JSON line (no trailing newline).
pub fn alert_json(hit: &Hit, sensor_id: &str) -> String {
    let ind = &hit.indicator;
    let app = EveApp::of(&hit.context);
    let ev = EveAlert {
        timestamp: eve_time(hit.ts_ns),
        flow_id: hit.flow_id,
        event_type: "alert",
        host: sensor_id,
        src_ip: hit.flow.src,
        src_port: hit.flow.src_port,
        dest_ip: hit.flow.dst,
        dest_port: hit.flow.dst_port,
        proto: proto_name(hit.flow.proto),
        vlan: hit.vlan.map(|v| [v]),
        app_proto: app.app_proto,
        alert: alert_body(hit),
        dns: app.dns,
        tls: app.tls,
        http: app.http,
        quic: app.quic,
        sensor_id,
        host_ip: hit.host,
        hostname: hit.host_name.as_deref(),
        unit: &hit.unit.code,
        unit_name: &hit.unit.name,
        direction: if hit.outbound { "outbound" } else { "inbound" },
        indicator: &ind.value,
        indicator_kind: ind.kind.as_str(),
        observed: &hit.observed,
        observed_in: observed_in(hit.source),
        feed: &ind.feed.name,
        category: &ind.feed.category,
        severity: ind.feed.severity.as_str(),
        reference: ind.reference.as_deref(),
        description: ind.description.as_deref(),
        correlated_from: (hit.source == HitSource::DnsLink).then_some("dns"),
        via_resolver: hit.via_resolver,
        heuristic: hit.heuristic(),
        evidence: hit.behaviour.as_ref().map(|b| &b.evidence),
        offender: hit.offender(),
        retro: hit.retro,
    };
    serde_json::to_string(&ev).unwrap_or_default()
}

/// The application-layer fields of an alert, from the hit's context: at most
/// one of `dns`, `tls`, `http` and `quic` is set.
struct EveApp<'a> {
    app_proto: Option<&'static str>,
    dns: Option<EveDns<'a>>,
    tls: Option<EveTls<'a>>,
    http: Option<EveHttp<'a>>,
    quic: Option<EveTls<'a>>,
}

impl<'a> EveApp<'a> {
    /// The fields `context` fills in; `Context::None` leaves them all out.
    fn of(context: &'a Context) -> EveApp<'a> {
        let mut app = EveApp {
            app_proto: None,
            dns: None,
            tls: None,
            http: None,
            quic: None,
        };
        match context {
            Context::Dns {
                id,
                rrname,
                rrtype,
                response,
            } => {
                app.app_proto = Some("dns");
                app.dns = Some(EveDns {
                    kind: if *response { "answer" } else { "query" },
                    id: *id,
                    rrname,
                    rrtype,
                });
            }
            Context::Tls { sni } => {
                app.app_proto = Some("tls");
                app.tls = Some(EveTls { sni });
            }
            Context::Quic { sni } => {
                app.app_proto = Some("quic");
                app.quic = Some(EveTls { sni });
            }
            Context::Http {
                method,
                hostname,
                url,
            } => {
                app.app_proto = Some("http");
                app.http = Some(EveHttp {
                    hostname: hostname.as_deref(),
                    url,
                    http_method: method,
                });
            }
            Context::None => {}
        }
        app
    }
}

/// EVE's `alert` object: gatewatch has no signatures, so the signature text
/// names the feed's category, the indicator and the feed, or says in words
/// what a heuristic saw.
fn alert_body(hit: &Hit) -> EveAlertBody<'_> {
    let ind = &hit.indicator;
    let signature = match &hit.behaviour {
        Some(b) => b.signature.clone(),
        None => format!(
            "gatewatch {} {} {} ({})",
            ind.feed.category,
            ind.kind.as_str(),
            ind.value,
            ind.feed.name
        ),
    };
    EveAlertBody {
        action: "allowed",
        gid: 1,
        signature_id: 0,
        rev: 0,
        signature,
        category: &ind.feed.category,
        severity: ind.feed.severity.eve(),
    }
}

/// Where the hit was seen, in EVE field terms (`dns.query`, `tls.sni`...).
fn observed_in(source: HitSource) -> &'static str {
    match source {
        HitSource::DnsQuery => "dns.query",
        HitSource::DnsAnswer => "dns.answer",
        HitSource::TlsSni => "tls.sni",
        HitSource::QuicSni => "quic.sni",
        HitSource::HttpHost => "http.host",
        HitSource::HttpUrl => "http.url",
        HitSource::Ip | HitSource::DnsLink => "ip",
        HitSource::Heuristic => "behaviour",
    }
}

#[derive(Serialize)]
struct EveFlowBody {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    end: String,
    /// Seconds from first to last packet.
    age: i64,
    state: &'static str,
    reason: &'static str,
    alerted: bool,
    /// Holes in the payload that inspection had to skip.
    gaps: u32,
}

#[derive(Serialize)]
struct EveFlow<'a> {
    timestamp: String,
    flow_id: u64,
    event_type: &'static str,
    host: &'a str,
    src_ip: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    dest_port: u16,
    proto: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<[u16; 1]>,
    flow: EveFlowBody,
    sensor_id: &'a str,
    host_ip: IpAddr,
    unit: &'a str,
    unit_name: &'a str,
    /// Distinct indicators the flow hit (at most 8), and how many hits.
    indicators: &'a [Box<str>],
    hits: u32,
}

/// A finished TCP or UDP flow that had hits, as an EVE `flow` event: how much went
/// each way and for how long, linked to its alerts by `flow_id`.
pub fn flow_json(f: &FlowRecord, sensor_id: &str) -> String {
    let ev = EveFlow {
        timestamp: eve_time(f.last_ns),
        flow_id: f.id,
        event_type: "flow",
        host: sensor_id,
        src_ip: f.client.0,
        src_port: f.client.1,
        dest_ip: f.server.0,
        dest_port: f.server.1,
        proto: if f.proto == 17 { "UDP" } else { "TCP" },
        vlan: f.alert.vlan.map(|v| [v]),
        flow: EveFlowBody {
            pkts_toserver: f.pkts[TO_SERVER],
            pkts_toclient: f.pkts[TO_CLIENT],
            bytes_toserver: f.bytes[TO_SERVER],
            bytes_toclient: f.bytes[TO_CLIENT],
            start: eve_time(f.first_ns),
            end: eve_time(f.last_ns),
            age: (f.last_ns - f.first_ns).div_euclid(1_000_000_000),
            state: f.state.as_str(),
            reason: f.reason.as_str(),
            alerted: true,
            gaps: f.gaps,
        },
        sensor_id,
        host_ip: f.alert.host,
        unit: &f.alert.unit.code,
        unit_name: &f.alert.unit.name,
        indicators: &f.alert.indicators,
        hits: f.alert.hits,
    };
    serde_json::to_string(&ev).unwrap_or_default()
}

/// The subset of an alert line that offender lists are built from.
#[derive(Clone, Debug, Deserialize)]
pub struct AlertRecord {
    pub timestamp: String,
    pub event_type: String,
    pub host_ip: IpAddr,
    pub unit: String,
    #[serde(default)]
    pub unit_name: String,
    /// Absent from `flow` events, which the offender lists skip.
    #[serde(default)]
    pub indicator: String,
    #[serde(default)]
    pub indicator_kind: String,
    #[serde(default)]
    pub feed: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub severity: String,
    /// Hits an `alert_summary` event stands for.
    #[serde(default)]
    pub count: Option<u64>,
    /// `false`: a suspicion (beaconing), not an offender.
    #[serde(default = "yes")]
    pub offender: bool,
}

fn yes() -> bool {
    true
}

/// A protocol observation as an EVE `dns`/`tls`/`http` event line.
pub fn observation_json(
    ts_ns: i64,
    flow: &FlowKey,
    o: &Observation<'_>,
    sensor_id: &str,
) -> String {
    let mut v = serde_json::json!({
        "timestamp": eve_time(ts_ns),
        "host": sensor_id,
        "src_ip": flow.src,
        "src_port": flow.src_port,
        "dest_ip": flow.dst,
        "dest_port": flow.dst_port,
        "proto": proto_name(flow.proto),
    });
    let mut name = NameBuf::default();
    match o {
        Observation::Dns(m) => {
            let queries: Vec<_> = m
                .queries
                .iter()
                .map(|q| {
                    dns::name_into(q.name(), &mut name);
                    serde_json::json!({"rrname": name.as_str(), "rrtype": dns::rrtype_str(q.query_type())})
                })
                .collect();
            let answers: Vec<_> = m
                .answers
                .iter()
                .map(|(owner, a)| {
                    dns::name_into(owner, &mut name);
                    let owner = name.as_str().to_owned();
                    match a {
                        dns::Answer::A(ip, ttl) => serde_json::json!({
                            "rrname": owner,
                            "rrtype": if ip.is_ipv4() { "A" } else { "AAAA" },
                            "rdata": ip,
                            "ttl": ttl,
                        }),
                        dns::Answer::Cname(t) => {
                            dns::name_into(t, &mut name);
                            serde_json::json!({"rrname": owner, "rrtype": "CNAME", "rdata": name.as_str()})
                        }
                    }
                })
                .collect();
            v["event_type"] = "dns".into();
            v["dns"] = serde_json::json!({
                "type": if m.response { "answer" } else { "query" },
                "id": m.id,
                "rcode": m.rcode_str(),
                "queries": queries,
                "answers": answers,
            });
        }
        Observation::Tls { sni } => {
            v["event_type"] = "tls".into();
            v["tls"] = serde_json::json!({ "sni": sni });
        }
        Observation::Http(r) => {
            let host = r.host.map(|h| {
                name.set_host(h);
                name.as_str().to_owned()
            });
            v["event_type"] = "http".into();
            v["http"] = serde_json::json!({
                "hostname": host,
                "url": r.target,
                "http_method": r.method,
            });
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_time_round_trips() {
        let ts = 1_669_284_975_849_397_000;
        let s = eve_time(ts);
        assert_eq!(s, "2022-11-24T10:16:15.849397+0000");
        assert_eq!(parse_eve_time(&s), Some(ts));
    }
}
