//! Keyed 64-bit hashes of indicators and the blocked Bloom filter that sits
//! in front of every exact table.
//!
//! Why a filter: most traffic misses, and a snapshot is several feeds' tables
//! (one per feed, so a reload rebuilds only what changed). Without the
//! filter a miss would probe every feed; with it a miss costs one cache line
//! whatever the number of feeds (measured in `benches/lookup.rs`).
//!
//! Domains are kept as keyed 64-bit hashes, not as text: a suffix whose hash
//! equals a listed domain's is taken as that domain: a listed name is never
//! missed, and an unlisted one matches by chance with probability n / 2^64
//! per lookup (about 1e-13 with 2 million domains). The key ([`HashKey`]) is
//! random per process for tables built from feed text; a compiled snapshot
//! file carries the key its tables were hashed with (it must, or its
//! lookups would not agree), so there the key is as private as the file.
//! foldhash is not a cryptographic MAC, so a collision cannot be aimed at
//! only while the key stays private. A collision can only raise a false
//! alert (which shows the observed name), never hide one.

use super::arr::{Arr, Plain};
use foldhash::SharedSeed;
use foldhash::fast::FoldHasher;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// The key of every hash a snapshot's tables and filters hold: the
/// per-hasher seed and the seed foldhash's shared seed is made from.
#[derive(Clone, Debug)]
pub struct HashKey {
    per: u64,
    shared_from: u64,
    shared: SharedSeed,
}

impl PartialEq for HashKey {
    fn eq(&self, o: &HashKey) -> bool {
        (self.per, self.shared_from) == (o.per, o.shared_from)
    }
}

impl Eq for HashKey {}

/// The process's key: what tables built from feed text are hashed with.
impl Default for HashKey {
    fn default() -> HashKey {
        HashKey::process().clone()
    }
}

impl HashKey {
    pub fn new(per: u64, shared_from: u64) -> HashKey {
        HashKey {
            per,
            shared_from,
            shared: SharedSeed::from_u64(shared_from),
        }
    }

    /// The key of the tables this process builds from feed text: random,
    /// chosen once.
    pub fn process() -> &'static HashKey {
        static KEY: OnceLock<HashKey> = OnceLock::new();
        KEY.get_or_init(HashKey::random)
    }

    /// A fresh random key (the system's random source; should that fail,
    /// the standard library's randomly keyed hasher).
    pub fn random() -> HashKey {
        let mut b = [0u8; 16];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
            use std::hash::BuildHasher;
            let s = std::collections::hash_map::RandomState::new();
            b[..8].copy_from_slice(&s.hash_one(1u8).to_le_bytes());
            b[8..].copy_from_slice(&s.hash_one(2u8).to_le_bytes());
        }
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        HashKey::new(word(0), word(8))
    }

    /// The two seeds, as a snapshot file stores them.
    pub fn seeds(&self) -> (u64, u64) {
        (self.per, self.shared_from)
    }

    #[inline(always)]
    fn hash(&self, x: impl Hash) -> u64 {
        let mut h = FoldHasher::with_seed(self.per, &self.shared);
        x.hash(&mut h);
        h.finish()
    }

    /// The hash of a normalised domain name (lower case, no trailing dot).
    #[inline]
    pub fn domain(&self, name: &str) -> u64 {
        self.hash(name.as_bytes())
    }

    /// The hash of an IPv4 address, for the filter.
    #[inline]
    pub fn v4(&self, a: u32) -> u64 {
        self.hash((4u8, a))
    }

    /// The hash of an IPv6 address, for the filter.
    #[inline]
    pub fn v6(&self, a: u128) -> u64 {
        self.hash((6u8, a))
    }
}

/// Bits set per key. With 10 bits of filter per key this gives about 1%
/// false positives for a blocked filter.
const K: u32 = 7;
const BITS_PER_KEY: usize = 10;
const LISTED: u64 = 0;
const PARENT: u64 = 0x5bd1_e995_5bd1_e995;

/// One cache line of filter bits.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
pub struct Block(pub [u64; 8]);

// SAFETY: 64 bytes of integers, no padding (size 64 = alignment 64).
unsafe impl Plain for Block {}

/// A Bloom filter whose bits for one key all lie in one 64-byte block, so a
/// lookup touches one cache line. No false negatives. Two classes of key
/// share it (each with its own bits in the key's block). Made by
/// [`BloomSet::freeze`] or read from a snapshot file, never changed after.
#[derive(Default)]
pub struct Bloom {
    blocks: Arr<Block>,
}

/// A filter being filled.
pub struct BloomSet {
    blocks: Vec<Block>,
}

#[inline]
fn block_of(h: u64, blocks: usize) -> usize {
    ((u128::from(h) * blocks as u128) >> 64) as usize
}

/// Bit positions (0..512) for `h` in class `salt`, from a second mix of
/// the hash so they do not depend on the bits that chose the block.
#[inline(always)]
fn bits(h: u64, salt: u64) -> impl Iterator<Item = usize> {
    let x = (h ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..K).map(move |i| ((x >> (i * 9)) & 511) as usize)
}

#[inline(always)]
fn test(b: &[u64; 8], h: u64, salt: u64) -> bool {
    bits(h, salt).all(|bit| b[bit >> 6] & (1 << (bit & 63)) != 0)
}

impl BloomSet {
    pub fn with_keys(n: usize) -> BloomSet {
        let blocks = (n * BITS_PER_KEY).div_ceil(512).max(1);
        BloomSet {
            blocks: vec![Block::default(); blocks],
        }
    }

    fn set(&mut self, h: u64, salt: u64) {
        let i = block_of(h, self.blocks.len());
        let b = &mut self.blocks[i].0;
        for bit in bits(h, salt) {
            b[bit >> 6] |= 1 << (bit & 63);
        }
    }

    /// Add a key.
    pub fn insert(&mut self, h: u64) {
        self.set(h, LISTED);
    }

    /// Add a key of the second class (for domains: a proper parent of a
    /// listed domain). Both classes of one key share its cache line.
    pub fn insert_parent(&mut self, h: u64) {
        self.set(h, PARENT);
    }

    pub fn freeze(self) -> Bloom {
        Bloom {
            blocks: Arr::from_vec(self.blocks),
        }
    }
}

impl Bloom {
    /// A filter over blocks read from a snapshot file.
    pub fn from_blocks(blocks: Arr<Block>) -> Bloom {
        Bloom { blocks }
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    #[inline(always)]
    pub fn may_contain(&self, h: u64) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        test(&self.blocks[block_of(h, self.blocks.len())].0, h, LISTED)
    }

    /// (may be listed, may be a parent of a listed key), one cache line.
    #[inline(always)]
    pub fn probe(&self, h: u64) -> (bool, bool) {
        if self.blocks.is_empty() {
            return (false, false);
        }
        let b = &self.blocks[block_of(h, self.blocks.len())].0;
        (test(b, h, LISTED), test(b, h, PARENT))
    }

    pub fn heap_bytes(&self) -> usize {
        self.blocks.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let n = 100_000u32;
        let k = HashKey::process();
        let mut f = BloomSet::with_keys(n as usize);
        for a in 0..n {
            f.insert(k.v4(a));
        }
        let f = f.freeze();
        assert!((0..n).all(|a| f.may_contain(k.v4(a))));
        let fp = (n..2 * n).filter(|&a| f.may_contain(k.v4(a))).count();
        assert!(fp < n as usize / 50, "{fp} false positives in {n}");
        assert!(!Bloom::default().may_contain(1));
        let mut p = BloomSet::with_keys(10);
        p.insert_parent(42);
        assert!(p.freeze().probe(42).1);
    }

    #[test]
    fn hashes_are_stable_within_a_process() {
        let k = HashKey::process();
        assert_eq!(k.domain("bad.example"), k.domain("bad.example"));
        assert_ne!(k.domain("bad.example"), k.domain("bad.example."));
    }

    /// A key rebuilt from its seeds hashes as the original (what lets a
    /// snapshot file's tables be looked up in another process); another
    /// key does not.
    #[test]
    fn a_key_rebuilt_from_its_seeds_agrees() {
        let k = HashKey::random();
        let (per, shared) = k.seeds();
        let again = HashKey::new(per, shared);
        assert_eq!(k, again);
        for name in ["a.example", "x.y.z.very-long-label-beyond-sixteen.example"] {
            assert_eq!(k.domain(name), again.domain(name));
        }
        assert_eq!(k.v6(42), again.v6(42));
        assert_ne!(k.domain("a.example"), HashKey::random().domain("a.example"));
    }
}
