//! Heuristics on crafted traffic: each finds its behaviour, attributes it to
//! the host and its unit, names itself with evidence; the clean look-alikes,
//! the allowlists and the switches keep it quiet; floods keep its state
//! bounded.

use gatewatch::detect::heuristics::Settings;
use gatewatch::detect::{EngineOptions, Hit, HitSource};
use gatewatch::testkit::behaviour::{
    self, Beacon, Frames, browser, dga_names, lookups, merge, outside, scan, tunnel_names,
};
use gatewatch::testkit::synth::Rng;
use gatewatch::testkit::{T0_US, crafted_recipe, ip, replay_to_end};
use hickory_proto::op::ResponseCode;
use std::net::IpAddr;

const HOST: &str = "10.1.0.5";
const RESOLVER: &str = "8.8.8.8";

fn run_with(settings: Settings, block: &[&str], frames: &Frames) -> Vec<Hit> {
    let options = EngineOptions {
        heuristics: settings,
        ..EngineOptions::default()
    };
    replay_to_end(&mut crafted_recipe(block, options).engine(0), frames).hits
}

fn run(frames: &Frames) -> Vec<Hit> {
    run_with(Settings::default(), &[], frames)
}

fn heuristic_hits(hits: &[Hit]) -> Vec<(String, &'static str, String)> {
    hits.iter()
        .filter_map(|h| {
            Some((
                h.host.to_string(),
                h.heuristic()?,
                h.indicator.value.to_string(),
            ))
        })
        .collect()
}

/// Addresses on the Internet and in the unit, alternately.
fn targets(n: u64, port: u16) -> Vec<(IpAddr, u16)> {
    (0..n)
        .map(|i| match i % 2 {
            0 => (outside(i), port),
            _ => (ip(&format!("10.1.{}.{}", 1 + i / 200, 1 + i % 200)), port),
        })
        .collect()
}

#[test]
fn a_scan_of_40_addresses_on_an_infection_port_is_found() {
    // As in Maltrail's test capture: 40 addresses on 445, over ten seconds,
    // a few refused.
    let f = scan(ip(HOST), &targets(40, 445), T0_US, 250_000, None, true);
    let hits = run(&f);
    assert_eq!(
        heuristic_hits(&hits),
        [(HOST.into(), "scan", "tcp/445".into())]
    );
    let h = &hits[0];
    assert_eq!(h.unit.code, "U1");
    assert_eq!(h.source, HitSource::Heuristic);
    assert_eq!(&*h.indicator.feed.category, "scanning");
    let b = h.behaviour.as_ref().unwrap();
    assert!(b.offender);
    let n = b.evidence["distinct_addresses"].as_u64().unwrap();
    // Reported once confirmed (half a second after the 32nd address), not
    // at the end of the scan.
    assert!((32..=40).contains(&n), "{}", b.evidence);
    assert_eq!(b.evidence["port"], 445);
    assert_eq!(b.evidence["answered"], 0);
    assert!(b.signature.contains("tcp/445"), "{}", b.signature);
}

#[test]
fn a_vertical_scan_is_found() {
    let victim = ip("10.1.9.9");
    let t: Vec<_> = (0..60).map(|p| (victim, 1000 + p)).collect();
    let hits = run(&scan(ip(HOST), &t, T0_US, 20_000, None, true));
    assert_eq!(
        heuristic_hits(&hits),
        [(HOST.into(), "scan", "tcp/*@10.1.9.9".into())]
    );
}

#[test]
fn completed_connections_never_count() {
    // A busy page: sixty sites, every one answers.
    let hits = run(&browser(ip(HOST), 0, 60, T0_US, 20_000));
    assert!(heuristic_hits(&hits).is_empty(), "{hits:?}");
    // Thirty unanswered addresses: under the threshold.
    let hits = run(&scan(
        ip(HOST),
        &targets(30, 445),
        T0_US,
        10_000,
        None,
        false,
    ));
    assert!(heuristic_hits(&hits).is_empty());
    // Half answered: not "mostly unanswered".
    let hits = run(&scan(
        ip(HOST),
        &targets(100, 8080),
        T0_US,
        10_000,
        Some(2),
        false,
    ));
    assert!(heuristic_hits(&hits).is_empty());
}

#[test]
fn a_scan_slower_than_the_window_is_not_one() {
    let mut s = Settings::default();
    s.scan.window_s = 60;
    // 40 addresses, one every 2 s: 80 s, more than the 60 s window.
    let f = scan(ip(HOST), &targets(40, 445), T0_US, 2_000_000, None, false);
    assert!(heuristic_hits(&run_with(s.clone(), &[], &f)).is_empty());
    s.scan.window_s = 300;
    assert_eq!(heuristic_hits(&run_with(s, &[], &f)).len(), 1);
}

#[test]
fn nxdomain_bursts_of_random_names_are_dga() {
    let mut rng = Rng::new(7);
    let names = dga_names(&mut rng, 25);
    let f = lookups(
        ip(HOST),
        ip(RESOLVER),
        &names,
        ResponseCode::NXDomain,
        T0_US,
        40_000,
    );
    let hits = run(&f);
    assert_eq!(
        heuristic_hits(&hits),
        [(HOST.into(), "dga", "nxdomain".into())]
    );
    let ev = &hits[0].behaviour.as_ref().unwrap().evidence;
    assert!(ev["distinct_domains"].as_u64().unwrap() >= 10, "{ev}");
    let sample = ev["sample_names"][0].as_str().unwrap();
    assert!(names.iter().any(|n| n == sample), "{sample}");
}

#[test]
fn cdn_names_typos_and_search_suffixes_are_not_dga() {
    let mut rng = Rng::new(8);
    let (h, r) = (ip(HOST), ip(RESOLVER));
    let cdn: Vec<String> = (0..40)
        .map(|_| {
            format!(
                "d{}.cloudfront.net",
                behaviour::random_label(&mut rng, 13, behaviour::ALNUM)
            )
        })
        .collect();
    let typos: Vec<String> = ["wwgoogle.com", "facebok.com", "gooogle.com.vn", "zalo.mee"]
        .map(String::from)
        .to_vec();
    // A misconfigured search suffix: many random-looking names, one
    // registered domain.
    let suffixed: Vec<String> = (0..40)
        .map(|_| {
            format!(
                "{}.corp-search.vn",
                behaviour::random_label(&mut rng, 14, behaviour::ALNUM)
            )
        })
        .collect();
    let f = merge(vec![
        lookups(h, r, &cdn, ResponseCode::NoError, T0_US, 30_000),
        lookups(h, r, &typos, ResponseCode::NXDomain, T0_US + 5_000, 30_000),
        lookups(
            h,
            r,
            &suffixed,
            ResponseCode::NXDomain,
            T0_US + 10_000,
            30_000,
        ),
    ]);
    assert!(heuristic_hits(&run(&f)).is_empty());
}

#[test]
fn data_in_query_names_is_a_tunnel_and_antivirus_zones_are_exempt() {
    let mut rng = Rng::new(9);
    let (h, r) = (ip(HOST), ip(RESOLVER));
    let names = tunnel_names(&mut rng, "t.exfil-example.com", 60);
    let f = lookups(h, r, &names, ResponseCode::NoError, T0_US, 1_000_000);
    let hits = run(&f);
    assert_eq!(
        heuristic_hits(&hits),
        [(HOST.into(), "dns_tunnel", "exfil-example.com".into())]
    );
    let ev = &hits[0].behaviour.as_ref().unwrap().evidence;
    assert!(ev["name_bytes"].as_u64().unwrap() >= 2_000, "{ev}");
    // File-reputation look-ups: hashes as labels, by design.
    let av = tunnel_names(&mut rng, "avqs.mcafee.com", 60);
    let f = lookups(h, r, &av, ResponseCode::NoError, T0_US, 1_000_000);
    assert!(heuristic_hits(&run(&f)).is_empty());
    // The same names in one second: too short a span to be a session.
    let f = lookups(h, r, &names, ResponseCode::NoError, T0_US, 15_000);
    assert!(heuristic_hits(&run(&f)).is_empty());
}

#[test]
fn steady_beacons_are_a_suspicion_not_an_offender() {
    let mut rng = Rng::new(10);
    let b = Beacon {
        host: ip(HOST),
        dst: ip("45.9.9.9"),
        port: 443,
        n: 14,
        t0_us: T0_US,
        period_us: 60_000_000,
        jitter_us: 1_000_000,
    };
    let f = b.frames(&mut rng);
    let hits = run(&f);
    assert_eq!(
        heuristic_hits(&hits),
        [(HOST.into(), "beacon", "45.9.9.9:443".into())]
    );
    assert!(!hits[0].offender());
    assert_eq!(hits[0].indicator.feed.severity.as_str(), "low");
    let mut s = Settings::default();
    s.beacon.offender = true;
    assert!(run_with(s, &[], &f)[0].offender());
    // Jitter of ±25 s on a minute: no period.
    let jittery = Beacon {
        jitter_us: 25_000_000,
        ..b
    };
    let f = jittery.frames(&mut rng);
    assert!(heuristic_hits(&run(&f)).is_empty());
    // A listed destination is the list's hit, not a beacon too.
    let f = b.frames(&mut rng);
    let hits = run_with(Settings::default(), &["45.9.9.9"], &f);
    assert!(heuristic_hits(&hits).is_empty());
    assert!(hits.iter().all(|x| x.source == HitSource::Ip));
}

#[test]
fn an_answer_pointing_at_a_listed_address_is_a_hit_without_a_connection() {
    let (h, r) = (ip(HOST), ip(RESOLVER));
    let names = ["parked-campaign.example".to_string()];
    let q = gatewatch::testkit::dns_query(1, &names[0], hickory_proto::rr::RecordType::A);
    let a = behaviour::dns_answer(
        1,
        &names[0],
        ResponseCode::NoError,
        Some("45.66.77.88".parse().unwrap()),
    );
    let f: Frames = vec![
        (
            T0_US,
            gatewatch::testkit::udp_frame(h, r, 5555, 53, None, &q),
        ),
        (
            T0_US + 900,
            gatewatch::testkit::udp_frame(r, h, 53, 5555, None, &a),
        ),
    ];
    let hits = run_with(Settings::default(), &["45.66.77.88"], &f);
    assert_eq!(
        heuristic_hits(&hits),
        [(HOST.into(), "sinkhole_answer", "45.66.77.88".into())]
    );
    assert_eq!(hits[0].source, HitSource::DnsAnswer);
    let ev = &hits[0].behaviour.as_ref().unwrap().evidence;
    assert_eq!(ev["query"], "parked-campaign.example");
    let mut off = Settings::default();
    off.sinkhole.enabled = false;
    assert!(run_with(off, &["45.66.77.88"], &f).is_empty());
}

/// A scanner and a DGA host together, for the allowlist and switch tests.
fn two_infections() -> Frames {
    let mut rng = Rng::new(11);
    let names = dga_names(&mut rng, 20);
    merge(vec![
        scan(ip(HOST), &targets(60, 445), T0_US, 10_000, None, false),
        lookups(
            ip("10.1.0.6"),
            ip(RESOLVER),
            &names,
            ResponseCode::NXDomain,
            T0_US,
            30_000,
        ),
    ])
}

#[test]
fn allowlists_by_host_network_and_destination() {
    let f = two_infections();
    assert_eq!(heuristic_hits(&run(&f)).len(), 2);
    let quiet = |edit: &dyn Fn(&mut Settings)| {
        let mut s = Settings::default();
        edit(&mut s);
        heuristic_hits(&run_with(s, &[], &f))
    };
    let scan_only =
        |edit: &dyn Fn(&mut Settings)| quiet(edit).iter().filter(|h| h.1 == "scan").count();
    assert_eq!(scan_only(&|s| s.scan.allow_hosts = vec![HOST.into()]), 0);
    assert_eq!(
        quiet(&|s| s.allow_hosts = vec!["10.1.0.0/24".into()]).len(),
        0
    );
    // The targets: half outside, half in 10.1.1.0/24; allowing the internal
    // half leaves thirty, under the threshold.
    assert_eq!(
        scan_only(&|s| s.scan.allow_destinations = vec!["10.1.1.0/24".into()]),
        0
    );
    assert_eq!(scan_only(&|s| s.dga.allow_hosts = vec![HOST.into()]), 1);
    // The feed allowlist applies too.
    let options = EngineOptions::default();
    let snap = gatewatch::testkit::snapshot_of("ncsc", "botnet-c2", &[], &[HOST]);
    let recipe = gatewatch::testkit::recipe_with(
        snap,
        gatewatch::testkit::one_unit("U1", "Phòng Một", "10.1.0.0/16"),
        options,
    );
    let mut e = recipe.engine(0);
    let c = replay_to_end(&mut e, &f);
    let left = heuristic_hits(&c.hits);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1, "dga");
}

#[test]
fn every_heuristic_can_be_switched_off() {
    let f = two_infections();
    let s = Settings {
        enabled: false,
        ..Settings::default()
    };
    assert!(run_with(s, &[], &f).is_empty());
    let mut s = Settings::default();
    s.scan.enabled = false;
    let left = heuristic_hits(&run_with(s, &[], &f));
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1, "dga");
}

/// An engine whose heuristic tables hold 4,096 entries each (the DGA and
/// tunnel tables a sixteenth), for the flood tests.
fn small_tables() -> gatewatch::detect::Engine {
    let heuristics = Settings {
        max_tracked: 4_096,
        ..Settings::default()
    };
    let options = EngineOptions {
        heuristics,
        ..EngineOptions::default()
    };
    crafted_recipe(&[], options).engine(0)
}

#[test]
fn a_flood_of_new_hosts_keeps_state_bounded_and_a_scanner_still_found() {
    let mut e = small_tables();
    // 60,000 spoofed internal sources, one SYN each, with a real scanner
    // among them.
    let mut frames = Vec::new();
    for i in 0..60_000u64 {
        let src = ip(&format!("10.1.{}.{}", 10 + i / 250, 1 + i % 250));
        frames.push((
            T0_US + i * 10,
            gatewatch::testkit::tcp::segment(
                src,
                outside(i),
                1234,
                445,
                1,
                gatewatch::testkit::tcp::SYN,
                &[],
            ),
        ));
    }
    frames.extend(scan(
        ip(HOST),
        &targets(80, 445),
        T0_US + 5,
        7_000,
        None,
        false,
    ));
    frames.sort_by_key(|(t, _)| *t);
    let c = replay_to_end(&mut e, &frames);
    let live = e.heuristics().live();
    assert!(live[0] <= 2 * 4_096, "scan tables hold {}", live[0]);
    assert!(live[3] <= 4_096, "beacon table holds {}", live[3]);
    assert!(
        e.stats.heuristics.evicted[0] > 50_000,
        "{:?}",
        e.stats.heuristics
    );
    assert_eq!(
        heuristic_hits(&c.hits),
        [(HOST.into(), "scan", "tcp/445".into())]
    );
}

#[test]
fn a_flood_of_nxdomain_from_many_hosts_is_bounded() {
    let mut e = small_tables();
    let mut rng = Rng::new(12);
    let names = dga_names(&mut rng, 20_000);
    let mut frames = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let src = ip(&format!("10.1.{}.{}", 10 + i / 250, 1 + i % 250));
        let one = lookups(
            src,
            ip(RESOLVER),
            std::slice::from_ref(n),
            ResponseCode::NXDomain,
            T0_US + i as u64 * 50,
            10,
        );
        frames.extend(one);
    }
    frames.sort_by_key(|(t, _)| *t);
    let c = replay_to_end(&mut e, &frames);
    assert!(e.heuristics().live()[1] <= 4_096 / 16);
    assert!(
        e.stats.heuristics.evicted[1] > 15_000,
        "{:?}",
        e.stats.heuristics
    );
    assert!(heuristic_hits(&c.hits).is_empty());
}

#[test]
fn bad_settings_are_all_listed() {
    let mut s = Settings::default();
    s.scan.min_addresses = 1;
    s.dga.window_s = 0;
    s.beacon.max_jitter = 2.0;
    s.tunnel.exempt_zones = vec!["not a zone".into()];
    s.allow_hosts = vec!["10.0.0.300".into()];
    let p = s.problems("gatewatch.toml");
    assert_eq!(p.len(), 5, "{p:#?}");
    for key in [
        "min_addresses",
        "window_s",
        "max_jitter",
        "exempt_zones",
        "allow_hosts",
    ] {
        assert!(
            p.iter()
                .any(|l| l.contains(key) && l.starts_with("gatewatch.toml: [heuristics")),
            "{key}: {p:#?}"
        );
    }
}

#[test]
fn the_heuristics_table_reads_from_a_gatewatch_toml() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gatewatch.toml");
    std::fs::write(
        &p,
        "sensor_id = \"x\"\n[heuristics.scan]\nmin_addresses = 50\nallow_hosts = [\"10.1.0.5\"]\n[heuristics.beacon]\nenabled = false\n",
    )
    .unwrap();
    let s = gatewatch::detect::heuristics::settings::load(&p).unwrap();
    assert_eq!(s.scan.min_addresses, 50);
    assert!(!s.beacon.enabled);
    assert_eq!(s.dga.min_domains, Settings::default().dga.min_domains);
    std::fs::write(&p, "[heuristics.scan]\nmin_addresses = \"many\"\n").unwrap();
    let e = gatewatch::detect::heuristics::settings::load(&p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gatewatch.toml:2"), "{e}");
    std::fs::write(&p, "[heuristics.scan]\nmin_adresses = 3\n").unwrap();
    let e = gatewatch::detect::heuristics::settings::load(&p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("min_adresses"), "{e}");
}

#[test]
fn the_shipped_config_states_the_defaults() {
    let p = gatewatch::testkit::root().join("deploy/gatewatch.toml");
    let c = gatewatch::run::config::Config::load(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        format!("{:?}", c.heuristics),
        format!("{:?}", Settings::default()),
        "deploy/gatewatch.toml and Settings::default() disagree"
    );
    let d = gatewatch::run::config::Config::default();
    assert_eq!(c.history, d.history, "[history] differs from the defaults");
    let key = |h: &gatewatch::detect::hygiene::HygieneSettings| {
        let lists = (h.crack_list.clone(), h.antivirus_list.clone());
        (
            h.kms_activation,
            h.crack_domains,
            h.antivirus,
            lists,
            h.lists.counts(),
        )
    };
    assert_eq!(
        key(&c.hygiene),
        key(&d.hygiene),
        "[hygiene] differs from the defaults"
    );
}
