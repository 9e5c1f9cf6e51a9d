//! The tshark ground truth next to each real capture, and where the captures
//! are (the shipped corpus, the development data set).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The tshark ground truth written next to each real capture.
#[derive(Debug, Default)]
pub struct Summary {
    pub packets: u64,
    /// (count, qname, qtype)
    pub dns_queries: Vec<(u64, String, u16)>,
    /// (qname, rcode, A+AAAA, CNAMEs)
    pub dns_responses: Vec<(String, u16, Vec<IpAddr>, Vec<String>)>,
    /// (count, src, dst, port, sni or empty)
    pub sni: Vec<(u64, IpAddr, IpAddr, u16, String)>,
    /// (count, src, dst, port, method, host, uri)
    pub http: Vec<(u64, IpAddr, IpAddr, u16, String, String, String)>,
}

impl Summary {
    pub fn parse(text: &str) -> Summary {
        let mut s = Summary::default();
        let mut section = "";
        for line in text.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                section = section_of(h);
                continue;
            }
            let Some(l) = line.strip_prefix("  ") else {
                continue;
            };
            let f: Vec<&str> = l.split('\t').collect();
            match section {
                "cap" if f.len() >= 4 => s.packets = f[3].parse().unwrap_or(0),
                "dnsq" if f.len() == 2 => s.push_queries(&f),
                "dnsr" if f.len() >= 2 => s.push_response(&f),
                "sni" if f.len() >= 4 => s.push_sni(&f),
                "http" if f.len() >= 6 => s.push_http(&f),
                _ => {}
            }
        }
        s
    }

    /// A DNS query row: count, then names and types. Several questions in
    /// one message read "a,b,c 1,1,28".
    fn push_queries(&mut self, f: &[&str]) {
        let (names, types) = f[1].rsplit_once(' ').unwrap_or((f[1], "0"));
        let count = f[0].parse().unwrap_or(0);
        for (n, t) in names.split(',').zip(types.split(',')) {
            self.dns_queries
                .push((count, n.to_ascii_lowercase(), t.parse().unwrap_or(0)));
        }
    }

    /// A DNS response row: name, rcode, then A and AAAA lists and CNAMEs.
    fn push_response(&mut self, f: &[&str]) {
        let mut ips: Vec<IpAddr> = Vec::new();
        for col in [f.get(2), f.get(3)].into_iter().flatten() {
            ips.extend(list(col).iter().filter_map(|x| x.parse::<IpAddr>().ok()));
        }
        let cn = f
            .get(4)
            .map(|c| list(c).iter().map(|x| x.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        self.dns_responses.push((
            f[0].to_ascii_lowercase(),
            f[1].parse().unwrap_or(0),
            ips,
            cn,
        ));
    }

    /// A TLS/QUIC row: count, src, dst, port and the SNI (may be missing).
    fn push_sni(&mut self, f: &[&str]) {
        if let (Some(a), Some(b), Ok(p)) = (innermost(f[1]), innermost(f[2]), f[3].parse()) {
            self.sni.push((
                f[0].parse().unwrap_or(0),
                a,
                b,
                p,
                f.get(4).unwrap_or(&"").to_string(),
            ));
        }
    }

    /// An HTTP row: count, src, dst, port, method, host and the URI (may be
    /// missing).
    fn push_http(&mut self, f: &[&str]) {
        if let (Some(a), Some(b), Ok(p)) = (innermost(f[1]), innermost(f[2]), f[3].parse()) {
            self.http.push((
                f[0].parse().unwrap_or(0),
                a,
                b,
                p,
                f[4].to_owned(),
                f[5].to_owned(),
                f.get(6).unwrap_or(&"").to_string(),
            ));
        }
    }
}

/// The section a `## ` heading opens, by its first word; "" for sections
/// that are not read.
fn section_of(heading: &str) -> &'static str {
    match heading.split(' ').next().unwrap_or("") {
        "DNS" if heading.contains("queries") => "dnsq",
        "DNS" => "dnsr",
        "TLS/QUIC" => "sni",
        "HTTP" => "http",
        "capinfos" => "cap",
        _ => "",
    }
}

/// An address column. For a tunnelled packet tshark lists every address,
/// outer first (`10.200.0.3,192.168.69.10`): the innermost is the end a
/// decoder that strips the tunnel sees.
fn innermost(col: &str) -> Option<IpAddr> {
    col.rsplit(',').next()?.parse().ok()
}

/// The non-empty entries of a comma-separated column.
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The development data set named by `GATEWATCH_SHARED_DATA`, if set. When it
/// is set but the directory is missing, that is a failure, not a skip.
pub fn shared_data() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("GATEWATCH_SHARED_DATA")?);
    assert!(
        dir.join("pcaps").is_dir(),
        "GATEWATCH_SHARED_DATA={} has no pcaps/ directory",
        dir.display()
    );
    Some(dir)
}

/// Every `*.pcap` and `*.pcapng` under `dir`, sorted.
pub fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every capture under `dir` that has a tshark `.summary.txt`, sorted.
pub fn captures_with_summaries(dir: &Path) -> Vec<PathBuf> {
    let mut out = capture_files(dir);
    out.retain(|p| summary_path(p).is_file());
    out
}

/// `capture.pcap` -> `capture.pcap.summary.txt`.
pub fn summary_path(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.summary.txt", p.display()))
}
