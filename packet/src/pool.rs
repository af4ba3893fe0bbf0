use std::ptr::NonNull;

/// Room kept in front of a received frame so that encapsulations (VLAN tags, L2TPv3 over
/// ESP over IPv6, ...) can be prepended without moving the frame.
pub const HEADROOM: usize = 256;
/// Largest frame a buffer holds: an Ethernet header, two VLAN tags and a payload of
/// 9216 bytes (the largest MTU a port may have).
pub const MAX_FRAME: usize = 14 + 8 + 9216;
/// Size of one buffer; a multiple of the cache line so buffers never share a line.
pub const BUF_SIZE: usize = (HEADROOM + MAX_FRAME + 63) & !63;

/// A frame in a pool buffer: the bytes at `off..off + len` of the buffer.
///
/// A `Packet` is a plain handle; it must go back to the pool it came from through
/// [`Pool::free`]. Dropping it instead leaks the buffer but is otherwise harmless.
#[derive(Debug)]
pub struct Packet {
    buf: NonNull<u8>,
    off: u16,
    len: u16,
    /// Index of the port the frame arrived on, set by the receiving port.
    pub in_port: u16,
    /// Queue pair the frame arrived on.
    pub in_queue: u16,
}

impl Packet {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn data(&self) -> &[u8] {
        // SAFETY: `buf` points to a live BUF_SIZE-byte buffer owned by this handle and
        // `off + len <= BUF_SIZE` is kept by every method that changes them.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().add(self.off as usize), self.len()) }
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; the handle is the buffer's only owner.
        unsafe {
            std::slice::from_raw_parts_mut(self.buf.as_ptr().add(self.off as usize), self.len())
        }
    }

    /// The whole room after the frame's start, for a receiver to fill before `set_len`.
    pub fn room_mut(&mut self) -> &mut [u8] {
        let room = BUF_SIZE - self.off as usize;
        // SAFETY: `off <= BUF_SIZE`, so the range lies inside the owned buffer.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_ptr().add(self.off as usize), room) }
    }

    /// Capacity available to the frame without touching the headroom.
    pub fn room(&self) -> usize {
        BUF_SIZE - self.off as usize
    }

    /// Sets the frame length after filling `room_mut`. Returns false if it does not fit.
    pub fn set_len(&mut self, len: usize) -> bool {
        if len > self.room() {
            return false;
        }
        self.len = len as u16;
        true
    }

    /// Grows the frame at the front by `n` bytes taken from the headroom.
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let off = (self.off as usize).checked_sub(n)?;
        self.off = off as u16;
        self.len += n as u16;
        Some(&mut self.data_mut()[..n])
    }

    /// Removes `n` bytes from the front of the frame, returning them to the headroom.
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.off += n as u16;
        self.len -= n as u16;
        true
    }
}

/// A per-worker pool of packet buffers: one mapping, a LIFO free list.
///
/// LIFO reuse keeps the buffers a worker touches few and warm in cache and TLB.
pub struct Pool {
    base: NonNull<u8>,
    size: usize,
    free: Vec<NonNull<u8>>,
}

impl Pool {
    /// Maps `count` buffers. The mapping asks for transparent huge pages to spare the TLB.
    pub fn new(count: usize) -> std::io::Result<Pool> {
        let size = count * BUF_SIZE;
        // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: advice on the mapping just made; failure only means no huge pages.
        unsafe { libc::madvise(ptr, size, libc::MADV_HUGEPAGE) };
        let base = NonNull::new(ptr.cast::<u8>()).expect("mmap returned null");
        let free = (0..count)
            .rev()
            // SAFETY: `i * BUF_SIZE < size`, inside the mapping.
            .map(|i| unsafe { NonNull::new_unchecked(base.as_ptr().add(i * BUF_SIZE)) })
            .collect();
        Ok(Pool { base, size, free })
    }

    /// Takes a buffer with the standard headroom and an empty frame.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        let buf = self.free.pop()?;
        Some(Packet {
            buf,
            off: HEADROOM as u16,
            len: 0,
            in_port: 0,
            in_queue: 0,
        })
    }

    /// Returns a packet's buffer to the pool.
    #[inline]
    pub fn free(&mut self, pkt: Packet) {
        debug_assert!(self.owns(&pkt));
        // Never grows: every buffer came from this pool, so the list has room for it.
        self.free.push(pkt.buf);
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    pub fn capacity(&self) -> usize {
        self.size / BUF_SIZE
    }

    fn owns(&self, pkt: &Packet) -> bool {
        let p = pkt.buf.as_ptr() as usize;
        let b = self.base.as_ptr() as usize;
        p >= b && p < b + self.size && (p - b).is_multiple_of(BUF_SIZE)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; packets still out are leaked
        // handles that must not be used after the pool is gone, which `Packet`'s lifetime
        // within one worker guarantees.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.size) };
    }
}

// SAFETY: a pool is built on the control thread and then moved, whole, to the worker that
// owns it; it is never shared.
unsafe impl Send for Pool {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_roundtrip_and_exhaustion() {
        let mut pool = Pool::new(4).unwrap();
        let pkts: Vec<_> = (0..4).map(|_| pool.alloc().unwrap()).collect();
        assert!(pool.alloc().is_none());
        for p in pkts {
            pool.free(p);
        }
        assert_eq!(pool.available(), 4);
    }

    #[test]
    fn headroom_push_and_pull() {
        let mut pool = Pool::new(1).unwrap();
        let mut p = pool.alloc().unwrap();
        p.room_mut()[..3].copy_from_slice(b"abc");
        assert!(p.set_len(3));
        p.push_front(2).unwrap().copy_from_slice(b"xy");
        assert_eq!(p.data(), b"xyabc");
        assert!(p.pull_front(2));
        assert_eq!(p.data(), b"abc");
        assert!(p.push_front(HEADROOM + 1).is_none());
        assert!(!p.set_len(p.room() + 1));
        pool.free(p);
    }
}
