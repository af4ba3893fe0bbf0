//! The neighbor cache: (interface, IP address) -> MAC address, for ARP and IPv6 Neighbor
//! Discovery alike, shared by every worker.
//!
//! Workers ask [`Neighbors::resolve`] for every routed packet, and feed ARP and ND
//! packets to [`Neighbors::confirm`] and [`Neighbors::notice`]; one ager thread calls
//! [`Neighbors::age`]. Nothing allocates after [`Neighbors::new`], a lookup takes no
//! lock and writes nothing, and only the creation of a new entry ever waits for
//! another thread (another creation or deletion of a key with the same home).
//! IPv4 addresses share the table as IPv4-mapped IPv6 addresses ([`v4_key`]).
//!
//! # Layout
//!
//! Open addressing with linear probing over slots of one cache line each, at a load of
//! at most one half (the slot array is twice the [capacity](Neighbors::capacity)). The
//! slot a key hashes to is its *home*; the key lies in the first free slot at or after
//! its home when it was inserted, at most [`MAX_PROBE`] slots on. The hash is keyed with
//! a per-table random seed, so a guest cannot choose addresses that pile up on one
//! home.
//!
//! Each home slot also keeps a `reach`: every key whose home it is lies within that
//! many slots of it. A search scans only `reach` slots, so a miss costs about as little
//! as a hit (one or two lines at this load) instead of running to the next free slot.
//!
//! # Concurrency
//!
//! Every slot is guarded by a sequence counter (a seqlock). A writer takes a slot by
//! a compare-and-swap from the even value it read to the next, odd value, stores the
//! fields, and releases it at the odd value plus one; a reader reads the counter, the
//! fields, and the counter again, and retries if it was odd or changed. So readers see
//! a slot's fields as one consistent snapshot and never write, and because a writer's
//! compare-and-swap starts from the counter value of the snapshot it decided on, a
//! read-decide-write sequence is atomic: when many workers find that a solicitation
//! is due, exactly one of them wins the compare-and-swap and is told to send it; the
//! others re-read and see that it went out. A writer holds a slot for a handful of
//! stores and waits for nothing while it does; a reader that keeps finding a slot
//! busy (its writer was preempted) yields the processor rather than spin.
//!
//! Creating a key is the one operation that needs more than one slot: the key must not
//! be created twice by two workers that both missed it. Creators of keys with the same
//! home therefore serialize on a small lock in the home slot, search again under it,
//! and only then claim a free slot (by compare-and-swap, against creators of other
//! homes that may want the same slot). Only creation takes it, and only for keys of one
//! home: readers and updates of existing entries never do.
//!
//! # Deletion
//!
//! Deletion (ageing, [`Neighbors::remove`]) simply empties the slot: no tombstones and
//! no backward shift. That is safe because searches do not stop at empty slots, they
//! scan their home's `reach`. The deleter holds the home lock while it empties the
//! slot and, if it was the farthest of its home, recomputes that home's `reach`; as
//! every creation for the home holds the same lock, `reach` is then exact, and a
//! reader that loaded the old, larger value only scans a little more. A freed slot is
//! reused by the next key whose home precedes it within [`MAX_PROBE`].
//!
//! # States
//!
//! As in RFC 4861 7.3.2, simplified for a router: `Incomplete` (soliciting, no
//! address yet), `Reachable` (confirmed by a reply at `updated`), `Stale` (an address
//! learnt without confirmation), `Static` (configured; the network cannot change it).
//! A Reachable or Stale entry unconfirmed for [`REACHABLE_MS`] stays usable, and
//! packets using it trigger a unicast probe each [`RETRANS_MS`] until a reply confirms
//! it again or [`STALE_GC_MS`] pass and [`Neighbors::age`] removes it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// After this unconfirmed, a use triggers a unicast probe.
pub const REACHABLE_MS: u64 = 30_000;
/// Between solicitations.
pub const RETRANS_MS: u64 = 1_000;
/// Multicast/broadcast solicitations before giving up.
pub const MAX_SOLICIT: u32 = 3;
/// Unconfirmed this long: removed by [`Neighbors::age`].
pub const STALE_GC_MS: u64 = 300_000;
/// The farthest a key may lie from its home slot. At a load of one half, the farthest
/// of a million keys typically lies about 30 slots from its home (by simulation), so a
/// table refuses a key for want of a nearby free slot only in the rarest case.
pub const MAX_PROBE: usize = 64;
/// The largest capacity [`Neighbors::new`] grants (128 MB of slots).
pub const MAX_CAPACITY: usize = 1 << 20;

/// The table key of an IPv4 address: the IPv4-mapped IPv6 address ::ffff:a.b.c.d.
#[inline]
pub fn v4_key(ip: u32) -> u128 {
    0xffff_0000_0000 | u128::from(ip)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Incomplete,
    Reachable,
    Stale,
    Static,
}

#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub iface: u16,
    pub addr: u128,
    /// All zero while Incomplete.
    pub mac: [u8; 6],
    pub state: State,
    /// Ms of the last confirmation or change (creation, for an Incomplete entry; 0 for
    /// a static one).
    pub updated: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolve {
    /// Usable (Reachable, Stale or Static).
    Mac([u8; 6]),
    /// Usable, but unconfirmed for REACHABLE_MS and no probe sent in the last
    /// RETRANS_MS: the caller sends one unicast probe (the table has recorded it; at
    /// most one caller per RETRANS_MS gets this).
    MacAndProbe([u8; 6]),
    /// Unknown (an Incomplete entry was created now), or Incomplete with the last
    /// solicitation RETRANS_MS or more ago and fewer than MAX_SOLICIT sent: the caller
    /// sends a broadcast ARP request / multicast NS and holds the packet (exactly one
    /// caller gets this).
    Solicit,
    /// Incomplete, a solicitation is out: the caller holds the packet.
    Wait,
    /// Incomplete, MAX_SOLICIT sent and RETRANS_MS passed since the last: give up (the
    /// caller drops the packet and sends ICMP unreachable).
    Failed,
    /// No room to create the entry.
    Full,
}

const LIVE: u64 = 1 << 63;

const INCOMPLETE: u64 = 1;
const REACHABLE: u64 = 2;
const STALE: u64 = 3;
const STATIC: u64 = 4;

/// One entry, in one cache line. Every field is an atomic so that readers racing a
/// writer read torn values, which the sequence check discards, rather than cause
/// undefined behaviour.
#[repr(C, align(64))]
#[derive(Default)]
struct Slot {
    /// Even: stable; odd: a writer holds the slot.
    seq: AtomicU64,
    /// In a home slot: every key of this home lies within `reach` slots of it.
    reach: AtomicU32,
    /// In a home slot: held while a key of this home is created or deleted.
    lock: AtomicU32,
    /// `LIVE | iface`, or 0 for a free slot.
    tag: AtomicU64,
    hi: AtomicU64,
    lo: AtomicU64,
    /// MAC (bits 0-47), state (48-55), solicitations sent while Incomplete (56-63).
    info: AtomicU64,
    updated: AtomicU64,
    /// Ms of the last solicitation or probe.
    sent: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Key {
    tag: u64,
    hi: u64,
    lo: u64,
}

impl Key {
    fn new(iface: u16, addr: u128) -> Key {
        Key {
            tag: LIVE | u64::from(iface),
            hi: (addr >> 64) as u64,
            lo: addr as u64,
        }
    }

    fn iface(&self) -> u16 {
        self.tag as u16
    }

    fn addr(&self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }
}

/// A slot as one consistent read.
#[derive(Clone, Copy, Debug)]
struct Snap {
    seq: u64,
    key: Key,
    info: u64,
    updated: u64,
    sent: u64,
}

impl Snap {
    fn is_live(&self) -> bool {
        self.key.tag & LIVE != 0
    }

    fn state(&self) -> u64 {
        (self.info >> 48) & 0xff
    }

    fn solicits(&self) -> u32 {
        (self.info >> 56) as u32
    }

    fn mac(&self) -> [u8; 6] {
        let b = self.info.to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    }

    fn entry(&self) -> Entry {
        Entry {
            iface: self.key.iface(),
            addr: self.key.addr(),
            mac: self.mac(),
            state: match self.state() {
                INCOMPLETE => State::Incomplete,
                REACHABLE => State::Reachable,
                STALE => State::Stale,
                _ => State::Static,
            },
            updated: self.updated,
        }
    }

    /// Whether resolving has given up on this Incomplete entry.
    fn failed(&self, now: u64) -> bool {
        self.state() == INCOMPLETE
            && self.solicits() >= MAX_SOLICIT
            && now.saturating_sub(self.sent) >= RETRANS_MS
    }
}

fn info(mac: [u8; 6], state: u64, solicits: u32) -> u64 {
    let m = u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]);
    m | (state << 48) | (u64::from(solicits.min(0xff)) << 56)
}

/// The contents a writer stores into a slot it holds.
#[derive(Clone, Copy)]
struct Fields {
    info: u64,
    updated: u64,
    sent: u64,
}

/// What a creation attempt did.
enum Created {
    New,
    /// Another thread created the key first.
    Exists,
    Full,
}

/// Waiting for another thread's short critical section: spin briefly, then yield in
/// case that thread was preempted (on the processor this one is using, perhaps).
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 128 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// A home slot's creation lock, released on drop.
struct HomeLock<'t>(&'t AtomicU32);

impl Drop for HomeLock<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// The shared neighbor cache (see the module documentation).
pub struct Neighbors {
    slots: Box<[Slot]>,
    mask: usize,
    /// Slots a search may scan: `MAX_PROBE`, or the whole table if smaller.
    window: usize,
    capacity: usize,
    seed: u64,
    /// Non-static entries, limited to `capacity`.
    dynamic: AtomicUsize,
    /// Static entries: not limited by `capacity` (configuration must not fail because
    /// the network filled the table); they use the slots the load factor leaves free.
    statics: AtomicUsize,
}

impl Neighbors {
    /// A table for `capacity` learnt entries, rounded up to a power of two (at least 8,
    /// at most [`MAX_CAPACITY`]). Static entries are extra, in the slots the load
    /// factor leaves free.
    pub fn new(capacity: usize) -> Neighbors {
        let capacity = capacity
            .clamp(8, MAX_CAPACITY)
            .checked_next_power_of_two()
            .unwrap_or(MAX_CAPACITY);
        let len = capacity * 2;
        let slots: Box<[Slot]> = (0..len).map(|_| Slot::default()).collect();
        Neighbors {
            slots,
            mask: len - 1,
            window: MAX_PROBE.min(len),
            capacity,
            seed: RandomState::new().hash_one(0x6e65_6967_6862_6f72u64),
            dynamic: AtomicUsize::new(0),
            statics: AtomicUsize::new(0),
        }
    }

    /// Entries held, static ones included.
    pub fn len(&self) -> usize {
        self.dynamic.load(Ordering::Relaxed) + self.statics.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Non-static entries the table holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn lookup(&self, iface: u16, addr: u128) -> Option<Entry> {
        let key = Key::new(iface, addr);
        self.find(&key, self.home(&key)).map(|(_, s)| s.entry())
    }

    /// Whether resolving `addr` has given up: `resolve` would answer `Failed`.
    pub fn failed(&self, iface: u16, addr: u128, now: u64) -> bool {
        let key = Key::new(iface, addr);
        self.find(&key, self.home(&key))
            .is_some_and(|(_, s)| s.failed(now))
    }

    /// The address `resolve` would answer with `Mac` right now, found without recording
    /// anything (no entry created, no solicitation or probe claimed): for a caller that
    /// may still fall back to `resolve`, which must be asked only once per decision.
    pub fn usable(&self, iface: u16, addr: u128, now: u64) -> Option<[u8; 6]> {
        let key = Key::new(iface, addr);
        let (_, s) = self.find(&key, self.home(&key))?;
        match decide(&s, now) {
            (Resolve::Mac(mac), None) => Some(mac),
            _ => None,
        }
    }

    /// The forwarding question, per packet. A hit on a Reachable/Stale/Static entry is
    /// a few loads and no stores.
    #[inline]
    pub fn resolve(&self, iface: u16, addr: u128, now: u64) -> Resolve {
        let key = Key::new(iface, addr);
        let home = self.home(&key);
        loop {
            let Some((i, s)) = self.find(&key, home) else {
                let fields = Fields {
                    info: info([0; 6], INCOMPLETE, 1),
                    updated: now,
                    sent: now,
                };
                match self.create(&key, home, fields) {
                    Created::New => return Resolve::Solicit,
                    Created::Exists => continue,
                    Created::Full => return Resolve::Full,
                }
            };
            let (answer, write) = decide(&s, now);
            let Some(fields) = write else {
                return answer;
            };
            if self.write(i, &s, fields) {
                return answer;
            }
            // Another thread changed the entry since it was read: decide again.
        }
    }

    /// A reply (ARP reply, solicited NA) proves reachability: create or update →
    /// Reachable, updated = now, mac set. Static entries are never changed by the
    /// network (false). Also false if the table is full.
    pub fn confirm(&self, iface: u16, addr: u128, mac: [u8; 6], now: u64) -> bool {
        let key = Key::new(iface, addr);
        let home = self.home(&key);
        let fields = |sent| Fields {
            info: info(mac, REACHABLE, 0),
            updated: now,
            sent,
        };
        loop {
            let Some((i, s)) = self.find(&key, home) else {
                match self.create(&key, home, fields(0)) {
                    Created::New => return true,
                    Created::Exists => continue,
                    Created::Full => return false,
                }
            };
            if s.state() == STATIC {
                return false;
            }
            // Several replies in one clock tick: the line stays shared.
            if s.info == fields(s.sent).info && s.updated == now {
                return true;
            }
            if self.write(i, &s, fields(s.sent)) {
                return true;
            }
        }
    }

    /// Unconfirmed information (ARP request or gratuitous ARP from it, NS with SLLAO,
    /// unsolicited NA with override): absent → created Stale; Incomplete → Stale with
    /// mac; different mac → mac updated, Stale; same mac → unchanged. Statics
    /// untouched.
    pub fn notice(&self, iface: u16, addr: u128, mac: [u8; 6], now: u64) {
        let key = Key::new(iface, addr);
        let home = self.home(&key);
        let fields = |sent| Fields {
            info: info(mac, STALE, 0),
            updated: now,
            sent,
        };
        loop {
            let Some((i, s)) = self.find(&key, home) else {
                match self.create(&key, home, fields(0)) {
                    Created::Exists => continue,
                    Created::New | Created::Full => return,
                }
            };
            let unchanged = s.state() != INCOMPLETE && s.mac() == mac;
            if s.state() == STATIC || unchanged || self.write(i, &s, fields(s.sent)) {
                return;
            }
        }
    }

    /// Adds `mac` as a static entry, or makes an existing entry static with it. False
    /// only if no slot near the key's home is free.
    pub fn add_static(&self, iface: u16, addr: u128, mac: [u8; 6]) -> bool {
        let key = Key::new(iface, addr);
        let home = self.home(&key);
        let fields = Fields {
            info: info(mac, STATIC, 0),
            updated: 0,
            sent: 0,
        };
        loop {
            let Some((i, s)) = self.find(&key, home) else {
                match self.create(&key, home, fields) {
                    Created::New => return true,
                    Created::Exists => continue,
                    Created::Full => return false,
                }
            };
            if self.lock_slot(i, &s) {
                self.store_fields(i, fields);
                // Recounted while the slot is held, so that a deleter's decrement of
                // the static count comes after this increment.
                if s.state() != STATIC {
                    self.statics.fetch_add(1, Ordering::Relaxed);
                    self.dynamic.fetch_sub(1, Ordering::Relaxed);
                }
                self.unlock_slot(i, &s);
                return true;
            }
        }
    }

    /// Removes an entry, static or not (control path). False if there was none.
    pub fn remove(&self, iface: u16, addr: u128) -> bool {
        let key = Key::new(iface, addr);
        let home = self.home(&key);
        loop {
            let Some((i, s)) = self.find(&key, home) else {
                return false;
            };
            if self.delete(i, &s) {
                return true;
            }
        }
    }

    /// Removes non-static entries unconfirmed for STALE_GC_MS, and Incomplete ones that
    /// have Failed for more than RETRANS_MS*MAX_SOLICIT (so a later packet starts
    /// over). An Incomplete entry nobody has resolved for that long (its last
    /// solicitation RETRANS_MS*(MAX_SOLICIT+1) ago, though fewer than MAX_SOLICIT were
    /// sent) goes too: no packet can still be waiting for it. Returns how many were
    /// removed. An entry changed while it is being examined stays, for the next call.
    pub fn age(&self, now: u64) -> usize {
        let mut removed = 0;
        for i in 0..self.slots.len() {
            let s = self.read(i);
            let expired = match s.state() {
                _ if !s.is_live() => false,
                STATIC => false,
                INCOMPLETE => {
                    now.saturating_sub(s.sent) > RETRANS_MS * (u64::from(MAX_SOLICIT) + 1)
                }
                _ => now.saturating_sub(s.updated) >= STALE_GC_MS,
            };
            if expired && self.delete(i, &s) {
                removed += 1;
            }
        }
        removed
    }

    /// Every entry (for listing), in no particular order; allocates (control path).
    pub fn entries(&self) -> Vec<Entry> {
        (0..self.slots.len())
            .map(|i| self.read(i))
            .filter(Snap::is_live)
            .map(|s| s.entry())
            .collect()
    }

    /// The home slot of `key`.
    #[inline]
    fn home(&self, key: &Key) -> usize {
        // Two multiplications mix the address halves with the secret seed; MurmurHash3's
        // finalizer then spreads every input bit over the index bits.
        let a = (key.lo ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let b = (key.hi ^ key.tag ^ self.seed.rotate_left(32)).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        let mut h = a ^ b.rotate_left(31);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        h as usize & self.mask
    }

    /// A consistent snapshot of slot `i`.
    #[inline]
    fn read(&self, i: usize) -> Snap {
        let slot = &self.slots[i];
        let mut spins = 0;
        loop {
            let seq = slot.seq.load(Ordering::Acquire);
            if seq & 1 == 0 {
                let snap = Snap {
                    seq,
                    key: Key {
                        tag: slot.tag.load(Ordering::Relaxed),
                        hi: slot.hi.load(Ordering::Relaxed),
                        lo: slot.lo.load(Ordering::Relaxed),
                    },
                    info: slot.info.load(Ordering::Relaxed),
                    updated: slot.updated.load(Ordering::Relaxed),
                    sent: slot.sent.load(Ordering::Relaxed),
                };
                // Orders the field loads before the second counter load: if any of
                // them saw a writer's store, that load sees the writer's odd count.
                fence(Ordering::Acquire);
                if slot.seq.load(Ordering::Relaxed) == seq {
                    return snap;
                }
            }
            backoff(&mut spins);
        }
    }

    /// The slot holding `key`, searching its home's reach.
    #[inline]
    fn find(&self, key: &Key, home: usize) -> Option<(usize, Snap)> {
        let reach = self.slots[home].reach.load(Ordering::Acquire) as usize;
        (0..reach).find_map(|d| {
            let i = (home + d) & self.mask;
            let s = self.read(i);
            (s.key == *key).then_some((i, s))
        })
    }

    /// Takes slot `i` if it still holds exactly snapshot `s`.
    fn lock_slot(&self, i: usize, s: &Snap) -> bool {
        let slot = &self.slots[i];
        if slot
            .seq
            .compare_exchange(s.seq, s.seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Keeps the field stores below from becoming visible before the odd count.
        fence(Ordering::Release);
        true
    }

    fn unlock_slot(&self, i: usize, s: &Snap) {
        self.slots[i].seq.store(s.seq + 2, Ordering::Release);
    }

    fn store_fields(&self, i: usize, f: Fields) {
        let slot = &self.slots[i];
        slot.info.store(f.info, Ordering::Relaxed);
        slot.updated.store(f.updated, Ordering::Relaxed);
        slot.sent.store(f.sent, Ordering::Relaxed);
    }

    /// Replaces the entry in slot `i` if it is still as `s` shows it.
    fn write(&self, i: usize, s: &Snap, f: Fields) -> bool {
        if !self.lock_slot(i, s) {
            return false;
        }
        self.store_fields(i, f);
        self.unlock_slot(i, s);
        true
    }

    fn lock_home(&self, home: usize) -> HomeLock<'_> {
        let lock = &self.slots[home].lock;
        let mut spins = 0;
        loop {
            if lock.load(Ordering::Relaxed) == 0
                && lock
                    .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return HomeLock(lock);
            }
            backoff(&mut spins);
        }
    }

    /// Creates `key` with `f`, unless it exists or there is no room.
    #[cold]
    fn create(&self, key: &Key, home: usize, f: Fields) -> Created {
        let _guard = self.lock_home(home);
        // Another creator of this home may have finished while this one waited.
        if self.find(key, home).is_some() {
            return Created::Exists;
        }
        let is_static = (f.info >> 48) & 0xff == STATIC;
        let counter = if is_static {
            &self.statics
        } else {
            &self.dynamic
        };
        if !is_static && counter.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            counter.fetch_sub(1, Ordering::Relaxed);
            return Created::Full;
        }
        let mut d = 0;
        while d < self.window {
            let i = (home + d) & self.mask;
            let s = self.read(i);
            if s.is_live() {
                d += 1;
                continue;
            }
            // Creators of other homes compete for free slots; on losing, look again
            // at the same slot.
            if !self.lock_slot(i, &s) {
                continue;
            }
            // Before the key is visible: a reader that sees the key has a reach that
            // covers it; one with the old reach missed a key that did not exist yet.
            let reach = &self.slots[home].reach;
            if reach.load(Ordering::Relaxed) <= d as u32 {
                reach.store(d as u32 + 1, Ordering::Release);
            }
            let slot = &self.slots[i];
            slot.tag.store(key.tag, Ordering::Relaxed);
            slot.hi.store(key.hi, Ordering::Relaxed);
            slot.lo.store(key.lo, Ordering::Relaxed);
            self.store_fields(i, f);
            // Counted while the slot is held, so that a deleter's decrement comes after.
            if is_static {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            self.unlock_slot(i, &s);
            return Created::New;
        }
        if !is_static {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
        Created::Full
    }

    /// Empties slot `i` if it still holds exactly `s`, under its key's home lock.
    fn delete(&self, i: usize, s: &Snap) -> bool {
        let home = self.home(&s.key);
        let _guard = self.lock_home(home);
        if !self.lock_slot(i, s) {
            return false;
        }
        let slot = &self.slots[i];
        slot.tag.store(0, Ordering::Relaxed);
        slot.hi.store(0, Ordering::Relaxed);
        slot.lo.store(0, Ordering::Relaxed);
        self.store_fields(
            i,
            Fields {
                info: 0,
                updated: 0,
                sent: 0,
            },
        );
        self.unlock_slot(i, s);
        let counter = if s.state() == STATIC {
            &self.statics
        } else {
            &self.dynamic
        };
        counter.fetch_sub(1, Ordering::Relaxed);
        let d = (i.wrapping_sub(home) & self.mask) as u32;
        if d + 1 >= self.slots[home].reach.load(Ordering::Relaxed) {
            self.shrink_reach(home);
        }
        true
    }

    /// Sets a home's reach to just past its farthest key; the home lock is held.
    fn shrink_reach(&self, home: usize) {
        let reach = &self.slots[home].reach;
        let old = reach.load(Ordering::Relaxed) as usize;
        let new = (0..old)
            .rev()
            .find(|&d| {
                let s = self.read((home + d) & self.mask);
                s.is_live() && self.home(&s.key) == home
            })
            .map_or(0, |d| d + 1);
        reach.store(new as u32, Ordering::Release);
    }
}

/// What `resolve` answers for snapshot `s`, and the fields to write (with the
/// snapshot's sequence number, so that one caller wins) if the answer records a
/// solicitation or probe.
#[inline]
fn decide(s: &Snap, now: u64) -> (Resolve, Option<Fields>) {
    let since_sent = now.saturating_sub(s.sent);
    match s.state() {
        INCOMPLETE if since_sent < RETRANS_MS => (Resolve::Wait, None),
        INCOMPLETE if s.solicits() >= MAX_SOLICIT => (Resolve::Failed, None),
        INCOMPLETE => (
            Resolve::Solicit,
            Some(Fields {
                info: info([0; 6], INCOMPLETE, s.solicits() + 1),
                updated: s.updated,
                sent: now,
            }),
        ),
        STATIC => (Resolve::Mac(s.mac()), None),
        _ if now.saturating_sub(s.updated) >= REACHABLE_MS && since_sent >= RETRANS_MS => (
            Resolve::MacAndProbe(s.mac()),
            Some(Fields {
                info: s.info,
                updated: s.updated,
                sent: now,
            }),
        ),
        _ => (Resolve::Mac(s.mac()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SplitMix64;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const MAC2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    fn ip(n: u32) -> u128 {
        v4_key(0x0a00_0000 | n)
    }

    fn state(t: &Neighbors, addr: u128) -> Option<State> {
        t.lookup(1, addr).map(|e| e.state)
    }

    #[test]
    fn usable_answers_like_resolve_without_recording_anything() {
        let t = Neighbors::new(16);
        let mac = [2, 0, 0, 0, 0, 9];
        assert_eq!(t.usable(1, 9, 0), None);
        assert!(t.lookup(1, 9).is_none(), "a look creates no entry");
        // The one asking after it still gets to solicit.
        assert_eq!(t.resolve(1, 9, 0), Resolve::Solicit);
        assert_eq!(t.usable(1, 9, 10), None, "incomplete");
        t.confirm(1, 9, mac, 20);
        assert_eq!(t.usable(1, 9, 30), Some(mac));
        // Due for a probe: not usable without one, and the probe is still there to claim.
        let late = 20 + REACHABLE_MS + RETRANS_MS;
        assert_eq!(t.usable(1, 9, late), None);
        assert_eq!(t.resolve(1, 9, late), Resolve::MacAndProbe(mac));
    }

    #[test]
    fn v4_keys_are_mapped_addresses() {
        assert_eq!(
            v4_key(0xc000_0201),
            0x0000_0000_0000_0000_0000_ffff_c000_0201
        );
        let t = Neighbors::new(16);
        assert!(t.confirm(1, v4_key(0xc000_0201), MAC, 5));
        // The same bits as an IPv6 key are the same entry; another interface is not.
        assert_eq!(t.lookup(1, 0xffff_c000_0201).unwrap().mac, MAC);
        assert!(t.lookup(2, v4_key(0xc000_0201)).is_none());
        let e = t.lookup(1, v4_key(0xc000_0201)).unwrap();
        assert_eq!(
            (e.iface, e.addr, e.state, e.updated),
            (1, v4_key(0xc000_0201), State::Reachable, 5)
        );
    }

    #[test]
    fn unknown_address_solicits_then_waits_then_retries_then_fails() {
        let t = Neighbors::new(16);
        let a = ip(1);
        assert_eq!(t.resolve(1, a, 10_000), Resolve::Solicit);
        let e = t.lookup(1, a).unwrap();
        assert_eq!(
            (e.state, e.mac, e.updated),
            (State::Incomplete, [0; 6], 10_000)
        );
        assert_eq!(t.resolve(1, a, 10_000), Resolve::Wait);
        assert_eq!(t.resolve(1, a, 10_999), Resolve::Wait);
        assert_eq!(t.resolve(1, a, 11_000), Resolve::Solicit);
        assert_eq!(t.resolve(1, a, 11_000), Resolve::Wait);
        assert_eq!(t.resolve(1, a, 12_500), Resolve::Solicit);
        assert!(!t.failed(1, a, 12_500));
        // Three sent: the next RETRANS_MS is the last wait.
        assert_eq!(t.resolve(1, a, 13_499), Resolve::Wait);
        assert_eq!(t.resolve(1, a, 13_500), Resolve::Failed);
        assert!(t.failed(1, a, 13_500));
        assert_eq!(t.resolve(1, a, 20_000), Resolve::Failed);
        // Time going backwards only means waiting.
        assert_eq!(t.resolve(1, a, 0), Resolve::Wait);
    }

    #[test]
    fn a_reply_completes_an_incomplete_entry() {
        let t = Neighbors::new(16);
        let a = ip(2);
        assert_eq!(t.resolve(1, a, 100), Resolve::Solicit);
        assert!(t.confirm(1, a, MAC, 150));
        let e = t.lookup(1, a).unwrap();
        assert_eq!((e.state, e.mac, e.updated), (State::Reachable, MAC, 150));
        assert_eq!(t.resolve(1, a, 200), Resolve::Mac(MAC));
        // A new address from a reply: a new entry (the table does not know it was not
        // asked for).
        assert!(t.confirm(1, ip(3), MAC2, 300));
        assert_eq!(state(&t, ip(3)), Some(State::Reachable));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn notice_creates_stale_and_updates_only_on_change() {
        let t = Neighbors::new(16);
        let a = ip(4);
        t.notice(1, a, MAC, 100);
        let e = t.lookup(1, a).unwrap();
        assert_eq!((e.state, e.mac, e.updated), (State::Stale, MAC, 100));
        assert_eq!(t.resolve(1, a, 101), Resolve::Mac(MAC));
        // Same address again: nothing changes, not even the time.
        t.notice(1, a, MAC, 200);
        assert_eq!(t.lookup(1, a).unwrap().updated, 100);
        // A Reachable entry with the same address stays Reachable.
        t.confirm(1, a, MAC, 300);
        t.notice(1, a, MAC, 400);
        let e = t.lookup(1, a).unwrap();
        assert_eq!((e.state, e.updated), (State::Reachable, 300));
        // A different address replaces it, unconfirmed.
        t.notice(1, a, MAC2, 500);
        let e = t.lookup(1, a).unwrap();
        assert_eq!((e.state, e.mac, e.updated), (State::Stale, MAC2, 500));
        // An Incomplete entry learns its address from a notice.
        let b = ip(5);
        assert_eq!(t.resolve(1, b, 600), Resolve::Solicit);
        t.notice(1, b, MAC, 700);
        let e = t.lookup(1, b).unwrap();
        assert_eq!((e.state, e.mac, e.updated), (State::Stale, MAC, 700));
        assert_eq!(t.resolve(1, b, 701), Resolve::Mac(MAC));
    }

    #[test]
    fn unconfirmed_entries_are_probed_once_per_retransmit_interval() {
        let t = Neighbors::new(16);
        let a = ip(6);
        t.confirm(1, a, MAC, 1_000);
        assert_eq!(t.resolve(1, a, 1_000 + REACHABLE_MS - 1), Resolve::Mac(MAC));
        let due = 1_000 + REACHABLE_MS;
        assert_eq!(t.resolve(1, a, due), Resolve::MacAndProbe(MAC));
        assert_eq!(t.resolve(1, a, due), Resolve::Mac(MAC));
        assert_eq!(t.resolve(1, a, due + RETRANS_MS - 1), Resolve::Mac(MAC));
        assert_eq!(t.resolve(1, a, due + RETRANS_MS), Resolve::MacAndProbe(MAC));
        // The reply confirms it: no more probes for REACHABLE_MS.
        t.confirm(1, a, MAC, due + 1_500);
        assert_eq!(t.resolve(1, a, due + 5_000), Resolve::Mac(MAC));
        // Stale entries are probed the same way.
        let b = ip(7);
        t.notice(1, b, MAC2, 0);
        assert_eq!(t.resolve(1, b, REACHABLE_MS), Resolve::MacAndProbe(MAC2));
        assert_eq!(t.lookup(1, b).unwrap().state, State::Stale);
    }

    #[test]
    fn a_hit_writes_nothing() {
        let t = Neighbors::new(16);
        let a = ip(8);
        t.confirm(1, a, MAC, 0);
        let key = Key::new(1, a);
        let (i, before) = t.find(&key, t.home(&key)).unwrap();
        for now in 0..1_000 {
            assert_eq!(t.resolve(1, a, now), Resolve::Mac(MAC));
        }
        let after = t.read(i);
        assert_eq!(
            (before.seq, before.info, before.updated, before.sent),
            (after.seq, after.info, after.updated, after.sent)
        );
    }

    #[test]
    fn statics_are_immune_to_the_network_and_to_ageing() {
        let t = Neighbors::new(16);
        let a = ip(9);
        assert!(t.add_static(1, a, MAC));
        assert!(!t.confirm(1, a, MAC2, 10));
        t.notice(1, a, MAC2, 20);
        assert_eq!(t.age(u64::MAX), 0);
        let e = t.lookup(1, a).unwrap();
        assert_eq!((e.state, e.mac), (State::Static, MAC));
        assert_eq!(t.resolve(1, a, u64::MAX), Resolve::Mac(MAC));
        // A learnt entry made static moves between the counts.
        let b = ip(10);
        t.notice(1, b, MAC2, 0);
        assert!(t.add_static(1, b, MAC));
        assert_eq!(t.lookup(1, b).unwrap().state, State::Static);
        assert_eq!((t.len(), t.dynamic.load(Ordering::Relaxed)), (2, 0));
        assert!(t.remove(1, b));
        assert!(!t.remove(1, b));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn ageing_removes_old_unconfirmed_and_failed_entries() {
        let t = Neighbors::new(64);
        t.confirm(1, ip(1), MAC, 0);
        t.notice(1, ip(2), MAC, 100_000);
        t.add_static(1, ip(3), MAC);
        assert_eq!(t.age(STALE_GC_MS - 1), 0);
        assert_eq!(t.age(STALE_GC_MS), 1);
        assert_eq!(state(&t, ip(1)), None);
        assert_eq!(state(&t, ip(2)), Some(State::Stale));

        // An Incomplete entry that failed is removed RETRANS_MS*MAX_SOLICIT after it
        // failed, and a later packet starts over.
        let base = 1_000_000;
        let a = ip(4);
        assert_eq!(t.resolve(1, a, base), Resolve::Solicit);
        assert_eq!(t.resolve(1, a, base + 1_000), Resolve::Solicit);
        assert_eq!(t.resolve(1, a, base + 2_000), Resolve::Solicit);
        assert_eq!(t.resolve(1, a, base + 3_000), Resolve::Failed);
        let gone = base + 2_000 + RETRANS_MS + RETRANS_MS * u64::from(MAX_SOLICIT);
        assert_eq!(t.age(gone), 1, "ip(2) is stale at {gone}");
        assert_eq!(state(&t, ip(2)), None);
        assert_eq!(state(&t, a), Some(State::Incomplete));
        assert_eq!(t.age(gone + 1), 1);
        assert_eq!(state(&t, a), None);
        assert_eq!(t.resolve(1, a, gone + 2), Resolve::Solicit);
        // One nobody asked about again goes after the same time.
        let b = ip(5);
        assert_eq!(t.resolve(1, b, base), Resolve::Solicit);
        assert_eq!(t.age(base + 4_000), 0);
        assert_eq!(t.age(base + 4_001), 1);
        // Time going backwards removes nothing.
        assert_eq!(t.age(0), 0);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn full_at_capacity_and_statics_beyond_it() {
        let t = Neighbors::new(64);
        assert_eq!(t.capacity(), 64);
        for n in 0..64 {
            assert_eq!(t.resolve(1, ip(n), 0), Resolve::Solicit, "{n}");
        }
        assert_eq!(t.resolve(1, ip(64), 0), Resolve::Full);
        assert!(!t.confirm(1, ip(65), MAC, 0));
        t.notice(1, ip(66), MAC, 0);
        assert!(t.lookup(1, ip(66)).is_none());
        // Existing entries still answer and update.
        assert_eq!(t.resolve(1, ip(3), 0), Resolve::Wait);
        assert!(t.confirm(1, ip(3), MAC, 1));
        // Configuration is not refused because the network filled the table.
        assert!(t.add_static(1, ip(1000), MAC));
        assert_eq!(t.len(), 65);
        // Room again after ageing.
        assert_eq!(t.age(10_000), 63);
        assert_eq!(t.resolve(1, ip(64), 10_000), Resolve::Solicit);
        assert_eq!(Neighbors::new(0).capacity(), 8);
        assert_eq!(Neighbors::new(100).capacity(), 128);
    }

    /// Keys of interface 1 whose home is `home`, found by trying addresses.
    fn colliding(t: &Neighbors, home: usize, count: usize) -> Vec<u128> {
        (0u32..)
            .map(ip)
            .filter(|&a| t.home(&Key::new(1, a)) == home)
            .take(count)
            .collect()
    }

    #[test]
    fn long_probe_chains_survive_delete_and_reinsert() {
        let t = Neighbors::new(128);
        let home = 250; // near the end of the 256 slots: the chain wraps around
        let keys = colliding(&t, home, 20);
        for (n, &a) in keys.iter().enumerate() {
            assert!(t.confirm(1, a, [2, 0, 0, 0, 0, n as u8], 0));
        }
        assert_eq!(t.slots[home].reach.load(Ordering::Relaxed), 20);
        let find = |a: u128| t.lookup(1, a).map(|e| e.mac[5]);
        // Holes in the middle do not cut the chain.
        for n in [0, 3, 7, 12] {
            assert!(t.remove(1, keys[n]));
        }
        for (n, &a) in keys.iter().enumerate() {
            let expect = (![0, 3, 7, 12].contains(&n)).then_some(n as u8);
            assert_eq!(find(a), expect, "key {n}");
        }
        // Removing the farthest shortens the reach to the next live key.
        assert!(t.remove(1, keys[19]));
        assert_eq!(t.slots[home].reach.load(Ordering::Relaxed), 19);
        assert!(t.remove(1, keys[18]));
        assert!(t.remove(1, keys[17]));
        assert_eq!(t.slots[home].reach.load(Ordering::Relaxed), 17);
        // Reinserted keys fill the holes, are found, and exist once.
        for n in [19, 3, 0, 7] {
            assert!(t.confirm(1, keys[n], [2, 0, 0, 0, 0, n as u8], 1));
        }
        for n in [19, 3, 0, 7] {
            assert_eq!(find(keys[n]), Some(n as u8));
        }
        assert_eq!(t.slots[home].reach.load(Ordering::Relaxed), 17);
        // A key of another home inside the chain takes the first free slot after it.
        let other = colliding(&t, (home + 5) & t.mask, 1)[0];
        assert!(t.confirm(1, other, MAC2, 2));
        assert_eq!(find(other), Some(MAC2[5]));
        let listed: HashSet<u128> = t.entries().iter().map(|e| e.addr).collect();
        assert_eq!(listed.len(), t.entries().len());
        assert_eq!(t.len(), t.entries().len());
        assert_eq!(t.len(), 20 - 7 + 4 + 1);
        // Everything removed: every reach returns to zero.
        for a in keys.iter().chain([&other]) {
            t.remove(1, *a);
        }
        assert!(t.is_empty());
        assert!(t.slots.iter().all(|s| s.reach.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn a_full_probe_window_refuses_new_keys() {
        let t = Neighbors::new(128);
        let keys = colliding(&t, 0, MAX_PROBE + 1);
        for &a in &keys[..MAX_PROBE] {
            assert_eq!(t.resolve(1, a, 0), Resolve::Solicit);
        }
        assert_eq!(t.resolve(1, keys[MAX_PROBE], 0), Resolve::Full);
        assert_eq!(t.len(), MAX_PROBE);
        assert!(t.remove(1, keys[10]));
        assert_eq!(t.resolve(1, keys[MAX_PROBE], 0), Resolve::Solicit);
    }

    /// Runs rounds of `resolve` on one thread per processor (two to four), started
    /// together: they meet at a spinning barrier (a sleeping one would wake them one by
    /// one, too far apart to race), resolve `addr(round)` at `now(round)` a few times
    /// each, and meet again. The first thread runs `setup(round)` before the round.
    /// Returns each round's answers.
    fn race(
        t: &Arc<Neighbors>,
        rounds: u32,
        addr: fn(u32) -> u128,
        now: fn(u32) -> u64,
        setup: fn(&Neighbors, u32),
    ) -> Vec<Vec<Resolve>> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        let arrived = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let (t, arrived) = (t.clone(), arrived.clone());
                std::thread::spawn(move || {
                    let meet = |generation: u64| {
                        arrived.fetch_add(1, Ordering::AcqRel);
                        // Spin without yielding for a while: a thread returning from a
                        // yield would start late.
                        let mut spins = 0u32;
                        while arrived.load(Ordering::Acquire) < generation * threads as u64 {
                            spins += 1;
                            if spins < 1 << 14 {
                                std::hint::spin_loop();
                            } else {
                                std::thread::yield_now();
                            }
                        }
                    };
                    let mut answers = Vec::new();
                    for r in 0..rounds {
                        if w == 0 {
                            setup(&t, r);
                        }
                        meet(2 * u64::from(r) + 1);
                        let (a, n) = (addr(r), now(r));
                        answers.push((0..5).map(|_| t.resolve(1, a, n)).collect::<Vec<_>>());
                        meet(2 * u64::from(r) + 2);
                    }
                    answers
                })
            })
            .collect();
        let per_thread: Vec<Vec<Vec<Resolve>>> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        (0..rounds as usize)
            .map(|r| per_thread.iter().flat_map(|a| a[r].clone()).collect())
            .collect()
    }

    fn count(answers: &[Resolve], want: Resolve) -> usize {
        answers.iter().filter(|&&r| r == want).count()
    }

    #[test]
    fn exactly_one_concurrent_caller_solicits_or_probes() {
        // Round 3k creates key k, 3k+1 retransmits, 3k+2 probes it once confirmed.
        const KEYS: u32 = 2_000;
        let t = Arc::new(Neighbors::new(4096));
        let answers = race(
            &t,
            KEYS * 3,
            |r| ip(r / 3),
            |r| {
                u64::from(r / 3) * 1_000_000 + [0, RETRANS_MS, 2_000 + REACHABLE_MS][r as usize % 3]
            },
            |t, r| {
                if r % 3 == 2 {
                    t.confirm(1, ip(r / 3), MAC, u64::from(r / 3) * 1_000_000 + 2_000);
                }
            },
        );
        for (r, a) in answers.iter().enumerate() {
            let (want, rest) = match r % 3 {
                0 | 1 => (Resolve::Solicit, Resolve::Wait),
                _ => (Resolve::MacAndProbe(MAC), Resolve::Mac(MAC)),
            };
            assert_eq!(count(a, want), 1, "round {r}: {a:?}");
            assert_eq!(count(a, rest), a.len() - 1, "round {r}: {a:?}");
        }
        assert_eq!(t.len(), KEYS as usize);
    }

    /// Readers racing the reuse of a few slots by other keys: a torn read would pair
    /// one key with another's MAC (or with the zeros of a slot being emptied).
    #[test]
    fn slot_reuse_never_shows_a_torn_entry() {
        const KEYS: u32 = 24;
        let t = Arc::new(Neighbors::new(8)); // 16 slots, so every key reuses them
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = SplitMix64(7);
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = rng.below(KEYS);
                    let (iface, addr) = key_of(n);
                    if let Some(e) = t.lookup(iface, addr) {
                        assert_eq!((e.iface, e.addr), (iface, addr));
                        assert_eq!(e.state, State::Reachable, "key {n}");
                        assert_eq!(e.mac[..5], mac_for(n, 0)[..5], "key {n}");
                        seen += 1;
                    }
                }
                seen
            })
        };
        let mut rng = SplitMix64(8);
        for now in 0..300_000 {
            let n = rng.below(KEYS);
            let (iface, addr) = key_of(n);
            if !t.remove(iface, addr) {
                t.confirm(iface, addr, mac_for(n, now as u8), now);
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(t.len(), t.entries().len());
    }

    /// The MAC written for key `n`: the key in the first bytes, a variant in the last,
    /// so that a reader can tell a MAC written for another key.
    fn mac_for(n: u32, variant: u8) -> [u8; 6] {
        let b = n.to_be_bytes();
        [0x02, b[1], b[2], b[3], 0x5e, variant]
    }

    fn key_of(n: u32) -> (u16, u128) {
        let iface = (n % 3) as u16;
        let addr = if n & 1 == 0 {
            ip(n)
        } else {
            0x2001_0db8_0000_0000_0000_0000_0000_0000 | u128::from(n)
        };
        (iface, addr)
    }

    #[test]
    fn concurrent_writers_ager_and_readers_never_mix_up_keys() {
        const KEYS: u32 = 400; // more than the capacity: some creations find it full
        let t = Arc::new(Neighbors::new(256));
        let clock = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for w in 0..3u64 {
            let (t, clock) = (t.clone(), clock.clone());
            handles.push(std::thread::spawn(move || {
                let mut rng = SplitMix64(w);
                for _ in 0..200_000 {
                    let n = rng.below(KEYS);
                    let (iface, addr) = key_of(n);
                    let now = clock.fetch_add(1, Ordering::Relaxed);
                    let mac = mac_for(n, rng.u32() as u8);
                    match rng.below(8) {
                        0..=2 => {
                            t.confirm(iface, addr, mac, now);
                        }
                        3..=5 => t.notice(iface, addr, mac, now),
                        6 => {
                            t.resolve(iface, addr, now);
                        }
                        _ => {
                            t.remove(iface, addr);
                        }
                    }
                }
            }));
        }
        let checks = Arc::new(AtomicU64::new(0));
        for r in 0..3u64 {
            let (t, clock, stop, checks) = (t.clone(), clock.clone(), stop.clone(), checks.clone());
            handles.push(std::thread::spawn(move || {
                let mut rng = SplitMix64(100 + r);
                while !stop.load(Ordering::Relaxed) {
                    let n = rng.below(KEYS);
                    let (iface, addr) = key_of(n);
                    let now = clock.load(Ordering::Relaxed);
                    match t.resolve(iface, addr, now) {
                        Resolve::Mac(m) | Resolve::MacAndProbe(m) => {
                            assert_eq!(m[..5], mac_for(n, 0)[..5], "key {n}");
                            checks.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                    if let Some(e) = t.lookup(iface, addr) {
                        assert_eq!((e.iface, e.addr), (iface, addr));
                        if e.state != State::Incomplete {
                            assert_eq!(e.mac[..5], mac_for(n, 0)[..5], "key {n}");
                        }
                    }
                }
            }));
        }
        let ager = {
            let (t, clock, stop) = (t.clone(), clock.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Ages as if time ran fast, so that entries do get removed.
                    t.age(clock.load(Ordering::Relaxed) * 50);
                }
            })
        };
        let writers: Vec<_> = handles.drain(..3).collect();
        for h in writers {
            h.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        ager.join().unwrap();
        assert!(checks.load(Ordering::Relaxed) > 0);
        // No key exists twice, and the counts match the slots.
        let entries = t.entries();
        let distinct: HashSet<(u16, u128)> = entries.iter().map(|e| (e.iface, e.addr)).collect();
        assert_eq!(distinct.len(), entries.len());
        assert_eq!(t.len(), entries.len());
        assert!(t.len() <= t.capacity());
        // Every entry is where a search finds it.
        for e in &entries {
            assert!(t.lookup(e.iface, e.addr).is_some());
        }
    }
}
