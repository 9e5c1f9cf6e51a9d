//! Issue 14, adversarial load: each attack against its bound. The speed
//! and memory of the same attacks are in `benches/adversarial.rs`.

use gatewatch::detect::correlate::DEFAULT_CAP as LINKS_CAP;
use gatewatch::detect::{Engine, EngineOptions, MAX_NAMES_PER_DATAGRAM};
use gatewatch::tcp::flow::FlowConfig;
use gatewatch::testkit::attack::{
    FLOOD_NAMES, Tally, dns_answer_flood, flow_collisions, half_streams, name_flood, push,
};
use gatewatch::testkit::{crafted_recipe, one_unit, recipe_with, snapshot_of};

fn engine(flows: FlowConfig) -> Engine {
    let options = EngineOptions {
        flows,
        ..EngineOptions::default()
    };
    let snap = snapshot_of("ncsc", "botnet-c2", &["evil.example"], &[]);
    recipe_with(snap, one_unit("U1", "Phòng Một", "10.1.0.0/16"), options).engine(0)
}

#[test]
fn colliding_flow_tuples_stay_within_the_table() {
    let max = 4096;
    let mut e = engine(FlowConfig {
        max_flows: max,
        ..FlowConfig::default()
    });
    let n = 50_000;
    push(&mut e, &flow_collisions(n), &mut Tally::default());
    assert_eq!(e.flows().len(), max);
    assert_eq!(
        e.stats.flows.created,
        u64::from(n),
        "every tuple is its own flow"
    );
    assert_eq!(e.stats.flows.evicted, u64::from(n) - max as u64);
}

#[test]
fn a_name_flood_from_one_sender_is_cut_per_datagram() {
    let mut e = engine(FlowConfig::default());
    let n = 300;
    push(&mut e, &name_flood(n), &mut Tally::default());
    let kept = MAX_NAMES_PER_DATAGRAM as u64;
    assert_eq!(
        e.stats.host_names_over_limit,
        u64::from(n) * (u64::from(FLOOD_NAMES) - kept)
    );
    assert_eq!(e.stats.host_names_seen, u64::from(n) * kept);
    assert_eq!(e.known_names().len() as u64, u64::from(n) * kept);
}

#[test]
fn a_dns_answer_flood_learns_only_solicited_answers_within_the_cap() {
    let mut e = engine(FlowConfig::default());
    let n = 20_000;
    let mut t = Tally::default();
    push(&mut e, &dns_answer_flood(n), &mut t);
    assert_eq!(e.stats.dns_answers_unsolicited, u64::from(n / 2));
    assert!(e.links().len() <= LINKS_CAP, "{}", e.links().len());
    // Half the answers were solicited, 16 addresses each: far over the cap.
    assert!(e.stats.links.evicted >= u64::from(n / 2) * 16 - LINKS_CAP as u64);
    assert!(
        t.hits >= u64::from(n / 2),
        "every listed query is still found"
    );
}

#[test]
fn half_filled_streams_stay_within_the_reassembly_budget() {
    let budget = 4 << 20;
    let mut e = engine(FlowConfig {
        reassembly_bytes: budget,
        ..FlowConfig::default()
    });
    let n = 2_000;
    push(&mut e, &half_streams(n), &mut Tally::default());
    assert_eq!(e.flows().len(), n as usize);
    let held = e.stats.flows.reassembly_bytes;
    assert!(held <= budget as u64, "{held} bytes held, budget {budget}");
    assert!(e.stats.flows.reassembly_dropped > 0);
    // Without the budget, every flow would hold its 11 KiB.
    assert!(u64::from(n) * 11 * 1024 > budget as u64 * 4);
}

#[test]
fn the_attack_fixtures_parse_as_intended() {
    let mut e = crafted_recipe(&["evil.example"], EngineOptions::default()).engine(0);
    push(&mut e, &half_streams(2), &mut Tally::default());
    assert_eq!(e.stats.flows.created, 2);
    assert_eq!(e.stats.streams.gaps, 0);
}
