//! The statistics report printed on SIGUSR1 and at the `--stats` interval.
//!
//! Each line is `stats` and `key=value` tokens so that scripts and tests can parse it;
//! rx counts frames vnf received from a port's frontend, tx frames it delivered to it.

use std::fmt::Write;

use virtio::{DropReason, QueueCounters, RingError};

use crate::l2::mactable::key_parts;
use crate::switch::Switch;
use crate::worker::WorkerStats;

#[derive(Default)]
struct Totals {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
    drops: [u64; DropReason::ALL.len()],
    errors: [u64; RingError::ALL.len()],
}

impl Totals {
    fn add(&mut self, rx: &QueueCounters, tx: &QueueCounters) {
        self.rx_packets += rx.rx_packets.get();
        self.rx_bytes += rx.rx_bytes.get();
        self.tx_packets += tx.tx_packets.get();
        self.tx_bytes += tx.tx_bytes.get();
        for (i, d) in DropReason::ALL.iter().enumerate() {
            self.drops[i] += rx.drops(*d) + tx.drops(*d);
        }
        for (i, e) in RingError::ALL.iter().enumerate() {
            self.errors[i] += rx.errors(*e) + tx.errors(*e);
        }
    }

    fn write_drops(&self, out: &mut String) {
        for (i, d) in DropReason::ALL.iter().enumerate() {
            if self.drops[i] > 0 {
                let _ = write!(out, " drop_{}={}", d.name(), self.drops[i]);
            }
        }
    }

    fn write(&self, out: &mut String) {
        let drops: u64 = self.drops.iter().sum();
        let _ = write!(
            out,
            " rx_packets={} rx_bytes={} tx_packets={} tx_bytes={} drops={}",
            self.rx_packets, self.rx_bytes, self.tx_packets, self.tx_bytes, drops
        );
        self.write_drops(out);
        for (i, e) in RingError::ALL.iter().enumerate() {
            if self.errors[i] > 0 {
                let _ = write!(out, " error_{}={}", e.name(), self.errors[i]);
            }
        }
    }
}

pub fn report(switch: &Switch, workers: &[std::sync::Arc<WorkerStats>]) -> String {
    let mut out = String::from("stats begin\n");
    for port in &switch.ports {
        let mut all = Totals::default();
        for q in 0..port.pairs as usize {
            let (rx, tx) = (&port.rx[q], &port.tx[q]);
            let state = match (rx.state(), tx.state()) {
                ("needs_reset", _) | (_, "needs_reset") => "needs_reset",
                (a, _) => a,
            };
            let mut t = Totals::default();
            t.add(&rx.counters, &tx.counters);
            all.add(&rx.counters, &tx.counters);
            let _ = write!(out, "stats port={} queue={q} state={state}", port.name);
            t.write(&mut out);
            out.push('\n');
        }
        let _ = write!(out, "stats port={} queue=all", port.name);
        all.write(&mut out);
        out.push('\n');
    }
    bridges(switch, workers, &mut out);
    router(switch, workers, &mut out);
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(
            out,
            "stats worker={i} polls={} busy_polls={} sleeps={} pool_empty={}",
            w.polls.get(),
            w.busy_polls.get(),
            w.sleeps.get(),
            w.pool_empty.get()
        );
    }
    out.push_str("stats end\n");
    out
}

/// Most MAC entries listed per bridge, so a full table cannot flood the log.
const MAX_LISTED_MACS: usize = 4096;

/// Bridge lines: one per member, one for the whole bridge (`member=all`), then the MAC
/// table (`mac=`), entries sorted by VLAN and address.
fn bridges(switch: &Switch, workers: &[std::sync::Arc<WorkerStats>], out: &mut String) {
    let l2 = &switch.l2;
    for b in &l2.bridges {
        let mut all = [0u64; 6];
        for m in &b.members {
            let mut v = [0u64; 6];
            for w in workers {
                let c = &w.l2.members[m.counter];
                for (slot, counter) in v.iter_mut().zip([
                    &c.rx_packets,
                    &c.tx_packets,
                    &c.flooded,
                    &c.learned,
                    &c.moved,
                    &c.limit_hits,
                ]) {
                    *slot += counter.get();
                }
            }
            for (a, x) in all.iter_mut().zip(v) {
                *a += x;
            }
            let _ = write!(
                out,
                "stats bridge={} member={}",
                b.name, l2.interfaces[m.iface as usize].name
            );
            member_counters(&v, out);
            out.push('\n');
        }
        let mut entries = b.table.entries();
        entries.sort_by_key(|(k, _)| *k);
        let _ = write!(
            out,
            "stats bridge={} member=all macs={}",
            b.name,
            entries.len()
        );
        member_counters(&all, out);
        let _ = writeln!(
            out,
            " aged={}",
            b.aged.load(std::sync::atomic::Ordering::Relaxed)
        );
        let now = l2.now();
        for (k, e) in entries.iter().take(MAX_LISTED_MACS) {
            let (vlan, mac) = key_parts(*k);
            let iface = &l2.interfaces[b.members[e.member as usize].iface as usize].name;
            let _ = write!(
                out,
                "stats bridge={} mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} vlan={vlan} interface={iface}",
                b.name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
            );
            if e.is_static {
                out.push_str(" type=static\n");
            } else {
                let _ = writeln!(out, " type=learned age={}", now.saturating_sub(e.seen));
            }
        }
        if entries.len() > MAX_LISTED_MACS {
            let _ = writeln!(
                out,
                "stats bridge={} macs_not_listed={}",
                b.name,
                entries.len() - MAX_LISTED_MACS
            );
        }
    }
}

fn member_counters(v: &[u64; 6], out: &mut String) {
    let _ = write!(
        out,
        " rx_packets={} tx_packets={} flooded={} learned={} moved={} limit_hits={}",
        v[0], v[1], v[2], v[3], v[4], v[5]
    );
}

/// Most neighbor entries listed.
const MAX_LISTED_NEIGHBORS: usize = 4096;

/// Router lines: one per router interface (`interface=`), a summary, then the neighbor
/// cache (`neighbor=`), sorted by interface and address.
fn router(switch: &Switch, workers: &[std::sync::Arc<WorkerStats>], out: &mut String) {
    let Some(r) = &switch.router else {
        return;
    };
    for (i, ifc) in r.ifaces.iter().enumerate() {
        let mut t = Totals::default();
        let mut v = [0u64; 9];
        for w in workers {
            let c = &w.l3.ifaces[i];
            t.add(&c.rx, &QueueCounters::default());
            t.tx_packets += c.tx_packets.get();
            for (slot, counter) in v.iter_mut().zip([
                &c.icmp_sent,
                &c.icmp_rate_limited,
                &c.arp_requests,
                &c.arp_replies,
                &c.nd_solicits,
                &c.nd_adverts,
                &c.fragments,
                &c.address_conflicts,
            ]) {
                *slot += counter.get();
            }
        }
        let drops: u64 = t.drops.iter().sum();
        let _ = write!(
            out,
            "stats router={} rx_packets={} tx_packets={} drops={drops}",
            ifc.name, t.rx_packets, t.tx_packets
        );
        t.write_drops(out);
        let _ = writeln!(
            out,
            " icmp_sent={} icmp_rate_limited={} arp_requests={} arp_replies={} nd_solicits={} \
             nd_adverts={} fragments={} address_conflicts={}",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
        );
    }
    let mut entries = r.neighbors.entries();
    entries.sort_by_key(|e| (e.iface, e.addr));
    let unresolved: u64 = workers.iter().map(|w| w.l3.unresolved.get()).sum();
    let _ = writeln!(
        out,
        "stats router=all neighbors={} unresolved={unresolved}",
        entries.len()
    );
    let now = r.now();
    for e in entries.iter().take(MAX_LISTED_NEIGHBORS) {
        let addr = match crate::l3::forward::v4_of_key(e.addr) {
            Some(a) => std::net::IpAddr::from(std::net::Ipv4Addr::from(a)),
            None => std::net::IpAddr::from(std::net::Ipv6Addr::from(e.addr)),
        };
        let m = e.mac;
        let _ = writeln!(
            out,
            "stats neighbor={addr} interface={} mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} state={} age_ms={}",
            r.ifaces[e.iface as usize].name,
            m[0], m[1], m[2], m[3], m[4], m[5],
            format!("{:?}", e.state).to_lowercase(),
            now.saturating_sub(e.updated)
        );
    }
}
