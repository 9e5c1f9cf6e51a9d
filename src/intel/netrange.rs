//! Address ranges as sorted integer intervals, searched by binary search.
//!
//! IPv4 addresses become `u32` and IPv6 `u128`, so a CIDR is one closed
//! interval `[first, last]` and a lookup is a `partition_point` over a sorted
//! vector: O(log n), no allocation, no hashing.

use ipnet::IpNet;
use std::net::IpAddr;

/// An address as an integer key: IPv4 and IPv6 are kept apart by the tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    V4(u32),
    V6(u128),
}

impl From<IpAddr> for Key {
    #[inline]
    fn from(ip: IpAddr) -> Key {
        match ip {
            IpAddr::V4(a) => Key::V4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Key::V4(u32::from(v4)),
                None => Key::V6(u128::from(a)),
            },
        }
    }
}

/// First and last integer of a network.
pub fn bounds(net: &IpNet) -> (Key, Key) {
    match net {
        IpNet::V4(n) => (
            Key::V4(u32::from(n.network())),
            Key::V4(u32::from(n.broadcast())),
        ),
        IpNet::V6(n) => (
            Key::V6(u128::from(n.network())),
            Key::V6(u128::from(n.broadcast())),
        ),
    }
}

/// Non-overlapping intervals, each carrying a value.
#[derive(Clone, Debug, Default)]
pub struct RangeMap<V: Copy> {
    ranges: Vec<(Key, Key, V)>,
}

impl<V: Copy> RangeMap<V> {
    /// Build from intervals. Returns the pairs of indices (into `items`) that
    /// overlap, if any; the map is only valid when that list is empty.
    pub fn build(items: Vec<(Key, Key, V)>) -> (Self, Vec<(usize, usize)>) {
        let mut idx: Vec<usize> = (0..items.len()).collect();
        idx.sort_by_key(|&i| (items[i].0, items[i].1));
        let mut overlaps = Vec::new();
        // Track the interval reaching furthest so far, so that one wide range
        // overlapping several later ones reports each of them.
        let mut reach: Option<usize> = None;
        for &i in &idx {
            if let Some(r) = reach {
                if items[i].0 <= items[r].1 {
                    overlaps.push((r.min(i), r.max(i)));
                }
                if items[i].1 > items[r].1 {
                    reach = Some(i);
                }
            } else {
                reach = Some(i);
            }
        }
        let ranges = idx.into_iter().map(|i| items[i]).collect();
        (RangeMap { ranges }, overlaps)
    }

    #[inline]
    pub fn get(&self, ip: IpAddr) -> Option<V> {
        let k = Key::from(ip);
        let i = self.ranges.partition_point(|r| r.0 <= k);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        (k <= r.1).then_some(r.2)
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// A set of networks, merged into disjoint intervals.
#[derive(Clone, Debug, Default)]
pub struct RangeSet {
    ranges: Vec<(Key, Key)>,
}

impl RangeSet {
    pub fn new<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> Self {
        let mut v: Vec<(Key, Key)> = nets.into_iter().map(bounds).collect();
        v.sort();
        let mut merged: Vec<(Key, Key)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            if let Some(last) = merged.last_mut()
                && (s <= last.1 || adjacent(last.1, s))
            {
                last.1 = last.1.max(e);
                continue;
            }
            merged.push((s, e));
        }
        RangeSet { ranges: merged }
    }

    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let k = Key::from(ip);
        let i = self.ranges.partition_point(|r| r.0 <= k);
        i > 0 && k <= self.ranges[i - 1].1
    }
}

fn adjacent(end: Key, start: Key) -> bool {
    match (end, start) {
        (Key::V4(e), Key::V4(s)) => e.checked_add(1) == Some(s),
        (Key::V6(e), Key::V6(s)) => e.checked_add(1) == Some(s),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn edges_slash0_32_128() {
        let all4 = RangeSet::new(&[n("0.0.0.0/0")]);
        assert!(all4.contains(ip("0.0.0.0")));
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(!all4.contains(ip("::1")));
        let one = RangeSet::new(&[n("10.0.0.1/32"), n("2001:db8::1/128")]);
        assert!(one.contains(ip("10.0.0.1")));
        assert!(!one.contains(ip("10.0.0.2")));
        assert!(!one.contains(ip("10.0.0.0")));
        assert!(one.contains(ip("2001:db8::1")));
        assert!(!one.contains(ip("2001:db8::2")));
        let all6 = RangeSet::new(&[n("::/0")]);
        assert!(all6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")));
        assert!(!all6.contains(ip("1.2.3.4")));
    }

    #[test]
    fn mapped_v4_in_v6_is_v4() {
        let s = RangeSet::new(&[n("192.0.2.0/24")]);
        assert!(s.contains(ip("::ffff:192.0.2.7")));
    }

    #[test]
    fn range_map_reports_every_overlap() {
        let items = vec![
            (bounds(&n("10.0.0.0/8")).0, bounds(&n("10.0.0.0/8")).1, 0),
            (bounds(&n("10.1.0.0/16")).0, bounds(&n("10.1.0.0/16")).1, 1),
            (bounds(&n("10.2.0.0/16")).0, bounds(&n("10.2.0.0/16")).1, 2),
            (bounds(&n("11.0.0.0/8")).0, bounds(&n("11.0.0.0/8")).1, 3),
        ];
        let (_, ov) = RangeMap::build(items);
        assert_eq!(ov, vec![(0, 1), (0, 2)]);
    }

    #[test]
    fn range_map_lookup() {
        let mk = |s: &str, v| {
            let (a, b) = bounds(&n(s));
            (a, b, v)
        };
        let (m, ov) = RangeMap::build(vec![mk("10.0.1.0/24", 1), mk("10.0.0.0/24", 0)]);
        assert!(ov.is_empty());
        assert_eq!(m.get(ip("10.0.0.255")), Some(0));
        assert_eq!(m.get(ip("10.0.1.0")), Some(1));
        assert_eq!(m.get(ip("10.0.2.0")), None);
        assert_eq!(m.get(ip("9.255.255.255")), None);
    }
}
