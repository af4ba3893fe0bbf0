//! IPv4 longest-prefix match: prefixes to next-hop ids, in a two-level table of the
//! DIR-24-8 kind, read by workers without locks while one writer updates it in place.
//!
//! # Layout
//!
//! The first level has one entry for every /24, 2^24 entries indexed by the top 24 bits
//! of the address (64 MB, in its own mapping with transparent huge pages). The second
//! level is an array of groups of 256 entries, one entry per address of a /24; a /24
//! gets a group only when some route longer than /24 falls inside it.
//!
//! Every entry is one `u32`:
//!
//! ```text
//!  31     30     29..24   23..0
//!  VALID  GROUP  depth    next hop (VALID) or group number (GROUP)
//! ```
//!
//! - `0`: no route covers these addresses.
//! - `VALID | depth | hop`: the longest route covering them is `depth` bits long and
//!   leads to `hop`. Every entry a route of length `d` wrote is the same word, so a
//!   delete recognises its own entries by value.
//! - `GROUP | n` (first level only): look at entry `addr & 0xff` of group `n`.
//!
//! So a lookup is one load, plus a second one for the few /24s with long routes; next
//! hops are limited to 24 bits ([`MAX_NEXT_HOP`]), and there can be up to 2^24 groups.
//! [`Lpm4Table::lookup_bulk`] loads all the first-level entries of a batch before it
//! looks at any of them, so their cache misses overlap instead of queueing.
//!
//! # Updates
//!
//! The writer ([`Lpm4`]) keeps the routes themselves in one hash map per prefix length,
//! and paints entries:
//!
//! - Insert of a route of length `len <= 24` sets, over the first-level range it
//!   covers (and inside the groups of that range), every entry whose depth is at most
//!   `len`: longer routes keep their entries, and the same prefix inserted again
//!   replaces its next hop.
//! - Insert of a longer route paints only inside the group of its /24; if the /24 has no
//!   group yet, one is taken, filled with the /24's current entry, painted, and only then
//!   linked from the first level.
//! - Delete looks up the next-shorter route covering the prefix (one hash probe per
//!   shorter length) and writes its entry (or `0`) wherever the deleted route's own
//!   word is found in the range. When a group is left with no route longer than /24, all
//!   its entries are equal: the first-level entry gets that value and the group is
//!   retired.
//!
//! # Readers and the RCU story
//!
//! Readers ([`Lpm4Reader`], any number of threads) only load: the table is atomics,
//! and no lookup takes a lock or writes shared memory. Updates are made in place with
//! single atomic stores, ordered so that every state a reader can observe is a valid
//! answer:
//!
//! - each entry changes from its old answer to its new one in one store, so an address
//!   sees the route table either before or after the update (different addresses of
//!   one update may switch at different instants, as with any in-place FIB);
//! - a new group is complete before the release store that links it, and readers load
//!   first-level entries with acquire ordering, so nobody sees a half-filled group;
//! - a group unlinked by a delete keeps its contents, and is not reused until every
//!   reader may have dropped the pointer it loaded: the writer reuses it at once only
//!   while no [`Lpm4Reader`] exists; otherwise it waits, retired, for
//!   [`Lpm4::reclaim`], which the owner calls after a grace period (every worker has
//!   passed a quiescent point, e.g. finished its current poll loop, since the delete).
//!
//! What remains for the router's RCU: the grace-period detection itself (per-worker
//! quiescent counters the control thread waits on before calling `reclaim`; until then
//! a busy writer can run out of groups with some retired, and gets
//! [`LpmError::NoGroups`]); updates that must appear atomic as a set (a whole manifest
//! reload) would need a second table built aside and swapped in through an atomic
//! pointer, at 64 MB more; and the next-hop objects these ids name (adjacencies, ECMP
//! sets) need their own deferred reclamation.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use super::mem::{FixedArray, HugeArray};
use super::routes::{Lpm, LpmError, LpmReader, Table};

/// First-level entries: one per /24.
const L1_LEN: usize = 1 << 24;
/// Entries of a second-level group: one per address of a /24.
const GROUP_LEN: usize = 256;

const VALID: u32 = 1 << 31;
const GROUP: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 24;
const DEPTH_MASK: u32 = 0x3f;
const PAYLOAD: u32 = (1 << 24) - 1;

/// The largest next-hop id a route can carry.
pub const MAX_NEXT_HOP: u32 = PAYLOAD;
/// The most second-level groups a table can have.
pub const MAX_GROUPS: u32 = 1 << 24;
/// A reasonable group count for a full Internet table (1 KB of address space each,
/// committed only when used).
pub const DEFAULT_GROUPS: u32 = 1 << 16;
/// What the bulk lookups write for an address no route covers.
pub const NO_ROUTE: u32 = u32::MAX;

/// The prefix length an entry was written for (0 for an empty entry).
#[inline]
fn depth(e: u32) -> u8 {
    ((e >> DEPTH_SHIFT) & DEPTH_MASK) as u8
}

/// Index in the second level of `addr`, whose first-level entry `e` is a group link.
#[inline(always)]
fn second_index(e: u32, addr: u32) -> usize {
    ((e & PAYLOAD) as usize) << 8 | (addr & 0xff) as usize
}

/// Why a table change was refused (the same for both families).
pub type Lpm4Error = LpmError;

/// The lookup side: the two levels of entries, shared by the writer and every reader.
pub struct Lpm4Table {
    l1: FixedArray<L1_LEN>,
    l2: HugeArray,
}

impl Lpm4Table {
    /// The next hop of the longest route covering `addr` (host byte order).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let e = self.resolve(self.l1[(addr >> 8) as usize].load(Ordering::Acquire), addr);
        (e & VALID != 0).then_some(e & PAYLOAD)
    }

    /// Follows a first-level entry to the second level when it links a group.
    #[inline(always)]
    fn resolve(&self, e: u32, addr: u32) -> u32 {
        if e & GROUP != 0 {
            self.l2[second_index(e, addr)].load(Ordering::Acquire)
        } else {
            e
        }
    }

    /// [`lookup`](Self::lookup) of `N` addresses (8 or 16 is a good batch), with
    /// [`NO_ROUTE`] where none matches. All first-level loads are issued before any
    /// result is used, so their cache misses overlap.
    #[inline]
    pub fn lookup_bulk<const N: usize>(&self, addrs: &[u32; N]) -> [u32; N] {
        let first: [u32; N] =
            std::array::from_fn(|i| self.l1[(addrs[i] >> 8) as usize].load(Ordering::Acquire));
        // Usually no address of the batch needs the second level: one test for all.
        let entries = if first.iter().fold(0, |any, e| any | e) & GROUP == 0 {
            first
        } else {
            std::array::from_fn(|i| self.resolve(first[i], addrs[i]))
        };
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
    pub fn lookup_many(&self, addrs: &[u32], out: &mut [u32]) {
        assert_eq!(addrs.len(), out.len(), "one result per address");
        let mut a = addrs.chunks_exact(16);
        let mut o = out.chunks_exact_mut(16);
        for (a, o) in (&mut a).zip(&mut o) {
            let a: &[u32; 16] = a.try_into().expect("chunks of 16");
            o.copy_from_slice(&self.lookup_bulk(a));
        }
        for (a, o) in a.remainder().iter().zip(o.into_remainder()) {
            *o = self.lookup(*a).unwrap_or(NO_ROUTE);
        }
    }

    fn group(&self, g: u32) -> &[AtomicU32] {
        let start = g as usize * GROUP_LEN;
        &self.l2[start..start + GROUP_LEN]
    }
}

/// Sets every entry of `entries` whose route is at most `len` long to `new`.
fn paint(entries: &[AtomicU32], len: u8, new: u32) {
    for e in entries {
        if depth(e.load(Ordering::Relaxed)) <= len {
            e.store(new, Ordering::Release);
        }
    }
}

/// Replaces `old` with `new` in `entries`.
fn repaint(entries: &[AtomicU32], old: u32, new: u32) {
    for e in entries {
        if e.load(Ordering::Relaxed) == old {
            e.store(new, Ordering::Release);
        }
    }
}

/// A handle for lookups from another thread; as many as wanted, cloned freely.
pub type Lpm4Reader = LpmReader<Lpm4Table>;

/// The writer: the routes, the group allocator, and the table it paints. Room for
/// `groups` groups means routes longer than /24 in that many distinct /24s
/// ([`DEFAULT_GROUPS`] suits a full Internet table).
pub type Lpm4 = Lpm<Lpm4Table>;

impl Lpm4 {
    /// See [`Lpm4Table::lookup`].
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        self.table().lookup(addr)
    }

    /// See [`Lpm4Table::lookup_bulk`].
    #[inline]
    pub fn lookup_bulk<const N: usize>(&self, addrs: &[u32; N]) -> [u32; N] {
        self.table().lookup_bulk(addrs)
    }
}

impl Table for Lpm4Table {
    type Addr = u32;
    const MAX_NEXT_HOP: u32 = MAX_NEXT_HOP;
    const MAX_GROUPS: u32 = MAX_GROUPS;

    fn with_groups(groups: u32) -> io::Result<Self> {
        Ok(Lpm4Table {
            l1: FixedArray::new()?,
            l2: HugeArray::new(groups as usize * GROUP_LEN)?,
        })
    }

    #[inline]
    fn entry(hop: u32, len: u8) -> u32 {
        VALID | u32::from(len) << DEPTH_SHIFT | hop
    }

    fn groups_needed(&self, prefix: u32, len: u8) -> u32 {
        // Only a route longer than /24 paints in a group: its /24's, once it has one.
        let linked = self.l1[(prefix >> 8) as usize].load(Ordering::Relaxed) & GROUP != 0;
        u32::from(len > 24 && !linked)
    }

    fn insert_route(&self, prefix: u32, len: u8, new: u32, taken: &mut Vec<u32>) {
        let i = (prefix >> 8) as usize;
        if len <= 24 {
            let span = 1usize << (24 - len);
            for slot in &self.l1[i..i + span] {
                let e = slot.load(Ordering::Relaxed);
                if e & GROUP != 0 {
                    paint(self.group(e & PAYLOAD), len, new);
                } else if depth(e) <= len {
                    slot.store(new, Ordering::Release);
                }
            }
        } else {
            let lo = (prefix & 0xff) as usize;
            let span = 1usize << (32 - len);
            let e = self.l1[i].load(Ordering::Relaxed);
            if e & GROUP != 0 {
                paint(&self.group(e & PAYLOAD)[lo..lo + span], len, new);
            } else {
                let g = taken.pop().expect("groups counted before the insert");
                let group = self.group(g);
                for x in group {
                    x.store(e, Ordering::Relaxed);
                }
                paint(&group[lo..lo + span], len, new);
                // Release: the group's contents are visible to whoever sees the link.
                self.l1[i].store(GROUP | g, Ordering::Release);
            }
        }
    }

    fn delete_route(&self, prefix: u32, len: u8, old: u32, cover: u32, unlinked: &mut Vec<u32>) {
        let i = (prefix >> 8) as usize;
        if len <= 24 {
            let span = 1usize << (24 - len);
            for slot in &self.l1[i..i + span] {
                let e = slot.load(Ordering::Relaxed);
                if e & GROUP != 0 {
                    repaint(self.group(e & PAYLOAD), old, cover);
                } else if e == old {
                    slot.store(cover, Ordering::Release);
                }
            }
        } else {
            let lo = (prefix & 0xff) as usize;
            let span = 1usize << (32 - len);
            let link = self.l1[i].load(Ordering::Relaxed);
            debug_assert!(link & GROUP != 0, "a route over /24 without a group");
            let g = link & PAYLOAD;
            let group = self.group(g);
            repaint(&group[lo..lo + span], old, cover);
            if group.iter().all(|x| depth(x.load(Ordering::Relaxed)) <= 24) {
                // Only routes of /24 or shorter are left, and any such route covers the
                // whole /24: every entry holds the same word.
                let whole = group[0].load(Ordering::Relaxed);
                self.l1[i].store(whole, Ordering::Release);
                unlinked.push(g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::routes::testing::{self, Naive, TestTable};
    use super::super::routes::Prefix;
    use super::*;

    use crate::testing::SplitMix64 as Rng;

    /// A prefix length: every length occurs, with /0 and /1-/7 rare (they repaint
    /// much of the table) and many beyond /24 (they need groups).
    fn prefix_len(rng: &mut Rng) -> u8 {
        match rng.below(1000) {
            0 => 0,
            1..=15 => 1 + rng.below(7) as u8,
            16..=80 => 8,
            81..=380 => 9 + rng.below(15) as u8,
            381..=530 => 24,
            _ => 25 + rng.below(8) as u8,
        }
    }

    fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
        u32::from_be_bytes([a, b, c, d])
    }

    impl TestTable for Lpm4Table {
        fn probes(rng: &mut Rng, routes: &[(u32, u8, u32)], random: usize) -> Vec<u32> {
            let mut v: Vec<u32> = (0..random).map(|_| rng.u32()).collect();
            for &(p, l, _) in routes {
                let host = !u32::MAX.masked(l);
                let last = p | host;
                v.extend([
                    p,
                    last,
                    p | (rng.u32() & host),
                    p.wrapping_sub(1),
                    last.wrapping_add(1),
                ]);
            }
            v
        }

        fn check(t: &Lpm4, naive: &Naive<u32>, addrs: &[u32]) {
            let reader = t.reader();
            let mut many = vec![0; addrs.len()];
            t.table().lookup_many(addrs, &mut many);
            for (i, &a) in addrs.iter().enumerate() {
                let want = naive.lookup(a);
                assert_eq!(
                    t.lookup(a),
                    want,
                    "lookup of {:?}",
                    std::net::Ipv4Addr::from(a)
                );
                assert_eq!(reader.lookup(a), want);
                assert_eq!(many[i], want.unwrap_or(NO_ROUTE), "lookup_many");
            }
            for c in addrs.chunks_exact(8) {
                let c: &[u32; 8] = c.try_into().unwrap();
                let want = c.map(|a| naive.lookup(a).unwrap_or(NO_ROUTE));
                assert_eq!(t.lookup_bulk(c), want, "lookup_bulk::<8>");
            }
            for c in addrs.chunks_exact(16) {
                let c: &[u32; 16] = c.try_into().unwrap();
                let want = c.map(|a| naive.lookup(a).unwrap_or(NO_ROUTE));
                assert_eq!(t.lookup_bulk(c), want, "lookup_bulk::<16>");
            }
        }

        fn lookup_one(&self, addr: u32) -> u32 {
            self.lookup(addr).unwrap_or(NO_ROUTE)
        }

        fn lookup_eight(&self, addrs: &[u32; 8]) -> [u32; 8] {
            self.lookup_bulk(addrs)
        }

        fn first_level_clear(&self) -> bool {
            self.l1.iter().all(|e| e.load(Ordering::Relaxed) == 0)
        }
    }

    /// Random routes against the naive search; `base` and `spread` confine the
    /// prefixes to part of the space, so that they overlap and share groups.
    fn random_against_naive(seed: u64, n: usize, base: u32, spread: u32) {
        let mut t = Lpm4::new(DEFAULT_GROUPS).unwrap();
        let route = |rng: &mut Rng| {
            let len = prefix_len(rng);
            (base | (rng.u32() & spread), len)
        };
        testing::random_against_naive(&mut t, seed, n, route, [20_000, 20_000, 5_000]);
    }

    #[test]
    fn random_routes_match_naive_longest_match() {
        random_against_naive(1, 4000, 0, u32::MAX);
    }

    #[test]
    fn dense_overlapping_routes_match_naive_longest_match() {
        // 10.0.0.0/14: about 1000 /24s for 4000 routes, so most groups hold several.
        random_against_naive(2, 4000, ip(10, 0, 0, 0), 0x0003_ffff);
        random_against_naive(3, 3000, ip(192, 168, 0, 0), 0x0000_0fff);
    }

    #[test]
    fn empty_table_and_default_route() {
        let mut t = Lpm4::new(16).unwrap();
        for a in [0, 1, ip(10, 1, 2, 3), u32::MAX] {
            assert_eq!(t.lookup(a), None);
        }
        assert_eq!(t.lookup_bulk(&[0, u32::MAX]), [NO_ROUTE; 2]);
        assert_eq!(t.insert(ip(1, 2, 3, 4), 0, 7), Ok(None));
        assert_eq!(t.get(0, 0), Some(7));
        t.insert(ip(10, 0, 0, 0), 8, 8).unwrap();
        t.insert(ip(10, 1, 1, 1), 32, 9).unwrap();
        for (a, hop) in [
            (0, 7),
            (u32::MAX, 7),
            (ip(10, 0, 0, 0), 8),
            (ip(10, 1, 1, 0), 8),
            (ip(10, 1, 1, 1), 9),
            (ip(11, 0, 0, 0), 7),
        ] {
            assert_eq!(t.lookup(a), Some(hop));
        }
        assert_eq!(t.delete(0, 0), Ok(7));
        assert_eq!(t.lookup(0), None);
        assert_eq!(t.lookup(ip(11, 0, 0, 0)), None);
        assert_eq!(t.lookup(ip(10, 1, 1, 2)), Some(8));
        assert_eq!(t.lookup(ip(10, 1, 1, 1)), Some(9));
        assert_eq!(t.delete(ip(10, 0, 0, 0), 8), Ok(8));
        assert_eq!(t.lookup(ip(10, 1, 1, 2)), None);
        assert_eq!(t.lookup(ip(10, 1, 1, 1)), Some(9));
    }

    #[test]
    fn nested_routes_deleted_in_every_order() {
        let nest = [
            (ip(10, 0, 0, 0), 8, 1),
            (ip(10, 1, 0, 0), 16, 2),
            (ip(10, 1, 1, 0), 24, 3),
            (ip(10, 1, 1, 128), 25, 4),
            (ip(10, 1, 1, 192), 26, 5),
            (ip(10, 1, 1, 193), 32, 6),
        ];
        let probes = [
            ip(10, 0, 0, 1),
            ip(10, 1, 0, 1),
            ip(10, 1, 1, 1),
            ip(10, 1, 1, 129),
            ip(10, 1, 1, 192),
            ip(10, 1, 1, 193),
            ip(10, 1, 1, 255),
            ip(9, 255, 255, 255),
            ip(11, 0, 0, 0),
        ];
        let mut t = Lpm4::new(4).unwrap();
        assert_eq!(testing::in_many_orders(&mut t, &nest, &probes), 1);
    }

    #[test]
    fn same_prefix_twice_replaces_the_next_hop() {
        let mut t = Lpm4::new(4).unwrap();
        for (p, l) in [(ip(172, 16, 0, 0), 12), (ip(172, 16, 5, 8), 30)] {
            assert_eq!(t.insert(p, l, 1), Ok(None));
            assert_eq!(t.insert(p, l, 2), Ok(Some(1)));
            assert_eq!(t.lookup(p), Some(2));
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.groups_used(), 1);
        assert_eq!(t.lookup(ip(172, 16, 5, 7)), Some(2));
        assert_eq!(t.delete(ip(172, 16, 5, 8), 30), Ok(2));
        assert_eq!(t.lookup(ip(172, 16, 5, 8)), Some(2));
        assert_eq!(t.delete(ip(172, 16, 0, 0), 12), Ok(2));
        assert_eq!(t.lookup(ip(172, 16, 5, 8)), None);
        assert!(t.is_empty());
    }

    #[test]
    fn host_bits_are_ignored() {
        let mut t = Lpm4::new(4).unwrap();
        t.insert(ip(10, 1, 2, 3), 16, 5).unwrap();
        assert_eq!(t.get(ip(10, 1, 0, 0), 16), Some(5));
        assert_eq!(t.get(ip(10, 1, 255, 255), 16), Some(5));
        assert_eq!(t.routes().collect::<Vec<_>>(), [(ip(10, 1, 0, 0), 16, 5)]);
        assert_eq!(t.lookup(ip(10, 1, 0, 0)), Some(5));
        assert_eq!(t.delete(ip(10, 1, 99, 99), 16), Ok(5));
        assert!(t.is_empty());
    }

    #[test]
    fn edges_of_the_address_space() {
        let mut t = Lpm4::new(4).unwrap();
        t.insert(0, 32, 1).unwrap();
        t.insert(u32::MAX, 32, 2).unwrap();
        t.insert(ip(255, 255, 255, 0), 24, 3).unwrap();
        t.insert(0, 1, 4).unwrap();
        assert_eq!(t.lookup(0), Some(1));
        assert_eq!(t.lookup(1), Some(4));
        assert_eq!(t.lookup(ip(127, 255, 255, 255)), Some(4));
        assert_eq!(t.lookup(ip(128, 0, 0, 0)), None);
        assert_eq!(t.lookup(u32::MAX), Some(2));
        assert_eq!(t.lookup(u32::MAX - 1), Some(3));
        assert_eq!(t.groups_used(), 2);
    }

    #[test]
    fn bad_arguments_are_refused_without_change() {
        testing::refuses_bad_arguments::<Lpm4Table>(ip(1, 0, 0, 0));
    }

    #[test]
    fn running_out_of_groups_is_an_error_not_a_panic() {
        let mut t = Lpm4::new(4).unwrap();
        t.insert(ip(10, 0, 0, 0), 8, 1).unwrap();
        for n in 0..4 {
            t.insert(ip(10, 0, n, 1), 32, 10 + u32::from(n)).unwrap();
        }
        assert_eq!(t.groups_used(), 4);
        assert_eq!(t.insert(ip(10, 0, 9, 1), 32, 99), Err(Lpm4Error::NoGroups));
        assert_eq!(t.get(ip(10, 0, 9, 1), 32), None);
        assert_eq!(t.len(), 5);
        assert_eq!(t.lookup(ip(10, 0, 9, 1)), Some(1));
        // A /24 that already has a group takes more long routes, and short ones go
        // anywhere.
        t.insert(ip(10, 0, 2, 16), 28, 20).unwrap();
        t.insert(ip(10, 0, 9, 0), 24, 21).unwrap();
        assert_eq!(t.lookup(ip(10, 0, 2, 17)), Some(20));
        // Freeing a group makes room again.
        t.delete(ip(10, 0, 0, 1), 32).unwrap();
        assert_eq!(t.groups_used(), 3);
        t.insert(ip(10, 0, 9, 1), 32, 99).unwrap();
        assert_eq!(t.lookup(ip(10, 0, 9, 1)), Some(99));
        assert_eq!(t.lookup(ip(10, 0, 9, 2)), Some(21));

        let mut none = Lpm4::new(0).unwrap();
        none.insert(ip(10, 0, 0, 0), 24, 1).unwrap();
        assert_eq!(
            none.insert(ip(10, 0, 0, 0), 25, 1),
            Err(Lpm4Error::NoGroups)
        );
    }

    #[test]
    fn groups_unlinked_while_readers_exist_wait_for_reclaim() {
        let mut t = Lpm4::new(1).unwrap();
        t.insert(ip(10, 0, 0, 0), 25, 1).unwrap();
        let reader = t.reader();
        // A reader in the middle of a lookup: it has loaded the group link.
        let a = ip(10, 0, 0, 1);
        let link = reader.l1[(a >> 8) as usize].load(Ordering::Acquire);
        t.delete(ip(10, 0, 0, 0), 25).unwrap();
        assert_eq!((t.groups_used(), t.groups_retired()), (0, 1));
        assert_eq!(t.insert(ip(10, 0, 1, 0), 25, 2), Err(Lpm4Error::NoGroups));
        // The group was not reused for another /24: the lookup finishes with an answer
        // for its own address (here the one after the delete: no route).
        assert_eq!(reader.resolve(link, a), 0);
        t.reclaim();
        t.insert(ip(10, 0, 1, 0), 25, 2).unwrap();
        assert_eq!(reader.lookup(ip(10, 0, 1, 0)), Some(2));
        t.delete(ip(10, 0, 1, 0), 25).unwrap();
        assert_eq!(t.groups_retired(), 1);
        // Without readers the retired group is taken back at once.
        drop(reader);
        t.insert(ip(10, 0, 2, 0), 25, 3).unwrap();
        assert_eq!((t.groups_used(), t.groups_retired()), (1, 0));
    }

    /// Addresses of 10.0.0.0/8, in 64 /24s so that the writer's routes are hit often,
    /// under a /8 that stays; a route longer than /24 carries the number of its /24.
    #[test]
    fn readers_see_a_valid_answer_during_updates() {
        const BASE: u32 = 0x0a00_0000;
        let mut t = Lpm4::new(8).unwrap();
        t.insert(BASE, 8, 1).unwrap();
        testing::readers_during_updates(
            t,
            |rng| BASE | (rng.u32() & 0x3f_00ff),
            |rng| 17 + rng.below(16) as u8,
            24,
            |a| 0x100 + ((a >> 8) & 0xffff),
        );
    }
}
