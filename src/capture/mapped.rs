//! Classic pcap read straight out of an mmap: the replay fast path.
//!
//! Why not pcap-parser here: its streaming reader copies every record twice
//! (kernel `read` into its buffer, then a `memmove` on refill). On the 2M-packet
//! gateway mix that was 31% of the capture thread's cycles (perf, 1 worker),
//! and the capture thread was the pipeline's bottleneck. Walking the mapped
//! file hands out packets that borrow the page cache directly. pcapng and
//! gzip still go through pcap-parser's reader in `file.rs`.
//!
//! Invariants: every slice handed to the callback lies inside the mapping and
//! lives only for the call; a record header or body that crosses the end of
//! the file is reported as `Truncated`, a record longer than
//! [`super::file::MAX_RECORD`] as `Corrupt` (both stop the walk, as the
//! streaming reader does); a file that shrinks while it is walked stops the
//! walk with `Shrunk` before any byte past its new end is handed out (see
//! [`super::mapping`]).

use super::file::{FileReport, MAX_RECORD, SnaplenCuts};
use super::mapping::{Mapping, touch};
use super::{SourceProblem, SourceProblemKind};
use crate::packet::{LinkType, RawPacket};
use std::fs::File;
use std::path::Path;

/// Pages behind the read position are released in steps of this size, so
/// replaying a file larger than memory keeps the resident set small.
const RELEASE_STEP: usize = 32 << 20;
/// Released pages trail the read position by this much: packets still queued
/// for workers (zero-copy batches) normally lie inside it. One that does not
/// is re-read from the page cache on access; correct, only slower.
const RELEASE_LAG: usize = 64 << 20;

/// Byte order and timestamp resolution from the global header's magic.
#[derive(Clone, Copy)]
struct Magic {
    big_endian: bool,
    nanos: bool,
}

fn magic(b: &[u8]) -> Option<Magic> {
    let m = [b[0], b[1], b[2], b[3]];
    let (big_endian, nanos) = match m {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return None,
    };
    Some(Magic { big_endian, nanos })
}

/// Whether `b` (at least 24 bytes) starts with a classic pcap magic.
pub(super) fn is_pcap(b: &[u8]) -> bool {
    magic(b).is_some()
}

impl Magic {
    /// The header field at `o`, in the file's byte order.
    #[inline]
    fn u32_at(self, m: &[u8], o: usize) -> u32 {
        let b = [m[o], m[o + 1], m[o + 2], m[o + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
}

/// Map `path` if it is a classic pcap with a complete global header; `None`
/// sends the caller to the streaming reader (pcapng, gzip, pipes, short
/// files), which then reports any problem itself.
pub(super) fn try_map(path: &Path) -> Option<Mapping> {
    let f = File::open(path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let m = Mapping::open(&f)?;
    if m.len() < 24 || magic(&m).is_none() {
        return None;
    }
    m.advise(memmap2::Advice::Sequential);
    Some(m)
}

/// Walk the records of a classic pcap held in `m`: the bytes of `map` (see
/// [`try_map`]), or a file already in memory when `map` is `None`.
pub(super) fn walk(
    path: &Path,
    m: &[u8],
    map: Option<&Mapping>,
    report: &mut FileReport,
    mut on_packet: impl FnMut(&RawPacket<'_>),
) {
    if m.len() < 24 {
        return;
    }
    let Some(mg) = magic(m) else { return };
    let link = LinkType::from_dlt(mg.u32_at(m, 20) as i32);
    let mut off = 24usize;
    let mut released = 0usize;
    let mut cuts = SnaplenCuts::default();
    let mut stop: Option<SourceProblemKind> = None;
    while off < m.len() {
        let p = match record(m, mg, link, off) {
            Ok(p) => p,
            Err(kind) => {
                stop = Some(kind);
                break;
            }
        };
        if let Some(map) = map {
            touch(p.data);
            if map.shrunk() {
                stop = Some(SourceProblemKind::Shrunk);
                break;
            }
        }
        let caplen = p.data.len();
        report.packets += 1;
        report.bytes += caplen as u64;
        cuts.note(&p, report.packets);
        on_packet(&p);
        off += 16 + caplen;
        if let Some(map) = map {
            release_behind(map, off, &mut released);
        }
    }
    if let Some(kind) = stop {
        report.problems.push(SourceProblem {
            file: path.to_path_buf(),
            packet: report.packets + 1,
            kind,
        });
    }
    report.problems.extend(cuts.problem(path));
}

/// The record whose header starts at `off`, or the problem that stops the
/// walk there (a header or body past the end, a body over [`MAX_RECORD`]).
#[inline]
fn record(
    m: &[u8],
    mg: Magic,
    link: LinkType,
    off: usize,
) -> Result<RawPacket<'_>, SourceProblemKind> {
    if off + 16 > m.len() {
        return Err(SourceProblemKind::Truncated);
    }
    let caplen = mg.u32_at(m, off + 8) as usize;
    if caplen > MAX_RECORD {
        return Err(SourceProblemKind::Corrupt(format!(
            "record longer than {} MiB",
            MAX_RECORD >> 20
        )));
    }
    let body = off + 16;
    let Some(data) = m.get(body..body + caplen) else {
        return Err(SourceProblemKind::Truncated);
    };
    let secs = i64::from(mg.u32_at(m, off));
    let frac = i64::from(mg.u32_at(m, off + 4));
    Ok(RawPacket {
        ts_ns: secs * 1_000_000_000 + if mg.nanos { frac } else { frac * 1_000 },
        orig_len: mg.u32_at(m, off + 12),
        link,
        data,
    })
}

/// Release the pages more than [`RELEASE_LAG`] behind the read position
/// `off`, a [`RELEASE_STEP`] at a time; `released` is where the last release
/// ended.
#[inline]
fn release_behind(m: &Mapping, off: usize, released: &mut usize) {
    if off - *released >= RELEASE_LAG + RELEASE_STEP {
        *released = m.release(*released, off - RELEASE_LAG);
    }
}
