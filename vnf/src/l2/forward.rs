//! The bridge stage: takes a received batch from one port, decides each frame's
//! destination members, edits its tags for each of them and sorts the results into
//! per-port output batches. Runs on a worker, per batch, with no lock or allocation:
//! the MAC table is read and learned into with atomics, counters are the worker's own.

use packet::{Batch, Packet, Pool, BATCH_SIZE};
use virtio::counters::Counter;
use virtio::{DropReason, QueueCounters};

use super::config::{Bridge, Member, Mode, L2};
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
            members: (0..l2.member_count).map(|_| MemberCounters::default()).collect(),
        }
    }
}

/// Per-port output batches of one worker.
pub struct Outputs {
    pub batches: Vec<Batch>,
}

impl Outputs {
    pub fn new(ports: usize) -> Outputs {
        Outputs {
            batches: (0..ports).map(|_| Batch::default()).collect(),
        }
    }
}

/// Where a frame goes after the bridge decision.
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
    // The last source learned in this batch: bursts from one sender skip the table.
    let mut last_src = (0u64, u16::MAX);
    for mut pkt in batch.drain() {
        if exceeds_mtu(pkt.data(), port.mtu) {
            rx.drop(DropReason::Oversize, 1);
            pool.free(pkt);
            continue;
        }
        let iface = match subinterface(l2, in_port, &mut pkt) {
            Ok(i) => i,
            Err(why) => {
                rx.drop(why, 1);
                pool.free(pkt);
                continue;
            }
        };
        let Some((bi, mi)) = l2.interfaces[iface as usize].member else {
            rx.drop(DropReason::NoDestination, 1);
            pool.free(pkt);
            continue;
        };
        let bridge = &l2.bridges[bi as usize];
        let member = &bridge.members[mi as usize];
        let mc = &counters.members[member.counter];
        let (vlan, pcp) = match classify_vlan(&member.mode, &mut pkt) {
            Ok(v) => v,
            Err(why) => {
                rx.drop(why, 1);
                pool.free(pkt);
                continue;
            }
        };
        mc.rx_packets.add(1);
        let frame = pkt.data();
        let src = wire::src(frame);
        if wire::is_group(&src) || src == [0; 6] {
            rx.drop(DropReason::BadSource, 1);
            pool.free(pkt);
            continue;
        }
        let src_key = key(vlan, &src);
        if last_src != (src_key, mi) {
            last_src = (src_key, mi);
            learn(bridge, src_key, mi, now, counters);
        }
        let dst = wire::dst(frame);
        let to = if wire::is_group(&dst) {
            To::Flood
        } else {
            match bridge.table.lookup(key(vlan, &dst)) {
                Some(e) => To::One(e.member),
                None => To::Flood,
            }
        };
        match to {
            To::One(m) if m == mi => {
                rx.drop(DropReason::SameInterface, 1);
                pool.free(pkt);
            }
            To::One(m) => emit(l2, bridge, m, pkt, vlan, pcp, pool, out, rx, counters, flush),
            To::Flood => {
                mc.flooded.add(1);
                flood(l2, bridge, mi, pkt, vlan, pcp, pool, out, rx, counters, flush);
            }
        }
    }
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
fn learn(bridge: &Bridge, src_key: u64, mi: u16, now: u32, counters: &L2Counters) {
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
fn flood(
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
                Some(c) => emit(l2, bridge, prev, c, vlan, pcp, pool, out, rx, counters, flush),
                None => rx.drop(DropReason::NoBuffers, 1),
            }
        }
    }
    match last {
        Some(m) => emit(l2, bridge, m, pkt, vlan, pcp, pool, out, rx, counters, flush),
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
#[inline]
fn emit(
    l2: &L2,
    bridge: &Bridge,
    m: u16,
    mut pkt: Packet,
    vlan: u16,
    pcp: u16,
    pool: &mut Pool,
    out: &mut Outputs,
    rx: &QueueCounters,
    counters: &L2Counters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) {
    let member: &Member = &bridge.members[m as usize];
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
    counters.members[member.counter].tx_packets.add(1);
    let b = &mut out.batches[member.port as usize];
    if b.len() >= BATCH_SIZE {
        flush(member.port, b, pool);
    }
    if let Err(pkt) = b.push(pkt) {
        // Unreachable: a full batch was flushed above.
        rx.drop(DropReason::NoBuffers, 1);
        pool.free(pkt);
    }
}
