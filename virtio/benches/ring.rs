//! Per-frame cost of the virtqueue fast path: the descriptor walk, the copies in and out of
//! guest memory, and the used ring publication.
//!
//! A [`DriverRing`] plays the guest. Its buffers are laid out once; before every measured
//! batch it makes them available again (and takes the previous batch's used entries back),
//! outside the timed region, so the ring never runs dry and only the device's work is
//! measured. Everything runs on one core with the rings hot in its cache, so the figures
//! are a floor: a real guest writes the rings from another core.
//! Each timed batch also carries one `Instant` pair (about 30 ns on the 2-core CI machine,
//! under 1 ns per frame at 32 frames a batch).
//!
//! `cargo bench -p vnf-virtio --bench ring` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use packet::{Batch, Pool};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use virtio::driver::{Buffer, DriverRing, Layout};
use virtio::mem::MemTable;
use virtio::net::{NetQueue, VNET_HDR_LEN};
use virtio::ring::SplitRing;
use virtio::QueueCounters;

const MEM_SIZE: usize = 16 << 20;
const QSIZE: u16 = 256;
const TX_RING: u64 = 0;
const RX_RING: u64 = 0x1_0000;
const TX_BUFS: u64 = 0x10_0000;
const RX_BUFS: u64 = 0x80_0000;
/// Room for a 1500-byte frame and its header in each transmit buffer.
const TX_BUF_SIZE: u64 = 2048;
/// Receive buffers as Linux posts them with mergeable buffers (one page split in two).
const RX_BUF_SIZE: u32 = 2048;

/// One direction of a guest's queue pair, with `n` chains of one descriptor each, heads
/// 0..n, always offered in the same order.
struct Queue {
    drv: DriverRing,
    q: NetQueue,
    heads: Vec<u16>,
}

impl Queue {
    fn new(mem: &Arc<GuestMemoryMmap<()>>, ring_at: u64, mergeable: bool) -> Queue {
        let layout = Layout::contiguous(GuestAddress(ring_at), QSIZE).unwrap();
        let drv = DriverRing::new(mem.clone(), layout, false).unwrap();
        let ring = SplitRing::new(Arc::new(MemTable::new(mem.clone())), &drv.ring_config())
            .expect("valid ring");
        // Interrupts stay enabled, so every publication calls this (as it would signal
        // an eventfd; the system call itself is not what is measured here).
        let notify = Box::new(|| {
            black_box(());
        });
        Queue {
            drv,
            q: NetQueue::new(ring, VNET_HDR_LEN, mergeable, notify),
            heads: Vec::new(),
        }
    }

    /// Makes every chain available again, after taking back the used entries.
    fn repost(&mut self) {
        while self.drv.pop_used().unwrap().is_some() {}
        self.drv.offer(&self.heads).unwrap();
    }
}

/// A guest with a transmit queue holding `n` frames of `len` bytes and a receive queue
/// with `n` 2 KiB buffers.
struct Rig {
    tx: Queue,
    rx: Queue,
    pool: Pool,
    batch: Batch,
    c: QueueCounters,
}

impl Rig {
    fn new(n: u16, len: usize) -> Rig {
        let mem =
            Arc::new(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap());
        let mut tx = Queue::new(&mem, TX_RING, false);
        let mut rx = Queue::new(&mem, RX_RING, true);
        let mut bytes = vec![0u8; VNET_HDR_LEN + len];
        for h in 0..n {
            for (i, b) in bytes[VNET_HDR_LEN..].iter_mut().enumerate() {
                *b = (i as u16 ^ h) as u8;
            }
            let at = GuestAddress(TX_BUFS + u64::from(h) * TX_BUF_SIZE);
            mem.write_slice(&bytes, at).unwrap();
            tx.drv
                .write_chain(h, &[Buffer::readable(at, bytes.len() as u32)])
                .unwrap();
            tx.heads.push(h);
            let at = GuestAddress(RX_BUFS + u64::from(h) * u64::from(RX_BUF_SIZE));
            rx.drv
                .write_chain(h, &[Buffer::writable(at, RX_BUF_SIZE)])
                .unwrap();
            rx.heads.push(h);
        }
        Rig {
            tx,
            rx,
            pool: Pool::new(512).unwrap(),
            batch: Batch::default(),
            c: QueueCounters::default(),
        }
    }

    fn dequeue(&mut self) -> usize {
        self.tx
            .q
            .dequeue(&mut self.pool, &mut self.batch, 0, 0, &self.c)
    }

    /// Runs `op` once per iteration on freshly offered buffers and times only `op`.
    fn run(&mut self, iters: u64, mut op: impl FnMut(&mut Rig)) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            self.tx.repost();
            self.rx.repost();
            let t = Instant::now();
            op(self);
            total += t.elapsed();
            self.batch.free_all(&mut self.pool);
        }
        // A drop or a broken queue would mean the figures are not per frame moved.
        assert!(self.tx.q.broken().is_none() && self.rx.q.broken().is_none());
        assert_eq!(self.c.total_drops(), 0);
        total
    }
}

/// Adds benchmark `id` to `g`: `op` timed on a fresh rig of `n` frames of `len` bytes,
/// counted per frame.
fn bench_rig(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    (n, len): (u16, usize),
    mut op: impl FnMut(&mut Rig),
) {
    let mut rig = Rig::new(n, len);
    g.throughput(Throughput::Elements(u64::from(n)));
    g.bench_function(id, |b| b.iter_custom(|iters| rig.run(iters, &mut op)));
}

fn config() -> Criterion {
    // Short by default: the machines are small and shared.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

/// Dequeue of single-descriptor 64-byte frames: avail ring, descriptor walk, checks, a
/// 64-byte copy and the used entry, per frame.
fn walk(c: &mut Criterion) {
    let mut g = c.benchmark_group("dequeue_64B");
    for n in [32u16, 64] {
        bench_rig(&mut g, BenchmarkId::from_parameter(n), (n, 64), |r| {
            assert_eq!(r.dequeue(), usize::from(n));
        });
    }
    g.finish();
}

/// A frame's whole trip through the switch's queues: out of one guest's transmit queue
/// and into (its own) receive queue with mergeable buffers.
fn copy(c: &mut Criterion) {
    let mut g = c.benchmark_group("dequeue_enqueue");
    for len in [64usize, 1500] {
        for n in [32u16, 64] {
            let id = BenchmarkId::new(format!("{len}B"), n);
            bench_rig(&mut g, id, (n, len), |r| {
                assert_eq!(r.dequeue(), usize::from(n));
                r.rx.q.enqueue(&mut r.batch, &mut r.pool, &r.c);
            });
        }
    }
    g.finish();
}

/// Taking heads off the avail ring and returning them through the used ring, with one
/// index publication (and interrupt decision) per batch: no walk, no copy.
fn publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("used_publish");
    for n in [32u16, 64] {
        bench_rig(&mut g, BenchmarkId::from_parameter(n), (n, 64), |r| {
            let ring = r.tx.q.ring_mut();
            for _ in 0..n {
                let head = ring.next_head().unwrap();
                ring.put_used(head, 0);
            }
            black_box(ring.publish_used());
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = walk, copy, publish
}
criterion_main!(benches);
