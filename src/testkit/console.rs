//! A store for the web console's tests and screenshots: the corpus's
//! generated gateway capture (40 units, 200 infected hosts) spread over the
//! last three weeks, with some hosts cleaned part-way and hit again
//! (reinfected), a status row, and one account of each role.

use super::{bin, root};
use crate::store::accounts::Role;
use crate::store::{Status, Store};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Every fixture account's password.
pub const CONSOLE_PW: &str = "mật-khẩu-thử-nghiệm";
/// The province admin, the unit officer and the read-only viewer.
pub const ADMIN: &str = "tinh";
pub const OFFICER: &str = "canbo";
pub const VIEWER: &str = "xem";

/// What [`console_store`] made.
pub struct ConsoleStore {
    pub db: PathBuf,
    /// The units file the capture was attributed with.
    pub units: PathBuf,
    /// The officer's and viewer's unit: the one with most offenders.
    pub unit: String,
    /// A host of `unit`, and a host of another unit.
    pub own_host: IpAddr,
    pub other_host: IpAddr,
}

const DAY: u64 = 86_400;
/// Days the capture is spread over, ending an hour ago.
const SPAN_DAYS: u64 = 21;
/// Share of the packets replayed before the cleaning round.
const FIRST_PART: f64 = 0.8;

fn corpus_dir() -> PathBuf {
    root().join("tests/corpus/gateway-small")
}

/// Rewrite a little-endian microsecond pcap with its packets spread evenly
/// over `[from_s, from_s + span_s)`, split into two files at `first`.
fn spread(src: &Path, from_s: u64, span_s: u64, first: f64, out: [&Path; 2]) -> u64 {
    let b = std::fs::read(src).expect("read the corpus capture");
    assert_eq!(
        &b[..4],
        &0xa1b2_c3d4u32.to_le_bytes(),
        "LE µs pcap expected"
    );
    let mut recs = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let len = u32::from_le_bytes(b[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        recs.push(&b[at..at + 16 + len]);
        at += 16 + len;
    }
    let n = recs.len() as u64;
    let cut = (n as f64 * first) as usize;
    let mut files = [b[..24].to_vec(), b[..24].to_vec()];
    for (i, r) in recs.iter().enumerate() {
        let us = from_s * 1_000_000 + span_s * 1_000_000 * i as u64 / n;
        let f = &mut files[usize::from(i >= cut)];
        f.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        f.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        f.extend_from_slice(&r[8..]);
    }
    for (f, p) in files.iter().zip(out) {
        std::fs::write(p, f).expect("write the spread capture");
    }
    from_s + span_s * cut as u64 / n
}

fn replay(dir: &Path, db: &Path, pcap: &Path, alerts: &str) {
    let c = corpus_dir();
    let o = bin()
        .args(["replay", "--feeds"])
        .arg(c.join("feeds.toml"))
        .arg("--units")
        .arg(c.join("units.csv"))
        .arg("--alerts")
        .arg(dir.join(alerts))
        .arg("--store")
        .arg(db)
        .arg(pcap)
        .output()
        .expect("run gatewatch replay");
    assert!(o.status.success(), "{}", super::text(&o));
}

/// Build the store in `dir` (`dir/console.db`), as of `now_s`.
pub fn console_store(dir: &Path, now_s: u64) -> ConsoleStore {
    let db = dir.join("console.db");
    let parts = [dir.join("part1.pcap"), dir.join("part2.pcap")];
    let from = now_s - SPAN_DAYS * DAY - 3600;
    let cut = spread(
        &corpus_dir().join("traffic.pcap"),
        from,
        SPAN_DAYS * DAY,
        FIRST_PART,
        [&parts[0], &parts[1]],
    );
    replay(dir, &db, &parts[0], "a1.jsonl");
    let mut s = Store::open(&db).expect("open the store");
    let units = s.units().expect("units");
    let unit = units
        .iter()
        .max_by(|a, b| a.hosts.cmp(&b.hosts).then(b.code.cmp(&a.code)))
        .expect("a unit with offenders")
        .code
        .clone();
    // Every other host cleaned by the officer some hours after its last
    // hit so far (before the second part): those hit again in the second
    // part become reinfected.
    let hosts = s.offenders(None, None, None).expect("offenders");
    let cut_ns = (cut * 1_000_000_000) as i64;
    for (i, h) in hosts.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let later = (i as i64 % 4 + 1) * 12 * 3600 * 1_000_000_000;
        let cleaned_at = (h.last_seen_ns + later).min(cut_ns - 60_000_000_000);
        let ip: IpAddr = h.ip.parse().expect("an address");
        let note = format!("Đã cài lại hệ điều hành (lần {i})");
        s.set_status(ip, Status::Cleaned, OFFICER, &note, cleaned_at)
            .expect("mark cleaned");
    }
    drop(s);
    replay(dir, &db, &parts[1], "a2.jsonl");
    let mut s = Store::open(&db).expect("open the store");
    let own = vec![unit.clone()];
    for (name, role, units) in [
        (ADMIN, Role::ProvinceAdmin, Vec::new()),
        (OFFICER, Role::UnitOfficer, own.clone()),
        (VIEWER, Role::Viewer, own),
    ] {
        s.add_account(name, role, &units, CONSOLE_PW, "fixture", 1)
            .expect("add account");
    }
    let hosts = s.offenders(None, None, None).expect("offenders");
    let pick = |mine: bool| {
        hosts
            .iter()
            .find(|h| (h.unit == unit) == mine)
            .and_then(|h| h.ip.parse().ok())
            .expect("a host")
    };
    ConsoleStore {
        units: corpus_dir().join("units.csv"),
        own_host: pick(true),
        other_host: pick(false),
        unit,
        db,
    }
}

/// A `gatewatch serve` child process, killed when dropped.
pub struct ServedConsole {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` (or `https://`).
    pub url: String,
    pub addr: std::net::SocketAddr,
}

impl Drop for ServedConsole {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `gatewatch serve` on a free loopback port over `db`, with `extra`
/// arguments; returns once it says where it listens.
pub fn serve(db: &Path, units: Option<&Path>, extra: &[&str]) -> ServedConsole {
    let mut args = vec!["--store".to_owned(), db.display().to_string()];
    if let Some(u) = units {
        args.extend(["--units".to_owned(), u.display().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    serve_with(&args)
}

/// Start `gatewatch serve --central URL` on a free loopback port.
pub fn serve_central(url: &str) -> ServedConsole {
    serve_with(&["--central".to_owned(), url.to_owned()])
}

/// Start `gatewatch serve` on a free loopback port with `args`.
fn serve_with(args: &[String]) -> ServedConsole {
    use std::io::BufRead;
    let mut c = bin();
    c.current_dir(root())
        .args(["--log", "info", "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("start gatewatch serve");
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = loop {
        let l = lines.next().expect("the console exited").expect("a line");
        if let Some(u) = l.split("console on ").nth(1) {
            break u.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let addr = url
        .rsplit('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("an address in the URL");
    ServedConsole { child, url, addr }
}

/// One answer: status, head (status line and headers), body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value (first of that name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// `name=value` of the `Set-Cookie` naming `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.trim())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(|v| v.split(';').next().unwrap_or("").to_owned())
    }
}

/// A bare HTTP/1.1 request to the console: `cookie` (`k=v`, may be empty),
/// extra `headers` (each ending in `\r\n`), a form body for POST.
pub fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    headers: &str,
    form: &str,
) -> Reply {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the console");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{cookie}{headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the answer");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    Reply {
        status: head[9..12].parse().expect("a status"),
        head,
        body: out[split + 4..].to_vec(),
    }
}

/// Percent-encode a form value.
pub fn form_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Log in as `name`: (status of the login POST, session cookie if any).
pub fn login(addr: std::net::SocketAddr, name: &str, pw: &str) -> (u16, String) {
    let form = request(addr, "GET", "/login", "", "", "");
    let pre = form.cookie("gw_login").expect("the pre-login cookie");
    let token = pre.split_once('=').map(|(_, t)| t).unwrap_or("");
    let body = format!(
        "csrf={token}&name={}&password={}",
        form_value(name),
        form_value(pw)
    );
    let r = request(addr, "POST", "/login", &pre, "", &body);
    (r.status, r.cookie("gw_session").unwrap_or_default())
}

/// The CSRF token of the first form on a page.
pub fn csrf_of(page: &str) -> String {
    let i = page.find("name=\"csrf\" value=\"").expect("a form") + 19;
    page[i..i + 64].to_owned()
}

/// Copy the little-endian µs pcap `src` to `dst` with its packets spread
/// evenly over `[from_s, from_s + span_s)` (hits "now" from an old capture).
pub fn retime(src: &Path, dst: &Path, from_s: u64, span_s: u64) {
    let rest = dst.with_extension("rest.pcap");
    spread(src, from_s, span_s, 1.0, [dst, &rest]);
    let _ = std::fs::remove_file(rest);
}
