//! IPv6 longest-prefix match: prefixes to next-hop ids, in a multibit trie with a
//! 24-bit first level and 8-bit levels below it, read by workers without locks while
//! one writer updates it in place. The IPv6 sibling of [`lpm4`](super::lpm4), with the
//! same entries, update rules and reclamation story, one level deeper per byte.
//!
//! # Layout
//!
//! The first level has one entry for every /24, 2^24 entries indexed by the top 24 bits
//! of the address (64 MB, in its own mapping with transparent huge pages). Below it is
//! one array of groups of 256 entries. A group hangs under an entry that stands for a
//! prefix of length `b` (24, 32, ..., 120), and has one entry per /(`b`+8) inside it,
//! indexed by the address's next byte; an entry gets a group only when some route
//! longer than its own length falls inside it. So an address is resolved in at most
//! 14 loads (one for the first level, then one per byte from byte 3 to 15), and a /48
//! route in at most 4.
//!
//! Every entry is one `u32`:
//!
//! ```text
//!  31     30     29..22   21..0
//!  VALID  GROUP  depth    next hop (VALID) or group number (GROUP)
//! ```
//!
//! - `0`: no route covers these addresses.
//! - `VALID | depth | hop`: the longest route covering them is `depth` bits long (0 to
//!   128) and leads to `hop`. Every entry a route of length `d` wrote is the same word,
//!   so a delete recognises its own entries by value, at any level.
//! - `GROUP | n`: look at the entry of group `n` for the address's next byte.
//!
//! Next hops are limited to 22 bits ([`MAX_NEXT_HOP`]), and there can be up to 2^22
//! groups. [`Lpm6Table::lookup_bulk`] loads the first-level entries of all the addresses
//! of a batch before it looks at any of them, so their cache misses overlap instead of
//! queueing; then it follows each address down its groups. (Walking the whole batch
//! level by level, branch-free, was measured too: no faster with cold caches, where the
//! processor already overlaps the independent walks of neighbouring addresses, and
//! slower with warm ones, where the batch goes as deep as its deepest address.)
//!
//! # Updates
//!
//! The writer ([`Lpm6`]) keeps the routes themselves in one hash map per prefix length,
//! and paints entries. A route of length `len` is painted at the level whose entries
//! are at least `len` long (the first level for `len <= 24`, else the group level of
//! its byte `(len - 1) / 8`):
//!
//! - on the range of entries it covers there, it sets every entry whose depth is at
//!   most `len`, and inside groups linked from that range (recursively) every entry
//!   whose depth is at most `len`: longer routes keep their entries, and the same prefix
//!   inserted again replaces its next hop;
//! - on the way down, where an entry it passes has no group yet, a group is taken,
//!   filled with that entry's value, and (after the rest of the path below it is built
//!   the same way, and painted) only then linked. The number of groups the path needs
//!   is counted before anything is written, so an insert that cannot get them all
//!   fails with [`LpmError::NoGroups`] and changes nothing.
//!
//! Delete looks up the next-shorter route covering the prefix (one hash probe per
//! shorter length that has routes) and writes its entry (or `0`) wherever the deleted
//! route's own word is found in its range, including in groups below. Then, going back
//! up the path, a group left with no entry deeper than its own prefix (and no group
//! under it) holds one word 256 times: its parent entry gets that word and the group is
//! retired.
//!
//! # Readers and the RCU story
//!
//! As for [`lpm4`](super::lpm4): readers ([`Lpm6Reader`], any number of threads) only
//! load atomics, and updates are single atomic stores ordered so that every state a
//! reader can observe is a valid answer:
//!
//! - each entry changes from its old answer to its new one in one store;
//! - a new group, and every new group below it, is complete before the release store
//!   that links the topmost one, and readers load every entry with acquire ordering,
//!   so nobody sees a half-filled group at any level;
//! - groups unlinked by a delete keep their contents (including links to groups below
//!   them that the same delete unlinked), and are not reused until every reader may
//!   have dropped the links it loaded: at once only while no [`Lpm6Reader`] exists,
//!   otherwise after [`Lpm6::reclaim`], which the owner calls after a grace period.
//!
//! What remains for the router's RCU is the same as for IPv4: grace-period detection,
//! atomic swaps of whole route sets, and deferred reclamation of next-hop objects.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

pub use super::lpm4::NO_ROUTE;
use super::mem::{FixedArray, HugeArray};
use super::routes::{Lpm, LpmError, LpmReader, Table};

/// Bits resolved by the first level.
const L1_BITS: u32 = 24;
/// First-level entries: one per /24.
const L1_LEN: usize = 1 << L1_BITS;
/// Bits resolved by each group.
const STRIDE: u32 = 8;
/// Entries of a group: one per value of the next byte.
const GROUP_LEN: usize = 1 << STRIDE;

const VALID: u32 = 1 << 31;
const GROUP: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 22;
const DEPTH_MASK: u32 = 0xff;
const PAYLOAD: u32 = (1 << 22) - 1;

/// The largest next-hop id a route can carry.
pub const MAX_NEXT_HOP: u32 = PAYLOAD;
/// The most groups a table can have.
pub const MAX_GROUPS: u32 = 1 << 22;
/// A group count for about 100,000 routes of a realistic mix (see `benches/lpm6.rs`,
/// which needs about a third of it): 512 MB of address space at 1 KB a group,
/// committed only when used.
pub const DEFAULT_GROUPS: u32 = 1 << 19;

/// The prefix length an entry was written for (0 for an empty entry).
#[inline]
fn depth(e: u32) -> u8 {
    ((e >> DEPTH_SHIFT) & DEPTH_MASK) as u8
}

/// First-level index of `addr`: its top 24 bits.
#[inline(always)]
fn first_index(addr: u128) -> usize {
    (addr >> (128 - L1_BITS)) as usize
}

/// Index in the group array of the entry for byte value `byte` in the group that `e`
/// links.
#[inline(always)]
fn group_index(e: u32, byte: u8) -> usize {
    ((e & PAYLOAD) as usize) << STRIDE | usize::from(byte)
}

/// Why a table change was refused (the same for both families).
pub type Lpm6Error = LpmError;

/// The lookup side: the first level and the groups, shared by the writer and every
/// reader.
pub struct Lpm6Table {
    l1: FixedArray<L1_LEN>,
    groups: HugeArray,
}

impl Lpm6Table {
    /// The next hop of the longest route covering `addr` (the address as a big-endian
    /// number, as `u128::from(Ipv6Addr)` gives it).
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        let e = self.resolve(self.l1[first_index(addr)].load(Ordering::Acquire), addr);
        (e & VALID != 0).then_some(e & PAYLOAD)
    }

    /// Follows `e`, the first-level entry of `addr`, down the groups it links.
    #[inline(always)]
    fn resolve(&self, mut e: u32, addr: u128) -> u32 {
        let bytes = addr.to_be_bytes();
        // The groups under the first level resolve byte 3; a group for byte 15 has no
        // group entries, so the index stays below 16 (the mask only spares a check).
        let mut i = (L1_BITS / 8) as usize;
        while e & GROUP != 0 {
            e = self.groups[group_index(e, bytes[i & 15])].load(Ordering::Acquire);
            i += 1;
        }
        e
    }

    /// [`lookup`](Self::lookup) of `N` addresses (8 or 16 is a good batch), with
    /// [`NO_ROUTE`] where none matches. All first-level loads are issued before any
    /// result is used, so their cache misses overlap.
    #[inline]
    pub fn lookup_bulk<const N: usize>(&self, addrs: &[u128; N]) -> [u32; N] {
        let mut entries: [u32; N] =
            std::array::from_fn(|i| self.l1[first_index(addrs[i])].load(Ordering::Acquire));
        for (e, &a) in entries.iter_mut().zip(addrs) {
            *e = self.resolve(*e, a);
        }
        entries.map(|e| {
            if e & VALID != 0 {
                e & PAYLOAD
            } else {
                NO_ROUTE
            }
        })
    }

    /// Looks up every address of `addrs` into the same place of `out`, 16 at a time;
    /// [`NO_ROUTE`] where none matches.
    ///
    /// # Panics
    ///
    /// If the slices differ in length.
    pub fn lookup_many(&self, addrs: &[u128], out: &mut [u32]) {
        assert_eq!(addrs.len(), out.len(), "one result per address");
        let mut a = addrs.chunks_exact(16);
        let mut o = out.chunks_exact_mut(16);
        for (a, o) in (&mut a).zip(&mut o) {
            let a: &[u128; 16] = a.try_into().expect("chunks of 16");
            o.copy_from_slice(&self.lookup_bulk(a));
        }
        for (a, o) in a.remainder().iter().zip(o.into_remainder()) {
            *o = self.lookup(*a).unwrap_or(NO_ROUTE);
        }
    }

    fn group(&self, g: u32) -> &[AtomicU32] {
        let start = g as usize * GROUP_LEN;
        &self.groups[start..start + GROUP_LEN]
    }

    /// The entries of the range of `node` a route `prefix/len` covers, `node` standing
    /// for the prefixes of length `end`, `len <= end`.
    fn range(node: &[AtomicU32], end: u32, prefix: u128, len: u8) -> &[AtomicU32] {
        let i = index(node, end, prefix);
        &node[i..i + (1usize << (end - u32::from(len)))]
    }

    /// Sets every entry at or below `entries` whose route is at most `len` long to
    /// `new`.
    fn paint(&self, entries: &[AtomicU32], len: u8, new: u32) {
        for e in entries {
            let v = e.load(Ordering::Relaxed);
            if v & GROUP != 0 {
                self.paint(self.group(v & PAYLOAD), len, new);
            } else if depth(v) <= len {
                e.store(new, Ordering::Release);
            }
        }
    }

    /// Replaces `old` with `new` at or below `entries`.
    fn repaint(&self, entries: &[AtomicU32], old: u32, new: u32) {
        for e in entries {
            let v = e.load(Ordering::Relaxed);
            if v & GROUP != 0 {
                self.repaint(self.group(v & PAYLOAD), old, new);
            } else if v == old {
                e.store(new, Ordering::Release);
            }
        }
    }

    /// Paints `prefix/len` as `new` in `node`, whose entries are `end` bits long,
    /// linking a group from `taken` wherever the path down needs one.
    fn insert_at(
        &self,
        node: &[AtomicU32],
        end: u32,
        prefix: u128,
        len: u8,
        new: u32,
        taken: &mut Vec<u32>,
    ) {
        if u32::from(len) <= end {
            self.paint(Self::range(node, end, prefix, len), len, new);
            return;
        }
        let slot = &node[index(node, end, prefix)];
        let e = slot.load(Ordering::Relaxed);
        if e & GROUP != 0 {
            self.insert_at(
                self.group(e & PAYLOAD),
                end + STRIDE,
                prefix,
                len,
                new,
                taken,
            );
        } else {
            // The writer counted and took the groups the path needs.
            let g = taken.pop().expect("groups counted before the insert");
            let group = self.group(g);
            for x in group {
                x.store(e, Ordering::Relaxed);
            }
            self.insert_at(group, end + STRIDE, prefix, len, new, taken);
            // Release: the group's contents, and every group built below it, are
            // visible to whoever sees the link.
            slot.store(GROUP | g, Ordering::Release);
        }
    }

    /// Replaces the deleted route's word `old` with `cover` in the range of
    /// `prefix/len`, below `node` (entries `end` bits long), then unlinks the groups on
    /// the path that no longer hold a longer route, adding them to `unlinked`.
    #[allow(clippy::too_many_arguments)]
    fn delete_at(
        &self,
        node: &[AtomicU32],
        end: u32,
        prefix: u128,
        len: u8,
        old: u32,
        cover: u32,
        unlinked: &mut Vec<u32>,
    ) {
        if u32::from(len) <= end {
            self.repaint(Self::range(node, end, prefix, len), old, cover);
            return;
        }
        let slot = &node[index(node, end, prefix)];
        let link = slot.load(Ordering::Relaxed);
        debug_assert!(link & GROUP != 0, "a route over /{end} without a group");
        if link & GROUP == 0 {
            return;
        }
        let g = link & PAYLOAD;
        let group = self.group(g);
        self.delete_at(group, end + STRIDE, prefix, len, old, cover, unlinked);
        if group.iter().all(|x| {
            let v = x.load(Ordering::Relaxed);
            v & GROUP == 0 && u32::from(depth(v)) <= end
        }) {
            // Only routes of `end` bits or fewer are left, and any such route covers
            // the whole group: every entry holds the same word.
            slot.store(group[0].load(Ordering::Relaxed), Ordering::Release);
            unlinked.push(g);
        }
    }
}

/// Index in `node` (the first level or a group, whose entries are `end` bits long) of
/// the entry `prefix` falls in.
#[inline]
fn index(node: &[AtomicU32], end: u32, prefix: u128) -> usize {
    ((prefix >> (128 - end)) as usize) & (node.len() - 1)
}

/// A handle for lookups from another thread; as many as wanted, cloned freely.
pub type Lpm6Reader = LpmReader<Lpm6Table>;

/// The writer: the routes, the group allocator, and the table it paints. A route of
/// length `len` over 24 needs up to `(len - 17) / 8` groups of its own (13 for a /128),
/// fewer where it shares a path with other routes; [`DEFAULT_GROUPS`] suits 100,000
/// routes.
pub type Lpm6 = Lpm<Lpm6Table>;

impl Lpm6 {
    /// See [`Lpm6Table::lookup`].
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        self.table().lookup(addr)
    }

    /// See [`Lpm6Table::lookup_bulk`].
    #[inline]
    pub fn lookup_bulk<const N: usize>(&self, addrs: &[u128; N]) -> [u32; N] {
        self.table().lookup_bulk(addrs)
    }
}

impl Table for Lpm6Table {
    type Addr = u128;
    const MAX_NEXT_HOP: u32 = MAX_NEXT_HOP;
    const MAX_GROUPS: u32 = MAX_GROUPS;

    fn with_groups(groups: u32) -> io::Result<Self> {
        Ok(Lpm6Table {
            l1: FixedArray::new()?,
            groups: HugeArray::new(groups as usize * GROUP_LEN)?,
        })
    }

    #[inline]
    fn entry(hop: u32, len: u8) -> u32 {
        VALID | u32::from(len) << DEPTH_SHIFT | hop
    }

    /// One per level between the deepest existing entry on the path of `prefix/len`
    /// and the level it is painted at.
    fn groups_needed(&self, prefix: u128, len: u8) -> u32 {
        let len = u32::from(len);
        let mut end = L1_BITS;
        let mut e = self.l1[first_index(prefix)].load(Ordering::Relaxed);
        while len > end && e & GROUP != 0 {
            let group = self.group(e & PAYLOAD);
            end += STRIDE;
            e = group[index(group, end, prefix)].load(Ordering::Relaxed);
        }
        (len.saturating_sub(end)).div_ceil(STRIDE)
    }

    fn insert_route(&self, prefix: u128, len: u8, new: u32, taken: &mut Vec<u32>) {
        self.insert_at(&self.l1[..], L1_BITS, prefix, len, new, taken);
    }

    fn delete_route(&self, prefix: u128, len: u8, old: u32, cover: u32, unlinked: &mut Vec<u32>) {
        self.delete_at(&self.l1[..], L1_BITS, prefix, len, old, cover, unlinked);
    }
}

#[cfg(test)]
mod tests {
    use super::super::routes::testing::{self, Naive, TestTable};
    use super::super::routes::Prefix;
    use super::*;
    use std::net::Ipv6Addr;

    use crate::testing::SplitMix64 as Rng;

    /// A prefix length: every length from 0 to 128 occurs, with the common and the
    /// edge ones (/0, /8, /24, /32, /48, /56, /64, /127, /128) often; /0 to /15 are
    /// rarer (they repaint much of the first level).
    fn prefix_len(rng: &mut Rng) -> u8 {
        match rng.below(100) {
            0 => [0, 8][rng.below(2) as usize],
            1..=3 => rng.below(16) as u8,
            4..=40 => [24, 32, 48, 56, 64, 127, 128][rng.below(7) as usize],
            _ => 16 + rng.below(113) as u8,
        }
    }

    fn ip(s: &str) -> u128 {
        s.parse::<Ipv6Addr>().unwrap().into()
    }

    impl TestTable for Lpm6Table {
        fn probes(rng: &mut Rng, routes: &[(u128, u8, u32)], random: usize) -> Vec<u128> {
            let mut v: Vec<u128> = (0..random).map(|_| rng.u128()).collect();
            for &(p, l, _) in routes {
                let host = !u128::MAX.masked(l);
                let last = p | host;
                v.extend([
                    p,
                    last,
                    p | (rng.u128() & host),
                    p.wrapping_sub(1),
                    last.wrapping_add(1),
                ]);
            }
            v
        }

        fn check(t: &Lpm6, naive: &Naive<u128>, addrs: &[u128]) {
            let reader = t.reader();
            let mut many = vec![0; addrs.len()];
            t.table().lookup_many(addrs, &mut many);
            for (i, &a) in addrs.iter().enumerate() {
                let want = naive.lookup(a);
                assert_eq!(t.lookup(a), want, "lookup of {}", Ipv6Addr::from(a));
                assert_eq!(reader.lookup(a), want);
                assert_eq!(many[i], want.unwrap_or(NO_ROUTE), "lookup_many");
            }
            for c in addrs.chunks_exact(8) {
                let c: &[u128; 8] = c.try_into().unwrap();
                let want = c.map(|a| naive.lookup(a).unwrap_or(NO_ROUTE));
                assert_eq!(t.lookup_bulk(c), want, "lookup_bulk::<8>");
            }
        }

        fn lookup_one(&self, addr: u128) -> u32 {
            self.lookup(addr).unwrap_or(NO_ROUTE)
        }

        fn lookup_eight(&self, addrs: &[u128; 8]) -> [u32; 8] {
            self.lookup_bulk(addrs)
        }

        fn first_level_clear(&self) -> bool {
            self.l1.iter().all(|e| e.load(Ordering::Relaxed) == 0)
        }
    }

    /// Random routes against the naive search; `prefix` makes each prefix.
    fn random_against_naive(seed: u64, n: usize, mut prefix: impl FnMut(&mut Rng) -> u128) {
        let mut t = Lpm6::new(DEFAULT_GROUPS).unwrap();
        let route = |rng: &mut Rng| {
            let len = prefix_len(rng);
            (prefix(rng), len)
        };
        testing::random_against_naive(&mut t, seed, n, route, [10_000, 10_000, 2_000]);
    }

    #[test]
    fn random_routes_match_naive_longest_match() {
        random_against_naive(1, 3000, |rng| rng.u128());
    }

    /// Prefixes near a few anchors, differing from them in a few random bits, so that
    /// they share long common parts and groups nest many levels deep.
    #[test]
    fn clustered_routes_match_naive_longest_match() {
        let anchors = [
            ip("2001:db8::"),
            ip("2001:db8:1234:5678:9abc:def0:1234:5678"),
            ip("fe80::1"),
            ip("::"),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ];
        random_against_naive(2, 3000, |rng| {
            let mut p = anchors[rng.below(anchors.len() as u32) as usize];
            for _ in 0..rng.below(4) {
                p ^= 1 << rng.below(128);
            }
            p
        });
        // Everything in one /40, with random bits only in three bytes: deep and dense.
        random_against_naive(3, 2000, |rng| {
            ip("2a00:1450:40::") | (rng.u128() & 0x0000_0000_00ff_0000_00ff_0000_0000_00ff)
        });
    }

    #[test]
    fn empty_table_and_default_route() {
        let mut t = Lpm6::new(64).unwrap();
        for a in [0, 1, ip("2001:db8::1"), u128::MAX] {
            assert_eq!(t.lookup(a), None);
        }
        assert_eq!(t.lookup_bulk(&[0, u128::MAX]), [NO_ROUTE; 2]);
        assert_eq!(t.insert(ip("1:2:3::4"), 0, 7), Ok(None));
        assert_eq!(t.get(0, 0), Some(7));
        t.insert(ip("2001:db8::"), 32, 8).unwrap();
        t.insert(ip("2001:db8::1"), 128, 9).unwrap();
        assert_eq!(t.groups_used(), 13);
        for (a, hop) in [
            (0, 7),
            (u128::MAX, 7),
            (ip("2001:db8::"), 8),
            (ip("2001:db8::2"), 8),
            (ip("2001:db8::1"), 9),
            (ip("2001:db9::1"), 7),
        ] {
            assert_eq!(t.lookup(a), Some(hop));
        }
        assert_eq!(t.delete(0, 0), Ok(7));
        assert_eq!(t.lookup(0), None);
        assert_eq!(t.lookup(ip("2001:db9::1")), None);
        assert_eq!(t.lookup(ip("2001:db8::2")), Some(8));
        assert_eq!(t.lookup(ip("2001:db8::1")), Some(9));
        assert_eq!(t.delete(ip("2001:db8::"), 32), Ok(8));
        assert_eq!(t.lookup(ip("2001:db8::2")), None);
        assert_eq!(t.lookup(ip("2001:db8::1")), Some(9));
        assert_eq!(t.delete(ip("2001:db8::1"), 128), Ok(9));
        assert_eq!(t.groups_used(), 0);
    }

    #[test]
    fn nested_routes_deleted_in_every_order() {
        let nest = [
            (ip("2001::"), 16, 1),
            (ip("2001:db8::"), 32, 2),
            (ip("2001:db8:0:100::"), 56, 3),
            (ip("2001:db8:0:100::"), 64, 4),
            (ip("2001:db8:0:100::8000:0"), 97, 5),
            (ip("2001:db8:0:100::8000:1"), 127, 6),
            (ip("2001:db8:0:100::8000:1"), 128, 7),
        ];
        let probes = [
            ip("2001::1"),
            ip("2001:db8::1"),
            ip("2001:db8:0:1ff::1"),
            ip("2001:db8:0:100::1"),
            ip("2001:db8:0:100::7fff:ffff"),
            ip("2001:db8:0:100::8000:0"),
            ip("2001:db8:0:100::8000:1"),
            ip("2001:db8:0:100::8000:2"),
            ip("2001:db8:0:100::ffff:ffff"),
            ip("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ip("2002::"),
        ];
        let mut t = Lpm6::new(16).unwrap();
        assert_eq!(testing::in_many_orders(&mut t, &nest, &probes), 13);
    }

    #[test]
    fn same_prefix_twice_replaces_the_next_hop() {
        let mut t = Lpm6::new(16).unwrap();
        for (p, l) in [(ip("2001:db8::"), 32), (ip("2001:db8:0:1::"), 64)] {
            assert_eq!(t.insert(p, l, 1), Ok(None));
            assert_eq!(t.insert(p, l, 2), Ok(Some(1)));
            assert_eq!(t.lookup(p), Some(2));
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.groups_used(), 5);
        assert_eq!(t.lookup(ip("2001:db8::1")), Some(2));
        assert_eq!(t.delete(ip("2001:db8:0:1::"), 64), Ok(2));
        assert_eq!(t.groups_used(), 1);
        assert_eq!(t.lookup(ip("2001:db8:0:1::")), Some(2));
        assert_eq!(t.delete(ip("2001:db8::"), 32), Ok(2));
        assert_eq!(t.lookup(ip("2001:db8:0:1::")), None);
        assert!(t.is_empty());
        assert_eq!(t.groups_used(), 0);
    }

    #[test]
    fn host_bits_are_ignored() {
        let mut t = Lpm6::new(16).unwrap();
        t.insert(ip("2001:db8:1:2:3:4:5:6"), 48, 5).unwrap();
        assert_eq!(t.get(ip("2001:db8:1::"), 48), Some(5));
        assert_eq!(t.get(ip("2001:db8:1:ffff::1"), 48), Some(5));
        assert_eq!(
            t.routes().collect::<Vec<_>>(),
            [(ip("2001:db8:1::"), 48, 5)]
        );
        assert_eq!(t.lookup(ip("2001:db8:1::")), Some(5));
        assert_eq!(t.lookup(ip("2001:db8:2::")), None);
        assert_eq!(t.delete(ip("2001:db8:1:99::99"), 48), Ok(5));
        assert!(t.is_empty());
    }

    #[test]
    fn edges_of_the_address_space() {
        let mut t = Lpm6::new(32).unwrap();
        t.insert(0, 128, 1).unwrap();
        t.insert(u128::MAX, 128, 2).unwrap();
        t.insert(u128::MAX - 0xff, 120, 3).unwrap();
        t.insert(0, 1, 4).unwrap();
        assert_eq!(t.lookup(0), Some(1));
        assert_eq!(t.lookup(1), Some(4));
        assert_eq!(t.lookup(u128::MAX >> 1), Some(4));
        assert_eq!(t.lookup(1 << 127), None);
        assert_eq!(t.lookup(u128::MAX), Some(2));
        assert_eq!(t.lookup(u128::MAX - 1), Some(3));
        assert_eq!(t.groups_used(), 26);
    }

    #[test]
    fn bad_arguments_are_refused_without_change() {
        testing::refuses_bad_arguments::<Lpm6Table>(1 << 120);
    }

    #[test]
    fn running_out_of_groups_is_an_error_not_a_panic() {
        let mut t = Lpm6::new(6).unwrap();
        t.insert(ip("2001:db8::"), 32, 1).unwrap();
        assert_eq!(t.groups_used(), 1);
        // A /128 needs 12 more groups: refused, and nothing changed.
        let host = ip("2001:db8::1");
        assert_eq!(t.insert(host, 128, 2), Err(Lpm6Error::NoGroups));
        assert_eq!(t.get(host, 128), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.groups_used(), 1);
        assert_eq!(t.lookup(host), Some(1));
        // Two /48s in the same /40 need 2 groups, then one more.
        t.insert(ip("2001:db8:1::"), 48, 3).unwrap();
        t.insert(ip("2001:db8:2::"), 48, 4).unwrap();
        assert_eq!(t.groups_used(), 3);
        // A /64 needs 2 more, and another /64 in a different /48 2 again: 7 > 6.
        t.insert(ip("2001:db8:1:1::"), 64, 5).unwrap();
        assert_eq!(t.groups_used(), 5);
        assert_eq!(
            t.insert(ip("2001:db8:2:1::"), 64, 6),
            Err(Lpm6Error::NoGroups)
        );
        assert_eq!(t.groups_used(), 5);
        assert_eq!(t.lookup(ip("2001:db8:2:1::")), Some(4));
        // Routes painted where groups exist, and short ones, still go in.
        t.insert(ip("2001:db8:1:1::"), 60, 7).unwrap();
        t.insert(ip("2002::"), 24, 8).unwrap();
        t.insert(ip("2001:db8:1:1:8000::"), 65, 9).unwrap();
        assert_eq!(t.groups_used(), 6);
        assert_eq!(t.lookup(ip("2001:db8:1:1:8000::1")), Some(9));
        assert_eq!(t.lookup(ip("2001:db8:1:1::1")), Some(5));
        assert_eq!(t.lookup(ip("2001:db8:1:2::")), Some(7));
        assert_eq!(t.lookup(ip("2002::1")), Some(8));
        // Freeing groups makes room again: the /65 and /64 free one (the /60 still
        // needs the groups of bytes 6 and 7), the /60 two more.
        t.delete(ip("2001:db8:1:1::"), 64).unwrap();
        t.delete(ip("2001:db8:1:1:8000::"), 65).unwrap();
        assert_eq!(t.groups_used(), 5);
        assert_eq!(t.lookup(ip("2001:db8:1:1::1")), Some(7));
        t.delete(ip("2001:db8:1:1::"), 60).unwrap();
        assert_eq!(t.groups_used(), 3);
        t.insert(ip("2001:db8:2:1::"), 64, 6).unwrap();
        assert_eq!(t.lookup(ip("2001:db8:2:1::1")), Some(6));
        assert_eq!(t.lookup(ip("2001:db8:1:1::1")), Some(3));

        let mut none = Lpm6::new(0).unwrap();
        none.insert(ip("2001:db8::"), 24, 1).unwrap();
        assert_eq!(
            none.insert(ip("2001:db8::"), 25, 1),
            Err(Lpm6Error::NoGroups)
        );
    }

    #[test]
    fn groups_unlinked_while_readers_exist_wait_for_reclaim() {
        let mut t = Lpm6::new(2).unwrap();
        t.insert(ip("2001:db8::"), 40, 1).unwrap();
        let reader = t.reader();
        // Readers in the middle of lookups: one has loaded the first group's link, one
        // the second's.
        let a = ip("2001:db8::1");
        let link1 = reader.l1[first_index(a)].load(Ordering::Acquire);
        let link2 = reader.groups[group_index(link1, 0xb8)].load(Ordering::Acquire);
        assert_eq!(link2 & GROUP, GROUP);
        t.delete(ip("2001:db8::"), 40).unwrap();
        assert_eq!((t.groups_used(), t.groups_retired()), (0, 2));
        assert_eq!(t.insert(ip("2001:db9::"), 40, 2), Err(Lpm6Error::NoGroups));
        // The groups were not reused for another prefix: both lookups finish with an
        // answer for their own address (here the one after the delete: no route).
        assert_eq!(
            reader.groups[group_index(link1, 0xb8)].load(Ordering::Acquire),
            0
        );
        assert_eq!(
            reader.groups[group_index(link2, 0)].load(Ordering::Acquire),
            0
        );
        t.reclaim();
        t.insert(ip("2001:db9::"), 40, 2).unwrap();
        assert_eq!(reader.lookup(ip("2001:db9::")), Some(2));
        t.delete(ip("2001:db9::"), 40).unwrap();
        assert_eq!(t.groups_retired(), 2);
        // Without readers the retired groups are taken back at once.
        drop(reader);
        t.insert(ip("2001:dba::"), 40, 3).unwrap();
        assert_eq!((t.groups_used(), t.groups_retired()), (2, 0));
    }

    /// Addresses of 2001:db8::/32 that vary in bytes 4, 5 (4 values each, so 16 /48s
    /// the writer's routes hit often) and 15, under a /32 that stays; a route longer
    /// than /48 carries a number made of its bytes 4 and 5.
    #[test]
    fn readers_see_a_valid_answer_during_updates() {
        let base = ip("2001:db8::");
        let mut t = Lpm6::new(40).unwrap();
        t.insert(base, 32, 1).unwrap();
        testing::readers_during_updates(
            t,
            move |rng| {
                let v = rng.u64();
                base | u128::from(v & 0x0303) << 80 | u128::from(v >> 56)
            },
            |rng| 33 + rng.below(96) as u8,
            48,
            |a| 0x100 + ((a >> 80) as u32 & 0xffff),
        );
    }
}
