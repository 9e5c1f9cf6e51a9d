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
//! streaming reader does).

use super::file::{FileReport, MAX_RECORD};
use super::{SourceProblem, SourceProblemKind};
use crate::packet::{LinkType, RawPacket};
use memmap2::{Mmap, UncheckedAdvice};
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

/// Map `path` if it is a classic pcap with a complete global header; `None`
/// sends the caller to the streaming reader (pcapng, gzip, pipes, short
/// files), which then reports any problem itself.
pub(super) fn try_map(path: &Path) -> Option<Mmap> {
    let f = File::open(path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    // SAFETY: the mapping is only read. If another process truncates the file
    // while it is mapped, reads past the new end fault (SIGBUS); capture files
    // being replayed are not rewritten in place.
    let m = unsafe { Mmap::map(&f) }.ok()?;
    if m.len() < 24 || magic(&m).is_none() {
        return None;
    }
    let _ = m.advise(memmap2::Advice::Sequential);
    Some(m)
}

/// Walk the records of a mapped classic pcap (see [`try_map`]).
pub(super) fn walk(
    path: &Path,
    m: &Mmap,
    report: &mut FileReport,
    mut on_packet: impl FnMut(&RawPacket<'_>),
) {
    let Some(mg) = magic(m) else { return };
    let u32_at = |o: usize| {
        let b = [m[o], m[o + 1], m[o + 2], m[o + 3]];
        if mg.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let link = LinkType::from_dlt(u32_at(20) as i32);
    let mut off = 24usize;
    let mut released = 0usize;
    let mut snaplen_cut = 0u64;
    let mut first_cut = 0u64;
    let mut stop: Option<SourceProblemKind> = None;
    while off < m.len() {
        if off + 16 > m.len() {
            stop = Some(SourceProblemKind::Truncated);
            break;
        }
        let caplen = u32_at(off + 8) as usize;
        if caplen > MAX_RECORD {
            stop = Some(SourceProblemKind::Corrupt(format!(
                "record longer than {} MiB",
                MAX_RECORD >> 20
            )));
            break;
        }
        let body = off + 16;
        let Some(data) = m.get(body..body + caplen) else {
            stop = Some(SourceProblemKind::Truncated);
            break;
        };
        let secs = i64::from(u32_at(off));
        let frac = i64::from(u32_at(off + 4));
        let p = RawPacket {
            ts_ns: secs * 1_000_000_000 + if mg.nanos { frac } else { frac * 1_000 },
            orig_len: u32_at(off + 12),
            link,
            data,
        };
        report.packets += 1;
        report.bytes += caplen as u64;
        if p.is_snaplen_cut() {
            snaplen_cut += 1;
            if first_cut == 0 {
                first_cut = report.packets;
            }
        }
        on_packet(&p);
        off = body + caplen;
        if off - released >= RELEASE_LAG + RELEASE_STEP {
            let upto = (off - RELEASE_LAG) & !(page_size() - 1);
            // SAFETY: the mapping is shared and read-only, so after DONTNEED
            // any access to [released, upto) re-reads the same file bytes.
            let _ = unsafe {
                m.unchecked_advise_range(UncheckedAdvice::DontNeed, released, upto - released)
            };
            released = upto;
        }
    }
    if let Some(kind) = stop {
        report.problems.push(SourceProblem {
            file: path.to_path_buf(),
            packet: report.packets + 1,
            kind,
        });
    }
    if snaplen_cut > 0 {
        report.problems.push(SourceProblem {
            file: path.to_path_buf(),
            packet: first_cut,
            kind: SourceProblemKind::SnaplenCut {
                frames: snaplen_cut,
            },
        });
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}
