//! Hot reload: only changed feeds are rebuilt (the others' tables are
//! shared), bad new versions are refused and the previous one kept, and
//! matching never misses an indicator present before and after, whether the
//! reload comes from a call, SIGHUP, a file change or `POST /api/reload`.

use gatewatch::intel::feeds::{FeedsConfig, build_snapshot};
use gatewatch::intel::reload::{Outcome, RefuseReason, Reloader};
use gatewatch::intel::{Intel, triggers};
use gatewatch::testkit::{http_request, wait_until};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const TOML: &str = r#"
[[feed]]
name = "domains"
path = "domains.txt"
format = "plain"
category = "malware"

[[feed]]
name = "ips"
path = "ips.txt"
format = "plain"
category = "botnet-c2"
"#;

/// How long a triggered reload may take to show.
const RELOAD_WAIT: Duration = Duration::from_secs(15);

fn domains(n: usize, extra: &str) -> String {
    let mut s = String::from("always.example\n");
    for i in 0..n {
        s.push_str(&format!("d{i}.example\n"));
    }
    s.push_str(extra);
    s
}

fn setup(dir: &Path) -> (Arc<Intel>, Arc<Reloader>) {
    std::fs::write(dir.join("feeds.toml"), TOML).unwrap();
    std::fs::write(dir.join("domains.txt"), domains(1000, "")).unwrap();
    std::fs::write(dir.join("ips.txt"), "203.0.113.7\n198.51.100.0/24\n").unwrap();
    let cfg = FeedsConfig::load(&dir.join("feeds.toml")).unwrap();
    let (snap, reports, _) = build_snapshot(&cfg);
    let intel = Arc::new(Intel::new(snap));
    let r = Arc::new(Reloader::new(&cfg, &reports, intel.clone()));
    (intel, r)
}

/// Rewrite a file so its size or modification time changes.
fn rewrite(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
    let f = std::fs::File::options().write(true).open(p).unwrap();
    let t = std::time::SystemTime::now() + Duration::from_secs(1);
    f.set_modified(t).unwrap();
}

fn outcome<'a>(r: &'a gatewatch::intel::reload::ReloadReport, feed: &str) -> &'a Outcome {
    &r.feeds.iter().find(|f| f.0 == feed).unwrap().1
}

#[test]
fn only_changed_feeds_are_rebuilt_and_the_rest_shared() {
    let d = tempfile::tempdir().unwrap();
    let (intel, r) = setup(d.path());
    let before = intel.load_full();
    let nothing = r.reload();
    assert!(!nothing.swapped);
    assert_eq!(outcome(&nothing, "domains"), &Outcome::Unchanged);

    rewrite(
        &d.path().join("domains.txt"),
        &domains(1000, "new.example\n"),
    );
    let rep = r.reload();
    assert_eq!(rep.result(), "ok");
    assert_eq!(
        outcome(&rep, "domains"),
        &Outcome::Loaded { accepted: 1002 }
    );
    assert_eq!(outcome(&rep, "ips"), &Outcome::Unchanged);
    let after = intel.load_full();
    assert!(after.match_domain("x.new.example").is_some());
    assert!(before.match_domain("x.new.example").is_none());
    // The unchanged feed's tables are the same allocation.
    assert!(Arc::ptr_eq(&before.parts()[1], &after.parts()[1]));
    assert!(!Arc::ptr_eq(&before.parts()[0], &after.parts()[0]));
}

#[test]
fn bad_new_versions_are_refused_and_the_old_one_kept() {
    let d = tempfile::tempdir().unwrap();
    let (intel, r) = setup(d.path());
    let p = d.path().join("domains.txt");
    let refused = |rep: &gatewatch::intel::reload::ReloadReport| match outcome(rep, "domains") {
        Outcome::Refused { reason, .. } => Some(*reason),
        _ => None,
    };
    // Shrunk to a tenth: a truncated download.
    rewrite(&p, &domains(100, ""));
    let rep = r.reload();
    assert_eq!(refused(&rep), Some(RefuseReason::Shrunk), "{rep:?}");
    assert_eq!(rep.result(), "partial");
    assert!(intel.load().match_domain("d999.example").is_some());
    // Empty.
    rewrite(&p, "# nothing today\n");
    assert_eq!(refused(&r.reload()), Some(RefuseReason::Empty));
    assert!(intel.load().match_domain("d999.example").is_some());
    // Unreadable: the file is gone.
    std::fs::remove_file(&p).unwrap();
    assert_eq!(refused(&r.reload()), Some(RefuseReason::Parse));
    assert!(intel.load().match_domain("d999.example").is_some());
    // A feeds file with a syntax error changes nothing.
    rewrite(&p, &domains(1000, "later.example\n"));
    std::fs::write(d.path().join("feeds.toml"), "[[feed]\n").unwrap();
    let rep = r.reload();
    assert_eq!(rep.result(), "refused");
    assert!(rep.config_error.unwrap().contains("feeds.toml:1"));
    assert!(intel.load().match_domain("later.example").is_none());
    // Fixed: the good version goes in.
    std::fs::write(d.path().join("feeds.toml"), TOML).unwrap();
    let rep = r.reload();
    assert_eq!(rep.result(), "ok");
    assert!(intel.load().match_domain("later.example").is_some());
}

/// One thread matches without pause while another reloads 100 times; an
/// indicator present in every version is never missed.
#[test]
fn reload_under_load_misses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (intel, r) = setup(d.path());
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let reader = {
        let (intel, stop, lookups) = (intel.clone(), stop.clone(), lookups.clone());
        std::thread::spawn(move || {
            let ip = "198.51.100.77".parse().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let s = intel.load();
                assert!(
                    s.match_domain("a.always.example").is_some(),
                    "missed a stable domain"
                );
                assert!(s.match_ip(ip, None).is_some(), "missed a stable network");
                lookups.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    for g in 0..100 {
        rewrite(
            &d.path().join("domains.txt"),
            &domains(1000, &format!("gen{g}.example\n")),
        );
        let rep = r.reload();
        assert_eq!(rep.result(), "ok");
        assert!(
            intel
                .load()
                .match_domain(&format!("gen{g}.example"))
                .is_some()
        );
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader panicked");
    assert!(lookups.load(Ordering::Relaxed) > 1000);
}

/// A changed feed file is picked up by the watcher (debounced), SIGHUP
/// reloads too, and every reload reaches the callback.
#[test]
fn file_change_and_sighup_trigger_reloads() {
    let d = tempfile::tempdir().unwrap();
    let (intel, r) = setup(d.path());
    let seen = Arc::new(AtomicU64::new(0));
    let on: triggers::OnReload = {
        let seen = seen.clone();
        Arc::new(move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        })
    };
    let _t = triggers::start(r, on, true).unwrap();
    // Written by rename, as feed updaters should.
    let tmp = d.path().join(".domains.tmp");
    std::fs::write(&tmp, domains(1000, "watched.example\n")).unwrap();
    std::fs::rename(&tmp, d.path().join("domains.txt")).unwrap();
    wait_until("the watcher's reload", RELOAD_WAIT, || {
        intel.load().match_domain("watched.example").is_some()
    });
    let n = seen.load(Ordering::Relaxed);
    assert!(n >= 1);
    // Written in place (truncate + write).
    rewrite(
        &d.path().join("ips.txt"),
        "203.0.113.7\n198.51.100.0/24\n192.0.2.99\n",
    );
    wait_until("the in-place change", RELOAD_WAIT, || {
        intel
            .load()
            .match_ip("192.0.2.99".parse().unwrap(), None)
            .is_some()
    });
    // SIGHUP.
    std::thread::sleep(triggers::DEBOUNCE * 2);
    let before = seen.load(Ordering::Relaxed);
    unsafe { libc::raise(libc::SIGHUP) };
    wait_until("the SIGHUP reload", RELOAD_WAIT, || {
        seen.load(Ordering::Relaxed) > before
    });
}

/// `POST /api/reload` on the metrics listener runs a reload and answers
/// with each feed's outcome; the metrics show it.
#[test]
fn api_reload_and_metrics() {
    use gatewatch::metrics::{Api, Metrics, serve};
    let d = tempfile::tempdir().unwrap();
    let (intel, r) = setup(d.path());
    let m = Metrics::new();
    m.feeds
        .loaded(&intel.load_full(), &["domains".into(), "ips".into()]);
    {
        let (m2, intel) = (m.clone(), intel.clone());
        m.set_reload_hook(Arc::new(move || {
            let rep = r.reload();
            m2.feeds.reloaded(&rep, &intel.load_full());
            (200, rep.to_json())
        }));
    }
    let (addr, _) = serve("127.0.0.1:0".parse().unwrap(), m.clone(), Api::default()).unwrap();
    let req = |method: &str, path: &str| http_request(addr, method, path);
    assert!(req("GET", "/api/reload").starts_with("HTTP/1.1 405"));
    rewrite(&d.path().join("domains.txt"), &domains(10, ""));
    let out = req("POST", "/api/reload");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"result\":\"partial\""), "{out}");
    assert!(out.contains("\"state\":\"shrunk\""), "{out}");
    let metrics = req("GET", "/metrics");
    assert!(
        metrics.contains("gatewatch_feeds_reloads_total{result=\"partial\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("gatewatch_feed_reload_refused_total{feed=\"domains\",reason=\"shrunk\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatewatch_feed_indicators{feed=\"domains\",kind=\"domain\"} 1001"),
        "{metrics}"
    );
    assert!(metrics.contains("gatewatch_feed_indicators{feed=\"ips\",kind=\"cidr\"} 1"));
    assert!(metrics.contains("gatewatch_feed_last_failure_timestamp_seconds{feed=\"domains\"}"));
}

/// Issue 14, defect 8 (in part): `POST /api/reload` accepts this host over a
/// dual-stack listener (the peer is then ::ffff:127.0.0.1), and refuses a
/// request a web page would send (it carries Origin).
#[test]
fn api_reload_from_mapped_loopback_not_from_a_page() {
    use gatewatch::metrics::{Api, Metrics, serve};
    use std::io::{Read, Write};
    let m = Metrics::new();
    m.set_reload_hook(Arc::new(|| (200, "{\"result\":\"ok\"}".to_string())));
    let Ok((addr, _)) = serve("[::]:0".parse().unwrap(), m, Api::default()) else {
        eprintln!("no IPv6 on this machine: dual-stack reload not checked (skipped)");
        return;
    };
    let post = |extra: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
        write!(
            s,
            "POST /api/reload HTTP/1.0\r\nHost: x\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    };
    let ok = post("");
    assert!(ok.starts_with("HTTP/1.0 200"), "{ok}");
    let page = post("Origin: https://evil.example\r\n");
    assert!(page.starts_with("HTTP/1.0 403"), "{page}");
}
