//! Helpers for the live-capture tests (`tests/live.rs`): the sensor under
//! test, tcpreplay, alert logs, metrics and `--stats` output.

#![allow(dead_code)]

use crate::netns::{Netns, Proc, require_tool, wait_for};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Sending end and capturing end of the veth pair in every namespace.
pub const TX: &str = "gwtx0";
pub const RX: &str = "gwrx0";
/// Large enough for every frame in the captures used here.
pub const MTU: u32 = 9000;
/// A moderate rate at which the sensor must not drop anything.
pub const PPS: &str = "2000";

pub const C2_PCAP: &str = "tests/corpus/suricata-verify/TLSv1-Extracted-MaliciousC2.pcap";
pub const SMALL_PCAP: &str = "tests/corpus/gateway-small/traffic.pcap";
pub const SYNTH_PCAP: &str = "samples/gateway-synthetic.pcap";
pub const SAMPLE_C2_PCAP: &str = "samples/c2-tls-clienthello.pcap";
/// The real C2 address in the TLS capture, listed in the shipped Feodo feed.
pub const C2_ADDR: &str = "91.254.215.167";

/// The traffic tests run one at a time: tcpreplay's pacing keeps a core busy,
/// and two of them at once on a 2-core machine would measure the machine,
/// not the sensor.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn gatewatch() -> &'static str {
    env!("CARGO_BIN_EXE_gatewatch")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A namespace with the veth pair up, ready for capture and replay.
pub fn capture_ns() -> Netns {
    require_tool("tcpreplay", "apt-get install tcpreplay");
    require_tool("curl", "apt-get install curl");
    let ns = Netns::new();
    ns.veth(TX, RX, MTU, true);
    ns
}

/// Records in a classic pcap file (either byte order, micro or nano).
pub fn pcap_packets(path: &Path) -> u64 {
    let b = std::fs::read(path).unwrap();
    let le = match &b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        m => panic!("{}: not a classic pcap (magic {m:02x?})", path.display()),
    };
    let u32_at = |o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    assert_eq!(u32_at(20), 1, "{}: not Ethernet", path.display());
    let (mut off, mut n) = (24usize, 0u64);
    while off + 16 <= b.len() {
        off += 16 + u32_at(off + 8) as usize;
        n += 1;
    }
    assert_eq!(off, b.len(), "{}: truncated", path.display());
    n
}

/// What an alert is about, without its timestamp (live alerts carry the
/// capture time, replayed ones the file's).
pub type AlertKey = (String, String, u64, String, String, String);

/// Every line of an alert log as JSON (the test fails on a line that is not,
/// e.g. a truncated last line), counted per key.
pub fn alert_keys(path: &Path) -> (BTreeMap<AlertKey, usize>, usize) {
    let log = read(path);
    assert!(
        log.is_empty() || log.ends_with('\n'),
        "{}: the last alert line is not terminated: {:?}",
        path.display(),
        log.lines().last()
    );
    let mut keys = BTreeMap::new();
    let mut n = 0;
    for (i, line) in log.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "{}:{}: not a JSON alert ({e}): {line:?}",
                path.display(),
                i + 1
            )
        });
        assert_eq!(v["event_type"], "alert", "{line}");
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("alert lacks {k}: {line}"))
                .to_string()
        };
        let key = (
            s("src_ip"),
            s("dest_ip"),
            v["dest_port"].as_u64().unwrap_or(0),
            s("indicator"),
            s("host_ip"),
            s("unit"),
        );
        *keys.entry(key).or_insert(0) += 1;
        n += 1;
    }
    (keys, n)
}

/// `gatewatch replay` of `files` with the given feeds and units: its alert log.
pub fn replay_alerts(dir: &Path, feeds: &Path, units: &Path, files: &[&str]) -> PathBuf {
    let alerts = dir.join("replay.jsonl");
    let o = Command::new(gatewatch())
        .current_dir(root())
        .args(["replay", "--feeds"])
        .arg(feeds)
        .arg("--units")
        .arg(units)
        .arg("--alerts")
        .arg(&alerts)
        .args(files)
        .output()
        .unwrap();
    assert!(o.status.success(), "replay failed: {}", text(&o));
    alerts
}

/// A `gatewatch run` inside a namespace, stdout and stderr in files.
pub struct Sensor {
    pub proc: Proc,
    pub port: u16,
    pub alerts: PathBuf,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Sensor {
    /// Start on `RX` with 2 workers and `--stats`, and wait until it captures
    /// and answers `/healthz` with 200 "ok".
    pub fn start(ns: &Netns, dir: &Path, port: u16, feeds: &Path, units: &Path) -> Sensor {
        let s = Sensor::spawn(ns, dir, port, feeds, units);
        let url = format!("http://127.0.0.1:{port}/healthz");
        wait_for(
            "/healthz to answer 200",
            Duration::from_secs(10),
            || match ns.http_get(&url) {
                Some((200, body)) if body.trim() == "ok" => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        s
    }

    /// Start on `RX` as [`Sensor::start`] does, but return as soon as it logs
    /// that it captures, whatever `/healthz` says.
    pub fn spawn(ns: &Netns, dir: &Path, port: u16, feeds: &Path, units: &Path) -> Sensor {
        let alerts = dir.join("live.jsonl");
        let out = dir.join("run.stdout");
        let err = dir.join("run.stderr");
        let proc = Proc::spawn(
            "gatewatch run",
            ns.cmd(gatewatch())
                .current_dir(root())
                .args(["run", "--stats", "--workers", "2", "--interface", RX])
                .arg("--metrics-listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--feeds")
                .arg(feeds)
                .arg("--units")
                .arg(units)
                .arg("--alerts")
                .arg(&alerts)
                .stdout(File::create(&out).unwrap())
                .stderr(File::create(&err).unwrap()),
        );
        let mut s = Sensor {
            proc,
            port,
            alerts,
            out,
            err,
        };
        wait_for(
            "gatewatch to log \"capturing on\"",
            Duration::from_secs(30),
            || {
                if let Some(st) = s.proc.try_status() {
                    panic!("gatewatch run exited at start ({st}): {}", s.logs());
                }
                let e = read(&s.err);
                if e.contains(&format!("capturing on \"{RX}\"")) {
                    Ok(())
                } else {
                    Err(e)
                }
            },
        );
        s
    }

    pub fn logs(&self) -> String {
        format!(
            "\n--- stdout ---\n{}\n--- stderr ---\n{}",
            read(&self.out),
            read(&self.err)
        )
    }

    pub fn scrape(&self, ns: &Netns) -> String {
        match ns.http_get(&format!("http://127.0.0.1:{}/metrics", self.port)) {
            Some((200, body)) => body,
            other => panic!("/metrics did not answer: {other:?}{}", self.logs()),
        }
    }

    /// SIGTERM, then the exit status (the test fails if it takes over 20 s).
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        self.proc.signal(libc::SIGTERM);
        let st = self
            .proc
            .wait_timeout(Duration::from_secs(20))
            .unwrap_or_else(|| {
                panic!(
                    "gatewatch run still running 20 s after SIGTERM{}",
                    self.logs()
                )
            });
        (st, t.elapsed())
    }
}

/// The value of one series (`name` or `name{labels}` exactly as rendered).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

pub fn metric_or_0(text: &str, series: &str) -> f64 {
    metric(text, series).unwrap_or(0.0)
}

/// The count after `label` in `gatewatch run --stats` output.
pub fn stats_value(out: &str, label: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(label)).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {label:?} in the --stats output:\n{out}"))
}

/// Hits matched by the workers: `total` under `hits by source:`.
pub fn stats_total_hits(out: &str) -> u64 {
    let after = out
        .split_once("hits by source:")
        .unwrap_or_else(|| panic!("no hit counters in the --stats output:\n{out}"))
        .1;
    stats_value(after, "total")
}

/// N in "N alert(s) appended to FILE".
pub fn appended(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.split_once(" alert(s) appended to "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no \"alert(s) appended\" summary:\n{out}"))
}

/// The one-line capture summary printed at shutdown ("capture: ...").
pub fn capture_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("capture: "))
        .unwrap_or_else(|| panic!("no \"capture: \" summary line:\n{out}"))
        .to_string()
}

/// (received, kernel_dropped, interface_dropped) of `iface` in the
/// "capture by interface:" table of `--stats`.
pub fn capture_row(out: &str, iface: &str) -> (u64, u64, u64) {
    let table = out
        .split_once("capture by interface:")
        .unwrap_or_else(|| panic!("no per-interface capture table in the --stats output:\n{out}"))
        .1;
    let row: Vec<u64> = table
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(iface)).then(|| w.map(|v| v.parse().unwrap()).collect())
        })
        .unwrap_or_else(|| panic!("no row for {iface} in the capture table:\n{out}"));
    assert_eq!(row.len(), 3, "{out}");
    (row[0], row[1], row[2])
}

/// How many times `needle` occurs in `hay`.
pub fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// Start tcpreplay on `TX` (in the background).
pub fn tcpreplay(ns: &Netns, dir: &Path, args: &[&str], files: &[&str]) -> (Proc, PathBuf) {
    let log = dir.join("tcpreplay.log");
    let p = Proc::spawn(
        "tcpreplay",
        ns.cmd("tcpreplay")
            .current_dir(root())
            .args(["--intf1", TX])
            .args(args)
            .args(files)
            .stdout(File::create(&log).unwrap())
            .stderr(Stdio::from(
                File::create(dir.join("tcpreplay.err")).unwrap(),
            )),
    );
    (p, log)
}

/// Run tcpreplay to the end and check every packet of `files` went out.
pub fn tcpreplay_all(ns: &Netns, dir: &Path, files: &[&str]) -> u64 {
    let expected: u64 = files.iter().map(|f| pcap_packets(&root().join(f))).sum();
    let (mut p, log) = tcpreplay(ns, dir, &["--pps", PPS], files);
    let secs = expected / PPS.parse::<u64>().unwrap() + 30;
    let st = p
        .wait_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|| panic!("tcpreplay did not finish in {secs} s: {}", read(&log)));
    let out = format!("{}{}", read(&log), read(&dir.join("tcpreplay.err")));
    assert!(st.success(), "tcpreplay failed ({st}):\n{out}");
    let sent = stats_value(
        &out.replace("Successful packets:", "Successful_packets:"),
        "Successful_packets:",
    );
    assert_eq!(
        sent, expected,
        "tcpreplay did not send every packet of {files:?}:\n{out}"
    );
    sent
}

/// Wait until the workers have processed `n` packets.
pub fn wait_processed(ns: &Netns, s: &Sensor, n: u64) -> String {
    wait_for(
        &format!("gatewatch to process {n} packets"),
        Duration::from_secs(15),
        || {
            let m = s.scrape(ns);
            let done = metric_or_0(&m, "gatewatch_packets_total") as u64;
            let sink = metric_or_0(&m, "gatewatch_alerts_written_total");
            // One more scrape so the sink has caught up with the workers.
            if done >= n {
                std::thread::sleep(Duration::from_millis(300));
                let m2 = s.scrape(ns);
                if metric_or_0(&m2, "gatewatch_alerts_written_total") == sink {
                    return Ok(m2);
                }
            }
            Err(m
                .lines()
                .filter(|l| l.starts_with("gatewatch_"))
                .collect::<Vec<_>>()
                .join("\n"))
        },
    )
}

/// The three drop counters must exist and be 0.
pub fn assert_no_drops(m: &str, logs: &str) {
    for stage in ["kernel", "interface", "queue"] {
        let series = format!("gatewatch_drops_total{{stage=\"{stage}\"}}");
        assert_eq!(
            metric(m, &series),
            Some(0.0),
            "{series} is not 0 at {PPS} packets/s:\n{m}{logs}"
        );
    }
    assert_eq!(
        metric(
            m,
            &format!("gatewatch_capture_errors_total{{interface=\"{RX}\"}}")
        ),
        Some(0.0),
        "{m}"
    );
}

/// Feeds and units that cover both the real C2 capture (shipped Feodo list,
/// unit SO-TTTT) and the synthetic gateway capture (its generated feeds and
/// 40 units), with absolute paths.
pub fn combined_config(dir: &Path) -> (PathBuf, PathBuf) {
    let r = root();
    let small = r.join("tests/corpus/gateway-small");
    let mut feeds = String::new();
    for (name, path, cat, sev) in [
        (
            "abuse-ch-feodo-ipblocklist",
            r.join("feeds/abuse-ch-ipblocklist.txt"),
            "botnet-c2",
            "high",
        ),
        (
            "gen-domains",
            small.join("feeds/domains.txt"),
            "malware",
            "high",
        ),
        ("gen-ips", small.join("feeds/ips.txt"), "botnet-c2", "high"),
        (
            "gen-cidrs",
            small.join("feeds/cidrs.txt"),
            "botnet-c2",
            "medium",
        ),
        (
            "gen-urls",
            small.join("feeds/urls.txt"),
            "malware-download",
            "high",
        ),
    ] {
        let entry_type = match name {
            "gen-domains" => "domain",
            "gen-urls" => "url",
            "abuse-ch-feodo-ipblocklist" => "auto",
            _ => "ip",
        };
        feeds.push_str(&format!(
            "[[feed]]\nname = \"{name}\"\npath = \"{}\"\nformat = \"plain\"\nentry_type = \"{entry_type}\"\ncategory = \"{cat}\"\nseverity = \"{sev}\"\n\n",
            path.display()
        ));
    }
    let f = dir.join("feeds.toml");
    std::fs::write(&f, feeds).unwrap();
    let mut units = read(&small.join("units.csv"));
    if !units.ends_with('\n') {
        units.push('\n');
    }
    units.push_str("SO-TTTT,\"Sở Thông tin và Truyền thông\",192.168.46.0/24\n");
    let u = dir.join("units.csv");
    std::fs::write(&u, units).unwrap();
    (f, u)
}

pub fn describe(keys: &BTreeMap<AlertKey, usize>) -> String {
    keys.iter()
        .map(|(k, n)| format!("  {k:?} x{n}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The live alert log has the same hits as the replayed one, line for line.
pub fn assert_same_hits(
    want: &BTreeMap<AlertKey, usize>,
    want_lines: usize,
    got: &BTreeMap<AlertKey, usize>,
    got_lines: usize,
) {
    let only = |a: &BTreeMap<AlertKey, usize>, b: &BTreeMap<AlertKey, usize>| {
        a.iter()
            .filter(|(k, _)| !b.contains_key(*k))
            .map(|(k, v)| (k.clone(), *v))
            .collect::<BTreeMap<_, _>>()
    };
    let (missing, extra) = (only(want, got), only(got, want));
    assert!(
        missing.is_empty() && extra.is_empty(),
        "live and replay differ: {} hit(s) only in replay:\n{}\n{} hit(s) only live:\n{}",
        missing.len(),
        describe(&missing),
        extra.len(),
        describe(&extra)
    );
    let counts: Vec<String> = want
        .iter()
        .filter(|(k, n)| got[*k] != **n)
        .map(|(k, n)| format!("  {k:?}: replay x{n}, live x{}", got[k]))
        .collect();
    assert!(
        counts.is_empty() && got_lines == want_lines,
        "same hits, but {got_lines} alert lines live and {want_lines} in replay:\n{}",
        counts.join("\n")
    );
}

pub fn healthz(ns: &Netns, s: &Sensor) -> Option<(u16, String)> {
    ns.http_get(&format!("http://127.0.0.1:{}/healthz", s.port))
}

/// Wait until `/healthz` answers `code` with a body containing `body`, and
/// `gatewatch_capture_up` for the interface is `up`.
pub fn wait_health(ns: &Netns, s: &Sensor, code: u16, body: &str, up: f64) {
    wait_for(
        &format!("/healthz {code} {body:?} and capture_up {up}"),
        Duration::from_secs(10),
        || {
            let h = healthz(ns, s);
            let m = s.scrape(ns);
            let u = metric(&m, &format!("gatewatch_capture_up{{interface=\"{RX}\"}}"));
            match &h {
                Some((c, b)) if *c == code && b.contains(body) && u == Some(up) => Ok(()),
                _ => Err(format!("healthz {h:?}, capture_up {u:?}")),
            }
        },
    );
}

/// Run `gatewatch run ARGS` (in `ns` if given) and return its output; fail if
/// it is still running after 30 s.
pub fn run_expecting_exit(ns: Option<&Netns>, dir: &Path, args: &[&str]) -> (ExitStatus, String) {
    let mut cmd = match ns {
        Some(ns) => ns.cmd(gatewatch()),
        None => Command::new(gatewatch()),
    };
    let out = dir.join("err.out");
    cmd.current_dir(root()).arg("run").args(args);
    // The alert log in `dir` unless the caller names one.
    if !args.contains(&"--alerts") {
        cmd.arg("--alerts").arg(dir.join("alerts.jsonl"));
    }
    let mut p = Proc::spawn(
        "gatewatch run",
        cmd.stdout(File::create(&out).unwrap())
            .stderr(File::create(dir.join("err.err")).unwrap()),
    );
    let st = p.wait_timeout(Duration::from_secs(30));
    let text = format!("{}{}", read(&out), read(&dir.join("err.err")));
    let st = st.unwrap_or_else(|| panic!("gatewatch run {args:?} did not exit:\n{text}"));
    (st, text)
}
