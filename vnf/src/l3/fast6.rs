//! The IPv6 shortcut of the routing stage: a batch that is one flow of IPv6 to a
//! resolved neighbor (a bulk transfer between two VMs looks like this) is checked frame
//! by frame, decided once, rewritten, and handed to its port whole, as `fast4` does for
//! IPv4. Any other batch is left untouched to the general path, which handles IPv6 one
//! frame at a time (reusing the batch's last decision for the same destination).

use packet::Batch;

use super::forward::{Ctx, ETHERTYPE_IPV6};
use super::ipv6;
use super::router::NextHop;
use crate::l2::wire::ETH_HEADER;

/// Bytes of Ethernet and IPv6 header the checks read.
const HEADERS: usize = ETH_HEADER + ipv6::HEADER;

/// The source and destination of a frame's IPv6 packet (32 bytes), and the packet's
/// length, if the frame is one the shortcut can take: to `mac`, IPv6, with a payload
/// length that fits the frame, and a hop limit above 1.
#[inline(always)]
fn plain_v6<'f>(frame: &'f [u8], mac: &[u8; 6]) -> Option<(&'f [u8; 32], usize)> {
    let h: &[u8; HEADERS] = frame.first_chunk()?;
    let l3 = &h[ETH_HEADER..];
    let total = ipv6::HEADER + usize::from(u16::from_be_bytes([l3[4], l3[5]]));
    // `&`, not `&&`: every term is cheap, a branch per term is not.
    let plain = (h[..6] == mac[..])
        & (u16::from_be_bytes([h[12], h[13]]) == ETHERTYPE_IPV6)
        & (l3[0] >> 4 == 6)
        & (total <= frame.len() - ETH_HEADER)
        & (l3[7] > 1);
    plain.then(|| (l3[8..40].try_into().expect("32 bytes"), total))
}

impl Ctx<'_> {
    /// Routes `batch`, received on `ri`, whole if it qualifies (see the module); returns
    /// false, having changed nothing, if it does not.
    pub(super) fn whole_batch6(&mut self, ri: u16, batch: &mut Batch) -> bool {
        let Some(first) = batch.iter().next() else {
            return false;
        };
        let mac = self.r.ifaces[ri as usize].mac;
        let Some((addrs, _)) = plain_v6(first.data(), &mac) else {
            return false;
        };
        let addrs = *addrs;
        let mut longest = 0;
        for p in batch.iter() {
            match plain_v6(p.data(), &mac) {
                Some((a, total)) if *a == addrs => longest = longest.max(total),
                _ => return false,
            }
        }
        let src = u128::from_be_bytes(addrs[..16].try_into().expect("16 bytes"));
        let dst = u128::from_be_bytes(addrs[16..].try_into().expect("16 bytes"));
        // What the general path drops or keeps for the router itself, it decides.
        if ipv6::is_multicast(dst)
            || ipv6::is_link_local(dst)
            || ipv6::is_multicast(src)
            || ipv6::is_link_local(src)
        {
            return false;
        }
        let Some(id) = self.r.fib6.lookup(dst) else {
            return false;
        };
        let (oif, key) = match self.r.hops.get(id as usize) {
            Some(NextHop::Connected(o)) => (*o, dst),
            Some(NextHop::Gateway { iface, via }) => (*iface, *via),
            // Equal-cost paths go by each packet's ports: the general path chooses.
            _ => return false,
        };
        let Some(port) = self.plain_port(oif, longest) else {
            return false;
        };
        // Only a look: if the neighbor needs asking, the general path asks, once.
        let Some(to) = self.r.neighbors.usable(oif, key, self.now) else {
            return false;
        };
        let mut eth = [0u8; 12];
        eth[..6].copy_from_slice(&to);
        eth[6..].copy_from_slice(&self.r.ifaces[oif as usize].mac);
        for pkt in batch.iter_mut() {
            let Some(h) = pkt.data_mut().first_chunk_mut::<HEADERS>() else {
                continue;
            };
            let total = ipv6::HEADER + usize::from(u16::from_be_bytes([h[18], h[19]]));
            h[..12].copy_from_slice(&eth);
            // Above 1, checked for every frame.
            h[ETH_HEADER + 7] -= 1;
            // Ethernet pads short packets; the padding is not part of the packet.
            pkt.set_len(ETH_HEADER + total);
        }
        let n = batch.len() as u64;
        self.tx
            .out
            .hand_over(port, batch, self.tx.pool, self.tx.flush);
        self.counters.ifaces[oif as usize].tx_packets.add(n);
        true
    }
}
