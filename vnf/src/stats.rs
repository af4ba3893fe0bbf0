//! The statistics report printed on SIGUSR1 and at the `--stats` interval.
//!
//! Each line is `stats` and `key=value` tokens so that scripts and tests can parse it;
//! rx counts frames vnf received from a port's frontend, tx frames it delivered to it.

use std::fmt::Write;

use virtio::{DropReason, QueueCounters, RingError};

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

    fn write(&self, out: &mut String) {
        let drops: u64 = self.drops.iter().sum();
        let _ = write!(
            out,
            " rx_packets={} rx_bytes={} tx_packets={} tx_bytes={} drops={}",
            self.rx_packets, self.rx_bytes, self.tx_packets, self.tx_bytes, drops
        );
        for (i, d) in DropReason::ALL.iter().enumerate() {
            if self.drops[i] > 0 {
                let _ = write!(out, " drop_{}={}", d.name(), self.drops[i]);
            }
        }
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
