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
//! per lookup (about 1e-13 with 2 million domains). The key is random per
//! process; foldhash is not a cryptographic MAC, so a collision cannot be
//! aimed at only while the key stays inside the process. A collision can
//! only raise a false alert (which shows the observed name), never hide one.

use std::hash::BuildHasher;
use std::sync::OnceLock;

#[inline]
fn state() -> &'static foldhash::fast::RandomState {
    static STATE: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    STATE.get_or_init(foldhash::fast::RandomState::default)
}

/// The hash of a normalised domain name (lower case, no trailing dot).
#[inline]
pub fn domain_hash(name: &str) -> u64 {
    state().hash_one(name.as_bytes())
}

/// The hash of an IPv4 address, for the filter.
#[inline]
pub fn v4_hash(a: u32) -> u64 {
    state().hash_one((4u8, a))
}

/// The hash of an IPv6 address, for the filter.
#[inline]
pub fn v6_hash(a: u128) -> u64 {
    state().hash_one((6u8, a))
}

/// Bits set per key. With 10 bits of filter per key this gives about 1%
/// false positives for a blocked filter.
const K: u32 = 7;
const BITS_PER_KEY: usize = 10;
const LISTED: u64 = 0;
const PARENT: u64 = 0x5bd1_e995_5bd1_e995;

#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Block([u64; 8]);

/// A Bloom filter whose bits for one key all lie in one 64-byte block, so a
/// lookup touches one cache line. No false negatives. Two classes of key
/// share it (each with its own bits in the key's block).
#[derive(Default)]
pub struct Bloom {
    blocks: Vec<Block>,
}

impl Bloom {
    pub fn with_keys(n: usize) -> Bloom {
        let blocks = (n * BITS_PER_KEY).div_ceil(512).max(1);
        Bloom {
            blocks: vec![Block::default(); blocks],
        }
    }

    #[inline]
    fn block(&self, h: u64) -> usize {
        ((u128::from(h) * self.blocks.len() as u128) >> 64) as usize
    }

    /// Bit positions (0..512) for `h` in class `salt`, from a second mix of
    /// the hash so they do not depend on the bits that chose the block.
    #[inline(always)]
    fn bits(h: u64, salt: u64) -> impl Iterator<Item = usize> {
        let x = (h ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (0..K).map(move |i| ((x >> (i * 9)) & 511) as usize)
    }

    fn set(&mut self, h: u64, salt: u64) {
        let i = self.block(h);
        let b = &mut self.blocks[i].0;
        for bit in Self::bits(h, salt) {
            b[bit >> 6] |= 1 << (bit & 63);
        }
    }

    #[inline(always)]
    fn test(b: &[u64; 8], h: u64, salt: u64) -> bool {
        Self::bits(h, salt).all(|bit| b[bit >> 6] & (1 << (bit & 63)) != 0)
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

    #[inline(always)]
    pub fn may_contain(&self, h: u64) -> bool {
        if self.blocks.is_empty() {
            return false;
        }
        Self::test(&self.blocks[self.block(h)].0, h, LISTED)
    }

    /// (may be listed, may be a parent of a listed key), one cache line.
    #[inline(always)]
    pub fn probe(&self, h: u64) -> (bool, bool) {
        if self.blocks.is_empty() {
            return (false, false);
        }
        let b = &self.blocks[self.block(h)].0;
        (Self::test(b, h, LISTED), Self::test(b, h, PARENT))
    }

    pub fn heap_bytes(&self) -> usize {
        self.blocks.len() * 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let n = 100_000u32;
        let mut f = Bloom::with_keys(n as usize);
        for a in 0..n {
            f.insert(v4_hash(a));
        }
        assert!((0..n).all(|a| f.may_contain(v4_hash(a))));
        let fp = (n..2 * n).filter(|&a| f.may_contain(v4_hash(a))).count();
        assert!(fp < n as usize / 50, "{fp} false positives in {n}");
        assert!(!Bloom::default().may_contain(1));
        let mut p = Bloom::with_keys(10);
        p.insert_parent(42);
        assert!(p.probe(42).1);
    }

    #[test]
    fn hashes_are_stable_within_a_process() {
        assert_eq!(domain_hash("bad.example"), domain_hash("bad.example"));
        assert_ne!(domain_hash("bad.example"), domain_hash("bad.example."));
    }
}
