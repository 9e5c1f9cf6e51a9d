//! Client Initial keys and packet opening (RFC 9001 §5, RFC 9369 §3.3).
//!
//! Initial packets are encrypted, but with keys anyone can derive from the
//! client's first Destination Connection ID and a salt fixed per version: the
//! encryption keeps middleboxes from ossifying on the plaintext, not secrets.

use super::packet::{Long, Version};
use ring::aead::quic::{AES_128 as HP_AES_128, HeaderProtectionKey};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};
use std::ops::Range;

/// AEAD tag and header-protection sample length of AES-128-GCM.
const TAG_LEN: usize = 16;
const SAMPLE_LEN: usize = 16;

/// Raw key material, kept apart from the ring keys so tests can compare it
/// with the RFC vectors.
#[derive(Debug, PartialEq, Eq)]
pub struct Material {
    pub key: [u8; 16],
    pub iv: [u8; NONCE_LEN],
    pub hp: [u8; 16],
}

/// Output length for `Prk::expand`: ring needs a `KeyType`, ours is any size.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1): the info is the
/// output length, the label prefixed with "tls13 ", and a zero context length.
/// Fails only for an output longer than 255 hashes, which no caller asks for.
fn expand_label(prk: &Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

impl Material {
    /// The client's Initial key, IV and header-protection key for `dcid`.
    pub fn client_initial(version: Version, dcid: &[u8]) -> Option<Material> {
        let initial = Salt::new(HKDF_SHA256, version.initial_salt()).extract(dcid);
        let mut secret = [0u8; 32];
        expand_label(&initial, b"client in", &mut secret)?;
        let client = Prk::new_less_safe(HKDF_SHA256, &secret);
        let [key_label, iv_label, hp_label] = version.labels();
        let mut m = Material {
            key: [0; 16],
            iv: [0; NONCE_LEN],
            hp: [0; 16],
        };
        expand_label(&client, key_label, &mut m.key)?;
        expand_label(&client, iv_label, &mut m.iv)?;
        expand_label(&client, hp_label, &mut m.hp)?;
        Some(m)
    }
}

/// Ready-to-use client Initial keys of one connection.
pub struct Keys {
    pub(super) aead: LessSafeKey,
    pub(super) iv: [u8; NONCE_LEN],
    pub(super) hp: HeaderProtectionKey,
}

/// Why a packet could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Too short to hold a packet number, the sample and a tag, or reserved
    /// header bits set under protection (RFC 9000 §17.2: a violation).
    Malformed,
    /// The AEAD tag does not match: not a client Initial for these keys.
    Tag,
}

impl Keys {
    pub fn client_initial(version: Version, dcid: &[u8]) -> Option<Keys> {
        let m = Material::client_initial(version, dcid)?;
        // ring refuses only keys of the wrong length; ours are 16 bytes.
        Some(Keys {
            aead: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &m.key).ok()?),
            iv: m.iv,
            hp: HeaderProtectionKey::new(&HP_AES_128, &m.hp).ok()?,
        })
    }

    /// Remove header protection from `packet` (a copy of `p.bytes`) and
    /// decrypt its payload in place; returns where the plaintext frames lie
    /// in `packet`. The packet number is taken as sent: Initial numbers start
    /// at 0 and do not reach the wrap of even the 1-byte encoding before the
    /// ClientHello is out.
    pub fn open(&self, p: &Long<'_>, packet: &mut [u8]) -> Result<Range<usize>, OpenError> {
        let at = p.pn_offset;
        let sample = packet
            .get(at + 4..at + 4 + SAMPLE_LEN)
            .ok_or(OpenError::Malformed)?;
        let mask = self.hp.new_mask(sample).map_err(|_| OpenError::Malformed)?;
        packet[0] ^= mask[0] & 0x0f;
        let pn_len = usize::from(packet[0] & 0x03) + 1;
        let mut pn = 0u64;
        for i in 0..pn_len {
            packet[at + i] ^= mask[1 + i];
            pn = (pn << 8) | u64::from(packet[at + i]);
        }
        let (header, body) = packet.split_at_mut(at + pn_len);
        if body.len() < TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let mut nonce = self.iv;
        for (n, b) in nonce[NONCE_LEN - 8..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= b;
        }
        let plain = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&*header),
                body,
            )
            .map_err(|_| OpenError::Tag)?
            .len();
        if header[0] & 0x0c != 0 {
            return Err(OpenError::Malformed);
        }
        Ok(at + pn_len..at + pn_len + plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::quic::tests::{RFC_DCID, unhex};

    #[test]
    fn v1_keys_match_rfc9001_a1() {
        let m = Material::client_initial(Version::V1, &RFC_DCID).unwrap();
        assert_eq!(m.key.to_vec(), unhex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(m.iv.to_vec(), unhex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(m.hp.to_vec(), unhex("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn v2_keys_match_rfc9369_a1() {
        let m = Material::client_initial(Version::V2, &RFC_DCID).unwrap();
        assert_eq!(m.key.to_vec(), unhex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(m.iv.to_vec(), unhex("91f73e2351d8fa91660e909f"));
        assert_eq!(m.hp.to_vec(), unhex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    #[test]
    fn header_protection_mask_matches_rfc9001_a2() {
        let k = Keys::client_initial(Version::V1, &RFC_DCID).unwrap();
        let mask = k.hp.new_mask(&unhex("d1b1c98dd7689fb8ec11d242b123dc9b"));
        assert_eq!(mask.unwrap().to_vec(), unhex("437b9aec36"));
    }
}
