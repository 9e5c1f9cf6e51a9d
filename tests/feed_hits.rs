//! Real feeds on real captures: the hits, offender hosts and units that
//! feeds built from real indicators must give.

use gatewatch::detect::HitSource;
use gatewatch::detect::attribution::Units;
use gatewatch::intel::feeds::{Column, FeedSpec, Format, load_feed};
use gatewatch::intel::indicator::{EntryType, classify};
use gatewatch::intel::{FeedMeta, Severity, SnapshotBuilder};
use gatewatch::testkit::{
    Summary, captures_with_summaries, replay_collect, shared_data, summary_path,
};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec(name: &str, path: PathBuf, format: Format) -> FeedSpec {
    FeedSpec {
        category: Some("botnet-c2".into()),
        severity: Severity::High,
        ..FeedSpec::new(name, path, format)
    }
}

/// The abuse.ch Feodo list shipped in feeds/ flags the C2 session of the
/// suricata-verify bug-5713 capture: one alert, the right host and unit.
#[test]
fn abuse_ch_list_finds_the_c2_client() {
    let mut b = SnapshotBuilder::default();
    let rep = load_feed(
        &spec(
            "abuse-ch",
            root().join("feeds/abuse-ch-ipblocklist.txt"),
            Format::Plain,
        ),
        &mut b,
    );
    assert!(rep.accepted > 7000 && rep.failed.is_none(), "{rep:?}");
    let units = Units::parse(
        "u",
        "code,name,cidrs\nSO-TTTT,Sở TTTT,192.168.46.0/24\n",
        &[],
    )
    .unwrap();
    let r = replay_collect(
        &[root().join("tests/corpus/suricata-verify/TLSv1-Extracted-MaliciousC2.pcap")],
        b.build(),
        units,
    );
    assert_eq!(r.sink.hits.len(), 1, "one alert per flow, not per packet");
    let h = &r.sink.hits[0];
    assert_eq!(h.host.to_string(), "192.168.46.2");
    assert_eq!(h.unit.code, "SO-TTTT");
    assert_eq!(&*h.indicator.value, "91.254.215.167");
    assert_eq!(h.source, HitSource::Ip);
    assert!(h.outbound);
    assert_eq!(r.stats.ip_hit_packets_repeat, 8);
}

/// The Emerging Threats IP-reputation export (CSV, no header) from
/// suricata-verify issue-4280 lists 4.4.4.4 and 8.8.8.8; the capture's only
/// internal host 192.168.0.13 talks to both (ICMP): two flows, two alerts.
#[test]
fn et_iprep_csv_finds_both_listed_peers() {
    let mut s = spec(
        "et-iprep",
        root().join("tests/corpus/suricata-verify/scirius-iprep.list"),
        Format::Csv,
    );
    s.column = Some(Column::Index(0));
    s.has_headers = Some(false);
    s.comment = Some("#".into());
    let mut b = SnapshotBuilder::default();
    let rep = load_feed(&s, &mut b);
    assert!(
        rep.accepted > 27_000,
        "{} accepted, {:?}",
        rep.accepted,
        rep.rejected.first()
    );
    let units = Units::parse(
        "u",
        "code,name,cidrs\nLAB,Phòng thí nghiệm,192.168.0.0/24\n",
        &[],
    )
    .unwrap();
    let r = replay_collect(
        &[root().join("tests/corpus/suricata-verify/issue-4280-iprep.pcap")],
        b.build(),
        units,
    );
    let got: BTreeSet<(String, String)> = r
        .sink
        .hits
        .iter()
        .map(|h| (h.host.to_string(), h.indicator.value.to_string()))
        .collect();
    let want: BTreeSet<(String, String)> =
        [("192.168.0.13", "4.4.4.4"), ("192.168.0.13", "8.8.8.8")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
    assert_eq!(got, want);
}

/// For every real capture: a feed made of the parent domains of the SNI and
/// HTTP Host names tshark saw, and a unit made of exactly the clients that
/// sent them, must flag exactly those clients, all in that unit.
fn names_feed_check(dir: &Path) -> usize {
    let mut checked = 0;
    for p in captures_with_summaries(dir) {
        let sum = summary_path(&p);
        let s = Summary::parse(&std::fs::read_to_string(&sum).unwrap());
        let mut clients: BTreeSet<IpAddr> = BTreeSet::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for (_, src, _, _, sni) in &s.sni {
            if sni.contains('.') {
                clients.insert(*src);
                names.insert(sni.to_ascii_lowercase());
            }
        }
        for (_, src, _, _, _, host, _) in &s.http {
            let h = host.split(':').next().unwrap_or("").to_ascii_lowercase();
            if h.contains('.') && h.parse::<IpAddr>().is_err() {
                clients.insert(*src);
                names.insert(h);
            }
        }
        if names.is_empty() {
            continue;
        }
        let feed = Arc::new(FeedMeta {
            name: "names".into(),
            category: "test".into(),
            severity: Severity::High,
        });
        let mut b = SnapshotBuilder::default();
        for n in &names {
            let parent: Vec<&str> = n.rsplitn(3, '.').take(2).collect();
            let parent = format!("{}.{}", parent[1], parent[0]);
            if let Ok(e) = classify(&parent, EntryType::Domain) {
                b.add(e, &feed);
            }
        }
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
        let units = Units::parse(
            "u",
            &format!("code,name,cidrs\nLAB,Đơn vị thử,{}\n", nets.join(" ")),
            &[],
        )
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let r = replay_collect(std::slice::from_ref(&p), b.build(), units);
        let found: BTreeSet<IpAddr> = r.sink.hits.iter().map(|h| h.host).collect();
        assert_eq!(found, clients, "{}", p.display());
        assert!(r.sink.hits.iter().all(|h| h.unit.code == "LAB"));
        checked += 1;
    }
    checked
}

#[test]
fn names_from_ground_truth_flag_exactly_their_clients() {
    let n = names_feed_check(&root().join("tests/corpus"));
    assert!(n >= 8, "only {n} captures checked");
}

#[test]
fn names_from_ground_truth_shared_data() {
    let Some(dir) = shared_data() else {
        eprintln!("GATEWATCH_SHARED_DATA not set: skipped");
        return;
    };
    let p = dir.join("pcaps");
    assert!(names_feed_check(&p) >= 8);
}
