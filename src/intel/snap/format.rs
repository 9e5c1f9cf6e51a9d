//! The byte layout of a snapshot file, format 1. Every integer is
//! little-endian; every section starts on a 64-byte boundary of the file,
//! so an array can be viewed in place or copied with one memcpy.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "\x89GWSNAP\n"
//!      8     4  format (1)
//!     12     4  header length (192)
//!     16     8  snapshot version (must increase from one file to the next)
//!     24     8  created, unix seconds
//!     32     8  payload length in bytes
//!     40    32  SHA-256 of the payload
//!     72     8  key id: the first 8 bytes of SHA-256 of the signing public key
//!     80    16  hash key: per-hasher seed, shared seed (see intel::filter)
//!     96    32  hash checks: 4 hashes of fixed values under that key
//!    128     8  indicators, every kind together
//!    136    48  indicators per kind: ip, cidr, ip_port, domain, url, keyword
//!    184     4  parts (one per feed)
//!    188     4  reserved (0)
//!    192    64  ed25519 signature of bytes 0..192
//!    256        payload
//! ```
//!
//! The payload starts with a directory: parts, slots per part ([`SLOTS`]),
//! global sections ([`GLOBALS`]) and a reserved word (4 bytes each), then
//! `(offset, length)` in bytes of every part's slots in order, then of the
//! global sections (8 bytes each), offsets counted from the payload's
//! start. An absent table has length 0.

use crate::intel::indicator::IndicatorKind;

pub const MAGIC: [u8; 8] = *b"\x89GWSNAP\n";
/// The one format this build reads and writes.
pub const FORMAT: u32 = 1;
/// Signed header bytes.
pub const HEADER_LEN: usize = 192;
pub const SIGNATURE_LEN: usize = 64;
/// Where the payload starts: header and signature, 64-aligned.
pub const PAYLOAD_AT: usize = 256;
/// Sections start at multiples of this.
pub const ALIGN: usize = 64;

const _: () = assert!(PAYLOAD_AT >= HEADER_LEN + SIGNATURE_LEN && PAYLOAD_AT.is_multiple_of(ALIGN));

/// The kinds a header counts, in order.
pub const KINDS: [IndicatorKind; 6] = [
    IndicatorKind::Ip,
    IndicatorKind::Cidr,
    IndicatorKind::IpPort,
    IndicatorKind::Domain,
    IndicatorKind::Url,
    IndicatorKind::Keyword,
];

/// A part's sections, in directory order.
pub mod slot {
    /// Blob: label, counts, the part's feeds.
    pub const FEEDS: usize = 0;
    /// Blob: references and descriptions.
    pub const NOTES: usize = 1;
    /// Keys, then their radix index (empty for small tables), then metas.
    pub const V4: usize = 2;
    pub const V4_META: usize = 4;
    pub const V6: usize = 5;
    pub const V6_META: usize = 7;
    /// Records of [`super::RECORD`] bytes.
    pub const PORTS: usize = 8;
    /// Records of [`super::RECORD`] bytes.
    pub const NETS: usize = 9;
    /// Ranges: starts, values, index (IPv4 at 10, IPv6 at 13).
    pub const NETS4: usize = 10;
    pub const NETS6: usize = 13;
    pub const DOMAINS: usize = 16;
    pub const DOMAINS_META: usize = 18;
    /// Blob: URL and keyword patterns.
    pub const PATTERNS: usize = 19;
    /// Keys and index.
    pub const ALLOW_V4: usize = 20;
    pub const ALLOW_V6: usize = 22;
    /// Ranges: starts, values, index.
    pub const ALLOW_NETS4: usize = 24;
    pub const ALLOW_NETS6: usize = 27;
    /// Keys and index.
    pub const ALLOW_DOMAINS: usize = 30;
}

/// Sections per part.
pub const SLOTS: usize = 32;

/// Global sections after every part's: the address filter, the domain
/// filter (64-byte blocks) and the IPv4 /24 map (u64 words).
pub const GLOBALS: usize = 3;
pub const IP_FILTER: usize = 0;
pub const DOMAIN_FILTER: usize = 1;
pub const V4_MAP: usize = 2;

/// Size of an address record (ports and networks): address (u128; an IPv4
/// address in its low 32 bits), meta (u32), port (u16), family (4 or 6),
/// prefix length, 8 bytes of zeros.
pub const RECORD: usize = 32;

/// Fixed values hashed into the header's checks: a short name, a name
/// past foldhash's 128-byte path, an IPv4 and an IPv6 key.
pub const CHECK_NAME: &str = "check.gatewatch.invalid";
pub const CHECK_LONG: &str = "a-name-long-enough-to-take-every-path-of-the-hash.\
    0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
    0123456789abcdef.check.gatewatch.invalid";
pub const CHECK_V4: u32 = 0xc000_0201;
pub const CHECK_V6: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001;

/// The signed header of a snapshot file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub format: u32,
    pub version: u64,
    pub created: u64,
    pub payload_len: u64,
    pub checksum: [u8; 32],
    pub key_id: [u8; 8],
    pub hash_seeds: (u64, u64),
    pub hash_checks: [u64; 4],
    pub indicators: u64,
    pub kinds: [u64; 6],
    pub parts: u32,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.format.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.version.to_le_bytes());
        b[24..32].copy_from_slice(&self.created.to_le_bytes());
        b[32..40].copy_from_slice(&self.payload_len.to_le_bytes());
        b[40..72].copy_from_slice(&self.checksum);
        b[72..80].copy_from_slice(&self.key_id);
        b[80..88].copy_from_slice(&self.hash_seeds.0.to_le_bytes());
        b[88..96].copy_from_slice(&self.hash_seeds.1.to_le_bytes());
        for (i, c) in self.hash_checks.iter().enumerate() {
            b[96 + i * 8..104 + i * 8].copy_from_slice(&c.to_le_bytes());
        }
        b[128..136].copy_from_slice(&self.indicators.to_le_bytes());
        for (i, c) in self.kinds.iter().enumerate() {
            b[136 + i * 8..144 + i * 8].copy_from_slice(&c.to_le_bytes());
        }
        b[184..188].copy_from_slice(&self.parts.to_le_bytes());
        b
    }

    /// The fields of `b`, which must be [`HEADER_LEN`] bytes long (magic
    /// and format are the caller's to check first).
    pub fn decode(b: &[u8]) -> Header {
        let mut checksum = [0u8; 32];
        checksum.copy_from_slice(&b[40..72]);
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&b[72..80]);
        Header {
            format: u32_at(b, 8),
            version: u64_at(b, 16),
            created: u64_at(b, 24),
            payload_len: u64_at(b, 32),
            checksum,
            key_id,
            hash_seeds: (u64_at(b, 80), u64_at(b, 88)),
            hash_checks: std::array::from_fn(|i| u64_at(b, 96 + i * 8)),
            indicators: u64_at(b, 128),
            kinds: std::array::from_fn(|i| u64_at(b, 136 + i * 8)),
            parts: u32_at(b, 184),
        }
    }

    /// The header length field and the reserved word, as read.
    pub fn fixed_fields(b: &[u8]) -> (u32, u32) {
        (u32_at(b, 12), u32_at(b, 188))
    }
}

/// Sections in a directory of `parts` parts.
pub fn entries(parts: usize) -> usize {
    parts * SLOTS + GLOBALS
}

/// Bytes of the directory of `parts` parts, padded to [`ALIGN`].
pub fn directory_len(parts: usize) -> usize {
    (16 + entries(parts) * 16).next_multiple_of(ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            format: FORMAT,
            version: 7,
            created: 1_800_000_000,
            payload_len: 12_345,
            checksum: [3; 32],
            key_id: [9; 8],
            hash_seeds: (11, 12),
            hash_checks: [1, 2, 3, 4],
            indicators: 99,
            kinds: [1, 2, 3, 4, 5, 6],
            parts: 3,
        };
        let b = h.encode();
        assert_eq!(&b[..8], &MAGIC);
        assert_eq!(Header::decode(&b), h);
        assert_eq!(Header::fixed_fields(&b), (HEADER_LEN as u32, 0));
        assert_eq!(directory_len(1) % ALIGN, 0);
    }
}
