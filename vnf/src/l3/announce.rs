//! The router introduces itself on a link when a VM attaches to it: a gratuitous ARP
//! for each IPv4 address (RFC 5227's announcement), so that a neighbor with an old
//! entry learns the router's MAC at once, and duplicate address detection for each IPv6
//! address (RFC 4862: a neighbor solicitation from the unspecified address; an answer
//! means another node has it, which is counted and logged as an address conflict).

use super::arp::{self, Arp};
use super::forward::{Ctx, ETHERTYPE_ARP, ETHERTYPE_IPV6};
use super::nd;
use super::router::Egress;
use crate::l2::wire::ETH_HEADER;

/// How often a worker looks for newly attached VMs.
const LOOK_EVERY_MS: u64 = 500;

impl super::forward::L3Worker {
    /// Whether it is time for [`Ctx::announce`] (cheap: for every poll loop).
    #[inline]
    pub fn announce_due(&self, now: u64) -> bool {
        now >= self.next_look
    }
}

impl Ctx<'_> {
    /// Announces the router on every interface whose port (`attached[p]` per port) has
    /// just gained a VM; a bridge's interface on any port's attachment, since that port
    /// may be one of the bridge's. For one worker's poll loop, rarely.
    pub fn announce(&mut self, attached: &[bool]) {
        self.w.next_look = self.now + LOOK_EVERY_MS;
        let before = std::mem::take(&mut self.w.attached);
        let new: Vec<usize> = (0..attached.len())
            .filter(|&p| attached[p] && !before.get(p).copied().unwrap_or(false))
            .collect();
        self.w.attached = attached.to_vec();
        if new.is_empty() {
            return;
        }
        for ri in 0..self.r.ifaces.len() as u16 {
            let on_new_port = match &self.r.ifaces[ri as usize].egress {
                Egress::Port { port, .. } => new.contains(&(*port as usize)),
                Egress::Bridge { .. } => true,
            };
            if on_new_port {
                self.introduce(ri);
            }
        }
    }

    fn introduce(&mut self, ri: u16) {
        let ifc = &self.r.ifaces[ri as usize];
        let (mac, v4, v6) = (ifc.mac, ifc.v4.clone(), ifc.v6.clone());
        for (ip, _) in v4 {
            let a = Arp {
                op: arp::REQUEST,
                sender_mac: mac,
                sender_ip: ip,
                target_mac: [0; 6],
                target_ip: ip,
            };
            self.send_built(ri, [0xff; 6], ETHERTYPE_ARP, |b| arp::write(b, &a));
            self.counters.ifaces[ri as usize].arp_requests.add(1);
        }
        let link_local = self.r.ifaces[ri as usize].link_local;
        for ip in v6.iter().map(|(a, _)| *a).chain([link_local]) {
            let dst = nd::multicast_mac(nd::solicited_node(ip));
            self.send_built(ri, dst, ETHERTYPE_IPV6, |b| {
                nd::write_solicit(b, 0, ip, mac, None)
            });
            self.counters.ifaces[ri as usize].nd_solicits.add(1);
        }
    }

    /// Sends a frame to `dst` whose payload `build` writes (returning its length).
    fn send_built(
        &mut self,
        ri: u16,
        dst: [u8; 6],
        ethertype: u16,
        build: impl FnOnce(&mut [u8]) -> usize,
    ) {
        let Some(mut p) = self.tx.pool.alloc() else {
            return;
        };
        let room = p.room_mut();
        let n = build(&mut room[ETH_HEADER..]);
        if n == 0 {
            return self.tx.pool.free(p);
        }
        room[..6].copy_from_slice(&dst);
        room[6..12].copy_from_slice(&self.r.ifaces[ri as usize].mac);
        room[12..14].copy_from_slice(&ethertype.to_be_bytes());
        p.set_len(ETH_HEADER + n);
        self.emit(ri, p);
    }
}
