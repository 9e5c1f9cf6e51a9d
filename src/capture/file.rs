//! Capture files: pcap and pcapng, plain or gzip-compressed.
//!
//! Parsing is pcap-parser's; this module maps its blocks to [`RawPacket`]s,
//! keeps per-interface link types and timestamp resolutions for pcapng, and
//! turns every way a file can be broken into a [`SourceProblem`] that names the
//! file and packet number. Nothing here panics on bad input.

use super::mapping::Mapping;
use super::{SourceProblem, SourceProblemKind};
use crate::packet::{LinkType, RawPacket};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, PcapBlockOwned, PcapError, create_reader};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

/// Reader buffer. A record larger than this is reported as corrupt: real
/// capture records are at most 256 KiB (the largest snaplen tools write).
const BUFFER_BYTES: usize = 4 << 20;
/// The longest record either reader accepts before calling the file corrupt.
pub(crate) const MAX_RECORD: usize = BUFFER_BYTES;

/// What reading one file produced, besides the packets themselves.
#[derive(Debug, Default)]
pub struct FileReport {
    pub packets: u64,
    pub bytes: u64,
    pub problems: Vec<SourceProblem>,
}

impl FileReport {
    /// True when some of the file's content could not be inspected.
    pub fn skipped_something(&self) -> bool {
        !self.problems.is_empty()
    }
}

struct Interface {
    link: LinkType,
    /// Timestamp units per second.
    resolution: u64,
    offset: i64,
}

/// Open `path` as a (possibly gzip-compressed) byte stream. Compression is
/// recognised by the `.gz` extension or by the gzip magic bytes.
fn open(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    f.seek(SeekFrom::Start(0))?;
    let by_ext = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if by_ext || (n == 2 && magic == [0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
            f,
        ))))
    } else {
        Ok(Box::new(f))
    }
}

/// Read every packet of `path`, calling `on_packet` for each. Problems are
/// collected in the report; reading stops only where the file cannot be
/// followed any further.
pub fn read_file(path: &Path, mut on_packet: impl FnMut(&RawPacket<'_>)) -> FileReport {
    read_file_shared(path, |p, _| on_packet(p))
}

/// [`read_file`], also handing out the mapping a packet lies in when the file
/// is read from an mmap (classic pcap), so a consumer can keep the bytes
/// alive and pass them on without copying (see `pipeline::Router::route_in`).
pub fn read_file_shared(
    path: &Path,
    mut on_packet: impl FnMut(&RawPacket<'_>, Option<&Arc<Mapping>>),
) -> FileReport {
    if let Some(m) = super::mapped::try_map(path) {
        let m = Arc::new(m);
        let mut report = FileReport::default();
        super::mapped::walk(path, &m, Some(&m), &mut report, |p| on_packet(p, Some(&m)));
        return report;
    }
    read_stream(path, |p| on_packet(p, None))
}

/// A whole capture file already in memory (`path` only names it in
/// problems), read by both readers: `.0` is the mmap reader's walk (only
/// for classic pcap; `None` otherwise), `.1` the streaming reader's, gzip
/// included. The fuzz targets compare the two.
pub fn read_bytes(
    path: &Path,
    bytes: &[u8],
    mut on_packet: impl FnMut(&RawPacket<'_>, bool),
) -> (Option<FileReport>, FileReport) {
    let mapped = (bytes.len() >= 24 && super::mapped::is_pcap(bytes)).then(|| {
        let mut report = FileReport::default();
        super::mapped::walk(path, bytes, None, &mut report, |p| on_packet(p, true));
        report
    });
    let gz = bytes.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read + Send + '_> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    // Sized to the input, not the 4 MiB a file gets: every record of the
    // input fits, and a fuzz target does not zero 4 MiB per run (it was
    // most of its time). A gzip member that inflates past it is reported
    // as a record too long.
    let capacity = bytes
        .len()
        .next_power_of_two()
        .clamp(64 << 10, BUFFER_BYTES);
    let streamed = read_from(path, Ok(stream), capacity, |p| on_packet(p, false));
    (mapped, streamed)
}

/// [`read_file`] through pcap-parser's streaming reader, whatever the format:
/// the path for pcapng, gzip and pipes, and the reference the mmap path is
/// tested against.
pub fn read_stream(path: &Path, on_packet: impl FnMut(&RawPacket<'_>)) -> FileReport {
    read_from(path, open(path), BUFFER_BYTES, on_packet)
}

/// The streaming reader over `stream`, the opened contents of `path`.
fn read_from<'s>(
    path: &Path,
    stream: std::io::Result<Box<dyn Read + Send + 's>>,
    capacity: usize,
    mut on_packet: impl FnMut(&RawPacket<'_>),
) -> FileReport {
    let mut report = FileReport::default();
    let problem = |report: &mut FileReport, packet: u64, kind| {
        report.problems.push(SourceProblem {
            file: path.to_path_buf(),
            packet,
            kind,
        })
    };
    let mut reader = match open_reader(stream, capacity) {
        Ok(r) => r,
        Err(kind) => {
            problem(&mut report, 0, kind);
            return report;
        }
    };
    let mut links = Links::default();
    let mut cuts = SnaplenCuts::default();
    loop {
        let next_no = report.packets + 1;
        let Some(next) = guarded_next(&mut reader) else {
            let why = "unparsable block (the pcapng parser failed on it)".to_string();
            problem(&mut report, next_no, SourceProblemKind::Corrupt(why));
            break;
        };
        match next {
            Ok((offset, block)) => {
                match links.block_packet(block) {
                    Some(Ok(p)) => {
                        report.packets += 1;
                        report.bytes += p.data.len() as u64;
                        cuts.note(&p, report.packets);
                        on_packet(&p);
                    }
                    Some(Err(if_id)) => {
                        report.packets += 1;
                        problem(
                            &mut report,
                            next_no,
                            SourceProblemKind::UnknownInterface(if_id),
                        );
                    }
                    None => {
                        if let Some(r) = links.bad_unit.take() {
                            problem(&mut report, next_no, SourceProblemKind::BadTimeUnit(r));
                        }
                    }
                }
                reader.consume(offset);
            }
            Err(e) => match stream_problem(e) {
                StreamStop::End => break,
                StreamStop::Refill => {
                    if let Some(kind) = refill(reader.as_mut()) {
                        problem(&mut report, next_no, kind);
                        break;
                    }
                }
                StreamStop::Problem(kind) => {
                    problem(&mut report, next_no, kind);
                    break;
                }
            },
        }
    }
    report.problems.extend(cuts.problem(path));
    report
}

/// The reader's next block, or `None` when parsing it panicked.
///
/// pcap-parser 0.17 subtracts 12 from a block's length before checking it
/// against the header size its block type has (4 for a process information
/// block): a shorter block overflows, a panic with overflow checks on (found
/// by fuzzing). Such a panic stops the file with a named problem instead of
/// the process.
#[allow(clippy::type_complexity)]
fn guarded_next<'r, 's>(
    reader: &'r mut Box<dyn PcapReaderIterator + Send + 's>,
) -> Option<Result<(usize, PcapBlockOwned<'r>), PcapError<&'r [u8]>>> {
    catch_unwind(AssertUnwindSafe(move || {
        let r = reader; // moved in: the block may borrow the reader's buffer
        r.next()
    }))
    .ok()
}

/// Read more of the stream for a block that runs past the buffer; the
/// problem that stops the file, if any.
fn refill(reader: &mut (dyn PcapReaderIterator + Send + '_)) -> Option<SourceProblemKind> {
    if reader.reader_exhausted() {
        return Some(SourceProblemKind::Truncated);
    }
    reader
        .refill()
        .err()
        .map(|e| SourceProblemKind::Io(format!("{e:?}")))
}

/// Open `path` and read its file header; a problem here comes before any
/// packet, so it is reported as packet 0.
fn open_reader<'s>(
    stream: std::io::Result<Box<dyn Read + Send + 's>>,
    capacity: usize,
) -> Result<Box<dyn PcapReaderIterator + Send + 's>, SourceProblemKind> {
    let stream = stream.map_err(|e| SourceProblemKind::Io(e.to_string()))?;
    create_reader(capacity, stream).map_err(|e| match e {
        PcapError::HeaderNotRecognized | PcapError::Eof => SourceProblemKind::BadMagic,
        PcapError::Incomplete(_) | PcapError::UnexpectedEof => SourceProblemKind::Truncated,
        e => SourceProblemKind::Io(format!("{e:?}")),
    })
}

/// What the stream has declared so far: the classic header's link type and
/// timestamp unit, and the interfaces of the current pcapng section.
struct Links {
    legacy_link: LinkType,
    legacy_nanos: bool,
    ifaces: Vec<Interface>,
    /// The `if_tsresol` of an interface just declared with a unit no clock
    /// has, until the reading loop reports it.
    bad_unit: Option<u8>,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            legacy_link: LinkType::Ethernet,
            legacy_nanos: false,
            ifaces: Vec::new(),
            bad_unit: None,
        }
    }
}

impl Links {
    /// The packet `block` carries, if any, after noting what header and
    /// interface blocks declare. `Err` is the interface id of a pcapng packet
    /// whose interface was never described.
    #[inline]
    fn block_packet<'a>(
        &mut self,
        block: PcapBlockOwned<'a>,
    ) -> Option<Result<RawPacket<'a>, u32>> {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                self.legacy_link = LinkType::from_dlt(h.network.0);
                self.legacy_nanos = matches!(h.magic_number, 0xa1b2_3c4d | 0x4d3c_b2a1);
                None
            }
            PcapBlockOwned::Legacy(b) => {
                let frac = if self.legacy_nanos {
                    b.ts_usec as i64
                } else {
                    b.ts_usec as i64 * 1_000
                };
                Some(Ok(RawPacket {
                    ts_ns: b.ts_sec as i64 * 1_000_000_000 + frac,
                    orig_len: b.origlen,
                    link: self.legacy_link,
                    data: clamp(b.data, b.caplen),
                }))
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                // Interface ids restart in every section.
                self.ifaces.clear();
                None
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                let resolution = time_unit(idb.if_tsresol).unwrap_or_else(|| {
                    self.bad_unit = Some(idb.if_tsresol);
                    1_000_000
                });
                self.ifaces.push(Interface {
                    link: LinkType::from_dlt(idb.linktype.0),
                    resolution,
                    offset: idb.ts_offset(),
                });
                None
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                match self.ifaces.get(epb.if_id as usize) {
                    Some(i) => {
                        let ts = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                        Some(Ok(RawPacket {
                            ts_ns: ng_time(ts, i),
                            orig_len: epb.origlen,
                            link: i.link,
                            data: clamp(epb.data, epb.caplen),
                        }))
                    }
                    None => Some(Err(epb.if_id)),
                }
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => match self.ifaces.first() {
                // A simple packet block has no timestamp of its own.
                Some(i) => Some(Ok(RawPacket {
                    ts_ns: 0,
                    orig_len: spb.origlen,
                    link: i.link,
                    data: spb.data,
                })),
                None => Some(Err(0)),
            },
            PcapBlockOwned::NG(_) => None,
        }
    }
}

/// Timestamp units per second of a pcapng `if_tsresol` (RFC-draft pcapng
/// §4.2): 10^n, or 2^n when the top bit is set; `None` for a unit that does
/// not fit 64 bits. Written here because pcap-parser 0.17's
/// `ts_resolution()` range-checks before masking the flag bit, so it answers
/// `None` for every power-of-two unit.
fn time_unit(tsresol: u8) -> Option<u64> {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n).filter(|_| n < 64)
    }
}

/// A pcapng timestamp in nanoseconds since the epoch: `ts` units of the
/// interface's resolution plus its offset in seconds. Worked in 128 bits
/// and saturated: a crafted `ts_high` or `if_tsoffset` once overflowed
/// (a panic with overflow checks, a wrapped time without).
fn ng_time(ts: u64, i: &Interface) -> i64 {
    let res = i128::from(i.resolution);
    let secs = i128::from(ts) / res + i128::from(i.offset);
    let frac = i128::from(ts) % res * 1_000_000_000 / res;
    (secs * 1_000_000_000 + frac).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// What the reading loop does after pcap-parser reports an error.
enum StreamStop {
    /// The end of the input: nothing to report.
    End,
    /// A block runs past the buffered bytes: refill and read on.
    Refill,
    /// The file cannot be followed any further.
    Problem(SourceProblemKind),
}

/// Sort a reader error into the end of the file, a refill, or the problem
/// that stops the reading. Owns nothing of `e`, so the reader is free again.
fn stream_problem(e: PcapError<&[u8]>) -> StreamStop {
    let kind = match e {
        PcapError::Eof => return StreamStop::End,
        PcapError::Incomplete(_) => return StreamStop::Refill,
        PcapError::UnexpectedEof => SourceProblemKind::Truncated,
        PcapError::BufferTooSmall => {
            SourceProblemKind::Corrupt(format!("record longer than {} MiB", BUFFER_BYTES >> 20))
        }
        PcapError::ReadError => SourceProblemKind::Io("read error (bad gzip stream?)".into()),
        PcapError::NomError(_, k) | PcapError::OwnedNomError(_, k) => {
            SourceProblemKind::Corrupt(format!("unparsable block ({k:?})"))
        }
        other => SourceProblemKind::Corrupt(format!("{other:?}")),
    };
    StreamStop::Problem(kind)
}

/// Frames cut by the capture's snapshot length, summarised per file as one
/// problem at the first of them (shared with the mmap reader).
#[derive(Default)]
pub(super) struct SnaplenCuts {
    frames: u64,
    first: u64,
}

impl SnaplenCuts {
    /// Count `p`, packet number `no`, if it was cut.
    #[inline]
    pub(super) fn note(&mut self, p: &RawPacket<'_>, no: u64) {
        if p.is_snaplen_cut() {
            self.frames += 1;
            if self.first == 0 {
                self.first = no;
            }
        }
    }

    /// The summary problem for `path`, if any frame was cut.
    pub(super) fn problem(&self, path: &Path) -> Option<SourceProblem> {
        (self.frames > 0).then(|| SourceProblem {
            file: path.to_path_buf(),
            packet: self.first,
            kind: SourceProblemKind::SnaplenCut {
                frames: self.frames,
            },
        })
    }
}

/// The floor for replay speed: walk the records of a classic little-endian
/// pcap in an mmap, touching only their headers. Returns (packets, wire bytes).
pub fn floor_walk(path: &Path) -> std::io::Result<(u64, u64)> {
    let f = File::open(path)?;
    let m = Mapping::open(&f).ok_or_else(|| std::io::Error::other("cannot map the file"))?;
    // The same access hint as the replay path, so the floor stays a floor.
    m.advise(memmap2::Advice::Sequential);
    if m.len() < 24 || m[..4] != [0xd4, 0xc3, 0xb2, 0xa1] && m[..4] != [0x4d, 0x3c, 0xb2, 0xa1] {
        return Err(std::io::Error::other(
            "floor walk reads little-endian classic pcap only",
        ));
    }
    let (mut off, mut n, mut bytes) = (24usize, 0u64, 0u64);
    while let Some(h) = m.get(off..off + 16) {
        let cap = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        bytes += u64::from(u32::from_le_bytes([h[12], h[13], h[14], h[15]]));
        off += 16 + cap;
        n += 1;
    }
    Ok((n, bytes))
}

/// pcap-parser hands out the padded record body; keep only the captured bytes.
fn clamp(data: &[u8], caplen: u32) -> &[u8] {
    &data[..data.len().min(caplen as usize)]
}
