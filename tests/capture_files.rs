//! Issue 14, defect 6 and the fuzzing notes: pcapng timestamps saturate
//! instead of overflowing; a capture file that shrinks
//! while the mmap reader walks it stops with a named problem (it used to
//! raise SIGBUS and kill the process), and pcapng timestamp units are read
//! as the format defines them, powers of two included (pcap-parser 0.17
//! drops those), with a unit no clock has reported.

use gatewatch::capture::SourceProblemKind;
use gatewatch::capture::file::{read_file, read_file_shared};
use gatewatch::testkit::{PcapNgWriter, PcapWriter, ip, udp_frame};

#[test]
fn a_capture_truncated_while_it_is_read_stops_with_a_problem() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("growing.pcap");
    let frame = udp_frame(ip("10.1.0.5"), ip("8.8.8.8"), 40000, 9, None, &[7u8; 1000]);
    let mut w = PcapWriter::new(1, 65535);
    for i in 0..8000u64 {
        w.frame(1_700_000_000_000_000 + i, &frame, frame.len());
    }
    w.write(&p);
    let keep = 64 * 1024;
    let mut seen = 0u64;
    let mut mapped = false;
    let rep = read_file_shared(&p, |pkt, map| {
        seen += 1;
        mapped |= map.is_some();
        // Never bytes from past the new end (the zero pages put there).
        assert_eq!(pkt.data, &frame[..], "packet {seen}");
        if seen == 10 {
            // Another program cuts the file while it is being read.
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(keep)
                .unwrap();
        }
    });
    assert!(mapped, "the mmap reader was used");
    let per = 16 + frame.len() as u64;
    let fit = (keep - 24) / per;
    assert!(
        seen <= fit,
        "{seen} packets handed out, only {fit} fit the file left"
    );
    assert_eq!(rep.packets, seen);
    let kinds: Vec<_> = rep.problems.iter().map(|p| p.kind.clone()).collect();
    assert_eq!(kinds, vec![SourceProblemKind::Shrunk]);
    let text = rep.problems[0].to_string();
    assert!(text.contains("growing.pcap"), "{text}");
    // The reader is usable again afterwards, on a whole file.
    w.write(&p);
    assert_eq!(read_file(&p, |_| {}).packets, 8000);
}

/// Times of one packet stamped `ts` on an interface declared with
/// `options` (code, value), and the problems reported.
fn ng_read(options: &[(u16, Vec<u8>)], ts: u64) -> (Vec<i64>, Vec<SourceProblemKind>) {
    let frame = udp_frame(ip("10.1.0.5"), ip("8.8.8.8"), 40000, 53, None, b"x");
    let mut ng = PcapNgWriter::with_options(1, options);
    ng.frame_on(0, ts, &frame, frame.len());
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("t.pcapng");
    std::fs::write(&p, &ng.bytes).unwrap();
    let mut times = Vec::new();
    let rep = read_file(&p, |pkt| times.push(pkt.ts_ns));
    (times, rep.problems.into_iter().map(|p| p.kind).collect())
}

/// [`ng_read`] with `if_tsresol` = `resol`.
fn ng_time(resol: u8, ts: u64) -> (Vec<i64>, Vec<SourceProblemKind>) {
    ng_read(&[(9, vec![resol])], ts)
}

/// Issue 14, defect 6: a crafted pcapng timestamp (`ts_high` all ones, a
/// huge `if_tsoffset` either way) saturates instead of overflowing (a panic
/// in this test build, which has overflow checks); a sane offset still
/// applies.
#[test]
fn pcapng_timestamps_never_overflow() {
    let times = |offset: i64, ts_us: u64| ng_read(&[(14, offset.to_le_bytes().to_vec())], ts_us).0;
    assert_eq!(times(i64::MAX, u64::MAX), vec![i64::MAX]);
    assert_eq!(times(i64::MIN, 0), vec![i64::MIN]);
    assert_eq!(times(i64::MAX / 2, 1), vec![i64::MAX]);
    assert_eq!(times(60, 1_500_000), vec![61_500_000_000]);
}

#[test]
fn pcapng_power_of_two_time_units_are_read() {
    // 2^-20 s units: 1.7e9 seconds and a half.
    let ts = (1_700_000_000u64 << 20) + (1 << 19);
    assert_eq!(
        ng_time(0x80 | 20, ts),
        (vec![1_700_000_000_500_000_000], vec![])
    );
    // Decimal units still: nanoseconds and milliseconds.
    assert_eq!(ng_time(9, 5_000_000_123), (vec![5_000_000_123], vec![]));
    assert_eq!(ng_time(3, 1_500), (vec![1_500_000_000], vec![]));
}

#[test]
fn a_pcapng_time_unit_no_clock_has_is_reported() {
    for bad in [20u8, 0x80 | 64, 0xff] {
        let (times, problems) = ng_time(bad, 1_500_000);
        assert_eq!(times, vec![1_500_000_000], "{bad:#x}: read as microseconds");
        assert_eq!(
            problems,
            vec![SourceProblemKind::BadTimeUnit(bad)],
            "{bad:#x}"
        );
    }
}
