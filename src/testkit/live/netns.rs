//! A throw-away network namespace with veth pairs, child processes that are
//! killed when a test fails, and commands that must succeed.
//!
//! Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2. Where the
//! machine cannot create a namespace the helpers panic with the reason: a
//! live test never passes silently without having run.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Prefix of every namespace these tests create: `gwtest-<pid>-<n>`.
const PREFIX: &str = "gwtest-";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Fail the test unless `program` can be run; `install` says how to get it.
pub fn require_tool(program: &str, install: &str) {
    match Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(_) => {}
        Err(e) => panic!("`{program}` is needed by this test but cannot be run ({e}): {install}"),
    }
}

/// Run a command to completion and fail the test unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        o.status.success(),
        "{shown} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A network namespace that is deleted when the value is dropped (also when
/// the test panics).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Create `gwtest-<pid>-<n>` with loopback up and IPv6 disabled (no
    /// router solicitations or MLD reports on the test links).
    // Not `Default`: creating a namespace runs `ip` as root and can fail.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Netns {
        require_tool("ip", "apt-get install iproute2");
        remove_stale();
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let o = Command::new("ip")
            .args(["netns", "add", &name])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `ip netns add`: {e}"));
        if !o.status.success() {
            panic!(
                "live-capture tests need a network namespace, and `ip netns add {name}` failed ({}): {}\
                 run the tests as root (or with CAP_SYS_ADMIN and CAP_NET_ADMIN) on a kernel with network namespaces",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let ns = Netns { name };
        if Path::new("/proc/sys/net/ipv6").exists() {
            run_ok(ns.cmd("sysctl").args([
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]));
        }
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`).
    /// `ip netns exec` execs the program, so the child's pid is the program's.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// `ip -n NAME ARGS...`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut c = Command::new("ip");
        c.args(["-n", &self.name]).args(args);
        run_ok(&mut c);
    }

    /// A veth pair `a` <-> `b` inside the namespace. With `up`, both ends get
    /// `mtu`, a private address (10.254.254.1/30 and .2/30) and are brought
    /// up; otherwise they are left administratively down.
    pub fn veth(&self, a: &str, b: &str, mtu: u32, up: bool) {
        self.veth_addrs(
            a,
            b,
            mtu,
            up.then_some(("10.254.254.1/30", "10.254.254.2/30")),
        );
    }

    /// A veth pair `a` <-> `b` with `mtu`. With `addrs` (for `a`, for `b`)
    /// both ends get those addresses and are brought up; with `None` they are
    /// left administratively down. Several pairs in one namespace need
    /// addresses on different networks.
    pub fn veth_addrs(&self, a: &str, b: &str, mtu: u32, addrs: Option<(&str, &str)>) {
        let mtu = mtu.to_string();
        self.ip(&[
            "link", "add", a, "mtu", &mtu, "type", "veth", "peer", "name", b, "mtu", &mtu,
        ]);
        if let Some((addr_a, addr_b)) = addrs {
            self.ip(&["addr", "add", addr_a, "dev", a]);
            self.ip(&["addr", "add", addr_b, "dev", b]);
            self.ip(&["link", "set", a, "up"]);
            self.ip(&["link", "set", b, "up"]);
        }
    }

    /// HTTP GET from inside the namespace with curl: `(status, body)`, or
    /// `None` when nothing answered.
    pub fn http_get(&self, url: &str) -> Option<(u16, String)> {
        let mut c = self.cmd("curl");
        c.args(["-s", "-m", "3", "-w", "\n%{http_code}", url]);
        curl_status_body(c)
    }

    /// As [`Netns::http_get`] with curl's `-G --data-urlencode` for a query.
    pub fn http_query(&self, url: &str, params: &[(&str, &str)]) -> Option<(u16, String)> {
        let mut c = self.cmd("curl");
        c.args(["-s", "-m", "5", "-G", "-w", "\n%{http_code}"]);
        for (k, v) in params {
            c.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        c.arg(url);
        curl_status_body(c)
    }
}

/// Run a curl made with `-w "\n%{http_code}"`: `(status, body)`, or `None`
/// when nothing answered.
fn curl_status_body(mut c: Command) -> Option<(u16, String)> {
    let o = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl (apt-get install curl): {e}"));
    if !o.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Delete namespaces left by earlier test processes that were killed before
/// their guards ran (`gwtest-<pid>-<n>` whose pid is gone).
fn remove_stale() {
    let Ok(o) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped, unless
/// it already exited.
pub struct Proc {
    pub what: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Start `cmd` (stdin closed); `what` names it in failure messages.
    pub fn spawn(what: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
        Proc {
            what: what.into(),
            child,
            status: None,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send signal `sig` unless the process has been reaped.
    pub fn signal(&self, sig: i32) {
        if self.status.is_none() {
            // SAFETY: kill(2) on our own child's pid, not yet reaped.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, sig);
            }
        }
    }

    /// The exit status if the process has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Wait at most `timeout` for the process to end.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
