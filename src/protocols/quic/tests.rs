//! Assembler tests: the RFC sample packets, ClientHellos split and shuffled
//! the way Chrome sends them, the table bounds, and proptests that no input
//! panics. `seal` builds client Initials with the same keys, so every case
//! behind the AEAD can be reached.

use super::packet::Version;
use super::seal::{crypto, seal_raw};
use super::*;
use crate::testkit::{client_hello_record, sni_ext};
use proptest::prelude::*;

pub const RFC_DCID: [u8; 8] = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];

/// RFC 9001 §A.2: the protected client Initial (server name example.com).
pub const RFC9001_CLIENT_INITIAL: &str = "
    c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11d242b123dc9bd8bab936b47d92ec356c
    0bab7df5976d27cd449f63300099f3991c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c
    8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df621230c83711b39343fa028cea7f7fb5ff89
    eac2308249a02252155e2347b63d58c5457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208
    4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec4e15daf8500a6ef69ec4e3feb6b1d98e
    610ac8b7ec3faf6ad760b7bad1db4ba3485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db
    059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c7b4378e846d29f37ed7b4ea9ec5d82e7
    961b7f25a9323851f681d582363aa5f89937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556
    be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c7468449a13d8e3b95811a198f3491de3e7
    fe942b330407abf82a4ed7c1b311663ac69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00
    f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632291d6a418211cc2962e20fe47feb3edf
    330f2c603a9d48c0fcb5699dbfe5896425c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd
    14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ffef132eef2fa09346aee33c28eb130ff2
    8f5b766953334113211996d20011a198e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
    c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73203a4a13e96f5432ec0fd4a1ee65accd
    d5e3904df54c1da510b0ff20dcc0c77fcb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e
    fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03adea2e1fbc5aa463d08ca19896d2bf59a07
    1b851e6c239052172f296bfb5e72404790a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2
    162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f440591f355e12d439ff150aab7613499d
    bd49adabc8676eef023b15b65bfc5ca06948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e
    8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0be79e2fb8f5d5fbbe2e30ecadd220723
    c8c0aea8078cdfcb3868263ff8f0940054da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab
    760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9f96f3ca9ec1dde434da7d2d392b905dd
    f3d1f9af93d1af5950bd493f5aa731b4056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064
    7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241e221af44860018ab0856972e194cd934
";

/// RFC 9369 §A.2: the same ClientHello as a QUIC v2 Initial.
pub const RFC9369_CLIENT_INITIAL: &str = "
    d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485dd04de806071bf03dceebfa162e75d6c
    96058bdbfb127cdfcbf903388e99ad049f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d
    250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a12834e3f249a78d395e0d18f4d766004
    f1a2674802a747eaa901c3f10cda5500cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68
    18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff3312ae50b187c1433c0f028edcc4c2838b
    6a9bfc226ca4b4530e7a4ccee1bfa2a3d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd
    6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520bcfb7966fc49b393f0061d974a2706df
    8c4a9449f11d7f3d2dcbb90c6b877045636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f
    ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c1216ccce2d0193f958bb3850a833f7ae43
    2b65bc5a53975c155aa4bcb4f7b2c4e54df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4
    fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b8017c25ca9052ca1079d8b78aebd4787
    6d330a30f6a8c6d61dd1ab5589329de714d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9
    9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91abfe43960977c87471cf9ad4074d30e1
    0d6a7f03c63bd5d4317f68ff325ba3bd80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db
    848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18d703dd84045a274ae8bfa73379661388
    d6991fe39b0d93debb41700b41f90a15c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc
    7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61f6b5b984d4d3dfa033c1bb7e4f0037fe
    bf406d91c0dccf32acf423cfa1e7071010d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b
    3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e06ebfde206bfb0fcbc0edc4ebec30966
    1bdd908d532eb0c6adc38b7ca7331dce8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1
    34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1e86215c2d54e6670e07383a27bbffb5a
    ddf47d66aa85a0c6f9f32e59d85a44dd5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3
    8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89d5974ee12e5cf7d5da4d6a31123041f3
    3e61407e76cffcdcfd7e19ba58cf4b536f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19
    9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96ba18b2faa745b6fe189cf772a9f84cbfc
";

/// RFC 9001 §A.3: the server's Initial, which client keys cannot open.
pub const RFC9001_SERVER_INITIAL: &str = "
    cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a5816b6394100f37a1c69797554780bb3
    8cc5a99f5ede4cf73c3ec2493a1839b3dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84
    022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc42158407dd074ee
";

/// RFC 9001 §A.2: the unprotected CRYPTO frame of both client Initials.
pub const RFC_CRYPTO_FRAME: &str = "
    060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c000004130113
    02010000c000000010000e00000b6578616d706c652e636f6dff01000100000a00080006001d00170018001000070005
    04616c706e000500050100000000003300260024001d00209370b2c9caa47fbabaf4559fedba753de171fa71f50f1ce1
    5d43e994ec74d748002b0003020304000d0010000e0403050306030203080408050806002d00020101001c0002400100
    3900320408ffffffffffffffff05048000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806
    048000ffff
";

pub fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

/// A protected client Initial: 4-byte packet number, no token, `frames` as
/// the payload (the RFC samples' layout, so they can be rebuilt exactly).
fn seal(version: Version, dcid: &[u8], scid: &[u8], pn: u32, frames: &[u8]) -> Vec<u8> {
    seal_keyed(dcid, version, dcid, scid, pn, frames)
}

/// As `seal`, with keys of the connection ID `keys_of` whatever the header
/// says: a client's later Initials under the server's chosen ID.
fn seal_keyed(
    keys_of: &[u8],
    version: Version,
    dcid: &[u8],
    scid: &[u8],
    pn: u32,
    frames: &[u8],
) -> Vec<u8> {
    seal_raw(keys_of, version, 0, dcid, scid, pn, frames)
}

/// The RFC samples' payload: their CRYPTO frame padded to 1162 bytes.
fn rfc_frames() -> Vec<u8> {
    let mut f = unhex(RFC_CRYPTO_FRAME);
    f.resize(1162, 0);
    f
}

/// A bare ClientHello message with a key share big enough (like Chrome's
/// X25519MLKEM768) that it cannot fit one datagram.
fn big_hello(name: &str) -> Vec<u8> {
    let rec = client_hello_record(&[(51, vec![0x11; 1300]), sni_ext(name), (13, vec![0; 8])]);
    rec[5..].to_vec()
}

const DCID: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn sni(o: Outcome<'_>) -> Option<String> {
    match o {
        Outcome::Sni(Some(s)) => Some(String::from_utf8_lossy(s).into_owned()),
        other => panic!("expected a server name, got {other:?}"),
    }
}

#[test]
fn rfc9001_client_initial_decrypts_to_example_com() {
    let pkt = unhex(RFC9001_CLIENT_INITIAL);
    assert_eq!(pkt.len(), 1200);
    let mut q = QuicAssembler::new();
    assert_eq!(sni(q.offer(1, 0, &pkt)).as_deref(), Some("example.com"));
    assert_eq!(q.offer(1, 1, &pkt), Outcome::Repeat);
}

#[test]
fn rfc9369_v2_client_initial_decrypts_to_example_com() {
    let pkt = unhex(RFC9369_CLIENT_INITIAL);
    let mut q = QuicAssembler::new();
    assert_eq!(sni(q.offer(1, 0, &pkt)).as_deref(), Some("example.com"));
}

#[test]
fn seal_rebuilds_the_rfc_samples_exactly() {
    let frames = rfc_frames();
    assert_eq!(
        seal(Version::V1, &RFC_DCID, &[], 2, &frames),
        unhex(RFC9001_CLIENT_INITIAL)
    );
    assert_eq!(
        seal(Version::V2, &RFC_DCID, &[], 2, &frames),
        unhex(RFC9369_CLIENT_INITIAL)
    );
}

#[test]
fn server_initial_or_corrupted_tag_fails_decryption() {
    let mut q = QuicAssembler::new();
    let server = unhex(RFC9001_SERVER_INITIAL);
    assert_eq!(
        q.offer(1, 0, &server),
        Outcome::Failed(Reason::QuicDecryptFailed)
    );
    let mut pkt = unhex(RFC9001_CLIENT_INITIAL);
    pkt[1199] ^= 1;
    assert_eq!(
        q.offer(2, 0, &pkt),
        Outcome::Failed(Reason::QuicDecryptFailed)
    );
    assert_eq!(q.pending(), 0, "failed decryption keeps no state");
}

#[test]
fn not_quic_touches_nothing() {
    let mut q = QuicAssembler::new();
    for d in [
        &[][..],
        &[0x40, 1, 2, 3, 4, 5, 6, 7][..],          // short header
        &[0xc0, 0, 0, 0, 0, 0, 0, 0][..],          // version negotiation
        &[0xc0, 0xff, 0, 0, 0x1d, 8, 0, 0, 0][..], // draft-29
        &[0xc3, 0, 0][..],
    ] {
        assert_eq!(q.offer(1, 0, d), Outcome::NotQuic, "{d:?}");
    }
    assert_eq!(q.scratch.capacity(), 0);
    assert!(q.pool.is_empty() && q.pending.is_empty() && q.done.is_empty());
}

#[test]
fn shuffled_hello_over_three_datagrams_in_any_order() {
    let hello = big_hello("chrome.example");
    let parts: Vec<&[u8]> = hello.chunks(600).collect();
    assert_eq!(parts.len(), 3);
    // Each datagram: frames out of order, PING and PADDING in between.
    let mut d = Vec::new();
    for (i, chunk) in parts.iter().enumerate() {
        let (a, b) = chunk.split_at(chunk.len() / 3);
        let mut frames = crypto(i * 600 + a.len(), b);
        frames.extend_from_slice(&[0x01, 0, 0, 0]);
        frames.extend(crypto(i * 600, a));
        frames.resize(1100, 0);
        d.push(seal(Version::V1, &DCID, &[9], i as u32, &frames));
    }
    let mut q = QuicAssembler::new();
    assert_eq!(q.offer(7, 0, &d[2]), Outcome::Pending);
    assert_eq!(q.offer(7, 1, &d[0]), Outcome::Pending);
    assert_eq!(q.pending(), 1);
    assert_eq!(sni(q.offer(7, 2, &d[1])).as_deref(), Some("chrome.example"));
    assert_eq!(q.pending(), 0);
    assert_eq!(q.offer(7, 3, &d[1]), Outcome::Repeat);
}

#[test]
fn later_initials_keep_the_original_keys_under_a_new_dcid() {
    let hello = big_hello("moved.example");
    let (a, b) = hello.split_at(1000);
    let mut q = QuicAssembler::new();
    let first = seal(Version::V2, &DCID, &[], 0, &crypto(0, a));
    assert_eq!(q.offer(3, 0, &first), Outcome::Pending);
    let second = seal_keyed(&DCID, Version::V2, &[0xee; 8], &[], 1, &crypto(1000, b));
    assert_eq!(
        sni(q.offer(3, 1, &second)).as_deref(),
        Some("moved.example")
    );
    // Once reported, the connection's ACK-only Initials are not decrypted.
    let ack = seal_keyed(&DCID, Version::V2, &[0xee; 8], &[], 2, &[2, 0, 0, 0, 0, 0]);
    assert_eq!(q.offer(3, 2, &ack), Outcome::Repeat);
}

#[test]
fn a_client_starting_over_under_a_new_dcid_is_read_afresh() {
    // After a Retry the client sends its ClientHello again, keyed by the
    // server's new connection ID; the unfinished old one is dropped.
    let hello = big_hello("retry.example");
    let mut q = QuicAssembler::new();
    let old = seal(Version::V1, &DCID, &[], 0, &crypto(0, &hello[..700]));
    assert_eq!(q.offer(4, 0, &old), Outcome::Pending);
    let new_dcid = [0xab; 12];
    let again = seal(Version::V1, &new_dcid, &[], 1, &crypto(0, &hello[..700]));
    assert_eq!(q.offer(4, 1, &again), Outcome::Pending);
    let rest = seal(Version::V1, &new_dcid, &[], 2, &crypto(700, &hello[700..]));
    assert_eq!(sni(q.offer(4, 2, &rest)).as_deref(), Some("retry.example"));
}

#[test]
fn coalesced_packets_are_walked_by_length() {
    let hello = big_hello("coalesced.example");
    let (a, b) = hello.split_at(800);
    // A Handshake packet first (skipped), then two Initials, then a
    // short-header packet that ends the walk.
    let mut d = vec![0xe0, 0, 0, 0, 1, 8];
    d.extend_from_slice(&DCID);
    d.extend_from_slice(&[0, 5, 1, 2, 3, 4, 5]);
    d.extend(seal(Version::V1, &DCID, &[], 0, &crypto(800, b)));
    d.extend(seal(Version::V1, &DCID, &[], 1, &crypto(0, a)));
    d.extend_from_slice(&[0x40, 1, 2, 3]);
    let mut q = QuicAssembler::new();
    assert_eq!(sni(q.offer(5, 0, &d)).as_deref(), Some("coalesced.example"));
    // Only a Handshake packet: no Initial, so nothing to report.
    assert_eq!(q.offer(6, 0, &d[..21]), Outcome::NotQuic);
}

#[test]
fn ack_only_initial_of_an_unknown_connection_keeps_no_state() {
    let mut q = QuicAssembler::new();
    let ack = seal(Version::V1, &DCID, &[], 3, &[2, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(q.offer(1, 0, &ack), Outcome::Pending);
    assert_eq!(q.pending(), 0);
}

#[test]
fn forbidden_frames_and_other_messages_fail_once() {
    let mut q = QuicAssembler::new();
    let stream = seal(Version::V1, &DCID, &[], 0, &[0x08, 0, 1, 0x41, 0, 0, 0]);
    assert_eq!(
        q.offer(1, 0, &stream),
        Outcome::Failed(Reason::QuicMalformed)
    );
    assert_eq!(q.offer(1, 1, &stream), Outcome::Repeat);
    let server_hello = seal(Version::V1, &DCID, &[], 0, &crypto(0, &[2, 0, 0, 40, 3, 3]));
    assert_eq!(
        q.offer(2, 0, &server_hello),
        Outcome::Failed(Reason::TlsMalformed)
    );
    // Reserved header bits set under protection (RFC 9000 §17.2).
    let reserved = seal_raw(&DCID, Version::V1, 0x08, &DCID, &[], 0, &rfc_frames());
    assert_eq!(
        q.offer(3, 0, &reserved),
        Outcome::Failed(Reason::QuicMalformed)
    );
}

#[test]
fn hello_past_the_buffer_is_truncated_but_an_early_name_is_found() {
    let mut exts = vec![(21u16, vec![0; CRYPTO_MAX])];
    exts.push(sni_ext("far.example"));
    let far = client_hello_record(&exts)[5..].to_vec();
    let mut exts = vec![sni_ext("near.example")];
    exts.push((21u16, vec![0; CRYPTO_MAX]));
    let near = client_hello_record(&exts)[5..].to_vec();
    for (key, hello, want) in [(1, &far, None), (2, &near, Some("near.example"))] {
        let mut q = QuicAssembler::new();
        let mut last = Outcome::Pending;
        for (i, chunk) in hello.chunks(1100).enumerate() {
            let d = seal(Version::V1, &DCID, &[], i as u32, &crypto(i * 1100, chunk));
            last = q.offer(key, i as i64, &d);
            if last != Outcome::Pending {
                break;
            }
        }
        match want {
            Some(name) => assert_eq!(sni(last).as_deref(), Some(name)),
            None => assert_eq!(last, Outcome::Failed(Reason::TlsTruncated)),
        }
    }
}

#[test]
fn oldest_unfinished_connection_is_evicted_at_the_cap() {
    let hello = big_hello("many.example");
    let frames = crypto(0, &hello[..500]);
    let d = seal(Version::V1, &DCID, &[], 0, &frames);
    let mut q = QuicAssembler::new();
    for key in 0..=MAX_PENDING as u64 {
        assert_eq!(q.offer(key, key as i64, &d), Outcome::Pending);
    }
    assert_eq!((q.pending(), q.evicted(), q.expired()), (MAX_PENDING, 1, 0));
    let rest = seal(Version::V1, &DCID, &[], 1, &crypto(500, &hello[500..]));
    assert_eq!(
        sni(q.offer(1, 2000, &rest)).as_deref(),
        Some("many.example")
    );
    // Key 0 was the oldest: its second half now lacks the first.
    assert_eq!(q.offer(0, 2001, &rest), Outcome::Pending);
    assert_eq!((q.pending(), q.evicted()), (MAX_PENDING, 1));
}

#[test]
fn unfinished_connections_expire_after_ten_seconds() {
    let hello = big_hello("slow.example");
    let first = seal(Version::V1, &DCID, &[], 0, &crypto(0, &hello[..500]));
    let rest = seal(Version::V1, &DCID, &[], 1, &crypto(500, &hello[500..]));
    let mut q = QuicAssembler::new();
    assert_eq!(q.offer(1, 0, &first), Outcome::Pending);
    assert_eq!(q.offer(1, EXPIRY_NS + 1, &rest), Outcome::Pending);
    assert_eq!(q.expired(), 1);
    // Done marks expire too: a new connection reusing the tuple is read.
    let whole = seal(Version::V1, &DCID, &[], 0, &crypto(0, &hello));
    assert_eq!(sni(q.offer(2, 0, &whole)).as_deref(), Some("slow.example"));
    assert_eq!(q.offer(2, EXPIRY_NS - 1, &whole), Outcome::Repeat);
    assert!(matches!(q.offer(2, EXPIRY_NS, &whole), Outcome::Sni(_)));
}

fn any_outcome_ok(o: Outcome<'_>) -> bool {
    !matches!(o, Outcome::Failed(r) if !matches!(r,
        Reason::QuicMalformed | Reason::QuicDecryptFailed | Reason::TlsMalformed | Reason::TlsTruncated))
}

#[test]
fn rfc_packets_cut_at_every_length() {
    for hex in [RFC9001_CLIENT_INITIAL, RFC9369_CLIENT_INITIAL] {
        let pkt = unhex(hex);
        let mut q = QuicAssembler::new();
        for n in 0..pkt.len() {
            let o = q.offer(n as u64, 0, &pkt[..n]);
            assert!(
                matches!(o, Outcome::Failed(Reason::QuicMalformed) | Outcome::NotQuic),
                "{n}: {o:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1500), lead in any::<u8>()) {
        let mut q = QuicAssembler::new();
        prop_assert!(any_outcome_ok(q.offer(1, 0, &data)));
        // Also behind a v1 Initial's first bytes, so the header parser runs.
        let mut d = vec![0xc0 | (lead & 0x3f), 0, 0, 0, 1];
        d.extend_from_slice(&data);
        prop_assert!(any_outcome_ok(q.offer(2, 0, &d)));
    }

    #[test]
    fn mutated_protected_initials_never_panic(
        v2 in any::<bool>(),
        edits in proptest::collection::vec((0usize..1200, any::<u8>()), 1..8),
        cut in 0usize..1300,
    ) {
        let mut pkt = unhex(if v2 { RFC9369_CLIENT_INITIAL } else { RFC9001_CLIENT_INITIAL });
        for (at, v) in edits {
            pkt[at] = v;
        }
        pkt.truncate(cut);
        let mut q = QuicAssembler::new();
        prop_assert!(any_outcome_ok(q.offer(1, 0, &pkt)));
    }

    /// Mutations behind a valid tag: the frame walker and the ClientHello
    /// parser see them.
    #[test]
    fn mutated_plaintext_never_panics(
        edits in proptest::collection::vec((0usize..300, any::<u8>()), 1..8),
        split in 1usize..245,
    ) {
        let mut frames = rfc_frames();
        for (at, v) in edits {
            frames[at] = v;
        }
        let mut q = QuicAssembler::new();
        prop_assert!(any_outcome_ok(q.offer(1, 0, &seal(Version::V1, &DCID, &[], 0, &frames))));
        // And the intact ClientHello split at a random point, second half first.
        let hello = &unhex(RFC_CRYPTO_FRAME)[4..];
        let split = split.min(hello.len() - 1);
        let b = seal(Version::V1, &DCID, &[], 1, &crypto(split, &hello[split..]));
        let a = seal(Version::V1, &DCID, &[], 2, &crypto(0, &hello[..split]));
        prop_assert_eq!(q.offer(2, 0, &b), Outcome::Pending);
        prop_assert_eq!(sni(q.offer(2, 1, &a)), Some("example.com".to_string()));
    }
}
