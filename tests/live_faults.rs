//! `gatewatch run` when its capture interface fails (issue 3): an interface
//! that goes away, is set down or loses its carrier while running, or has no
//! carrier at start; and what a start refuses (missing or down interface,
//! taken metrics port) or reports (the metrics port the kernel chose).
//!
//! The capture tests use a namespace with a veth pair as `tests/live.rs`
//! describes, and take the same traffic-test lock. Needs root, iproute2,
//! tcpreplay and curl; where any of that is missing the tests fail and say
//! so, they never skip.

use gatewatch::testkit::live::*;
use gatewatch::testkit::{bin_path, root, wait_for};
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// The capture interface disappears under a running sensor: `/healthz` and
/// `gatewatch_capture_up` say so, the loss is counted, and when the
/// interface comes back capture resumes and matches again.
#[test]
fn interface_loss_is_reported_and_capture_resumes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (feeds, units) = combined_config(dir.path());
    let ns = capture_ns();
    let s = Sensor::start(&ns, dir.path(), 19481, &feeds, &units);

    ns.ip(&["link", "del", TX]);
    wait_health(&ns, &s, 503, &format!("capture down on: {RX}"), 0.0);
    assert!(capture_errors(&ns, &s) >= 1.0, "{}", s.logs());

    ns.veth(TX, RX, MTU, true);
    wait_health(&ns, &s, 200, "ok", 1.0);
    let s = c2_is_still_caught(&ns, dir.path(), s);
    assert!(read(&s.err).contains("capture resumed"), "{}", s.logs());
}

/// `gatewatch_capture_errors_total` for `RX`.
fn capture_errors(ns: &Netns, s: &Sensor) -> f64 {
    metric_or_0(&s.scrape(ns), &capture_series("errors_total", RX))
}

/// Send the real C2 capture, wait until it is processed, stop the sensor,
/// and check it exited 0 with the C2 hit in its alert log.
fn c2_is_still_caught(ns: &Netns, dir: &Path, mut s: Sensor) -> Sensor {
    let sent = tcpreplay_all(ns, dir, &[C2_PCAP]);
    wait_processed(ns, &s, sent);
    let (st, _) = s.terminate();
    assert!(st.success(), "gatewatch run exited with {st}{}", s.logs());
    let (got, _) = alert_keys(&s.alerts);
    assert!(
        got.keys().any(|k| k.1 == C2_ADDR),
        "no hit after the link came back:\n{}{}",
        describe(&got),
        s.logs()
    );
    s
}

/// An interface set administratively down under a running sensor shows as
/// down (`/healthz` 503, `gatewatch_capture_up` 0, so the shipped
/// GatewatchInterfaceDown rule fires), is counted in
/// `gatewatch_capture_errors_total` and logged once; when it is up again,
/// capture resumes on the same handle and matches again.
#[test]
fn interface_set_down_is_reported() {
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (feeds, units) = combined_config(dir.path());
    let ns = capture_ns();
    let s = Sensor::start(&ns, dir.path(), 19482, &feeds, &units);
    ns.ip(&["link", "set", RX, "down"]);
    wait_health(&ns, &s, 503, &format!("capture down on: {RX}"), 0.0);
    assert_eq!(capture_errors(&ns, &s), 1.0, "{}", s.logs());
    // Down over several checks: still one warning and one error.
    std::thread::sleep(Duration::from_millis(2500));
    ns.ip(&["link", "set", RX, "up"]);
    wait_health(&ns, &s, 200, "ok", 1.0);
    assert_eq!(capture_errors(&ns, &s), 1.0, "{}", s.logs());
    let s = c2_is_still_caught(&ns, dir.path(), s);
    let err = read(&s.err);
    let warning = format!("interface \"{RX}\": set administratively down");
    assert_eq!(count(&err, &warning), 1, "{}", s.logs());
    assert_eq!(count(&err, "capture resumed"), 1, "{}", s.logs());
    // The handle kept working: it was not closed and reopened.
    assert!(!err.contains("capture failed"), "{}", s.logs());
    eprintln!(
        "set down/up reported; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The link of the capture interface loses its carrier (the veth peer is set
/// down: operstate "lowerlayerdown", as a mirror port whose cable is pulled):
/// reported as down, counted, logged once; reported up again with its carrier.
#[test]
fn carrier_loss_is_reported() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (feeds, units) = combined_config(dir.path());
    let ns = capture_ns();
    let mut s = Sensor::start(&ns, dir.path(), 19483, &feeds, &units);
    ns.ip(&["link", "set", TX, "down"]);
    wait_health(&ns, &s, 503, &format!("capture down on: {RX}"), 0.0);
    assert_eq!(capture_errors(&ns, &s), 1.0, "{}", s.logs());
    ns.ip(&["link", "set", TX, "up"]);
    wait_health(&ns, &s, 200, "ok", 1.0);
    let (st, _) = s.terminate();
    assert!(st.success(), "gatewatch run exited with {st}{}", s.logs());
    let err = read(&s.err);
    let warning = format!("interface \"{RX}\": link down (no carrier)");
    assert_eq!(count(&err, &warning), 1, "{}", s.logs());
    assert_eq!(count(&err, "capture resumed"), 1, "{}", s.logs());
}

/// An interface that is up but has no carrier at start (NO-CARRIER: a
/// mirror port that gets its link later) is not refused: the sensor starts,
/// reports it as down from its first `/healthz` answer on, names it in a
/// warning, and captures once the link comes up.
#[test]
fn no_carrier_at_start_runs_and_is_reported_down() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (feeds, units) = combined_config(dir.path());
    let ns = capture_ns();
    ns.ip(&["link", "set", TX, "down"]);
    let s = Sensor::spawn(&ns, dir.path(), 19484, &feeds, &units);
    // The first answer after "starting" already says down, never "ok".
    let first = wait_for(
        "/healthz past \"starting\"",
        Duration::from_secs(10),
        || match healthz(&ns, &s) {
            Some((503, b)) if b.trim() == "starting" => Err(b),
            Some(h) => Ok(h),
            None => Err("no answer".into()),
        },
    );
    assert_eq!(
        first,
        (503, format!("capture down on: {RX}\n")),
        "{}",
        s.logs()
    );
    wait_health(&ns, &s, 503, &format!("capture down on: {RX}"), 0.0);
    let warning = format!("interface \"{RX}\" is up but has no carrier (NO-CARRIER)");
    assert!(read(&s.err).contains(&warning), "{}", s.logs());
    ns.ip(&["link", "set", TX, "up"]);
    wait_health(&ns, &s, 200, "ok", 1.0);
    let s = c2_is_still_caught(&ns, dir.path(), s);
    assert_eq!(count(&read(&s.err), &warning), 1, "{}", s.logs());
    assert!(read(&s.err).contains("capture resumed"), "{}", s.logs());
}

/// With `--metrics-listen 127.0.0.1:0` the log names the port the kernel
/// chose, and the endpoint answers there; loopback, whose operstate is
/// "unknown", counts as up. At SIGTERM the summary has the capture line.
#[test]
fn metrics_on_port_0_logs_the_bound_address() {
    require_tool("curl", "apt-get install curl");
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("run.stdout"), dir.path().join("run.stderr"));
    let mut p = Proc::spawn(
        "gatewatch run",
        ns.cmd(bin_path())
            .current_dir(root())
            .args([
                "run",
                "--interface",
                "lo",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .arg("--alerts")
            .arg(dir.path().join("alerts.jsonl"))
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap()),
    );
    let port: u16 = wait_for(
        "the metrics address in the log",
        Duration::from_secs(30),
        || {
            if let Some(st) = p.try_status() {
                panic!("gatewatch run exited at start ({st}): {}", read(&err));
            }
            let e = read(&err);
            e.split_once("metrics on http://127.0.0.1:")
                .and_then(|(_, r)| r.split_once("/metrics")?.0.parse().ok())
                .ok_or(e)
        },
    );
    assert_ne!(port, 0, "{}", read(&err));
    let url = format!("http://127.0.0.1:{port}/healthz");
    wait_for("/healthz 200 on lo", Duration::from_secs(10), || {
        match ns.http_get(&url) {
            Some((200, b)) if b == "ok\n" => Ok(()),
            o => Err(format!("{o:?}\n{}", read(&err))),
        }
    });
    p.signal(libc::SIGTERM);
    let st = p
        .wait_timeout(Duration::from_secs(20))
        .expect("exit after SIGTERM");
    assert!(st.success(), "{st}: {}{}", read(&out), read(&err));
    let line = capture_line(&read(&out));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        matches!(
            words[..],
            [
                "capture:",
                _,
                "received,",
                _,
                "dropped",
                "by",
                "kernel,",
                _,
                "by",
                "interface,",
                _,
                "at",
                "queues"
            ]
        ),
        "{line}"
    );
}

/// A start that fails on its interfaces creates no alert log (nor its
/// directory), and leaves an existing one as it was.
#[test]
fn failed_start_creates_no_alert_log() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("logs/alerts.jsonl");
    let a = alerts.to_str().unwrap();
    let args = [
        "--interface",
        "does-not-exist0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--alerts",
        a,
    ];
    let (st, t) = run_expecting_exit(None, dir.path(), &args);
    assert_eq!(st.code(), Some(1), "{t}");
    assert!(!dir.path().join("logs").exists(), "{t}");
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(&alerts, "{\"earlier\":1}\n").unwrap();
    let (st, t) = run_expecting_exit(None, dir.path(), &args);
    assert_eq!(st.code(), Some(1), "{t}");
    assert_eq!(read(&alerts), "{\"earlier\":1}\n");
}

#[test]
fn missing_interface_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (st, t) = run_expecting_exit(
        None,
        dir.path(),
        &[
            "--interface",
            "does-not-exist0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(st.code(), Some(1), "{t}");
    assert!(
        t.contains("interface \"does-not-exist0\" does not exist"),
        "{t}"
    );
    assert!(!t.contains("capturing on"), "{t}");
    assert!(!dir.path().join("alerts.jsonl").exists(), "{t}");
}

#[test]
fn down_interface_is_named() {
    let ns = Netns::new();
    ns.veth("gwdown0", "gwdown1", 1500, false);
    let dir = tempfile::tempdir().unwrap();
    let (st, t) = run_expecting_exit(
        Some(&ns),
        dir.path(),
        &["--interface", "gwdown0", "--metrics-listen", "127.0.0.1:0"],
    );
    assert_eq!(st.code(), Some(1), "{t}");
    assert!(t.contains("interface \"gwdown0\" is down"), "{t}");
    assert!(t.contains("ip link set gwdown0 up"), "{t}");
    assert!(!t.contains("capturing on"), "{t}");
    assert!(!dir.path().join("alerts.jsonl").exists(), "{t}");
}

#[test]
fn taken_metrics_port_is_refused_at_start() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (st, t) = run_expecting_exit(
        None,
        dir.path(),
        &["--interface", "lo", "--metrics-listen", &addr],
    );
    assert_eq!(st.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!("cannot listen for metrics on {addr}")),
        "{t}"
    );
    assert!(t.contains("Address already in use"), "{t}");
    assert!(!t.contains("capturing on"), "{t}");
    drop(held);
}
