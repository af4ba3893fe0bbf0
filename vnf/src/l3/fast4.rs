//! The IPv4 fast path of the routing stage, in stages over the whole batch, as VPP
//! and DPDK's l3fwd do: first every frame's header is checked, then all destinations
//! are looked up at once (their cache misses overlap instead of queueing), then the
//! frames are rewritten and sorted into output batches. What it takes: plain IPv4 (no
//! options) to the router's MAC, TTL above 1, a unicast source, a route to
//! a neighbor on a port that fits the packet. Everything else (ARP, IPv6, ICMP to
//! generate, fragmentation, bridges, ECMP) is left in order for the general path.

use packet::{Batch, Packet, BATCH_SIZE};

use super::checksum;
use super::forward::{martian4, Ctx};
use super::ipv4;
use super::lpm4::NO_ROUTE;
use super::neighbor::{v4_key, Resolve};
use super::router::{Egress, NextHop};
use crate::l2::forward::push_out;
use crate::l2::wire::ETH_HEADER;

/// Bytes of Ethernet and IPv4 header the checks read.
const HEADERS: usize = ETH_HEADER + ipv4::HEADER;

/// The destination of a frame the fast path can take, or None. `mac` is the router
/// interface's address as [`mac_word`] gives it.
#[inline(always)]
fn plain_v4(frame: &[u8], mac: u64) -> Option<u32> {
    let h: &[u8; HEADERS] = frame.first_chunk()?;
    let l3: &[u8; ipv4::HEADER] = h[ETH_HEADER..].try_into().expect("20 bytes");
    let word = |at: usize| u64::from_le_bytes(h[at..at + 8].try_into().expect("8 bytes"));
    let total = usize::from(u16::from_be_bytes([l3[2], l3[3]]));
    let src = u32::from_be_bytes([l3[12], l3[13], l3[14], l3[15]]);
    // Every term is cheap: `&` evaluates them all instead of branching on each.
    let plain = (word(0) & 0xffff_ffff_ffff == mac)
        // EtherType 0x0800, version 4 and a 20-byte header (bytes 12 to 14).
        & (u32::from_le_bytes([h[12], h[13], h[14], 0]) == 0x0045_0008)
        & (total >= ipv4::HEADER)
        & (total <= frame.len() - ETH_HEADER)
        & (l3[8] > 1)
        & !martian4(src)
        & checksum::verify_ipv4_header(l3);
    plain.then(|| u32::from_be_bytes([l3[16], l3[17], l3[18], l3[19]]))
}

/// A MAC address as the low 48 bits of a little-endian word, as `plain_v4` compares it.
fn mac_word(mac: &[u8; 6]) -> u64 {
    u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0])
}

/// The mask of a batch of `n` frames.
fn all(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// Frames counted for one interface since the last change of interface.
struct Run {
    oif: u16,
    n: u64,
}

impl Ctx<'_> {
    /// Forwards what it can of `batch` and moves the rest, in order, to `rest`.
    pub(super) fn fast4(&mut self, ri: u16, batch: &mut Batch, rest: &mut Batch) {
        let mac = mac_word(&self.r.ifaces[ri as usize].mac);
        let n = batch.len();
        let mut dst = [0u32; BATCH_SIZE];
        let mut plain = 0u64;
        let mut one_dst = true;
        for (i, p) in batch.iter().enumerate() {
            if let Some(d) = plain_v4(p.data(), mac) {
                dst[i] = d;
                plain |= 1 << i;
                one_dst &= d == dst[plain.trailing_zeros() as usize];
            }
        }
        if plain == 0 {
            std::mem::swap(batch, rest);
            return;
        }
        let mut hop = [NO_ROUTE; BATCH_SIZE];
        if one_dst {
            // A bulk transfer: one lookup serves the batch.
            let d = dst[plain.trailing_zeros() as usize];
            let id = self.r.fib4.lookup(d).unwrap_or(NO_ROUTE);
            if plain == all(n) && self.whole_batch(id, d, batch) {
                return;
            }
            hop = [id; BATCH_SIZE];
        } else {
            self.r.fib4.lookup_many(&dst[..n], &mut hop[..n]);
        }
        let mut last: Option<(u16, u128, [u8; 6])> = None;
        let mut run = Run { oif: 0, n: 0 };
        let rx = &self.counters.ifaces[self.in_if as usize].rx;
        for (i, mut pkt) in batch.drain().enumerate() {
            let Some((oif, key, port)) = self.fast_hop(plain, i, hop[i], dst[i], &pkt) else {
                let _ = rest.push(pkt);
                continue;
            };
            // Ethernet pads short packets; the padding is not part of the datagram.
            let total = u16::from_be_bytes([pkt.data()[16], pkt.data()[17]]);
            pkt.set_len(ETH_HEADER + usize::from(total));
            ipv4::decrement_ttl(&mut pkt.data_mut()[ETH_HEADER..]);
            let to = match last {
                Some((o, k, m)) if o == oif && k == key => m,
                _ => match self.r.neighbors.resolve(oif, key, self.now) {
                    Resolve::Mac(m) => {
                        last = Some((oif, key, m));
                        m
                    }
                    res => {
                        // Not known yet, or due for a probe: the general path asks.
                        self.send_resolved(oif, key, pkt, res);
                        continue;
                    }
                },
            };
            let d = pkt.data_mut();
            d[..6].copy_from_slice(&to);
            d[6..12].copy_from_slice(&self.r.ifaces[oif as usize].mac);
            if oif != run.oif {
                self.count_tx(&mut run);
                run.oif = oif;
            }
            run.n += 1;
            push_out(port, pkt, self.tx.pool, self.tx.out, rx, self.tx.flush);
        }
        self.count_tx(&mut run);
    }

    /// The shortcut for a batch that is one flow to a resolved neighbor: one decision
    /// for all, each frame only rewritten, and the batch handed to its port whole.
    /// Returns false, having changed nothing, if the batch does not qualify.
    fn whole_batch(&mut self, id: u32, dst: u32, batch: &mut Batch) -> bool {
        let Some(first) = batch.iter().next() else {
            return false;
        };
        let Some((oif, key, port)) = self.fast_hop(1, 0, id, dst, first) else {
            return false;
        };
        let mtu = self.r.ifaces[oif as usize].mtu as usize;
        if batch.iter().any(|p| p.len() - ETH_HEADER > mtu) {
            return false;
        }
        // Only a look: if the neighbor needs asking, the per-frame path asks, once.
        let Some(to) = self.r.neighbors.usable(oif, key, self.now) else {
            return false;
        };
        let mut addrs = [0u8; 12];
        addrs[..6].copy_from_slice(&to);
        addrs[6..].copy_from_slice(&self.r.ifaces[oif as usize].mac);
        for pkt in batch.iter_mut() {
            // Every frame passed `plain_v4`: it holds both headers, its TTL is above 1.
            let Some(h) = pkt.data_mut().first_chunk_mut::<HEADERS>() else {
                continue;
            };
            let total = u16::from_be_bytes([h[16], h[17]]);
            h[..12].copy_from_slice(&addrs);
            let l3: &mut [u8; ipv4::HEADER] = (&mut h[ETH_HEADER..]).try_into().expect("20 bytes");
            ipv4::decrement_nonzero_ttl(l3);
            pkt.set_len(ETH_HEADER + usize::from(total));
        }
        let n = batch.len() as u64;
        self.tx
            .out
            .hand_over(port, batch, self.tx.pool, self.tx.flush);
        self.counters.ifaces[oif as usize].tx_packets.add(n);
        true
    }

    /// Where frame `i` goes if the fast path can take it: its interface, neighbor and
    /// port.
    #[inline(always)]
    fn fast_hop(
        &self,
        plain: u64,
        i: usize,
        hop: u32,
        dst: u32,
        pkt: &Packet,
    ) -> Option<(u16, u128, u16)> {
        if plain & (1 << i) == 0 {
            return None;
        }
        let (oif, key) = match self.r.hops.get(hop as usize)? {
            NextHop::Connected(o) => (*o, v4_key(dst)),
            NextHop::Gateway { iface, via } => (*iface, *via),
            _ => return None,
        };
        let port = self.plain_port(oif, pkt.len() - ETH_HEADER)?;
        Some((oif, key, port))
    }

    /// The port behind router interface `oif` if packets of up to `len` bytes leave
    /// there as they are (a port or subinterface adding no tags, `len` within the
    /// MTU): what the shortcuts of both families ask before they rewrite.
    #[inline(always)]
    pub(super) fn plain_port(&self, oif: u16, len: usize) -> Option<u16> {
        let out = &self.r.ifaces[oif as usize];
        match &out.egress {
            Egress::Port { port, push } if push.is_empty() && len <= out.mtu as usize => {
                Some(*port)
            }
            _ => None,
        }
    }

    fn count_tx(&self, run: &mut Run) {
        if run.n > 0 {
            self.counters.ifaces[run.oif as usize].tx_packets.add(run.n);
            run.n = 0;
        }
    }
}
