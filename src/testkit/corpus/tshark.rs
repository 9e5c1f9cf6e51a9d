//! The tshark ground truth of a row (`truth = "tshark"`): what gatewatch
//! saw must equal what tshark saw (a subset on a known gap), and a feed of
//! the names tshark saw must flag exactly the clients that sent them.

use super::{Failures, describe, test_feed};
use crate::detect::attribution::Units;
use crate::intel::indicator::{EntryType, classify};
use crate::intel::{Snapshot, SnapshotBuilder};
use crate::testkit::workers::replay_with_any_workers;
use crate::testkit::{Replayed, Seen, Summary, summary_path};
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::net::IpAddr;
use std::path::Path;

/// The summary next to capture `p`.
pub fn read_summary(p: &Path) -> Summary {
    let s = summary_path(p);
    Summary::parse(&std::fs::read_to_string(&s).unwrap_or_else(|e| panic!("{}: {e}", s.display())))
}

type Sni = BTreeSet<(IpAddr, IpAddr, u16, String)>;
type Http = BTreeSet<(IpAddr, IpAddr, u16, String, String, String)>;

/// What a capture holds, in the terms both sides can give.
#[derive(Default)]
struct Found {
    queries: BTreeSet<(String, u16)>,
    answers: BTreeSet<(String, Vec<String>)>,
    sni: Sni,
    http: Http,
}

/// What gatewatch saw in a replay.
fn ours(r: &Replayed) -> Found {
    let mut f = Found::default();
    for s in &r.sink.seen {
        match s.clone() {
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
    f
}

/// What tshark saw, as its summary says (names lowercased, Host without
/// its port).
fn truth(s: &Summary) -> Found {
    Found {
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
            .map(|(_, a, b, p, m, h, u)| (*a, *b, *p, m.clone(), host_of(h), u.clone()))
            .collect(),
    }
}

/// An HTTP Host header without its port, lowercased.
fn host_of(h: &str) -> String {
    h.split(':').next().unwrap_or("").to_ascii_lowercase()
}

/// One set gatewatch saw against tshark's: equal, or a subset on a known
/// gap.
fn compare_set<T: Ord + Debug>(
    at: &str,
    what: &str,
    ours: &BTreeSet<T>,
    tshark: &BTreeSet<T>,
    gap: bool,
    fail: &mut Failures,
) {
    let ok = if gap {
        ours.is_subset(tshark)
    } else {
        ours == tshark
    };
    if !ok {
        fail.add(
            at,
            format!("{what}\n    ours:   {ours:?}\n    tshark: {tshark:?}"),
        );
    }
}

/// The DNS queries, CNAME answers, SNI and HTTP requests gatewatch saw
/// (replay `r`) equal tshark's (summary `s`; a subset on a known gap, which
/// fails once they are equal), and it read as many packets as capinfos
/// counted.
pub fn compare_with_tshark(
    at: &str,
    s: &Summary,
    r: &Replayed,
    gap: Option<&str>,
    fail: &mut Failures,
) {
    let (o, t) = (ours(r), truth(s));
    if r.stats.packets != s.packets {
        fail.add(
            at,
            format!("{} packets read, tshark saw {}", r.stats.packets, s.packets),
        );
    }
    let g = gap.is_some();
    compare_set(at, "DNS queries", &o.queries, &t.queries, g, fail);
    // tshark lists CNAME chains per response; compare names with CNAMEs.
    let with_cname = |a: &BTreeSet<(String, Vec<String>)>| -> BTreeSet<(String, Vec<String>)> {
        a.iter().filter(|a| !a.1.is_empty()).cloned().collect()
    };
    let (oa, ta) = (with_cname(&o.answers), with_cname(&t.answers));
    compare_set(at, "DNS CNAME answers", &oa, &ta, g, fail);
    compare_set(at, "TLS SNI", &o.sni, &t.sni, g, fail);
    compare_set(at, "HTTP requests", &o.http, &t.http, g, fail);
    if let Some(why) = gap
        && o.sni == t.sni
        && o.http == t.http
        && o.queries == t.queries
    {
        fail.add(
            at,
            format!("listed with known_gap ({why}) but now matches tshark: remove `known_gap`"),
        );
    }
}

/// A feed of the parent domains of the SNI and HTTP Host names tshark saw
/// (summary `s` of capture `p`), and a unit of exactly the clients that sent
/// them, must flag exactly those clients (a subset on a known gap), all in
/// that unit. False when tshark saw no such name.
pub fn names_check(
    at: &str,
    p: &Path,
    s: &Summary,
    gap: Option<&str>,
    fail: &mut Failures,
) -> bool {
    let (names, clients) = names_and_clients(s);
    if names.is_empty() {
        return false;
    }
    let units = match clients_unit(&clients) {
        Ok(u) => u,
        Err(e) => {
            fail.add(at, format!("names check units: {e}"));
            return true;
        }
    };
    let (r, diffs) = replay_with_any_workers(p, names_feed(&names), units);
    for d in diffs {
        fail.add(
            at,
            format!("names feed: results depend on the worker count: {d}"),
        );
    }
    let found: BTreeSet<IpAddr> = r.sink.hits.iter().map(|h| h.host).collect();
    let ok = match gap {
        None => found == clients,
        Some(_) => found.is_subset(&clients),
    };
    if !ok {
        fail.add(
            at,
            format!("names feed {names:?} flagged {found:?}, want its clients {clients:?}"),
        );
    }
    if let Some(h) = r.sink.hits.iter().find(|h| h.unit.code != "LAB") {
        fail.add(
            at,
            format!("names feed hit outside the unit: {}", describe(h)),
        );
    }
    if let Ok(units) = clients_unit(&clients) {
        let at = format!("{at} (names feed)");
        super::retro::retro_matches(&at, p, names_feed(&names), units, &r.sink.hits, fail);
    }
    true
}

/// The dotted SNI and HTTP Host names (not addresses) of a summary,
/// lowercased, and the clients that sent them.
fn names_and_clients(s: &Summary) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let mut clients: BTreeSet<IpAddr> = BTreeSet::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (_, src, _, _, sni) in &s.sni {
        if sni.contains('.') {
            clients.insert(*src);
            names.insert(sni.to_ascii_lowercase());
        }
    }
    for (_, src, _, _, _, host, _) in &s.http {
        let h = host_of(host);
        if h.contains('.') && h.parse::<IpAddr>().is_err() {
            clients.insert(*src);
            names.insert(h);
        }
    }
    (names, clients)
}

/// A feed `names` of the parent domain (last two labels) of every name.
fn names_feed(names: &BTreeSet<String>) -> Snapshot {
    let feed = test_feed("names");
    let mut b = SnapshotBuilder::default();
    for n in names {
        let parent: Vec<&str> = n.rsplitn(3, '.').take(2).collect();
        let parent = format!("{}.{}", parent[1], parent[0]);
        if let Ok(e) = classify(&parent, EntryType::Domain) {
            b.add(e, &feed);
        }
    }
    b.build()
}

/// One unit `LAB` of exactly `clients` (a /32 or /128 each), nothing else
/// internal.
fn clients_unit(clients: &BTreeSet<IpAddr>) -> Result<Units, String> {
    let nets: Vec<String> = clients
        .iter()
        .map(|c| {
            if c.is_ipv4() {
                format!("{c}/32")
            } else {
                format!("{c}/128")
            }
        })
        .collect();
    Units::parse(
        "u",
        &format!("code,name,cidrs\nLAB,Đơn vị thử,{}\n", nets.join(" ")),
        &[],
    )
    .map_err(|e| e.to_string())
}
