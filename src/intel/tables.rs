//! The exact tables inside one feed's part: sorted key arrays with a radix
//! index, and CIDRs flattened into sorted disjoint ranges.
//!
//! Why sorted arrays rather than hash maps: a sorted `u32` costs 4 bytes per
//! address and a domain hash 8, where a hash map of key -> id cost 19-36
//! bytes per entry (load factor, control bytes) and a per-indicator record
//! another 32. With the 65,536-bucket radix index a lookup reads the index
//! and one or two cache lines of keys; behind the Bloom filter this runs
//! only for hits and the ~1% false positives.
//!
//! Measured (`benches/lookup.rs`, 2M domains + 2M IPv4 + 200k CIDRs, 2-core
//! VM): all tables and filters take 55.5 MiB for 75.7 MiB of feed text. A
//! domain miss with keys from memory costs 155 ns here against 274 ns for a
//! plain hash set of the same hashes (no filter, a probe per suffix). For
//! exact addresses alone a `u32` hash set is faster from memory (12.5 ns vs
//! 45.5 ns for our exact + CIDR path) but 3-4x larger; with the /24 map in
//! front both are ~10 ns warm, so memory decided. CIDRs as sorted disjoint
//! ranges cost one index read and a short search whatever the prefix mix;
//! the per-prefix-length hash tables they replaced probed every length
//! present (up to 25 probes for a miss).

use super::arr::{Arr, Plain};

/// A key that can be bucketed by its top 16 bits.
pub trait RadixKey: Plain + Ord {
    fn bucket(self) -> usize;
}

impl RadixKey for u32 {
    #[inline]
    fn bucket(self) -> usize {
        (self >> 16) as usize
    }
}

impl RadixKey for u64 {
    #[inline]
    fn bucket(self) -> usize {
        (self >> 48) as usize
    }
}

impl RadixKey for u128 {
    #[inline]
    fn bucket(self) -> usize {
        (self >> 112) as usize
    }
}

/// Below this many keys a plain binary search is as fast as the index.
const INDEX_FROM: usize = 4096;

/// Entries of a radix index: one per bucket, and one past the last.
pub const INDEX_LEN: usize = 65_537;

/// Sorted, distinct keys. `index[b]` is the position of the first key whose
/// bucket is `>= b` ([`INDEX_LEN`] entries, present for large tables only).
pub struct Keys<K: Plain> {
    keys: Arr<K>,
    index: Option<Arr<u32>>,
}

impl<K: Plain> Default for Keys<K> {
    fn default() -> Self {
        Keys {
            keys: Arr::default(),
            index: None,
        }
    }
}

/// Whether `index` is a radix index over `sorted` keys: [`INDEX_LEN`]
/// entries from 0, not decreasing, the last one the number of keys, each
/// bucket's keys in their bucket.
fn index_fits<K: RadixKey>(sorted: &[K], index: &[u32]) -> bool {
    index.len() == INDEX_LEN
        && index[0] == 0
        && index.windows(2).all(|w| w[0] <= w[1])
        && index[INDEX_LEN - 1] as usize == sorted.len()
        && index.windows(2).enumerate().all(|(b, w)| {
            sorted[w[0] as usize..w[1] as usize]
                .iter()
                .all(|k| k.bucket() == b)
        })
}

impl<K: RadixKey> Keys<K> {
    /// `keys` must be sorted and distinct.
    pub fn new(mut keys: Vec<K>) -> Keys<K> {
        // Collected in place from wider pairs, the vector may hold twice
        // the room it needs.
        keys.shrink_to_fit();
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let index = (keys.len() >= INDEX_FROM).then(|| radix_index(&keys, |k| k.bucket()));
        Keys {
            keys: keys.into(),
            index,
        }
    }

    /// Keys and index as a snapshot file stored them; `None` unless the
    /// keys are sorted and distinct and the index fits them.
    pub fn from_parts(keys: Arr<K>, index: Option<Arr<u32>>) -> Option<Keys<K>> {
        let sorted = keys.windows(2).all(|w| w[0] < w[1]);
        let fits = index.as_ref().is_none_or(|ix| index_fits(&keys, ix));
        (sorted && fits).then_some(Keys { keys, index })
    }

    /// The sorted keys and the radix index, for a snapshot file.
    pub fn as_parts(&self) -> (&[K], Option<&[u32]>) {
        (&self.keys, self.index.as_deref())
    }

    /// Position of `k`.
    #[inline]
    pub fn find(&self, k: K) -> Option<usize> {
        let (lo, hi) = match &self.index {
            Some(ix) => {
                let b = k.bucket();
                (ix[b] as usize, ix[b + 1] as usize)
            }
            None => (0, self.keys.len()),
        };
        self.keys[lo..hi].binary_search(&k).ok().map(|p| lo + p)
    }

    #[inline]
    pub fn get(&self, pos: usize) -> K {
        self.keys[pos]
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = K> + '_ {
        self.keys.iter().copied()
    }

    pub fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes() + self.index.as_ref().map_or(0, |i| i.heap_bytes())
    }
}

fn radix_index<T>(sorted: &[T], bucket: impl Fn(&T) -> usize) -> Arr<u32> {
    let mut ix = vec![0u32; INDEX_LEN];
    let mut pos = 0usize;
    for (b, slot) in ix.iter_mut().enumerate() {
        while pos < sorted.len() && bucket(&sorted[pos]) < b {
            pos += 1;
        }
        *slot = pos as u32;
    }
    ix.into()
}

/// No network covers the range.
pub const NONE: u32 = u32::MAX;

/// Networks flattened into sorted disjoint ranges: `starts[i]..starts[i+1]`
/// is covered by network `vals[i]` (the most specific one), or by none.
pub struct Ranges<K: Plain> {
    starts: Arr<K>,
    vals: Arr<u32>,
    index: Option<Arr<u32>>,
}

impl<K: Plain> Default for Ranges<K> {
    fn default() -> Self {
        Ranges {
            starts: Arr::default(),
            vals: Arr::default(),
            index: None,
        }
    }
}

impl<K: RadixKey + Into<u128>> Ranges<K> {
    /// `nets`: `(first, last, value)`, networks that are nested or disjoint
    /// (CIDRs always are), each distinct. The innermost network wins.
    pub fn new(mut nets: Vec<(K, K, u32)>, from_u128: impl Fn(u128) -> K) -> Ranges<K> {
        // Wider first at equal start, so the narrower one overrides it.
        nets.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut starts: Vec<K> = Vec::with_capacity(nets.len() * 2);
        let mut vals: Vec<u32> = Vec::with_capacity(nets.len() * 2);
        let mut emit = |at: K, v: u32| {
            if starts.last() == Some(&at) {
                *vals.last_mut().unwrap_or(&mut 0) = v;
            } else if vals.last() != Some(&v) || vals.is_empty() {
                starts.push(at);
                vals.push(v);
            }
        };
        // Open networks, outermost at the bottom.
        let mut open: Vec<(K, u32)> = Vec::new();
        let close = |open: &mut Vec<(K, u32)>, emit: &mut dyn FnMut(K, u32)| {
            let Some((last, _)) = open.pop() else { return };
            let after: u128 = last.into();
            let parent = open.last().map_or(NONE, |p| p.1);
            if let Some(next) = after.checked_add(1) {
                let next = from_u128(next);
                // A key type narrower than u128 wraps past its maximum.
                if next > last {
                    emit(next, parent);
                }
            }
        };
        for (first, last, v) in nets {
            while open.last().is_some_and(|o| o.0 < first) {
                close(&mut open, &mut emit);
            }
            emit(first, v);
            open.push((last, v));
        }
        while !open.is_empty() {
            close(&mut open, &mut emit);
        }
        starts.shrink_to_fit();
        vals.shrink_to_fit();
        let index = (starts.len() >= INDEX_FROM).then(|| radix_index(&starts, |k| k.bucket()));
        Ranges {
            starts: starts.into(),
            vals: vals.into(),
            index,
        }
    }

    /// Ranges as a snapshot file stored them; `None` unless the starts are
    /// sorted and distinct, there is a value per start, every value is
    /// [`NONE`] or below `values`, and the index fits.
    pub fn from_parts(
        starts: Arr<K>,
        vals: Arr<u32>,
        index: Option<Arr<u32>>,
        values: usize,
    ) -> Option<Ranges<K>> {
        let ok = starts.len() == vals.len()
            && starts.windows(2).all(|w| w[0] < w[1])
            && vals.iter().all(|&v| v == NONE || (v as usize) < values)
            && index.as_ref().is_none_or(|ix| index_fits(&starts, ix));
        ok.then_some(Ranges {
            starts,
            vals,
            index,
        })
    }

    /// Starts, values and the radix index, for a snapshot file.
    pub fn as_parts(&self) -> (&[K], &[u32], Option<&[u32]>) {
        (&self.starts, &self.vals, self.index.as_deref())
    }

    /// The value of the innermost network containing `k`.
    #[inline]
    pub fn get(&self, k: K) -> Option<u32> {
        let (lo, hi) = match &self.index {
            Some(ix) => {
                let b = k.bucket();
                (ix[b] as usize, ix[b + 1] as usize)
            }
            None => (0, self.starts.len()),
        };
        // The range holding `k` starts at the last start <= k, which may lie
        // before this bucket.
        let i = lo + self.starts[lo..hi].partition_point(|&s| s <= k);
        let v = *self.vals.get(i.checked_sub(1)?)?;
        (v != NONE).then_some(v)
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    pub fn heap_bytes(&self) -> usize {
        self.starts.heap_bytes()
            + self.vals.heap_bytes()
            + self.index.as_ref().map_or(0, |i| i.heap_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ranges(nets: &[(u32, u8)]) -> Ranges<u32> {
        let v = nets
            .iter()
            .enumerate()
            .map(|(i, &(a, p))| {
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                (a & mask, (a & mask) | !mask, i as u32)
            })
            .collect();
        Ranges::new(v, |x| x as u32)
    }

    #[test]
    fn nested_networks_innermost_wins() {
        let r = ranges(&[(0x0a00_0000, 8), (0x0a01_0000, 16), (0x0a01_0200, 24)]);
        assert_eq!(r.get(0x0a00_0001), Some(0));
        assert_eq!(r.get(0x0a01_0001), Some(1));
        assert_eq!(r.get(0x0a01_0201), Some(2));
        assert_eq!(r.get(0x0a01_0300), Some(1));
        assert_eq!(r.get(0x0a02_0000), Some(0));
        assert_eq!(r.get(0x0b00_0000), None);
        assert_eq!(r.get(0x09ff_ffff), None);
        let top = ranges(&[(0xffff_ff00, 24)]);
        assert_eq!(top.get(u32::MAX), Some(0));
        assert_eq!(top.get(0), None);
    }

    proptest! {
        /// The flattened ranges agree with a scan for the longest prefix.
        #[test]
        fn ranges_equal_longest_prefix_scan(
            nets in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..60),
            probes in proptest::collection::vec(any::<u32>(), 50),
        ) {
            let mut seen = std::collections::BTreeSet::new();
            let nets: Vec<(u32, u8)> = nets
                .into_iter()
                .map(|(a, p)| (a & if p == 0 { 0 } else { u32::MAX << (32 - p) }, p))
                .filter(|n| seen.insert(*n))
                .collect();
            let r = ranges(&nets);
            let inside = |&(a, p): &(u32, u8), k: u32| {
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                k & mask == a
            };
            let more: Vec<u32> = nets.iter().flat_map(|n| [n.0, n.0.wrapping_sub(1)]).collect();
            for k in probes.into_iter().chain(more) {
                let want = nets
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| inside(n, k))
                    .max_by_key(|(_, n)| n.1)
                    .map(|(i, _)| i as u32);
                prop_assert_eq!(r.get(k), want);
            }
        }

        #[test]
        fn keys_find_every_key_and_nothing_else(
            mut keys in proptest::collection::vec(any::<u32>(), 0..6000),
            probes in proptest::collection::vec(any::<u32>(), 100),
        ) {
            keys.sort_unstable();
            keys.dedup();
            let set: std::collections::BTreeSet<u32> = keys.iter().copied().collect();
            let k = Keys::new(keys.clone());
            for (i, &x) in keys.iter().enumerate() {
                prop_assert_eq!(k.find(x), Some(i));
            }
            for p in probes {
                prop_assert_eq!(k.find(p).is_some(), set.contains(&p));
            }
        }
    }
}
