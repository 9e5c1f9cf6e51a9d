//! `gatewatch run` on several interfaces at once (issue 3: "`--interface`
//! ... several interfaces at once"; "an interface that goes away while
//! running: logged, counted, retried with back-off; the other interfaces keep
//! capturing").
//!
//! One network namespace holds two veth pairs on private networks, MTU 9000,
//! IPv6 off: `gwtxA` 10.254.254.1/30 <-> `gwrxA` .2, and `gwtxB`
//! 10.254.254.5/30 <-> `gwrxB` .6. gatewatch captures on `gwrxA` and
//! `gwrxB`; tcpreplay sends real captures into `gwtxA` and `gwtxB`. The test
//! takes the traffic-test lock (see `serial()` in
//! `gatewatch::testkit::live`).
//!
//! Needs root, iproute2, tcpreplay (with tcprewrite) and curl; where any of
//! that is missing the test fails and says so, it never skips.

use gatewatch::testkit::live::*;
use gatewatch::testkit::{root, wait_for};
use std::process::Command;
use std::time::{Duration, Instant};

const TX_A: &str = "gwtxA";
const RX_A: &str = "gwrxA";
const TX_B: &str = "gwtxB";
const RX_B: &str = "gwrxB";

/// A namespace with both veth pairs up.
fn two_link_ns() -> Netns {
    require_traffic_tools();
    let ns = Netns::new();
    ns.veth_addrs(
        TX_A,
        RX_A,
        MTU,
        Some(("10.254.254.1/30", "10.254.254.2/30")),
    );
    ns.veth_addrs(
        TX_B,
        RX_B,
        MTU,
        Some(("10.254.254.5/30", "10.254.254.6/30")),
    );
    ns
}

/// `/healthz` and the `gatewatch_capture_up` of both interfaces, for
/// failure messages.
fn health_state(ns: &Netns, s: &Sensor) -> (Option<(u16, String)>, Option<f64>, Option<f64>) {
    let m = s.scrape(ns);
    (
        healthz(ns, s),
        metric(&m, &capture_series("up", RX_A)),
        metric(&m, &capture_series("up", RX_B)),
    )
}

/// Capture on `gwrxA` and `gwrxB` at once: traffic sent into each is
/// captured, counted per interface and matched exactly as `gatewatch replay`
/// matches the same captures. Then pair A is deleted under the running
/// sensor: within seconds `gwrxA` is reported down (`capture_up` 0,
/// `/healthz` 503 naming it and only it), the loss is logged and counted,
/// and `gwrxB` keeps capturing and matching. SIGTERM exits 0 with both
/// interfaces in the capture summary.
#[test]
fn several_interfaces_capture_at_once_and_survive_losing_one() {
    require_tool("tcprewrite", "apt-get install tcpreplay");
    let _serial = serial();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (feeds, units) = combined_config(dir.path());

    // What A and B get first: the real C2 capture and the gateway capture.
    let (want, want_lines) = alert_keys(&replay_alerts(
        dir.path(),
        &feeds,
        &units,
        &[C2_PCAP, SMALL_PCAP],
    ));
    assert!(
        want.keys().any(|k| k.1 == C2_ADDR && k.5 == "SO-TTTT"),
        "replay lacks the real C2 hit:\n{}",
        describe(&want)
    );
    // What B gets after A is gone: the C2 capture again, with the client
    // port moved (49905 -> 49906). An address hit is one alert per flow
    // (5-tuple) until the flow has been idle 5 minutes, so the unchanged
    // capture, already seen on A, would rightly raise no new alert.
    let moved = dir.path().join("c2-client-port-49906.pcap");
    run_ok(
        Command::new("tcprewrite")
            .args(["--portmap=49905:49906", "--fixcsum"])
            .arg(format!("--infile={}", root().join(C2_PCAP).display()))
            .arg(format!("--outfile={}", moved.display())),
    );
    let moved = moved.to_str().unwrap();
    let (want_after, want_after_lines) =
        alert_keys(&replay_alerts(dir.path(), &feeds, &units, &[moved]));
    assert!(
        want_after.keys().any(|k| k.1 == C2_ADDR),
        "replay of the moved C2 flow has no C2 hit:\n{}",
        describe(&want_after)
    );

    let ns = two_link_ns();
    let mut s =
        Sensor::spawn_on(&ns, dir.path(), 19485, &feeds, &units, &[RX_A, RX_B]).healthy(&ns);
    assert_eq!(healthz(&ns, &s), Some((200, "ok\n".into())), "{}", s.logs());

    // (a) Both at once: A's traffic is sent while B's is being captured.
    let (mut replay_b, log_b) = tcpreplay_on(&ns, dir.path(), TX_B, &["--pps", PPS], &[SMALL_PCAP]);
    wait_for(
        "gwrxB to capture the first packets",
        Duration::from_secs(15),
        || {
            let n = metric_or_0(&s.scrape(&ns), &capture_series("packets_total", RX_B));
            if n > 0.0 { Ok(()) } else { Err(format!("{n}")) }
        },
    );
    let sent_a = tcpreplay_all_on(&ns, dir.path(), TX_A, &[C2_PCAP]);
    assert!(
        replay_b.try_status().is_none(),
        "tcpreplay into {TX_B} ended before {TX_A}'s traffic was sent: the two were not captured at once"
    );
    let sent_b = tcpreplay_finish(replay_b, &log_b, &[SMALL_PCAP]);
    let m = wait_processed(&ns, &s, sent_a + sent_b);
    assert_no_drops_on(&m, &s.logs(), &[RX_A, RX_B]);
    // (b) Counted per interface; both up.
    for (iface, sent) in [(RX_A, sent_a), (RX_B, sent_b)] {
        assert_eq!(
            metric(&m, &capture_series("packets_total", iface)),
            Some(sent as f64),
            "{iface} captured other packets than were sent to it:\n{m}"
        );
        assert_eq!(metric(&m, &capture_series("up", iface)), Some(1.0), "{m}");
    }
    assert_eq!(
        metric_or_0(&m, "gatewatch_alerts_written_total") as usize,
        want_lines,
        "{m}"
    );

    // (c) Pair A goes away (deleting one end deletes both).
    let lost = Instant::now();
    ns.ip(&["link", "del", TX_A]);
    let down_body = format!("capture down on: {RX_A}\n");
    wait_for(
        &format!("{RX_A} reported down and {RX_B} up"),
        Duration::from_secs(5),
        || match health_state(&ns, &s) {
            (Some((503, b)), Some(0.0), Some(1.0)) if b == down_body => Ok(()),
            other => Err(format!("(healthz, up A, up B) = {other:?}")),
        },
    );
    let noticed = lost.elapsed();
    let m = s.scrape(&ns);
    assert!(
        metric_or_0(&m, &capture_series("errors_total", RX_A)) >= 1.0,
        "the loss of {RX_A} is not counted:\n{m}"
    );
    assert_eq!(
        metric(&m, &capture_series("errors_total", RX_B)),
        Some(0.0),
        "{m}"
    );
    let err = read(&s.err);
    assert!(
        err.contains(&format!("interface \"{RX_A}\": ")),
        "the loss of {RX_A} is not logged{}",
        s.logs()
    );
    assert!(
        !err.contains(&format!("interface \"{RX_B}\": ")),
        "{RX_B} reported a problem{}",
        s.logs()
    );

    // B still captures and matches while A is gone (and being retried).
    let sent_after = tcpreplay_all_on(&ns, dir.path(), TX_B, &[moved]);
    let total = sent_a + sent_b + sent_after;
    let m = wait_processed(&ns, &s, total);
    assert_eq!(
        metric(&m, &capture_series("packets_total", RX_B)),
        Some((sent_b + sent_after) as f64),
        "{m}"
    );
    assert_eq!(
        metric(&m, &capture_series("packets_total", RX_A)),
        Some(sent_a as f64),
        "{m}"
    );
    assert_eq!(
        metric_or_0(&m, "gatewatch_alerts_written_total") as usize,
        want_lines + want_after_lines,
        "no new alert for {RX_B}'s traffic after {RX_A} went away:\n{m}{}",
        s.logs()
    );
    assert_eq!(
        health_state(&ns, &s),
        (Some((503, down_body.clone())), Some(0.0), Some(1.0)),
        "{}",
        s.logs()
    );

    // (d) SIGTERM: exit 0, both interfaces in the summary.
    let (st, took) = s.terminate();
    assert!(st.success(), "gatewatch run exited with {st}{}", s.logs());
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} with {RX_A} gone"
    );
    let out = read(&s.out);
    assert_eq!(capture_row(&out, RX_A), (sent_a, 0, 0), "{}", s.logs());
    assert_eq!(
        capture_row(&out, RX_B),
        (sent_b + sent_after, 0, 0),
        "{}",
        s.logs()
    );
    assert_eq!(
        capture_line(&out),
        format!("capture: {total} received, 0 dropped by kernel, 0 by interface, 0 at queues"),
        "{}",
        s.logs()
    );
    assert_eq!(stats_value(&out, "packets"), total, "{}", s.logs());

    // The alerts before the loss are replay's of both captures; those after
    // it are replay's of the moved C2 flow.
    let (got, got_lines) = alert_keys_in(&s.alerts, 0..want_lines);
    assert_same_hits(&want, want_lines, &got, got_lines);
    let (got_after, got_after_lines) = alert_keys_in(&s.alerts, want_lines..usize::MAX);
    assert_same_hits(&want_after, want_after_lines, &got_after, got_after_lines);
    assert_eq!(
        appended(&out),
        (want_lines + want_after_lines) as u64,
        "{}",
        s.logs()
    );
    eprintln!(
        "{RX_A} + {RX_B}: {sent_a} + {sent_b} packets, {got_lines} alerts == replay; {RX_A} deleted, \
         reported down after {noticed:?}; {RX_B} then {sent_after} packets, {got_after_lines} new alert(s); \
         exit {took:?} after SIGTERM; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
