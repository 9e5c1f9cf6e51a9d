//! UDP beyond DNS in the engine: QUIC Initials on port 443 (the ClientHello's
//! server name, see [`crate::protocols::quic`]) and host-name announcements (DHCP,
//! NetBIOS, mDNS; see [`crate::protocols::hostnames`]).

use super::engine::{Engine, Pkt};
use super::{HitSource, Sink};
use crate::intel::Snapshot;
use crate::protocols::hostnames;
use crate::protocols::quic::Outcome;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

/// A name announced again is passed on to the store at most this often per
/// address and worker (the store keeps first and last seen; a chatty LAN
/// must not crowd hits out of the store's queue).
const NAME_REPEAT_NS: i64 = 300 * 1_000_000_000;
/// Addresses remembered for that throttle per worker (cleared when full).
const NAME_THROTTLE: usize = 65_536;

/// Names taken from one datagram: an mDNS announcement of one machine
/// carries its name for each of its addresses, a handful.
pub const MAX_NAMES_PER_DATAGRAM: usize = 16;

impl Engine {
    /// A client's datagram to UDP/443 that may be a QUIC Initial.
    pub(super) fn on_quic<S: Sink>(
        &mut self,
        snap: &Snapshot,
        payload: &[u8],
        p: &Pkt,
        sink: &mut S,
    ) {
        let mut h = FxHasher::default();
        (p.flow.src, p.flow.src_port, p.flow.dst, p.flow.dst_port).hash(&mut h);
        let has = match self.quic.offer(h.finish(), p.ts, payload) {
            Outcome::NotQuic | Outcome::Pending | Outcome::Repeat => return,
            Outcome::Failed(r) => {
                self.stats.error(r);
                return;
            }
            Outcome::Sni(sni) => sni.is_some_and(|s| self.name.set_host(s)),
        };
        self.stats.quic_client_hellos += 1;
        self.on_server_name(snap, has, HitSource::QuicSni, p, sink);
    }

    /// DHCP, NetBIOS or mDNS: remember what internal addresses are called.
    /// At most [`MAX_NAMES_PER_DATAGRAM`] names of a datagram are taken.
    pub(super) fn on_names<S: Sink>(&mut self, payload: &[u8], p: &Pkt, sink: &mut S) {
        let mut found = std::mem::take(&mut self.names_scratch);
        found.clear();
        let (sp, dp) = (p.flow.src_port, p.flow.dst_port);
        if let Err(r) = hostnames::parse(p.flow.src, p.flow.dst, sp, dp, payload, &mut found) {
            self.stats.error(r);
        }
        // A name is believed only from inside (or from 0.0.0.0, a DHCP
        // client without an address yet): a datagram from the Internet could
        // otherwise rename internal hosts in alerts and exports.
        let src = p.flow.src;
        if !found.is_empty() && !src.is_unspecified() && !self.units.is_internal(src) {
            self.stats.host_names_from_outside += found.len() as u64;
            found.clear();
        }
        if found.len() > MAX_NAMES_PER_DATAGRAM {
            // A host announces its own name or two; hundreds in one datagram
            // is a flood, and each new name costs a copy in `KnownNames`.
            self.stats.host_names_over_limit += (found.len() - MAX_NAMES_PER_DATAGRAM) as u64;
            found.truncate(MAX_NAMES_PER_DATAGRAM);
        }
        found.retain(|n| self.units.is_internal(n.ip));
        self.stats.host_names_seen += found.len() as u64;
        let (changed, held) = self.known.learn_all(p.ts, &found);
        self.stats.host_names_held += held;
        for (i, n) in found.drain(..).enumerate() {
            let changed = changed & (1 << i) != 0;
            if self.name_sent.len() >= NAME_THROTTLE {
                self.name_sent.clear();
            }
            let last = self.name_sent.insert(n.ip, p.ts);
            let due = last.is_none_or(|t| p.ts.saturating_sub(t) >= NAME_REPEAT_NS);
            if changed || due {
                sink.host_name(p.ts, n);
            }
        }
        self.names_scratch = found;
    }
}
