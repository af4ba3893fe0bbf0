//! A bridge's MAC table: (VLAN, MAC) -> member, shared by every worker.
//!
//! Workers look up and learn with atomic loads and compare-and-swaps only: no lock, no
//! allocation. The table is fixed-size, sized once from the bridge's MAC limit, so a
//! guest spraying source addresses can fill its quota but never grow memory or push
//! out another entry (learning never evicts; static entries are outside the quota).
//!
//! Layout: buckets of four slots (keys, then values) in one cache line each, at a load
//! factor of at most one half. A key goes to the first of its two buckets whenever
//! that has room, else to the second, else an entry of the first moves to its own second
//! bucket to make room (one step of cuckoo hashing). So a lookup, and the prefetch ahead
//! of it, needs exactly one cache line for all but a few percent of keys, and a full
//! table still places every key. The bucket count is not rounded to a power of two: a
//! table of a million addresses is 32 MiB instead of up to 128, and a random lookup's
//! cost grows with the table's size (caches, then TLB reach).
//!
//! A slot is a key word and a value word. Key 0 is a free slot; value 0 is a slot being
//! filled or emptied, which readers treat as absent. Insertion claims a free key with a
//! compare-and-swap and then publishes the value; removal (aging, on the control side
//! only) clears the value with a compare-and-swap, so it loses to a concurrent refresh,
//! and then frees the key. A reader re-checks the key after reading the value, so it
//! never pairs a key with a value written for another key that reused the slot.
//!
//! Two workers learning the same new address at the same instant may both insert it;
//! lookups then find the first copy and refresh only that one, and the other ages out.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::wire::Mac;

const SLOTS: usize = 4;

/// Four keys and their values in one cache line: a lookup touches one line per bucket.
#[repr(C, align(64))]
#[derive(Default)]
struct Bucket {
    keys: [AtomicU64; SLOTS],
    values: [AtomicU64; SLOTS],
}

/// A slot of a bucket, as returned by a search.
struct Slot<'t> {
    key: &'t AtomicU64,
    value: &'t AtomicU64,
}

impl Bucket {
    /// Bit i set when slot i holds `key`.
    #[inline]
    fn matches(&self, key: u64) -> u32 {
        let mut m = 0;
        for (i, k) in self.keys.iter().enumerate() {
            m |= u32::from(k.load(Ordering::Relaxed) == key) << i;
        }
        m
    }

    fn slot(&self, i: usize) -> Slot<'_> {
        Slot {
            key: &self.keys[i],
            value: &self.values[i],
        }
    }
}

const KEY_PRESENT: u64 = 1 << 63;
const VALUE_VALID: u64 = 1 << 63;
const VALUE_STATIC: u64 = 1 << 62;
const MEMBER_SHIFT: u32 = 32;

/// The bucket array, in its own anonymous mapping so that large tables can use huge
/// pages: with a million entries a random lookup would otherwise miss the TLB as well
/// as the caches.
struct Buckets {
    ptr: std::ptr::NonNull<Bucket>,
    len: usize,
}

// SAFETY: the buckets are atomics only, shared by design.
unsafe impl Send for Buckets {}
// SAFETY: as above.
unsafe impl Sync for Buckets {}

impl Buckets {
    fn new(len: usize) -> Buckets {
        let bytes = len * std::mem::size_of::<Bucket>();
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(
            p != libc::MAP_FAILED,
            "cannot map a MAC table of {bytes} bytes: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: advice on the mapping just made; failure only means small pages.
        unsafe { libc::madvise(p, bytes, libc::MADV_HUGEPAGE) };
        Buckets {
            // The mapping is zero-filled, and all-zero atomics are a valid empty Bucket;
            // mmap returns page-aligned memory, more than Bucket's 64-byte alignment.
            ptr: std::ptr::NonNull::new(p.cast()).expect("mmap never returns null"),
            len,
        }
    }
}

impl std::ops::Deref for Buckets {
    type Target = [Bucket];
    fn deref(&self) -> &[Bucket] {
        // SAFETY: `len` zero-initialized Buckets live at `ptr` until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Buckets {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference outlives self.
        unsafe {
            libc::munmap(
                self.ptr.as_ptr().cast(),
                self.len * std::mem::size_of::<Bucket>(),
            );
        }
    }
}

/// The table key of `mac` in `vlan`; never 0.
#[inline]
pub fn key(vlan: u16, mac: &Mac) -> u64 {
    key_of_word(
        vlan,
        u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]),
    )
}

/// The table key of the MAC whose six bytes, read big-endian, are the low 48 bits of
/// `mac` (the bits above are ignored): what the batch path builds from wide loads.
#[inline]
pub fn key_of_word(vlan: u16, mac: u64) -> u64 {
    KEY_PRESENT | (u64::from(vlan & 0x0fff) << 48) | (mac & 0xffff_ffff_ffff)
}

pub fn key_parts(key: u64) -> (u16, Mac) {
    let b = key.to_be_bytes();
    (
        ((key >> 48) & 0x0fff) as u16,
        [b[2], b[3], b[4], b[5], b[6], b[7]],
    )
}

/// A table entry as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub member: u16,
    pub is_static: bool,
    /// Bridge clock (seconds) when the address was last seen.
    pub seen: u32,
}

impl Entry {
    fn decode(v: u64) -> Entry {
        Entry {
            member: (v >> MEMBER_SHIFT) as u16,
            is_static: v & VALUE_STATIC != 0,
            seen: v as u32,
        }
    }
}

fn value(member: u16, is_static: bool, seen: u32) -> u64 {
    VALUE_VALID
        | if is_static { VALUE_STATIC } else { 0 }
        | (u64::from(member) << MEMBER_SHIFT)
        | u64::from(seen)
}

/// What learning a source address did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Already known on this member (its timestamp refreshed if it was stale).
    Known,
    /// New entry.
    New,
    /// Was on member `from`, now on this one.
    Moved { from: u16 },
    /// A static entry puts the address on another member; left as it is.
    StaticElsewhere,
    /// The bridge holds its limit of learned addresses.
    LimitHit,
    /// Both candidate buckets are full (rare below the limit's load factor).
    TableFull,
}

pub struct MacTable {
    buckets: Buckets,
    /// Number of buckets.
    len: u64,
    limit: u32,
    learned: AtomicU32,
}

impl MacTable {
    /// A table for up to `limit` learned entries plus `statics` static ones.
    pub fn new(limit: u32, statics: usize) -> MacTable {
        let want = (limit as usize + statics).max(1) * 2;
        let buckets = want.div_ceil(SLOTS).max(2);
        MacTable {
            buckets: Buckets::new(buckets),
            len: buckets as u64,
            limit,
            learned: AtomicU32::new(0),
        }
    }

    /// Learned entries currently held.
    pub fn learned(&self) -> u32 {
        self.learned.load(Ordering::Relaxed)
    }

    #[inline]
    fn buckets_of(&self, key: u64) -> (usize, usize) {
        // A full 64-bit mix (MurmurHash3's finalizer): every key bit reaches both
        // halves, which pick the two buckets independently.
        let mut h = key;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        // Each 32-bit half scaled to the bucket count (a multiply, not a modulo).
        let a = ((h >> 32) * self.len) >> 32;
        let mut b = ((h & 0xffff_ffff) * self.len) >> 32;
        if b == a {
            b = if a + 1 == self.len { 0 } else { a + 1 };
        }
        (a as usize, b as usize)
    }

    /// Hints the CPU to fetch the key's first bucket (where it nearly always is).
    #[inline]
    pub fn prefetch(&self, key: u64) {
        self.prefetch_bucket(self.first_bucket(key));
    }

    /// The bucket a lookup of `key` reads first: for a batch that computes it once to
    /// prefetch, and again to look up with [`MacTable::lookup_from`].
    #[inline]
    pub fn first_bucket(&self, key: u64) -> u32 {
        // Fewer than 2^32 buckets: the index fits.
        self.buckets_of(key).0 as u32
    }

    #[inline]
    pub fn prefetch_bucket(&self, bucket: u32) {
        let Some(b) = self.buckets.get(bucket as usize) else {
            return;
        };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint, of an address inside the table.
        unsafe {
            let line: *const i8 = (b as *const Bucket).cast();
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = b;
    }

    /// [`MacTable::lookup`] with the key's first bucket already computed.
    #[inline(always)]
    pub fn lookup_from(&self, key: u64, first: u32) -> Option<Entry> {
        let bucket = self.buckets.get(first as usize)?;
        let m = bucket.matches(key);
        if m != 0 {
            let slot = bucket.slot(m.trailing_zeros() as usize);
            let v = slot.value.load(Ordering::Acquire);
            if v & VALUE_VALID != 0 && slot.key.load(Ordering::Relaxed) == key {
                return Some(Entry::decode(v));
            }
        }
        // In the second bucket, being filled or emptied, or absent.
        self.lookup(key)
    }

    /// The slot holding `key` and its value, if present.
    ///
    #[inline]
    fn find(&self, key: u64) -> Option<(Slot<'_>, u64)> {
        let (a, b) = self.buckets_of(key);
        // Nearly every key sits in its first bucket (see `insert`), so this branch is
        // predicted right and the second bucket is rarely read.
        let ba = &self.buckets[a];
        let (bucket, m) = match ba.matches(key) {
            0 => {
                let bb = &self.buckets[b];
                (bb, bb.matches(key))
            }
            m => (ba, m),
        };
        if m == 0 {
            return None;
        }
        let slot = bucket.slot(m.trailing_zeros() as usize);
        let v = slot.value.load(Ordering::Acquire);
        if v & VALUE_VALID != 0 && slot.key.load(Ordering::Relaxed) == key {
            return Some((slot, v));
        }
        // The first match is being filled or emptied; a copy may sit elsewhere.
        self.find_slow(key)
    }

    #[cold]
    fn find_slow(&self, key: u64) -> Option<(Slot<'_>, u64)> {
        let (a, b) = self.buckets_of(key);
        for bi in [a, b] {
            let bucket = &self.buckets[bi];
            for i in 0..SLOTS {
                let slot = bucket.slot(i);
                if slot.key.load(Ordering::Acquire) != key {
                    continue;
                }
                let v = slot.value.load(Ordering::Acquire);
                if v & VALUE_VALID != 0 && slot.key.load(Ordering::Relaxed) == key {
                    return Some((slot, v));
                }
            }
        }
        None
    }

    #[inline]
    pub fn lookup(&self, key: u64) -> Option<Entry> {
        self.find(key).map(|(_, v)| Entry::decode(v))
    }

    /// Records that `key` was seen as a source on `member` at time `now`.
    #[inline]
    pub fn learn(&self, key: u64, member: u16, now: u32) -> Learned {
        if let Some((slot, v)) = self.find(key) {
            let e = Entry::decode(v);
            if e.member == member {
                // Written at most once a second per address, so the line stays shared.
                if e.seen != now && !e.is_static {
                    let _ = slot.value.compare_exchange(
                        v,
                        value(member, false, now),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
                return Learned::Known;
            }
            if e.is_static {
                return Learned::StaticElsewhere;
            }
            // Losing this race means another worker just updated the entry; either way
            // the address has been placed.
            let _ = slot.value.compare_exchange(
                v,
                value(member, false, now),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            return Learned::Moved { from: e.member };
        }
        // A plain read first: a guest spraying new addresses at a full table then costs
        // each worker a shared read per frame, not a contended read-modify-write.
        if self.learned.load(Ordering::Relaxed) >= self.limit {
            return Learned::LimitHit;
        }
        if self.learned.fetch_add(1, Ordering::Relaxed) >= self.limit {
            self.learned.fetch_sub(1, Ordering::Relaxed);
            return Learned::LimitHit;
        }
        if self.insert(key, value(member, false, now)) {
            Learned::New
        } else {
            self.learned.fetch_sub(1, Ordering::Relaxed);
            Learned::TableFull
        }
    }

    fn insert(&self, key: u64, v: u64) -> bool {
        let (a, b) = self.buckets_of(key);
        // The first bucket whenever it has room, so that lookups (and prefetches) need
        // one cache line for nearly every key; the second takes the overflow.
        if self.claim(a, key, v) || self.claim(b, key, v) {
            return true;
        }
        // Both full: move one of the first bucket's keys to its other bucket.
        self.make_room(a) && self.claim(a, key, v)
    }

    /// Takes a free slot of bucket `bi` for `key`.
    fn claim(&self, bi: usize, key: u64, v: u64) -> bool {
        let bucket = &self.buckets[bi];
        for i in 0..SLOTS {
            if bucket.keys[i]
                .compare_exchange(0, key, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                bucket.values[i].store(v, Ordering::Release);
                return true;
            }
        }
        false
    }

    /// Frees a slot of bucket `bi` by copying one of its entries to that entry's other
    /// bucket, then removing the original. Readers find the entry in one place or the
    /// other throughout; if the original changes meanwhile (a refresh or a move), it
    /// stays and the copy is withdrawn.
    fn make_room(&self, bi: usize) -> bool {
        let bucket = &self.buckets[bi];
        for i in 0..SLOTS {
            let slot = bucket.slot(i);
            let k = slot.key.load(Ordering::Acquire);
            let v = slot.value.load(Ordering::Acquire);
            if k == 0 || v & VALUE_VALID == 0 {
                continue;
            }
            let (x, y) = self.buckets_of(k);
            let other = if x == bi { y } else { x };
            if !self.claim(other, k, v) {
                continue;
            }
            if slot
                .value
                .compare_exchange(v, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                slot.key.store(0, Ordering::Release);
                return true;
            }
            self.withdraw(other, k);
        }
        false
    }

    /// Removes the copy of `key` in bucket `bi` that `make_room` just made.
    fn withdraw(&self, bi: usize, key: u64) {
        let bucket = &self.buckets[bi];
        for i in 0..SLOTS {
            let slot = bucket.slot(i);
            if slot.key.load(Ordering::Acquire) == key {
                slot.value.store(0, Ordering::Release);
                slot.key.store(0, Ordering::Release);
                return;
            }
        }
    }

    /// Adds an entry that never ages or moves (configuration time, before forwarding).
    pub fn add_static(&self, key: u64, member: u16) -> bool {
        if let Some((slot, _)) = self.find(key) {
            slot.value.store(value(member, true, 0), Ordering::Release);
            return true;
        }
        self.insert(key, value(member, true, 0))
    }

    /// Removes learned entries last seen more than `max_age` seconds before `now`;
    /// returns how many. Control side only (one caller at a time).
    pub fn age(&self, now: u32, max_age: u32) -> u32 {
        let mut removed = 0;
        for bucket in self.buckets.iter() {
            for slot in (0..SLOTS).map(|i| bucket.slot(i)) {
                if slot.key.load(Ordering::Relaxed) == 0 {
                    continue;
                }
                let v = slot.value.load(Ordering::Acquire);
                if v & VALUE_VALID == 0 || v & VALUE_STATIC != 0 {
                    continue;
                }
                if now.wrapping_sub(v as u32) <= max_age {
                    continue;
                }
                if slot
                    .value
                    .compare_exchange(v, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    slot.key.store(0, Ordering::Release);
                    self.learned.fetch_sub(1, Ordering::Relaxed);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Every entry, for listing (control side).
    pub fn entries(&self) -> Vec<(u64, Entry)> {
        let mut out = Vec::new();
        for bucket in self.buckets.iter() {
            for slot in (0..SLOTS).map(|i| bucket.slot(i)) {
                let k = slot.key.load(Ordering::Acquire);
                let v = slot.value.load(Ordering::Acquire);
                if k != 0 && v & VALUE_VALID != 0 {
                    out.push((k, Entry::decode(v)));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u32) -> Mac {
        let b = n.to_be_bytes();
        [0x02, 0, b[0], b[1], b[2], b[3]]
    }

    #[test]
    fn learns_then_finds_per_vlan() {
        let t = MacTable::new(16, 0);
        assert_eq!(t.learn(key(10, &mac(1)), 3, 100), Learned::New);
        assert_eq!(t.learn(key(10, &mac(1)), 3, 100), Learned::Known);
        assert_eq!(
            t.lookup(key(10, &mac(1))),
            Some(Entry {
                member: 3,
                is_static: false,
                seen: 100
            })
        );
        // The same address in another VLAN is another entry.
        assert_eq!(t.lookup(key(20, &mac(1))), None);
        assert_eq!(t.learned(), 1);
        assert_eq!(key_parts(key(10, &mac(7))), (10, mac(7)));
    }

    #[test]
    fn a_known_address_seen_elsewhere_moves() {
        let t = MacTable::new(16, 0);
        t.learn(key(1, &mac(1)), 0, 5);
        assert_eq!(t.learn(key(1, &mac(1)), 2, 6), Learned::Moved { from: 0 });
        assert_eq!(t.lookup(key(1, &mac(1))).unwrap().member, 2);
        assert_eq!(t.learned(), 1);
    }

    #[test]
    fn refresh_updates_the_timestamp() {
        let t = MacTable::new(16, 0);
        t.learn(key(1, &mac(1)), 0, 5);
        t.learn(key(1, &mac(1)), 0, 9);
        assert_eq!(t.lookup(key(1, &mac(1))).unwrap().seen, 9);
    }

    #[test]
    fn aging_removes_only_stale_learned_entries() {
        let t = MacTable::new(16, 1);
        t.learn(key(1, &mac(1)), 0, 100);
        t.learn(key(1, &mac(2)), 0, 350);
        assert!(t.add_static(key(1, &mac(3)), 1));
        assert_eq!(t.age(401, 300), 1);
        assert_eq!(t.lookup(key(1, &mac(1))), None);
        assert!(t.lookup(key(1, &mac(2))).is_some());
        assert!(t.lookup(key(1, &mac(3))).unwrap().is_static);
        assert_eq!(t.learned(), 1);
        // A freed slot is reused.
        assert_eq!(t.learn(key(1, &mac(1)), 0, 402), Learned::New);
    }

    #[test]
    fn limit_caps_learning_and_spares_static_entries() {
        let t = MacTable::new(100, 1);
        assert!(t.add_static(key(1, &mac(0)), 7));
        let mut hits = 0;
        for n in 1..=1000 {
            match t.learn(key(1, &mac(n)), 1, 0) {
                Learned::New => {}
                Learned::LimitHit => hits += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(t.learned(), 100);
        assert_eq!(hits, 900);
        let e = t.lookup(key(1, &mac(0))).unwrap();
        assert_eq!((e.member, e.is_static), (7, true));
        // Learning never moves a static entry.
        assert_eq!(t.learn(key(1, &mac(0)), 1, 0), Learned::StaticElsewhere);
        assert_eq!(t.lookup(key(1, &mac(0))).unwrap().member, 7);
    }

    #[test]
    fn fills_to_its_limit_without_bucket_overflow() {
        // A full table at the designed load factor: every address must find a slot.
        let limit = 1 << 16;
        let t = MacTable::new(limit, 0);
        for n in 0..limit {
            assert_eq!(t.learn(key(1, &mac(n)), 0, 0), Learned::New, "address {n}");
        }
        for n in 0..limit {
            assert!(t.lookup(key(1, &mac(n))).is_some());
        }
        assert_eq!(t.entries().len(), limit as usize);
    }

    #[test]
    fn moving_entries_to_their_other_bucket_packs_a_small_table() {
        // 64 buckets of four slots, filled until the first key is refused: without
        // moving entries aside, that happens as soon as some key finds both of its
        // buckets full, long before the table is.
        let t = MacTable::new(127, 0);
        let mut placed = Vec::new();
        for n in 0.. {
            if !t.add_static(key(1, &mac(n)), 1) {
                break;
            }
            placed.push(n);
        }
        assert!(
            // Without moves, this key set is refused at 107.
            placed.len() >= 180,
            "refused at {} of 256 slots",
            placed.len()
        );
        for n in &placed {
            assert!(t.lookup(key(1, &mac(*n))).is_some(), "address {n} lost");
        }
        assert_eq!(t.entries().len(), placed.len());
    }

    #[test]
    fn concurrent_learners_and_an_ager_keep_the_table_consistent() {
        let t = std::sync::Arc::new(MacTable::new(4096, 0));
        let workers: Vec<_> = (0..2u16)
            .map(|w| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for round in 0..50u32 {
                        for n in 0..2000 {
                            t.learn(key(1, &mac(n)), w, round);
                            // A lookup never sees a member nobody wrote.
                            if let Some(e) = t.lookup(key(1, &mac(n))) {
                                assert!(e.member < 2);
                            }
                        }
                    }
                })
            })
            .collect();
        let ager = {
            let t = t.clone();
            std::thread::spawn(move || {
                for now in 0..200 {
                    t.age(now, 0);
                }
            })
        };
        for h in workers {
            h.join().unwrap();
        }
        ager.join().unwrap();
        // Every entry present is accounted for by the counter.
        assert_eq!(t.entries().len(), t.learned() as usize);
    }
}
