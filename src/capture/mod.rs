//! Packet sources: capture files ([`file`](mod@file)) and live interfaces ([`live`]).
//!
//! A source hands out [`RawPacket`]s that borrow the source's own buffer, so
//! the bytes of a packet are never copied between the reader and the decoder.
//! A source knows nothing of where packets go: files call a closure per
//! packet, a live capture thread hands them to a [`PacketSink`].

pub mod file;
pub mod link_state;
pub mod live;
mod mapped;
pub mod mapping;

use crate::packet::RawPacket;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where a live capture thread hands its packets (the pipeline's router).
pub trait PacketSink {
    /// Take one packet; its bytes are only borrowed for the call.
    fn packet(&mut self, p: &RawPacket<'_>);
    /// Nothing more to read for now: pass on whatever is buffered.
    fn flush(&mut self);
}

/// What a capture thread publishes about its interface, for metrics and
/// `/healthz`: written by the thread, read by anyone.
#[derive(Default)]
pub struct CaptureShared {
    pub name: String,
    pub packets: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub interface_drops: AtomicU64,
    pub errors: AtomicU64,
    /// Capturing with a working handle on a link that is up.
    pub up: AtomicBool,
    /// The capture thread has started and published its first link state.
    pub running: AtomicBool,
}

impl CaptureShared {
    /// The counters now.
    pub fn totals(&self) -> CaptureTotals {
        CaptureTotals {
            name: self.name.clone(),
            received: self.packets.load(Ordering::Relaxed),
            kernel_drops: self.kernel_drops.load(Ordering::Relaxed),
            interface_drops: self.interface_drops.load(Ordering::Relaxed),
        }
    }
}

/// One capture interface at exit: packets its thread read, and libpcap's
/// kernel and interface drop counts, summed over every handle it opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureTotals {
    pub name: String,
    pub received: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
}

/// A problem with the capture itself (not with a packet's contents).
#[derive(Clone, Debug)]
pub struct SourceProblem {
    pub file: PathBuf,
    /// 1-based number of the packet at or after which the problem occurred;
    /// 0 when the file could not be opened at all.
    pub packet: u64,
    pub kind: SourceProblemKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceProblemKind {
    /// The file could not be opened or read.
    Io(String),
    /// Neither a pcap nor a pcapng header.
    BadMagic,
    /// The file ends in the middle of a record.
    Truncated,
    /// A record that cannot be parsed; the rest of the file is unreachable.
    Corrupt(String),
    /// A pcapng packet names an interface that was never described.
    UnknownInterface(u32),
    /// Frames cut by the capture's snapshot length (summarised per file).
    SnaplenCut { frames: u64 },
    /// The file shrank (another program truncated it) while it was read.
    Shrunk,
    /// A pcapng interface declares a timestamp unit no clock has (above
    /// 10^19 or 2^63 per second); its times are read as microseconds.
    BadTimeUnit(u8),
}

impl fmt::Display for SourceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match &self.kind {
            SourceProblemKind::Io(e) => write!(f, "{file}: cannot read: {e}"),
            SourceProblemKind::BadMagic => write!(
                f,
                "{file}: not a pcap or pcapng file (bad magic number); skipped"
            ),
            SourceProblemKind::Truncated => write!(
                f,
                "{file}: packet {}: file ends inside a record (truncated capture); rest skipped",
                self.packet
            ),
            SourceProblemKind::Corrupt(e) => write!(
                f,
                "{file}: packet {}: corrupt record ({e}); rest of file skipped",
                self.packet
            ),
            SourceProblemKind::UnknownInterface(i) => write!(
                f,
                "{file}: packet {}: pcapng packet for undeclared interface {i}; packet skipped",
                self.packet
            ),
            SourceProblemKind::Shrunk => write!(
                f,
                "{file}: packet {}: the file shrank while it was read (truncated by another \
                 program); rest skipped, replay it again once it is complete",
                self.packet
            ),
            SourceProblemKind::BadTimeUnit(r) => write!(
                f,
                "{file}: packet {}: pcapng interface declares timestamp unit if_tsresol={r:#04x}, \
                 which no clock has; its times are read as microseconds",
                self.packet
            ),
            SourceProblemKind::SnaplenCut { frames } => write!(
                f,
                "{file}: {frames} frame(s) cut by the snapshot length, first at packet {}; \
                 inspected as far as captured",
                self.packet
            ),
        }
    }
}
