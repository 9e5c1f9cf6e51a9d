//! Building protected client Initials with the real keys, for the tests and
//! the fuzz targets: random bytes never get past the AEAD, so fuzzing the
//! assembler means encrypting what the fuzzer writes.

use super::keys::Keys;
use super::packet::Version;
use ring::aead::{Aad, Nonce};

/// A QUIC variable-length integer (RFC 9000 §16).
pub fn varint(v: usize) -> Vec<u8> {
    match v {
        0..64 => vec![v as u8],
        64..16384 => (v as u16 | 0x4000).to_be_bytes().to_vec(),
        _ => (v as u32 | 0x8000_0000).to_be_bytes().to_vec(),
    }
}

/// A CRYPTO frame carrying `data` at `offset`.
pub fn crypto(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend(varint(offset));
    f.extend(varint(data.len()));
    f.extend_from_slice(data);
    f
}

/// A protected client Initial: 4-byte packet number, no token, `frames` as
/// the payload, under the keys of the connection ID `keys_of` whatever the
/// header says, with `bits` or-ed into the first byte before protection.
/// The length field has two bytes, as real clients write it: callers keep
/// `frames` under 16 KiB and connection IDs under 256 bytes.
pub fn seal_raw(
    keys_of: &[u8],
    version: Version,
    bits: u8,
    dcid: &[u8],
    scid: &[u8],
    pn: u32,
    frames: &[u8],
) -> Vec<u8> {
    let keys = Keys::client_initial(version, keys_of).unwrap();
    let (kind, wire) = match version {
        Version::V1 => (0x00, 1u32),
        Version::V2 => (0x10, 0x6b33_43cf),
    };
    let mut pkt = vec![0xc3 | kind | bits];
    pkt.extend_from_slice(&wire.to_be_bytes());
    pkt.push(dcid.len() as u8);
    pkt.extend_from_slice(dcid);
    pkt.push(scid.len() as u8);
    pkt.extend_from_slice(scid);
    pkt.push(0);
    pkt.extend_from_slice(&((4 + frames.len() + 16) as u16 | 0x4000).to_be_bytes());
    let pn_at = pkt.len();
    pkt.extend_from_slice(&pn.to_be_bytes());
    let mut nonce = keys.iv;
    for (n, b) in nonce[4..].iter_mut().zip(u64::from(pn).to_be_bytes()) {
        *n ^= b;
    }
    let mut body = frames.to_vec();
    let tag = keys
        .aead
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&pkt[..]),
            &mut body,
        )
        .unwrap();
    pkt.extend_from_slice(&body);
    pkt.extend_from_slice(tag.as_ref());
    let mask = keys.hp.new_mask(&pkt[pn_at + 4..pn_at + 20]).unwrap();
    pkt[0] ^= mask[0] & 0x0f;
    for i in 0..4 {
        pkt[pn_at + i] ^= mask[1 + i];
    }
    pkt
}
