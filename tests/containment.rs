//! Issue 14, containment: a panic (injected here through the fixture kit's
//! `packet::inject`, armed only by these tests) costs one packet and its
//! flow, never a worker; a feed reader's panic refuses that feed and keeps
//! its previous version, and later reloads still work; a panicking HTTP
//! handler answers 500 and the listener goes on. And defect 8: a slow
//! reload does not hold up `/metrics`, and `/api/*` wants its token.

use gatewatch::detect::EngineOptions;
use gatewatch::intel::feeds::{FeedsConfig, build_snapshot};
use gatewatch::intel::reload::{Outcome, Reloader};
use gatewatch::intel::{Intel, triggers};
use gatewatch::metrics::{Api, Metrics, serve};
use gatewatch::packet::inject;
use gatewatch::run::pipeline::{Backpressure, Pipeline, Sizing};
use gatewatch::testkit::{crafted_recipe, dns_query, ip, replay_frames, tcp_frame, udp_frame};
use hickory_proto::rr::RecordType;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames: a listed lookup, a packet that panics inside a tracked TCP flow,
/// then another listed lookup and a listed TLS-free HTTP request, all from
/// one host.
fn frames() -> Vec<Vec<u8>> {
    let (host, dns, web) = (ip("10.1.2.3"), ip("10.1.0.53"), ip("198.51.100.80"));
    let q = |id, name| {
        udp_frame(
            host,
            dns,
            40000 + id,
            53,
            None,
            &dns_query(id, name, RecordType::A),
        )
    };
    let mut boom = b"GET / HTTP/1.1\r\nHost: quiet.example\r\nX: ".to_vec();
    boom.extend_from_slice(inject::MARK);
    boom.extend_from_slice(b"\r\n\r\n");
    vec![
        q(1, "first.evil.example"),
        tcp_frame(host, web, 50000, 80, 1, &boom),
        q(2, "second.evil.example"),
        tcp_frame(
            host,
            web,
            50001,
            80,
            1,
            b"GET / HTTP/1.1\r\nHost: c2.test\r\n\r\n",
        ),
    ]
}

const LISTED: [&str; 2] = ["evil.example", "c2.test"];

#[test]
fn an_engine_survives_a_panicking_packet_and_resets_its_flow() {
    inject::arm(true);
    let mut e = crafted_recipe(&LISTED, EngineOptions::default()).engine(0);
    let f = frames();
    let c = replay_frames(
        &mut e,
        f.iter().enumerate().map(|(i, f)| (i as u64, f.as_slice())),
    );
    assert_eq!(e.stats.panics_recovered, 1);
    let hit_names: Vec<&str> = c.hits.iter().map(|h| &*h.indicator.value).collect();
    assert!(hit_names.contains(&"evil.example"), "{hit_names:?}");
    assert!(hit_names.contains(&"c2.test"), "{hit_names:?}");
    assert_eq!(c.hits.len(), 3, "{hit_names:?}");
    // The panicking packet's flow was dropped; the later one is tracked.
    assert_eq!(e.flows().len(), 1);
}

#[test]
fn a_worker_survives_a_panicking_packet() {
    inject::arm(true);
    let recipe = crafted_recipe(&LISTED, EngineOptions::default());
    let (tx, rx) = crossbeam_channel::unbounded();
    let sizing = Sizing {
        workers: 2,
        queue_batches: 8,
        batch_packets: 2,
    };
    let p = Pipeline::start(sizing, &recipe, tx);
    let mut router = p.router(Backpressure::Block);
    for (i, f) in frames().iter().enumerate() {
        let raw = gatewatch::packet::RawPacket {
            ts_ns: 1_700_000_000_000_000_000 + i as i64 * 1_000_000_000,
            orig_len: f.len() as u32,
            link: gatewatch::packet::LinkType::Ethernet,
            data: f,
        };
        router.route(&raw);
    }
    router.flush();
    drop(router);
    let stats = p.finish();
    assert_eq!(stats.panics_recovered, 1);
    let hits = rx
        .try_iter()
        .filter(|e| matches!(e, gatewatch::detect::Event::Hit(_)))
        .count();
    assert_eq!(hits, 3, "hits after the panic are still found");
}

const FEEDS: &str = r#"
[[feed]]
name = "domains"
path = "domains.txt"
format = "plain"
category = "malware"
"#;

#[test]
fn a_panicking_feed_reader_refuses_the_feed_and_reloads_go_on() {
    inject::arm(true);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("feeds.toml"), FEEDS).unwrap();
    let domains = d.path().join("domains.txt");
    std::fs::write(&domains, "a.example\nb.example\n").unwrap();
    let cfg = FeedsConfig::load(&d.path().join("feeds.toml")).unwrap();
    let (snap, reports, _) = build_snapshot(&cfg);
    let intel = Arc::new(Intel::new(snap));
    let r = Reloader::new(&cfg, &reports, intel.clone());
    let bump = |text: &str| {
        std::fs::write(&domains, text).unwrap();
        let f = std::fs::File::options().write(true).open(&domains).unwrap();
        f.set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
            .unwrap();
    };
    let mut poisoned = String::from_utf8(inject::MARK.to_vec()).unwrap();
    poisoned.insert_str(0, "c.example\n");
    bump(&poisoned);
    let rep = r.reload();
    let (_, outcome, feed) = rep.feeds.iter().find(|f| f.0 == "domains").unwrap();
    assert!(matches!(outcome, Outcome::Refused { .. }), "{outcome:?}");
    let why = feed.as_ref().and_then(|f| f.failed.clone()).unwrap();
    assert!(why.contains("panicked"), "{why}");
    assert!(
        intel.load().match_domain("a.example").is_some(),
        "previous version kept"
    );
    assert!(intel.load().match_domain("c.example").is_none());
    std::thread::sleep(triggers::DEBOUNCE);
    bump("a.example\nb.example\nd.example\n");
    let rep = r.reload();
    assert_eq!(rep.result(), "ok", "{}", rep.to_json());
    assert!(intel.load().match_domain("d.example").is_some());
}

/// (status, body) of a request with extra header lines.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: x\r\n{headers}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let code = r.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        code,
        r.split_once("\r\n\r\n").map_or("", |x| x.1).to_string(),
    )
}

#[test]
fn a_panicking_handler_answers_500_and_the_listener_goes_on() {
    let m = Metrics::new();
    m.set_reload_hook(Arc::new(|| panic!("reload hook bug")));
    let (addr, _) = serve("127.0.0.1:0".parse().unwrap(), m, Api::default()).unwrap();
    for _ in 0..3 {
        assert_eq!(request(addr, "POST", "/api/reload", "").0, 500);
    }
    let (code, metrics) = request(addr, "GET", "/metrics", "");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("gatewatch_panics_recovered_total"),
        "{metrics}"
    );
    // No capture runs here: healthz answers "starting", promptly.
    assert_eq!(request(addr, "GET", "/healthz", "").0, 503);
}

#[test]
fn a_slow_reload_does_not_hold_up_metrics() {
    let m = Metrics::new();
    m.set_reload_hook(Arc::new(|| {
        std::thread::sleep(Duration::from_secs(3));
        (200, "{}".into())
    }));
    let (addr, _) = serve("127.0.0.1:0".parse().unwrap(), m, Api::default()).unwrap();
    let slow = std::thread::spawn(move || request(addr, "POST", "/api/reload", ""));
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    assert_eq!(request(addr, "GET", "/metrics", "").0, 200);
    // No capture runs here: healthz answers "starting", promptly.
    assert_eq!(request(addr, "GET", "/healthz", "").0, 503);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(slow.join().unwrap().0, 200);
}

#[test]
fn the_api_wants_its_token_when_one_is_set() {
    let token = "0123456789abcdef0123";
    let api = Api {
        store: None,
        token: Some(token.into()),
    };
    let m = Metrics::new();
    m.set_reload_hook(Arc::new(|| (200, "{}".into())));
    let (addr, _) = serve("127.0.0.1:0".parse().unwrap(), m, api).unwrap();
    assert_eq!(request(addr, "POST", "/api/reload", "").0, 401);
    let wrong = "Authorization: Bearer 0123456789abcdef0124\r\n";
    assert_eq!(request(addr, "POST", "/api/reload", wrong).0, 401);
    assert_eq!(request(addr, "GET", "/api/units", wrong).0, 401);
    let right = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(request(addr, "POST", "/api/reload", &right).0, 200);
    assert_ne!(request(addr, "GET", "/api/units", &right).0, 401);
    // Open endpoints need no token.
    assert_eq!(request(addr, "GET", "/metrics", "").0, 200);
}

#[test]
fn a_weak_or_missing_api_token_file_is_a_config_error() {
    use gatewatch::run::config::Config;
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("short"), "x-y\n").unwrap();
    std::fs::write(d.path().join("good"), "0123456789abcdef0123\n").unwrap();
    let conf = |file: &str| format!("[metrics]\napi_token_file = \"{file}\"\n");
    for (file, want) in [("short", "at least 16"), ("missing", "cannot read")] {
        let e = Config::parse("gw.toml", &conf(file), d.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("api_token_file") && e.contains(want), "{e}");
        assert!(!e.contains("x-y"), "the token itself is never shown: {e}");
    }
    let c = Config::parse("gw.toml", &conf("good"), d.path());
    let token = c.as_ref().map(|c| c.api_token());
    assert!(
        matches!(&token, Ok(Ok(Some(t))) if t == "0123456789abcdef0123")
            || c.as_ref()
                .is_err_and(|e| !e.to_string().contains("api_token_file")),
        "{token:?}"
    );
}
