//! The fixture kit shared by the tests, the benchmarks and the fuzz targets:
//! capture writers ([`PcapWriter`], [`PcapNgWriter`]), frame and message
//! builders, tunnels to wrap frames in ([`wrap`]), engines and replays that
//! collect what they find, the tshark ground truth of real captures,
//! synthetic mixes and feed sets, and the network-namespace rig of the live
//! tests.
//!
//! Compiled for `cargo test` and with the `testkit` feature (the tests,
//! benchmarks and fuzz targets turn it on); never in the release binary.

pub mod attack;
pub mod behaviour;
pub mod central;
pub mod console;
pub mod corpus;
mod encap;
mod frames;
pub mod fuzz;
mod harness;
pub mod history;
mod http;
pub mod live;
pub mod names;
mod pcap;
pub mod postgres;
mod process;
pub mod snapshot_cli;
pub mod source;
pub mod synth;
pub mod tcp;
mod truth;
mod wait;
pub mod workers;

pub use encap::{TUNNEL_DST, TUNNEL_SRC, Wrap, gre_packet, wrap, wrap_all, wrap_between};
pub use frames::{client_hello_record, dns_query, dns_response, ip, sni_ext, tcp_frame, udp_frame};
pub use harness::{
    Collector, Replayed, Seen, T0_US, crafted_engine, crafted_recipe, dir_recipe, engine,
    gateway_small_hits, load_feeds, load_units, no_units, one_unit, recipe_with, replay_at_secs,
    replay_collect, replay_dir, replay_frames, replay_recipe, replay_to_end, snapshot_of,
    units_from,
};
pub use http::{http_request, http_request_with};
pub use names::{dhcp_request, mdns_announcement, nbns_registration};
pub use pcap::{PcapNgWriter, PcapWriter};
pub use process::{
    DEMO_CAPTURES, ICT, bench_arg, bin, bin_path, bin_tz, corpus, demo_replay, demo_store,
    generator, root, text,
};
pub use truth::{Summary, capture_files, captures_with_summaries, shared_data, summary_path};
pub use wait::{wait_for, wait_until};

pub(crate) use frames::ip_layer;
