//! Packets waiting for their next hop's MAC address, per worker.
//!
//! When [`Neighbors::resolve`] answers `Solicit` or `Wait`, the worker holds the packet
//! here instead of dropping it, as Linux queues packets on an unresolved neighbor (its
//! `unres_qlen`): the first packets of a flow (a TCP SYN, a DNS query) would otherwise
//! be lost and retransmitted only after a timeout of a second or more. The worker polls
//! the queue while it is not empty; packets go out as soon as the address is known and
//! are dropped when resolution fails or takes longer than [`HOLD_MS`]. The polling also
//! repeats the solicitation every `RETRANS_MS` while packets wait, as Linux's neighbor
//! timer does, so that a lost request or reply costs a second, not the packets.
//!
//! Everything is in fixed arrays owned by one worker: no allocation, no atomics, and
//! searches are linear over [`NEIGHBORS`] entries, which only packets to unresolved
//! addresses pay.

use packet::{Packet, Pool};

use super::neighbor::{Neighbors, Resolve, State};

/// Distinct addresses held at once per worker.
pub const NEIGHBORS: usize = 64;
/// Packets held per address (the oldest is dropped when one more arrives, as Linux's
/// `unres_qlen`).
pub const PER_NEIGHBOR: usize = 4;
/// Longest a packet is held.
pub const HOLD_MS: u64 = 3_000;

#[derive(Debug)]
pub enum Released {
    /// The neighbor resolved: send `pkt` to `mac` on `iface`.
    Ready {
        iface: u16,
        mac: [u8; 6],
        pkt: Packet,
    },
    /// Resolution failed or took too long: the caller frees `pkt` and counts a drop,
    /// and may tell the sender (ICMP host / address unreachable) through router
    /// interface `from`, where the packet came in.
    Expired { pkt: Packet, from: u16 },
    /// Packets still wait for `addr` on `iface` and its solicitation is due again: the
    /// caller sends one (the neighbor table has recorded it, so one worker does).
    Ask { iface: u16, addr: u128 },
}

/// The packets held for one address, oldest first, in a ring.
#[derive(Default)]
struct Queue {
    used: bool,
    iface: u16,
    addr: u128,
    head: usize,
    len: usize,
    pkts: [Option<Packet>; PER_NEIGHBOR],
    /// Arrival time of each packet (ms).
    since: [u64; PER_NEIGHBOR],
    /// Arrival number of each packet, across all queues: the release order.
    order: [u64; PER_NEIGHBOR],
    /// Router interface each packet came in on.
    from: [u16; PER_NEIGHBOR],
}

impl Queue {
    /// Appends `pkt`; if the queue was full, returns the oldest packet it displaced.
    fn push(&mut self, pkt: Packet, now: u64, order: u64, from: u16) -> Option<(Packet, u16)> {
        let dropped = if self.len == PER_NEIGHBOR {
            self.pop()
        } else {
            None
        };
        let at = (self.head + self.len) % PER_NEIGHBOR;
        self.pkts[at] = Some(pkt);
        self.since[at] = now;
        self.order[at] = order;
        self.from[at] = from;
        self.len += 1;
        dropped
    }

    /// The oldest packet and the interface it came in on.
    fn pop(&mut self) -> Option<(Packet, u16)> {
        if self.len == 0 {
            return None;
        }
        let at = self.head;
        self.head = (self.head + 1) % PER_NEIGHBOR;
        self.len -= 1;
        self.pkts[at].take().map(|p| (p, self.from[at]))
    }

    /// The oldest packet, if it has waited `HOLD_MS`.
    fn pop_expired(&mut self, now: u64) -> Option<(Packet, u16)> {
        if self.len > 0 && now.saturating_sub(self.since[self.head]) >= HOLD_MS {
            self.pop()
        } else {
            None
        }
    }

    fn head_order(&self) -> Option<u64> {
        (self.len > 0).then(|| self.order[self.head])
    }
}

/// What `poll` found for a queue's address.
#[derive(Clone, Copy)]
enum Verdict {
    Ready([u8; 6]),
    Waiting,
    Failed,
}

/// The packets a worker holds for unresolved neighbors.
pub struct Pending {
    queues: [Queue; NEIGHBORS],
    used: usize,
    next_order: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Self::new()
    }
}

impl Pending {
    pub fn new() -> Pending {
        Pending {
            queues: std::array::from_fn(|_| Queue::default()),
            used: 0,
            next_order: 0,
        }
    }

    /// Holds `pkt`, which came in on router interface `from`, for (iface, addr).
    /// Returns a packet the caller must free and count as dropped: the oldest held for
    /// that address when its queue is full, or `pkt` itself when all NEIGHBORS slots
    /// are busy with other addresses.
    pub fn hold(
        &mut self,
        iface: u16,
        addr: u128,
        pkt: Packet,
        now: u64,
        from: u16,
    ) -> Option<Packet> {
        let order = self.next_order;
        self.next_order += 1;
        if let Some(q) = self
            .queues
            .iter_mut()
            .find(|q| q.used && q.iface == iface && q.addr == addr)
        {
            return q.push(pkt, now, order, from).map(|(p, _)| p);
        }
        let Some(q) = self.queues.iter_mut().find(|q| !q.used) else {
            return Some(pkt);
        };
        q.used = true;
        q.iface = iface;
        q.addr = addr;
        self.used += 1;
        q.push(pkt, now, order, from).map(|(p, _)| p)
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Called from the worker's poll loop while not empty: releases every packet whose
    /// neighbor now resolves to a MAC (Reachable, Stale or Static), in arrival order
    /// (across addresses too), expires those whose neighbor is gone or failed, or that
    /// waited HOLD_MS, and asks again for neighbors whose solicitation is due.
    pub fn poll(&mut self, neighbors: &Neighbors, now: u64, out: &mut dyn FnMut(Released)) {
        let mut verdicts = [Verdict::Waiting; NEIGHBORS];
        for (q, v) in self.queues.iter_mut().zip(verdicts.iter_mut()) {
            if !q.used {
                continue;
            }
            *v = match neighbors.lookup(q.iface, q.addr) {
                Some(e) if e.state != State::Incomplete => Verdict::Ready(e.mac),
                // Incomplete: `resolve` says whether a solicitation is due (and to
                // exactly one asker among the workers) or resolution has failed.
                Some(_) => match neighbors.resolve(q.iface, q.addr, now) {
                    Resolve::Mac(mac) | Resolve::MacAndProbe(mac) => Verdict::Ready(mac),
                    Resolve::Solicit => {
                        out(Released::Ask {
                            iface: q.iface,
                            addr: q.addr,
                        });
                        Verdict::Waiting
                    }
                    Resolve::Wait => Verdict::Waiting,
                    Resolve::Failed | Resolve::Full => Verdict::Failed,
                },
                None => Verdict::Failed,
            };
            match v {
                Verdict::Ready(_) => {}
                Verdict::Waiting => {
                    while let Some((pkt, from)) = q.pop_expired(now) {
                        out(Released::Expired { pkt, from });
                    }
                }
                Verdict::Failed => {
                    while let Some((pkt, from)) = q.pop() {
                        out(Released::Expired { pkt, from });
                    }
                }
            }
        }
        self.release_ready(&verdicts, out);
        for q in self.queues.iter_mut().filter(|q| q.used && q.len == 0) {
            q.used = false;
            self.used -= 1;
        }
    }

    /// Sends the packets of every ready queue, oldest arrival first: a merge of the
    /// queues by their heads (at most NEIGHBORS * PER_NEIGHBOR packets, rarely more
    /// than a few).
    fn release_ready(&mut self, verdicts: &[Verdict; NEIGHBORS], out: &mut dyn FnMut(Released)) {
        loop {
            let next = self
                .queues
                .iter()
                .zip(verdicts)
                .enumerate()
                .filter_map(|(i, (q, v))| match v {
                    Verdict::Ready(mac) => q.head_order().map(|o| (o, i, *mac)),
                    _ => None,
                })
                .min_by_key(|&(o, _, _)| o);
            let Some((_, i, mac)) = next else {
                return;
            };
            let q = &mut self.queues[i];
            if let Some((pkt, _)) = q.pop() {
                out(Released::Ready {
                    iface: q.iface,
                    mac,
                    pkt,
                });
            }
        }
    }

    /// Frees every held packet (worker shutdown).
    pub fn clear(&mut self, pool: &mut Pool) {
        for q in self.queues.iter_mut().filter(|q| q.used) {
            while let Some((pkt, _)) = q.pop() {
                pool.free(pkt);
            }
            q.used = false;
        }
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::neighbor::{v4_key, Resolve, MAX_SOLICIT, RETRANS_MS};

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const MAC2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    /// A packet whose one byte of data names it.
    fn packet(pool: &mut Pool, tag: u8) -> Packet {
        let mut p = pool.alloc().unwrap();
        p.room_mut()[0] = tag;
        assert!(p.set_len(1));
        p
    }

    fn tag(p: &Packet) -> u8 {
        p.data()[0]
    }

    /// Polls, returning (ready tags with their iface and mac, expired tags), and frees
    /// every released packet.
    #[allow(clippy::type_complexity)]
    fn poll(
        pending: &mut Pending,
        n: &Neighbors,
        now: u64,
        pool: &mut Pool,
    ) -> (Vec<(u8, u16, [u8; 6])>, Vec<u8>) {
        let mut ready = Vec::new();
        let mut expired = Vec::new();
        let mut freed = Vec::new();
        pending.poll(n, now, &mut |r| match r {
            Released::Ready { iface, mac, pkt } => {
                ready.push((tag(&pkt), iface, mac));
                freed.push(pkt);
            }
            Released::Expired { pkt, .. } => {
                expired.push(tag(&pkt));
                freed.push(pkt);
            }
            Released::Ask { .. } => {}
        });
        for p in freed {
            pool.free(p);
        }
        (ready, expired)
    }

    fn addr(n: u32) -> u128 {
        v4_key(0x0a00_0000 | n)
    }

    #[test]
    fn holds_until_resolved_then_releases_in_arrival_order() {
        let mut pool = Pool::new(16).unwrap();
        let n = Neighbors::new(16);
        let mut pending = Pending::new();
        assert!(pending.is_empty());
        assert_eq!(n.resolve(1, addr(1), 0), Resolve::Solicit);
        assert_eq!(n.resolve(2, addr(2), 0), Resolve::Solicit);
        // Interleaved arrivals for two addresses.
        for (t, a) in [(1, 1), (2, 2), (3, 1), (4, 2), (5, 1)] {
            let p = packet(&mut pool, t);
            assert!(pending.hold(a as u16, addr(a), p, 10, 0).is_none());
        }
        assert!(!pending.is_empty());
        // Nothing resolved yet: nothing moves.
        assert_eq!(poll(&mut pending, &n, 20, &mut pool), (vec![], vec![]));
        n.confirm(1, addr(1), MAC, 30);
        n.notice(2, addr(2), MAC2, 30);
        let (ready, expired) = poll(&mut pending, &n, 40, &mut pool);
        assert!(expired.is_empty());
        assert_eq!(
            ready,
            vec![
                (1, 1, MAC),
                (2, 2, MAC2),
                (3, 1, MAC),
                (4, 2, MAC2),
                (5, 1, MAC)
            ]
        );
        assert!(pending.is_empty());
        assert_eq!(pool.available(), 16);
    }

    #[test]
    fn releases_only_resolved_addresses() {
        let mut pool = Pool::new(16).unwrap();
        let n = Neighbors::new(16);
        let mut pending = Pending::new();
        n.resolve(1, addr(1), 0);
        n.resolve(1, addr(2), 0);
        pending.hold(1, addr(1), packet(&mut pool, 1), 0, 0);
        pending.hold(1, addr(2), packet(&mut pool, 2), 0, 0);
        n.add_static(1, addr(2), MAC2);
        assert_eq!(
            poll(&mut pending, &n, 5, &mut pool),
            (vec![(2, 1, MAC2)], vec![])
        );
        assert!(!pending.is_empty());
        // The same address on another interface is another neighbor.
        n.confirm(2, addr(1), MAC, 6);
        assert_eq!(poll(&mut pending, &n, 7, &mut pool), (vec![], vec![]));
        n.confirm(1, addr(1), MAC, 8);
        assert_eq!(
            poll(&mut pending, &n, 9, &mut pool),
            (vec![(1, 1, MAC)], vec![])
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn a_full_queue_drops_its_oldest() {
        let mut pool = Pool::new(16).unwrap();
        let n = Neighbors::new(16);
        let mut pending = Pending::new();
        n.resolve(1, addr(1), 0);
        for t in 0..PER_NEIGHBOR as u8 {
            assert!(pending
                .hold(1, addr(1), packet(&mut pool, t), 0, 0)
                .is_none());
        }
        let dropped = pending
            .hold(1, addr(1), packet(&mut pool, 100), 0, 0)
            .unwrap();
        assert_eq!(tag(&dropped), 0);
        pool.free(dropped);
        let dropped = pending
            .hold(1, addr(1), packet(&mut pool, 101), 0, 0)
            .unwrap();
        assert_eq!(tag(&dropped), 1);
        pool.free(dropped);
        n.confirm(1, addr(1), MAC, 1);
        let (ready, _) = poll(&mut pending, &n, 2, &mut pool);
        let tags: Vec<u8> = ready.iter().map(|r| r.0).collect();
        assert_eq!(tags, vec![2, 3, 100, 101]);
        assert_eq!(pool.available(), 16);
    }

    #[test]
    fn all_slots_busy_returns_the_new_packet() {
        let mut pool = Pool::new(NEIGHBORS + 4).unwrap();
        let n = Neighbors::new(128);
        let mut pending = Pending::new();
        for a in 0..NEIGHBORS as u32 {
            assert!(pending
                .hold(1, addr(a), packet(&mut pool, a as u8), 0, 0)
                .is_none());
        }
        let refused = pending
            .hold(1, addr(1000), packet(&mut pool, 200), 0, 0)
            .unwrap();
        assert_eq!(tag(&refused), 200);
        pool.free(refused);
        // A held address still takes more packets.
        assert!(pending
            .hold(1, addr(5), packet(&mut pool, 201), 0, 0)
            .is_none());
        // Once a slot empties, a new address fits.
        n.confirm(1, addr(0), MAC, 1);
        for a in 1..NEIGHBORS as u32 {
            n.resolve(1, addr(a), 0);
        }
        let (ready, _) = poll(&mut pending, &n, 2, &mut pool);
        assert_eq!(ready, vec![(0, 1, MAC)]);
        assert!(pending
            .hold(1, addr(1000), packet(&mut pool, 202), 2, 0)
            .is_none());
        pending.clear(&mut pool);
        assert_eq!(pool.available(), pool.capacity());
    }

    #[test]
    fn packets_expire_after_the_hold_time() {
        let mut pool = Pool::new(16).unwrap();
        let n = Neighbors::new(16);
        let mut pending = Pending::new();
        n.resolve(1, addr(1), 0);
        pending.hold(1, addr(1), packet(&mut pool, 1), 0, 0);
        pending.hold(1, addr(1), packet(&mut pool, 2), 500, 0);
        // Still resolving: each packet goes HOLD_MS after its own arrival.
        assert_eq!(
            poll(&mut pending, &n, HOLD_MS - 1, &mut pool),
            (vec![], vec![])
        );
        assert_eq!(
            poll(&mut pending, &n, HOLD_MS, &mut pool),
            (vec![], vec![1])
        );
        assert!(!pending.is_empty());
        // Time going backwards expires nothing.
        assert_eq!(poll(&mut pending, &n, 0, &mut pool), (vec![], vec![]));
        assert_eq!(
            poll(&mut pending, &n, HOLD_MS + 500, &mut pool),
            (vec![], vec![2])
        );
        assert!(pending.is_empty());
        assert_eq!(pool.available(), 16);
    }

    #[test]
    fn failed_or_vanished_neighbors_expire_their_packets() {
        let mut pool = Pool::new(16).unwrap();
        let n = Neighbors::new(16);
        let mut pending = Pending::new();
        let a = addr(1);
        let base = 1_000_000;
        for k in 0..u64::from(MAX_SOLICIT) {
            assert_eq!(n.resolve(1, a, base + k * RETRANS_MS), Resolve::Solicit);
            pending.hold(1, a, packet(&mut pool, k as u8), base + k * RETRANS_MS, 0);
        }
        let last = base + u64::from(MAX_SOLICIT - 1) * RETRANS_MS;
        assert_eq!(
            poll(&mut pending, &n, last + RETRANS_MS - 1, &mut pool),
            (vec![], vec![])
        );
        // Failed: everything goes at once, not HOLD_MS after each arrival.
        assert_eq!(n.resolve(1, a, last + RETRANS_MS), Resolve::Failed);
        assert_eq!(
            poll(&mut pending, &n, last + RETRANS_MS, &mut pool),
            (vec![], vec![0, 1, 2])
        );
        // An address with no entry at all (aged out, or never created).
        pending.hold(1, addr(9), packet(&mut pool, 9), 0, 0);
        assert_eq!(poll(&mut pending, &n, 1, &mut pool), (vec![], vec![9]));
        assert!(pending.is_empty());
        assert_eq!(pool.available(), 16);
    }

    #[test]
    fn waiting_packets_repeat_the_solicitation_then_expire_with_their_interface() {
        let mut pool = Pool::new(16).unwrap();
        let n = Neighbors::new(16);
        let mut pending = Pending::new();
        let a = addr(3);
        // The first packet's own solicitation, at 0; it came in on interface 7.
        assert_eq!(n.resolve(2, a, 0), Resolve::Solicit);
        pending.hold(2, a, packet(&mut pool, 1), 0, 7);
        pending.hold(2, a, packet(&mut pool, 2), 10, 5);
        // (asks, expired (tag, from)) of one poll at `t`.
        let mut at = |t: u64| {
            let mut asks = Vec::new();
            let mut expired = Vec::new();
            pending.poll(&n, t, &mut |r| match r {
                Released::Ask { iface, addr } => asks.push((iface, addr)),
                Released::Expired { pkt, from } => {
                    expired.push((tag(&pkt), from));
                    pool.free(pkt);
                }
                Released::Ready { .. } => panic!("nothing resolved"),
            });
            (asks, expired)
        };
        assert_eq!(at(RETRANS_MS - 1), (vec![], vec![]));
        // Due again: asked once, however often the worker polls.
        assert_eq!(at(RETRANS_MS), (vec![(2, a)], vec![]));
        assert_eq!(at(RETRANS_MS + 1), (vec![], vec![]));
        assert_eq!(at(2 * RETRANS_MS), (vec![(2, a)], vec![]));
        assert_eq!(u64::from(MAX_SOLICIT), 3);
        // Three asked and no answer a second after the last: both packets go, each
        // with the interface it came in on.
        assert_eq!(at(3 * RETRANS_MS), (vec![], vec![(1, 7), (2, 5)]));
        assert!(pending.is_empty());
        assert_eq!(pool.available(), 16);
    }

    #[test]
    fn clear_frees_everything() {
        let mut pool = Pool::new(64).unwrap();
        let mut pending = Pending::new();
        for k in 0..40u32 {
            let dropped = pending.hold(1, addr(k % 7), packet(&mut pool, k as u8), 0, 0);
            if let Some(p) = dropped {
                pool.free(p);
            }
        }
        assert!(pool.available() < 64);
        pending.clear(&mut pool);
        assert!(pending.is_empty());
        assert_eq!(pool.available(), 64);
        // Usable again after clearing.
        assert!(pending
            .hold(1, addr(1), packet(&mut pool, 1), 0, 0)
            .is_none());
        pending.clear(&mut pool);
        assert_eq!(pool.available(), 64);
    }
}
