//! Surviving a bug: a panic while one packet is processed costs that packet
//! and the state of its flow, never the worker.
//!
//! The engine's state stays usable after an unwind: the snapshot is taken
//! again when the engine holds none, flows that ended are still queued for
//! the next packet, and the packet's own flow (its reassembly buffers and
//! parser state, the likeliest place of a half-made change) is dropped and
//! its hits so far reported. If dropping it panics too, every flow is
//! dropped. The QUIC assembler of a UDP packet starts over likewise.

use super::Sink;
use super::engine::{Engine, flow_key};
use crate::decode;
use crate::packet::RawPacket;
use crate::protocols::quic::QuicAssembler;
use std::panic::{AssertUnwindSafe, catch_unwind};

impl Engine {
    /// [`Engine::process`], surviving a panic: the packet's flow is reset
    /// and the panic counted (`panics_recovered`). Returns false when the
    /// packet panicked, so the caller can log where it was.
    #[inline]
    pub fn process_contained<S: Sink>(&mut self, raw: &RawPacket<'_>, sink: &mut S) -> bool {
        if catch_unwind(AssertUnwindSafe(|| self.process(raw, sink))).is_ok() {
            return true;
        }
        self.stats.panics_recovered += 1;
        if catch_unwind(AssertUnwindSafe(|| self.forget_flow_of(raw))).is_err() {
            self.flows.clear();
        }
        false
    }

    /// [`Engine::learn_from`], surviving a panic (counted, nothing to reset:
    /// learning keeps no flow).
    #[inline]
    pub fn learn_contained(&mut self, raw: &RawPacket<'_>) -> bool {
        if catch_unwind(AssertUnwindSafe(|| self.learn_from(raw))).is_ok() {
            return true;
        }
        self.stats.panics_recovered += 1;
        false
    }

    /// Drop the flow `raw` belongs to, reporting what it hit.
    fn forget_flow_of(&mut self, raw: &RawPacket<'_>) {
        let mut stats = crate::decode::DecodeCounters::default();
        let mut problems = crate::packet::Problems::default();
        let Some(d) = decode::decode(raw, &mut stats, &mut problems) else {
            return;
        };
        let k = flow_key(&d);
        if k.proto == crate::tcp::flow::UDP {
            self.quic = QuicAssembler::new();
        }
        let ends = ((k.src, k.src_port), (k.dst, k.dst_port));
        let mut ended = std::mem::take(&mut self.ended);
        self.flows.forget(ends.0, ends.1, k.proto, &mut ended);
        self.ended = ended;
        self.stats.flows = self.flows.counters;
    }
}
