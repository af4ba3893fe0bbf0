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
        let n = u64::from(size);
        // Each part on its own cache lines: the device writes the used ring while we write
        // the avail ring, and false sharing between them costs on every burst.
        let desc = mem.alloc(DESC_SIZE * n, 64)?;
        let avail = mem.alloc(6 + 2 * n, 64)?;
        let used = mem.alloc(6 + 8 * n, 64)?;
        let bufs = mem.alloc(n * u64::from(buf_size), 64)?;
        Ok(QueueLayout {
            size,
            desc,
            avail,
            used,
            bufs,
            buf_size,
        })
    }

    /// Bytes that [`alloc`](Self::alloc) takes, alignment padding included.
    pub fn bytes(size: u16, buf_size: u32) -> u64 {
        let n = u64::from(size);
        let pad = |b: u64| b.div_ceil(64) * 64;
        pad(DESC_SIZE * n) + pad(6 + 2 * n) + pad(6 + 8 * n) + pad(n * u64::from(buf_size))
    }

    fn buf(&self, id: u16) -> u64 {
        self.bufs + u64::from(id) * u64::from(self.buf_size)
    }
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

/// Our transmit queue: the device's receive side, virtqueue `2p + 1` of pair `p`.
pub struct TxQueue {
    ring: Ring,
    /// Descriptors (each with its buffer) not held by the device: a stack.
    free: Box<[u16]>,
    nfree: usize,
}

impl TxQueue {
    /// Sets up the ring with every descriptor pointing at its own buffer, all free.
    pub(crate) fn new(
        mem: Arc<SharedMemory>,
        layout: QueueLayout,
        kick: EventFd,
        event_idx: bool,
    ) -> io::Result<TxQueue> {
        let mut ring = Ring::new(mem, layout, kick, event_idx)?;
        for id in 0..layout.size {
            ring.write_desc(id, layout.buf(id), 0, 0, 0);
            // SAFETY: the buffer of `id` lies inside the mapping (checked in Ring::new);
            // the header stays zero unless `post_bad` writes garbage into it.
            unsafe { std::ptr::write_bytes(ring.buf_ptr(id), 0, VNET_HDR_LEN) };
        }
        // Pop order 0, 1, 2...: the device then walks the table and buffers in order.
        let free: Box<[u16]> = (0..layout.size).rev().collect();
        Ok(TxQueue {
            nfree: free.len(),
            free,
            ring,
        })
    }

    /// Room for a frame in each buffer, after the virtio-net header.
    pub fn max_frame(&self) -> usize {
        self.ring.layout.buf_size as usize - VNET_HDR_LEN
    }

    pub fn size(&self) -> u16 {
        self.ring.size()
    }

    /// Descriptors free for `send`, as of the last reclaim.
    pub fn free(&self) -> usize {
        self.nfree
    }

    pub fn stats(&self) -> QueueStats {
        self.ring.stats
    }

    /// Whether the device published an impossible used index: the queue then posts
    /// nothing more, and only a new connection helps.
    pub fn broken(&self) -> bool {
        self.ring.broken
    }

    /// Takes back the buffers the device is done with; returns how many.
    pub fn reclaim(&mut self) -> usize {
        let n = self.ring.used_pending();
        let mut got = 0;
        for k in 0..n {
            let (id, _len) = self.ring.used_elem(self.ring.last_used.wrapping_add(k));
            match self.ring.take_back(id) {
                Some(id) => {
                    self.free[self.nfree] = id;
                    self.nfree += 1;
                    got += 1;
                }
                None => self.ring.stats.bad_used += 1,
            }
        }
        self.ring.last_used = self.ring.last_used.wrapping_add(n);
        got
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

impl RxQueue {
    /// Sets up the ring with every descriptor a device-writable buffer, all posted.
    pub(crate) fn new(
        mem: Arc<SharedMemory>,
        layout: QueueLayout,
        kick: EventFd,
        event_idx: bool,
        mergeable: bool,
    ) -> io::Result<RxQueue> {
        let mut ring = Ring::new(mem, layout, kick, event_idx)?;
        for id in 0..layout.size {
            ring.write_desc(id, layout.buf(id), layout.buf_size, DESC_F_WRITE, 0);
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

    pub fn size(&self) -> u16 {
        self.ring.size()
    }

    pub fn stats(&self) -> QueueStats {
        self.ring.stats
    }

    /// See [`TxQueue::broken`].
    pub fn broken(&self) -> bool {
        self.ring.broken
    }

    /// Takes up to `max` frames from the device and calls `sink(frame)` for each, the
    /// virtio-net header stripped; returns how many. A frame in one buffer is passed in
    /// place (no copy); a frame the device merged over several buffers is gathered first.
    /// The buffers go back to the device, published with one index store.
    #[inline]
    pub fn recv(&mut self, max: usize, mut sink: impl FnMut(&[u8])) -> usize {
        let mut pending = self.ring.used_pending();
        let mut got = 0usize;
        let mut bytes = 0u64;
        let hdr = VNET_HDR_LEN as u32;
        let buf_size = self.ring.layout.buf_size;
        while got < max && pending > 0 {
            let pos = self.ring.last_used;
            let (id, len) = self.ring.used_elem(pos);
            let Some(id) = self.ring.take_back(id) else {
                // Not ours to repost: skip the entry, the descriptor stays where it is.
                self.ring.stats.bad_used += 1;
                self.ring.last_used = pos.wrapping_add(1);
                pending -= 1;
                continue;
            };
            let buf = self.ring.buf_ptr(id);
            let nbufs = if self.mergeable && len >= hdr && len <= buf_size {
                // SAFETY: bytes 10..12 of buffer `id`, which the device returned to us.
                u16::from_le_bytes(unsafe { buf.add(10).cast::<[u8; 2]>().read() })
            } else {
                1
            };
            if len < hdr || len > buf_size || nbufs == 0 || nbufs > self.size() {
                self.ring.stats.bad_used += 1;
                self.ring.stats.dropped += 1;
                self.repost(id);
                self.ring.last_used = pos.wrapping_add(1);
                pending -= 1;
                continue;
            }
            if nbufs > pending {
                // The rest of the frame is not published yet: look once more, else leave
                // the whole frame for the next call.
                self.ring.inflight[id as usize] = true;
                pending = self.ring.used_pending();
                if nbufs > pending {
                    break;
                }
                self.ring.inflight[id as usize] = false;
            }
            if nbufs == 1 {
                let n = (len - hdr) as usize;
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
            self.ring.last_used = pos.wrapping_add(nbufs);
            pending -= nbufs;
            got += 1;
        }
        self.ring.stats.frames += got as u64;
        self.ring.stats.bytes += bytes;
        self.ring.publish();
        got
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
        fn take(&mut self) -> Option<(u16, u64, u32, u16, u16)> {
            if self.avail_idx() == self.last_avail {
                return None;
            }
            let slot = (self.last_avail & (self.l.size - 1)) as u64;
            self.last_avail = self.last_avail.wrapping_add(1);
            // SAFETY: ring entries and descriptors of the test queue.
            unsafe {
                let head = self.at(self.l.avail + 4 + 2 * slot).cast::<u16>().read();
                let d = self.at(self.l.desc + 16 * u64::from(head));
                Some((
                    head,
                    d.cast::<u64>().read(),
                    d.add(8).cast::<u32>().read(),
                    d.add(12).cast::<u16>().read(),
                    d.add(14).cast::<u16>().read(),
                ))
            }
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
        fn write(&self, gpa: u64, bytes: &[u8]) {
            // SAFETY: a buffer of the test queue.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at(gpa), bytes.len()) };
        }
        fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
            // SAFETY: a buffer of the test queue.
            unsafe { std::slice::from_raw_parts(self.at(gpa), len).to_vec() }
        }
    }

    fn setup(size: u16, buf: u32) -> (Arc<SharedMemory>, QueueLayout, EventFd) {
        let mut mem = SharedMemory::new(QueueLayout::bytes(size, buf) + 4096).unwrap();
        let l = QueueLayout::alloc(&mut mem, size, buf).unwrap();
        let kick = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        (Arc::new(mem), l, kick)
    }

    fn kicks(fd: &EventFd) -> u64 {
        fd.read().unwrap_or(0)
    }

    #[test]
    fn send_posts_frames_and_reclaims_them() {
        let (mem, l, kick) = setup(4, 128);
        let probe = kick.try_clone().unwrap();
        let mut tx = TxQueue::new(mem.clone(), l, kick, false).unwrap();
        let mut dev = Device::new(mem, l);
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
            assert_eq!(addr, l.buf(head));
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
        let (mem, l, kick) = setup(4, 128);
        let mut tx = TxQueue::new(mem.clone(), l, kick, false).unwrap();
        let mut dev = Device::new(mem, l);
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

        let (mem, l, kick) = setup(4, 128);
        let mut tx = TxQueue::new(mem.clone(), l, kick, false).unwrap();
        let mut dev = Device::new(mem, l);
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
        let (mem, l, kick) = setup(8, 128);
        let probe = kick.try_clone().unwrap();
        let mut tx = TxQueue::new(mem.clone(), l, kick, true).unwrap();
        // avail_event = 2: kick when the index moves past 2.
        // SAFETY: avail_event of the test queue.
        unsafe { mem.host_addr(l.used + 4 + 8 * 8).cast::<u16>().write(2) };
        assert_eq!(tx.send(2, |_, _| 60), 2);
        assert_eq!(kicks(&probe), 0, "0 -> 2 does not pass 2");
        assert_eq!(tx.send(1, |_, _| 60), 1);
        assert_eq!(kicks(&probe), 1, "2 -> 3 passes it");
    }

    #[test]
    fn recv_passes_frames_and_reposts_buffers() {
        let (mem, l, kick) = setup(4, 128);
        let mut rx = RxQueue::new(mem.clone(), l, kick, false, true).unwrap();
        let mut dev = Device::new(mem, l);
        let mut bufs = Vec::new();
        while let Some((head, addr, len, flags, _)) = dev.take() {
            assert_eq!((len, flags), (128, DESC_F_WRITE));
            bufs.push((head, addr));
        }
        assert_eq!(bufs.len(), 4, "all buffers posted at start");
        for (k, &(head, addr)) in bufs.iter().take(2).enumerate() {
            let mut b = vec![0u8; VNET_HDR_LEN];
            b[10] = 1;
            b.extend_from_slice(&[k as u8 + 1; 70]);
            dev.write(addr, &b);
            dev.put_used(head as u32, b.len() as u32, false);
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
        let (mem, l, kick) = setup(4, 64);
        let mut rx = RxQueue::new(mem.clone(), l, kick, false, true).unwrap();
        let mut dev = Device::new(mem, l);
        let bufs: Vec<(u16, u64)> = std::iter::from_fn(|| dev.take().map(|d| (d.0, d.1))).collect();
        let frame: Vec<u8> = (0..130u8).collect();
        // 12 + 130 bytes over 64-byte buffers: 52 + 64 + 14.
        let mut first = vec![0u8; VNET_HDR_LEN];
        first[10] = 3;
        first.extend_from_slice(&frame[..52]);
        dev.write(bufs[0].1, &first);
        dev.write(bufs[1].1, &frame[52..116]);
        dev.write(bufs[2].1, &frame[116..]);
        dev.put_used(bufs[0].0 as u32, 64, false);
        dev.put_used(bufs[1].0 as u32, 64, true);
        let mut got = Vec::new();
        assert_eq!(rx.recv(8, |f| got.push(f.to_vec())), 0, "frame incomplete");
        dev.put_used(bufs[2].0 as u32, 14, true);
        assert_eq!(rx.recv(8, |f| got.push(f.to_vec())), 1);
        assert_eq!(got, vec![frame]);
        let back: Vec<u16> = std::iter::from_fn(|| dev.take().map(|d| d.0)).collect();
        assert_eq!(back, vec![bufs[0].0, bufs[1].0, bufs[2].0]);
    }

    #[test]
    fn recv_drops_bad_entries_without_losing_buffers() {
        let (mem, l, kick) = setup(4, 64);
        let mut rx = RxQueue::new(mem.clone(), l, kick, false, true).unwrap();
        let mut dev = Device::new(mem, l);
        let bufs: Vec<(u16, u64)> = std::iter::from_fn(|| dev.take().map(|d| (d.0, d.1))).collect();
        dev.put_used(bufs[0].0 as u32, 65, false); // longer than the buffer
        dev.put_used(77, 20, false); // not a descriptor
        dev.put_used(bufs[1].0 as u32, 5, false); // shorter than a header
        dev.publish();
        let mut n = 0;
        rx.recv(8, |_| n += 1);
        assert_eq!(n, 0);
        assert_eq!(rx.stats().bad_used, 3);
        let back: Vec<u16> = std::iter::from_fn(|| dev.take().map(|d| d.0)).collect();
        assert_eq!(back, vec![bufs[0].0, bufs[1].0]);
    }

    #[test]
    fn post_bad_writes_what_it_says() {
        let (mem, l, kick) = setup(512, 128);
        let mut tx = TxQueue::new(mem.clone(), l, kick, false).unwrap();
        let mut dev = Device::new(mem.clone(), l);
        tx.post_bad(BadDescriptor::DescriptorLoop).unwrap();
        let (h, _, _, flags, next) = dev.take().unwrap();
        assert_eq!((flags, next), (DESC_F_NEXT, h));
        tx.post_bad(BadDescriptor::ZeroLength).unwrap();
        assert_eq!(dev.take().unwrap().2, 0);
        tx.post_bad(BadDescriptor::Unmapped).unwrap();
        assert_eq!(dev.take().unwrap().1, mem.hole_gpa());
        tx.post_bad(BadDescriptor::HeadBeyondRing).unwrap();
        assert_eq!(dev.take().unwrap().0, 512);
        tx.post_bad(BadDescriptor::ChainTooLong).unwrap();
        let (mut i, ..) = dev.take().unwrap();
        let mut n = 1;
        loop {
            // SAFETY: descriptor table of the test queue.
            let (flags, next) = unsafe {
                let d = mem.host_addr(l.desc + 16 * u64::from(i));
                (
                    d.add(12).cast::<u16>().read(),
                    d.add(14).cast::<u16>().read(),
                )
            };
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

        let (mem, l, kick) = setup(256, 128);
        let mut tx = TxQueue::new(mem, l, kick, false).unwrap();
        assert!(
            tx.post_bad(BadDescriptor::ChainTooLong).is_err(),
            "ring too small"
        );
    }
}
