//! Real feeds on real captures: the hits, offender hosts and units that
//! feeds built from real indicators must give. (The names-feed check of
//! every capture with a tshark summary is a `truth = "tshark"` row of
//! tests/corpus/manifest.toml now.)

use gatewatch::detect::HitSource;
use gatewatch::detect::attribution::Units;
use gatewatch::intel::feeds::{Column, FeedSpec, Format, load_feed};
use gatewatch::intel::{Severity, SnapshotBuilder};
use gatewatch::testkit::replay_collect;
use std::collections::BTreeSet;
use std::path::PathBuf;

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
