//! The device side ([`NetQueue`] over [`SplitRing`]) driven through the driver side
//! ([`DriverRing`]) in real guest memory: frames in both directions, notifications, and a
//! hostile guest breaking every rule the device checks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use packet::{Batch, Pool, MAX_FRAME};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::driver::{
    Buffer, Descriptor, DriverRing, Layout, UsedElem, AVAIL_F_NO_INTERRUPT, DESC_F_INDIRECT,
    DESC_F_NEXT,
};
use crate::mem::MemTable;
use crate::net::{NetQueue, VNET_HDR_LEN, VNET_HDR_LEN_LEGACY};
use crate::ring::{RingConfig, RingError, SplitRing, MAX_CHAIN};
use crate::{DropReason, QueueCounters};

/// Guest memory: one region of 4 MiB at GPA 0.
const MEM_SIZE: u64 = 4 << 20;
/// The rings start at GPA 0; indirect tables and buffers are allocated from here on.
const HEAP: u64 = 1 << 20;
const QSIZE: u16 = 256;
const PORT: u16 = 7;
const QUEUE: u16 = 3;
/// What receive buffers hold before the device writes them.
const FILL: u8 = 0xee;

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8) ^ (usize::from(seed) * 17)) as u8)
        .collect()
}

/// `frame` behind a clean 12-byte virtio-net header.
fn with_hdr(frame: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; VNET_HDR_LEN];
    v.extend_from_slice(frame);
    v
}

/// One queue of a guest with its own memory: the driver's end, the device's end, its
/// counters and a count of the interrupts raised.
struct Guest {
    mem: Arc<GuestMemoryMmap<()>>,
    drv: DriverRing,
    q: NetQueue,
    c: QueueCounters,
    notes: Arc<AtomicUsize>,
    heap: u64,
    next_desc: u16,
}

impl Guest {
    fn new(size: u16, start: u16, event_idx: bool, hdr_len: usize, mergeable: bool) -> Guest {
        let mem = Arc::new(
            GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap(),
        );
        let layout = Layout::contiguous(GuestAddress(0), size).unwrap();
        assert!(layout.end().0 <= HEAP);
        let drv = DriverRing::starting_at(mem.clone(), layout, event_idx, start).unwrap();
        let ring = SplitRing::new(Arc::new(MemTable::new(mem.clone())), &drv.ring_config())
            .expect("a valid ring");
        let notes = Arc::new(AtomicUsize::new(0));
        let n = notes.clone();
        let notify = Box::new(move || {
            n.fetch_add(1, Ordering::Relaxed);
        });
        Guest {
            mem,
            drv,
            q: NetQueue::new(ring, hdr_len, mergeable, notify),
            c: QueueCounters::default(),
            notes,
            heap: HEAP,
            next_desc: 0,
        }
    }

    /// A transmit queue of QSIZE, no event_idx.
    fn tx() -> Guest {
        Guest::new(QSIZE, 0, false, VNET_HDR_LEN, false)
    }

    /// A receive queue of QSIZE, no event_idx.
    fn rx(mergeable: bool) -> Guest {
        Guest::new(QSIZE, 0, false, VNET_HDR_LEN, mergeable)
    }

    /// `tx()` and a descriptor, written nowhere yet, of a good 60-byte frame in its
    /// memory: what a hostile chain is built around, so that only the fault it plants can
    /// break the queue.
    fn tx_with_frame() -> (Guest, Descriptor) {
        let mut g = Guest::tx();
        let b = g.put(&with_hdr(&frame(60, 1)));
        (g, Descriptor::readable(b.addr, b.len))
    }

    fn alloc(&mut self, len: usize) -> GuestAddress {
        let at = self.heap;
        self.heap = (at + len as u64 + 63) & !63;
        assert!(self.heap <= MEM_SIZE, "test heap exhausted");
        GuestAddress(at)
    }

    /// Copies `bytes` into a fresh guest buffer the device reads.
    fn put(&mut self, bytes: &[u8]) -> Buffer {
        let at = self.alloc(bytes.len());
        self.mem.write_slice(bytes, at).unwrap();
        Buffer::readable(at, bytes.len() as u32)
    }

    /// Copies `bytes` into separate guest buffers of `sizes` bytes each.
    fn put_split(&mut self, bytes: &[u8], sizes: &[usize]) -> Vec<Buffer> {
        assert_eq!(sizes.iter().sum::<usize>(), bytes.len());
        let mut off = 0;
        sizes
            .iter()
            .map(|&n| {
                let b = self.put(&bytes[off..off + n]);
                off += n;
                b
            })
            .collect()
    }

    /// A fresh guest buffer of `len` bytes for the device to write, filled with FILL.
    fn rx_buf(&mut self, len: usize) -> Buffer {
        let at = self.alloc(len);
        self.mem.write_slice(&vec![FILL; len], at).unwrap();
        Buffer::writable(at, len as u32)
    }

    /// Posts a fresh receive buffer of `len` bytes as a chain of its own; returns it.
    fn post_rx_buf(&mut self, len: usize) -> Buffer {
        let b = self.rx_buf(len);
        self.post(&[b]);
        b
    }

    fn read(&self, b: &Buffer) -> Vec<u8> {
        let mut v = vec![0u8; b.len as usize];
        self.mem.read_slice(&mut v, b.addr).unwrap();
        v
    }

    /// `n` consecutive descriptor indexes (wrapping), as a simple driver would hand out.
    fn descs(&mut self, n: usize) -> u16 {
        let first = self.next_desc;
        self.next_desc = ((usize::from(first) + n) % usize::from(self.drv.size())) as u16;
        first
    }

    /// Writes `bufs` as a direct chain and makes it available. Returns its head.
    fn post(&mut self, bufs: &[Buffer]) -> u16 {
        let head = self.descs(bufs.len());
        self.drv.write_chain(head, bufs).unwrap();
        self.drv.offer(&[head]).unwrap();
        head
    }

    /// Writes `bufs` as an indirect chain (table on the heap, head in one descriptor) and
    /// makes it available. Returns its head.
    fn post_indirect(&mut self, bufs: &[Buffer]) -> u16 {
        let head = self.descs(1);
        let table = self.alloc(16 * bufs.len());
        self.drv.write_indirect(head, table, bufs).unwrap();
        self.drv.offer(&[head]).unwrap();
        head
    }

    /// Writes `descs` as an indirect table on the heap; returns its address.
    fn table(&mut self, descs: &[Descriptor]) -> GuestAddress {
        let at = self.alloc(16 * descs.len());
        self.drv.write_table(at, descs).unwrap();
        at
    }

    /// Makes available the chain written by hand in descriptors `0..n`, head 0.
    fn offer_by_hand(&mut self, n: u16) {
        self.next_desc = n;
        self.drv.offer(&[0]).unwrap();
    }

    /// Makes descriptor `d`, written at a fresh index, available as a chain of its own.
    fn post_raw(&mut self, d: Descriptor) -> u16 {
        let head = self.descs(1);
        self.drv.write_desc(head, d).unwrap();
        self.drv.offer(&[head]).unwrap();
        head
    }

    /// Offers `frame` for transmission, header and frame in one descriptor.
    fn post_frame(&mut self, frame: &[u8]) -> u16 {
        let b = self.put(&with_hdr(frame));
        self.post(&[b])
    }

    /// One dequeue into an empty batch; the frames' bytes, in order.
    fn dequeue(&mut self, pool: &mut Pool) -> Vec<Vec<u8>> {
        let mut batch = Batch::default();
        let n = self.q.dequeue(pool, &mut batch, PORT, QUEUE, &self.c);
        assert_eq!(n, batch.len());
        let frames = batch
            .iter()
            .map(|p| {
                assert_eq!((p.in_port, p.in_queue), (PORT, QUEUE));
                p.data().to_vec()
            })
            .collect();
        batch.free_all(pool);
        frames
    }

    /// One enqueue of `frames`; checks every packet buffer went back to the pool.
    fn enqueue(&mut self, pool: &mut Pool, frames: &[&[u8]]) {
        let mut batch = Batch::default();
        for f in frames {
            let mut p = pool.alloc().expect("pool big enough");
            p.room_mut()[..f.len()].copy_from_slice(f);
            assert!(p.set_len(f.len()));
            batch.push(p).unwrap();
        }
        let before = pool.available();
        self.q.enqueue(&mut batch, pool, &self.c);
        assert!(batch.is_empty());
        assert_eq!(pool.available(), before + frames.len());
    }

    fn used_idx(&self) -> u16 {
        self.drv.used_idx().unwrap()
    }

    /// Every used entry published since the last call.
    fn take_used(&mut self) -> Vec<UsedElem> {
        std::iter::from_fn(|| self.drv.pop_used().unwrap()).collect()
    }

    fn notified(&self) -> usize {
        let n = self.notes.load(Ordering::Relaxed);
        assert_eq!(n as u64, self.c.notifications.get());
        n
    }

    fn errors(&self) -> Vec<(RingError, u64)> {
        RingError::ALL
            .iter()
            .map(|&e| (e, self.c.errors(e)))
            .filter(|&(_, n)| n != 0)
            .collect()
    }

    fn drops(&self) -> Vec<(DropReason, u64)> {
        DropReason::ALL
            .iter()
            .map(|&d| (d, self.c.drops(d)))
            .filter(|&(_, n)| n != 0)
            .collect()
    }

    /// Checks that the receive queue has delivered nothing yet and dropped `n` frames, all
    /// for `why`, leaving its ring as the driver wrote it: no chain consumed, no used
    /// entry, no interrupt.
    #[track_caller]
    fn assert_only_dropped(&self, why: DropReason, n: u64) {
        assert_eq!(self.drops(), [(why, n)]);
        assert_eq!(self.used_idx(), 0);
        assert_eq!(self.q.ring().last_avail(), 0, "no chain consumed");
        assert_eq!(self.notified(), 0);
    }
}

fn pool() -> Pool {
    Pool::new(160).unwrap()
}

/// Compares frames by length first and then by first differing byte, so that a failure
/// does not print kilobytes of frame.
#[track_caller]
fn assert_frames<W: AsRef<[u8]>>(got: &[Vec<u8>], want: &[W]) {
    let lens = |v: &mut dyn Iterator<Item = usize>| v.collect::<Vec<_>>();
    assert_eq!(
        lens(&mut got.iter().map(|f| f.len())),
        lens(&mut want.iter().map(|f| f.as_ref().len())),
        "frame lengths"
    );
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        if let Some(at) = g.iter().zip(w.as_ref()).position(|(a, b)| a != b) {
            panic!("frame {k} differs at byte {at}");
        }
    }
}

fn used(entries: &[(u16, u32)]) -> Vec<UsedElem> {
    entries
        .iter()
        .map(|&(id, len)| UsedElem {
            id: u32::from(id),
            len,
        })
        .collect()
}

// Transmit: guest -> device.

#[test]
fn dequeue_single_descriptor_frames() {
    let mut pool = pool();
    let mut g = Guest::tx();
    let frames = [frame(60, 1), frame(1514, 2), frame(14, 3), frame(9000, 4)];
    // Heads out of order, as a driver recycling descriptors would have them.
    let heads = [5u16, 0, 9, 200];
    for (f, &h) in frames.iter().zip(&heads) {
        let b = g.put(&with_hdr(f));
        g.drv.write_chain(h, &[b]).unwrap();
        g.drv.push(h).unwrap();
    }
    g.drv.publish().unwrap();

    assert_frames(&g.dequeue(&mut pool), &frames);
    assert_eq!(g.used_idx(), 4);
    let want: Vec<(u16, u32)> = heads.iter().map(|&h| (h, 0)).collect();
    assert_eq!(g.take_used(), used(&want));
    assert_eq!(g.c.rx_packets.get(), 4);
    assert_eq!(
        g.c.rx_bytes.get(),
        frames.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert_eq!(g.notified(), 1);
    assert!(g.q.broken().is_none());
    assert!(g.drops().is_empty() && g.errors().is_empty());
    assert_eq!(g.q.ring().last_avail(), 4);
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn dequeue_header_in_its_own_descriptor() {
    let mut pool = pool();
    let mut g = Guest::tx();
    let frames = [frame(1000, 1), frame(60, 2)];
    let mut heads = Vec::new();
    for f in &frames {
        let h = g.put(&[0u8; VNET_HDR_LEN]);
        let d = g.put(f);
        heads.push(g.post(&[h, d]));
    }
    assert_eq!(heads, [0, 2]);
    assert_frames(&g.dequeue(&mut pool), &frames);
    assert_eq!(g.take_used(), used(&[(0, 0), (2, 0)]));
}

#[test]
fn dequeue_header_split_across_descriptors() {
    let mut pool = pool();
    let mut g = Guest::tx();
    let f1 = frame(100, 1);
    let bytes = with_hdr(&f1);
    let bufs = g.put_split(&bytes, &[5, 7 + 30, 70]);
    g.post(&bufs);
    // Twelve one-byte descriptors of header, then the frame.
    let f2 = frame(64, 2);
    let bytes = with_hdr(&f2);
    let mut sizes = vec![1; VNET_HDR_LEN];
    sizes.push(64);
    let bufs = g.put_split(&bytes, &sizes);
    g.post(&bufs);
    assert_frames(&g.dequeue(&mut pool), &[f1, f2]);
    assert_eq!(g.take_used(), used(&[(0, 0), (3, 0)]));
}

#[test]
fn dequeue_indirect_chains() {
    let mut pool = pool();
    let mut g = Guest::tx();
    g.descs(3); // start the indirect heads at descriptor 3
    let f1 = frame(1400, 1);
    let mut bufs = vec![g.put(&[0u8; VNET_HDR_LEN])];
    bufs.extend(g.put_split(&f1, &[700, 700]));
    let h1 = g.post_indirect(&bufs);
    let f2 = frame(60, 2);
    let b = g.put(&with_hdr(&f2));
    let h2 = g.post_indirect(&[b]);
    // A direct chain between indirect ones.
    let f3 = frame(300, 3);
    let h3 = g.post_frame(&f3);
    assert_eq!((h1, h2, h3), (3, 4, 5));
    assert_eq!(g.drv.read_desc(h1).unwrap().flags, DESC_F_INDIRECT);
    assert_frames(&g.dequeue(&mut pool), &[f1, f2, f3]);
    assert_eq!(g.take_used(), used(&[(3, 0), (4, 0), (5, 0)]));
    assert!(g.q.broken().is_none());
}

#[test]
fn dequeue_frames_split_over_many_descriptors() {
    let mut pool = pool();
    let mut g = Guest::tx();
    // MAX_SKB_FRAGS + 2 descriptors of uneven sizes, as Linux builds them.
    let f1 = frame(1514, 1);
    let bytes = with_hdr(&f1);
    let mut sizes: Vec<usize> = (1..=18).map(|k| k * 5).collect();
    sizes.push(bytes.len() - sizes.iter().sum::<usize>());
    assert_eq!(sizes.len(), 19);
    let bufs = g.put_split(&bytes, &sizes);
    g.post(&bufs);
    // A jumbo frame over 40 descriptors in an indirect table.
    let f2 = frame(9000, 2);
    let bytes = with_hdr(&f2);
    let mut sizes = vec![226; 39];
    sizes.push(bytes.len() - 226 * 39);
    let bufs = g.put_split(&bytes, &sizes);
    g.post_indirect(&bufs);
    assert_frames(&g.dequeue(&mut pool), &[f1, f2]);
    assert_eq!(g.take_used(), used(&[(0, 0), (19, 0)]));
}

#[test]
fn dequeue_accepts_a_chain_of_max_chain_descriptors() {
    let mut pool = pool();
    let mut g = Guest::new(512, 0, false, VNET_HDR_LEN, false);
    let f = frame(MAX_CHAIN * 16 - VNET_HDR_LEN, 1);
    let bufs = g.put_split(&with_hdr(&f), &[16; MAX_CHAIN]);
    g.post(&bufs);
    assert_frames(&g.dequeue(&mut pool), &[f]);
    assert!(g.q.broken().is_none());
}

#[test]
fn dequeue_accepts_a_full_ring() {
    let mut pool = pool();
    let mut g = Guest::new(16, 0, false, VNET_HDR_LEN, false);
    let frames: Vec<_> = (0..16).map(|k| frame(60 + k, k as u8)).collect();
    for f in &frames {
        g.post_frame(f);
    }
    assert_eq!(g.drv.avail_idx(), 16);
    assert_frames(&g.dequeue(&mut pool), &frames);
    assert_eq!(g.used_idx(), 16);
}

#[test]
fn dequeue_publishes_used_once_per_batch() {
    let mut pool = pool();
    let mut g = Guest::tx();
    let frames: Vec<_> = (0..70).map(|k| frame(60, k as u8)).collect();
    for f in &frames {
        g.post_frame(f);
    }
    // A batch holds 64: the first dequeue takes those, with one used index update and one
    // interrupt (without event_idx and with interrupts on, every publication raises one).
    assert_frames(&g.dequeue(&mut pool), &frames[..64]);
    assert_eq!(g.used_idx(), 64);
    assert_eq!(g.notified(), 1);
    let want: Vec<(u16, u32)> = (0..64).map(|h| (h, 0)).collect();
    assert_eq!(g.take_used(), used(&want));
    assert_frames(&g.dequeue(&mut pool), &frames[64..]);
    assert_eq!(g.used_idx(), 70);
    assert_eq!(g.notified(), 2);
    // Nothing pending: nothing published, no interrupt.
    assert!(g.dequeue(&mut pool).is_empty());
    assert_eq!(g.used_idx(), 70);
    assert_eq!(g.notified(), 2);
}

#[test]
fn dequeue_partially_full_batch_takes_only_its_room() {
    let mut pool = pool();
    let mut g = Guest::tx();
    for k in 0..5 {
        g.post_frame(&frame(60, k));
    }
    let mut batch = Batch::default();
    for _ in 0..62 {
        batch.push(pool.alloc().unwrap()).unwrap();
    }
    assert_eq!(g.q.dequeue(&mut pool, &mut batch, PORT, QUEUE, &g.c), 2);
    assert!(batch.is_full());
    assert_eq!(g.used_idx(), 2);
    batch.free_all(&mut pool);
    assert_eq!(g.dequeue(&mut pool).len(), 3);
}

#[test]
fn no_interrupt_flag_suppresses_notification_without_event_idx() {
    let mut pool = pool();
    let mut g = Guest::tx();
    g.drv.set_interrupts(false).unwrap();
    g.post_frame(&frame(60, 1));
    g.post_frame(&frame(60, 2));
    assert_eq!(g.dequeue(&mut pool).len(), 2);
    assert_eq!(g.used_idx(), 2, "entries published all the same");
    assert_eq!(g.notified(), 0);
    // used_event means nothing without event_idx.
    g.drv.set_used_event(2).unwrap();
    g.post_frame(&frame(60, 3));
    assert_eq!(g.dequeue(&mut pool).len(), 1);
    assert_eq!(g.notified(), 0);
    g.drv.set_interrupts(true).unwrap();
    g.post_frame(&frame(60, 4));
    assert_eq!(g.dequeue(&mut pool).len(), 1);
    assert_eq!(g.notified(), 1);
}

#[test]
fn used_event_controls_notification_with_event_idx() {
    let mut pool = pool();
    let mut g = Guest::new(QSIZE, 0, true, VNET_HDR_LEN, false);
    let mut batch = |g: &mut Guest, n: usize| {
        for k in 0..n {
            g.post_frame(&frame(60, k as u8));
        }
        assert_eq!(g.dequeue(&mut pool).len(), n);
        g.notified()
    };
    // Interrupt wanted once entry 4 is used.
    g.drv.set_used_event(4).unwrap();
    assert_eq!(batch(&mut g, 3), 0, "0..3 does not reach 4");
    assert_eq!(batch(&mut g, 2), 1, "3..5 passes 4");
    assert_eq!(batch(&mut g, 2), 1, "5..7: 4 already passed");
    g.drv.set_used_event(7).unwrap();
    assert_eq!(batch(&mut g, 1), 2, "7..8 passes 7");
    // The flag is ignored with event_idx: only used_event counts.
    g.drv.set_avail_flags(AVAIL_F_NO_INTERRUPT).unwrap();
    g.drv.set_used_event(8).unwrap();
    assert_eq!(batch(&mut g, 1), 3);
    g.drv.set_avail_flags(0).unwrap();
    g.drv.set_used_event(100).unwrap();
    assert_eq!(batch(&mut g, 5), 3);
    assert_eq!(g.used_idx(), 14);
}

#[test]
fn used_event_across_index_wrap() {
    let mut pool = pool();
    let mut g = Guest::new(8, 0xfffc, true, VNET_HDR_LEN, false);
    g.drv.set_used_event(0xffff).unwrap();
    for k in 0..2 {
        g.post_frame(&frame(60, k));
    }
    assert_eq!(g.dequeue(&mut pool).len(), 2);
    assert_eq!(g.notified(), 0, "0xfffc..0xfffe does not reach 0xffff");
    for k in 0..3 {
        g.post_frame(&frame(60, k));
    }
    assert_eq!(g.dequeue(&mut pool).len(), 3);
    assert_eq!(g.notified(), 1, "0xfffe..0x0001 passes 0xffff");
    assert_eq!(g.used_idx(), 1);
}

#[test]
fn indexes_wrap_around() {
    let mut pool = pool();
    let mut g = Guest::new(8, 65530, false, VNET_HDR_LEN, false);
    for round in 0..6u8 {
        let frames: Vec<_> = (0..3).map(|k| frame(60 + k, round * 3 + k as u8)).collect();
        let heads: Vec<u16> = frames.iter().map(|f| g.post_frame(f)).collect();
        assert_frames(&g.dequeue(&mut pool), &frames);
        let want: Vec<(u16, u32)> = heads.iter().map(|&h| (h, 0)).collect();
        assert_eq!(g.take_used(), used(&want));
    }
    assert_eq!(g.used_idx(), 65530u16.wrapping_add(18));
    assert_eq!(g.c.rx_packets.get(), 18);
    assert!(g.q.broken().is_none());
}

#[test]
fn pool_exhaustion_leaves_frames_in_the_ring() {
    let mut small = Pool::new(2).unwrap();
    let mut g = Guest::tx();
    let frames: Vec<_> = (0..3).map(|k| frame(60, k)).collect();
    for f in &frames {
        g.post_frame(f);
    }
    let mut batch = Batch::default();
    assert_eq!(g.q.dequeue(&mut small, &mut batch, PORT, QUEUE, &g.c), 2);
    assert_eq!(g.used_idx(), 2, "the third chain is not consumed");
    assert_eq!(g.q.ring().last_avail(), 2);
    batch.free_all(&mut small);
    assert_frames(&g.dequeue(&mut small), &frames[2..]);
    assert_eq!(g.used_idx(), 3);
}

#[test]
fn legacy_header_is_ten_bytes() {
    let mut pool = pool();
    let mut tx = Guest::new(QSIZE, 0, false, VNET_HDR_LEN_LEGACY, false);
    let f = frame(100, 1);
    let mut bytes = vec![0u8; VNET_HDR_LEN_LEGACY];
    bytes.extend_from_slice(&f);
    let b = tx.put(&bytes);
    tx.post(&[b]);
    assert_frames(&tx.dequeue(&mut pool), std::slice::from_ref(&f));

    let mut rx = Guest::new(QSIZE, 0, false, VNET_HDR_LEN_LEGACY, false);
    let b = rx.post_rx_buf(2048);
    rx.enqueue(&mut pool, &[&f]);
    assert_eq!(rx.take_used(), used(&[(0, 110)]));
    let got = rx.read(&b);
    assert_eq!(got[..10], [0u8; 10]);
    assert_eq!(got[10..110], f[..]);
    assert!(got[110..].iter().all(|&x| x == FILL));
}

// Receive: device -> guest.

#[test]
fn enqueue_mergeable_spreads_a_frame_over_buffers() {
    let mut pool = pool();
    let mut g = Guest::rx(true);
    let bufs: Vec<Buffer> = (0..3).map(|_| g.post_rx_buf(2048)).collect();
    let big = frame(3000, 1);
    let small = frame(100, 2);
    g.enqueue(&mut pool, &[&big, &small]);

    // 12 + 3000 bytes: 2048 in the first buffer, 964 in the second.
    assert_eq!(
        g.take_used(),
        used(&[(0, 2048), (1, 3012 - 2048), (2, 112)])
    );
    assert_eq!(g.notified(), 1, "one publication for the batch");
    let b0 = g.read(&bufs[0]);
    let b1 = g.read(&bufs[1]);
    assert_eq!(b0[..10], [0u8; 10], "flags, gso and the rest cleared");
    assert_eq!(u16::from_le_bytes([b0[10], b0[11]]), 2, "num_buffers");
    assert_eq!(b0[12..], big[..2036]);
    assert_eq!(b1[..964], big[2036..]);
    assert!(
        b1[964..].iter().all(|&x| x == FILL),
        "nothing past the frame"
    );
    let b2 = g.read(&bufs[2]);
    assert_eq!(b2[..10], [0u8; 10]);
    assert_eq!(u16::from_le_bytes([b2[10], b2[11]]), 1);
    assert_eq!(b2[12..112], small[..]);
    assert_eq!(g.c.tx_packets.get(), 2);
    assert_eq!(g.c.tx_bytes.get(), 3100);
    assert!(g.drops().is_empty() && g.errors().is_empty());
}

#[test]
fn enqueue_mergeable_without_enough_buffers_consumes_none() {
    let mut pool = pool();
    let mut g = Guest::rx(true);
    g.post_rx_buf(2048);
    let big = frame(3000, 1);
    g.enqueue(&mut pool, &[&big]);
    // The first buffer, too small on its own, is given back.
    g.assert_only_dropped(DropReason::NoRxBuffers, 1);
    // With a second buffer the same frame fits, starting in the first one.
    let b1 = g.post_rx_buf(2048);
    g.enqueue(&mut pool, &[&big]);
    assert_eq!(g.take_used(), used(&[(0, 2048), (1, 964)]));
    assert_eq!(g.read(&b1)[..964], big[2036..]);
    assert!(g.q.broken().is_none());
}

#[test]
fn enqueue_non_mergeable_too_big_is_dropped_and_the_chain_kept() {
    let mut pool = pool();
    let mut g = Guest::rx(false);
    let b = g.post_rx_buf(1024);
    let big = frame(1500, 1);
    g.enqueue(&mut pool, &[&big]);
    g.assert_only_dropped(DropReason::TooBigForGuest, 1);
    // The next frames that fit go into the same chain, one by one.
    let small = frame(100, 2);
    g.enqueue(&mut pool, &[&big, &small, &big]);
    // The last one finds the ring empty.
    assert_eq!(
        g.drops(),
        [
            (DropReason::NoRxBuffers, 1),
            (DropReason::TooBigForGuest, 2)
        ]
    );
    assert_eq!(g.take_used(), used(&[(0, 112)]));
    let got = g.read(&b);
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), 1);
    assert_eq!(got[12..112], small[..]);
    assert_eq!(g.c.tx_packets.get(), 1);
    assert!(g.q.broken().is_none());
}

#[test]
fn enqueue_non_mergeable_fills_a_multi_descriptor_chain() {
    let mut pool = pool();
    let mut g = Guest::rx(false);
    let h = g.rx_buf(VNET_HDR_LEN);
    let d1 = g.rx_buf(1000);
    let d2 = g.rx_buf(1000);
    g.post(&[h, d1, d2]);
    let f = frame(1514, 1);
    g.enqueue(&mut pool, &[&f]);
    assert_eq!(g.take_used(), used(&[(0, 1526)]));
    let hdr = g.read(&h);
    assert_eq!(hdr[..10], [0u8; 10]);
    assert_eq!(u16::from_le_bytes([hdr[10], hdr[11]]), 1);
    assert_eq!(g.read(&d1), f[..1000]);
    assert_eq!(g.read(&d2)[..514], f[1000..]);
    assert!(g.read(&d2)[514..].iter().all(|&x| x == FILL));
}

#[test]
fn enqueue_into_an_empty_ring_drops_and_consumes_nothing() {
    let mut pool = pool();
    let mut g = Guest::rx(true);
    let frames: Vec<_> = (0..3).map(|k| frame(60, k)).collect();
    let refs: Vec<&[u8]> = frames.iter().map(|f| &f[..]).collect();
    g.enqueue(&mut pool, &refs);
    g.assert_only_dropped(DropReason::NoRxBuffers, 3);
    assert!(g.q.broken().is_none());
    let b = g.post_rx_buf(2048);
    g.enqueue(&mut pool, &refs[..1]);
    assert_eq!(g.take_used(), used(&[(0, 72)]));
    assert_eq!(g.read(&b)[12..72], frames[0][..]);
}

// A hostile guest: each violation takes the queue out of service, is counted once, and
// leaves queues elsewhere alone.

/// Runs one dequeue on `victim` (set up to break) while a queue of another guest carries
/// traffic, and checks the victim broke with `kind` and stays broken. Returns the frames
/// that breaking dequeue delivered.
fn expect_tx_break(victim: &mut Guest, kind: RingError) -> Vec<Vec<u8>> {
    let mut pool = pool();
    let mut bystander = Guest::tx();
    let f = frame(60, 0xb0);
    bystander.post_frame(&f);

    let got = victim.dequeue(&mut pool);
    assert_eq!(victim.q.broken(), Some(kind));
    assert_eq!(victim.errors(), [(kind, 1)]);
    assert_eq!(pool.available(), pool.capacity(), "no packet buffer leaked");

    // Stays broken: a perfectly good frame is not even looked at.
    let used = victim.used_idx();
    let last_avail = victim.q.ring().last_avail();
    victim.post_frame(&frame(60, 1));
    assert!(victim.dequeue(&mut pool).is_empty());
    assert_eq!(victim.used_idx(), used);
    assert_eq!(victim.q.ring().last_avail(), last_avail);
    assert_eq!(victim.errors(), [(kind, 1)], "counted once");

    assert_frames(&bystander.dequeue(&mut pool), &[f]);
    assert!(bystander.q.broken().is_none());
    assert!(bystander.errors().is_empty());
    got
}

/// As `expect_tx_break`, for an enqueue into a receive queue.
fn expect_rx_break(victim: &mut Guest, kind: RingError) {
    let mut pool = pool();
    let mut bystander = Guest::rx(true);
    bystander.post_rx_buf(2048);

    let f = frame(100, 1);
    victim.enqueue(&mut pool, &[&f, &f]);
    assert_eq!(victim.q.broken(), Some(kind));
    assert_eq!(victim.errors(), [(kind, 1)]);
    assert_eq!(victim.drops(), [(DropReason::Broken, 2)]);
    assert_eq!(victim.used_idx(), 0, "nothing handed back");
    assert_eq!(victim.c.tx_packets.get(), 0);

    let good = victim.post_rx_buf(2048);
    victim.enqueue(&mut pool, &[&f]);
    assert_eq!(victim.drops(), [(DropReason::Broken, 3)]);
    assert_eq!(victim.used_idx(), 0);
    assert!(victim.read(&good).iter().all(|&x| x == FILL));
    assert_eq!(victim.errors(), [(kind, 1)], "counted once");

    bystander.enqueue(&mut pool, &[&f]);
    assert_eq!(bystander.take_used(), used(&[(0, 112)]));
    assert!(bystander.q.broken().is_none());
}

#[test]
fn hostile_address_outside_memory() {
    let mut g = Guest::tx();
    let good = frame(60, 9);
    g.post_frame(&good);
    g.post_raw(Descriptor::readable(GuestAddress(MEM_SIZE + 0x1000), 100));
    let got = expect_tx_break(&mut g, RingError::Address);
    assert_eq!(got, [good], "the frame before the bad chain is delivered");
}

#[test]
fn hostile_address_range_crossing_the_end_of_memory() {
    let mut g = Guest::tx();
    g.post_raw(Descriptor::readable(GuestAddress(MEM_SIZE - 32), 64));
    expect_tx_break(&mut g, RingError::Address);
    // The same in the second descriptor of a chain, with a length that wraps the address
    // space.
    let mut g = Guest::tx();
    let h = g.put(&[0u8; VNET_HDR_LEN]);
    g.post(&[h, Buffer::readable(GuestAddress(u64::MAX - 16), 64)]);
    expect_tx_break(&mut g, RingError::Address);
}

#[test]
fn hostile_zero_length_descriptor() {
    let mut g = Guest::tx();
    g.post_raw(Descriptor::readable(GuestAddress(HEAP), 0));
    expect_tx_break(&mut g, RingError::ZeroLength);
    let mut g = Guest::tx();
    let h = g.put(&with_hdr(&frame(60, 1)));
    g.post(&[h, Buffer::readable(GuestAddress(HEAP), 0)]);
    expect_tx_break(&mut g, RingError::ZeroLength);
}

#[test]
fn hostile_descriptor_loop() {
    let (mut g, d) = Guest::tx_with_frame();
    g.drv.write_desc(0, d.then(1)).unwrap();
    g.drv.write_desc(1, d.then(0)).unwrap();
    g.offer_by_hand(2);
    expect_tx_break(&mut g, RingError::ChainTooLong);
    // A descriptor that is its own next.
    let (mut g, d) = Guest::tx_with_frame();
    g.post_raw(d.then(0));
    expect_tx_break(&mut g, RingError::ChainTooLong);
    // A loop inside an indirect table.
    let (mut g, d) = Guest::tx_with_frame();
    let table = g.table(&[d.then(1), d.then(0)]);
    g.post_raw(Descriptor::indirect(table, 2));
    expect_tx_break(&mut g, RingError::ChainTooLong);
}

#[test]
fn hostile_chain_longer_than_max_chain() {
    let mut g = Guest::new(512, 0, false, VNET_HDR_LEN, false);
    let f = frame((MAX_CHAIN + 1) * 16 - VNET_HDR_LEN, 1);
    let bufs = g.put_split(&with_hdr(&f), &[16; MAX_CHAIN + 1]);
    g.post(&bufs);
    expect_tx_break(&mut g, RingError::ChainTooLong);
}

#[test]
fn hostile_next_index_beyond_the_ring() {
    let (mut g, d) = Guest::tx_with_frame();
    g.post_raw(d.then(QSIZE));
    expect_tx_break(&mut g, RingError::DescIndex);
    // In an indirect table, the table's length is the bound.
    let (mut g, d) = Guest::tx_with_frame();
    let table = g.table(&[d.then(1), d.then(2)]);
    g.post_raw(Descriptor::indirect(table, 2));
    expect_tx_break(&mut g, RingError::DescIndex);
}

#[test]
fn hostile_head_index_beyond_the_ring() {
    let mut g = Guest::tx();
    g.drv.offer(&[QSIZE]).unwrap();
    expect_tx_break(&mut g, RingError::DescIndex);
    let mut g = Guest::tx();
    g.drv.offer(&[u16::MAX]).unwrap();
    expect_tx_break(&mut g, RingError::DescIndex);
}

#[test]
fn hostile_avail_index_jump() {
    let mut g = Guest::tx();
    g.post_frame(&frame(60, 1));
    g.drv.set_avail_idx(QSIZE + 1).unwrap();
    let got = expect_tx_break(&mut g, RingError::AvailIndex);
    assert!(
        got.is_empty(),
        "nothing taken from a ring whose index is nonsense"
    );
    // Moving the index back is a jump of nearly 65536.
    let mut pool = pool();
    let mut g = Guest::tx();
    g.post_frame(&frame(60, 1));
    assert_eq!(g.dequeue(&mut pool).len(), 1);
    g.drv.set_avail_idx(0).unwrap();
    expect_tx_break(&mut g, RingError::AvailIndex);
}

#[test]
fn hostile_nested_indirect() {
    let (mut g, d) = Guest::tx_with_frame();
    let inner = g.table(&[d]);
    let outer = g.table(&[Descriptor::indirect(inner, 1)]);
    g.post_raw(Descriptor::indirect(outer, 1));
    expect_tx_break(&mut g, RingError::Indirect);
    // Nested further down the table, which points at itself.
    let (mut g, d) = Guest::tx_with_frame();
    let outer = g.alloc(32);
    g.drv
        .write_table(outer, &[d.then(1), Descriptor::indirect(outer, 2)])
        .unwrap();
    g.post_raw(Descriptor::indirect(outer, 2));
    expect_tx_break(&mut g, RingError::Indirect);
}

#[test]
fn hostile_indirect_with_next_or_not_at_the_head() {
    let (mut g, d) = Guest::tx_with_frame();
    let table = g.table(&[d]);
    g.drv.write_desc(1, d).unwrap();
    g.drv
        .write_desc(0, Descriptor::indirect(table, 1).then(1))
        .unwrap();
    assert_eq!(
        g.drv.read_desc(0).unwrap().flags,
        DESC_F_INDIRECT | DESC_F_NEXT
    );
    g.offer_by_hand(2);
    expect_tx_break(&mut g, RingError::Indirect);
    // An indirect descriptor second in a direct chain.
    let (mut g, d) = Guest::tx_with_frame();
    let table = g.table(&[d]);
    g.drv.write_desc(0, d.then(1)).unwrap();
    g.drv.write_desc(1, Descriptor::indirect(table, 1)).unwrap();
    g.offer_by_hand(2);
    expect_tx_break(&mut g, RingError::Indirect);
}

#[test]
fn hostile_indirect_table_malformed() {
    let bad_table = |len: u32, misalign: u64| {
        let (mut g, d) = Guest::tx_with_frame();
        let table = GuestAddress(g.alloc(8192).0 + misalign);
        g.drv.write_table(table, &[d; 3]).unwrap();
        g.post_raw(Descriptor {
            addr: table.0,
            len,
            flags: DESC_F_INDIRECT,
            next: 0,
        });
        expect_tx_break(&mut g, RingError::Indirect);
    };
    bad_table(40, 0); // not a multiple of 16
    bad_table(8, 0); // less than one descriptor
    bad_table(0, 0); // empty
    bad_table(16 * (MAX_CHAIN as u32 + 1), 0); // more than a chain may hold
    bad_table(32, 4); // misaligned
                      // A table outside memory is an address error.
    let mut g = Guest::tx();
    g.post_raw(Descriptor::indirect(GuestAddress(MEM_SIZE - 16), 2));
    expect_tx_break(&mut g, RingError::Address);
}

#[test]
fn hostile_writable_descriptor_in_the_transmit_queue() {
    let mut g = Guest::tx();
    let h = g.put(&[0u8; VNET_HDR_LEN]);
    let mut d = g.put(&frame(60, 1));
    d.writable = true;
    g.post(&[h, d]);
    expect_tx_break(&mut g, RingError::Direction);
    // Through an indirect table.
    let mut g = Guest::tx();
    let mut b = g.put(&with_hdr(&frame(60, 1)));
    b.writable = true;
    g.post_indirect(&[b]);
    expect_tx_break(&mut g, RingError::Direction);
}

#[test]
fn hostile_read_only_descriptor_in_the_receive_queue() {
    let mut g = Guest::rx(true);
    let b = g.rx_buf(2048);
    g.post(&[Buffer {
        writable: false,
        ..b
    }]);
    expect_rx_break(&mut g, RingError::Direction);
    // Readable after writable, reached by a frame that needs it.
    let mut g = Guest::rx(false);
    let w = g.rx_buf(64);
    let r = g.rx_buf(2048);
    g.post(&[
        w,
        Buffer {
            writable: false,
            ..r
        },
    ]);
    expect_rx_break(&mut g, RingError::Direction);
}

#[test]
fn hostile_receive_buffer_smaller_than_the_header() {
    let mut g = Guest::rx(true);
    g.post_rx_buf(VNET_HDR_LEN - 1);
    expect_rx_break(&mut g, RingError::HeaderLayout);
    let mut g = Guest::rx(false);
    let h = g.rx_buf(4);
    let d = g.rx_buf(2048);
    g.post(&[h, d]);
    expect_rx_break(&mut g, RingError::HeaderLayout);
}

#[test]
fn hostile_receive_ring_errors() {
    // A head beyond the ring, an address outside memory and a jump of the avail index
    // break a receive queue just as they do a transmit one.
    let mut g = Guest::rx(true);
    g.drv.offer(&[QSIZE]).unwrap();
    expect_rx_break(&mut g, RingError::DescIndex);
    let mut g = Guest::rx(true);
    g.post_raw(Descriptor::writable(GuestAddress(MEM_SIZE), 2048));
    expect_rx_break(&mut g, RingError::Address);
    let mut g = Guest::rx(true);
    g.drv.set_avail_idx(QSIZE + 1).unwrap();
    expect_rx_break(&mut g, RingError::AvailIndex);
}

#[test]
fn enqueue_frames_before_a_bad_chain_are_delivered() {
    let mut pool = pool();
    let mut g = Guest::rx(true);
    g.post_rx_buf(2048);
    g.post_raw(Descriptor::writable(GuestAddress(MEM_SIZE), 2048));
    let f = frame(100, 1);
    g.enqueue(&mut pool, &[&f, &f, &f]);
    assert_eq!(g.q.broken(), Some(RingError::Address));
    assert_eq!(g.take_used(), used(&[(0, 112)]));
    assert_eq!(g.drops(), [(DropReason::Broken, 2)]);
    assert_eq!(g.c.tx_packets.get(), 1);
    assert_eq!(g.notified(), 1);
}

fn mem_table() -> Arc<MemTable> {
    Arc::new(MemTable::new(Arc::new(
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap(),
    )))
}

#[test]
fn hostile_ring_addresses_outside_memory() {
    let t = mem_table();
    let good = Layout::contiguous(GuestAddress(0), QSIZE)
        .unwrap()
        .ring_config(0, false);
    assert!(SplitRing::new(t.clone(), &good).is_ok());
    let n = u64::from(QSIZE);
    let bad = [
        RingConfig {
            desc: MEM_SIZE,
            ..good
        },
        RingConfig {
            desc: MEM_SIZE - 16 * n + 16,
            ..good
        },
        RingConfig {
            avail: MEM_SIZE - 2,
            ..good
        },
        RingConfig {
            used: MEM_SIZE - 8 * n,
            ..good
        },
        RingConfig {
            used: u64::MAX - 3,
            ..good
        },
        // Misaligned parts.
        RingConfig { desc: 8, ..good },
        RingConfig {
            avail: good.avail + 1,
            ..good
        },
        RingConfig {
            used: good.used + 2,
            ..good
        },
    ];
    for cfg in bad {
        assert_eq!(
            SplitRing::new(t.clone(), &cfg).err(),
            Some(RingError::RingLayout),
            "{cfg:?}"
        );
    }
    // At the very end of memory is fine.
    let end = RingConfig {
        desc: MEM_SIZE - 16 * n,
        avail: MEM_SIZE - 16 * n - 0x1000,
        used: MEM_SIZE - 16 * n - 0x1000 - (6 + 8 * n + 2),
        ..good
    };
    assert!(SplitRing::new(t, &end).is_ok());
}

#[test]
fn hostile_ring_size_not_a_power_of_two() {
    let t = mem_table();
    let good = Layout::contiguous(GuestAddress(0), QSIZE)
        .unwrap()
        .ring_config(0, false);
    for size in [0u16, 3, 100, 255, 257, 32767, u16::MAX] {
        let cfg = RingConfig { size, ..good };
        assert_eq!(
            SplitRing::new(t.clone(), &cfg).err(),
            Some(RingError::RingLayout),
            "size {size}"
        );
    }
    for size in [1u16, 2, 32768] {
        let cfg = Layout::contiguous(GuestAddress(0), size)
            .unwrap()
            .ring_config(0, false);
        assert!(SplitRing::new(t.clone(), &cfg).is_ok(), "size {size}");
    }
}

// Malformed frames: dropped and counted; the queue goes on.

/// Dequeues the chains already posted on `g` followed by one good frame, and checks that
/// only the good frame comes out, every chain is handed back, and nothing is broken.
fn expect_frame_drops(g: &mut Guest, why: DropReason, n: u64) {
    let mut pool = pool();
    let good = frame(60, 0x77);
    g.post_frame(&good);
    let posted = g.drv.avail_idx();
    assert_frames(&g.dequeue(&mut pool), &[good]);
    assert_eq!(g.drops(), [(why, n)]);
    assert!(g.q.broken().is_none());
    assert!(g.errors().is_empty());
    assert_eq!(g.used_idx(), posted, "dropped chains are handed back too");
    assert_eq!(g.c.rx_packets.get(), 1);
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn runt_frames_are_dropped() {
    let mut g = Guest::tx();
    g.post_frame(&frame(13, 1));
    g.post_frame(&[]); // a header and nothing else
    let b = g.put(&[0u8; 8]); // not even a whole header
    g.post(&[b]);
    let h = g.put(&[0u8; 6]);
    let d = g.put(&[0u8; 6]);
    let e = g.put(&frame(13, 2));
    g.post(&[h, d, e]); // header over two descriptors, 13-byte frame
    expect_frame_drops(&mut g, DropReason::Runt, 4);
    // Fourteen bytes is the smallest frame taken.
    let mut pool = pool();
    let f = frame(14, 3);
    g.post_frame(&f);
    assert_frames(&g.dequeue(&mut pool), &[f]);
}

#[test]
fn oversize_frames_are_dropped() {
    let mut g = Guest::tx();
    g.post_frame(&frame(MAX_FRAME + 1, 1));
    let big = with_hdr(&frame(MAX_FRAME + 100, 2));
    let bufs = g.put_split(&big, &[4000, 4000, big.len() - 8000]);
    g.post(&bufs);
    g.post_frame(&frame(20000, 3));
    expect_frame_drops(&mut g, DropReason::Oversize, 3);
    // MAX_FRAME itself is taken, whole.
    let mut pool = pool();
    let f = frame(MAX_FRAME, 4);
    let bytes = with_hdr(&f);
    let bufs = g.put_split(&bytes, &[4000, 4000, bytes.len() - 8000]);
    g.post(&bufs);
    assert_frames(&g.dequeue(&mut pool), &[f]);
}

#[test]
fn frames_with_offloads_in_the_header_are_dropped() {
    let mut g = Guest::tx();
    let f = frame(60, 1);
    let mut flags = with_hdr(&f);
    flags[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
    let b = g.put(&flags);
    g.post(&[b]);
    let mut gso = with_hdr(&f);
    gso[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
    let b = g.put(&gso);
    g.post(&[b]);
    let mut both = with_hdr(&f);
    both[0] = 0x80;
    both[1] = 0x80;
    // In a header split over two descriptors.
    let bufs = g.put_split(&both, &[1, both.len() - 1]);
    g.post(&bufs);
    expect_frame_drops(&mut g, DropReason::BadHeader, 3);
}

#[test]
fn header_fields_without_flags_or_gso_are_ignored() {
    let mut pool = pool();
    let mut g = Guest::tx();
    let f = frame(60, 1);
    let mut h = with_hdr(&f);
    // hdr_len, gso_size, csum_start, csum_offset, num_buffers: meaningless here.
    for b in &mut h[2..VNET_HDR_LEN] {
        *b = 0x5a;
    }
    let b = g.put(&h);
    g.post(&[b]);
    assert_frames(&g.dequeue(&mut pool), &[f]);
    assert!(g.drops().is_empty());
}

// ---------------------------------------------------------------------------------------
// Zero-copy circulation (`user::VirtioUser::connect_loop`): our driver's loop queues
// against this crate's device side, which plays a cross-connect between the two ports
// over the same memfd, mapped the way the backend maps it.

mod circulate {
    use std::sync::Arc;

    use packet::{Batch, Pool};
    use vm_memory::{FileOffset, GuestAddress, GuestMemoryMmap};

    use crate::mem::MemTable;
    use crate::net::{NetQueue, VNET_HDR_LEN};
    use crate::ring::{RingConfig, SplitRing};
    use crate::user::{loop_without_backend, Buf, Config, QueueLayout, QueuePair, SharedMemory};
    use crate::{DropReason, QueueCounters};

    /// As small as the device's batch (64), so that the half-ring bound is tight.
    const SIZE: u16 = 64;
    const INJECT: u16 = SIZE / 2;

    /// The backend's view of our memory: the main region, mapped from the memfd.
    fn device_memory(mem: &SharedMemory) -> Arc<MemTable> {
        let file = mem.file().try_clone().unwrap();
        let ranges = [(
            GuestAddress(0),
            mem.len() as usize,
            Some(FileOffset::new(file, 0)),
        )];
        let gm = GuestMemoryMmap::<()>::from_ranges_with_files(ranges).unwrap();
        Arc::new(MemTable::new(Arc::new(gm)))
    }

    fn device_queue(table: &Arc<MemTable>, l: &QueueLayout) -> NetQueue {
        let cfg = RingConfig {
            desc: l.desc,
            avail: l.avail,
            used: l.used,
            size: l.size,
            next_avail: 0,
            next_used: 0,
            event_idx: false,
        };
        let ring = SplitRing::new(table.clone(), &cfg).expect("a valid ring");
        NetQueue::new(ring, VNET_HDR_LEN, true, Box::new(|| {}))
    }

    /// One port of the device: its receive queue (our transmit) and its transmit queue
    /// (our receive), with their counters.
    struct DevicePort {
        from_guest: NetQueue,
        to_guest: NetQueue,
        c: QueueCounters,
    }

    impl DevicePort {
        fn new(table: &Arc<MemTable>, layouts: &[QueueLayout]) -> DevicePort {
            DevicePort {
                to_guest: device_queue(table, &layouts[0]),
                from_guest: device_queue(table, &layouts[1]),
                c: QueueCounters::default(),
            }
        }

        fn drops(&self) -> u64 {
            DropReason::ALL.iter().map(|&d| self.c.drops(d)).sum()
        }
    }

    /// What vnf's cross-connect does with one burst: frames `from` sends go to `to`.
    fn cross(from: &mut DevicePort, to: &mut DevicePort, pool: &mut Pool) -> usize {
        let mut batch = Batch::default();
        let n = from.from_guest.dequeue(pool, &mut batch, 0, 0, &from.c);
        to.to_guest.enqueue(&mut batch, pool, &to.c);
        n
    }

    /// One direction of our loop: what `rx` receives goes out of `tx`, as ids.
    fn forward(rx: &mut QueuePair, tx: &mut QueuePair) -> usize {
        let (mut ids, mut bufs) = ([0u16; SIZE as usize], [Buf::default(); 32]);
        let n = rx.rx.take_bufs(&mut bufs);
        let m = tx.tx.reclaim_bufs(&mut ids);
        rx.rx.post_bufs(&ids[..m]);
        assert_eq!(tx.tx.post_bufs(&bufs[..n]), n);
        n
    }

    fn inject(q: &mut QueuePair, first: u8) {
        let sent = q.tx.send(usize::from(INJECT), |i, b| {
            b[..60].fill(first.wrapping_add(i as u8));
            60
        });
        assert_eq!(sent, usize::from(INJECT));
    }

    #[test]
    fn frames_circulate_through_the_device_without_loss_or_drops() {
        let cfg = Config {
            queue_size: SIZE,
            ..Config::new(1)
        };
        let (mem, [a, b]) = loop_without_backend(&cfg, INJECT).unwrap();
        let (mut a, la, mut b, lb) = (a.pairs, a.layouts, b.pairs, b.layouts);
        assert_eq!(la[0].bufs, lb[1].bufs, "a receives into what b sends from");
        assert_eq!(lb[0].bufs, la[1].bufs, "and the other way");
        let table = device_memory(&mem);
        let (mut da, mut db) = (DevicePort::new(&table, &la), DevicePort::new(&table, &lb));
        let mut pool = Pool::new(256).unwrap();
        inject(&mut a[0], 0);
        inject(&mut b[0], 128);
        let (mut at_a, mut at_b) = (0, 0);
        for _ in 0..500 {
            cross(&mut da, &mut db, &mut pool);
            cross(&mut db, &mut da, &mut pool);
            at_a += forward(&mut a[0], &mut b[0]);
            at_b += forward(&mut b[0], &mut a[0]);
        }
        assert!(at_a > 5000 && at_b > 5000, "{at_a} {at_b}");
        // The device took every header we cleared, and never ran out of receive buffers.
        assert_eq!(da.drops() + db.drops(), 0);
        // Stop forwarding: each injected frame is still going round, once.
        cross(&mut da, &mut db, &mut pool);
        cross(&mut db, &mut da, &mut pool);
        let mut seen = Vec::new();
        for q in [&mut a[0], &mut b[0]] {
            q.rx.recv(usize::MAX, |f| {
                assert_eq!(f.len(), 60);
                assert!(f.iter().all(|&x| x == f[0]), "frame intact");
                seen.push(f[0]);
            });
        }
        seen.sort();
        let want: Vec<u8> = (0..INJECT as u8).chain(128..128 + INJECT as u8).collect();
        assert_eq!(seen, want);
        let bad: u64 = [&a[0], &b[0]]
            .iter()
            .map(|q| q.rx.stats().bad_used + q.tx.stats().bad_used + q.rx.stats().multi_buffer)
            .sum();
        assert_eq!(bad, 0);
    }
}
