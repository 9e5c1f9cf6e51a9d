//! Which worker a packet goes to: its internal host's.
//!
//! Every packet of an internal host meets in one worker, so that worker's
//! engine holds all of the host's state: its DNS answers and the connections
//! that follow (correlation), its flows in both directions, and whatever a
//! per-host detector counts. Results therefore do not depend on the number of
//! workers or on their timing.
//!
//! Invariants:
//! - The key is symmetric: both directions of a flow get the same worker.
//! - One internal end: that end's address. Two internal ends: the end on the
//!   higher port (the client of the exchange: a host querying an internal
//!   resolver goes with its own traffic), the lower address on equal ports.
//!   No internal end (transit, or no internal networks configured): a
//!   symmetric hash of the 5-tuple, as before host routing.
//! - A host-name announcement (DHCP, NetBIOS, mDNS) goes to the worker of
//!   the address it names (a DHCP request comes from 0.0.0.0), so a hit
//!   carries the name exactly when one engine alone would have known it.
//! - DNS over UDP between a configured internal resolver and port 53
//!   outside goes to the resolver's worker and, marked learn-only, to every
//!   other worker: what the resolver looks up is learned by all of them (for
//!   any host), each in capture order, so no worker can see a connection
//!   before the answer that explains it.
//!
//! The price is balance: a host that carries a third of the packets keeps
//! its worker a third busy on its own (measured in the README's table).

use crate::decode::{DecodeCounters, Decoded, Transport, decode, flow_hash_of};
use crate::detect::attribution::Units;
use crate::packet::{Problems, RawPacket};
use crate::protocols::hostnames::{self, HostName};
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

/// Where one packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this worker only.
    One(usize),
    /// To this worker, and as learn-only copies to every other one.
    Everyone(usize),
}

/// The routing rules of one run, and scratch space for decoding.
pub struct Routes {
    units: Arc<Units>,
    /// Internal resolvers whose lookups every worker learns from (empty when
    /// correlation is off: then nothing is learned).
    resolvers: Vec<IpAddr>,
    counts: DecodeCounters,
    problems: Problems,
    names: Vec<HostName>,
}

const DNS_PORT: u16 = 53;

impl Routes {
    pub fn new(units: Arc<Units>, resolvers: Vec<IpAddr>) -> Routes {
        Routes {
            units,
            resolvers,
            counts: DecodeCounters::default(),
            problems: Problems::default(),
            names: Vec::new(),
        }
    }

    /// The route of `p` over `workers` workers. Packets without IP go to
    /// worker 0 (the worker counts them).
    pub fn route(&mut self, p: &RawPacket<'_>, workers: usize) -> Route {
        if workers <= 1 {
            return Route::One(0);
        }
        // The worker decodes again and counts; these counts are scratch.
        let Some(d) = decode(p, &mut self.counts, &mut self.problems) else {
            return Route::One(0);
        };
        let (host, key) = match self.named_host(&d) {
            Some(ip) => (Some(ip), host_key(ip)),
            None => self.key(&d),
        };
        let w = (key % workers as u64) as usize;
        if self.is_resolver_lookup(&d, host) {
            Route::Everyone(w)
        } else {
            Route::One(w)
        }
    }

    /// The internal host the packet belongs to, if any, and the routing key.
    fn key(&self, d: &Decoded<'_>) -> (Option<IpAddr>, u64) {
        let (sp, dp) = d.transport.ports();
        let host = match (self.units.is_internal(d.src), self.units.is_internal(d.dst)) {
            (true, false) => Some(d.src),
            (false, true) => Some(d.dst),
            (true, true) if sp != dp => Some(if sp > dp { d.src } else { d.dst }),
            (true, true) => Some(d.src.min(d.dst)),
            (false, false) => None,
        };
        (host, host.map_or_else(|| flow_hash_of(d), host_key))
    }

    /// The internal address a name announcement names. Parsed here and
    /// again by the worker: announcements are a sliver of the traffic.
    fn named_host(&mut self, d: &Decoded<'_>) -> Option<IpAddr> {
        let Transport::Udp {
            src_port,
            dst_port,
            payload,
        } = d.transport
        else {
            return None;
        };
        if !hostnames::is_name_port(src_port, dst_port) {
            return None;
        }
        self.names.clear();
        let _ = hostnames::parse(d.src, d.dst, src_port, dst_port, payload, &mut self.names);
        let units = &self.units;
        self.names
            .iter()
            .map(|n| n.ip)
            .find(|ip| units.is_internal(*ip))
    }

    fn is_resolver_lookup(&self, d: &Decoded<'_>, host: Option<IpAddr>) -> bool {
        let Some(host) = host else { return false };
        if self.resolvers.is_empty() || !self.resolvers.contains(&host) {
            return false;
        }
        let Transport::Udp {
            src_port, dst_port, ..
        } = d.transport
        else {
            return false;
        };
        (host == d.src && dst_port == DNS_PORT) || (host == d.dst && src_port == DNS_PORT)
    }
}

/// The key of a host's packets. FxHash leaves low bits weak for small
/// inputs; the high half is folded in, as [`flow_hash_of`] does.
fn host_key(ip: IpAddr) -> u64 {
    let mut h = FxHasher::default();
    ip.hash(&mut h);
    let v = h.finish();
    v ^ (v >> 29) ^ (v >> 47)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{ip, tcp_frame as tcp_kit, udp_frame as udp_kit, units_from};

    fn tcp_frame(src: &str, dst: &str, sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
        tcp_kit(ip(src), ip(dst), sp, dp, 1, payload)
    }

    fn udp_frame(src: &str, dst: &str, sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
        udp_kit(ip(src), ip(dst), sp, dp, None, payload)
    }

    fn routes(resolvers: &[&str]) -> Routes {
        let units = units_from("code,name,cidrs\nA,A,10.0.0.0/16\n");
        let resolvers = resolvers.iter().map(|r| r.parse().unwrap()).collect();
        Routes::new(Arc::new(units), resolvers)
    }

    fn pkt(frame: &[u8]) -> RawPacket<'_> {
        RawPacket {
            ts_ns: 0,
            orig_len: frame.len() as u32,
            link: crate::packet::LinkType::Ethernet,
            data: frame,
        }
    }

    /// All of a host's traffic, whatever the remote, port or direction,
    /// goes to one worker; hosts spread over all workers.
    #[test]
    fn a_host_has_one_worker() {
        let mut r = routes(&[]);
        let mut used = std::collections::HashSet::new();
        for h in 0..64u8 {
            let host = format!("10.0.1.{h}");
            let mut lanes = std::collections::HashSet::new();
            for (i, remote) in ["8.8.8.8", "203.0.113.7", "198.51.100.1"]
                .iter()
                .enumerate()
            {
                let port = 40_000 + i as u16;
                let out = tcp_frame(&host, remote, port, 443, b"");
                let back = tcp_frame(remote, &host, 443, port, b"");
                let dns = udp_frame(remote, &host, 53, port, b"x");
                for f in [out, back, dns] {
                    match r.route(&pkt(&f), 4) {
                        Route::One(w) => lanes.insert(w),
                        Route::Everyone(_) => panic!("no resolver configured"),
                    };
                }
            }
            assert_eq!(lanes.len(), 1, "host {host} split over {lanes:?}");
            used.extend(lanes);
        }
        assert_eq!(used.len(), 4, "hosts should spread over all workers");
    }

    #[test]
    fn two_internal_ends_follow_the_client() {
        let mut r = routes(&[]);
        let own = tcp_frame("10.0.2.9", "203.0.113.7", 40_000, 443, b"");
        let Route::One(w) = r.route(&pkt(&own), 8) else {
            panic!()
        };
        for f in [
            udp_frame("10.0.2.9", "10.0.0.53", 41_000, 53, b"q"),
            udp_frame("10.0.0.53", "10.0.2.9", 53, 41_000, b"a"),
        ] {
            assert_eq!(r.route(&pkt(&f), 8), Route::One(w));
        }
    }

    #[test]
    fn a_resolvers_lookups_go_to_everyone() {
        let mut r = routes(&["10.0.0.53"]);
        let q = udp_frame("10.0.0.53", "8.8.8.8", 33_000, 53, b"q");
        let a = udp_frame("8.8.8.8", "10.0.0.53", 53, 33_000, b"a");
        let (Route::Everyone(wq), Route::Everyone(wa)) =
            (r.route(&pkt(&q), 4), r.route(&pkt(&a), 4))
        else {
            panic!("resolver lookups are for every worker")
        };
        assert_eq!(wq, wa);
        // Its other traffic, and the answers it gives hosts, are its own.
        let web = tcp_frame("10.0.0.53", "8.8.8.8", 33_001, 443, b"");
        let served = udp_frame("10.0.0.53", "10.0.3.3", 53, 50_000, b"a");
        assert!(matches!(r.route(&pkt(&web), 4), Route::One(_)));
        assert!(matches!(r.route(&pkt(&served), 4), Route::One(_)));
        assert_eq!(r.route(&pkt(&q), 1), Route::One(0));
    }

    /// A DHCP request comes from 0.0.0.0: it goes to the worker of the
    /// address it asks for, where that host's hits are.
    #[test]
    fn a_name_goes_to_the_host_it_names() {
        let mut r = routes(&[]);
        for h in 0..16u8 {
            let host = format!("10.0.4.{h}");
            let own = tcp_frame(&host, "203.0.113.7", 40_000, 443, b"");
            let Route::One(w) = r.route(&pkt(&own), 4) else {
                panic!()
            };
            let ask = crate::testkit::dhcp_request(
                [2, 0, 0, 0, 0, h],
                1,
                host.parse().ok(),
                Some("PC"),
                None,
            );
            let f = udp_kit(ip("0.0.0.0"), ip("255.255.255.255"), 68, 67, None, &ask);
            assert_eq!(r.route(&pkt(&f), 4), Route::One(w), "{host}");
        }
    }
}
