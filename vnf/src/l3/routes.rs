//! The control side the longest-prefix-match tables share: the routes themselves, in one
//! hash map per prefix length, and the writer around a table that readers share (their
//! handles, the group pool, the checks a change passes before anything is painted).
//!
//! A route is kept apart from the table it is painted into because the table cannot
//! answer what a delete needs: which route covers the prefix once it is gone. One map
//! per length makes that a probe per shorter length.
//!
//! What differs between [`lpm4`](super::lpm4) and [`lpm6`](super::lpm6) is only the
//! layout and how a route is painted into it or taken out, which a table supplies
//! through [`Table`].

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io;
use std::ops::Deref;
use std::sync::Arc;

use super::groups::GroupPool;

/// An address as a number, most significant bit first (`u32` for IPv4, `u128` for
/// IPv6); a prefix is one with its host bits clear.
pub trait Prefix: Copy + Eq + Hash + fmt::Debug {
    /// The longest prefix length.
    const BITS: u8;

    /// `self` with every bit after the first `len` cleared; `len` is at most
    /// [`BITS`](Self::BITS).
    fn masked(self, len: u8) -> Self;
}

impl Prefix for u32 {
    const BITS: u8 = 32;

    #[inline]
    fn masked(self, len: u8) -> u32 {
        self & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
    }
}

impl Prefix for u128 {
    const BITS: u8 = 128;

    #[inline]
    fn masked(self, len: u8) -> u128 {
        self & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
    }
}

/// Hash of a masked prefix: the routes come from configuration, not from traffic, so a
/// multiply and fold is enough, and makes loading a million routes cheap.
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        let h = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.write_u64((n >> 64) as u64);
        self.write_u64(n as u64);
    }
}

/// Every route of a table: masked prefix -> next hop, one map per prefix length.
struct Routes<P> {
    by_len: Vec<HashMap<P, u32, BuildHasherDefault<PrefixHasher>>>,
}

impl<P: Prefix> Routes<P> {
    fn new() -> Self {
        Routes {
            by_len: (0..=P::BITS).map(|_| HashMap::default()).collect(),
        }
    }

    /// The next hop of exactly `prefix/len`; any length is asked, host bits ignored.
    fn get(&self, prefix: P, len: u8) -> Option<u32> {
        let routes = self.by_len.get(usize::from(len))?;
        routes.get(&prefix.masked(len)).copied()
    }

    /// The previous next hop. `prefix` is masked and `len` checked.
    fn insert(&mut self, prefix: P, len: u8, hop: u32) -> Option<u32> {
        self.by_len[usize::from(len)].insert(prefix, hop)
    }

    /// The next hop it had. `prefix` is masked and `len` checked.
    fn remove(&mut self, prefix: P, len: u8) -> Option<u32> {
        self.by_len[usize::from(len)].remove(&prefix)
    }

    /// The longest route strictly shorter than `len` that covers `prefix`, as (length,
    /// next hop).
    fn covering(&self, prefix: P, len: u8) -> Option<(u8, u32)> {
        (0..len).rev().find_map(|l| {
            let routes = &self.by_len[usize::from(l)];
            // Most lengths have no route at all in a real table: no need to hash.
            if routes.is_empty() {
                return None;
            }
            routes.get(&prefix.masked(l)).map(|&hop| (l, hop))
        })
    }

    fn iter(&self) -> impl Iterator<Item = (P, u8, u32)> + '_ {
        self.by_len
            .iter()
            .zip(0u8..)
            .flat_map(|(m, len)| m.iter().map(move |(&p, &h)| (p, len, h)))
    }

    fn len(&self) -> usize {
        self.by_len.iter().map(HashMap::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.by_len.iter().all(HashMap::is_empty)
    }
}

/// What a writer needs from the lookup structure it keeps: the entry a route writes,
/// and how a route is painted in or taken out. The writer has checked the route and
/// masked its prefix, keeps the routes and hands out the groups.
pub trait Table: Sized {
    /// The addresses it looks up.
    type Addr: Prefix;
    /// The largest next hop an entry can hold.
    const MAX_NEXT_HOP: u32;
    /// The most groups the table can address.
    const MAX_GROUPS: u32;

    /// An empty table with room for `groups` groups (at most `MAX_GROUPS`).
    fn with_groups(groups: u32) -> io::Result<Self>;

    /// The entry word of a route: never 0, which stands for "no route" in every table.
    fn entry(hop: u32, len: u8) -> u32;

    /// How many groups an insert of `prefix/len` links: the writer takes them all, or
    /// refuses the insert, before anything is painted.
    fn groups_needed(&self, prefix: Self::Addr, len: u8) -> u32;

    /// Paints `prefix/len` with `new`, linking the groups of `taken` (as many as
    /// [`groups_needed`](Self::groups_needed) said) where its path has none.
    fn insert_route(&self, prefix: Self::Addr, len: u8, new: u32, taken: &mut Vec<u32>);

    /// Writes `cover` wherever the deleted route `prefix/len` left its word `old`, and
    /// adds to `unlinked` the groups that no longer hold a longer route and were
    /// unlinked.
    fn delete_route(
        &self,
        prefix: Self::Addr,
        len: u8,
        old: u32,
        cover: u32,
        unlinked: &mut Vec<u32>,
    );
}

/// Why a table change was refused; the table is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LpmError {
    /// A prefix length over the address's bits, `max`.
    BadLength { len: u8, max: u8 },
    /// A next hop over the table's limit, `max`.
    NextHopTooLarge { hop: u32, max: u32 },
    /// A route longer than /24 needs new groups and not enough are free (some may be
    /// retired, waiting for a reclaim after a grace period).
    NoGroups,
    /// Delete of a route the table does not hold.
    NotFound,
}

impl fmt::Display for LpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LpmError::BadLength { len, max } => write!(f, "prefix length {len} is over {max}"),
            LpmError::NextHopTooLarge { hop, max } => {
                write!(f, "next hop {hop} is over the limit of {max}")
            }
            LpmError::NoGroups => write!(f, "not enough free groups for a route longer than /24"),
            LpmError::NotFound => write!(f, "no such route"),
        }
    }
}

impl std::error::Error for LpmError {}

/// A handle for lookups from another thread; as many as wanted, cloned freely.
pub struct LpmReader<T> {
    table: Arc<T>,
}

// Not derived: that would ask for `T: Clone`, and a table is never cloned, only shared.
impl<T> Clone for LpmReader<T> {
    fn clone(&self) -> Self {
        LpmReader {
            table: Arc::clone(&self.table),
        }
    }
}

impl<T> Deref for LpmReader<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.table
    }
}

/// True when no reader handle exists, so nobody can hold a link into a group.
fn unshared<T>(table: &mut Arc<T>) -> bool {
    // get_mut checks the counts with acquire ordering: the last reader's lookups
    // happen before this returns.
    Arc::get_mut(table).is_some()
}

/// The writer: the routes, the group pool, and the table it paints.
pub struct Lpm<T: Table> {
    table: Arc<T>,
    routes: Routes<T::Addr>,
    groups: GroupPool,
}

impl<T: Table> Lpm<T> {
    /// An empty table with room for `groups` groups (the table's `DEFAULT_GROUPS` says
    /// how many a typical table needs). Maps 64 MB plus 1 KB per group of address
    /// space; memory is committed as it is written.
    pub fn new(groups: u32) -> io::Result<Self> {
        if groups > T::MAX_GROUPS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{groups} groups is over the limit of {}", T::MAX_GROUPS),
            ));
        }
        Ok(Lpm {
            table: Arc::new(T::with_groups(groups)?),
            routes: Routes::new(),
            groups: GroupPool::new(groups),
        })
    }

    /// A lookup handle for a worker.
    pub fn reader(&self) -> LpmReader<T> {
        LpmReader {
            table: self.table.clone(),
        }
    }

    /// The table, for lookups from the writer's thread.
    #[inline]
    pub fn table(&self) -> &T {
        &self.table
    }

    fn check_len(len: u8) -> Result<(), LpmError> {
        let max = T::Addr::BITS;
        if len > max {
            return Err(LpmError::BadLength { len, max });
        }
        Ok(())
    }

    /// Adds the route `prefix/len` to next hop `hop` (host bits of `prefix` are
    /// ignored), or changes its next hop if it exists; returns the previous one.
    pub fn insert(&mut self, prefix: T::Addr, len: u8, hop: u32) -> Result<Option<u32>, LpmError> {
        Self::check_len(len)?;
        if hop > T::MAX_NEXT_HOP {
            let max = T::MAX_NEXT_HOP;
            return Err(LpmError::NextHopTooLarge { hop, max });
        }
        let prefix = prefix.masked(len);
        let needed = self.table.groups_needed(prefix, len);
        let mut taken = self
            .groups
            .take(needed, || unshared(&mut self.table))
            .ok_or(LpmError::NoGroups)?;
        self.table
            .insert_route(prefix, len, T::entry(hop, len), &mut taken);
        debug_assert!(taken.is_empty(), "groups taken but not linked");
        Ok(self.routes.insert(prefix, len, hop))
    }

    /// Removes the route `prefix/len` (host bits ignored); its addresses fall back to
    /// the next-shorter route covering them, if any. Returns its next hop.
    pub fn delete(&mut self, prefix: T::Addr, len: u8) -> Result<u32, LpmError> {
        Self::check_len(len)?;
        let prefix = prefix.masked(len);
        let hop = self.routes.remove(prefix, len).ok_or(LpmError::NotFound)?;
        let cover = self
            .routes
            .covering(prefix, len)
            .map_or(0, |(l, h)| T::entry(h, l));
        let mut unlinked = Vec::new();
        self.table
            .delete_route(prefix, len, T::entry(hop, len), cover, &mut unlinked);
        let unshared = unshared(&mut self.table);
        for g in unlinked {
            self.groups.retire(g, unshared);
        }
        Ok(hop)
    }

    /// Makes the groups retired by deletes reusable. Call only when every reader has
    /// passed a quiescent point (finished the lookups it had started) since those
    /// deletes: a reader still holding an old group link would otherwise read entries
    /// written for another prefix.
    pub fn reclaim(&mut self) {
        self.groups.reclaim();
    }

    /// The next hop of exactly `prefix/len` (host bits ignored), if that route exists.
    pub fn get(&self, prefix: T::Addr, len: u8) -> Option<u32> {
        self.routes.get(prefix, len)
    }

    /// Every route, as (prefix, length, next hop), in no particular order.
    pub fn routes(&self) -> impl Iterator<Item = (T::Addr, u8, u32)> + '_ {
        self.routes.iter()
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Groups linked in the table.
    pub fn groups_used(&self) -> u32 {
        self.groups.used()
    }

    /// Groups unlinked while readers existed, waiting for [`reclaim`](Self::reclaim).
    pub fn groups_retired(&self) -> u32 {
        self.groups.retired()
    }

    /// The group limit given to [`new`](Self::new).
    pub fn group_capacity(&self) -> u32 {
        self.groups.capacity()
    }
}

/// What the tests of both tables share: the naive reference, and the scenarios every
/// table must pass, written once against the writer.
#[cfg(test)]
pub(super) mod testing {
    use std::fmt::LowerHex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{Lpm, LpmError, Prefix, Table};
    use crate::testing::SplitMix64 as Rng;

    /// The reference: a list of routes, searched linearly.
    pub struct Naive<P>(pub Vec<(P, u8, u32)>);

    impl<P> Default for Naive<P> {
        fn default() -> Self {
            Naive(Vec::new())
        }
    }

    impl<P: Prefix> Naive<P> {
        pub fn insert(&mut self, prefix: P, len: u8, hop: u32) {
            let prefix = prefix.masked(len);
            match self.0.iter_mut().find(|r| r.0 == prefix && r.1 == len) {
                Some(r) => r.2 = hop,
                None => self.0.push((prefix, len, hop)),
            }
        }

        pub fn delete(&mut self, prefix: P, len: u8) {
            let prefix = prefix.masked(len);
            self.0.retain(|r| !(r.0 == prefix && r.1 == len));
        }

        pub fn get(&self, prefix: P, len: u8) -> Option<u32> {
            let prefix = prefix.masked(len);
            self.0
                .iter()
                .find(|r| r.0 == prefix && r.1 == len)
                .map(|r| r.2)
        }

        pub fn lookup(&self, addr: P) -> Option<u32> {
            self.0
                .iter()
                .filter(|r| addr.masked(r.1) == r.0)
                .max_by_key(|r| r.1)
                .map(|r| r.2)
        }
    }

    /// What the scenarios need of a table besides its writer: its lookups.
    pub trait TestTable: Table {
        /// Random addresses, plus for every route its first and last address, one
        /// inside, and the neighbours just outside.
        fn probes(
            rng: &mut Rng,
            routes: &[(Self::Addr, u8, u32)],
            random: usize,
        ) -> Vec<Self::Addr>;

        /// Asserts that every way of looking up agrees with `naive` on every address.
        fn check(t: &Lpm<Self>, naive: &Naive<Self::Addr>, addrs: &[Self::Addr]);

        /// A lookup, `NO_ROUTE` where none matches.
        fn lookup_one(&self, addr: Self::Addr) -> u32;

        /// A bulk lookup of 8, the batch workers use.
        fn lookup_eight(&self, addrs: &[Self::Addr; 8]) -> [u32; 8];

        /// No entry of the first level is left.
        fn first_level_clear(&self) -> bool;
    }

    /// Routes from `route` with random next hops against the naive search, then a
    /// random half deleted, then some re-added with other next hops, then all deleted.
    /// The three checks probe around every route first inserted, and at as many random
    /// addresses as `random` says.
    pub fn random_against_naive<T: TestTable>(
        t: &mut Lpm<T>,
        seed: u64,
        n: usize,
        mut route: impl FnMut(&mut Rng) -> (T::Addr, u8),
        random: [usize; 3],
    ) {
        let mut rng = Rng(seed);
        let mut naive = Naive::default();
        for _ in 0..n {
            let (p, len) = route(&mut rng);
            let hop = rng.below(T::MAX_NEXT_HOP + 1);
            let before = naive.get(p, len);
            assert_eq!(t.get(p, len), before);
            assert_eq!(t.insert(p, len, hop), Ok(before));
            naive.insert(p, len, hop);
        }
        assert_eq!(t.len(), naive.0.len());
        let routes = naive.0.clone();
        T::check(t, &naive, &T::probes(&mut rng, &routes, random[0]));

        let mut deleted = Vec::new();
        for &(p, l, h) in &routes {
            if rng.below(2) == 0 {
                assert_eq!(t.delete(p, l), Ok(h));
                naive.delete(p, l);
                deleted.push((p, l, h));
            }
        }
        assert_eq!(t.len(), naive.0.len());
        T::check(t, &naive, &T::probes(&mut rng, &routes, random[1]));

        for &(p, l, h) in deleted.iter().step_by(3) {
            t.insert(p, l, h ^ 1).unwrap();
            naive.insert(p, l, h ^ 1);
        }
        T::check(t, &naive, &T::probes(&mut rng, &routes, random[2]));

        let left = naive.0.clone();
        for &(p, l, _) in &left {
            t.delete(p, l).unwrap();
        }
        assert!(t.is_empty());
        assert_eq!(t.groups_used(), 0);
        assert!(
            t.table().first_level_clear(),
            "first level not empty after deleting every route"
        );
    }

    /// Inserts the routes of `nest` one at a time and deletes them again, checking
    /// `probes` against the naive search after every step, in every rotation of their
    /// order, forwards or backwards on the way in and on the way out: each route goes in
    /// and out before and after each other (every order of six routes, 720 of them each
    /// way, would be slow with 64 MB tables). Returns the groups used with all of them
    /// in, which must not depend on the order.
    pub fn in_many_orders<T: TestTable>(
        t: &mut Lpm<T>,
        nest: &[(T::Addr, u8, u32)],
        probes: &[T::Addr],
    ) -> u32 {
        let n = nest.len();
        let mut full = None;
        for start in 0..n {
            for rev_in in [false, true] {
                for rev_out in [false, true] {
                    let mut order: Vec<_> = (0..n).map(|i| (i + start) % n).collect();
                    let mut naive = Naive::default();
                    if rev_in {
                        order.reverse();
                    }
                    for &i in &order {
                        let (p, l, h) = nest[i];
                        t.insert(p, l, h).unwrap();
                        naive.insert(p, l, h);
                        T::check(t, &naive, probes);
                    }
                    let used = t.groups_used();
                    assert_eq!(
                        *full.get_or_insert(used),
                        used,
                        "groups depend on the order"
                    );
                    if rev_out != rev_in {
                        order.reverse();
                    }
                    for &i in &order {
                        let (p, l, _) = nest[i];
                        t.delete(p, l).unwrap();
                        naive.delete(p, l);
                        T::check(t, &naive, probes);
                    }
                    assert_eq!(t.groups_used(), 0);
                }
            }
        }
        full.unwrap_or(0)
    }

    /// Lengths over the address's bits, next hops over the table's limit and deletes
    /// of routes the table does not hold are refused, and change nothing. `other` is an
    /// address outside 0/8.
    pub fn refuses_bad_arguments<T: TestTable>(other: T::Addr)
    where
        T::Addr: Default,
    {
        let zero = T::Addr::default();
        let (bits, max) = (T::Addr::BITS, T::MAX_NEXT_HOP);
        let too_long = LpmError::BadLength {
            len: bits + 1,
            max: bits,
        };
        let mut t = Lpm::<T>::new(4).unwrap();
        assert_eq!(t.insert(zero, bits + 1, 1), Err(too_long));
        assert_eq!(
            t.insert(zero, 8, max + 1),
            Err(LpmError::NextHopTooLarge { hop: max + 1, max })
        );
        assert_eq!(t.insert(zero, 8, max), Ok(None));
        assert_eq!(t.table().lookup_one(zero), max);
        assert_eq!(t.delete(zero, bits + 1), Err(too_long));
        assert_eq!(t.delete(zero, 9), Err(LpmError::NotFound));
        assert_eq!(t.delete(other, 8), Err(LpmError::NotFound));
        assert_eq!(t.get(zero, bits + 1), None);
        assert_eq!(t.routes().collect::<Vec<_>>(), [(zero, 8, max)]);
        assert!(Lpm::<T>::new(T::MAX_GROUPS + 1).is_err());
        assert!(!LpmError::NoGroups.to_string().is_empty());
    }

    /// A reader thread looks up addresses from `pick` all the time while the writer
    /// churns routes among them, in `t`, a table with few groups so that they are
    /// reused often; when the groups run out, the writer deletes half its routes, waits
    /// for the reader to finish a pass begun after that (a grace period), and reclaims.
    /// `t` holds a route to next hop 1 covering every picked address, which stays, so
    /// no lookup may fail. A churned route has a length from `len`; over `long` bits it
    /// leads to `own` of its prefix, a number its addresses share with no others, so an
    /// answer read from a group reused too early shows up; else to 2.
    pub fn readers_during_updates<T>(
        mut t: Lpm<T>,
        pick: impl Fn(&mut Rng) -> T::Addr + Copy + Send + 'static,
        len: impl Fn(&mut Rng) -> u8,
        long: u8,
        own: impl Fn(T::Addr) -> u32 + Copy + Send + 'static,
    ) where
        T: TestTable + Send + Sync + 'static,
        T::Addr: LowerHex + Send + 'static,
    {
        let reader = t.reader();
        let stop = Arc::new(AtomicBool::new(false));
        let passes = Arc::new(AtomicU64::new(0));
        let worker = {
            let (stop, passes) = (stop.clone(), passes.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(7);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..256 {
                        let batch: [T::Addr; 8] = std::array::from_fn(|_| pick(&mut rng));
                        let got = reader.lookup_eight(&batch);
                        let alone = (batch[0], reader.lookup_one(batch[0]));
                        for (a, hop) in batch.into_iter().zip(got).chain([alone]) {
                            assert!(hop == 1 || hop == 2 || hop == own(a), "{a:#x} -> {hop:#x}");
                        }
                        n += 9;
                    }
                    passes.fetch_add(1, Ordering::Release);
                }
                n
            })
        };
        let mut rng = Rng(8);
        let mut live = Vec::new();
        let start = Instant::now();
        let mut reclaims = 0;
        while start.elapsed() < Duration::from_millis(400) && !worker.is_finished() {
            let p = pick(&mut rng);
            let len = len(&mut rng);
            let hop = if len > long { own(p) } else { 2 };
            match t.insert(p, len, hop) {
                Ok(_) => live.push((p, len)),
                Err(LpmError::NoGroups) => {
                    for (p, l) in live.drain(..live.len() / 2) {
                        let _ = t.delete(p, l);
                    }
                    let seen = passes.load(Ordering::Acquire);
                    while passes.load(Ordering::Acquire) < seen + 2 && !worker.is_finished() {
                        std::thread::yield_now();
                    }
                    t.reclaim();
                    reclaims += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        let lookups = worker.join().unwrap();
        assert!(lookups > 10_000, "reader did only {lookups} lookups");
        assert!(reclaims > 0, "no group was ever reused");
    }
}
