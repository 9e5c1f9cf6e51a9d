//! Reading what a run produced, for the live-capture tests:
//! alert logs, `/metrics` text and `--stats` output, and the expectation to
//! compare them with (`gatewatch replay` of the same captures).

use crate::testkit::{bin, root, text};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A file's text; empty where it does not exist (yet) or cannot be read.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
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
    alert_keys_in(path, 0..usize::MAX)
}

/// As [`alert_keys`], for the lines of the alert log in `lines` (0-based):
/// what was written during one part of a test. Every line must still be a
/// JSON alert.
pub fn alert_keys_in(path: &Path, lines: Range<usize>) -> (BTreeMap<AlertKey, usize>, usize) {
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
        if v["event_type"] == "flow" {
            // Flow events follow the flows' lives (timeouts), not the
            // packets: checked in tests/flows.rs, not compared here.
            continue;
        }
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
        if lines.contains(&i) {
            *keys.entry(key).or_insert(0) += 1;
            n += 1;
        }
    }
    (keys, n)
}

/// `gatewatch replay` of `files` with the given feeds and units: its alert log.
pub fn replay_alerts(dir: &Path, feeds: &Path, units: &Path, files: &[&str]) -> PathBuf {
    let alerts = dir.join("replay.jsonl");
    let o = bin()
        // Correlation on, as shipped: a host's packets meet in one worker,
        // so the live sensor's two workers must find exactly what replay's
        // one engine finds, correlated hits included.
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

/// The series `gatewatch_capture_WHAT{interface="IFACE"}` (`what`: `up`,
/// `packets_total`, `errors_total`).
pub fn capture_series(what: &str, iface: &str) -> String {
    format!("gatewatch_capture_{what}{{interface=\"{iface}\"}}")
}

/// The value of one series (`name` or `name{labels}` exactly as rendered).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// As [`metric`], 0 where the series is missing.
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

/// N in "N alert(s) and M repeat summary event(s) appended to FILE".
pub fn appended(out: &str) -> u64 {
    out.lines()
        .filter(|l| l.contains(" appended to "))
        .find_map(|l| l.split_once(" alert(s) and "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no \"alert(s) ... appended\" summary:\n{out}"))
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

/// The hits in `keys`, one a line with its count, for failure messages.
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
