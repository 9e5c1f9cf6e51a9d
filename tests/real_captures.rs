//! Ground truth on real public captures: the DNS names, TLS SNI and HTTP
//! Host/target values gatewatch extracts must equal what tshark found
//! (`*.summary.txt`). Runs on `tests/corpus/` always, and on the whole shared
//! data set when `GATEWATCH_SHARED_DATA` points at it.

use gatewatch::intel::Snapshot;
use gatewatch::testkit::{
    Seen, Summary, captures_with_summaries, replay_collect, shared_data, summary_path, units_from,
};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

/// Captures where tshark sees more than a single-segment decoder can, each
/// with the reason. These are checked as "ours is a subset of tshark's", and
/// the test fails if a gap closes (so this list is kept honest).
const KNOWN_GAPS: &[(&str, &str)] = &[];

fn gap(path: &Path) -> Option<&'static str> {
    let p = path.to_string_lossy();
    KNOWN_GAPS
        .iter()
        .find(|(k, _)| p.contains(k))
        .map(|(_, why)| *why)
}

type Sni = BTreeSet<(IpAddr, IpAddr, u16, String)>;
type Http = BTreeSet<(IpAddr, IpAddr, u16, String, String, String)>;

struct Found {
    queries: BTreeSet<(String, u16)>,
    answers: BTreeSet<(String, Vec<String>)>,
    sni: Sni,
    http: Http,
}

fn ours(path: &Path) -> (Found, u64) {
    let units = units_from("code,name,cidrs\n");
    let r = replay_collect(&[path.to_path_buf()], Snapshot::empty(), units);
    let mut f = Found {
        queries: BTreeSet::new(),
        answers: BTreeSet::new(),
        sni: BTreeSet::new(),
        http: BTreeSet::new(),
    };
    for s in r.sink.seen {
        match s {
            Seen::DnsQuery { name, qtype } => {
                f.queries.insert((name, qtype));
            }
            Seen::DnsAnswer { name, cname, .. } => {
                f.answers.insert((name, cname));
            }
            Seen::Sni {
                src,
                dst,
                port,
                sni,
            } => {
                f.sni.insert((src, dst, port, sni.unwrap_or_default()));
            }
            Seen::Http {
                src,
                dst,
                port,
                method,
                host,
                target,
            } => {
                let uri: String = target.chars().take(120).collect();
                f.http
                    .insert((src, dst, port, method, host.unwrap_or_default(), uri));
            }
        }
    }
    (f, r.stats.packets)
}

fn truth(path: &Path) -> (Found, u64) {
    let s = Summary::parse(&std::fs::read_to_string(summary_path(path)).unwrap());
    let f = Found {
        queries: s
            .dns_queries
            .iter()
            .map(|(_, n, t)| (n.clone(), *t))
            .collect(),
        answers: s
            .dns_responses
            .iter()
            .map(|(n, _, _, c)| (n.clone(), c.clone()))
            .collect(),
        sni: s
            .sni
            .iter()
            .map(|(_, a, b, p, n)| (*a, *b, *p, n.to_ascii_lowercase()))
            .collect(),
        http: s
            .http
            .iter()
            .map(|(_, a, b, p, m, h, u)| {
                let host = h.split(':').next().unwrap_or("").to_ascii_lowercase();
                (*a, *b, *p, m.clone(), host, u.clone())
            })
            .collect(),
    };
    (f, s.packets)
}

fn check_dir(dir: &Path) -> usize {
    let files = captures_with_summaries(dir);
    assert!(
        !files.is_empty(),
        "no captures with summaries under {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for p in &files {
        let (o, npk) = ours(p);
        let (t, tpk) = truth(p);
        let name = p.display().to_string();
        if npk != tpk {
            failures.push(format!("{name}: {npk} packets read, tshark saw {tpk}"));
        }
        let mut cmp = |what: &str, a: String, b: String, equal: bool, subset: bool| {
            let ok = match gap(p) {
                None => equal,
                Some(_) => subset,
            };
            if !ok {
                failures.push(format!("{name}: {what}\n    ours:   {a}\n    tshark: {b}"));
            }
        };
        cmp(
            "DNS queries",
            format!("{:?}", o.queries),
            format!("{:?}", t.queries),
            o.queries == t.queries,
            o.queries.is_subset(&t.queries),
        );
        // tshark lists CNAME chains per response; compare names with CNAMEs.
        let oa: BTreeSet<_> = o
            .answers
            .iter()
            .filter(|a| !a.1.is_empty())
            .cloned()
            .collect();
        let ta: BTreeSet<_> = t
            .answers
            .iter()
            .filter(|a| !a.1.is_empty())
            .cloned()
            .collect();
        cmp(
            "DNS CNAME answers",
            format!("{oa:?}"),
            format!("{ta:?}"),
            oa == ta,
            oa.is_subset(&ta),
        );
        cmp(
            "TLS SNI",
            format!("{:?}", o.sni),
            format!("{:?}", t.sni),
            o.sni == t.sni,
            o.sni.is_subset(&t.sni),
        );
        cmp(
            "HTTP requests",
            format!("{:?}", o.http),
            format!("{:?}", t.http),
            o.http == t.http,
            o.http.is_subset(&t.http),
        );
        if let Some(why) = gap(p)
            && o.sni == t.sni
            && o.http == t.http
            && o.queries == t.queries
        {
            failures.push(format!(
                "{name}: listed as a known gap ({why}) but now matches: remove it from KNOWN_GAPS"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
    files.len()
}

#[test]
fn corpus_matches_tshark_ground_truth() {
    let n = check_dir(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus"
    )));
    assert!(n >= 10, "only {n} corpus captures");
}

#[test]
fn shared_data_matches_tshark_ground_truth() {
    let Some(dir) = shared_data() else {
        eprintln!("GATEWATCH_SHARED_DATA not set: whole-data-set check not run");
        return;
    };
    let pcaps = dir.join("pcaps");
    let n = check_dir(&pcaps);
    assert!(n >= 30, "only {n} shared captures with summaries");
}
