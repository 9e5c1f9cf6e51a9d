//! Hygiene signals (issue 16): a host activating Windows/Office against a
//! KMS server on a public address gets one `hygiene` event, with the
//! server; an internal KMS host is the licensed way and gives none. Names
//! on the crack list and antivirus update names are one event per host and
//! day, with the name (and vendor); a resolver's lookups are not its own.
//! Each signal has its switch.

use gatewatch::detect::EngineOptions;
use gatewatch::detect::hygiene::lists::{self, HygieneLists};
use gatewatch::detect::hygiene::{HygieneSettings, KMS_PORT, Signal};
use gatewatch::testkit::corpus::csv_columns;
use gatewatch::testkit::tcp::{SYN, SYN_ACK, segment};
use gatewatch::testkit::{
    Collector, T0_US, bin, client_hello_record, crafted_recipe, dns_query, generator, ip,
    replay_to_end, sni_ext, tcp_frame, text, udp_frame,
};
use hickory_proto::rr::RecordType;
use std::collections::BTreeSet;
use std::sync::Arc;

fn activations(options: EngineOptions, server: &str, times: u64) -> Collector {
    let (host, server) = (ip("10.1.0.7"), ip(server));
    let mut frames = Vec::new();
    for i in 0..times {
        let (t, sport) = (T0_US + i * 7_200_000_000, 50_000 + i as u16);
        frames.push((t, segment(host, server, sport, KMS_PORT, 1, SYN, &[])));
        frames.push((
            t + 900,
            segment(server, host, KMS_PORT, sport, 9, SYN_ACK, &[]),
        ));
    }
    replay_to_end(&mut crafted_recipe(&[], options).engine(0), &frames)
}

#[test]
fn public_kms_activation_is_one_event_per_host_and_day() {
    // Every two hours for a day and a half: one event, then one more after
    // a day.
    let c = activations(EngineOptions::default(), "58.205.19.61", 18);
    assert_eq!(c.hygiene.len(), 2, "{:?}", c.hygiene);
    let e = &c.hygiene[0];
    assert_eq!(e.signal, Signal::KmsActivationPublic);
    assert_eq!(
        (e.host, e.server, e.port),
        (ip("10.1.0.7"), ip("58.205.19.61"), KMS_PORT)
    );
    assert_eq!(e.unit.code, "U1");
    // Not an offender's hit; its steady two-hour renewals are a beacon,
    // which is only a suspicion.
    assert!(c.hits.iter().all(|h| !h.offender()), "{:?}", c.hits);
}

#[test]
fn an_internal_kms_host_and_the_switch_give_none() {
    assert!(
        activations(EngineOptions::default(), "10.1.0.2", 3)
            .hygiene
            .is_empty()
    );
    let off = EngineOptions {
        hygiene: HygieneSettings {
            kms_activation: false,
            ..HygieneSettings::default()
        },
        ..EngineOptions::default()
    };
    assert!(activations(off, "58.205.19.61", 3).hygiene.is_empty());
}

/// A small generated capture into `dir` where `kms` clean hosts activate
/// against a public KMS server (`hygiene.csv` names them).
fn generate_kms(script: &std::path::Path, dir: &std::path::Path, kms: &str, seed: &str) {
    let ok = std::process::Command::new("python3")
        .arg(script)
        .arg(dir)
        .args([
            "--packets",
            "5000",
            "--units",
            "6",
            "--hosts-per-unit",
            "12",
        ])
        .args(["--kms", kms, "--seed", seed])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn generated_kms_hosts_get_their_event_and_no_other_host_does() {
    let Some(script) = generator() else {
        eprintln!("gen-gateway-pcap.py not found beside the checkout: skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for seed in ["3", "8"] {
        let dir = tmp.path().join(seed);
        generate_kms(&script, &dir, "5", seed);
        std::fs::write(dir.join("feeds.toml"), "").unwrap();
        let o = bin()
            .args(["replay", "--log", "warn", "--feeds"])
            .arg(dir.join("feeds.toml"))
            .arg("--units")
            .arg(dir.join("units.csv"))
            .arg("--alerts")
            .arg(dir.join("alerts.jsonl"))
            .arg(dir.join("traffic.pcap"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let want: BTreeSet<(String, String, String)> =
            csv_columns(&dir.join("hygiene.csv"), &["host_ip", "unit", "detail"])
                .unwrap()
                .into_iter()
                .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
                .collect();
        assert_eq!(want.len(), 5, "seed {seed}");
        let log = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap();
        let got: BTreeSet<(String, String, String)> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["event_type"] == "hygiene" && v["signal"] == "kms_activation_public")
            .map(|v| {
                let detail = format!("{}:{}", v["dest_ip"].as_str().unwrap(), v["dest_port"]);
                let s = |k: &str| v[k].as_str().unwrap().to_string();
                (s("host_ip"), s("unit"), detail)
            })
            .collect();
        assert_eq!(got, want, "seed {seed}");
    }
}

/// A lookup of a crack site, a lookup through a resolver, and a TLS
/// connection to an antivirus update server, twice each.
fn named(options: EngineOptions) -> Collector {
    let (host, resolver) = (ip("10.1.0.7"), ip("10.1.0.53"));
    let (dns, av) = (ip("8.8.8.8"), ip("203.0.113.9"));
    let hello = client_hello_record(&[sni_ext("s1.upd.av.example")]);
    let mut frames = Vec::new();
    for i in 0..2u64 {
        let t = T0_US + i * 60_000_000;
        let q = dns_query(7 + i as u16, "dl.crack.example", RecordType::A);
        frames.push((t, udp_frame(host, dns, 40_000, 53, None, &q)));
        let q = dns_query(9, "www.crack.example", RecordType::A);
        frames.push((t + 5, udp_frame(resolver, dns, 40_001, 53, None, &q)));
        let sport = 50_000 + i as u16;
        frames.push((t + 10, segment(host, av, sport, 443, 1, SYN, &[])));
        frames.push((t + 20, segment(av, host, 443, sport, 9, SYN_ACK, &[])));
        frames.push((t + 30, tcp_frame(host, av, sport, 443, 2, &hello)));
    }
    replay_to_end(&mut crafted_recipe(&[], options).engine(0), &frames)
}

fn with_lists(crack: bool, antivirus: bool) -> EngineOptions {
    let lists = HygieneLists::parse(
        "crack.example\n",
        "crack.txt",
        "vendor,domain,source\nkaspersky,upd.av.example,test\n",
        "av.csv",
    )
    .unwrap();
    EngineOptions {
        resolvers: vec![ip("10.1.0.53")],
        hygiene: HygieneSettings {
            crack_domains: crack,
            antivirus,
            lists: Arc::new(lists),
            ..HygieneSettings::default()
        },
        ..EngineOptions::default()
    }
}

#[test]
fn crack_and_antivirus_names_are_one_event_each_with_their_evidence() {
    let c = named(with_lists(true, true));
    let got: Vec<_> = c
        .hygiene
        .iter()
        .map(|e| {
            (
                e.signal,
                e.host,
                e.server,
                e.port,
                e.domain.as_deref(),
                e.vendor.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Signal::CrackDomain,
                ip("10.1.0.7"),
                ip("8.8.8.8"),
                53,
                Some("dl.crack.example"),
                None
            ),
            (
                Signal::AntivirusUpdate,
                ip("10.1.0.7"),
                ip("203.0.113.9"),
                443,
                Some("s1.upd.av.example"),
                Some("kaspersky")
            ),
        ],
        "the resolver's lookup is not its own; repeats within the day are not new"
    );
    assert!(c.hits.is_empty(), "hygiene is never a hit: {:?}", c.hits);
}

#[test]
fn each_name_signal_has_its_switch() {
    let only_av: Vec<_> = named(with_lists(false, true))
        .hygiene
        .iter()
        .map(|e| e.signal)
        .collect();
    assert_eq!(only_av, [Signal::AntivirusUpdate]);
    let only_crack: Vec<_> = named(with_lists(true, false))
        .hygiene
        .iter()
        .map(|e| e.signal)
        .collect();
    assert_eq!(only_crack, [Signal::CrackDomain]);
}

#[test]
fn the_shipped_lists_are_used_by_default() {
    let first = |text: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("vendor,"))
            .unwrap()
            .to_string()
    };
    let crack = first(lists::SHIPPED_CRACK);
    let av_line = first(lists::SHIPPED_ANTIVIRUS);
    let mut cols = av_line.split(',');
    let (vendor, av) = (cols.next().unwrap(), cols.next().unwrap());
    let host = ip("10.1.0.7");
    let frames: Vec<_> = [format!("a.{crack}"), format!("b.{av}")]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let q = dns_query(i as u16, name, RecordType::A);
            (
                T0_US + i as u64,
                udp_frame(host, ip("8.8.8.8"), 40_000, 53, None, &q),
            )
        })
        .collect();
    let c = replay_to_end(
        &mut crafted_recipe(&[], EngineOptions::default()).engine(0),
        &frames,
    );
    let got: Vec<_> = c
        .hygiene
        .iter()
        .map(|e| (e.signal, e.vendor.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (Signal::CrackDomain, None),
            (Signal::AntivirusUpdate, Some(vendor))
        ]
    );
}

/// The generator's `--kms` hosts, replayed into a store, are counted in
/// their units' "cracked software" row of the campaign report, and no other
/// unit counts one; the history gives every unit its active machines.
#[test]
fn generated_kms_hosts_are_counted_in_their_units_report_rows() {
    use gatewatch::reports::report::period::{DateArg, Period};
    use gatewatch::reports::report::{Report, Request};
    let Some(script) = generator() else {
        eprintln!("gen-gateway-pcap.py not found beside the checkout: skipped");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kms");
    generate_kms(&script, &dir, "7", "11");
    std::fs::write(dir.join("feeds.toml"), "").unwrap();
    let db = dir.join("gatewatch.db");
    let o = bin()
        .args(["replay", "--log", "warn", "--feeds"])
        .arg(dir.join("feeds.toml"))
        .arg("--units")
        .arg(dir.join("units.csv"))
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .arg("--store")
        .arg(&db)
        .arg(dir.join("traffic.pcap"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut want = std::collections::BTreeMap::<String, u64>::new();
    for r in csv_columns(&dir.join("hygiene.csv"), &["unit"]).unwrap() {
        *want.entry(r[0].clone()).or_default() += 1;
    }
    let day = |s: &str| DateArg::parse(s).unwrap();
    let req = Request {
        period: Period::new(day("2000-01-01"), day("2099-12-31")).unwrap(),
        unit: None,
        known_units: Vec::new(),
    };
    let mut store = gatewatch::store::Store::open(&db).unwrap();
    let r = Report::build(&mut store, &req).unwrap();
    let got: std::collections::BTreeMap<String, u64> = r
        .hygiene
        .iter()
        .filter(|h| h.cracked > 0)
        .map(|h| (h.code.clone(), h.cracked))
        .collect();
    assert_eq!(got, want);
    assert_eq!(r.rollup_hygiene.as_ref().map(|h| h.cracked), Some(7));
    assert!(
        r.hygiene.iter().all(|h| h.active.is_some_and(|n| n > 0)),
        "{:?}",
        r.hygiene
    );
}
