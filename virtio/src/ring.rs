//! The device side of a split virtqueue, read and written through host pointers.
//!
//! The frontend owns this memory and may change any byte of it at any time, so every
//! index and descriptor read here is checked before use, and a violation is reported as a
//! [`RingError`] for the caller to count and to take the queue out of service. The ring's
//! own location is checked once, when it is set up; descriptor buffers are checked as they
//! are walked.

use std::sync::atomic::{fence, AtomicU16, Ordering};
use std::sync::Arc;

use crate::mem::MemTable;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;
const USED_F_NO_NOTIFY: u16 = 1;
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Longest descriptor chain accepted. Linux needs at most MAX_SKB_FRAGS + 2 (19) for a
/// frame; anything far beyond that is a loop or an attack.
pub const MAX_CHAIN: usize = 256;

/// Ways a frontend can break a queue. Each is counted separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Ring size not a power of two, or ring memory outside the memory table or misaligned.
    RingLayout,
    /// The avail index moved more than a ring's worth past the last one seen.
    AvailIndex,
    /// A head or next index beyond the ring (or indirect table).
    DescIndex,
    /// A buffer address outside the memory table.
    Address,
    /// A descriptor of length zero.
    ZeroLength,
    /// More descriptors in one chain than allowed: a loop or an over-long chain.
    ChainTooLong,
    /// A malformed indirect descriptor (nested, chained, empty, misaligned, too big).
    Indirect,
    /// A device-writable buffer where a readable one belongs, or the reverse.
    Direction,
    /// A receive buffer too small to hold the virtio-net header.
    HeaderLayout,
}

impl RingError {
    pub const ALL: [RingError; 9] = [
        RingError::RingLayout,
        RingError::AvailIndex,
        RingError::DescIndex,
        RingError::Address,
        RingError::ZeroLength,
        RingError::ChainTooLong,
        RingError::Indirect,
        RingError::Direction,
        RingError::HeaderLayout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RingError::RingLayout => "ring_layout",
            RingError::AvailIndex => "avail_index",
            RingError::DescIndex => "desc_index",
            RingError::Address => "address",
            RingError::ZeroLength => "zero_length",
            RingError::ChainTooLong => "chain_too_long",
            RingError::Indirect => "indirect",
            RingError::Direction => "direction",
            RingError::HeaderLayout => "header_layout",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

impl Desc {
    /// A lone device-readable buffer: no NEXT, WRITE or INDIRECT flag.
    pub const LONE_READABLE: u16 = 0;
    /// A lone device-writable buffer.
    pub const LONE_WRITABLE: u16 = DESC_F_WRITE;
}

/// Where a queue lives and where processing resumes, as negotiated by the frontend.
#[derive(Clone, Copy, Debug)]
pub struct RingConfig {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub size: u16,
    pub next_avail: u16,
    pub next_used: u16,
    pub event_idx: bool,
}

/// One buffer of a descriptor chain, already translated and bounds-checked.
#[derive(Clone, Copy)]
pub struct Segment {
    pub ptr: *mut u8,
    pub len: u32,
    pub writable: bool,
}

pub struct SplitRing {
    desc: *const Desc,
    /// flags, idx, ring[size], used_event
    avail: *mut u16,
    /// flags, idx, ring[size] of (id: u32, len: u32), avail_event
    used: *mut u16,
    size: u16,
    mask: u16,
    event_idx: bool,
    /// Next avail entry to consume.
    last_avail: u16,
    /// Next used entry to fill; entries up to here may not be published yet.
    next_used: u16,
    published_used: u16,
    mem: Arc<MemTable>,
}

// SAFETY: the pointers refer to guest memory kept mapped by `mem`; a ring is used by one
// thread at a time (its queue slot's lock sees to that).
unsafe impl Send for SplitRing {}

impl SplitRing {
    pub fn new(mem: Arc<MemTable>, cfg: &RingConfig) -> Result<SplitRing, RingError> {
        let size = cfg.size;
        if size == 0 || !size.is_power_of_two() || size > 32768 {
            return Err(RingError::RingLayout);
        }
        let n = size as u64;
        let desc = Self::map(&mem, cfg.desc, 16 * n, 16)?;
        let avail = Self::map(&mem, cfg.avail, 6 + 2 * n, 2)?;
        let used = Self::map(&mem, cfg.used, 6 + 8 * n, 4)?;
        Ok(SplitRing {
            desc: desc.cast(),
            avail: avail.cast(),
            used: used.cast(),
            size,
            mask: size - 1,
            event_idx: cfg.event_idx,
            last_avail: cfg.next_avail,
            next_used: cfg.next_used,
            published_used: cfg.next_used,
            mem,
        })
    }

    fn map(mem: &MemTable, gpa: u64, len: u64, align: usize) -> Result<*mut u8, RingError> {
        let p = mem.translate(gpa, len).ok_or(RingError::RingLayout)?;
        if !(p as usize).is_multiple_of(align) {
            return Err(RingError::RingLayout);
        }
        Ok(p)
    }

    /// Same ring in a new memory table (after the frontend changed its memory layout).
    pub fn remap(
        &self,
        mem: Arc<MemTable>,
        desc: u64,
        avail: u64,
        used: u64,
    ) -> Result<Self, RingError> {
        let cfg = RingConfig {
            desc,
            avail,
            used,
            size: self.size,
            next_avail: self.last_avail,
            next_used: self.next_used,
            event_idx: self.event_idx,
        };
        let mut r = SplitRing::new(mem, &cfg)?;
        r.published_used = self.published_used;
        Ok(r)
    }

    pub fn last_avail(&self) -> u16 {
        self.last_avail
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    #[inline]
    fn avail_field(&self, i: usize) -> &AtomicU16 {
        // SAFETY: `i <= size + 1` at every call site, inside the avail ring checked in `new`;
        // the pointer is 2-aligned, and the frontend writes these fields concurrently,
        // hence the atomic view.
        unsafe { AtomicU16::from_ptr(self.avail.add(i)) }
    }

    #[inline]
    fn used_field(&self, i: usize) -> &AtomicU16 {
        // SAFETY: `i <= 2 + 4 * size`, inside the used ring checked in `new`; 2-aligned.
        unsafe { AtomicU16::from_ptr(self.used.add(i)) }
    }

    /// Number of chains the frontend has made available and we have not consumed.
    #[inline]
    pub fn pending(&self) -> Result<u16, RingError> {
        let idx = self.avail_field(1).load(Ordering::Acquire);
        let n = idx.wrapping_sub(self.last_avail);
        if n > self.size {
            return Err(RingError::AvailIndex);
        }
        Ok(n)
    }

    /// Takes the next available chain's head index.
    #[inline]
    pub fn next_head(&mut self) -> Result<u16, RingError> {
        let head = self.peek_head()?;
        self.skip_head();
        Ok(head)
    }

    /// The next available chain's head index, checked but not taken.
    #[inline]
    pub fn peek_head(&self) -> Result<u16, RingError> {
        let slot = 2 + (self.last_avail & self.mask) as usize;
        let head = self.avail_field(slot).load(Ordering::Relaxed);
        if head >= self.size {
            return Err(RingError::DescIndex);
        }
        Ok(head)
    }

    /// Takes the chain `peek_head` returned.
    #[inline]
    pub fn skip_head(&mut self) {
        self.last_avail = self.last_avail.wrapping_add(1);
    }

    /// Reads descriptor `head` (which `next_head` has checked) as the frontend left it.
    #[inline]
    pub fn desc(&self, head: u16) -> Desc {
        debug_assert!(head < self.size);
        // SAFETY: `head < size`, inside the descriptor table checked in `new`; volatile
        // because the frontend may be writing it.
        unsafe { self.desc.add(head as usize).read_volatile() }
    }

    /// The buffer of a lone descriptor (`desc.flags` already inspected by the caller).
    #[inline]
    pub fn single(&self, d: &Desc) -> Result<*mut u8, RingError> {
        if d.len == 0 {
            return Err(RingError::ZeroLength);
        }
        self.mem
            .translate(d.addr, d.len as u64)
            .ok_or(RingError::Address)
    }

    /// Walks the chain starting at `head` (which `next_head` has checked).
    #[inline]
    pub fn chain(&self, head: u16) -> Chain<'_> {
        Chain {
            mem: &self.mem,
            table: self.desc,
            table_len: self.size,
            next: Some(head),
            count: 0,
            limit: (self.size as usize).min(MAX_CHAIN),
            indirect: false,
        }
    }

    /// Records a used chain; the frontend sees it after `publish_used`.
    #[inline]
    pub fn put_used(&mut self, id: u16, len: u32) {
        let slot = (self.next_used & self.mask) as usize;
        // SAFETY: the element lies inside the used ring checked in `new` (4-aligned, and
        // 4 + 8 * slot + 8 <= 6 + 8 * size).
        unsafe {
            let elem = self.used.cast::<u8>().add(4 + 8 * slot).cast::<u32>();
            elem.write_volatile(id as u32);
            elem.add(1).write_volatile(len);
        }
        self.next_used = self.next_used.wrapping_add(1);
    }

    /// Forgets chains taken and used entries written since a checkpoint: lets a frame that
    /// did not fit give its buffers back before anything was published.
    pub fn checkpoint(&self) -> (u16, u16) {
        (self.last_avail, self.next_used)
    }

    pub fn rollback(&mut self, cp: (u16, u16)) {
        (self.last_avail, self.next_used) = cp;
    }

    /// Publishes every used entry written so far with one index update, and says whether
    /// the frontend asked to be interrupted for them.
    #[inline]
    pub fn publish_used(&mut self) -> bool {
        let new = self.next_used;
        let old = self.published_used;
        if new == old {
            return false;
        }
        self.used_field(1).store(new, Ordering::Release);
        self.published_used = new;
        // The frontend writes its wish (used_event or the flag) and then reads our index;
        // we wrote the index and now read its wish. Without a full fence both can miss.
        fence(Ordering::SeqCst);
        if self.event_idx {
            let used_event = self
                .avail_field(2 + self.size as usize)
                .load(Ordering::Relaxed);
            new.wrapping_sub(used_event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            self.avail_field(0).load(Ordering::Relaxed) & AVAIL_F_NO_INTERRUPT == 0
        }
    }

    /// Asks the frontend to kick (or not) when it makes more buffers available.
    ///
    /// After enabling, the caller must check `pending` again before sleeping: buffers made
    /// available before the frontend saw the request raise no kick.
    pub fn set_kicks(&mut self, enabled: bool) {
        if self.event_idx {
            // Kick when the avail index passes last_avail; a value just behind it is only
            // passed again after the index wraps, which is as good as never.
            let at = if enabled {
                self.last_avail
            } else {
                self.last_avail.wrapping_sub(1)
            };
            self.used_field(2 + 4 * self.size as usize)
                .store(at, Ordering::Relaxed);
        } else {
            let flags = if enabled { 0 } else { USED_F_NO_NOTIFY };
            self.used_field(0).store(flags, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
    }
}

/// An iterator over the buffers of one descriptor chain, checking each as it goes.
pub struct Chain<'a> {
    mem: &'a MemTable,
    table: *const Desc,
    table_len: u16,
    next: Option<u16>,
    count: usize,
    limit: usize,
    indirect: bool,
}

impl Chain<'_> {
    #[inline]
    fn read(&self, i: u16) -> Desc {
        // SAFETY: `i < table_len`, checked by the caller; the table was translated with
        // 16 * table_len bytes and is 8-aligned. Volatile: the frontend may be writing it.
        unsafe { self.table.add(i as usize).read_volatile() }
    }

    #[inline]
    pub fn next_segment(&mut self) -> Result<Option<Segment>, RingError> {
        let Some(i) = self.next else {
            return Ok(None);
        };
        self.count += 1;
        if self.count > self.limit {
            return Err(RingError::ChainTooLong);
        }
        let mut d = self.read(i);
        if d.flags & DESC_F_INDIRECT != 0 {
            // Only a lone head descriptor may point to an indirect table, and tables do
            // not nest.
            if self.indirect || self.count != 1 || d.flags & DESC_F_NEXT != 0 {
                return Err(RingError::Indirect);
            }
            let n = d.len as usize / 16;
            if !(d.len as usize).is_multiple_of(16) || n == 0 || n > MAX_CHAIN {
                return Err(RingError::Indirect);
            }
            let table = self
                .mem
                .translate(d.addr, d.len as u64)
                .ok_or(RingError::Address)?;
            if !(table as usize).is_multiple_of(8) {
                return Err(RingError::Indirect);
            }
            self.table = table.cast();
            self.table_len = n as u16;
            self.limit = n;
            self.count = 1;
            self.indirect = true;
            d = self.read(0);
            if d.flags & DESC_F_INDIRECT != 0 {
                return Err(RingError::Indirect);
            }
        }
        if d.len == 0 {
            return Err(RingError::ZeroLength);
        }
        let ptr = self
            .mem
            .translate(d.addr, d.len as u64)
            .ok_or(RingError::Address)?;
        self.next = if d.flags & DESC_F_NEXT != 0 {
            if d.next >= self.table_len {
                return Err(RingError::DescIndex);
            }
            Some(d.next)
        } else {
            None
        };
        Ok(Some(Segment {
            ptr,
            len: d.len,
            writable: d.flags & DESC_F_WRITE != 0,
        }))
    }
}
