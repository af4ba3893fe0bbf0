//! Zero-filled arrays of `AtomicU32` in their own anonymous mappings, advised to use
//! transparent huge pages: a 64 MB first-level table on 4 KB pages would add a TLB miss
//! to nearly every random lookup. Pages are committed by the kernel on first write, so
//! a large second-level area costs only what is used.
//!
//! This is the only place in `l3` with `unsafe` code.

use std::io;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

/// `len` atomics, zero at creation, unmapped on drop.
pub(super) struct HugeArray {
    ptr: NonNull<AtomicU32>,
    len: usize,
}

// SAFETY: the array holds atomics only, which are meant to be shared between threads;
// the pointer is owned (no other alias outlives the value).
unsafe impl Send for HugeArray {}
// SAFETY: as above: every access through `&HugeArray` is an atomic operation.
unsafe impl Sync for HugeArray {}

impl HugeArray {
    pub(super) fn new(len: usize) -> io::Result<HugeArray> {
        if len == 0 {
            return Ok(HugeArray {
                ptr: NonNull::dangling(),
                len,
            });
        }
        let bytes = len
            .checked_mul(std::mem::size_of::<AtomicU32>())
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: advice on the mapping just made; failure only means small pages.
        unsafe { libc::madvise(p, bytes, libc::MADV_HUGEPAGE) };
        Ok(HugeArray {
            // mmap never returns null for a non-fixed mapping, and its page alignment
            // exceeds AtomicU32's; the zero fill is a valid value for every element.
            ptr: NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?,
            len,
        })
    }
}

impl Deref for HugeArray {
    type Target = [AtomicU32];
    #[inline]
    fn deref(&self) -> &[AtomicU32] {
        // SAFETY: `len` initialized atomics live at `ptr` until drop (or `len` is 0 and
        // `ptr` is dangling but aligned, which an empty slice allows).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HugeArray {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: unmaps exactly the mapping made in `new`; `&mut self` means no
        // reference into it remains.
        unsafe {
            libc::munmap(
                self.ptr.as_ptr().cast(),
                self.len * std::mem::size_of::<AtomicU32>(),
            );
        }
    }
}

/// A [`HugeArray`] of exactly `N` elements, seen as an array so that an index the
/// compiler can bound (`addr >> 8` for `N` = 2^24) needs no run-time check.
pub(super) struct FixedArray<const N: usize>(HugeArray);

impl<const N: usize> FixedArray<N> {
    pub(super) fn new() -> io::Result<Self> {
        Ok(FixedArray(HugeArray::new(N)?))
    }
}

impl<const N: usize> Deref for FixedArray<N> {
    type Target = [AtomicU32; N];
    #[inline]
    fn deref(&self) -> &[AtomicU32; N] {
        // SAFETY: `new` made the inner array exactly N elements long, and arrays and
        // slices of the same element type share a layout.
        unsafe { &*self.0.ptr.as_ptr().cast::<[AtomicU32; N]>() }
    }
}
