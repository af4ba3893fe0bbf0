//! The bridge stage: takes a received batch from one port, decides each frame's
//! destination members, edits its tags for each of them and sorts the results into
//! per-port output batches. Runs on a worker, per batch, with no lock or allocation:
//! the MAC table is read and learned into with atomics, counters are the worker's own.

use packet::{Batch, Packet, Pool, BATCH_SIZE};
use virtio::counters::Counter;
use virtio::{DropReason, QueueCounters};

use super::config::{Bridge, Member, Mode, L2};
use super::fast;
use super::mactable::{key, Learned};
use super::wire::{self, Tag, ETH_HEADER, TAG_LEN, TPID_8021Q, VID_RESERVED};

/// One member's counters, kept by one worker.
#[derive(Default)]
pub struct MemberCounters {
    pub rx_packets: Counter,
    pub tx_packets: Counter,
    /// Frames from this member sent to every other member of their VLAN.
    pub flooded: Counter,
    /// Addresses newly learned on this member.
    pub learned: Counter,
    /// Addresses that moved to this member from another.
    pub moved: Counter,
    /// Addresses not learned because the bridge was at its limit (or table full).
    pub limit_hits: Counter,
}

/// A worker's bridge counters, one set per member of every bridge.
pub struct L2Counters {
    pub members: Box<[MemberCounters]>,
}

impl L2Counters {
    pub fn new(l2: &L2) -> L2Counters {
        L2Counters {
            members: (0..l2.member_count)
                .map(|_| MemberCounters::default())
                .collect(),
        }
    }
}

/// Per-port output batches of one worker, and its running frame counts.
pub struct Outputs {
    pub batches: Vec<Batch>,
    rx: Run,
    tx: Run,
}

impl Outputs {
    pub fn new(ports: usize) -> Outputs {
        Outputs {
            batches: (0..ports).map(|_| Batch::default()).collect(),
            rx: Run::default(),
            tx: Run::default(),
        }
    }

    /// Makes `batch`, whole, the output batch of `port` (a batch that all goes one way
    /// moves without touching its frames); what that output held goes out first, so
    /// the order on the port is kept. `batch` is left empty.
    #[inline]
    pub fn hand_over(
        &mut self,
        port: u16,
        batch: &mut Batch,
        pool: &mut Pool,
        flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
    ) {
        let o = &mut self.batches[port as usize];
        if !o.is_empty() {
            flush(port, o, pool);
        }
        std::mem::swap(o, batch);
    }
}

/// Frames counted for one member since the last change of member: consecutive frames
/// of a batch usually share their member, and one counter update per run (instead of
/// per frame) keeps the frames from waiting on each other's read-modify-write.
struct Run {
    member: usize,
    n: u64,
}

impl Default for Run {
    fn default() -> Run {
        Run {
            member: usize::MAX,
            n: 0,
        }
    }
}

impl Run {
    #[inline(always)]
    fn bump(
        &mut self,
        member: usize,
        counters: &L2Counters,
        field: fn(&MemberCounters) -> &Counter,
    ) {
        if member != self.member {
            self.flush(counters, field);
            self.member = member;
        }
        self.n += 1;
    }

    #[inline]
    fn flush(&mut self, counters: &L2Counters, field: fn(&MemberCounters) -> &Counter) {
        if self.n > 0 {
            field(&counters.members[self.member]).add(self.n);
            self.n = 0;
        }
    }
}

fn rx_packets(c: &MemberCounters) -> &Counter {
    &c.rx_packets
}

fn tx_packets(c: &MemberCounters) -> &Counter {
    &c.tx_packets
}

/// Where a frame goes after the bridge decision.
#[derive(Clone, Copy)]
enum To {
    One(u16),
    Flood,
}

/// Payload length as MTU counts it: after the Ethernet header and up to two tags.
#[inline]
fn exceeds_mtu(frame: &[u8], mtu: u16) -> bool {
    let limit = ETH_HEADER + mtu as usize;
    // Most frames are far below; only long ones pay for counting tags.
    frame.len() > limit && frame.len() - TAG_LEN * wire::tag_count(frame) > limit
}

/// The last decision of a batch: a frame with the same addresses, arriving on the same
/// member in the same VLAN, goes the same way, and its source was just learned.
struct Last {
    addrs: [u8; 12],
    member: (u16, u16),
    vlan: u16,
    to: To,
}

/// Where a frame entered the bridge.
pub(super) struct Ingress<'a> {
    pub bi: u16,
    pub mi: u16,
    pub bridge: &'a Bridge,
    pub counters: &'a MemberCounters,
    /// Index of `counters` in the worker's member counters.
    pub counter: usize,
    pub vlan: u16,
    pub pcp: u16,
}

/// Bridges `batch`, received on `in_port`; frames to transmit are appended to `out`,
/// and `flush(port, batch)` is called for any output batch that fills up.
#[allow(clippy::too_many_arguments)]
pub fn bridge_batch(
    l2: &L2,
    in_port: u16,
    batch: &mut Batch,
    pool: &mut Pool,
    out: &mut Outputs,
    rx: &QueueCounters,
    counters: &L2Counters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) {
    let now = l2.now();
    let port = &l2.ports[in_port as usize];
    // A port that is an access member: every untagged frame enters the same way.
    let access = port.access.map(|a| {
        let bridge = &l2.bridges[a.bridge as usize];
        Ingress {
            bi: a.bridge,
            mi: a.member,
            bridge,
            counters: &counters.members[bridge.members[a.member as usize].counter],
            counter: bridge.members[a.member as usize].counter,
            vlan: a.vlan,
            pcp: 0,
        }
    });
    if let Some(a) = &access {
        if whole_batch(a, batch, port.mtu, now, pool, out, counters, flush) {
            return;
        }
        if fast::bridge_access_batch(l2, a, port.mtu, now, batch, pool, out, rx, counters, flush) {
            out.tx.flush(counters, tx_packets);
            return;
        }
        // Start the first destinations' table reads; the loop keeps PREFETCH_AHEAD
        // frames' reads in flight, so that the misses overlap without exhausting the
        // core's outstanding-miss slots (a prefetch beyond them stalls the core).
        for pkt in batch.iter().take(PREFETCH_AHEAD) {
            prefetch_dst(a, pkt);
        }
    }
    let mut last: Option<Last> = None;
    let mut last_src: LastSource = (0, 0, 0);
    let mut frames = batch.drain();
    while let Some(mut pkt) = frames.next() {
        if let (Some(a), Some(ahead)) = (&access, frames.as_slice().get(PREFETCH_AHEAD - 1)) {
            prefetch_dst(a, ahead);
        }
        if exceeds_mtu(pkt.data(), port.mtu) {
            rx.drop(DropReason::Oversize, 1);
            pool.free(pkt);
            continue;
        }
        let general;
        let ing = match &access {
            Some(a) if !wire::is_tpid(wire::ethertype(pkt.data())) => a,
            _ => match classify(l2, in_port, &mut pkt, counters) {
                Ok(Classified::Bridge(i)) => {
                    general = i;
                    &general
                }
                Ok(Classified::Route(ri)) => {
                    push_out(l2.router_vport(ri), pkt, pool, out, rx, flush);
                    continue;
                }
                Err(why) => {
                    rx.drop(why, 1);
                    pool.free(pkt);
                    continue;
                }
            },
        };
        out.rx.bump(ing.counter, counters, rx_packets);
        let addrs = wire::addresses(pkt.data());
        let to = match &last {
            Some(l) if l.addrs == addrs && l.member == (ing.bi, ing.mi) && l.vlan == ing.vlan => {
                l.to
            }
            _ => match decide(
                ing.bridge,
                &addrs,
                (ing.bi, ing.mi),
                ing.vlan,
                now,
                counters,
                &mut last_src,
            ) {
                Ok(to) => {
                    last = Some(Last {
                        addrs,
                        member: (ing.bi, ing.mi),
                        vlan: ing.vlan,
                        to,
                    });
                    to
                }
                Err(why) => {
                    rx.drop(why, 1);
                    pool.free(pkt);
                    continue;
                }
            },
        };
        let (bridge, vlan, pcp) = (ing.bridge, ing.vlan, ing.pcp);
        match to {
            To::One(m) if m == ing.mi => {
                rx.drop(DropReason::SameInterface, 1);
                pool.free(pkt);
            }
            To::One(m) => emit(
                l2, bridge, m, pkt, vlan, pcp, pool, out, rx, counters, flush,
            ),
            To::Flood => {
                ing.counters.flooded.add(1);
                flood(
                    l2, bridge, ing.mi, pkt, vlan, pcp, pool, out, rx, counters, flush,
                );
            }
        }
    }
    drop(frames);
    out.rx.flush(counters, rx_packets);
    out.tx.flush(counters, tx_packets);
}

/// The shortcut for a batch that is one conversation on an access port: every frame
/// untagged, within the MTU, with the same addresses (a bulk transfer between two VMs
/// looks like this). One decision, one learning step and one counter update serve the
/// whole batch, which moves to its destination's output as it is. Returns false, having
/// changed nothing, when the batch does not qualify.
#[allow(clippy::too_many_arguments)]
#[inline]
fn whole_batch(
    ing: &Ingress<'_>,
    batch: &mut Batch,
    mtu: u16,
    now: u32,
    pool: &mut Pool,
    out: &mut Outputs,
    counters: &L2Counters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) -> bool {
    let limit = ETH_HEADER + mtu as usize;
    let Some(first) = batch.iter().next() else {
        return false;
    };
    if first.len() < ETH_HEADER {
        return false;
    }
    if wire::is_tpid(wire::ethertype(first.data())) {
        return false;
    }
    let addrs = wire::addresses(first.data());
    // Addresses and EtherType of every frame equal the first's: two word compares.
    let head = wire::header_words(first.data());
    let mut longest = 0;
    for pkt in batch.iter() {
        let d = pkt.data();
        if d.len() < ETH_HEADER || d.len() > limit || wire::header_words(d) != head {
            return false;
        }
        longest = longest.max(d.len());
    }
    let n = batch.len() as u64;
    let mut last_src = (0, 0, 0);
    let (m, flooded) = match decide(
        ing.bridge,
        &addrs,
        (ing.bi, ing.mi),
        ing.vlan,
        now,
        counters,
        &mut last_src,
    ) {
        Ok(To::One(m)) => (m, false),
        // Flooding where one other member carries the VLAN is sending to that member
        // (a two-port bridge before it has heard from the destination).
        Ok(To::Flood) => match ing.bridge.flood[ing.vlan as usize][..] {
            [a, b] if a == ing.mi => (b, true),
            [a, b] if b == ing.mi => (a, true),
            _ => return false,
        },
        Err(_) => return false,
    };
    let member = &ing.bridge.members[m as usize];
    if m == ing.mi || !member.plain || longest > member.max_untagged {
        return false;
    }
    if flooded {
        ing.counters.flooded.add(n);
    }
    ing.counters.rx_packets.add(n);
    counters.members[member.counter].tx_packets.add(n);
    out.hand_over(member.port, batch, pool, flush);
    true
}

/// Where the general ingress path sends a frame.
enum Classified<'a> {
    Bridge(Ingress<'a>),
    /// To this router interface (its tags stripped).
    Route(u16),
}

/// The general ingress path: subinterface, membership and VLAN of a frame, with the
/// member's tags stripped; or the router interface it is for.
#[inline]
fn classify<'a>(
    l2: &'a L2,
    in_port: u16,
    pkt: &mut Packet,
    counters: &'a L2Counters,
) -> Result<Classified<'a>, DropReason> {
    let iface = &l2.interfaces[subinterface(l2, in_port, pkt)? as usize];
    let (bi, mi) = match (iface.member, iface.routed) {
        (Some(m), _) => m,
        (None, Some(ri)) => return Ok(Classified::Route(ri)),
        (None, None) => return Err(DropReason::NoDestination),
    };
    let bridge = &l2.bridges[bi as usize];
    let member = &bridge.members[mi as usize];
    let (vlan, pcp) = classify_vlan(&member.mode, pkt)?;
    Ok(Classified::Bridge(Ingress {
        bi,
        mi,
        bridge,
        counters: &counters.members[member.counter],
        counter: member.counter,
        vlan,
        pcp,
    }))
}

/// How many frames ahead the bridge prefetches MAC table entries.
const PREFETCH_AHEAD: usize = 16;

#[inline]
fn prefetch_dst(a: &Ingress<'_>, pkt: &Packet) {
    if pkt.len() >= ETH_HEADER {
        a.bridge.table.prefetch(key(a.vlan, &wire::dst(pkt.data())));
    }
}

/// The source most recently learned in a batch (table key, bridge, member): one sender
/// talking to many destinations is learned once per batch, not once per frame.
type LastSource = (u64, u16, u16);

/// Learns the source and looks up the destination of a frame with addresses `addrs`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn decide(
    bridge: &Bridge,
    addrs: &[u8; 12],
    (bi, mi): (u16, u16),
    vlan: u16,
    now: u32,
    counters: &L2Counters,
    last_src: &mut LastSource,
) -> Result<To, DropReason> {
    let (dst, src) = addrs.split_at(6);
    let src: &wire::Mac = src.try_into().expect("6 bytes");
    let dst: &wire::Mac = dst.try_into().expect("6 bytes");
    if wire::is_group(src) || *src == [0; 6] {
        return Err(DropReason::BadSource);
    }
    let src_key = key(vlan, src);
    if *last_src != (src_key, bi, mi) {
        *last_src = (src_key, bi, mi);
        learn(bridge, src_key, mi, now, counters);
    }
    if wire::is_group(dst) {
        return Ok(To::Flood);
    }
    Ok(match bridge.table.lookup(key(vlan, dst)) {
        Some(e) => To::One(e.member),
        None => To::Flood,
    })
}

/// Finds the interface a frame arrived on and strips that subinterface's tags.
#[inline]
fn subinterface(l2: &L2, in_port: u16, pkt: &mut Packet) -> Result<u16, DropReason> {
    let port = &l2.ports[in_port as usize];
    if port.subifs.is_empty() {
        return Ok(port.main);
    }
    let frame = pkt.data();
    let Some(outer) = wire::tag(frame, 0).map_err(|_| DropReason::BadTag)? else {
        return Ok(port.main);
    };
    let inner = match wire::tag(frame, 1) {
        Ok(Some(t)) if t.tpid == TPID_8021Q => t.vid(),
        _ => 0,
    };
    for s in &port.subifs {
        if s.outer != outer.vid() {
            continue;
        }
        if s.inner == 0 && outer.tpid == TPID_8021Q {
            wire::pop_tag(pkt);
            return Ok(s.iface);
        }
        if s.inner != 0 && s.inner == inner {
            wire::pop_tag(pkt);
            wire::pop_tag(pkt);
            return Ok(s.iface);
        }
    }
    Ok(port.main)
}

/// The frame's VLAN in the bridge, and its priority; strips the member's tag.
#[inline]
fn classify_vlan(mode: &Mode, pkt: &mut Packet) -> Result<(u16, u16), DropReason> {
    let tag = wire::tag(pkt.data(), 0).map_err(|_| DropReason::BadTag)?;
    match mode {
        Mode::Access(v) => match tag {
            None => Ok((*v, 0)),
            // A priority tag (VID 0) is an untagged frame with a priority.
            Some(t) if t.tpid == TPID_8021Q && t.vid() == 0 => {
                wire::pop_tag(pkt);
                Ok((*v, t.tci >> 13))
            }
            Some(_) => Err(DropReason::VlanFiltered),
        },
        Mode::Trunk {
            tpid,
            allowed,
            native,
        } => {
            let Some(t) = tag.filter(|t| t.tpid == *tpid) else {
                // Untagged for this trunk (a tag of the other type is payload).
                return native.map(|n| (n, 0)).ok_or(DropReason::VlanFiltered);
            };
            let vid = t.vid();
            if vid == VID_RESERVED {
                return Err(DropReason::BadTag);
            }
            let vlan = if vid == 0 {
                native.ok_or(DropReason::VlanFiltered)?
            } else if allowed[(vid >> 6) as usize] & (1 << (vid & 63)) != 0 || Some(vid) == *native
            {
                vid
            } else {
                return Err(DropReason::VlanFiltered);
            };
            wire::pop_tag(pkt);
            Ok((vlan, t.tci >> 13))
        }
    }
}

#[inline]
pub(super) fn learn(bridge: &Bridge, src_key: u64, mi: u16, now: u32, counters: &L2Counters) {
    let mc = |m: u16| &counters.members[bridge.members[m as usize].counter];
    match bridge.table.learn(src_key, mi, now) {
        Learned::Known | Learned::StaticElsewhere => {}
        Learned::New => mc(mi).learned.add(1),
        Learned::Moved { .. } => mc(mi).moved.add(1),
        Learned::LimitHit | Learned::TableFull => mc(mi).limit_hits.add(1),
    }
}

/// Sends a copy of `pkt` to every member of `vlan` but `from`.
#[allow(clippy::too_many_arguments)]
pub(super) fn flood(
    l2: &L2,
    bridge: &Bridge,
    from: u16,
    pkt: Packet,
    vlan: u16,
    pcp: u16,
    pool: &mut Pool,
    out: &mut Outputs,
    rx: &QueueCounters,
    counters: &L2Counters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) {
    let targets = &bridge.flood[vlan as usize];
    let mut last = None;
    for &m in targets.iter().filter(|&&m| m != from) {
        if let Some(prev) = last.replace(m) {
            // Every target but the last gets a copy; the last takes the original.
            match copy(pool, &pkt) {
                Some(c) => emit(
                    l2, bridge, prev, c, vlan, pcp, pool, out, rx, counters, flush,
                ),
                None => rx.drop(DropReason::NoBuffers, 1),
            }
        }
    }
    match last {
        Some(m) => emit(
            l2, bridge, m, pkt, vlan, pcp, pool, out, rx, counters, flush,
        ),
        None => {
            // Alone in its VLAN: nobody to deliver to.
            rx.drop(DropReason::NoDestination, 1);
            pool.free(pkt);
        }
    }
}

fn copy(pool: &mut Pool, pkt: &Packet) -> Option<Packet> {
    let mut c = pool.alloc()?;
    let n = pkt.len();
    c.room_mut()[..n].copy_from_slice(pkt.data());
    c.set_len(n);
    c.in_port = pkt.in_port;
    c.in_queue = pkt.in_queue;
    Some(c)
}

/// Adds member `m`'s tags (its VLAN tag on a trunk, then its subinterface's) and queues
/// the frame on the member's port.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn emit(
    l2: &L2,
    bridge: &Bridge,
    m: u16,
    pkt: Packet,
    vlan: u16,
    pcp: u16,
    pool: &mut Pool,
    out: &mut Outputs,
    rx: &QueueCounters,
    counters: &L2Counters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) {
    let member: &Member = &bridge.members[m as usize];
    if member.plain && pkt.len() <= member.max_untagged {
        return queue(member, pkt, pool, out, rx, counters, flush);
    }
    emit_tagged(l2, member, pkt, vlan, pcp, pool, out, rx, counters, flush)
}

/// `emit` for members that add tags (and frames that need a full MTU check).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn emit_tagged(
    l2: &L2,
    member: &Member,
    mut pkt: Packet,
    vlan: u16,
    pcp: u16,
    pool: &mut Pool,
    out: &mut Outputs,
    rx: &QueueCounters,
    counters: &L2Counters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) {
    let mut ok = true;
    if let Mode::Trunk { tpid, native, .. } = &member.mode {
        if *native != Some(vlan) {
            ok &= wire::push_tag(
                &mut pkt,
                Tag {
                    tpid: *tpid,
                    tci: (pcp << 13) | vlan,
                },
            );
        }
    }
    for t in &l2.interfaces[member.iface as usize].push {
        ok &= wire::push_tag(&mut pkt, *t);
    }
    // Headroom is 256 bytes and at most four tags are ever added.
    debug_assert!(ok);
    if exceeds_mtu(pkt.data(), l2.ports[member.port as usize].mtu) {
        rx.drop(DropReason::MtuExceeded, 1);
        pool.free(pkt);
        return;
    }
    queue(member, pkt, pool, out, rx, counters, flush)
}

/// Appends a finished frame to the output batch of the member's port.
#[inline(always)]
fn queue(
    member: &Member,
    pkt: Packet,
    pool: &mut Pool,
    out: &mut Outputs,
    rx: &QueueCounters,
    counters: &L2Counters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) {
    out.tx.bump(member.counter, counters, tx_packets);
    push_out(member.port, pkt, pool, out, rx, flush)
}

/// Appends a frame to the output batch of `port` (a port, or a router interface's
/// virtual port), flushing the batch first if it is full.
#[inline(always)]
pub fn push_out(
    port: u16,
    pkt: Packet,
    pool: &mut Pool,
    out: &mut Outputs,
    rx: &QueueCounters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) {
    let b = &mut out.batches[port as usize];
    if b.len() >= BATCH_SIZE {
        flush(port, b, pool);
    }
    if let Err(pkt) = b.push(pkt) {
        // Unreachable: a full batch was flushed above.
        rx.drop(DropReason::NoBuffers, 1);
        pool.free(pkt);
    }
}
