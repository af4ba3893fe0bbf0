//! A virtio-net queue as the device sees it: frames out of the guest's transmit queue into
//! packet buffers, and packet buffers into the guest's receive queue.
//!
//! One batch costs one read of the avail index, one publication of the used index and at
//! most one notification; per frame it is a descriptor walk and a copy.

use packet::{Batch, Pool, MAX_FRAME};

use crate::counters::{DropReason, QueueCounters};
use crate::ring::{Desc, RingError, Segment, SplitRing};

/// virtio-net header with VERSION_1 or MRG_RXBUF (num_buffers included).
pub const VNET_HDR_LEN: usize = 12;
/// Legacy header without num_buffers.
pub const VNET_HDR_LEN_LEGACY: usize = 10;
const ETH_HLEN: usize = 14;

/// Raises the guest's interrupt for a queue.
pub type Notify = Box<dyn Fn() + Send>;

pub struct NetQueue {
    ring: SplitRing,
    hdr_len: usize,
    mergeable: bool,
    notify: Notify,
    broken: Option<RingError>,
}

enum Fit {
    Written,
    NoBuffers,
    TooBig,
}

impl NetQueue {
    pub fn new(ring: SplitRing, hdr_len: usize, mergeable: bool, notify: Notify) -> NetQueue {
        NetQueue {
            ring,
            hdr_len,
            mergeable,
            notify,
            broken: None,
        }
    }

    pub fn ring(&self) -> &SplitRing {
        &self.ring
    }

    pub fn ring_mut(&mut self) -> &mut SplitRing {
        &mut self.ring
    }

    pub fn replace_ring(&mut self, ring: SplitRing) {
        self.ring = ring;
    }

    pub fn broken(&self) -> Option<RingError> {
        self.broken
    }

    /// Takes the queue out of service until the frontend resets it (virtio NEEDS_RESET).
    pub fn fail(&mut self, e: RingError, c: &QueueCounters) {
        if self.broken.is_none() {
            self.broken = Some(e);
            c.error(e);
        }
    }

    fn finish(&mut self, c: &QueueCounters) {
        if self.ring.publish_used() {
            c.notifications.add(1);
            (self.notify)();
        }
    }

    /// Moves up to `out.room()` frames from the guest's transmit queue into `out`.
    pub fn dequeue(
        &mut self,
        pool: &mut Pool,
        out: &mut Batch,
        port: u16,
        queue: u16,
        c: &QueueCounters,
    ) -> usize {
        if self.broken.is_some() {
            return 0;
        }
        let pending = match self.ring.pending() {
            Ok(n) => n as usize,
            Err(e) => {
                self.fail(e, c);
                return 0;
            }
        };
        let want = pending.min(out.room());
        let (mut got, mut bytes) = (0usize, 0u64);
        for _ in 0..want {
            // An empty pool leaves the rest in the ring for the next poll; the worker
            // counts the shortage.
            let Some(mut pkt) = pool.alloc() else {
                break;
            };
            let res = self.ring.next_head().and_then(|head| {
                let d = self.ring.desc(head);
                let r = if d.flags == Desc::LONE_READABLE {
                    self.copy_out_lone(&d, pkt.room_mut())
                } else {
                    self.copy_out(head, pkt.room_mut())
                };
                self.ring.put_used(head, 0);
                r
            });
            match res {
                Ok(Ok(len)) => {
                    pkt.set_len(len);
                    pkt.in_port = port;
                    pkt.in_queue = queue;
                    bytes += len as u64;
                    got += 1;
                    // Cannot fail: `want` is at most the batch's room.
                    let _ = out.push(pkt);
                }
                Ok(Err(why)) => {
                    c.drop(why, 1);
                    pool.free(pkt);
                }
                Err(e) => {
                    pool.free(pkt);
                    self.fail(e, c);
                    break;
                }
            }
        }
        c.rx_packets.add(got as u64);
        c.rx_bytes.add(bytes);
        self.finish(c);
        got
    }

    /// The common case of `copy_out`: header and frame in one descriptor (what Linux and
    /// DPDK send whenever the header fits in the frame's headroom).
    #[inline(always)]
    fn copy_out_lone(
        &self,
        d: &Desc,
        room: &mut [u8],
    ) -> Result<Result<usize, DropReason>, RingError> {
        let src = self.ring.single(d)?;
        let total = d.len as usize;
        if total < self.hdr_len + ETH_HLEN {
            return Ok(Err(DropReason::Runt));
        }
        let len = total - self.hdr_len;
        if len > MAX_FRAME.min(room.len()) {
            return Ok(Err(DropReason::Oversize));
        }
        // SAFETY: `src` covers `total` bytes (translated and bounds-checked), and `room`
        // has at least `len` bytes; guest memory never overlaps our buffers.
        unsafe {
            if *src != 0 || *src.add(1) != 0 {
                return Ok(Err(DropReason::BadHeader));
            }
            copy_bytes(room.as_mut_ptr(), src.add(self.hdr_len), len);
        }
        Ok(Ok(len))
    }

    /// Copies the frame of chain `head` (minus its virtio-net header) into `room`.
    /// The outer error breaks the queue; the inner one drops just this frame.
    #[inline]
    fn copy_out(&self, head: u16, room: &mut [u8]) -> Result<Result<usize, DropReason>, RingError> {
        // A buffer's room is a little larger than MAX_FRAME (it is rounded up to cache
        // lines); a longer frame must be dropped all the same.
        let max = room.len().min(MAX_FRAME);
        let room = &mut room[..max];
        let mut chain = self.ring.chain(head);
        let mut hdr = [0u8; VNET_HDR_LEN];
        let (mut hdr_got, mut len, mut oversize) = (0usize, 0usize, false);
        while let Some(Segment {
            ptr,
            len: seg_len,
            writable,
        }) = chain.next_segment()?
        {
            if writable {
                return Err(RingError::Direction);
            }
            // SAFETY: the chain walker translated and bounds-checked this segment.
            let mut seg = unsafe { std::slice::from_raw_parts(ptr, seg_len as usize) };
            if hdr_got < self.hdr_len {
                let take = seg.len().min(self.hdr_len - hdr_got);
                hdr[hdr_got..hdr_got + take].copy_from_slice(&seg[..take]);
                hdr_got += take;
                seg = &seg[take..];
            }
            if len + seg.len() > room.len() {
                oversize = true;
            } else if !oversize {
                room[len..len + seg.len()].copy_from_slice(seg);
            }
            len += seg.len();
        }
        Ok(if oversize {
            Err(DropReason::Oversize)
        } else if hdr_got < self.hdr_len || len < ETH_HLEN {
            Err(DropReason::Runt)
        } else if hdr[0] != 0 || hdr[1] != 0 {
            // flags or gso_type set: offloads we never offered.
            Err(DropReason::BadHeader)
        } else {
            Ok(len)
        })
    }

    /// Delivers every frame of `pkts` into the guest's receive queue (or drops and counts
    /// it), returning the buffers to `pool`.
    pub fn enqueue(&mut self, pkts: &mut Batch, pool: &mut Pool, c: &QueueCounters) {
        if self.broken.is_some() {
            c.drop(DropReason::Broken, pkts.len() as u64);
            pkts.free_all(pool);
            return;
        }
        let mut avail = match self.ring.pending() {
            Ok(n) => n,
            Err(e) => {
                self.fail(e, c);
                c.drop(DropReason::Broken, pkts.len() as u64);
                pkts.free_all(pool);
                return;
            }
        };
        let (mut sent, mut bytes) = (0u64, 0u64);
        for pkt in pkts.drain() {
            if self.broken.is_some() {
                c.drop(DropReason::Broken, 1);
            } else {
                let cp = self.ring.checkpoint();
                let before = avail;
                match self.copy_in(pkt.data(), &mut avail) {
                    Ok(Fit::Written) => {
                        sent += 1;
                        bytes += pkt.len() as u64;
                    }
                    Ok(miss) => {
                        self.ring.rollback(cp);
                        avail = before;
                        c.drop(
                            match miss {
                                Fit::TooBig => DropReason::TooBigForGuest,
                                _ => DropReason::NoRxBuffers,
                            },
                            1,
                        );
                    }
                    Err(e) => {
                        // Frames already written stay valid: the rollback leaves them be.
                        self.ring.rollback(cp);
                        self.fail(e, c);
                        c.drop(DropReason::Broken, 1);
                    }
                }
            }
            pool.free(pkt);
        }
        c.tx_packets.add(sent);
        c.tx_bytes.add(bytes);
        self.finish(c);
    }

    /// Writes header and frame into the guest's next receive buffer, or as many as it
    /// takes with mergeable buffers.
    #[inline]
    fn copy_in(&mut self, data: &[u8], avail: &mut u16) -> Result<Fit, RingError> {
        if *avail == 0 {
            return Ok(Fit::NoBuffers);
        }
        // The common case: a lone writable buffer that holds it all (Linux posts 1.5 KiB
        // or larger mergeable buffers, DPDK whole mbufs).
        let head = self.ring.peek_head()?;
        let d = self.ring.desc(head);
        if d.flags != Desc::LONE_WRITABLE || (d.len as usize) < self.hdr_len + data.len() {
            return self.copy_in_chains(data, avail);
        }
        let dst = self.ring.single(&d)?;
        self.ring.skip_head();
        *avail -= 1;
        // SAFETY: `dst` covers `d.len >= hdr_len + data.len()` bytes of guest memory.
        unsafe {
            self.write_header(dst, 1);
            copy_bytes(dst.add(self.hdr_len), data.as_ptr(), data.len());
        }
        self.ring.put_used(head, (self.hdr_len + data.len()) as u32);
        Ok(Fit::Written)
    }

    /// Writes a virtio-net header with no offloads and `nbufs` buffers.
    ///
    /// # Safety
    /// `dst` must be valid for `hdr_len` bytes of writes.
    #[inline(always)]
    unsafe fn write_header(&self, dst: *mut u8, nbufs: u16) {
        // Whole-array stores: write_bytes would call memset for 12 bytes.
        if self.hdr_len == VNET_HDR_LEN {
            let mut h = [0u8; VNET_HDR_LEN];
            h[10..12].copy_from_slice(&nbufs.to_le_bytes());
            dst.cast::<[u8; VNET_HDR_LEN]>().write_unaligned(h);
        } else {
            dst.cast::<[u8; VNET_HDR_LEN_LEGACY]>()
                .write_unaligned([0; VNET_HDR_LEN_LEGACY]);
        }
    }

    /// `copy_in` for anything but one buffer that holds the frame.
    fn copy_in_chains(&mut self, data: &[u8], avail: &mut u16) -> Result<Fit, RingError> {
        let mut hdr_at: *mut u8 = std::ptr::null_mut();
        let mut done = 0usize; // bytes of `data` written
        let mut nbufs: u16 = 0;
        while hdr_at.is_null() || done < data.len() {
            if nbufs > 0 && !self.mergeable {
                return Ok(Fit::TooBig);
            }
            if *avail == 0 {
                return Ok(Fit::NoBuffers);
            }
            let head = self.ring.next_head()?;
            *avail -= 1;
            nbufs += 1;
            let mut chain = self.ring.chain(head);
            let mut used = 0usize;
            while let Some(Segment { ptr, len, writable }) = chain.next_segment()? {
                if !writable {
                    return Err(RingError::Direction);
                }
                let mut dst = ptr;
                let mut room = len as usize;
                if hdr_at.is_null() {
                    if room < self.hdr_len {
                        return Err(RingError::HeaderLayout);
                    }
                    hdr_at = dst;
                    // SAFETY: `room >= hdr_len` bytes at `dst`, checked by the chain walker.
                    // num_buffers is filled in once the frame is placed.
                    unsafe {
                        self.write_header(dst, 0);
                        dst = dst.add(self.hdr_len);
                    }
                    room -= self.hdr_len;
                    used += self.hdr_len;
                }
                let n = room.min(data.len() - done);
                // SAFETY: `n <= room`, inside the checked segment; `data` is our own buffer,
                // which cannot overlap guest memory.
                unsafe { copy_bytes(dst, data.as_ptr().add(done), n) };
                done += n;
                used += n;
                if done == data.len() {
                    break;
                }
            }
            self.ring.put_used(head, used as u32);
        }
        if self.hdr_len == VNET_HDR_LEN {
            // SAFETY: the first segment held at least `hdr_len` (12) bytes from `hdr_at`.
            unsafe {
                hdr_at
                    .add(10)
                    .cast::<[u8; 2]>()
                    .write_unaligned(nbufs.to_le_bytes())
            };
        }
        Ok(Fit::Written)
    }
}

/// Copies `len` bytes between our buffers and guest memory, which never overlap.
///
/// Frames are mostly small: up to 256 bytes this is a few inline vector moves (the last
/// one overlapping the previous) instead of a call into the C library's memcpy.
///
/// # Safety
/// `src` must be valid for `len` bytes of reads, `dst` for `len` bytes of writes, and the
/// two ranges must not overlap.
#[inline(always)]
unsafe fn copy_bytes(dst: *mut u8, src: *const u8, len: usize) {
    type Chunk = [u8; 32];
    const C: usize = std::mem::size_of::<Chunk>();
    if !(C..=256).contains(&len) {
        std::ptr::copy_nonoverlapping(src, dst, len);
        return;
    }
    let mut off = 0;
    while off + C < len {
        dst.add(off)
            .cast::<Chunk>()
            .write_unaligned(src.add(off).cast::<Chunk>().read_unaligned());
        off += C;
    }
    let last = len - C;
    dst.add(last)
        .cast::<Chunk>()
        .write_unaligned(src.add(last).cast::<Chunk>().read_unaligned());
}
