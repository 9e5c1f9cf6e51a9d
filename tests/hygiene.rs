//! Signs of cracked software (issue 16, first part): a host activating
//! Windows/Office against a KMS server on a public address gets one
//! `hygiene` event, with the server; an internal KMS host is the licensed
//! way and gives none; the switch turns it off.

use gatewatch::detect::EngineOptions;
use gatewatch::detect::hygiene::{HygieneSettings, KMS_PORT, Signal};
use gatewatch::testkit::corpus::csv_columns;
use gatewatch::testkit::tcp::{SYN, SYN_ACK, segment};
use gatewatch::testkit::{
    Collector, T0_US, bin, crafted_recipe, generator, ip, replay_to_end, text,
};
use std::collections::BTreeSet;

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
        },
        ..EngineOptions::default()
    };
    assert!(activations(off, "58.205.19.61", 3).hygiene.is_empty());
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
        let ok = std::process::Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .args([
                "--packets",
                "5000",
                "--units",
                "6",
                "--hosts-per-unit",
                "12",
            ])
            .args(["--kms", "5", "--seed", seed])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
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
            .filter(|v| v["event_type"] == "hygiene")
            .map(|v| {
                assert_eq!(v["signal"], "kms_activation_public");
                let detail = format!("{}:{}", v["dest_ip"].as_str().unwrap(), v["dest_port"]);
                let s = |k: &str| v[k].as_str().unwrap().to_string();
                (s("host_ip"), s("unit"), detail)
            })
            .collect();
        assert_eq!(got, want, "seed {seed}");
    }
}
