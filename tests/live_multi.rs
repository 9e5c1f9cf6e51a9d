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
use std::collections::BTreeMap;
use std::path::Path;
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

/// What `gatewatch replay` finds in the traffic of each phase of the test.
struct Replayed {
    /// Replay of the real C2 capture and the gateway capture: what A and B
    /// get first.
    want: BTreeMap<AlertKey, usize>,
    want_lines: usize,
    /// Replay of the moved C2 flow ([`move_c2_client_port`]): what B gets
    /// after A is gone.
    want_after: BTreeMap<AlertKey, usize>,
    want_after_lines: usize,
    /// The path of the moved C2 capture.
    moved: String,
}

/// The C2 capture with the client port moved (49905 -> 49906), written to
/// `dir`; returns its path. An address hit is one alert per flow (5-tuple)
/// until the flow has been idle 5 minutes, so the unchanged capture, already
/// seen on A, would rightly raise no new alert on B.
fn move_c2_client_port(dir: &Path) -> String {
    let moved = dir.join("c2-client-port-49906.pcap");
    run_ok(
        Command::new("tcprewrite")
            .args(["--portmap=49905:49906", "--fixcsum"])
            .arg(format!("--infile={}", root().join(C2_PCAP).display()))
            .arg(format!("--outfile={}", moved.display())),
    );
    moved.to_str().unwrap().to_string()
}

/// Replay what A and B get first and what B gets after A is gone, and check
/// that both hold the real C2 hit.
fn replay_both_phases(dir: &Path, feeds: &Path, units: &Path) -> Replayed {
    let (want, want_lines) = alert_keys(&replay_alerts(dir, feeds, units, &[C2_PCAP, SMALL_PCAP]));
    assert!(
        want.keys().any(|k| k.1 == C2_ADDR && k.5 == "SO-TTTT"),
        "replay lacks the real C2 hit:\n{}",
        describe(&want)
    );
    let moved = move_c2_client_port(dir);
    let (want_after, want_after_lines) =
        alert_keys(&replay_alerts(dir, feeds, units, &[moved.as_str()]));
    assert!(
        want_after.keys().any(|k| k.1 == C2_ADDR),
        "replay of the moved C2 flow has no C2 hit:\n{}",
        describe(&want_after)
    );
    Replayed {
        want,
        want_lines,
        want_after,
        want_after_lines,
        moved,
    }
}

/// (a) Both at once: A's traffic is sent while B's is being captured.
/// (b) Counted per interface, both up, and replay's `want_lines` alerts
/// written. Returns the packets sent to A and to B.
fn capture_on_both_at_once(ns: &Netns, dir: &Path, s: &Sensor, want_lines: usize) -> (u64, u64) {
    let (mut replay_b, log_b) = tcpreplay_on(ns, dir, TX_B, &["--pps", PPS], &[SMALL_PCAP]);
    wait_for(
        "gwrxB to capture the first packets",
        Duration::from_secs(15),
        || {
            let n = metric_or_0(&s.scrape(ns), &capture_series("packets_total", RX_B));
            if n > 0.0 { Ok(()) } else { Err(format!("{n}")) }
        },
    );
    let sent_a = tcpreplay_all_on(ns, dir, TX_A, &[C2_PCAP]);
    assert!(
        replay_b.try_status().is_none(),
        "tcpreplay into {TX_B} ended before {TX_A}'s traffic was sent: the two were not captured at once"
    );
    let sent_b = tcpreplay_finish(replay_b, &log_b, &[SMALL_PCAP]);
    let m = wait_processed(ns, s, sent_a + sent_b);
    assert_no_drops_on(&m, &s.logs(), &[RX_A, RX_B]);
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
    (sent_a, sent_b)
}

/// The `/healthz` body while `gwrxA` is down.
fn down_body() -> String {
    format!("capture down on: {RX_A}\n")
}

/// (c) Pair A goes away (deleting one end deletes both): `gwrxA` is
/// reported down and `gwrxB` up within 5 s, and the loss is counted and
/// logged for A only. Returns how long the sensor took to notice.
fn lose_pair_a(ns: &Netns, s: &Sensor) -> Duration {
    let lost = Instant::now();
    ns.ip(&["link", "del", TX_A]);
    let down_body = down_body();
    wait_for(
        &format!("{RX_A} reported down and {RX_B} up"),
        Duration::from_secs(5),
        || match health_state(ns, s) {
            (Some((503, b)), Some(0.0), Some(1.0)) if b == down_body => Ok(()),
            other => Err(format!("(healthz, up A, up B) = {other:?}")),
        },
    );
    let noticed = lost.elapsed();
    let m = s.scrape(ns);
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
    noticed
}

/// B still captures and matches while A is gone (and being retried): the
/// moved C2 flow sent into B is counted on B only and raises replay's
/// alerts, and `/healthz` still reports A down. Returns the packets sent.
fn b_captures_after_the_loss(
    ns: &Netns,
    dir: &Path,
    s: &Sensor,
    r: &Replayed,
    sent_a: u64,
    sent_b: u64,
) -> u64 {
    let sent_after = tcpreplay_all_on(ns, dir, TX_B, &[r.moved.as_str()]);
    let m = wait_processed(ns, s, sent_a + sent_b + sent_after);
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
        r.want_lines + r.want_after_lines,
        "no new alert for {RX_B}'s traffic after {RX_A} went away:\n{m}{}",
        s.logs()
    );
    assert_eq!(
        health_state(ns, s),
        (Some((503, down_body())), Some(0.0), Some(1.0)),
        "{}",
        s.logs()
    );
    sent_after
}

/// (d) SIGTERM: exit 0 within 5 s, both interfaces in the capture summary
/// with what was sent to them (`on_a`, `on_b`). Returns how long the exit
/// took and the `--stats` output.
fn terminate_with_both_in_summary(s: &mut Sensor, on_a: u64, on_b: u64) -> (Duration, String) {
    let total = on_a + on_b;
    let (st, took) = s.terminate();
    assert!(st.success(), "gatewatch run exited with {st}{}", s.logs());
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} with {RX_A} gone"
    );
    let out = read(&s.out);
    assert_eq!(capture_row(&out, RX_A), (on_a, 0, 0), "{}", s.logs());
    assert_eq!(capture_row(&out, RX_B), (on_b, 0, 0), "{}", s.logs());
    assert_eq!(
        capture_line(&out),
        format!("capture: {total} received, 0 dropped by kernel, 0 by interface, 0 at queues"),
        "{}",
        s.logs()
    );
    assert_eq!(stats_value(&out, "packets"), total, "{}", s.logs());
    (took, out)
}

/// The alerts before the loss are replay's of both captures; those after
/// it are replay's of the moved C2 flow; `--stats` (`out`) counts them all.
/// Returns the alert lines of each part.
fn assert_alerts_of_each_phase(s: &Sensor, r: &Replayed, out: &str) -> (usize, usize) {
    let (got, got_lines) = alert_keys_in(&s.alerts, 0..r.want_lines);
    assert_same_hits(&r.want, r.want_lines, &got, got_lines);
    let (got_after, got_after_lines) = alert_keys_in(&s.alerts, r.want_lines..usize::MAX);
    assert_same_hits(
        &r.want_after,
        r.want_after_lines,
        &got_after,
        got_after_lines,
    );
    assert_eq!(
        appended(out),
        (r.want_lines + r.want_after_lines) as u64,
        "{}",
        s.logs()
    );
    (got_lines, got_after_lines)
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
    let r = replay_both_phases(dir.path(), &feeds, &units);

    let ns = two_link_ns();
    let mut s =
        Sensor::spawn_on(&ns, dir.path(), 19485, &feeds, &units, &[RX_A, RX_B]).healthy(&ns);
    assert_eq!(healthz(&ns, &s), Some((200, "ok\n".into())), "{}", s.logs());

    let (sent_a, sent_b) = capture_on_both_at_once(&ns, dir.path(), &s, r.want_lines);
    let noticed = lose_pair_a(&ns, &s);
    let sent_after = b_captures_after_the_loss(&ns, dir.path(), &s, &r, sent_a, sent_b);
    let (took, out) = terminate_with_both_in_summary(&mut s, sent_a, sent_b + sent_after);
    let (got_lines, got_after_lines) = assert_alerts_of_each_phase(&s, &r, &out);
    eprintln!(
        "{RX_A} + {RX_B}: {sent_a} + {sent_b} packets, {got_lines} alerts == replay; {RX_A} deleted, \
         reported down after {noticed:?}; {RX_B} then {sent_after} packets, {got_after_lines} new alert(s); \
         exit {took:?} after SIGTERM; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
