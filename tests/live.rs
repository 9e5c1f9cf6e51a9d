//! `gatewatch run` on a real interface (issue 3): live capture against
//! `gatewatch replay` of the same captures, the drain at SIGTERM, and a real
//! Prometheus scraping the sensor. Interface faults and start-up errors are in
//! `tests/live_faults.rs`, several interfaces at once in
//! `tests/live_multi.rs`.
//!
//! Each capture test makes its own network namespace with a veth pair on
//! private addresses (`gwtx0` 10.254.254.1/30 <-> `gwrx0` 10.254.254.2/30,
//! MTU 9000, IPv6 off), runs gatewatch on `gwrx0` inside it, and sends real
//! Ethernet captures into `gwtx0` with tcpreplay. Metrics, curl and
//! Prometheus all run on the namespace's own loopback, so nothing touches the
//! host's interfaces or ports. The tests that send traffic take the lock in
//! `serial()` (`gatewatch::testkit::live`), so they run one at a time across
//! all the `tests/live*.rs` binaries.
//!
//! Needs root, iproute2, tcpreplay, curl and prometheus/promtool (Debian:
//! `apt-get install iproute2 tcpreplay curl prometheus`). Where any of that
//! is missing the tests fail and say so; they never skip.

use gatewatch::testkit::live::*;
use gatewatch::testkit::{DEMO_CAPTURES, corpus, root, text, wait_for};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Live capture of real traffic finds exactly what `gatewatch replay` finds
/// in the same files, drops nothing at 2000 packets/s, and exits 0 on SIGTERM.
#[test]
fn live_capture_matches_replay_without_drops() {
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (feeds, units) = combined_config(dir.path());
    let files = [C2_PCAP, SMALL_PCAP];

    let replayed = replay_alerts(dir.path(), &feeds, &units, &files);
    let (want, want_lines) = alert_keys(&replayed);
    assert!(
        want.keys().any(|k| k.1 == C2_ADDR && k.5 == "SO-TTTT"),
        "replay lacks the real C2 hit:\n{}",
        describe(&want)
    );
    assert!(want_lines >= 400, "only {want_lines} replayed alerts");

    let ns = capture_ns();
    let mut s = Sensor::start(&ns, dir.path(), 19477, &feeds, &units);
    let sent = tcpreplay_all(&ns, dir.path(), &files);
    let m = wait_processed(&ns, &s, sent);
    assert_no_drops(&m, &s.logs());
    assert_eq!(
        metric(&m, &capture_series("packets_total", RX)),
        Some(sent as f64),
        "the capture thread saw other packets than were sent:\n{m}"
    );
    assert_eq!(metric(&m, &capture_series("up", RX)), Some(1.0));

    let (st, took) = s.terminate();
    assert!(st.success(), "gatewatch run exited with {st}{}", s.logs());
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} to stop an idle sensor"
    );
    let out = read(&s.out);
    assert_eq!(stats_value(&out, "packets"), sent, "{}", s.logs());
    assert_eq!(stats_value(&out, "queue_drops"), 0, "{}", s.logs());
    assert_eq!(capture_row(&out, RX), (sent, 0, 0), "{}", s.logs());
    assert_eq!(
        capture_line(&out),
        format!("capture: {sent} received, 0 dropped by kernel, 0 by interface, 0 at queues"),
        "{}",
        s.logs()
    );

    let (got, got_lines) = alert_keys(&s.alerts);
    assert_same_hits(&want, want_lines, &got, got_lines);
    assert_eq!(appended(&out), got_lines as u64, "{}", s.logs());
    // The offender store next to the alert log holds every alert line.
    let db = s.alerts.with_file_name("gatewatch.db");
    let store = gatewatch::store::Store::open_read_only(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(
        store.alert_count().unwrap(),
        got_lines as u64,
        "{}",
        s.logs()
    );
    assert!(
        out.contains(&format!("store: {got_lines} hit(s) recorded in")),
        "{out}"
    );
    eprintln!(
        "live == replay: {} distinct hits, {got_lines} alerts, {sent} packets; {:.1} s (SIGTERM -> exit {took:?})",
        got.len(),
        started.elapsed().as_secs_f64()
    );
}

/// A label value that names a host: an address, an address with port or
/// prefix, or a domain name.
fn names_a_host(v: &str) -> bool {
    if v.parse::<IpAddr>().is_ok()
        || v.parse::<std::net::SocketAddr>().is_ok()
        || v.split_once('/')
            .is_some_and(|(a, _)| a.parse::<IpAddr>().is_ok())
    {
        return true;
    }
    let labels: Vec<&str> = v.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|t| t.chars().any(|c| c.is_ascii_alphabetic()))
}

/// The `data.result` of a Prometheus API answer; the test fails unless its
/// status is "success".
fn prom_result(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// A real Prometheus server inside the test namespace, scraping one
/// gatewatch every second and evaluating the shipped alert rules; its
/// stdout and stderr go to files in the test directory.
struct Prometheus<'a> {
    ns: &'a Netns,
    proc: Proc,
    /// `http://127.0.0.1:PORT`, the base of its HTTP API.
    api: String,
    log: PathBuf,
    err: PathBuf,
}

impl<'a> Prometheus<'a> {
    /// Write a configuration that scrapes `127.0.0.1:target` every second
    /// with `deploy/prometheus/alerts.yml` as its rules, and start the
    /// server on `127.0.0.1:listen` (without waiting for it to be ready).
    fn spawn(ns: &'a Netns, dir: &Path, target: u16, listen: u16) -> Prometheus<'a> {
        let cfg = dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: gatewatch\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [\"127.0.0.1:{target}\"]\n",
                root().join("deploy/prometheus/alerts.yml").display()
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let err = dir.join("prometheus.err");
        let proc = Proc::spawn(
            "prometheus",
            ns.cmd("prometheus")
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{listen}"))
                .stdout(File::create(&log).unwrap())
                .stderr(File::create(&err).unwrap()),
        );
        let api = format!("http://127.0.0.1:{listen}");
        Prometheus {
            ns,
            proc,
            api,
            log,
            err,
        }
    }

    /// Its stdout and stderr so far, for failure messages.
    fn logs(&self) -> String {
        format!("{}{}", read(&self.log), read(&self.err))
    }

    /// Wait until `/-/ready` answers 200; the test fails if the server exits.
    fn wait_ready(&mut self) {
        wait_for("Prometheus to be ready", Duration::from_secs(30), || {
            if let Some(st) = self.proc.try_status() {
                panic!("prometheus exited ({st}): {}", self.logs());
            }
            match self.ns.http_get(&format!("{}/-/ready", self.api)) {
                Some((200, _)) => Ok(()),
                o => Err(format!("{o:?}")),
            }
        });
    }

    /// The result vector of the instant query `q`; the test fails if the
    /// query does not succeed.
    fn query(&self, q: &str) -> Vec<Value> {
        let url = format!("{}/api/v1/query", self.api);
        match self.ns.http_query(&url, &[("query", q)]) {
            Some((200, body)) => prom_result(&body),
            o => panic!("Prometheus query {q:?} failed: {o:?}\n{}", self.logs()),
        }
    }

    /// The value of the first series `q` returns, if any.
    fn scalar(&self, q: &str) -> Option<f64> {
        self.query(q)
            .first()
            .and_then(|x| x["value"][1].as_str()?.parse::<f64>().ok())
    }

    /// Wait until Prometheus has scraped gatewatch once (`up` is 1).
    ///
    /// Prometheus applies its scrape targets about 5 s after start; the test
    /// lets it scrape before the traffic, so counters are folded over
    /// several scrapes.
    fn wait_first_scrape(&self) {
        wait_for(
            "Prometheus' first scrape of gatewatch",
            Duration::from_secs(30),
            || match self.scalar("up{job=\"gatewatch\"}") {
                Some(1.0) => Ok(()),
                v => Err(format!("up = {v:?}")),
            },
        );
    }

    /// Wait until Prometheus holds `written` hits and `sent` packets, and
    /// return the hits.
    fn wait_every_hit(&self, written: f64, sent: u64) -> f64 {
        wait_for(
            "Prometheus to scrape every hit",
            Duration::from_secs(20),
            || {
                let hits = self.scalar("sum(gatewatch_hits_total)");
                let packets = self.scalar("gatewatch_packets_total");
                match (hits, packets) {
                    (Some(h), Some(p)) if h == written && p == sent as f64 => Ok(h),
                    o => Err(format!("(hits, packets) = {o:?}")),
                }
            },
        )
    }

    /// Wait until every rule has been evaluated, and after the first scrape
    /// (no rule's health is "unknown", `GatewatchSensorDown` is inactive),
    /// and return the rules.
    fn wait_rules_evaluated(&self) -> Vec<Value> {
        wait_for(
            "every shipped alert rule to be evaluated",
            Duration::from_secs(20),
            || {
                let body = match self.ns.http_get(&format!("{}/api/v1/rules", self.api)) {
                    Some((200, b)) => b,
                    o => return Err(format!("{o:?}")),
                };
                let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
                let rules: Vec<Value> = v["data"]["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                    .collect();
                // Evaluated, and evaluated after the first scrape.
                if rules.is_empty()
                    || rules.iter().any(|r| {
                        r["health"] == "unknown"
                            || (r["name"] == "GatewatchSensorDown" && r["state"] != "inactive")
                    })
                {
                    Err(body)
                } else {
                    Ok(rules)
                }
            },
        )
    }

    /// SIGTERM, and wait up to 10 s for it to exit.
    fn stop(&mut self) {
        self.proc.signal(libc::SIGTERM);
        self.proc.wait_timeout(Duration::from_secs(10));
    }
}

/// Every `gatewatch_hits_total` series carries non-empty feed, category,
/// severity and unit labels, and the units are those of replay's alerts.
fn assert_hit_labels(hits: &[Value], want: &BTreeMap<AlertKey, usize>) {
    assert!(!hits.is_empty());
    let mut units_seen = BTreeSet::new();
    for series in hits {
        let l = &series["metric"];
        for k in ["feed", "category", "severity", "unit"] {
            assert!(
                l[k].as_str().is_some_and(|v| !v.is_empty()),
                "gatewatch_hits_total lacks label {k}: {series}"
            );
        }
        units_seen.insert(l["unit"].as_str().unwrap().to_string());
    }
    let want_units: BTreeSet<String> = want.keys().map(|k| k.5.clone()).collect();
    assert_eq!(units_seen, want_units, "{hits:?}");
}

/// No label of any gatewatch series names a host: neither an address nor
/// a domain, nor any value from the alerts (instance and job are
/// Prometheus' target labels, not gatewatch's). There are more gatewatch
/// series than the `hit_series` of `gatewatch_hits_total`.
fn assert_no_label_names_a_host(
    prom: &Prometheus,
    hit_series: usize,
    want: &BTreeMap<AlertKey, usize>,
) {
    let hosts: BTreeSet<&str> = want
        .keys()
        .flat_map(|k| [k.0.as_str(), k.1.as_str(), k.3.as_str(), k.4.as_str()])
        .collect();
    let all = prom.query("{__name__=~\"gatewatch_.+\"}");
    assert!(all.len() > hit_series, "{all:?}");
    for series in &all {
        for (k, v) in series["metric"].as_object().unwrap() {
            if ["__name__", "instance", "job"].contains(&k.as_str()) {
                continue;
            }
            let v = v.as_str().unwrap_or_default();
            assert!(
                !names_a_host(v) && !hosts.contains(v),
                "label {k}={v:?} names a host: {series}"
            );
        }
    }
}

/// The shipped rules load and evaluate on the real series without error:
/// all 12 are healthy, and the sensor down, interface down, panic,
/// incomplete-history, snapshot-refused and snapshot-fetch alerts inactive.
fn assert_rules_healthy(rules: &[Value]) {
    assert_eq!(rules.len(), 12, "{rules:?}");
    for r in rules {
        assert_eq!(r["health"], "ok", "rule {} failed: {}", r["name"], r);
        let quiet = [
            "GatewatchSensorDown",
            "GatewatchInterfaceDown",
            "GatewatchPanicRecovered",
            "GatewatchHistoryIncomplete",
            "GatewatchSnapshotRefused",
            "GatewatchSnapshotFetchFailing",
        ];
        if quiet.contains(&r["name"].as_str().unwrap()) {
            assert_eq!(r["state"], "inactive", "{r}");
        }
    }
}

/// A real Prometheus scrapes a live gatewatch: hit counters arrive with the
/// feed/category/severity/unit labels, no label names a host, and the
/// shipped alert rules evaluate without error on the real series.
#[test]
fn prometheus_scrapes_live_sensor() {
    require_tool(
        "prometheus",
        "the Prometheus server is needed: apt-get install prometheus",
    );
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let feeds = root().join("samples/demo-feeds.toml");
    let units = root().join("feeds/units.csv");
    let files = DEMO_CAPTURES;
    let (want, want_lines) = alert_keys(&replay_alerts(dir.path(), &feeds, &units, &files));

    let ns = capture_ns();
    let port = 19478;
    let mut prom = Prometheus::spawn(&ns, dir.path(), port, 19090);
    let mut s = Sensor::start(&ns, dir.path(), port, &feeds, &units);
    prom.wait_ready();
    prom.wait_first_scrape();

    let sent = tcpreplay_all(&ns, dir.path(), &files);
    let m = wait_processed(&ns, &s, sent);
    assert_no_drops(&m, &s.logs());
    let written = metric_or_0(&m, "gatewatch_alerts_written_total");
    assert_eq!(written as usize, want_lines, "{m}");
    let total = prom.wait_every_hit(written, sent);
    let hits = prom.query("gatewatch_hits_total");
    assert_hit_labels(&hits, &want);
    assert_no_label_names_a_host(&prom, hits.len(), &want);
    assert_rules_healthy(&prom.wait_rules_evaluated());

    let scrapes = prom
        .scalar("count_over_time(up{job=\"gatewatch\"}[5m])")
        .unwrap_or(0.0);
    assert!(scrapes >= 2.0, "only {scrapes} scrape(s)");

    let (st, _) = s.terminate();
    assert!(st.success(), "gatewatch run exited with {st}{}", s.logs());
    prom.stop();
    eprintln!(
        "Prometheus saw {total} hits in {} series over {scrapes} scrapes; {:.1} s",
        hits.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The shipped Prometheus configuration and alert rules are valid and their
/// unit tests pass (what deploy/check.sh runs).
#[test]
fn promtool_accepts_deploy_files() {
    require_tool(
        "promtool",
        "promtool is needed to check deploy/prometheus: apt-get install prometheus",
    );
    for args in [
        &["check", "config", "deploy/prometheus/prometheus.yml"][..],
        &["check", "rules", "deploy/prometheus/alerts.yml"],
        &["test", "rules", "deploy/prometheus/alerts_test.yml"],
    ] {
        let o = run_ok(Command::new("promtool").current_dir(root()).args(args));
        assert!(text(&o).contains("SUCCESS"), "{args:?}: {}", text(&o));
    }
}

/// SIGTERM while tcpreplay is still sending: the sensor exits 0, and every hit
/// the workers matched is a complete JSON line in the alert log.
#[test]
fn sigterm_mid_stream_keeps_every_matched_hit() {
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let small = corpus("gateway-small");
    let ns = capture_ns();
    let mut s = Sensor::start(
        &ns,
        dir.path(),
        19479,
        &small.join("feeds.toml"),
        &small.join("units.csv"),
    );
    // 20 loops of 7,746 packets at 10,000 packets/s: about 15 s of traffic,
    // stopped after the first couple of seconds.
    let (mut replay, log) = tcpreplay(
        &ns,
        dir.path(),
        &["--pps", "10000", "--loop", "20"],
        &[SMALL_PCAP],
    );
    wait_for("some alerts", Duration::from_secs(20), || {
        let m = s.scrape(&ns);
        let n = metric_or_0(&m, "gatewatch_alerts_written_total");
        if n >= 300.0 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    });
    assert!(
        replay.try_status().is_none(),
        "tcpreplay finished before SIGTERM; the test did not stop the sensor mid-stream: {}",
        read(&log)
    );
    let (st, took) = s.terminate();
    let mid_stream = replay.try_status().is_none();
    replay.signal(libc::SIGKILL);
    assert!(st.success(), "gatewatch run exited with {st}{}", s.logs());
    assert!(mid_stream, "tcpreplay ended before gatewatch did");

    let out = read(&s.out);
    let (_, lines) = alert_keys(&s.alerts);
    let matched = stats_total_hits(&out);
    assert!(lines > 0);
    assert_eq!(
        matched,
        lines as u64,
        "the workers matched {matched} hits but the alert log has {lines} lines{}",
        s.logs()
    );
    assert_eq!(appended(&out), lines as u64, "{}", s.logs());
    eprintln!(
        "stopped mid-stream after {} packets: {lines} alerts = {matched} matched, queue_drops {}; exit {took:?} after SIGTERM; {:.1} s",
        stats_value(&out, "packets"),
        stats_value(&out, "queue_drops"),
        started.elapsed().as_secs_f64()
    );
}

/// SIGTERM the moment tcpreplay has sent a fast burst: frames the kernel
/// already received are still read, matched and logged (nothing in the
/// capture buffer is thrown away at shutdown).
#[test]
fn sigterm_right_after_burst_loses_nothing_received() {
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let small = corpus("gateway-small");
    let (feeds, units) = (small.join("feeds.toml"), small.join("units.csv"));
    let (want, want_lines) = alert_keys(&replay_alerts(dir.path(), &feeds, &units, &[SMALL_PCAP]));
    let expected = pcap_packets(&root().join(SMALL_PCAP));

    let ns = capture_ns();
    let mut s = Sensor::start(&ns, dir.path(), 19480, &feeds, &units);
    // About 0.3 s for the whole capture.
    let (mut burst, log) = tcpreplay(&ns, dir.path(), &["--mbps", "100"], &[SMALL_PCAP]);
    let st = burst
        .wait_timeout(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("tcpreplay did not finish: {}", read(&log)));
    let (code, took) = s.terminate();
    let sent_log = format!("{}{}", read(&log), read(&log.with_extension("err")));
    assert!(st.success(), "tcpreplay failed: {sent_log}");
    assert!(
        code.success(),
        "gatewatch run exited with {code}{}",
        s.logs()
    );
    let out = read(&s.out);
    assert_eq!(
        stats_value(&out, "packets"),
        expected,
        "packets sent before SIGTERM were not all processed (queue_drops {}){}",
        stats_value(&out, "queue_drops"),
        s.logs()
    );
    let (got, got_lines) = alert_keys(&s.alerts);
    assert_same_hits(&want, want_lines, &got, got_lines);
    eprintln!(
        "burst then SIGTERM: {expected} packets, {got_lines} alerts; exit {took:?} after SIGTERM; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
