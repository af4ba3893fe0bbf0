//! The rings the switch benchmarks run on: one guest memory holding port 0's transmit
//! ring, with a buffer for each of the batch's frames, and a receive ring per port; and
//! the [`Rig`] that times batches through a stage on them. A [`DriverRing`] plays the
//! guests, outside the timed region.

// The LPM benchmarks use none of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use packet::{Batch, Pool};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use virtio::driver::{Buffer, DriverRing, Layout};
use virtio::mem::MemTable;
use virtio::net::{NetQueue, VNET_HDR_LEN};
use virtio::ring::SplitRing;
use virtio::QueueCounters;
use vnf::l2::Outputs;

const MEM_SIZE: usize = 64 << 20;
const QSIZE: u16 = 256;
/// Frames per batch.
pub const N: u16 = 64;
/// Bytes per frame.
pub const LEN: usize = 64;
/// Where frame `h`'s transmit buffer is: `TX_BUFS + h * BUF`.
const TX_BUFS: u64 = 0x100_0000;
const BUF: u64 = 2048;
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
fn rings(ports: usize) -> (Arc<GuestMemoryMmap<()>>, Queue, Vec<Queue>) {
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

/// Port 0's transmit ring, a receive ring for each port, and what a worker keeps around
/// them. `S` is whatever else the stage under test keeps per worker (the router: its
/// input batch, as the worker's `Local::scratch`).
pub struct Rig<S = ()> {
    pub mem: Arc<GuestMemoryMmap<()>>,
    pub tx: Queue,
    pub rx: Vec<Queue>,
    pub pool: Pool,
    pub batch: Batch,
    pub out: Outputs,
    pub c: QueueCounters,
    pub local: S,
    /// A port that must receive every batch whole; checked after each, untimed.
    pub whole_to: Option<usize>,
    /// The longest batch timed so far.
    pub slowest: Duration,
}

impl<S: Default> Rig<S> {
    /// `outputs`: the worker's output batches, one per port (and, for the router, per
    /// virtual port).
    pub fn new(ports: usize, outputs: usize) -> Self {
        let (mem, tx, rx) = rings(ports);
        Rig {
            mem,
            tx,
            rx,
            pool: Pool::new(1024).unwrap(),
            batch: Batch::default(),
            out: Outputs::new(outputs),
            c: QueueCounters::default(),
            local: S::default(),
            whole_to: None,
            slowest: Duration::ZERO,
        }
    }
}

impl<S> Rig<S> {
    /// Writes the `N` transmit frames, `frame` filling each from zeros (outside any
    /// timing). Dequeue copies them, so they serve every batch until written again.
    pub fn write_frames(&mut self, frame: impl Fn(u16, &mut [u8; LEN])) {
        let mut f = [0u8; VNET_HDR_LEN + LEN];
        for h in 0..N {
            let e: &mut [u8; LEN] = (&mut f[VNET_HDR_LEN..]).try_into().expect("LEN");
            e.fill(0);
            frame(h, e);
            self.mem
                .write_slice(&f, GuestAddress(TX_BUFS + u64::from(h) * BUF))
                .unwrap();
        }
    }

    /// Times `iters` batches, each dequeued from port 0's transmit ring and handed on by
    /// `stage`; `prepare` runs before each, untimed, and so do the guests' taking back
    /// and offering again of their buffers.
    pub fn run(
        &mut self,
        iters: u64,
        mut prepare: impl FnMut(&mut Self),
        mut stage: impl FnMut(&mut Self),
    ) -> Duration {
        let mut total = Duration::ZERO;
        for i in 0..iters {
            prepare(self);
            self.tx.repost();
            for q in &mut self.rx {
                q.repost();
            }
            let t = Instant::now();
            let n = self
                .tx
                .q
                .dequeue(&mut self.pool, &mut self.batch, 0, 0, &self.c);
            assert_eq!(n, N as usize);
            stage(self);
            let took = t.elapsed();
            total += took;
            self.slowest = self.slowest.max(took);
            if let Some(p) = self.whole_to {
                let out = self.rx[p].drv.pending_used().unwrap();
                assert_eq!(out, N, "batch {i}: {out} of {N} frames forwarded");
            }
        }
        assert_eq!(self.c.total_drops(), 0, "no frame may be dropped");
        total
    }

    /// The baseline stage: the batch goes to port 1 as it is.
    pub fn xconnect(&mut self) {
        self.rx[1]
            .q
            .enqueue(&mut self.batch, &mut self.pool, &self.c);
    }
}
