//! The rings the switch benchmarks run on: one guest memory holding port 0's transmit
//! ring, with a buffer for each of the batch's frames, and a receive ring per port. A
//! [`DriverRing`] plays the guests, outside the timed region.

// The LPM benchmarks use none of it.
#![allow(dead_code)]

use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryMmap};

use virtio::driver::{Buffer, DriverRing, Layout};
use virtio::mem::MemTable;
use virtio::net::{NetQueue, VNET_HDR_LEN};
use virtio::ring::SplitRing;

const MEM_SIZE: usize = 64 << 20;
const QSIZE: u16 = 256;
/// Frames per batch.
pub const N: u16 = 64;
/// Bytes per frame.
pub const LEN: usize = 64;
/// Where frame `h`'s transmit buffer is: `TX_BUFS + h * BUF`.
pub const TX_BUFS: u64 = 0x100_0000;
pub const BUF: u64 = 2048;
const RX_BUFS: u64 = 0x200_0000;

/// One virtqueue: the guest's side and vnf's.
pub struct Queue {
    pub drv: DriverRing,
    pub q: NetQueue,
    pub heads: Vec<u16>,
}

impl Queue {
    fn new(mem: &Arc<GuestMemoryMmap<()>>, ring_at: u64, mergeable: bool) -> Queue {
        let layout = Layout::contiguous(GuestAddress(ring_at), QSIZE).unwrap();
        let drv = DriverRing::new(mem.clone(), layout, false).unwrap();
        let ring = SplitRing::new(Arc::new(MemTable::new(mem.clone())), &drv.ring_config())
            .expect("valid ring");
        Queue {
            drv,
            q: NetQueue::new(ring, VNET_HDR_LEN, mergeable, Box::new(|| {})),
            heads: Vec::new(),
        }
    }

    /// The guest takes back what vnf used and offers the same buffers again.
    pub fn repost(&mut self) {
        while self.drv.pop_used().unwrap().is_some() {}
        self.drv.offer(&self.heads).unwrap();
    }
}

/// The guest memory, port 0's transmit ring and a receive ring for each of `ports`.
pub fn rings(ports: usize) -> (Arc<GuestMemoryMmap<()>>, Queue, Vec<Queue>) {
    let mem = Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap());
    let mut tx = Queue::new(&mem, 0, false);
    let mut rx: Vec<Queue> = (0..ports)
        .map(|p| Queue::new(&mem, 0x1_0000 * (p as u64 + 1), true))
        .collect();
    for h in 0..N {
        let at = GuestAddress(TX_BUFS + u64::from(h) * BUF);
        tx.drv
            .write_chain(h, &[Buffer::readable(at, (VNET_HDR_LEN + LEN) as u32)])
            .unwrap();
        tx.heads.push(h);
        for (p, q) in rx.iter_mut().enumerate() {
            let at = GuestAddress(RX_BUFS + (p as u64 * 256 + u64::from(h)) * BUF);
            q.drv
                .write_chain(h, &[Buffer::writable(at, BUF as u32)])
                .unwrap();
            q.heads.push(h);
        }
    }
    (mem, tx, rx)
}
