//! A bounded table of per-host (or per host and target) state.
//!
//! Invariants: the table never grows after it is made (4-way buckets in
//! one allocation); a lookup touches one bucket; a new key takes an empty
//! slot, else one idle past the heuristic's window (expired, not counted),
//! else the least valuable live slot (counted in `evicted`). A flood of
//! new keys can therefore cost a heuristic some memory of old ones (the
//! count says how much), never unbounded memory or time.

const WAYS: usize = 4;

#[derive(Clone, Copy, Default)]
struct Slot<T> {
    /// 0: empty (keys are made odd).
    key: u64,
    /// Packet time of the last touch.
    last: i64,
    val: T,
}

pub(in crate::detect) struct Table<T> {
    buckets: Box<[[Slot<T>; WAYS]]>,
    mask: usize,
    /// Live entries pushed out by new keys.
    pub evicted: u64,
}

/// A value that can say how much it is worth keeping when its bucket is
/// full (a beacon series half built is worth more than a one-off).
pub(in crate::detect) trait Keep {
    fn worth(&self) -> u32 {
        0
    }
}

impl<T: Copy + Default + Keep> Table<T> {
    /// At least `entries` slots (rounded up to a power of two buckets).
    pub fn new(entries: usize) -> Table<T> {
        let buckets = (entries / WAYS).max(1).next_power_of_two();
        Table {
            buckets: crate::packet::huge_vec(buckets, [Slot::default(); WAYS]).into_boxed_slice(),
            mask: buckets - 1,
            evicted: 0,
        }
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    fn bucket(&mut self, key: u64) -> &mut [Slot<T>; WAYS] {
        // The high bits pick the bucket: the low bit is always set.
        &mut self.buckets[((key >> 32) ^ (key >> 7)) as usize & self.mask]
    }

    /// Start loading the bucket of `key`, so that the probe after the
    /// packet's other work finds it in the cache.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        let key = key | 1;
        let b = &self.buckets[((key >> 32) ^ (key >> 7)) as usize & self.mask];
        let lines = std::mem::size_of_val(b).div_ceil(64);
        let p = b.as_ptr().cast::<u8>();
        for i in 0..lines {
            crate::packet::prefetch_read(p.wrapping_add(i * 64));
        }
    }

    /// The entry of `key` if it is there, touched at `now`.
    pub fn get(&mut self, key: u64, now: i64) -> Option<&mut T> {
        let key = key | 1;
        let s = self.bucket(key).iter_mut().find(|s| s.key == key)?;
        s.last = s.last.max(now);
        Some(&mut s.val)
    }

    /// The entry of `key`, made (default) if absent; a slot idle for
    /// `idle_ns` counts as free.
    pub fn entry(&mut self, key: u64, now: i64, idle_ns: i64) -> &mut T {
        let key = key | 1;
        let mut evicted = false;
        let b = self.bucket(key);
        let i = match b.iter().position(|s| s.key == key) {
            Some(i) => {
                b[i].last = b[i].last.max(now);
                i
            }
            None => {
                let free = b
                    .iter()
                    .position(|s| s.key == 0 || now.saturating_sub(s.last) > idle_ns);
                let i = free.unwrap_or_else(|| {
                    (0..WAYS)
                        .min_by_key(|&i| (b[i].val.worth(), b[i].last))
                        .unwrap_or(0)
                });
                evicted = free.is_none();
                b[i] = Slot {
                    key,
                    last: now,
                    val: T::default(),
                };
                i
            }
        };
        self.evicted += u64::from(evicted);
        &mut self.bucket(key)[i].val
    }

    /// Entries in use (walks the table: for tests and gauges, not per
    /// packet).
    pub fn live(&self) -> usize {
        self.buckets.iter().flatten().filter(|s| s.key != 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Default)]
    struct N(u32);
    impl Keep for N {
        fn worth(&self) -> u32 {
            self.0
        }
    }

    #[test]
    fn bounded_under_a_flood_and_counts_evictions() {
        let mut t: Table<N> = Table::new(64);
        for k in 0..10_000u64 {
            t.entry(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1, 1_000).0 += 1;
        }
        assert_eq!(t.capacity(), 64);
        assert_eq!(t.live(), 64);
        assert_eq!(t.evicted, 10_000 - 64);
    }

    #[test]
    fn idle_slots_are_reused_without_counting() {
        let mut t: Table<N> = Table::new(4);
        for k in 0..4u64 {
            t.entry(k << 33, 0, 10);
        }
        t.entry(99 << 33, 100, 10);
        assert_eq!(t.evicted, 0);
    }

    #[test]
    fn valuable_entries_survive() {
        let mut t: Table<N> = Table::new(4);
        t.entry(1 << 40, 0, 1_000).0 = 5;
        for k in 2..50u64 {
            t.entry(k << 40, k as i64, 1_000);
        }
        assert_eq!(t.get(1 << 40, 60).map(|n| n.0), Some(5));
    }
}
