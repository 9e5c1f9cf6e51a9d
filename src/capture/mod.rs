//! Packet sources: capture files now, live interfaces beside them later.
//!
//! A source hands out [`RawPacket`]s that borrow the source's own buffer, so
//! the bytes of a packet are never copied between the reader and the decoder.

pub mod file;
pub mod link_state;
pub mod live;
mod mapped;

use std::fmt;
use std::path::PathBuf;

/// Link-layer framing of a packet, from the pcap/pcapng link type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// Bare IPv4 or IPv6, version taken from the first nibble.
    RawIp,
    Ipv4,
    Ipv6,
    LinuxSll,
    LinuxSll2,
    /// BSD loopback: 4-byte address family in host or network order.
    Null,
    Other(u32),
}

impl LinkType {
    /// Map a DLT/LINKTYPE number to our framing.
    pub fn from_dlt(dlt: i32) -> LinkType {
        match dlt {
            1 => LinkType::Ethernet,
            12 | 14 | 101 => LinkType::RawIp,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            0 | 108 => LinkType::Null,
            n => LinkType::Other(n as u32),
        }
    }
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Length on the wire; larger than `data.len()` when the snaplen cut it.
    pub orig_len: u32,
    pub link: LinkType,
    pub data: &'a [u8],
}

impl RawPacket<'_> {
    pub fn is_snaplen_cut(&self) -> bool {
        (self.orig_len as usize) > self.data.len()
    }
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
            SourceProblemKind::SnaplenCut { frames } => write!(
                f,
                "{file}: {frames} frame(s) cut by the snapshot length, first at packet {}; \
                 inspected as far as captured",
                self.packet
            ),
        }
    }
}
