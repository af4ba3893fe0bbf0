//! The driver's end of split virtqueues in memory we own, written for speed: a transmit
//! queue that posts frames and a receive queue that takes them, each with a fixed packet
//! buffer per descriptor.
//!
//! Everything per packet is a few plain stores and loads through pointers computed once:
//! no allocation, no lookup, no lock. Each side of a ring has one index the other side
//! writes; it is read once per burst (acquire), and ours is published once per burst
//! (release), after which the device's wish to be kicked is read behind a full fence, as
//! the virtio specification's "driver notifications" section requires. Indexes we own are
//! kept in local shadows and never read back from shared memory.
//!
//! A receive queue and a transmit queue can share one set of buffers (each ring has its
//! own descriptor table, both pointing descriptor `i` at buffer `i`): then a received
//! frame is forwarded by moving its id from one ring to the other ([`RxQueue::take_bufs`],
//! [`TxQueue::post_bufs`], and back with [`TxQueue::reclaim_bufs`] and
//! [`RxQueue::post_bufs`]). Each ring still knows only which of its descriptors the device
//! holds; the caller keeps every buffer in exactly one place.
//!
//! The device is not trusted either: a used entry naming a descriptor we did not post, a
//! length beyond its buffer or a used index that jumps are counted (`bad_used`), never
//! followed; an impossible used index makes the queue [`broken`](TxQueue::broken).
//!
//! This is the only module of the frontend with `unsafe` code for the rings: all of it
//! dereferences pointers into the [`SharedMemory`] that the queue keeps alive.

use std::io;
use std::sync::atomic::{fence, AtomicU16, Ordering};
use std::sync::Arc;

use vmm_sys_util::eventfd::EventFd;

use super::memory::SharedMemory;
use crate::net::VNET_HDR_LEN;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const USED_F_NO_NOTIFY: u16 = 1;
const AVAIL_F_NO_INTERRUPT: u16 = 1;
const DESC_SIZE: u64 = 16;

/// Where one virtqueue lives in the shared memory (guest-physical addresses, which are
/// offsets of the memfd) and the shape of its buffers.
#[derive(Clone, Copy, Debug)]
pub struct QueueLayout {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// `size` buffers of `buf_size` bytes each, back to back.
    pub bufs: u64,
    pub buf_size: u32,
}

impl QueueLayout {
    /// Allocates a ring of `size` (a power of two) and its buffers in `mem`.
    pub fn alloc(mem: &mut SharedMemory, size: u16, buf_size: u32) -> io::Result<QueueLayout> {
        let mut l = Self::alloc_ring(mem, size, 0, buf_size)?;
        l.bufs = Self::alloc_bufs(mem, size, buf_size)?;
        Ok(l)
    }

    /// Allocates a ring of `size` whose descriptor `i` is to point at buffer `i` of the
    /// `size` buffers of `buf_size` bytes at `bufs`, which are allocated apart (see
    /// [`alloc_bufs`](Self::alloc_bufs)) so that two rings can share them.
    pub fn alloc_ring(
        mem: &mut SharedMemory,
        size: u16,
        bufs: u64,
        buf_size: u32,
    ) -> io::Result<QueueLayout> {
        let n = u64::from(size);
        // Each part on its own cache lines: the device writes the used ring while we write
        // the avail ring, and false sharing between them costs on every burst.
        let desc = mem.alloc(DESC_SIZE * n, 64)?;
        let avail = mem.alloc(6 + 2 * n, 64)?;
        let used = mem.alloc(6 + 8 * n, 64)?;
        Ok(QueueLayout {
            size,
            desc,
            avail,
            used,
            bufs,
            buf_size,
        })
    }

    /// Allocates `size` buffers of `buf_size` bytes, back to back; returns the first one's
    /// address.
    pub fn alloc_bufs(mem: &mut SharedMemory, size: u16, buf_size: u32) -> io::Result<u64> {
        mem.alloc(u64::from(size) * u64::from(buf_size), 64)
    }

    /// Bytes that [`alloc`](Self::alloc) takes, alignment padding included.
    pub fn bytes(size: u16, buf_size: u32) -> u64 {
        Self::ring_bytes(size) + Self::buf_bytes(size, buf_size)
    }

    /// Bytes that [`alloc_ring`](Self::alloc_ring) takes, alignment padding included.
    pub fn ring_bytes(size: u16) -> u64 {
        let n = u64::from(size);
        pad64(DESC_SIZE * n) + pad64(6 + 2 * n) + pad64(6 + 8 * n)
    }

    /// Bytes that [`alloc_bufs`](Self::alloc_bufs) takes, alignment padding included.
    pub fn buf_bytes(size: u16, buf_size: u32) -> u64 {
        pad64(u64::from(size) * u64::from(buf_size))
    }

    fn buf(&self, id: u16) -> u64 {
        self.bufs + u64::from(id) * u64::from(self.buf_size)
    }
}

fn pad64(b: u64) -> u64 {
    b.div_ceil(64) * 64
}

/// Counters of one queue, kept by the queue itself (one writer, no atomics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Frames posted (transmit) or delivered to the sink (receive).
    pub frames: u64,
    /// Bytes of those frames, virtio-net headers excluded.
    pub bytes: u64,
    /// Eventfd writes: the device asked to be kicked.
    pub kicks: u64,
    /// Used entries the device got wrong: an unknown or repeated descriptor, a length
    /// beyond its buffer or short of a header, a bad buffer count. Skipped.
    pub bad_used: u64,
    /// Frames received whose buffers were dropped because of a bad used entry.
    pub dropped: u64,
    /// Frames spread over several buffers that [`RxQueue::take_bufs`] dropped: a frame
    /// is handed on as one buffer or not at all.
    pub multi_buffer: u64,
}

/// A packet buffer handed from one queue to another without copying: the descriptor (and
/// buffer) index, and the length of the frame in it, virtio-net header excluded.
///
/// Only rings that share their buffers (see
/// [`VirtioUser::connect_loop`](super::VirtioUser::connect_loop)) can pass these to each
/// other: buffer `id` of one is buffer `id` of the other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buf {
    pub id: u16,
    pub len: u32,
}

/// The ring itself: pointers into shared memory and the indexes we own.
struct Ring {
    mem: Arc<SharedMemory>,
    layout: QueueLayout,
    desc: *mut u8,
    avail: *mut u16,
    used: *mut u8,
    /// Buffer 0; buffer `i` is `buf_size * i` further.
    bufs: *mut u8,
    mask: u16,
    event_idx: bool,
    /// The avail index as we last wrote it (published or about to be).
    next_avail: u16,
    /// The avail index the device has seen.
    published_avail: u16,
    /// The next used entry to consume.
    last_used: u16,
    /// Descriptors the device holds: a used entry for any other is a device bug.
    inflight: Box<[bool]>,
    kick: EventFd,
    /// The device published a used index more than a ring ahead of us; nothing it says
    /// can be trusted any more.
    broken: bool,
    stats: QueueStats,
}

// SAFETY: the raw pointers point into `mem`, which the ring keeps alive and which is
// mapped shared for the life of the mapping; a Ring is used by one thread at a time
// (`&mut self` on every operation that touches memory).
unsafe impl Send for Ring {}

impl Ring {
    fn new(
        mem: Arc<SharedMemory>,
        layout: QueueLayout,
        kick: EventFd,
        event_idx: bool,
    ) -> io::Result<Ring> {
        let size = layout.size;
        if size == 0 || !size.is_power_of_two() || size > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ring size {size} is not a power of two in 1..=32768"),
            ));
        }
        if (layout.buf_size as usize) < VNET_HDR_LEN + 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("buffer size {} cannot hold a frame", layout.buf_size),
            ));
        }
        let end = layout.bufs + u64::from(size) * u64::from(layout.buf_size);
        let fits = |at: u64, len: u64| at.checked_add(len).is_some_and(|e| e <= mem.len());
        if !(fits(layout.desc, DESC_SIZE * u64::from(size))
            && fits(layout.avail, 6 + 2 * u64::from(size))
            && fits(layout.used, 6 + 8 * u64::from(size))
            && end <= mem.len()
            && layout.desc.is_multiple_of(16)
            && layout.avail.is_multiple_of(2)
            && layout.used.is_multiple_of(4))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("queue layout {layout:?} is not inside the shared memory"),
            ));
        }
        let ring = Ring {
            desc: mem.host_addr(layout.desc),
            avail: mem.host_addr(layout.avail).cast(),
            used: mem.host_addr(layout.used),
            bufs: mem.host_addr(layout.bufs),
            mem,
            layout,
            mask: size - 1,
            event_idx,
            next_avail: 0,
            published_avail: 0,
            last_used: 0,
            inflight: vec![false; size as usize].into_boxed_slice(),
            kick,
            broken: false,
            stats: QueueStats::default(),
        };
        // SAFETY: all three parts were checked above to lie inside the mapping; nobody
        // else touches them before the device is told where they are.
        unsafe {
            std::ptr::write_bytes(ring.desc, 0, DESC_SIZE as usize * size as usize);
            std::ptr::write_bytes(ring.avail.cast::<u8>(), 0, 6 + 2 * size as usize);
            std::ptr::write_bytes(ring.used, 0, 6 + 8 * size as usize);
        }
        // We poll: ask the device not to interrupt. With event_idx, used_event stays at 0
        // and is passed once every 65536 entries, which is as good as never.
        if !event_idx {
            ring.avail_field(0)
                .store(AVAIL_F_NO_INTERRUPT, Ordering::Relaxed);
        }
        Ok(ring)
    }

    fn size(&self) -> u16 {
        self.layout.size
    }

    #[inline(always)]
    fn avail_field(&self, i: usize) -> &AtomicU16 {
        debug_assert!(i < 3 + self.size() as usize);
        // SAFETY: `i <= size + 2`, inside the avail ring (6 + 2 * size bytes) checked in
        // `new`; 2-aligned. Atomic because the device reads it concurrently.
        unsafe { AtomicU16::from_ptr(self.avail.add(i)) }
    }

    #[inline(always)]
    fn used_idx(&self) -> &AtomicU16 {
        // SAFETY: bytes 2..4 of the used ring, checked in `new`; 4-aligned ring.
        unsafe { AtomicU16::from_ptr(self.used.add(2).cast()) }
    }

    #[inline(always)]
    fn used_flags(&self) -> &AtomicU16 {
        // SAFETY: bytes 0..2 of the used ring.
        unsafe { AtomicU16::from_ptr(self.used.cast()) }
    }

    #[inline(always)]
    fn avail_event(&self) -> &AtomicU16 {
        // SAFETY: the last two bytes of the used ring (4 + 8 * size), 2-aligned.
        unsafe { AtomicU16::from_ptr(self.used.add(4 + 8 * self.size() as usize).cast()) }
    }

    /// The used entry at ring position `pos` (any index; it is masked): (id, len).
    #[inline(always)]
    fn used_elem(&self, pos: u16) -> (u32, u32) {
        let slot = (pos & self.mask) as usize;
        // SAFETY: entry `slot < size` lies inside the used ring checked in `new`, 4-aligned.
        // Volatile: the device writes entries; it published this one before the index we
        // read with acquire, so the value is stable.
        unsafe {
            let e = self.used.add(4 + 8 * slot).cast::<u32>();
            (
                u32::from_le(e.read_volatile()),
                u32::from_le(e.add(1).read_volatile()),
            )
        }
    }

    /// Writes descriptor `id` (which must be below `size`).
    #[inline(always)]
    fn write_desc(&mut self, id: u16, addr: u64, len: u32, flags: u16, next: u16) {
        debug_assert!(id < self.size());
        // SAFETY: `id < size`, inside the descriptor table checked in `new`, 16-aligned.
        // The device reads descriptors only after we publish them, so a plain store does.
        unsafe {
            let d = self.desc.add(DESC_SIZE as usize * id as usize);
            d.cast::<u64>().write(addr.to_le());
            d.add(8).cast::<u32>().write(len.to_le());
            d.add(12).cast::<u16>().write(flags.to_le());
            d.add(14).cast::<u16>().write(next.to_le());
        }
    }

    /// Points every descriptor at its own buffer, as `len` bytes with `flags`, once `start`
    /// (the buffers the queue starts with, called `what` in the error) is known to fit the
    /// ring.
    fn point_descs(
        &mut self,
        what: &str,
        start: &std::ops::Range<u16>,
        len: u32,
        flags: u16,
    ) -> io::Result<()> {
        let size = self.size();
        if start.end > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what} buffers {start:?} beyond a ring of {size}"),
            ));
        }
        for id in 0..size {
            self.write_desc(id, self.layout.buf(id), len, flags, 0);
        }
        Ok(())
    }

    /// Sets only the length of descriptor `id`: the rest never changes on the fast path.
    #[inline(always)]
    fn set_desc_len(&mut self, id: u16, len: u32) {
        // SAFETY: as in `write_desc`.
        unsafe {
            self.desc
                .add(DESC_SIZE as usize * id as usize + 8)
                .cast::<u32>()
                .write(len.to_le())
        };
    }

    /// Puts `head` in the next avail entry; the device sees it after `publish`.
    #[inline(always)]
    fn push(&mut self, head: u16) {
        let slot = 2 + (self.next_avail & self.mask) as usize;
        self.avail_field(slot)
            .store(head.to_le(), Ordering::Relaxed);
        self.next_avail = self.next_avail.wrapping_add(1);
    }

    /// Like `push`, but leaves the entry alone when it already names `head`. A queue that
    /// posts all of its buffers in ring order finds every entry as it left it a lap
    /// before; not storing the same value again keeps the avail ring's lines clean in the
    /// device's cache, where it would otherwise have to fetch them anew every lap.
    #[inline(always)]
    fn push_unless_there(&mut self, head: u16) {
        let slot = self.avail_field(2 + (self.next_avail & self.mask) as usize);
        // Our own entry, beyond the published index: the device does not write it.
        if slot.load(Ordering::Relaxed) != head.to_le() {
            slot.store(head.to_le(), Ordering::Relaxed);
        }
        self.next_avail = self.next_avail.wrapping_add(1);
    }

    /// Makes every pushed entry visible with one index store, then kicks the device if it
    /// asked for it.
    #[inline]
    fn publish(&mut self) {
        let (old, new) = (self.published_avail, self.next_avail);
        if old == new {
            return;
        }
        // Release: descriptors, buffers and ring entries written before are visible to a
        // device that reads the index with acquire.
        self.avail_field(1).store(new.to_le(), Ordering::Release);
        self.published_avail = new;
        // The device writes its wish and then reads our index; we wrote the index and now
        // read its wish. Without a full fence each could miss the other's store.
        fence(Ordering::SeqCst);
        let kick = if self.event_idx {
            let event = u16::from_le(self.avail_event().load(Ordering::Relaxed));
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            u16::from_le(self.used_flags().load(Ordering::Relaxed)) & USED_F_NO_NOTIFY == 0
        };
        if kick {
            self.kick();
        }
    }

    fn kick(&mut self) {
        self.stats.kicks += 1;
        // A failed write means the eventfd counter is saturated (the device never reads
        // it) or the device is gone; either way it will see the ring when it polls.
        let _ = self.kick.write(1);
    }

    /// How many used entries the device has published that we have not consumed.
    #[inline]
    fn used_pending(&mut self) -> u16 {
        if self.broken {
            return 0;
        }
        let idx = u16::from_le(self.used_idx().load(Ordering::Acquire));
        let n = idx.wrapping_sub(self.last_used);
        // The device can only return what we made available.
        if n > self.next_avail.wrapping_sub(self.last_used) {
            self.broken = true;
            self.stats.bad_used += 1;
            return 0;
        }
        n
    }

    /// Consumes up to `max` used entries, handing each descriptor the device held to
    /// `put`; entries naming one it did not hold are counted and skipped. Returns how
    /// many were consumed (not how many `put` got).
    #[inline(always)]
    fn consume_used(&mut self, max: usize, mut put: impl FnMut(u16)) -> u16 {
        let n = self
            .used_pending()
            .min(u16::try_from(max).unwrap_or(u16::MAX));
        for k in 0..n {
            let (id, _len) = self.used_elem(self.last_used.wrapping_add(k));
            match self.take_back(id) {
                Some(id) => put(id),
                None => self.stats.bad_used += 1,
            }
        }
        self.last_used = self.last_used.wrapping_add(n);
        n
    }

    /// Whether descriptor `id` is one we may post: inside the table and not held by the
    /// device.
    #[inline(always)]
    fn ours(&self, id: u16) -> bool {
        self.inflight.get(usize::from(id)) == Some(&false)
    }

    /// Takes a used entry's descriptor back, if it is one the device holds.
    #[inline(always)]
    fn take_back(&mut self, id: u32) -> Option<u16> {
        let held = self.inflight.get_mut(id as usize)?;
        if !*held {
            return None;
        }
        *held = false;
        Some(id as u16)
    }

    #[inline(always)]
    fn buf_ptr(&self, id: u16) -> *mut u8 {
        self.bufs
            .wrapping_add(id as usize * self.layout.buf_size as usize)
    }
}

// Every queue type answers these from its `ring` alike. A macro keeps them in one place
// without a public trait, which every caller would have to import.
macro_rules! ring_status {
    () => {
        pub fn size(&self) -> u16 {
            self.ring.size()
        }

        pub fn stats(&self) -> QueueStats {
            self.ring.stats
        }

        /// Whether the device published an impossible used index: the queue then neither
        /// sends nor receives another frame, and only a new connection helps.
        pub fn broken(&self) -> bool {
            self.ring.broken
        }
    };
}

/// Our transmit queue: the device's receive side, virtqueue `2p + 1` of pair `p`.
pub struct TxQueue {
    ring: Ring,
    /// Descriptors (each with its buffer) not held by the device: a stack.
    free: Box<[u16]>,
    nfree: usize,
}

impl TxQueue {
    /// Sets up the ring with every descriptor pointing at its own buffer; those in `free`
    /// are free for [`send`](Self::send), the others belong to whoever shares the buffers
    /// (a receive queue that has them posted) until they come to
    /// [`post_bufs`](Self::post_bufs).
    pub(crate) fn with_bufs(
        mem: Arc<SharedMemory>,
        layout: QueueLayout,
        kick: EventFd,
        event_idx: bool,
        free: std::ops::Range<u16>,
    ) -> io::Result<TxQueue> {
        let mut ring = Ring::new(mem, layout, kick, event_idx)?;
        ring.point_descs("free", &free, 0, 0)?;
        for id in free.clone() {
            // SAFETY: the buffer of `id` lies inside the mapping (checked in Ring::new)
            // and is ours: no ring has it posted yet. The header stays zero unless
            // `post_bad` writes garbage into it.
            unsafe { std::ptr::write_bytes(ring.buf_ptr(id), 0, VNET_HDR_LEN) };
        }
        // Pop order 0, 1, 2...: the device then walks the table and buffers in order.
        let mut stack = vec![0u16; usize::from(layout.size)].into_boxed_slice();
        let nfree = free.len();
        for (slot, id) in stack.iter_mut().zip(free.rev()) {
            *slot = id;
        }
        Ok(TxQueue {
            nfree,
            free: stack,
            ring,
        })
    }

    /// Room for a frame in each buffer, after the virtio-net header.
    pub fn max_frame(&self) -> usize {
        self.ring.layout.buf_size as usize - VNET_HDR_LEN
    }

    ring_status!();

    /// Descriptors free for `send`, as of the last reclaim.
    pub fn free(&self) -> usize {
        self.nfree
    }

    /// Takes back the buffers the device is done with; returns how many.
    pub fn reclaim(&mut self) -> usize {
        let (free, nfree) = (&mut self.free, &mut self.nfree);
        let before = *nfree;
        self.ring.consume_used(usize::MAX, |id| {
            // Cannot overflow: `id` was held by the device, so it is not on the stack.
            free[*nfree] = id;
            *nfree += 1;
        });
        *nfree - before
    }

    /// Takes back up to `ids.len()` buffers the device is done with, writing their ids to
    /// `ids` instead of keeping them for [`send`](Self::send); returns how many. The
    /// caller owns them now: in a loop, they go to the receive queue that shares the
    /// buffers ([`RxQueue::post_bufs`]). An id the device returns twice, or one it was
    /// never given, is counted (`bad_used`) and not passed on.
    #[inline]
    pub fn reclaim_bufs(&mut self, ids: &mut [u16]) -> usize {
        let mut got = 0;
        self.ring.consume_used(ids.len(), |id| {
            ids[got] = id;
            got += 1;
        });
        got
    }

    /// Posts frames that are already in the shared buffers, one descriptor each, as they
    /// are: the zero-copy transmit. `bufs` are what [`RxQueue::take_bufs`] returned on the
    /// receive queue that shares this queue's buffers; the virtio-net header the device
    /// wrote there is cleared (a transmitted header must be all zero: no offloads, and
    /// `num_buffers` 0). Published with one index store, kicking the device only if it
    /// asked to be. Returns how many were posted: all, or none on a
    /// [`broken`](Self::broken) queue.
    ///
    /// Each buffer must be the caller's: taken, and not posted anywhere since. This queue
    /// can check only its own ring, not the receive queue's, nor its own free buffers (a
    /// queue whose buffers nobody shares has no use for this).
    ///
    /// # Panics
    /// If a buffer is one this queue already has posted, lies beyond the ring, or is
    /// longer than a buffer holds: the caller mixed up its queues.
    #[inline]
    pub fn post_bufs(&mut self, bufs: &[Buf]) -> usize {
        if self.ring.broken {
            return 0;
        }
        let room = self.max_frame() as u32;
        let mut bytes = 0u64;
        for b in bufs {
            assert!(
                self.ring.ours(b.id) && b.len <= room,
                "post_bufs: {b:?} is not a free buffer of this ring ({} of {room} bytes)",
                self.size()
            );
            let buf = self.ring.buf_ptr(b.id);
            // SAFETY: buffer `b.id` lies inside the mapping (`id < size`, checked above)
            // and the device does not hold it in this ring; in the ring that shares it, the
            // device gave it back (that is where `take_bufs` got it).
            unsafe { buf.cast::<[u8; VNET_HDR_LEN]>().write([0; VNET_HDR_LEN]) };
            self.ring.set_desc_len(b.id, VNET_HDR_LEN as u32 + b.len);
            self.ring.inflight[usize::from(b.id)] = true;
            self.ring.push(b.id);
            bytes += u64::from(b.len);
        }
        self.ring.stats.frames += bufs.len() as u64;
        self.ring.stats.bytes += bytes;
        self.ring.publish();
        bufs.len()
    }

    /// Posts up to `max` frames and returns how many it posted.
    ///
    /// Reclaims what the device has used, then for each free buffer calls `fill(i, buf)`
    /// (`i` counts from 0 within this call; `buf` is the room after the virtio-net header,
    /// [`max_frame`](Self::max_frame) bytes) and takes the returned length as the
    /// frame's. Returning 0 stops the burst there without posting that buffer; a length
    /// beyond the buffer is cut to it. All frames are published with one index store, and
    /// the device is kicked (one eventfd write) only if it asked to be.
    #[inline]
    pub fn send(&mut self, max: usize, mut fill: impl FnMut(usize, &mut [u8]) -> usize) -> usize {
        if self.ring.broken {
            return 0;
        }
        if self.nfree < max {
            self.reclaim();
        }
        let n = max.min(self.nfree);
        let room = self.max_frame();
        let mut posted = 0;
        let mut bytes = 0u64;
        while posted < n {
            let id = self.free[self.nfree - 1];
            debug_assert!(
                !self.ring.inflight[id as usize],
                "free buffer {id} is posted"
            );
            let buf = self.ring.buf_ptr(id);
            // SAFETY: buffer `id` is free (not held by the device), lies inside the
            // mapping, and is `buf_size` bytes long; nothing else in this process aliases
            // it while the slice lives. A device that writes buffers it does not hold
            // can only garble this frame.
            let frame = unsafe {
                buf.cast::<[u8; VNET_HDR_LEN]>().write([0; VNET_HDR_LEN]);
                std::slice::from_raw_parts_mut(buf.add(VNET_HDR_LEN), room)
            };
            let len = fill(posted, frame).min(room);
            if len == 0 {
                break;
            }
            self.ring.set_desc_len(id, (VNET_HDR_LEN + len) as u32);
            self.ring.inflight[id as usize] = true;
            self.ring.push(id);
            self.nfree -= 1;
            posted += 1;
            bytes += len as u64;
        }
        self.ring.stats.frames += posted as u64;
        self.ring.stats.bytes += bytes;
        self.ring.publish();
        posted
    }

    /// Posts exactly one malformed chain (or, for [`BadDescriptor::AvailIndexJump`], a
    /// malformed avail index) and publishes it, kicking the device whether or not it
    /// asked. Meant for tests of a backend's validation; see [`BadDescriptor`] for what
    /// each kind should make vnf count. Apart from [`BadDescriptor::BadHeader`], a correct
    /// backend stops the queue, so nothing more should be sent on it.
    pub fn post_bad(&mut self, kind: BadDescriptor) -> io::Result<()> {
        const LEN: u32 = 64;
        self.reclaim();
        let need = match kind {
            BadDescriptor::HeadBeyondRing | BadDescriptor::AvailIndexJump => 0,
            BadDescriptor::ChainTooLong => CHAIN_TOO_LONG,
            _ => 1,
        };
        if self.nfree < need {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{kind:?} needs {need} free descriptors, {} are free (ring of {})",
                    self.nfree,
                    self.size()
                ),
            ));
        }
        let mem_end = self.ring.mem.len();
        let hole = self.ring.mem.hole_gpa();
        let size = self.size();
        let take = |q: &mut TxQueue| {
            q.nfree -= 1;
            let id = q.free[q.nfree];
            q.ring.inflight[id as usize] = true;
            id
        };
        match kind {
            BadDescriptor::AddressOutside
            | BadDescriptor::Unmapped
            | BadDescriptor::CrossesEnd
            | BadDescriptor::ZeroLength
            | BadDescriptor::DescriptorLoop
            | BadDescriptor::BadHeader
            | BadDescriptor::NextBeyondRing => {
                let id = take(self);
                let addr = self.ring.layout.buf(id);
                let (addr, len, flags, next) = match kind {
                    BadDescriptor::AddressOutside => (1 << 60, LEN, 0, 0),
                    BadDescriptor::Unmapped => (hole, LEN, 0, 0),
                    BadDescriptor::CrossesEnd => (mem_end - 16, LEN, 0, 0),
                    BadDescriptor::ZeroLength => (addr, 0, 0, 0),
                    BadDescriptor::DescriptorLoop => (addr, LEN, DESC_F_NEXT, id),
                    BadDescriptor::NextBeyondRing => (addr, LEN, DESC_F_NEXT, size),
                    _ => (addr, LEN.min(self.ring.layout.buf_size), 0, 0),
                };
                if kind == BadDescriptor::BadHeader {
                    let buf = self.ring.buf_ptr(id);
                    let frame = len as usize - VNET_HDR_LEN;
                    // SAFETY: buffer `id` was free and holds `buf_size >= len` bytes, of
                    // which this writes the header and `len - 12` after it.
                    unsafe {
                        // flags = NEEDS_CSUM, gso_type = TCPV4: offloads nobody negotiated.
                        buf.cast::<[u8; VNET_HDR_LEN]>()
                            .write([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
                        std::ptr::write_bytes(buf.add(VNET_HDR_LEN), 0x5a, frame);
                    }
                }
                self.ring.write_desc(id, addr, len, flags, next);
                self.ring.push(id);
            }
            BadDescriptor::ChainTooLong => {
                let ids: Vec<u16> = (0..CHAIN_TOO_LONG).map(|_| take(self)).collect();
                for (k, &id) in ids.iter().enumerate() {
                    let last = k + 1 == ids.len();
                    let (flags, next) = if last {
                        (0, 0)
                    } else {
                        (DESC_F_NEXT, ids[k + 1])
                    };
                    let addr = self.ring.layout.buf(id);
                    self.ring
                        .write_desc(id, addr, VNET_HDR_LEN as u32, flags, next);
                }
                self.ring.push(ids[0]);
            }
            BadDescriptor::HeadBeyondRing => self.ring.push(size),
            BadDescriptor::AvailIndexJump => {
                self.ring.next_avail = self.ring.next_avail.wrapping_add(size).wrapping_add(1);
            }
        }
        self.ring.publish();
        // The device may be asleep with kicks off: wake it so that it looks now.
        self.ring.kick();
        Ok(())
    }
}

impl TxQueue {
    /// Turns this queue into one that sends the same `n` frames again and again (see
    /// [`FixedTxQueue`]): buffer `id` of `0..n` gets the frame `fill(id, buf)` writes
    /// (`buf` is the room after the virtio-net header, [`max_frame`](Self::max_frame)
    /// bytes; the return value is the frame's length), its header is cleared, and its
    /// descriptor is set up for that length, once. Buffers from `n` on are not used.
    ///
    /// Takes back what the device is done with first. Errors, and the queue is gone, if
    /// `n` is 0 or beyond the ring, if a length is 0 or beyond a buffer, or if one of the
    /// buffers is not free: the device still holds it, or
    /// [`reclaim_bufs`](Self::reclaim_bufs) handed it out.
    pub fn into_fixed(
        mut self,
        n: u16,
        mut fill: impl FnMut(u16, &mut [u8]) -> usize,
    ) -> io::Result<FixedTxQueue> {
        let size = self.size();
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if n == 0 || n > size {
            return Err(invalid(format!("{n} fixed frames in a ring of {size}")));
        }
        self.reclaim();
        let mut free = vec![false; usize::from(size)];
        for &id in &self.free[..self.nfree] {
            free[usize::from(id)] = true;
        }
        if let Some(id) = (0..n).find(|&id| !free[usize::from(id)]) {
            return Err(invalid(format!(
                "buffer {id} is not free: the device holds it, or reclaim_bufs handed it out"
            )));
        }
        let room = self.max_frame();
        let mut lens = vec![0u32; usize::from(n)].into_boxed_slice();
        for id in 0..n {
            let buf = self.ring.buf_ptr(id);
            // SAFETY: buffer `id` is free (checked above: neither held by the device nor
            // handed out), lies inside the mapping and is `buf_size` bytes long; nothing
            // else in this process aliases it while the slice lives.
            let frame = unsafe {
                buf.cast::<[u8; VNET_HDR_LEN]>().write([0; VNET_HDR_LEN]);
                std::slice::from_raw_parts_mut(buf.add(VNET_HDR_LEN), room)
            };
            let len = fill(id, frame);
            if len == 0 || len > room {
                return Err(invalid(format!(
                    "fixed frame {id} of {len} bytes: a buffer holds 1 to {room}"
                )));
            }
            // The whole descriptor: `post_bad` may have pointed it elsewhere.
            let addr = self.ring.layout.buf(id);
            self.ring
                .write_desc(id, addr, (VNET_HDR_LEN + len) as u32, 0, 0);
            lens[usize::from(id)] = len as u32;
        }
        Ok(FixedTxQueue {
            ring: self.ring,
            lens,
            next: 0,
        })
    }
}

/// A transmit queue that sends the same frames again and again, as a transmit-only
/// traffic generator does; made by [`TxQueue::into_fixed`].
///
/// Buffer `id` of `0..frames` holds one frame, written once. [`send`](Self::send) posts
/// the buffers in turn, 0, 1, ..., `frames - 1`, 0, ..., each once the device has given it
/// back; per frame that is one avail entry and nothing more: no frame, header or
/// descriptor is written again. That is enough because a device only reads what it is
/// sent (the virtio specification forbids it to write a device-readable buffer), so a
/// buffer holds after transmission what it held before; a device that breaks the rule
/// garbles only what it is sent itself.
///
/// Posting in turn keeps the frames on the wire in the order they were written, as long
/// as the device gives buffers back in the order it took them, as vhost-user devices do.
/// A buffer given back early waits for its turn, and while the device holds the one
/// whose turn it is, nothing is posted. With every buffer of the ring in use, each buffer
/// lands in the same avail entry lap after lap, and the entries are not even written
/// again after the first lap.
pub struct FixedTxQueue {
    ring: Ring,
    /// The frame length of each buffer in use, virtio-net header excluded.
    lens: Box<[u32]>,
    /// The buffer whose turn it is.
    next: u16,
}

impl FixedTxQueue {
    /// How many buffers hold a frame: `n` of [`TxQueue::into_fixed`].
    pub fn frames(&self) -> u16 {
        self.lens.len() as u16
    }

    ring_status!();

    /// Posts up to `max` frames, in turn, and returns how many: fewer when the device
    /// still holds the buffer whose turn it is, none on a [`broken`](Self::broken) queue.
    /// Takes back what the device is done with only when it holds that buffer, at most
    /// once per call. Published with one index store, kicking the device only if it
    /// asked to be.
    #[inline]
    pub fn send(&mut self, max: usize) -> usize {
        if self.ring.broken {
            return 0;
        }
        let frames = self.lens.len();
        let mut posted = 0;
        let mut bytes = 0u64;
        let mut reclaimed = false;
        while posted < max {
            let id = self.next;
            let i = usize::from(id);
            if self.ring.inflight[i] {
                if reclaimed {
                    break;
                }
                // Its turn, but the device held it when we last looked: take back what
                // it is done with (an id it names twice or never had is counted, not
                // followed) and see again.
                self.ring.consume_used(usize::MAX, |_| {});
                reclaimed = true;
                if self.ring.inflight[i] {
                    break;
                }
            }
            self.ring.inflight[i] = true;
            self.ring.push_unless_there(id);
            bytes += u64::from(self.lens[i]);
            self.next = if i + 1 == frames { 0 } else { id + 1 };
            posted += 1;
        }
        self.ring.stats.frames += posted as u64;
        self.ring.stats.bytes += bytes;
        self.ring.publish();
        posted
    }
}

/// Descriptors in the chain that [`BadDescriptor::ChainTooLong`] posts: one more than vnf's
/// `ring::MAX_CHAIN`.
pub const CHAIN_TOO_LONG: usize = crate::ring::MAX_CHAIN + 1;

/// Malformed things a hostile driver can post on its transmit queue, and what vnf (see
/// `virtio/src/ring.rs` and `counters.rs`) counts for each, on that queue pair's stats line.
/// All but [`BadHeader`](Self::BadHeader) are ring errors: vnf counts `error_KIND`, puts
/// the queue in `state=needs_reset`, and keeps every other queue running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadDescriptor {
    /// A buffer at an address far beyond any region (2^60): `error_address`.
    AddressOutside,
    /// A buffer in the hole between our two memory regions: `error_address`.
    Unmapped,
    /// A buffer that starts inside the main region and runs past its end: `error_address`.
    CrossesEnd,
    /// A descriptor of length 0: `error_zero_length`.
    ZeroLength,
    /// A descriptor whose `next` is itself: `error_chain_too_long` (the walk gives up
    /// after `min(ring size, 256)` descriptors).
    DescriptorLoop,
    /// A chain of [`CHAIN_TOO_LONG`] (257) descriptors, each with a valid buffer; needs a
    /// ring of 512 or more: `error_chain_too_long`.
    ChainTooLong,
    /// An avail entry naming descriptor `size`, one past the table: `error_desc_index`.
    HeadBeyondRing,
    /// A descriptor whose `next` is one past the table: `error_desc_index`.
    NextBeyondRing,
    /// An avail index published `size + 1` past the previous one: `error_avail_index`.
    AvailIndexJump,
    /// A well-formed 52-byte frame whose virtio-net header asks for checksum offload and
    /// TCPv4 GSO: a frame-level `drop_bad_header`; the queue keeps running.
    BadHeader,
}

impl BadDescriptor {
    pub const ALL: [BadDescriptor; 10] = [
        BadDescriptor::AddressOutside,
        BadDescriptor::Unmapped,
        BadDescriptor::CrossesEnd,
        BadDescriptor::ZeroLength,
        BadDescriptor::DescriptorLoop,
        BadDescriptor::ChainTooLong,
        BadDescriptor::HeadBeyondRing,
        BadDescriptor::NextBeyondRing,
        BadDescriptor::AvailIndexJump,
        BadDescriptor::BadHeader,
    ];

    /// The vnf stats key this kind should increment (`error_*` or `drop_*`).
    pub fn vnf_counter(self) -> &'static str {
        match self {
            BadDescriptor::AddressOutside | BadDescriptor::Unmapped | BadDescriptor::CrossesEnd => {
                "error_address"
            }
            BadDescriptor::ZeroLength => "error_zero_length",
            BadDescriptor::DescriptorLoop | BadDescriptor::ChainTooLong => "error_chain_too_long",
            BadDescriptor::HeadBeyondRing | BadDescriptor::NextBeyondRing => "error_desc_index",
            BadDescriptor::AvailIndexJump => "error_avail_index",
            BadDescriptor::BadHeader => "drop_bad_header",
        }
    }

    /// Whether a correct backend takes the queue out of service for it.
    pub fn breaks_queue(self) -> bool {
        self != BadDescriptor::BadHeader
    }
}

/// Our receive queue: the device's transmit side, virtqueue `2p` of pair `p`.
pub struct RxQueue {
    ring: Ring,
    mergeable: bool,
    /// Where frames spread over several buffers are put together. Sized once, at the
    /// largest frame a full ring can carry, so that it never grows on the data path.
    scratch: Vec<u8>,
}

/// The first used entry of the next frame, as [`RxQueue::head`] found it.
enum Head {
    /// Buffer `id`, taken back from the device, starts a frame of `nbufs` buffers and has
    /// `len` bytes written, header included. Its entries are not consumed yet.
    Frame { id: u16, len: u32, nbufs: u16 },
    /// A bad entry: counted and consumed, its buffer reposted if it was ours.
    Skipped,
    /// The device has not published the frame's later buffers yet: left in the ring.
    Incomplete,
}

impl RxQueue {
    /// Sets up the ring with every descriptor a device-writable buffer; those in `posted`
    /// are posted, the others belong to whoever shares the buffers (a transmit queue)
    /// until they come to [`post_bufs`](Self::post_bufs).
    pub(crate) fn with_bufs(
        mem: Arc<SharedMemory>,
        layout: QueueLayout,
        kick: EventFd,
        event_idx: bool,
        mergeable: bool,
        posted: std::ops::Range<u16>,
    ) -> io::Result<RxQueue> {
        let mut ring = Ring::new(mem, layout, kick, event_idx)?;
        ring.point_descs("posted", &posted, layout.buf_size, DESC_F_WRITE)?;
        for id in posted {
            ring.inflight[id as usize] = true;
            ring.push(id);
        }
        // Published by the first `recv`, or right away here: the device sees buffers as
        // soon as the queue starts either way; do it now so a frame can land at once.
        let idx = ring.next_avail;
        ring.avail_field(1).store(idx.to_le(), Ordering::Release);
        ring.published_avail = idx;
        let scratch = if mergeable {
            // A frame of up to 64 KiB (the largest a virtio-net device sends without
            // GSO negotiated is far smaller; this is a bound, not a promise).
            Vec::with_capacity(65536 + layout.buf_size as usize)
        } else {
            Vec::new()
        };
        Ok(RxQueue {
            ring,
            mergeable,
            scratch,
        })
    }

    ring_status!();

    /// Takes up to `max` frames from the device and calls `sink(frame)` for each, the
    /// virtio-net header stripped; returns how many. A frame in one buffer is passed in
    /// place (no copy); a frame the device merged over several buffers is gathered first.
    /// The buffers go back to the device, published with one index store.
    #[inline]
    pub fn recv(&mut self, max: usize, mut sink: impl FnMut(&[u8])) -> usize {
        let mut pending = self.ring.used_pending();
        let mut got = 0usize;
        let mut bytes = 0u64;
        while got < max && pending > 0 {
            let (id, len, nbufs) = match self.head(&mut pending) {
                Head::Frame { id, len, nbufs } => (id, len, nbufs),
                Head::Skipped => continue,
                Head::Incomplete => break,
            };
            if nbufs == 1 {
                let n = len as usize - VNET_HDR_LEN;
                let buf = self.ring.buf_ptr(id);
                // SAFETY: the device returned buffer `id` (so it no longer writes it) with
                // `len <= buf_size` bytes written; the slice ends before we repost it.
                sink(unsafe { std::slice::from_raw_parts(buf.add(VNET_HDR_LEN), n) });
                bytes += n as u64;
                self.repost(id);
            } else if self.gather(id, len, nbufs) {
                sink(&self.scratch);
                bytes += self.scratch.len() as u64;
            } else {
                self.ring.stats.dropped += 1;
            }
            self.consume(&mut pending, nbufs);
            got += 1;
        }
        self.ring.stats.frames += got as u64;
        self.ring.stats.bytes += bytes;
        self.ring.publish();
        got
    }

    /// Takes up to `out.len()` frames from the device without copying or reposting their
    /// buffers: each is written to `out` as (buffer id, frame length), and the buffer is
    /// the caller's until it comes back through [`post_bufs`](Self::post_bufs), here or,
    /// in a loop, on the transmit queue that shares this queue's buffers
    /// ([`TxQueue::post_bufs`]). Returns how many.
    ///
    /// Used entries are checked exactly as [`recv`](Self::recv) checks them. A frame the
    /// device spread over several buffers cannot be handed on as one: it is dropped, its
    /// buffers reposted, and counted (`multi_buffer`). Reposts are published with one
    /// index store.
    #[inline]
    pub fn take_bufs(&mut self, out: &mut [Buf]) -> usize {
        let mut pending = self.ring.used_pending();
        let mut got = 0usize;
        let mut bytes = 0u64;
        while got < out.len() && pending > 0 {
            match self.head(&mut pending) {
                Head::Frame { id, len, nbufs: 1 } => {
                    let len = len - VNET_HDR_LEN as u32;
                    out[got] = Buf { id, len };
                    bytes += u64::from(len);
                    got += 1;
                    self.consume(&mut pending, 1);
                }
                Head::Frame { id, nbufs, .. } => {
                    self.repost(id);
                    self.repost_rest(nbufs);
                    self.ring.stats.multi_buffer += 1;
                    self.consume(&mut pending, nbufs);
                }
                Head::Skipped => {}
                Head::Incomplete => break,
            }
        }
        self.ring.stats.frames += got as u64;
        self.ring.stats.bytes += bytes;
        self.ring.publish();
        got
    }

    /// Posts buffers for the device to write: ones [`take_bufs`](Self::take_bufs) took
    /// here, or, in a loop, ones the transmit queue sharing this queue's buffers is done
    /// with ([`TxQueue::reclaim_bufs`]). Published with one index store.
    ///
    /// # Panics
    /// If an id is beyond the ring or already posted: the caller mixed up its queues.
    #[inline]
    pub fn post_bufs(&mut self, ids: &[u16]) {
        for &id in ids {
            assert!(
                self.ring.ours(id),
                "post_bufs: buffer {id} is not a free buffer of this ring of {}",
                self.size()
            );
            self.repost(id);
        }
        self.ring.publish();
    }

    /// Checks the next used entry: the descriptor must be one the device holds, the
    /// length must hold a header and fit the buffer, and a merged frame's buffer count
    /// must be possible and all its buffers published.
    #[inline(always)]
    fn head(&mut self, pending: &mut u16) -> Head {
        let hdr = VNET_HDR_LEN as u32;
        let buf_size = self.ring.layout.buf_size;
        let (id, len) = self.ring.used_elem(self.ring.last_used);
        let Some(id) = self.ring.take_back(id) else {
            // Not ours to repost: skip the entry, the descriptor stays where it is.
            self.ring.stats.bad_used += 1;
            self.consume(pending, 1);
            return Head::Skipped;
        };
        let nbufs = if self.mergeable && len >= hdr && len <= buf_size {
            // SAFETY: bytes 10..12 of buffer `id`, which the device returned to us.
            u16::from_le_bytes(unsafe { self.ring.buf_ptr(id).add(10).cast::<[u8; 2]>().read() })
        } else {
            1
        };
        if len < hdr || len > buf_size || nbufs == 0 || nbufs > self.size() {
            self.ring.stats.bad_used += 1;
            self.ring.stats.dropped += 1;
            self.repost(id);
            self.consume(pending, 1);
            return Head::Skipped;
        }
        if nbufs > *pending {
            // The rest of the frame is not published yet: look once more, else leave
            // the whole frame for the next call.
            self.ring.inflight[id as usize] = true;
            *pending = self.ring.used_pending();
            if nbufs > *pending {
                return Head::Incomplete;
            }
            self.ring.inflight[id as usize] = false;
        }
        Head::Frame { id, len, nbufs }
    }

    /// Moves past `n` used entries.
    #[inline(always)]
    fn consume(&mut self, pending: &mut u16, n: u16) {
        self.ring.last_used = self.ring.last_used.wrapping_add(n);
        *pending -= n;
    }

    /// Reposts the buffers of entries 1..nbufs from the next used entry: the rest of a
    /// frame that is dropped.
    fn repost_rest(&mut self, nbufs: u16) {
        let start = self.ring.last_used;
        for k in 1..nbufs {
            let (id, _) = self.ring.used_elem(start.wrapping_add(k));
            match self.ring.take_back(id) {
                Some(id) => self.repost(id),
                None => self.ring.stats.bad_used += 1,
            }
        }
    }

    /// Puts together a frame of `nbufs` buffers starting with `first` (already taken
    /// back, `len` bytes) into `scratch`, reposting every buffer. False if a later entry
    /// is not one of ours or is too long: the frame is then dropped.
    fn gather(&mut self, first: u16, len: u32, nbufs: u16) -> bool {
        self.scratch.clear();
        let mut ok = true;
        let put = |scratch: &mut Vec<u8>, ptr: *const u8, n: usize| {
            if scratch.len() + n > scratch.capacity() {
                return false;
            }
            // SAFETY: `ptr` is a buffer the device returned, with `n <= buf_size` bytes
            // written; the slice is copied out before the buffer is reposted.
            scratch.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, n) });
            true
        };
        let p = self.ring.buf_ptr(first);
        ok &= put(
            &mut self.scratch,
            p.wrapping_add(VNET_HDR_LEN),
            (len as usize) - VNET_HDR_LEN,
        );
        self.repost(first);
        let start = self.ring.last_used;
        for k in 1..nbufs {
            let (id, len) = self.ring.used_elem(start.wrapping_add(k));
            match self.ring.take_back(id) {
                Some(id) => {
                    if len <= self.ring.layout.buf_size {
                        ok &= put(&mut self.scratch, self.ring.buf_ptr(id), len as usize);
                    } else {
                        ok = false;
                    }
                    self.repost(id);
                }
                None => {
                    self.ring.stats.bad_used += 1;
                    ok = false;
                }
            }
        }
        ok
    }

    #[inline(always)]
    fn repost(&mut self, id: u16) {
        self.ring.inflight[id as usize] = true;
        self.ring.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device played by hand over the same memory.
    struct Device {
        mem: Arc<SharedMemory>,
        l: QueueLayout,
        last_avail: u16,
        used: u16,
    }

    impl Device {
        /// The device side of a queue whose rings start empty.
        fn new(mem: Arc<SharedMemory>, l: QueueLayout) -> Device {
            Device {
                mem,
                l,
                last_avail: 0,
                used: 0,
            }
        }

        fn at(&self, gpa: u64) -> *mut u8 {
            self.mem.host_addr(gpa)
        }
        fn avail_idx(&self) -> u16 {
            // SAFETY: inside the avail ring of a queue in test memory.
            unsafe { self.at(self.l.avail + 2).cast::<u16>().read_volatile() }
        }
        /// Descriptor `id` as the driver wrote it: (addr, len, flags, next).
        fn desc(&self, id: u16) -> (u64, u32, u16, u16) {
            // SAFETY: a descriptor of the test queue's table.
            unsafe {
                let d = self.at(self.l.desc + 16 * u64::from(id));
                (
                    d.cast::<u64>().read(),
                    d.add(8).cast::<u32>().read(),
                    d.add(12).cast::<u16>().read(),
                    d.add(14).cast::<u16>().read(),
                )
            }
        }
        fn take(&mut self) -> Option<(u16, u64, u32, u16, u16)> {
            if self.avail_idx() == self.last_avail {
                return None;
            }
            let slot = (self.last_avail & (self.l.size - 1)) as u64;
            self.last_avail = self.last_avail.wrapping_add(1);
            // SAFETY: an entry of the test queue's avail ring.
            let head = unsafe { self.at(self.l.avail + 4 + 2 * slot).cast::<u16>().read() };
            let (addr, len, flags, next) = self.desc(head);
            Some((head, addr, len, flags, next))
        }
        /// Takes every buffer posted since the last take: (id, address).
        fn posted(&mut self) -> Vec<(u16, u64)> {
            std::iter::from_fn(|| self.take().map(|d| (d.0, d.1))).collect()
        }
        fn posted_ids(&mut self) -> Vec<u16> {
            self.posted().into_iter().map(|(id, _)| id).collect()
        }
        fn put_used(&mut self, id: u32, len: u32, publish: bool) {
            let slot = (self.used & (self.l.size - 1)) as u64;
            // SAFETY: used ring of the test queue.
            unsafe {
                let e = self.at(self.l.used + 4 + 8 * slot).cast::<u32>();
                e.write(id);
                e.add(1).write(len);
            }
            self.used = self.used.wrapping_add(1);
            if publish {
                self.publish();
            }
        }
        fn publish(&self) {
            // SAFETY: used index of the test queue.
            unsafe {
                self.at(self.l.used + 2)
                    .cast::<u16>()
                    .write_volatile(self.used)
            };
        }
        fn set_used_flags(&self, f: u16) {
            // SAFETY: used flags of the test queue.
            unsafe { self.at(self.l.used).cast::<u16>().write_volatile(f) };
        }
        fn set_avail_event(&self, idx: u16) {
            let at = self.l.used + 4 + 8 * u64::from(self.l.size);
            // SAFETY: avail_event of the test queue, right after its used entries.
            unsafe { self.at(at).cast::<u16>().write_volatile(idx) };
        }
        /// Writes `frame` behind a header with `num_buffers` 1 into buffer `id` at `addr`
        /// and returns it used; returns the length it was returned with.
        fn put_frame(&mut self, (id, addr): (u16, u64), frame: &[u8], publish: bool) -> u32 {
            let b = with_header(1, frame);
            self.write(addr, &b);
            self.put_used(u32::from(id), b.len() as u32, publish);
            b.len() as u32
        }
        fn write(&self, gpa: u64, bytes: &[u8]) {
            // SAFETY: a buffer of the test queue.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at(gpa), bytes.len()) };
        }
        fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
            // SAFETY: a buffer of the test queue.
            unsafe { std::slice::from_raw_parts(self.at(gpa), len).to_vec() }
        }
    }

    /// `frame` behind a virtio-net header whose only non-zero field is `num_buffers`.
    fn with_header(num_buffers: u8, frame: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; VNET_HDR_LEN];
        b[10] = num_buffers;
        b.extend_from_slice(frame);
        b
    }

    fn setup(size: u16, buf: u32) -> (Arc<SharedMemory>, QueueLayout, EventFd) {
        let mut mem = SharedMemory::new(QueueLayout::bytes(size, buf) + 4096).unwrap();
        let l = QueueLayout::alloc(&mut mem, size, buf).unwrap();
        let kick = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        (Arc::new(mem), l, kick)
    }

    /// A transmit queue with all its buffers free, in memory of its own; the device at its
    /// other end, and a second handle on its kick eventfd to count kicks with.
    fn tx_queue(size: u16, buf: u32, event_idx: bool) -> (Device, TxQueue, EventFd) {
        let (mem, l, kick) = setup(size, buf);
        let probe = kick.try_clone().unwrap();
        let tx = TxQueue::with_bufs(mem.clone(), l, kick, event_idx, 0..size).unwrap();
        (Device::new(mem, l), tx, probe)
    }

    /// A receive queue with all its buffers posted (mergeable), in memory of its own, and
    /// the device at its other end.
    fn rx_queue(size: u16, buf: u32) -> (Device, RxQueue) {
        let (mem, l, kick) = setup(size, buf);
        let rx = RxQueue::with_bufs(mem.clone(), l, kick, false, true, 0..size).unwrap();
        (Device::new(mem, l), rx)
    }

    fn kicks(fd: &EventFd) -> u64 {
        fd.read().unwrap_or(0)
    }

    #[test]
    fn send_posts_frames_and_reclaims_them() {
        let (mut dev, mut tx, probe) = tx_queue(4, 128, false);
        let n = tx.send(3, |i, b| {
            b[..4].copy_from_slice(&[i as u8; 4]);
            60 + i
        });
        assert_eq!(n, 3);
        assert_eq!(kicks(&probe), 1, "one kick per burst");
        for i in 0..3u16 {
            let (head, addr, len, flags, _) = dev.take().unwrap();
            assert_eq!(len as usize, VNET_HDR_LEN + 60 + i as usize);
            assert_eq!(flags, 0);
            assert_eq!(addr, dev.l.buf(head));
            let bytes = dev.read(addr, len as usize);
            assert_eq!(&bytes[..VNET_HDR_LEN], &[0; VNET_HDR_LEN]);
            assert_eq!(&bytes[VNET_HDR_LEN..VNET_HDR_LEN + 4], &[i as u8; 4]);
        }
        assert!(dev.take().is_none());
        // Only one free: a burst of 4 posts 1.
        assert_eq!(tx.send(4, |_, _| 60), 1);
        assert_eq!(tx.send(4, |_, _| 60), 0, "ring full");
        let (h, ..) = dev.take().unwrap();
        dev.put_used(h as u32, 0, true);
        dev.set_used_flags(USED_F_NO_NOTIFY);
        assert_eq!(tx.send(4, |_, _| 60), 1);
        assert_eq!(
            kicks(&probe),
            1,
            "the second burst kicked, the last did not"
        );
        // Returning 0 stops the burst.
        assert_eq!(tx.send(4, |_, _| 0), 0);
        assert_eq!(tx.stats().frames, 5);
    }

    #[test]
    fn tx_ignores_bogus_used_entries() {
        let (mut dev, mut tx, _) = tx_queue(4, 128, false);
        assert_eq!(tx.send(1, |_, _| 60), 1);
        let (h, ..) = dev.take().unwrap();
        dev.put_used(h as u32, 0, false);
        dev.put_used(h as u32, 0, false); // twice
        dev.put_used(99, 0, false); // not a descriptor
        dev.publish();
        // Three entries for one chain posted: the used index is impossible.
        tx.reclaim();
        assert!(tx.broken());
        assert_eq!(tx.send(1, |_, _| 60), 0);

        let (mut dev, mut tx, _) = tx_queue(4, 128, false);
        assert_eq!(tx.send(2, |_, _| 60), 2);
        let (h, ..) = dev.take().unwrap();
        dev.put_used(h as u32, 0, false);
        dev.put_used(h as u32, 0, true); // repeated
        assert_eq!(tx.reclaim(), 1);
        assert_eq!(tx.stats().bad_used, 1);
        assert_eq!(tx.free(), 3);
        assert!(!tx.broken());
    }

    #[test]
    fn event_idx_kicks_only_when_avail_event_is_passed() {
        let (dev, mut tx, probe) = tx_queue(8, 128, true);
        // Kick when the index moves past 2.
        dev.set_avail_event(2);
        assert_eq!(tx.send(2, |_, _| 60), 2);
        assert_eq!(kicks(&probe), 0, "0 -> 2 does not pass 2");
        assert_eq!(tx.send(1, |_, _| 60), 1);
        assert_eq!(kicks(&probe), 1, "2 -> 3 passes it");
    }

    #[test]
    fn recv_passes_frames_and_reposts_buffers() {
        let (mut dev, mut rx) = rx_queue(4, 128);
        let mut bufs = Vec::new();
        while let Some((head, addr, len, flags, _)) = dev.take() {
            assert_eq!((len, flags), (128, DESC_F_WRITE));
            bufs.push((head, addr));
        }
        assert_eq!(bufs.len(), 4, "all buffers posted at start");
        for (k, &buf) in bufs.iter().take(2).enumerate() {
            dev.put_frame(buf, &[k as u8 + 1; 70], false);
        }
        dev.publish();
        let mut got = Vec::new();
        assert_eq!(rx.recv(1, |f| got.push(f.to_vec())), 1, "max honoured");
        assert_eq!(rx.recv(8, |f| got.push(f.to_vec())), 1);
        assert_eq!(got, vec![vec![1u8; 70], vec![2u8; 70]]);
        // Both buffers are back, in order.
        assert_eq!(dev.take().map(|d| d.0), Some(bufs[0].0));
        assert_eq!(dev.take().map(|d| d.0), Some(bufs[1].0));
        assert_eq!(rx.stats().bytes, 140);
    }

    #[test]
    fn recv_gathers_merged_buffers_once_all_are_published() {
        let (mut dev, mut rx) = rx_queue(4, 64);
        let bufs = dev.posted();
        let frame: Vec<u8> = (0..130u8).collect();
        // 12 + 130 bytes over 64-byte buffers: 52 + 64 + 14.
        dev.write(bufs[0].1, &with_header(3, &frame[..52]));
        dev.write(bufs[1].1, &frame[52..116]);
        dev.write(bufs[2].1, &frame[116..]);
        dev.put_used(bufs[0].0 as u32, 64, false);
        dev.put_used(bufs[1].0 as u32, 64, true);
        let mut got = Vec::new();
        assert_eq!(rx.recv(8, |f| got.push(f.to_vec())), 0, "frame incomplete");
        dev.put_used(bufs[2].0 as u32, 14, true);
        assert_eq!(rx.recv(8, |f| got.push(f.to_vec())), 1);
        assert_eq!(got, vec![frame]);
        let back = dev.posted_ids();
        assert_eq!(back, vec![bufs[0].0, bufs[1].0, bufs[2].0]);
    }

    #[test]
    fn recv_drops_bad_entries_without_losing_buffers() {
        let (mut dev, mut rx) = rx_queue(4, 64);
        let bufs = dev.posted();
        dev.put_used(bufs[0].0 as u32, 65, false); // longer than the buffer
        dev.put_used(77, 20, false); // not a descriptor
        dev.put_used(bufs[1].0 as u32, 5, false); // shorter than a header
        dev.publish();
        let mut n = 0;
        rx.recv(8, |_| n += 1);
        assert_eq!(n, 0);
        assert_eq!(rx.stats().bad_used, 3);
        let back = dev.posted_ids();
        assert_eq!(back, vec![bufs[0].0, bufs[1].0]);
    }

    #[test]
    fn post_bad_writes_what_it_says() {
        let (mut dev, mut tx, _) = tx_queue(512, 128, false);
        tx.post_bad(BadDescriptor::DescriptorLoop).unwrap();
        let (h, _, _, flags, next) = dev.take().unwrap();
        assert_eq!((flags, next), (DESC_F_NEXT, h));
        tx.post_bad(BadDescriptor::ZeroLength).unwrap();
        assert_eq!(dev.take().unwrap().2, 0);
        tx.post_bad(BadDescriptor::Unmapped).unwrap();
        assert_eq!(dev.take().unwrap().1, dev.mem.hole_gpa());
        tx.post_bad(BadDescriptor::HeadBeyondRing).unwrap();
        assert_eq!(dev.take().unwrap().0, 512);
        tx.post_bad(BadDescriptor::ChainTooLong).unwrap();
        let (mut i, ..) = dev.take().unwrap();
        let mut n = 1;
        loop {
            let (_, _, flags, next) = dev.desc(i);
            if flags & DESC_F_NEXT == 0 {
                break;
            }
            i = next;
            n += 1;
        }
        assert_eq!(n, CHAIN_TOO_LONG);
        tx.post_bad(BadDescriptor::BadHeader).unwrap();
        let (_, addr, len, _, _) = dev.take().unwrap();
        assert_eq!(len, 64);
        assert_eq!(dev.read(addr, 2), vec![1, 1]);
        let before = dev.avail_idx();
        tx.post_bad(BadDescriptor::AvailIndexJump).unwrap();
        assert_eq!(dev.avail_idx().wrapping_sub(before), 513);

        let (_, mut tx, _) = tx_queue(256, 128, false);
        assert!(
            tx.post_bad(BadDescriptor::ChainTooLong).is_err(),
            "ring too small"
        );
    }

    /// A receive ring and a transmit ring sharing one set of `size` buffers of `buf` bytes:
    /// buffers `0..tx_bufs` start free on the transmit ring, the rest posted for receive.
    fn shared(size: u16, buf: u32, tx_bufs: u16) -> (Device, RxQueue, Device, TxQueue) {
        let len = 2 * QueueLayout::ring_bytes(size) + QueueLayout::buf_bytes(size, buf);
        let mut mem = SharedMemory::new(len).unwrap();
        let bufs = QueueLayout::alloc_bufs(&mut mem, size, buf).unwrap();
        let lr = QueueLayout::alloc_ring(&mut mem, size, bufs, buf).unwrap();
        let lt = QueueLayout::alloc_ring(&mut mem, size, bufs, buf).unwrap();
        let mem = Arc::new(mem);
        let kick = || EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let rx = RxQueue::with_bufs(mem.clone(), lr, kick(), false, true, tx_bufs..size).unwrap();
        let tx = TxQueue::with_bufs(mem.clone(), lt, kick(), false, 0..tx_bufs).unwrap();
        (Device::new(mem.clone(), lr), rx, Device::new(mem, lt), tx)
    }

    /// Writes `frame` behind a header with `num_buffers` 1 into the next receive buffer
    /// and returns it used (published). Returns the buffer's id.
    fn deliver(dev: &mut Device, frame: &[u8]) -> u16 {
        let (head, addr, ..) = dev.take().expect("a receive buffer");
        dev.put_frame((head, addr), frame, true);
        head
    }

    fn bufs_of(rx: &mut RxQueue, max: usize) -> Vec<Buf> {
        let mut out = vec![Buf::default(); max];
        let n = rx.take_bufs(&mut out);
        out.truncate(n);
        out
    }

    #[test]
    fn take_bufs_hands_buffers_over_and_post_bufs_returns_them() {
        let (mut dev, mut rx) = rx_queue(4, 128);
        let a = deliver(&mut dev, &[1; 60]);
        let b = deliver(&mut dev, &[2; 70]);
        let c = deliver(&mut dev, &[3; 80]);
        let got = bufs_of(&mut rx, 2);
        assert_eq!(
            got,
            [Buf { id: a, len: 60 }, Buf { id: b, len: 70 }],
            "max honoured"
        );
        assert_eq!(bufs_of(&mut rx, 8), [Buf { id: c, len: 80 }]);
        assert!(dev.take().is_some(), "the fourth buffer, never used");
        assert!(dev.take().is_none(), "taken buffers are not reposted");
        assert_eq!((rx.stats().frames, rx.stats().bytes), (3, 210));
        rx.post_bufs(&[b, a]);
        assert_eq!(dev.take().map(|d| d.0), Some(b));
        assert_eq!(dev.take().map(|d| d.0), Some(a));
        assert!(dev.take().is_none());
    }

    #[test]
    fn take_bufs_drops_a_frame_spread_over_buffers_and_reposts_them() {
        let (mut dev, mut rx) = rx_queue(4, 64);
        let bufs = dev.posted();
        dev.write(bufs[0].1, &with_header(2, &[]));
        dev.put_used(u32::from(bufs[0].0), 64, true);
        assert!(
            bufs_of(&mut rx, 8).is_empty(),
            "second buffer not published yet"
        );
        dev.put_used(u32::from(bufs[1].0), 10, true);
        dev.put_frame(bufs[2], &[9; 50], true);
        let got = bufs_of(&mut rx, 8);
        assert_eq!(
            got,
            [Buf {
                id: bufs[2].0,
                len: 50
            }]
        );
        assert_eq!(rx.stats().multi_buffer, 1);
        assert_eq!(rx.stats().frames, 1);
        let back = dev.posted_ids();
        assert_eq!(
            back,
            [bufs[0].0, bufs[1].0],
            "the dropped frame's buffers are back"
        );
    }

    #[test]
    fn take_bufs_counts_what_the_device_gets_wrong_and_trusts_none_of_it() {
        let (mut dev, mut rx) = rx_queue(8, 128);
        let bufs = dev.posted();
        let len = dev.put_frame(bufs[0], &[7; 60], false);
        dev.put_used(u32::from(bufs[0].0), len, false); // again
        dev.put_used(77, 72, false); // not a descriptor
        dev.put_used(u32::from(bufs[1].0), 129, false); // longer than the buffer
        dev.put_used(u32::from(bufs[2].0), 11, false); // shorter than a header
        dev.publish();
        assert_eq!(
            bufs_of(&mut rx, 8),
            [Buf {
                id: bufs[0].0,
                len: 60
            }]
        );
        let s = rx.stats();
        assert_eq!((s.bad_used, s.dropped, s.frames), (4, 2, 1));
        // Only the two bad-length buffers went back; the repeated id is the caller's.
        let back = dev.posted_ids();
        assert_eq!(back, [bufs[1].0, bufs[2].0]);
    }

    #[test]
    #[should_panic(expected = "not a free buffer")]
    fn rx_post_bufs_refuses_a_buffer_already_posted() {
        let (_dev, mut rx) = rx_queue(4, 128);
        rx.post_bufs(&[2]);
    }

    #[test]
    #[should_panic(expected = "not a free buffer")]
    fn tx_post_bufs_refuses_a_buffer_it_has_posted() {
        let (_rxd, _rx, _txd, mut tx) = shared(4, 128, 2);
        tx.post_bufs(&[Buf { id: 3, len: 60 }, Buf { id: 3, len: 60 }]);
    }

    #[test]
    #[should_panic(expected = "not a free buffer")]
    fn tx_post_bufs_refuses_a_frame_longer_than_a_buffer() {
        let (_rxd, _rx, _txd, mut tx) = shared(4, 128, 2);
        tx.post_bufs(&[Buf {
            id: 3,
            len: 128 - VNET_HDR_LEN as u32 + 1,
        }]);
    }

    #[test]
    fn shared_buffers_go_out_unchanged_with_a_clean_header() {
        let (mut rxd, mut rx, mut txd, mut tx) = shared(4, 128, 1);
        assert_eq!(tx.free(), 1);
        let frame: Vec<u8> = (0..60).collect();
        let id = deliver(&mut rxd, &frame);
        assert_eq!(id, 1, "buffer 0 starts on the transmit side");
        let got = bufs_of(&mut rx, 8);
        assert_eq!(got, [Buf { id, len: 60 }]);
        assert_eq!(tx.post_bufs(&got), 1);
        let (head, addr, len, flags, _) = txd.take().unwrap();
        assert_eq!((head, flags), (id, 0));
        assert_eq!(len as usize, VNET_HDR_LEN + 60);
        assert_eq!(addr, rxd.l.buf(id), "the same buffer, not a copy");
        let bytes = txd.read(addr, len as usize);
        assert_eq!(
            &bytes[..VNET_HDR_LEN],
            &[0; VNET_HDR_LEN],
            "num_buffers cleared"
        );
        assert_eq!(&bytes[VNET_HDR_LEN..], &frame[..]);
        assert_eq!((tx.stats().frames, tx.stats().bytes), (1, 60));

        txd.put_used(u32::from(head), 0, true);
        let mut ids = [0u16; 4];
        assert_eq!(tx.reclaim_bufs(&mut ids), 1);
        assert_eq!(ids[0], id);
        assert_eq!(tx.free(), 1, "reclaimed ids are the caller's, not send's");
        let still = rxd.posted_ids();
        assert_eq!(still, [2, 3]);
        rx.post_bufs(&ids[..1]);
        assert_eq!(rxd.take().map(|d| d.0), Some(id));
    }

    #[test]
    fn reclaim_bufs_counts_what_the_device_gets_wrong_and_trusts_none_of_it() {
        let (_rxd, _rx, mut txd, mut tx) = shared(8, 128, 0);
        let out = [4, 5, 6, 7].map(|id| Buf { id, len: 60 });
        assert_eq!(tx.post_bufs(&out), 4);
        txd.put_used(5, 0, false);
        txd.put_used(5, 0, false); // again
        txd.put_used(2, 0, false); // a descriptor it never had
        txd.put_used(1000, 0, true); // not a descriptor
        let mut ids = [0u16; 8];
        assert_eq!(tx.reclaim_bufs(&mut ids[..2]), 1, "stops after two entries");
        assert_eq!(ids[0], 5);
        assert_eq!(tx.reclaim_bufs(&mut ids), 0);
        assert_eq!(tx.stats().bad_used, 3);
        assert!(
            !tx.broken(),
            "four entries for four buffers is a possible index"
        );
        // 4, 6 and 7 are still the device's: it may return them, and only them.
        assert_eq!(tx.post_bufs(&[Buf { id: 5, len: 60 }]), 1);
        txd.put_used(6, 0, true);
        assert_eq!(tx.reclaim_bufs(&mut ids), 1);
        assert_eq!(ids[0], 6);
        // A used index beyond what was posted breaks the queue: nothing more is posted.
        txd.put_used(7, 0, false);
        txd.put_used(4, 0, false);
        txd.put_used(5, 0, true);
        txd.put_used(5, 0, true);
        assert_eq!(tx.reclaim_bufs(&mut ids), 0);
        assert!(tx.broken());
        assert_eq!(tx.post_bufs(&[Buf { id: 6, len: 60 }]), 0);
    }

    /// A switch played by hand between the two rings of `shared`: takes up to `n` frames
    /// off the transmit ring, copies each into the next receive buffer. Returns how many.
    fn switch(txd: &mut Device, rxd: &mut Device, n: usize) -> usize {
        let mut moved = 0;
        while moved < n {
            let Some((head, addr, len, ..)) = txd.take() else {
                break;
            };
            let bytes = txd.read(addr, len as usize);
            txd.put_used(u32::from(head), 0, true);
            deliver(rxd, &bytes[VNET_HDR_LEN..]);
            moved += 1;
        }
        moved
    }

    #[test]
    fn frames_circulate_intact_and_none_is_lost() {
        const SIZE: u16 = 8;
        let (mut rxd, mut rx, mut txd, mut tx) = shared(SIZE, 128, SIZE / 2);
        let injected = tx.send(8, |i, b| {
            b[..60].fill(i as u8 + 1);
            60
        });
        assert_eq!(injected, 4);
        let (mut ids, mut bufs) = ([0u16; SIZE as usize], [Buf::default(); 3]);
        let mut moved = 0;
        // The switch is as quick as can be: between any two of our steps it moves all it
        // can, and `deliver` fails the test if it ever finds no receive buffer.
        let mut switch_all = |txd: &mut Device, rxd: &mut Device| {
            moved += switch(txd, rxd, usize::MAX);
        };
        for _ in 0..200 {
            let n = rx.take_bufs(&mut bufs);
            switch_all(&mut txd, &mut rxd);
            let m = tx.reclaim_bufs(&mut ids);
            switch_all(&mut txd, &mut rxd);
            rx.post_bufs(&ids[..m]);
            switch_all(&mut txd, &mut rxd);
            assert_eq!(tx.post_bufs(&bufs[..n]), n);
            switch_all(&mut txd, &mut rxd);
        }
        assert!(moved >= 200 * 3, "{moved}");
        // Stop forwarding; what is still going round comes back, each frame once.
        let mut seen = Vec::new();
        rx.recv(usize::MAX, |f| seen.push(f[0]));
        seen.sort();
        assert_eq!(seen, [1, 2, 3, 4]);
        assert_eq!(rx.stats().bad_used + tx.stats().bad_used, 0);
    }

    /// Frame `id` of a fixed queue: `60 + id` bytes of `id + 1`.
    fn fixed_frame(id: u16, b: &mut [u8]) -> usize {
        let len = 60 + usize::from(id);
        b[..len].fill(id as u8 + 1);
        len
    }

    /// Takes the next posted buffer off the ring and checks it holds `fixed_frame(id)`
    /// behind a clean header, and nothing else was written into its descriptor.
    fn take_fixed(dev: &mut Device, id: u16) {
        let (head, addr, len, flags, next) = dev.take().expect("a posted buffer");
        assert_eq!((head, flags, next), (id, 0, 0));
        assert_eq!(addr, dev.l.buf(id));
        let mut want = vec![0u8; VNET_HDR_LEN];
        want.resize(VNET_HDR_LEN + 60 + usize::from(id), id as u8 + 1);
        assert_eq!(len as usize, want.len());
        assert_eq!(dev.read(addr, want.len()), want, "buffer {id}");
    }

    #[test]
    fn fixed_frames_go_out_in_turn_as_they_were_written() {
        let (mut dev, tx, probe) = tx_queue(8, 128, false);
        let mut written = Vec::new();
        let mut tx = tx
            .into_fixed(6, |id, b| {
                written.push(id);
                fixed_frame(id, b)
            })
            .unwrap();
        assert_eq!(written, [0, 1, 2, 3, 4, 5], "each buffer written once");
        assert_eq!((tx.frames(), tx.size()), (6, 8));
        assert!(dev.take().is_none(), "nothing posted yet");
        assert_eq!(tx.send(4), 4);
        assert_eq!(kicks(&probe), 1, "one kick per burst");
        for id in 0..4 {
            take_fixed(&mut dev, id);
        }
        // 4 and 5, then it is 0's turn, which the device still holds.
        assert_eq!(tx.send(4), 2);
        take_fixed(&mut dev, 4);
        take_fixed(&mut dev, 5);
        assert_eq!(tx.send(4), 0);
        // Given back out of order: 0 goes first all the same, and 2 waits for 1.
        dev.put_used(2, 0, false);
        dev.put_used(0, 0, true);
        assert_eq!(tx.send(4), 1);
        take_fixed(&mut dev, 0);
        dev.put_used(1, 0, true);
        assert_eq!(tx.send(8), 2);
        take_fixed(&mut dev, 1);
        take_fixed(&mut dev, 2);
        assert!(dev.take().is_none());
        for id in [3, 4, 5, 0, 1, 2] {
            dev.put_used(id, 0, true);
        }
        // Another lap and a half from 3 on, each buffer as it was.
        let mut sent = 0u16;
        while sent < 9 {
            let n = tx.send(usize::from(9 - sent));
            assert!(n > 0);
            for _ in 0..n {
                let id = (3 + sent) % 6;
                take_fixed(&mut dev, id);
                dev.put_used(u32::from(id), 0, true);
                sent += 1;
            }
        }
        // Three laps in all.
        let s = tx.stats();
        assert_eq!((s.frames, s.bytes, s.bad_used), (18, 3 * (6 * 60 + 15), 0));
    }

    #[test]
    fn fixed_frames_land_in_the_right_avail_entries_lap_after_lap() {
        // All of the ring (buffer `id` always in entry `id`, left alone after the first
        // lap) and all but one (the entries change every lap).
        for n in [4, 3] {
            let (mut dev, tx, _) = tx_queue(4, 128, false);
            let mut tx = tx.into_fixed(n, fixed_frame).unwrap();
            for k in 0..50u16 {
                assert_eq!(tx.send(1), 1, "n={n} k={k}");
                take_fixed(&mut dev, k % n);
                dev.put_used(u32::from(k % n), 0, true);
            }
            // Bursts that wrap both the frames and the ring.
            for _ in 0..10 {
                let m = tx.send(3);
                assert_eq!(m, 3);
                for _ in 0..m {
                    let id = dev.take().unwrap().0;
                    dev.put_used(u32::from(id), 0, true);
                }
            }
            assert_eq!(tx.stats().frames, 80);
        }
    }

    #[test]
    fn into_fixed_refuses_what_it_cannot_do() {
        let fresh = || tx_queue(4, 128, false).1;
        assert!(fresh().into_fixed(0, fixed_frame).is_err(), "no frames");
        assert!(
            fresh().into_fixed(5, fixed_frame).is_err(),
            "beyond the ring"
        );
        let empty = fresh().into_fixed(4, |id, b| if id == 2 { 0 } else { fixed_frame(id, b) });
        assert!(empty.is_err(), "an empty frame");
        let long = fresh().into_fixed(4, |_, b| b.len() + 1);
        assert!(long.is_err(), "a frame longer than a buffer");
        assert_eq!(
            fresh().into_fixed(2, |_, b| b.len()).unwrap().frames(),
            2,
            "a frame filling its buffer"
        );
        // Buffers 0 and 1 sent: into_fixed takes back what the device gave back, and
        // needs all of them.
        for (back, ok) in [(&[0][..], false), (&[1, 0][..], true)] {
            let (mut dev, mut tx, _) = tx_queue(4, 128, false);
            assert_eq!(tx.send(2, |_, _| 60), 2);
            for &id in back {
                dev.put_used(id, 0, true);
            }
            assert_eq!(tx.into_fixed(4, fixed_frame).is_ok(), ok, "{back:?} back");
        }
        // Buffers handed out by reclaim_bufs are the caller's.
        let (_rxd, _rx, mut txd, mut tx) = shared(4, 128, 0);
        assert_eq!(tx.post_bufs(&[Buf { id: 3, len: 60 }]), 1);
        txd.take();
        txd.put_used(3, 0, true);
        let mut ids = [0u16; 4];
        assert_eq!(tx.reclaim_bufs(&mut ids), 1);
        assert!(
            tx.into_fixed(1, fixed_frame).is_err(),
            "buffer 0 is the receive ring's"
        );
    }

    #[test]
    fn fixed_frames_trust_nothing_the_device_says() {
        let (mut dev, tx, _) = tx_queue(4, 128, false);
        let mut tx = tx.into_fixed(4, fixed_frame).unwrap();
        assert_eq!(tx.send(4), 4);
        dev.put_used(0, 0, false);
        dev.put_used(0, 0, false); // again
        dev.put_used(9, 0, true); // not a descriptor
        assert_eq!(tx.send(4), 1, "only 0 is back");
        assert_eq!(tx.stats().bad_used, 2);
        // A used index beyond what was posted breaks the queue: nothing more is posted.
        for _ in 0..6 {
            dev.put_used(1, 0, false);
        }
        dev.publish();
        assert_eq!(tx.send(4), 0);
        assert!(tx.broken());
        assert_eq!(tx.send(4), 0);
    }
}
