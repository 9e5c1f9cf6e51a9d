//! The sensor under test, the lock that runs traffic tests one at a time,
//! tcpreplay, and waiting on `/metrics` and `/healthz`.

use super::netns::{Netns, Proc, require_tool};
use super::results::{capture_series, metric, metric_or_0, pcap_packets, read, stats_value};
use crate::testkit::{bin, bin_path, root, wait_for};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Sending end and capturing end of the veth pair in every namespace.
pub const TX: &str = "gwtx0";
pub const RX: &str = "gwrx0";
/// Large enough for every frame in the captures used here.
pub const MTU: u32 = 9000;
/// A moderate rate at which the sensor must not drop anything.
pub const PPS: &str = "2000";

/// Captures the live tests send, relative to the root of the checkout (and
/// [`DEMO_CAPTURES`](crate::testkit::DEMO_CAPTURES)): a real TLS C2
/// session, and the generated gateway capture of the corpus.
pub const C2_PCAP: &str = "tests/corpus/suricata-verify/TLSv1-Extracted-MaliciousC2.pcap";
pub const SMALL_PCAP: &str = "tests/corpus/gateway-small/traffic.pcap";
/// The real C2 address in the TLS capture, listed in the shipped Feodo feed.
pub const C2_ADDR: &str = "91.254.215.167";

/// How long a traffic test waits for the others before it fails.
const SERIAL_WAIT: Duration = Duration::from_secs(600);

/// Held while a traffic test runs; see [`serial`]. Dropping it (also when
/// the test panics) releases the lock, and so does the kernel when the test
/// process dies.
pub struct Serial {
    /// Held for its lock only: closing it releases the lock.
    _lock: File,
}

/// Wait for, then hold, the traffic-test lock.
///
/// The traffic tests run one at a time: tcpreplay's pacing keeps a core busy,
/// and two of them at once on a 2-core machine would measure the machine,
/// not the sensor. They are spread over several test binaries
/// (`tests/live*.rs`) and a binary runs its tests on parallel threads;
/// `cargo test` runs the binaries one after the other, but `cargo nextest`
/// (a process per test) or two test runs on one machine do not. So the lock
/// is an exclusive `flock(2)` on one file in the temporary directory, which
/// excludes other threads (each call opens its own file description) and
/// other processes alike. (`$TMPDIR`, else `/tmp`: runs with different
/// `TMPDIR`s do not see each other.)
pub fn serial() -> Serial {
    let path = std::env::temp_dir().join("gatewatch-live-traffic-tests.lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open the test lock {}: {e}", path.display()));
    let start = Instant::now();
    loop {
        // SAFETY: flock(2) on a descriptor `f` owns for the whole call.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Serial { _lock: f };
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => {}
            _ => panic!("cannot lock {}: {e}", path.display()),
        }
        assert!(
            start.elapsed() < SERIAL_WAIT,
            "waited {SERIAL_WAIT:?} for the traffic-test lock {}: another live test holds it \
             (`fuser -v {}` names the process)",
            path.display(),
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fail the test unless tcpreplay and curl can be run: every test that
/// sends traffic and reads `/metrics` needs both.
pub fn require_traffic_tools() {
    require_tool("tcpreplay", "apt-get install tcpreplay");
    require_tool("curl", "apt-get install curl");
}

/// A namespace with the veth pair up, ready for capture and replay.
pub fn capture_ns() -> Netns {
    require_traffic_tools();
    let ns = Netns::new();
    ns.veth(TX, RX, MTU, true);
    ns
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
        Sensor::spawn(ns, dir, port, feeds, units).healthy(ns)
    }

    /// Wait until the sensor answers `/healthz` with 200 "ok" (every
    /// interface captures), and hand it back.
    pub fn healthy(self, ns: &Netns) -> Sensor {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        wait_for(
            "/healthz to answer 200",
            Duration::from_secs(10),
            || match ns.http_get(&url) {
                Some((200, body)) if body.trim() == "ok" => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        self
    }

    /// Start on `RX` as [`Sensor::start`] does, but return as soon as it logs
    /// that it captures, whatever `/healthz` says.
    pub fn spawn(ns: &Netns, dir: &Path, port: u16, feeds: &Path, units: &Path) -> Sensor {
        Sensor::spawn_on(ns, dir, port, feeds, units, &[RX])
    }

    /// As [`Sensor::spawn`], with `--interface` for every one of `ifaces`;
    /// returns once it logs that it captures on each.
    pub fn spawn_on(
        ns: &Netns,
        dir: &Path,
        port: u16,
        feeds: &Path,
        units: &Path,
        ifaces: &[&str],
    ) -> Sensor {
        let conf = (feeds, units);
        Sensor::spawn_with(ns, dir, port, conf, ifaces, &["--workers", "2"])
    }

    /// As [`Sensor::spawn_on`], with `extra` arguments instead of
    /// `--workers 2` (none: the default worker count).
    pub fn spawn_with(
        ns: &Netns,
        dir: &Path,
        port: u16,
        (feeds, units): (&Path, &Path),
        ifaces: &[&str],
        extra: &[&str],
    ) -> Sensor {
        let alerts = dir.join("live.jsonl");
        let out = dir.join("run.stdout");
        let err = dir.join("run.stderr");
        let mut cmd = ns.cmd(bin_path());
        cmd.current_dir(root())
            .args(["run", "--stats", "--summary-interval", "0"])
            .args(extra);
        for i in ifaces {
            cmd.args(["--interface", i]);
        }
        let proc = Proc::spawn(
            "gatewatch run",
            cmd.arg("--metrics-listen")
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
                if ifaces
                    .iter()
                    .all(|i| e.contains(&format!("capturing on \"{i}\"")))
                {
                    Ok(())
                } else {
                    Err(e)
                }
            },
        );
        s
    }

    /// Its stdout and stderr so far, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "\n--- stdout ---\n{}\n--- stderr ---\n{}",
            read(&self.out),
            read(&self.err)
        )
    }

    /// The `/metrics` text; the test fails if it does not answer.
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

/// Start tcpreplay on `TX` (in the background).
pub fn tcpreplay(ns: &Netns, dir: &Path, args: &[&str], files: &[&str]) -> (Proc, PathBuf) {
    tcpreplay_on(ns, dir, TX, args, files)
}

/// Start tcpreplay on `intf` (in the background). Its stdout goes to the
/// returned log, `tcpreplay-INTF.log` in `dir`, its stderr next to it
/// (`.err`), so that replays on several interfaces can run at once.
pub fn tcpreplay_on(
    ns: &Netns,
    dir: &Path,
    intf: &str,
    args: &[&str],
    files: &[&str],
) -> (Proc, PathBuf) {
    let log = dir.join(format!("tcpreplay-{intf}.log"));
    let p = Proc::spawn(
        "tcpreplay",
        ns.cmd("tcpreplay")
            .current_dir(root())
            .args(["--intf1", intf])
            .args(args)
            .args(files)
            .stdout(File::create(&log).unwrap())
            .stderr(Stdio::from(
                File::create(log.with_extension("err")).unwrap(),
            )),
    );
    (p, log)
}

/// Run tcpreplay on `TX` to the end and check every packet of `files` went out.
pub fn tcpreplay_all(ns: &Netns, dir: &Path, files: &[&str]) -> u64 {
    tcpreplay_all_on(ns, dir, TX, files)
}

/// As [`tcpreplay_all`], on `intf`.
pub fn tcpreplay_all_on(ns: &Netns, dir: &Path, intf: &str, files: &[&str]) -> u64 {
    let (p, log) = tcpreplay_on(ns, dir, intf, &["--pps", PPS], files);
    tcpreplay_finish(p, &log, files)
}

/// Wait at most `secs` for tcpreplay to end successfully: the packets it
/// sent, and its output (stdout then stderr).
pub fn tcpreplay_sent(mut p: Proc, log: &Path, secs: u64) -> (u64, String) {
    let st = p
        .wait_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|| panic!("tcpreplay did not finish in {secs} s: {}", read(log)));
    let out = format!("{}{}", read(log), read(&log.with_extension("err")));
    assert!(st.success(), "tcpreplay failed ({st}):\n{out}");
    let out = out.replace("Successful packets:", "Successful_packets:");
    (stats_value(&out, "Successful_packets:"), out)
}

/// Wait for a tcpreplay started at `PPS` on `files` to end, and check it
/// sent every packet of them. Returns the number sent.
pub fn tcpreplay_finish(p: Proc, log: &Path, files: &[&str]) -> u64 {
    let expected: u64 = files.iter().map(|f| pcap_packets(&root().join(f))).sum();
    let secs = expected / PPS.parse::<u64>().unwrap() + 30;
    let (sent, out) = tcpreplay_sent(p, log, secs);
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
    assert_no_drops_on(m, logs, &[RX]);
}

/// The three drop counters, and the capture errors of every one of
/// `ifaces`, must exist and be 0.
pub fn assert_no_drops_on(m: &str, logs: &str, ifaces: &[&str]) {
    for stage in ["kernel", "interface", "queue"] {
        let series = format!("gatewatch_drops_total{{stage=\"{stage}\"}}");
        assert_eq!(
            metric(m, &series),
            Some(0.0),
            "{series} is not 0 at {PPS} packets/s:\n{m}{logs}"
        );
    }
    for i in ifaces {
        assert_eq!(
            metric(m, &capture_series("errors_total", i)),
            Some(0.0),
            "{m}"
        );
    }
}

/// The `/healthz` answer of `s`: `(status, body)`, `None` without one.
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
            let u = metric(&m, &capture_series("up", RX));
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
        Some(ns) => ns.cmd(bin_path()),
        None => bin(),
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
