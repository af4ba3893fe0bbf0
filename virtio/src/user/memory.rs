//! The memory a virtio-user frontend shares with its backend: one memfd, mapped shared in
//! our process and handed to the backend with SET_MEM_TABLE, that holds every ring and
//! packet buffer.
//!
//! Guest-physical addresses are offsets in the memfd, so a buffer's address is known
//! without a lookup. The memfd is registered as two regions with a hole between them: the
//! main one, from offset 0, holds everything we allocate; a one-page guard region far
//! above it exists only so that a hostile test can point a descriptor into a hole between
//! regions (see [`SharedMemory::hole_gpa`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

use vhost::VhostUserMemoryRegionInfo;
use vm_memory::{FileOffset, MmapRegion};

const PAGE: u64 = 4096;
/// Size of the guard region after the main one.
const GUARD_LEN: u64 = PAGE;
/// Guest-physical distance from the end of the main region to the guard region.
const HOLE_LEN: u64 = 2 << 20;

/// A shared mapping of one memfd, with a bump allocator over its main region.
pub struct SharedMemory {
    file: File,
    map: MmapRegion<()>,
    /// Bytes of the main region (GPA 0..main_len, file offset 0..main_len).
    main_len: u64,
    /// Next free offset of the main region.
    next: u64,
}

impl SharedMemory {
    /// Creates a zeroed memfd with a main region of at least `len` bytes, and maps it.
    pub fn new(len: u64) -> io::Result<SharedMemory> {
        let main_len = len.max(PAGE).div_ceil(PAGE) * PAGE;
        let total = main_len + GUARD_LEN;
        // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a new
        // descriptor (or -1), which nothing else owns; File takes ownership of it.
        let file = unsafe {
            let fd = libc::memfd_create(c"vnf-virtio-user".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::new(
                    io::Error::last_os_error().kind(),
                    format!("memfd_create: {}", io::Error::last_os_error()),
                ));
            }
            File::from_raw_fd(fd)
        };
        file.set_len(total)
            .map_err(|e| io::Error::new(e.kind(), format!("memfd of {total} bytes: {e}")))?;
        let size = usize::try_from(total).map_err(|_| io::Error::other("memory too large"))?;
        // MAP_POPULATE: fault every page in now rather than on the first packets.
        let map = MmapRegion::<()>::build(
            Some(FileOffset::new(file.try_clone()?, 0)),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
        )
        .map_err(|e| io::Error::other(format!("mmap of the memfd ({total} bytes): {e}")))?;
        Ok(SharedMemory {
            file,
            map,
            main_len,
            next: 0,
        })
    }

    /// Carves `len` bytes aligned to `align` (a power of two) out of the main region and
    /// returns their offset, which is also their guest-physical address.
    pub fn alloc(&mut self, len: u64, align: u64) -> io::Result<u64> {
        debug_assert!(align.is_power_of_two());
        let at = self.next.div_ceil(align) * align;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= self.main_len)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "shared memory exhausted: {len} bytes wanted at {at:#x}, {:#x} in all",
                        self.main_len
                    ),
                )
            })?;
        self.next = end;
        Ok(at)
    }

    /// Our address of guest-physical address `gpa` of the main region.
    ///
    /// The pointer is only meaningful for `gpa` below [`len`](Self::len); dereferencing it
    /// is the caller's business (see `queue.rs`).
    pub fn host_addr(&self, gpa: u64) -> *mut u8 {
        debug_assert!(gpa <= self.main_len);
        self.map.as_ptr().wrapping_add(gpa as usize)
    }

    /// Bytes of the main region: guest-physical addresses 0..len are backed.
    pub fn len(&self) -> u64 {
        self.main_len
    }

    pub fn is_empty(&self) -> bool {
        self.main_len == 0
    }

    /// The memfd, for tests that map it the way a backend does.
    #[cfg(test)]
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// A guest-physical address that no region backs, between the main region and the
    /// guard region.
    pub fn hole_gpa(&self) -> u64 {
        self.main_len + HOLE_LEN / 2
    }

    /// The regions to announce with SET_MEM_TABLE. The descriptor in them stays valid for
    /// as long as `self` lives.
    pub fn regions(&self) -> Vec<VhostUserMemoryRegionInfo> {
        let base = self.map.as_ptr() as u64;
        let region = |gpa: u64, offset: u64, len: u64| VhostUserMemoryRegionInfo {
            guest_phys_addr: gpa,
            memory_size: len,
            userspace_addr: base + offset,
            mmap_offset: offset,
            mmap_handle: self.file.as_raw_fd(),
        };
        vec![
            region(0, 0, self.main_len),
            region(self.main_len + HOLE_LEN, self.main_len, GUARD_LEN),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_and_bounded() {
        let mut m = SharedMemory::new(10_000).unwrap();
        assert_eq!(m.len(), 3 * PAGE);
        assert_eq!(m.alloc(3, 1).unwrap(), 0);
        assert_eq!(m.alloc(16, 16).unwrap(), 16);
        assert_eq!(m.alloc(1, 4096).unwrap(), 4096);
        assert!(m.alloc(3 * PAGE, 1).is_err());
        assert_eq!(m.alloc(2 * PAGE - 1, 1).unwrap(), 4097);
        assert!(m.alloc(1, 1).is_err(), "exactly full");
    }

    #[test]
    fn regions_leave_a_hole_and_share_one_file() {
        let m = SharedMemory::new(PAGE).unwrap();
        let r = m.regions();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].guest_phys_addr, r[0].memory_size), (0, PAGE));
        assert_eq!(r[1].guest_phys_addr, PAGE + HOLE_LEN);
        assert_eq!(r[1].mmap_offset, PAGE);
        assert_eq!(r[1].userspace_addr - r[0].userspace_addr, PAGE);
        assert!(m.hole_gpa() >= PAGE && m.hole_gpa() < r[1].guest_phys_addr);
        // The mapping is shared: a write is visible through the file.
        // SAFETY: offset 5 lies inside the one-page main region we own.
        unsafe { m.host_addr(5).write(0xa5) };
        let mut b = [0u8; 1];
        std::os::unix::fs::FileExt::read_at(&m.file, &mut b, 5).unwrap();
        assert_eq!(b[0], 0xa5);
    }
}
