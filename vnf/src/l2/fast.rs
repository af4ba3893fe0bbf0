//! The bridge's fast path for a batch from an access member, in stages over the whole
//! batch as VPP's L2 nodes work: first every frame is checked and its addresses made
//! into table keys, starting each new destination's table read; then the sources are
//! learned; then the destinations are looked up, by which time their cache misses have
//! overlapped instead of queueing one behind the other; only then are the frames sorted
//! into outputs, and a batch that all goes to one member moves there whole.
//!
//! What it takes: untagged frames within the port's MTU, with unicast source and
//! destination addresses. A batch with anything else (a tag, a broadcast, a bad source)
//! is left, unchanged, to the per-frame path.

use packet::{Batch, Pool, BATCH_SIZE};
use virtio::{DropReason, QueueCounters};

use super::config::L2;
use super::forward::{emit, flood, learn, Ingress, L2Counters, Outputs};
use super::mactable::key_of_word;
use super::wire::{self, ETH_HEADER};

/// The decision for a destination the table does not know and that has more than one
/// member to flood to.
const FLOOD: u16 = u16::MAX;

/// Bridges `batch`, all from the access member `ing`, if every frame qualifies; returns
/// false, having changed nothing but the cache, if one does not.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) fn bridge_access_batch(
    l2: &L2,
    ing: &Ingress<'_>,
    mtu: u16,
    now: u32,
    batch: &mut Batch,
    pool: &mut Pool,
    out: &mut Outputs,
    rx: &QueueCounters,
    counters: &L2Counters,
    flush: &mut dyn FnMut(u16, &mut Batch, &mut Pool),
) -> bool {
    let n = batch.len();
    if n == 0 {
        return false;
    }
    let limit = ETH_HEADER + mtu as usize;
    let table = &ing.bridge.table;
    let mut dst = [0u64; BATCH_SIZE];
    let mut src = [0u64; BATCH_SIZE];
    let mut bucket = [0u32; BATCH_SIZE];
    let mut ok = true;
    let mut longest = 0;
    let mut prev = 0;
    for (i, p) in batch.iter().enumerate() {
        let d = p.data();
        let Some(h) = d.first_chunk::<ETH_HEADER>() else {
            return false;
        };
        // Destination in the top 48 bits of the first word, source in the low 48 bits
        // of the second.
        let w0 = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
        let w1 = u64::from_be_bytes(h[4..12].try_into().expect("8 bytes"));
        // Non-short-circuit `&`: every term is cheap, and branches per term would cost
        // more than evaluating them all.
        ok &= (d.len() <= limit)
            & !wire::is_tpid(u16::from_be_bytes([h[12], h[13]]))
            & (h[0] & 1 == 0)
            & (h[6] & 1 == 0)
            & (w1 & 0xffff_ffff_ffff != 0);
        dst[i] = key_of_word(ing.vlan, w0 >> 16);
        src[i] = key_of_word(ing.vlan, w1);
        if dst[i] != prev {
            prev = dst[i];
            bucket[i] = table.first_bucket(prev);
            table.prefetch_bucket(bucket[i]);
        } else {
            bucket[i] = bucket[i - 1];
        }
        longest = longest.max(d.len());
    }
    if !ok {
        return false;
    }

    let mut last = 0;
    for &s in &src[..n] {
        if s != last {
            last = s;
            learn(ing.bridge, s, ing.mi, now, counters);
        }
    }

    // An unknown destination where one other member carries the VLAN goes to that
    // member (a two-port bridge before it has heard from the destination).
    let only_other = match ing.bridge.flood[ing.vlan as usize][..] {
        [a, b] if a == ing.mi => b,
        [a, b] if b == ing.mi => a,
        _ => FLOOD,
    };
    let mut to = [FLOOD; BATCH_SIZE];
    let mut flooded = 0;
    let mut prev = (0, FLOOD);
    for i in 0..n {
        if dst[i] != prev.0 {
            let m = table
                .lookup_from(dst[i], bucket[i])
                .map_or(FLOOD, |e| e.member);
            prev = (dst[i], m);
        }
        to[i] = prev.1;
        if to[i] == FLOOD {
            to[i] = only_other;
            flooded += 1;
        }
    }
    ing.counters.flooded.add(flooded);
    ing.counters.rx_packets.add(n as u64);

    let first = to[0];
    if first != FLOOD && first != ing.mi && to[..n].iter().all(|&m| m == first) {
        let member = &ing.bridge.members[first as usize];
        if member.plain && longest <= member.max_untagged {
            counters.members[member.counter].tx_packets.add(n as u64);
            out.hand_over(member.port, batch, pool, flush);
            return true;
        }
    }

    let (bridge, vlan) = (ing.bridge, ing.vlan);
    for (pkt, &m) in batch.drain().zip(&to) {
        if m == FLOOD {
            flood(
                l2, bridge, ing.mi, pkt, vlan, 0, pool, out, rx, counters, flush,
            );
        } else if m == ing.mi {
            rx.drop(DropReason::SameInterface, 1);
            pool.free(pkt);
        } else {
            emit(l2, bridge, m, pkt, vlan, 0, pool, out, rx, counters, flush);
        }
    }
    true
}
