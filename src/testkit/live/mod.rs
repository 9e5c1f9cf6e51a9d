//! The network-namespace rig of the live-capture tests (`tests/live*.rs`):
//! a throw-away namespace with veth pairs ([`Netns`]), `gatewatch run`
//! inside it ([`Sensor`]), tcpreplay sending real captures, the lock that
//! runs traffic tests one at a time ([`serial`]), and reading what the run
//! produced against `gatewatch replay` of the same captures.
//!
//! Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN), iproute2, tcpreplay and
//! curl. Where the machine lacks any of it the helpers panic with the
//! reason: a live test never passes silently without having run.

mod netns;
mod rate;
mod results;
mod sensor;

pub use netns::{Netns, Proc, require_tool, run_ok};
pub use rate::{RateRun, dns_mix_capture, run_at_rate};
pub use results::{
    AlertKey, alert_keys, alert_keys_in, appended, assert_same_hits, capture_line, capture_row,
    capture_series, combined_config, count, describe, metric, metric_or_0, pcap_packets, read,
    replay_alerts, stats_total_hits, stats_value,
};
pub use sensor::{
    C2_ADDR, C2_PCAP, MTU, PPS, RX, SMALL_PCAP, Sensor, Serial, TX, assert_no_drops,
    assert_no_drops_on, capture_ns, healthz, require_traffic_tools, run_expecting_exit, serial,
    tcpreplay, tcpreplay_all, tcpreplay_all_on, tcpreplay_finish, tcpreplay_on, wait_health,
    wait_processed,
};
