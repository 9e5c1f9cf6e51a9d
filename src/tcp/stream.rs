//! Ordering a TCP direction's payload for the parsers that need whole
//! messages: a ClientHello or HTTP request header split over segments, DNS
//! messages over TCP that span segments or share one.
//!
//! The common case costs nothing: an in-order segment with nothing buffered
//! is handed back as a borrowed slice ([`Verdict::Direct`]). Bytes are copied
//! only when they must wait: a segment that arrives ahead of a missing one
//! (held until the hole fills), or the tail of a message that continues in
//! the next segment (kept in the direction's buffer by the caller, see
//! [`Streams::keep`]). Both are bounded per direction ([`HOLD_LIMIT`],
//! [`BUFFER_LIMIT`]); past the bound the hole is declared a gap (counted)
//! and inspection goes on after it.
//!
//! Overlaps: data already seen wins (the first copy of a byte is the one
//! inspected); a later copy that differs is counted as a conflict, the usual
//! sign of evasion by overlapping segments.
//!
//! Inspection stops after [`DEPTH`] bytes each way, or when the parser says
//! it has seen what it needs (a ClientHello): from then on segments are only
//! counted by the flow table, never ordered or copied.

/// Bytes inspected per direction before a stream is left alone: the
/// handshakes and request headers this sensor reads come first.
pub const DEPTH: u32 = 1 << 20;
/// Out-of-order bytes held per direction while waiting for a hole to fill.
pub const HOLD_LIMIT: usize = 64 * 1024;
/// Segments held per direction.
const HOLD_SEGMENTS: usize = 64;
/// Largest message the caller may keep buffered: a DNS message over TCP
/// (two length bytes and up to 65,535).
pub const BUFFER_LIMIT: usize = 2 + 65_535;

/// Counters of a worker's streams, one direction after another.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamCounters {
    /// Segments that carried only bytes already inspected.
    pub retransmitted: u64,
    /// Overlapping copies of a byte range whose content differed.
    pub overlap_conflicts: u64,
    /// Segments held because an earlier one was missing.
    pub held: u64,
    /// Holes given up on (the missing bytes never came within the bounds).
    pub gaps: u64,
    /// Directions that reached the inspection depth.
    pub depth_reached: u64,
}

impl StreamCounters {
    pub fn merge(&mut self, o: &StreamCounters) {
        self.retransmitted += o.retransmitted;
        self.overlap_conflicts += o.overlap_conflicts;
        self.held += o.held;
        self.gaps += o.gaps;
        self.depth_reached += o.depth_reached;
    }
}

/// What to inspect after a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'p> {
    /// The segment's new bytes, in order, nothing buffered before them.
    Direct(&'p [u8]),
    /// New bytes were appended to the direction's buffer: inspect
    /// [`Streams::take`] (it starts at a message boundary, or right after a
    /// gap when [`Streams::after_gap`] says so).
    Buffered,
    /// Nothing new: a retransmission, a held segment, or inspection over.
    Nothing,
}

const KNOWN: u8 = 1;
const DONE: u8 = 2;
const AFTER_GAP: u8 = 4;

#[derive(Clone, Copy, Debug, Default)]
struct Dir {
    /// Sequence number of the next byte to inspect (once `KNOWN`).
    next: u32,
    flags: u8,
    /// Bytes handed to the parser so far (saturating at [`DEPTH`]).
    inspected: u32,
}

/// Copies, allocated only for flows that need them.
#[derive(Debug, Default)]
struct Extra {
    buf: [Vec<u8>; 2],
    held: [Vec<(u32, Vec<u8>)>; 2],
}

/// Both directions of one TCP connection.
#[derive(Debug, Default)]
pub struct Streams {
    dirs: [Dir; 2],
    gaps: u32,
    extra: Option<Box<Extra>>,
}

/// One hole given up on: in the flow's own count (its `flow` event) and
/// the engine's counters.
fn count_gap(gaps: &mut u32, c: &mut StreamCounters) {
    *gaps += 1;
    c.gaps += 1;
}

/// Signed distance from `b` to `a` in sequence space (RFC 1982 style).
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl Streams {
    pub fn heap_bytes(&self) -> usize {
        self.extra.as_ref().map_or(0, |e| {
            std::mem::size_of::<Extra>()
                + e.buf.iter().map(|b| b.capacity()).sum::<usize>()
                + e.held
                    .iter()
                    .flatten()
                    .map(|(_, s)| s.capacity() + 32)
                    .sum::<usize>()
        })
    }

    /// Holes given up on, both directions.
    pub fn gaps(&self) -> u32 {
        self.gaps
    }

    /// Stop inspecting direction `d` (the parser has what it needs).
    pub fn done(&mut self, d: usize) {
        self.dirs[d].flags |= DONE;
        if let Some(e) = &mut self.extra {
            e.buf[d] = Vec::new();
            e.held[d] = Vec::new();
        }
    }

    pub fn is_done(&self, d: usize) -> bool {
        self.dirs[d].flags & DONE != 0
    }

    /// Forget the position of direction `d` (a segment of unknown length
    /// went by): what was buffered or held is given up as a gap, and the
    /// next segment starts the direction afresh.
    pub fn resync(&mut self, d: usize) {
        self.dirs[d].flags &= !(KNOWN | AFTER_GAP);
        if let Some(e) = &mut self.extra
            && (!e.buf[d].is_empty() || !e.held[d].is_empty())
        {
            e.buf[d] = Vec::new();
            e.held[d] = Vec::new();
            self.gaps += 1;
        }
    }

    /// Give up everything held or buffered, both ways (the reassembly
    /// budget is spent): each direction that had copies resyncs on its next
    /// segment, its hole counted as a gap.
    pub fn release(&mut self) {
        for d in 0..2 {
            self.resync(d);
        }
        self.extra = None;
    }

    /// The buffered bytes follow a gap (their start is not a message start).
    pub fn after_gap(&self, d: usize) -> bool {
        self.dirs[d].flags & AFTER_GAP != 0
    }

    /// Keep `tail` (the unfinished end of a [`Verdict::Direct`] slice) for
    /// the next segment. False, and nothing kept, past [`BUFFER_LIMIT`].
    pub fn keep(&mut self, d: usize, tail: &[u8]) -> bool {
        if tail.len() > BUFFER_LIMIT {
            return false;
        }
        let e = self.extra.get_or_insert_with(Default::default);
        e.buf[d].clear();
        e.buf[d].extend_from_slice(tail);
        self.dirs[d].flags &= !AFTER_GAP;
        true
    }

    /// Take the buffer of direction `d` to parse it; give it back with
    /// [`Streams::put`] (emptied or drained of what was used).
    pub fn take(&mut self, d: usize) -> Vec<u8> {
        self.extra
            .as_mut()
            .map(|e| std::mem::take(&mut e.buf[d]))
            .unwrap_or_default()
    }

    pub fn put(&mut self, d: usize, buf: Vec<u8>) {
        if buf.is_empty() && self.extra.as_ref().is_none_or(|e| e.held[d].is_empty()) {
            // Give the memory back once nothing waits (a parked flow keeps
            // no buffer).
            if let Some(e) = &mut self.extra {
                e.buf[d] = Vec::new();
                if e.buf.iter().all(|b| b.capacity() == 0) && e.held.iter().all(|h| h.is_empty()) {
                    self.extra = None;
                }
            }
            self.dirs[d].flags &= !AFTER_GAP;
            return;
        }
        if let Some(e) = &mut self.extra {
            e.buf[d] = buf;
        }
    }

    fn buffered(&self, d: usize) -> usize {
        self.extra.as_ref().map_or(0, |e| e.buf[d].len())
    }

    /// Place one segment of direction `d`.
    pub fn segment<'p>(
        &mut self,
        d: usize,
        syn: bool,
        seq: u32,
        payload: &'p [u8],
        c: &mut StreamCounters,
    ) -> Verdict<'p> {
        let dir = &mut self.dirs[d];
        let mut seq = seq;
        if syn {
            // The SYN takes one sequence number; data (TCP Fast Open)
            // follows it.
            seq = seq.wrapping_add(1);
            if dir.flags & KNOWN == 0 || dir.inspected == 0 {
                dir.next = seq;
                dir.flags |= KNOWN;
            }
        }
        if payload.is_empty() || dir.flags & DONE != 0 {
            return Verdict::Nothing;
        }
        if dir.flags & KNOWN == 0 {
            dir.next = seq;
            dir.flags |= KNOWN;
        }
        let off = seq_diff(seq, dir.next);
        let mut data = payload;
        if off < 0 {
            let old = (-off) as usize;
            self.check_overlap(d, seq, data, c);
            if old >= data.len() {
                c.retransmitted += 1;
                return Verdict::Nothing;
            }
            data = &data[old..];
        } else if off > 0 {
            return self.hold(d, seq, data, c);
        }
        self.advance(d, data.len(), c);
        if self.buffered(d) == 0 && !self.has_held(d) {
            return Verdict::Direct(data);
        }
        // Something is buffered, or held segments may now follow: gather
        // everything contiguous into the buffer.
        self.append(d, data, c);
        self.drain_held(d, c);
        Verdict::Buffered
    }

    /// Add in-order bytes to direction `d`'s buffer. A buffer that would
    /// outgrow [`BUFFER_LIMIT`] holds no message we read: it is given up as
    /// a gap first.
    fn append(&mut self, d: usize, bytes: &[u8], c: &mut StreamCounters) {
        let e = self.extra.get_or_insert_with(Default::default);
        if e.buf[d].len() + bytes.len() > BUFFER_LIMIT {
            e.buf[d].clear();
            self.dirs[d].flags |= AFTER_GAP;
            count_gap(&mut self.gaps, c);
        }
        let e = self.extra.get_or_insert_with(Default::default);
        e.buf[d].extend_from_slice(bytes);
    }

    fn has_held(&self, d: usize) -> bool {
        self.extra.as_ref().is_some_and(|e| !e.held[d].is_empty())
    }

    fn advance(&mut self, d: usize, n: usize, c: &mut StreamCounters) {
        let dir = &mut self.dirs[d];
        dir.next = dir.next.wrapping_add(n as u32);
        let before = dir.inspected;
        dir.inspected = dir.inspected.saturating_add(n as u32).min(DEPTH);
        if dir.inspected >= DEPTH && before < DEPTH {
            c.depth_reached += 1;
            dir.flags |= DONE;
        }
    }

    /// Move held segments that now start at or before `next` into the
    /// buffer, in order.
    fn drain_held(&mut self, d: usize, c: &mut StreamCounters) {
        loop {
            let next = self.dirs[d].next;
            let Some(e) = self.extra.as_mut() else { return };
            let Some(i) = e.held[d].iter().position(|(s, _)| seq_diff(*s, next) <= 0) else {
                return;
            };
            let (s, seg) = e.held[d].swap_remove(i);
            let old = (-seq_diff(s, next)) as usize;
            if old >= seg.len() {
                c.retransmitted += 1;
                continue;
            }
            self.append(d, &seg[old..], c);
            self.advance(d, seg.len() - old, c);
        }
    }

    fn hold<'p>(&mut self, d: usize, seq: u32, data: &[u8], c: &mut StreamCounters) -> Verdict<'p> {
        let e = self.extra.get_or_insert_with(Default::default);
        let held: usize = e.held[d].iter().map(|(_, s)| s.len()).sum();
        if let Some((_, prev)) = e.held[d].iter().find(|(s, _)| *s == seq) {
            // Same start as a held segment: the first copy wins.
            let n = prev.len().min(data.len());
            if prev[..n] != data[..n] {
                c.overlap_conflicts += 1;
            } else {
                c.retransmitted += 1;
            }
            return Verdict::Nothing;
        }
        if held + data.len() <= HOLD_LIMIT && e.held[d].len() < HOLD_SEGMENTS {
            c.held += 1;
            e.held[d].push((seq, data.to_vec()));
            return Verdict::Nothing;
        }
        // The hole is not going to fill within the bounds: give up on it and
        // go on from the earliest held segment (or this one).
        count_gap(&mut self.gaps, c);
        let first = e.held[d]
            .iter()
            .map(|(s, _)| *s)
            .chain(std::iter::once(seq))
            .min_by_key(|s| seq_diff(*s, self.dirs[d].next))
            .unwrap_or(seq);
        e.buf[d].clear();
        e.held[d].push((seq, data.to_vec()));
        self.dirs[d].next = first;
        self.dirs[d].flags |= AFTER_GAP;
        self.drain_held(d, c);
        Verdict::Buffered
    }

    /// Count a conflict when a retransmitted range differs from the copy
    /// still buffered.
    fn check_overlap(&self, d: usize, seq: u32, data: &[u8], c: &mut StreamCounters) {
        let Some(e) = &self.extra else { return };
        let buf = &e.buf[d];
        let start = self.dirs[d].next.wrapping_sub(buf.len() as u32);
        let off = seq_diff(seq, start);
        if off < 0 || off as usize >= buf.len() {
            return;
        }
        let off = off as usize;
        let n = (buf.len() - off).min(data.len());
        if buf[off..off + n] != data[..n] {
            c.overlap_conflicts += 1;
        }
    }

    /// A message is half-received or segments wait behind a hole.
    pub fn unfinished(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| {
            e.buf.iter().any(|b| !b.is_empty()) || e.held.iter().any(|h| !h.is_empty())
        })
    }

    /// Holes still open when the flow ends (held segments never reached).
    pub fn open_holes(&self) -> u32 {
        self.extra.as_ref().map_or(0, |e| {
            e.held.iter().filter(|h| !h.is_empty()).count() as u32
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &mut Streams, segs: &[(u32, &[u8])]) -> (Vec<u8>, StreamCounters) {
        let mut c = StreamCounters::default();
        let mut out = Vec::new();
        for (seq, p) in segs {
            match s.segment(0, false, *seq, p, &mut c) {
                Verdict::Direct(b) => out.extend_from_slice(b),
                Verdict::Buffered => {
                    let b = s.take(0);
                    out.extend_from_slice(&b);
                    s.put(0, Vec::new());
                }
                Verdict::Nothing => {}
            }
        }
        (out, c)
    }

    #[test]
    fn in_order_is_direct_and_copies_nothing() {
        let mut s = Streams::default();
        let mut c = StreamCounters::default();
        s.segment(0, true, 99, b"", &mut c);
        assert_eq!(
            s.segment(0, false, 100, b"abc", &mut c),
            Verdict::Direct(b"abc")
        );
        assert_eq!(
            s.segment(0, false, 103, b"de", &mut c),
            Verdict::Direct(b"de")
        );
        assert!(s.extra.is_none());
    }

    #[test]
    fn out_of_order_segments_come_out_in_order() {
        let mut s = Streams::default();
        let mut c = StreamCounters::default();
        s.segment(0, true, 0, b"", &mut c);
        let (out, c) = all(&mut s, &[(7, b"ghi"), (4, b"def"), (1, b"abc")]);
        assert_eq!(out, b"abcdefghi");
        assert_eq!(c.held, 2);
        assert_eq!(c.gaps, 0);
    }

    #[test]
    fn retransmissions_are_skipped_and_partial_overlaps_trimmed() {
        let mut s = Streams::default();
        let (out, c) = all(&mut s, &[(1, b"abc"), (1, b"abc"), (2, b"bcdef")]);
        assert_eq!(out, b"abcdef");
        assert_eq!(c.retransmitted, 1);
    }

    #[test]
    fn differing_overlap_is_counted_first_copy_wins() {
        let mut s = Streams::default();
        let mut c = StreamCounters::default();
        s.segment(0, false, 1, b"a", &mut c);
        // Held twice at the same place with different bytes.
        assert_eq!(s.segment(0, false, 5, b"EVIL", &mut c), Verdict::Nothing);
        assert_eq!(s.segment(0, false, 5, b"good", &mut c), Verdict::Nothing);
        assert_eq!(c.overlap_conflicts, 1);
        // Buffered bytes re-sent with other content.
        let mut s = Streams::default();
        assert!(matches!(
            s.segment(0, false, 1, b"GET /", &mut c),
            Verdict::Direct(_)
        ));
        assert!(s.keep(0, b"GET /"));
        s.segment(0, false, 1, b"PUT /", &mut c);
        assert_eq!(c.overlap_conflicts, 2);
    }

    #[test]
    fn a_hole_that_never_fills_is_a_gap_then_inspection_goes_on() {
        let mut s = Streams::default();
        let mut c = StreamCounters::default();
        s.segment(0, false, 0, b"x", &mut c);
        let big = vec![7u8; 1000];
        let mut seq = 10_000u32;
        let mut verdicts = Vec::new();
        for _ in 0..70 {
            let v = s.segment(0, false, seq, &big, &mut c);
            if v == Verdict::Buffered {
                // As the engine does: read the buffer, give it back used.
                let b = s.take(0);
                assert!(!b.is_empty());
                s.put(0, Vec::new());
            }
            verdicts.push(v);
            seq += 1000;
        }
        assert_eq!(c.gaps, 1);
        assert!(verdicts.contains(&Verdict::Buffered));
        // After the gap everything is in order again: direct, no copies.
        assert!(matches!(verdicts.last(), Some(Verdict::Direct(_))));
        assert!(s.heap_bytes() <= BUFFER_LIMIT * 2 + HOLD_LIMIT * 2);
    }

    #[test]
    fn done_directions_cost_nothing() {
        let mut s = Streams::default();
        let mut c = StreamCounters::default();
        s.segment(0, false, 1, b"abc", &mut c);
        s.done(0);
        assert_eq!(s.segment(0, false, 50, b"zzz", &mut c), Verdict::Nothing);
        assert_eq!(c.held, 0);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Streams::default();
        let start = u32::MAX - 1;
        let (out, _) = all(
            &mut s,
            &[(start, b"ab"), (start.wrapping_add(4), b"ef"), (0, b"cd")],
        );
        assert_eq!(out, b"abcdef");
    }

    #[test]
    fn depth_ends_inspection() {
        let mut s = Streams::default();
        let mut c = StreamCounters::default();
        let chunk = vec![0u8; 64 * 1024];
        let mut seq = 1u32;
        for _ in 0..17 {
            s.segment(0, false, seq, &chunk, &mut c);
            seq = seq.wrapping_add(chunk.len() as u32);
        }
        assert_eq!(c.depth_reached, 1);
    }
}
