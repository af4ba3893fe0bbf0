//! The routing stage: takes a batch of frames addressed to one router interface and
//! forwards, answers or drops each. Per frame on the forwarding path: header check,
//! one FIB lookup, TTL, MTU, one neighbor-cache read, a rewrite of the Ethernet header;
//! and a run of frames to one destination reuses the first one's lookups. ARP, ND,
//! echo requests to the router and ICMP errors are handled here too, on the worker,
//! from the worker's own buffers; nothing allocates, locks or logs per frame.

use std::collections::VecDeque;

use packet::{Batch, Packet, Pool};
use virtio::counters::Counter;
use virtio::{DropReason, QueueCounters};

use super::arp::{self, Arp};
use super::fragment::Fragmenter;
use super::icmp::{self, Icmp4Error, Icmp6Error};
use super::neighbor::{v4_key, Resolve};
use super::pending::{self, Pending, Released};
use super::ratelimit::{TokenBucket, ICMP_BURST, ICMP_RATE};
use super::router::{Egress, NextHop, Router};
use super::{ipv4, ipv6, nd};
use crate::l2::forward::{push_out, Outputs};
use crate::l2::wire::{self, ETH_HEADER};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];
const ICMP6_ECHO_REQUEST: u8 = 128;
const ND_SOLICIT: u8 = 135;
const ND_ADVERT: u8 = 136;
/// Frames one worker may have waiting to enter a bridge from its router interface
/// (fragmentation and released held packets can produce several per frame routed).
pub const INJECT_CAPACITY: usize = 1024;

/// One router interface's counters, kept by one worker.
#[derive(Default)]
pub struct IfCounters {
    /// Frames received by the router on this interface, and the drops among them (by
    /// reason; also drops of frames routed on from here).
    pub rx: QueueCounters,
    pub tx_packets: Counter,
    pub icmp_sent: Counter,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_rate_limited: Counter,
    pub arp_requests: Counter,
    pub arp_replies: Counter,
    pub nd_solicits: Counter,
    pub nd_adverts: Counter,
    /// Fragments sent (IPv4 fragmentation on the way out of this interface).
    pub fragments: Counter,
    /// Another node claims one of our addresses (an NA for it, or ARP from it).
    pub address_conflicts: Counter,
}

/// A worker's router counters.
pub struct L3Counters {
    pub ifaces: Box<[IfCounters]>,
    /// Packets that waited for a neighbor that never answered.
    pub unresolved: Counter,
}

impl L3Counters {
    pub fn new(interfaces: usize) -> L3Counters {
        L3Counters {
            ifaces: (0..interfaces).map(|_| IfCounters::default()).collect(),
            unresolved: Counter::default(),
        }
    }
}

/// A worker's own routing state.
pub struct L3Worker {
    pub pending: Pending,
    icmp: TokenBucket,
    /// Per router interface: frames to enter its bridge (used for bridge interfaces).
    pub inject: Vec<VecDeque<Packet>>,
    ip_id: u16,
    /// Per port: whether its VM was attached at the last look, so the router
    /// announces itself once per attachment.
    pub(super) attached: Vec<bool>,
    /// When the router next looks at attachments (router clock, ms).
    pub(super) next_look: u64,
    /// When a duplicate-address warning was last logged.
    pub(super) conflict_logged: Option<u64>,
    /// The frames of a batch that the IPv4 fast path leaves to the general path.
    rest: Option<Batch>,
    /// What one poll of `pending` hands back for this worker to act on once the poll
    /// is over (held packets that expired, with the interface each came in on, and
    /// neighbors to ask again). Sized for the most one poll can hand back, so never
    /// grown on the forwarding path.
    expired: Vec<(u16, Packet)>,
    asks: Vec<(u16, u128)>,
}

impl L3Worker {
    pub fn new(r: &Router, worker: usize) -> L3Worker {
        L3Worker {
            pending: Pending::new(),
            icmp: TokenBucket::new(ICMP_RATE, ICMP_BURST),
            inject: r
                .ifaces
                .iter()
                .map(|i| match i.egress {
                    Egress::Bridge { .. } => VecDeque::with_capacity(INJECT_CAPACITY),
                    Egress::Port { .. } => VecDeque::new(),
                })
                .collect(),
            // Workers number their generated packets from different points.
            ip_id: (worker as u16).wrapping_mul(0x1f3d),
            attached: Vec::new(),
            next_look: 0,
            conflict_logged: None,
            rest: Some(Batch::default()),
            expired: Vec::with_capacity(pending::NEIGHBORS * pending::PER_NEIGHBOR),
            asks: Vec::with_capacity(pending::NEIGHBORS),
        }
    }
}

/// Where finished frames go: the worker's output batches (ports) and bridge queues.
pub struct Tx<'a> {
    pub pool: &'a mut Pool,
    pub out: &'a mut Outputs,
    pub flush: &'a mut dyn FnMut(u16, &mut Batch, &mut Pool),
}

/// Everything one routing call works with.
pub struct Ctx<'a> {
    pub r: &'a Router,
    pub tx: Tx<'a>,
    pub w: &'a mut L3Worker,
    pub counters: &'a L3Counters,
    pub(super) now: u64,
    /// The interface the frames being handled came in on: drops are counted there.
    pub(super) in_if: u16,
}

/// The last forwarding decision of a batch, reused by the frames after it with the
/// same destination (not for equal-cost routes, where the flow decides).
#[derive(Clone, Copy)]
struct Fast {
    /// The destination: an IPv4 address as its neighbor key, or an IPv6 address (one
    /// cache per family, so the two never meet).
    dst: u128,
    oif: u16,
    /// The neighbor (destination or gateway) `mac` belongs to.
    key: u128,
    mac: [u8; 6],
}

impl<'a> Ctx<'a> {
    pub fn new(
        r: &'a Router,
        tx: Tx<'a>,
        w: &'a mut L3Worker,
        counters: &'a L3Counters,
    ) -> Ctx<'a> {
        Ctx {
            r,
            tx,
            w,
            counters,
            now: r.now(),
            in_if: 0,
        }
    }

    #[inline]
    pub(super) fn drop(&mut self, pkt: Packet, why: DropReason) {
        self.counters.ifaces[self.in_if as usize].rx.drop(why, 1);
        self.tx.pool.free(pkt);
    }

    /// Routes `batch`, received on router interface `ri`.
    pub fn route_batch(&mut self, ri: u16, batch: &mut Batch) {
        self.in_if = ri;
        let c = &self.counters.ifaces[ri as usize];
        c.rx.rx_packets.add(batch.len() as u64);
        // One IPv6 flow to a resolved neighbor goes whole; plain IPv4 to resolved
        // neighbors goes through the batch stages; the rest, in order, through the
        // general path below.
        // Out of `self.w` while `self` is borrowed; allocated on first use, then kept.
        if self.whole_batch6(ri, batch) {
            return;
        }
        let mut rest = self.w.rest.take().unwrap_or_default();
        self.fast4(ri, batch, &mut rest);
        let (mut fast, mut fast6): (Option<Fast>, Option<Fast>) = (None, None);
        for pkt in rest.drain() {
            if pkt.len() < ETH_HEADER {
                self.drop(pkt, DropReason::Runt);
                continue;
            }
            match wire::ethertype(pkt.data()) {
                ETHERTYPE_IPV4 => self.ipv4(ri, pkt, &mut fast),
                ETHERTYPE_IPV6 => self.ipv6(ri, pkt, &mut fast6),
                ETHERTYPE_ARP => self.arp(ri, pkt),
                _ => self.drop(pkt, DropReason::Unsupported),
            }
        }
        self.w.rest = Some(rest);
    }

    /// Sends every held packet whose neighbor has been resolved since, drops (telling
    /// their senders) those that waited too long, and asks again for neighbors whose
    /// solicitation is due. For the worker's poll loop, while any are held.
    pub fn release_pending(&mut self) {
        let (r, tx, counters, now) = (self.r, &mut self.tx, self.counters, self.now);
        let L3Worker {
            pending,
            inject,
            expired,
            asks,
            ..
        } = &mut *self.w;
        let mut inject = InjectRef(Some(inject));
        pending.poll(&r.neighbors, now, &mut |rel| match rel {
            Released::Ready { iface, mac, pkt } => {
                send_to(r, tx, &mut inject, counters, iface, mac, pkt)
            }
            Released::Expired { pkt, from } => {
                counters.unresolved.add(1);
                if expired.len() < expired.capacity() {
                    expired.push((from, pkt));
                } else {
                    tx.pool.free(pkt);
                }
            }
            Released::Ask { iface, addr } => {
                if asks.len() < asks.capacity() {
                    asks.push((iface, addr));
                }
            }
        });
        let mut expired = std::mem::take(&mut self.w.expired);
        for (from, pkt) in expired.drain(..) {
            self.unreachable(from, pkt);
        }
        self.w.expired = expired;
        let mut asks = std::mem::take(&mut self.w.asks);
        for (iface, addr) in asks.drain(..) {
            self.solicit(iface, addr, None);
        }
        self.w.asks = asks;
    }

    /// Frees `pkt`, which came in on `ri` and could not be delivered because its next
    /// hop never answered, and tells its sender: ICMP host unreachable or ICMPv6
    /// address unreachable, as Linux does when neighbor resolution fails.
    fn unreachable(&mut self, ri: u16, pkt: Packet) {
        let l3 = &pkt.data()[ETH_HEADER.min(pkt.len())..];
        match wire::ethertype(pkt.data()) {
            ETHERTYPE_IPV4 => {
                if let Ok(h) = ipv4::parse(l3) {
                    self.icmp4(ri, &pkt, &h, Icmp4Error::HostUnreachable);
                }
            }
            ETHERTYPE_IPV6 => {
                if let Ok(h) = ipv6::parse(l3) {
                    self.icmp6(ri, &pkt, &h, Icmp6Error::AddressUnreachable);
                }
            }
            _ => {}
        }
        self.tx.pool.free(pkt);
    }

    fn ipv4(&mut self, ri: u16, mut pkt: Packet, fast: &mut Option<Fast>) {
        let ifc = &self.r.ifaces[ri as usize];
        let dst_mac = wire::dst(pkt.data());
        if dst_mac != ifc.mac {
            // Broadcast and multicast IPv4 is not routed, and no host answers it here.
            let why = if wire::is_group(&dst_mac) {
                DropReason::Unsupported
            } else {
                DropReason::NotForUs
            };
            return self.drop(pkt, why);
        }
        let h = match ipv4::parse(&pkt.data()[ETH_HEADER..]) {
            Ok(h) => h,
            Err(_) => return self.drop(pkt, DropReason::BadIpHeader),
        };
        // Ethernet pads short packets; the padding is not part of the datagram.
        if ETH_HEADER + h.total_len < pkt.len() {
            pkt.set_len(ETH_HEADER + h.total_len);
        }
        if martian4(h.src) {
            return self.drop(pkt, DropReason::Martian);
        }
        let cached = fast.filter(|f| f.dst == v4_key(h.dst));
        let (oif, key, multipath) = match cached {
            Some(f) => (f.oif, f.key, false),
            None => {
                let Some(id) = self.r.fib4.lookup(h.dst) else {
                    self.icmp4(ri, &pkt, &h, Icmp4Error::NetUnreachable);
                    return self.drop(pkt, DropReason::NoRoute);
                };
                match self.r.hops[id as usize] {
                    NextHop::Local(_) => return self.local4(ri, pkt, &h),
                    NextHop::Connected(o) => (o, v4_key(h.dst), false),
                    NextHop::Gateway { iface, via } => (iface, via, false),
                    NextHop::Multipath { first, count } => {
                        match self.r.paths[(first + flow_hash4(&pkt, &h) % count) as usize] {
                            NextHop::Connected(o) => (o, v4_key(h.dst), true),
                            NextHop::Gateway { iface, via } => (iface, via, true),
                            _ => return self.drop(pkt, DropReason::NoRoute),
                        }
                    }
                    NextHop::Blackhole => return self.drop(pkt, DropReason::Blackhole),
                    NextHop::Unreachable => {
                        self.icmp4(ri, &pkt, &h, Icmp4Error::HostUnreachable);
                        return self.drop(pkt, DropReason::Unreachable);
                    }
                    NextHop::Prohibit => {
                        self.icmp4(ri, &pkt, &h, Icmp4Error::AdminProhibited);
                        return self.drop(pkt, DropReason::Unreachable);
                    }
                }
            }
        };
        if h.ttl <= 1 {
            self.icmp4(ri, &pkt, &h, Icmp4Error::TimeExceeded);
            return self.drop(pkt, DropReason::TtlExceeded);
        }
        let mtu = self.r.ifaces[oif as usize].mtu as usize;
        if h.total_len > mtu {
            if h.dont_fragment {
                let mtu = mtu as u16;
                self.icmp4(ri, &pkt, &h, Icmp4Error::FragmentationNeeded { mtu });
                return self.drop(pkt, DropReason::FragmentationNeeded);
            }
            ipv4::decrement_ttl(&mut pkt.data_mut()[ETH_HEADER..]);
            return self.fragment(oif, key, pkt, mtu);
        }
        ipv4::decrement_ttl(&mut pkt.data_mut()[ETH_HEADER..]);
        if let Some(f) = cached {
            return self.emit_to(f.oif, f.mac, pkt);
        }
        match self.resolve_send(oif, key, pkt) {
            Some(mac) if !multipath => {
                *fast = Some(Fast {
                    dst: v4_key(h.dst),
                    oif,
                    key,
                    mac,
                })
            }
            _ => {}
        }
    }

    /// Splits a datagram too big for `oif` and sends the fragments.
    fn fragment(&mut self, oif: u16, key: u128, pkt: Packet, mtu: usize) {
        let Some(mut frags) = Fragmenter::new(&pkt.data()[ETH_HEADER..], mtu) else {
            return self.drop(pkt, DropReason::MtuExceeded);
        };
        let head: [u8; ETH_HEADER] = pkt.data()[..ETH_HEADER].try_into().expect("checked");
        loop {
            let Some(mut f) = self.tx.pool.alloc() else {
                self.counters.ifaces[self.in_if as usize]
                    .rx
                    .drop(DropReason::NoBuffers, 1);
                break;
            };
            let room = f.room_mut();
            let Some(n) = frags.next_into(&mut room[ETH_HEADER..]) else {
                self.tx.pool.free(f);
                break;
            };
            room[..ETH_HEADER].copy_from_slice(&head);
            f.set_len(ETH_HEADER + n);
            self.counters.ifaces[oif as usize].fragments.add(1);
            self.resolve_send(oif, key, f);
        }
        self.tx.pool.free(pkt);
    }

    /// An IPv4 packet for one of the router's addresses: echo requests are answered.
    fn local4(&mut self, ri: u16, mut pkt: Packet, h: &ipv4::V4) {
        if h.protocol == ipv4::PROTO_ICMP && icmp::v4_echo_reply(&mut pkt.data_mut()[ETH_HEADER..])
        {
            self.counters.ifaces[ri as usize].icmp_sent.add(1);
            return self.originate4(pkt);
        }
        self.drop(pkt, DropReason::Unsupported)
    }

    /// Routes a packet the router itself built (its Ethernet type already set).
    fn originate4(&mut self, pkt: Packet) {
        let Ok(h) = ipv4::parse(&pkt.data()[ETH_HEADER..]) else {
            return self.drop(pkt, DropReason::BadIpHeader);
        };
        let Some(id) = self.r.fib4.lookup(h.dst) else {
            return self.drop(pkt, DropReason::NoRoute);
        };
        let (oif, key) = match self.r.hops[id as usize] {
            NextHop::Connected(o) => (o, v4_key(h.dst)),
            NextHop::Gateway { iface, via } => (iface, via),
            NextHop::Multipath { first, .. } => match self.r.paths[first as usize] {
                NextHop::Connected(o) => (o, v4_key(h.dst)),
                NextHop::Gateway { iface, via } => (iface, via),
                _ => return self.drop(pkt, DropReason::NoRoute),
            },
            _ => return self.drop(pkt, DropReason::NoRoute),
        };
        if h.total_len > self.r.ifaces[oif as usize].mtu as usize {
            return self.drop(pkt, DropReason::MtuExceeded);
        }
        self.resolve_send(oif, key, pkt);
    }

    /// Sends an ICMP error about `orig` (received on `ri`), within the rate limit.
    fn icmp4(&mut self, ri: u16, orig: &Packet, h: &ipv4::V4, kind: Icmp4Error) {
        let l3 = &orig.data()[ETH_HEADER..];
        if icmp::v4_error_forbidden(l3, h) {
            return;
        }
        let c = &self.counters.ifaces[ri as usize];
        if !self.w.icmp.allow(self.now) {
            c.icmp_rate_limited.add(1);
            return;
        }
        let Some(src) = self.r.ifaces[ri as usize].v4_source_for(h.src) else {
            return;
        };
        let Some(mut e) = self.tx.pool.alloc() else {
            return;
        };
        self.w.ip_id = self.w.ip_id.wrapping_add(1);
        let room = e.room_mut();
        room[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let n = icmp::v4_error(l3, kind, src, self.w.ip_id, &mut room[ETH_HEADER..]);
        if n == 0 {
            return self.tx.pool.free(e);
        }
        e.set_len(ETH_HEADER + n);
        c.icmp_sent.add(1);
        self.originate4(e);
    }

    fn ipv6(&mut self, ri: u16, mut pkt: Packet, fast: &mut Option<Fast>) {
        let ifc = &self.r.ifaces[ri as usize];
        let dst_mac = wire::dst(pkt.data());
        if dst_mac != ifc.mac && !wire::is_group(&dst_mac) {
            return self.drop(pkt, DropReason::NotForUs);
        }
        let h = match ipv6::parse(&pkt.data()[ETH_HEADER..]) {
            Ok(h) => h,
            Err(_) => return self.drop(pkt, DropReason::BadIpHeader),
        };
        let len = ETH_HEADER + ipv6::HEADER + h.payload_len;
        if len < pkt.len() {
            pkt.set_len(len);
        }
        if ipv6::is_multicast(h.dst) || ipv6::is_link_local(h.dst) {
            // Never routed: for us on this link or for nobody.
            if ipv6::is_multicast(h.dst) || ifc.owns_v6(h.dst) {
                return self.local6(ri, pkt, &h);
            }
            return self.drop(pkt, DropReason::Martian);
        }
        if dst_mac != ifc.mac {
            return self.drop(pkt, DropReason::NotForUs);
        }
        if ipv6::is_multicast(h.src) {
            return self.drop(pkt, DropReason::Martian);
        }
        let cached = fast.filter(|f| f.dst == h.dst);
        let (oif, key, multipath) = match cached {
            Some(f) => (f.oif, f.key, false),
            None => {
                let Some(id) = self.r.fib6.lookup(h.dst) else {
                    self.icmp6(ri, &pkt, &h, Icmp6Error::NoRoute);
                    return self.drop(pkt, DropReason::NoRoute);
                };
                match self.r.hops[id as usize] {
                    NextHop::Local(_) => return self.local6(ri, pkt, &h),
                    NextHop::Connected(o) => (o, h.dst, false),
                    NextHop::Gateway { iface, via } => (iface, via, false),
                    NextHop::Multipath { first, count } => {
                        match self.r.paths[(first + flow_hash6(&pkt, &h) % count) as usize] {
                            NextHop::Connected(o) => (o, h.dst, true),
                            NextHop::Gateway { iface, via } => (iface, via, true),
                            _ => return self.drop(pkt, DropReason::NoRoute),
                        }
                    }
                    NextHop::Blackhole => return self.drop(pkt, DropReason::Blackhole),
                    NextHop::Unreachable => {
                        // As Linux answers for an unreachable route: no route (code 0).
                        self.icmp6(ri, &pkt, &h, Icmp6Error::NoRoute);
                        return self.drop(pkt, DropReason::Unreachable);
                    }
                    NextHop::Prohibit => {
                        self.icmp6(ri, &pkt, &h, Icmp6Error::AdminProhibited);
                        return self.drop(pkt, DropReason::Unreachable);
                    }
                }
            }
        };
        // A link-local source is only valid on its own link (RFC 4291 2.5.6).
        if ipv6::is_link_local(h.src) {
            return self.drop(pkt, DropReason::Martian);
        }
        if h.hop_limit <= 1 {
            self.icmp6(ri, &pkt, &h, Icmp6Error::TimeExceeded);
            return self.drop(pkt, DropReason::TtlExceeded);
        }
        let mtu = self.r.ifaces[oif as usize].mtu;
        if ipv6::HEADER + h.payload_len > mtu as usize {
            let mtu = u32::from(mtu);
            self.icmp6(ri, &pkt, &h, Icmp6Error::PacketTooBig { mtu });
            return self.drop(pkt, DropReason::FragmentationNeeded);
        }
        ipv6::decrement_hop_limit(&mut pkt.data_mut()[ETH_HEADER..]);
        if let Some(f) = cached {
            return self.emit_to(f.oif, f.mac, pkt);
        }
        match self.resolve_send(oif, key, pkt) {
            Some(mac) if !multipath => {
                *fast = Some(Fast {
                    dst: h.dst,
                    oif,
                    key,
                    mac,
                })
            }
            _ => {}
        }
    }

    /// IPv6 for the router: neighbor discovery, and echo requests to its addresses.
    fn local6(&mut self, ri: u16, mut pkt: Packet, h: &ipv6::V6) {
        let icmp_type = pkt.data().get(ETH_HEADER + ipv6::HEADER).copied();
        if h.next_header != ipv6::NEXT_ICMP6 {
            return self.drop(pkt, DropReason::Unsupported);
        }
        match icmp_type {
            Some(ND_SOLICIT) | Some(ND_ADVERT) => self.nd(ri, pkt),
            Some(ICMP6_ECHO_REQUEST) if !ipv6::is_multicast(h.dst) => {
                if icmp::v6_echo_reply(&mut pkt.data_mut()[ETH_HEADER..], h.dst) {
                    self.counters.ifaces[ri as usize].icmp_sent.add(1);
                    self.originate6(ri, pkt);
                } else {
                    self.drop(pkt, DropReason::BadIpHeader);
                }
            }
            _ => self.drop(pkt, DropReason::Unsupported),
        }
    }

    /// Routes an IPv6 packet the router built; link-local destinations leave on `ri`.
    fn originate6(&mut self, ri: u16, pkt: Packet) {
        let Ok(h) = ipv6::parse(&pkt.data()[ETH_HEADER..]) else {
            return self.drop(pkt, DropReason::BadIpHeader);
        };
        let (oif, key) = if ipv6::is_link_local(h.dst) {
            (ri, h.dst)
        } else {
            let Some(id) = self.r.fib6.lookup(h.dst) else {
                return self.drop(pkt, DropReason::NoRoute);
            };
            match self.r.hops[id as usize] {
                NextHop::Connected(o) => (o, h.dst),
                NextHop::Gateway { iface, via } => (iface, via),
                NextHop::Multipath { first, .. } => match self.r.paths[first as usize] {
                    NextHop::Connected(o) => (o, h.dst),
                    NextHop::Gateway { iface, via } => (iface, via),
                    _ => return self.drop(pkt, DropReason::NoRoute),
                },
                _ => return self.drop(pkt, DropReason::NoRoute),
            }
        };
        if ipv6::HEADER + h.payload_len > self.r.ifaces[oif as usize].mtu as usize {
            return self.drop(pkt, DropReason::MtuExceeded);
        }
        self.resolve_send(oif, key, pkt);
    }

    fn icmp6(&mut self, ri: u16, orig: &Packet, h: &ipv6::V6, kind: Icmp6Error) {
        let l3 = &orig.data()[ETH_HEADER..];
        if icmp::v6_error_forbidden(l3, h, kind) {
            return;
        }
        let c = &self.counters.ifaces[ri as usize];
        if !self.w.icmp.allow(self.now) {
            c.icmp_rate_limited.add(1);
            return;
        }
        let src = self.r.ifaces[ri as usize].v6_source_for(h.src);
        let Some(mut e) = self.tx.pool.alloc() else {
            return;
        };
        let room = e.room_mut();
        room[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let n = icmp::v6_error(l3, kind, src, &mut room[ETH_HEADER..]);
        if n == 0 {
            return self.tx.pool.free(e);
        }
        e.set_len(ETH_HEADER + n);
        c.icmp_sent.add(1);
        self.originate6(ri, e);
    }

    /// Neighbor solicitations for our addresses are answered; advertisements update
    /// the cache.
    fn nd(&mut self, ri: u16, mut pkt: Packet) {
        let ifc = &self.r.ifaces[ri as usize];
        let c = &self.counters.ifaces[ri as usize];
        let Some(msg) = nd::parse(&pkt.data()[ETH_HEADER..]) else {
            return self.drop(pkt, DropReason::BadIpHeader);
        };
        match msg {
            nd::Nd::Solicit {
                src,
                target,
                source_mac,
                ..
            } => {
                if !ifc.owns_v6(target) {
                    return self.drop(pkt, DropReason::NotForUs);
                }
                // From :: it is another node's duplicate address detection for our
                // address: defend it by advertising to all nodes.
                let (dst, mac, solicited) = if src == 0 {
                    self.conflict(ri, std::net::Ipv6Addr::from(target).into());
                    (nd::ALL_NODES, nd::multicast_mac(nd::ALL_NODES), false)
                } else {
                    let mac = match source_mac {
                        Some(m) => {
                            self.r.neighbors.notice(ri, src, m, self.now);
                            m
                        }
                        None => match self.r.neighbors.lookup(ri, src) {
                            Some(e) if e.state != super::neighbor::State::Incomplete => e.mac,
                            _ => return self.drop(pkt, DropReason::Unresolved),
                        },
                    };
                    (src, mac, true)
                };
                let room = pkt.room_mut();
                let n = nd::write_advert(
                    &mut room[ETH_HEADER..],
                    target,
                    dst,
                    target,
                    ifc.mac,
                    true,
                    solicited,
                    true,
                );
                if n == 0 {
                    return self.tx.pool.free(pkt);
                }
                room[..6].copy_from_slice(&mac);
                room[6..12].copy_from_slice(&ifc.mac);
                room[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
                pkt.set_len(ETH_HEADER + n);
                c.nd_adverts.add(1);
                self.emit(ri, pkt);
            }
            nd::Nd::Advert {
                target,
                solicited,
                target_mac,
                ..
            } => {
                if ifc.owns_v6(target) {
                    self.conflict(ri, std::net::Ipv6Addr::from(target).into());
                } else if let Some(m) = target_mac {
                    // RFC 4861 7.2.5: an advertisement for an address without an entry
                    // is ignored.
                    let known = self.r.neighbors.lookup(ri, target).is_some();
                    if known && solicited {
                        self.r.neighbors.confirm(ri, target, m, self.now);
                    } else if known {
                        self.r.neighbors.notice(ri, target, m, self.now);
                    }
                }
                self.tx.pool.free(pkt);
            }
        }
    }

    fn arp(&mut self, ri: u16, mut pkt: Packet) {
        let ifc = &self.r.ifaces[ri as usize];
        let c = &self.counters.ifaces[ri as usize];
        let dst_mac = wire::dst(pkt.data());
        if dst_mac != ifc.mac && dst_mac != BROADCAST {
            return self.drop(pkt, DropReason::NotForUs);
        }
        let Some(a) = arp::parse(&pkt.data()[ETH_HEADER..]) else {
            return self.drop(pkt, DropReason::BadIpHeader);
        };
        if wire::is_group(&a.sender_mac) {
            return self.drop(pkt, DropReason::BadSource);
        }
        // An ARP probe (sender 0.0.0.0) asks without telling; anyone else must be on
        // one of this interface's subnets to be believed.
        let probe = a.sender_ip == 0;
        if !probe && !ifc.on_link_v4(a.sender_ip) {
            return self.drop(pkt, DropReason::Martian);
        }
        if ifc.owns_v4(a.sender_ip) {
            self.conflict(ri, std::net::Ipv4Addr::from(a.sender_ip).into());
            return self.drop(pkt, DropReason::BadSource);
        }
        let key = v4_key(a.sender_ip);
        if a.op == arp::REQUEST && ifc.owns_v4(a.target_ip) {
            if !probe {
                self.r.neighbors.notice(ri, key, a.sender_mac, self.now);
            }
            let reply = Arp {
                op: arp::REPLY,
                sender_mac: ifc.mac,
                sender_ip: a.target_ip,
                target_mac: a.sender_mac,
                target_ip: a.sender_ip,
            };
            let room = pkt.room_mut();
            let n = arp::write(&mut room[ETH_HEADER..], &reply);
            room[..6].copy_from_slice(&a.sender_mac);
            room[6..12].copy_from_slice(&ifc.mac);
            pkt.set_len(ETH_HEADER + n);
            c.arp_replies.add(1);
            return self.emit(ri, pkt);
        }
        let known = !probe && self.r.neighbors.lookup(ri, key).is_some();
        if a.op == arp::REPLY && dst_mac == ifc.mac && known {
            // Only answers to our own questions: an unasked-for reply creates nothing.
            self.r.neighbors.confirm(ri, key, a.sender_mac, self.now);
        } else if known {
            // Gratuitous ARP, or a request for another host: news about a neighbor we
            // already talk to (a moved VM, a failover).
            self.r.neighbors.notice(ri, key, a.sender_mac, self.now);
        }
        self.tx.pool.free(pkt);
    }

    /// Another node uses or claims one of our addresses: counted, and logged at most
    /// every ten seconds per worker (a flood of such frames must not flood the log).
    fn conflict(&mut self, ri: u16, addr: std::net::IpAddr) {
        self.counters.ifaces[ri as usize].address_conflicts.add(1);
        if self
            .w
            .conflict_logged
            .is_none_or(|t| self.now.saturating_sub(t) >= 10_000)
        {
            self.w.conflict_logged = Some(self.now);
            log::warn!(
                "router interface {}: another node uses address {addr} (duplicate address)",
                self.r.ifaces[ri as usize].name
            );
        }
    }

    /// Finds the link-layer address of neighbor `key` on `oif` and sends `pkt` there,
    /// or holds it while asking. Returns the address when it was known.
    fn resolve_send(&mut self, oif: u16, key: u128, pkt: Packet) -> Option<[u8; 6]> {
        let res = self.r.neighbors.resolve(oif, key, self.now);
        self.send_resolved(oif, key, pkt, res)
    }

    /// Sends `pkt` to neighbor `key` on `oif` as `res` (the neighbor cache's answer,
    /// asked once) says: now, after asking, or never.
    pub(super) fn send_resolved(
        &mut self,
        oif: u16,
        key: u128,
        pkt: Packet,
        res: Resolve,
    ) -> Option<[u8; 6]> {
        match res {
            Resolve::Mac(mac) => {
                self.emit_to(oif, mac, pkt);
                Some(mac)
            }
            Resolve::MacAndProbe(mac) => {
                self.solicit(oif, key, Some(mac));
                self.emit_to(oif, mac, pkt);
                Some(mac)
            }
            Resolve::Solicit => {
                self.solicit(oif, key, None);
                self.hold(oif, key, pkt);
                None
            }
            Resolve::Wait => {
                self.hold(oif, key, pkt);
                None
            }
            Resolve::Failed => {
                self.counters.ifaces[self.in_if as usize]
                    .rx
                    .drop(DropReason::Unresolved, 1);
                self.unreachable(self.in_if, pkt);
                None
            }
            Resolve::Full => {
                self.drop(pkt, DropReason::Unresolved);
                None
            }
        }
    }

    fn hold(&mut self, oif: u16, key: u128, pkt: Packet) {
        if let Some(old) = self.w.pending.hold(oif, key, pkt, self.now, self.in_if) {
            self.drop(old, DropReason::Unresolved);
        }
    }

    /// Asks for neighbor `key` on `oif`: broadcast ARP or multicast NS, or a unicast
    /// probe to the address we have.
    fn solicit(&mut self, oif: u16, key: u128, unicast: Option<[u8; 6]>) {
        let ifc = &self.r.ifaces[oif as usize];
        let c = &self.counters.ifaces[oif as usize];
        let Some(mut p) = self.tx.pool.alloc() else {
            return;
        };
        let room = p.room_mut();
        let n;
        if let Some(ip) = v4_of_key(key) {
            let Some(src) = ifc.v4_source_for(ip) else {
                return self.tx.pool.free(p);
            };
            let a = Arp {
                op: arp::REQUEST,
                sender_mac: ifc.mac,
                sender_ip: src,
                target_mac: unicast.unwrap_or([0; 6]),
                target_ip: ip,
            };
            n = arp::write(&mut room[ETH_HEADER..], &a);
            room[..6].copy_from_slice(&unicast.unwrap_or(BROADCAST));
            room[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
            c.arp_requests.add(1);
        } else {
            let src = ifc.v6_source_for(key);
            let dst = unicast.map(|_| key);
            n = nd::write_solicit(&mut room[ETH_HEADER..], src, key, ifc.mac, dst);
            let mac = unicast.unwrap_or(nd::multicast_mac(nd::solicited_node(key)));
            room[..6].copy_from_slice(&mac);
            room[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            c.nd_solicits.add(1);
        }
        if n == 0 {
            return self.tx.pool.free(p);
        }
        room[6..12].copy_from_slice(&ifc.mac);
        p.set_len(ETH_HEADER + n);
        self.emit(oif, p);
    }

    /// Addresses `pkt` to `mac` from `oif` and sends it.
    #[inline]
    fn emit_to(&mut self, oif: u16, mac: [u8; 6], pkt: Packet) {
        let mut inject = InjectRef(Some(&mut self.w.inject));
        send_to(
            self.r,
            &mut self.tx,
            &mut inject,
            self.counters,
            oif,
            mac,
            pkt,
        )
    }

    /// Sends a finished frame out of `oif`.
    #[inline]
    pub(super) fn emit(&mut self, oif: u16, pkt: Packet) {
        let mut inject = InjectRef(Some(&mut self.w.inject));
        emit(self.r, &mut self.tx, &mut inject, self.counters, oif, pkt)
    }
}

/// The bridge queues, when the caller can lend them.
struct InjectRef<'a>(Option<&'a mut Vec<VecDeque<Packet>>>);

fn send_to(
    r: &Router,
    tx: &mut Tx<'_>,
    inject: &mut InjectRef<'_>,
    counters: &L3Counters,
    oif: u16,
    mac: [u8; 6],
    mut pkt: Packet,
) {
    let d = pkt.data_mut();
    d[..6].copy_from_slice(&mac);
    d[6..12].copy_from_slice(&r.ifaces[oif as usize].mac);
    emit(r, tx, inject, counters, oif, pkt)
}

#[inline]
fn emit(
    r: &Router,
    tx: &mut Tx<'_>,
    inject: &mut InjectRef<'_>,
    counters: &L3Counters,
    oif: u16,
    mut pkt: Packet,
) {
    let c = &counters.ifaces[oif as usize];
    match &r.ifaces[oif as usize].egress {
        Egress::Port { port, push } => {
            for t in push {
                // Headroom holds far more than the two tags a subinterface adds.
                wire::push_tag(&mut pkt, *t);
            }
            c.tx_packets.add(1);
            push_out(*port, pkt, tx.pool, tx.out, &c.rx, tx.flush);
        }
        Egress::Bridge { .. } => {
            let q = inject.0.as_mut().map(|v| &mut v[oif as usize]);
            match q {
                Some(q) if q.len() < INJECT_CAPACITY => {
                    c.tx_packets.add(1);
                    q.push_back(pkt);
                }
                _ => {
                    c.rx.drop(DropReason::NoBuffers, 1);
                    tx.pool.free(pkt);
                }
            }
        }
    }
}

/// The IPv4 address of a neighbor key, if it is one.
pub fn v4_of_key(key: u128) -> Option<u32> {
    (key >> 32 == 0xffff).then_some(key as u32)
}

/// Sources no router forwards from (RFC 1812 5.3.7): 0/8, 127/8, multicast, class E
/// and the limited broadcast address.
#[inline]
pub(super) fn martian4(src: u32) -> bool {
    let top = src >> 24;
    // `|`, not `||`: no branch per term on the forwarding path.
    (top == 0) | (top == 127) | (top >= 224)
}

/// The flow of an IPv4 packet, for choosing among equal-cost paths: addresses,
/// protocol and, for an unfragmented TCP or UDP packet, the ports.
fn flow_hash4(pkt: &Packet, h: &ipv4::V4) -> u32 {
    let l4 = ETH_HEADER + h.header_len;
    let ports = match (h.protocol, h.is_fragment) {
        (6 | 17, false) => pkt
            .data()
            .get(l4..l4 + 4)
            .map(|p| u32::from_be_bytes(p.try_into().expect("4 bytes")))
            .unwrap_or(0),
        _ => 0,
    };
    mix(
        u64::from(h.src) << 32 | u64::from(h.dst),
        u64::from(ports) << 8 | u64::from(h.protocol),
    )
}

/// The flow of an IPv6 packet: addresses, flow label (RFC 6438: the source's own flow
/// identifier), next header and, for TCP or UDP right after the fixed header, the
/// ports, as IPv4's flows count them.
fn flow_hash6(pkt: &Packet, h: &ipv6::V6) -> u32 {
    let l3 = pkt.data().get(ETH_HEADER..).unwrap_or_default();
    let label = l3
        .get(1..4)
        .map_or(0, |b| u32::from_be_bytes([0, b[0] & 0x0f, b[1], b[2]]));
    let ports = match h.next_header {
        6 | 17 => l3
            .get(ipv6::HEADER..ipv6::HEADER + 4)
            .map_or(0, |p| u32::from_be_bytes(p.try_into().expect("4 bytes"))),
        _ => 0,
    };
    let a = (h.src ^ (h.src >> 64)) as u64 ^ u64::from(label) << 40;
    let b = (h.dst ^ (h.dst >> 64)) as u64;
    mix(a, b ^ (u64::from(ports) << 8 | u64::from(h.next_header)))
}

/// A multiply-xorshift mix: both halves of the flow spread over the result's top bits.
#[inline]
fn mix(a: u64, b: u64) -> u32 {
    let x = (a ^ b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((x ^ (x >> 31)) >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP-over-IPv6 frame (source port `sport`, flow label `label`) in a packet of
    /// `pool`, and its parsed header.
    fn udp6(pool: &mut Pool, sport: u16, label: u32, next: u8) -> (Packet, ipv6::V6) {
        let mut p = pool.alloc().unwrap();
        let room = p.room_mut();
        room[..ETH_HEADER + 48].fill(0);
        let l3 = &mut room[ETH_HEADER..];
        l3[..4].copy_from_slice(&(0x6000_0000 | label).to_be_bytes());
        l3[4..6].copy_from_slice(&8u16.to_be_bytes());
        l3[6] = next;
        l3[7] = 64;
        l3[8] = 0xfd;
        l3[23] = 2;
        l3[24] = 0xfd;
        l3[39] = 3;
        l3[40..42].copy_from_slice(&sport.to_be_bytes());
        l3[42..44].copy_from_slice(&53u16.to_be_bytes());
        p.set_len(ETH_HEADER + 48);
        let h = ipv6::parse(&p.data()[ETH_HEADER..]).unwrap();
        (p, h)
    }

    #[test]
    fn ipv6_flows_spread_by_ports_and_flow_label() {
        let mut pool = Pool::new(4).unwrap();
        // Flows between the same two hosts: their ports, or their flow label, pick the
        // path; a flow keeps its path.
        let mut by_port = [0u32; 2];
        let mut by_label = [0u32; 2];
        for i in 0..64u16 {
            let (p, h) = udp6(&mut pool, 1000 + i, 0, 17);
            let path = flow_hash6(&p, &h) % 2;
            by_port[path as usize] += 1;
            let (q, h2) = udp6(&mut pool, 1000 + i, 0, 17);
            assert_eq!(flow_hash6(&q, &h2) % 2, path);
            pool.free(q);
            pool.free(p);
            let (p, h) = udp6(&mut pool, 1000, u32::from(i) * 4099, 17);
            by_label[(flow_hash6(&p, &h) % 2) as usize] += 1;
            pool.free(p);
        }
        for counts in [by_port, by_label] {
            assert!(counts.iter().all(|&c| c >= 16), "{counts:?}");
        }
        // Ports count only for TCP and UDP: behind another next header they are data.
        let (p, h) = udp6(&mut pool, 1, 0, 59);
        let (q, h2) = udp6(&mut pool, 2, 0, 59);
        assert_eq!(flow_hash6(&p, &h), flow_hash6(&q, &h2));
    }
}
