//! Guest-physical to host address translation for the data path.
//!
//! vm-memory looks a region up and bounds-checks through several layers on every access;
//! the fast path instead keeps this flat table of the frontend's regions (usually one to
//! three) and checks each guest buffer against it exactly once.

use std::sync::Arc;

use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};

#[derive(Clone, Copy)]
struct Region {
    gpa: u64,
    len: u64,
    host: *mut u8,
}

/// A snapshot of the frontend's memory table. Holding it keeps the mappings alive, so a
/// host pointer obtained from it stays valid for as long as the table does.
pub struct MemTable {
    regions: Vec<Region>,
    _mappings: Arc<GuestMemoryMmap<()>>,
}

// SAFETY: the raw pointers refer to shared mappings owned by `_mappings`, which is itself
// Send + Sync; the table is read-only after construction.
unsafe impl Send for MemTable {}
// SAFETY: as above.
unsafe impl Sync for MemTable {}

impl MemTable {
    pub fn new(mem: Arc<GuestMemoryMmap<()>>) -> MemTable {
        let mut regions: Vec<Region> = mem
            .iter()
            .filter_map(|r| {
                let host = r.get_host_address(MemoryRegionAddress(0)).ok()?;
                Some(Region {
                    gpa: r.start_addr().0,
                    len: r.len(),
                    host,
                })
            })
            .collect();
        // Guest RAM is the largest region and holds nearly every buffer: look there first.
        regions.sort_by_key(|r| std::cmp::Reverse(r.len));
        MemTable {
            regions,
            _mappings: mem,
        }
    }

    /// Host address of `len` guest bytes at `gpa`, if they lie wholly inside one region.
    ///
    /// A buffer that straddles two regions is refused: QEMU's regions are separated by
    /// holes, so no real driver produces one.
    #[inline]
    pub fn translate(&self, gpa: u64, len: u64) -> Option<*mut u8> {
        for r in &self.regions {
            let off = gpa.wrapping_sub(r.gpa);
            if off < r.len && len <= r.len - off {
                // SAFETY: `off + len <= r.len`, inside the region's mapping.
                return Some(unsafe { r.host.add(off as usize) });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestAddress;

    #[test]
    fn translate_checks_bounds_per_region() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[
            (GuestAddress(0), 0x1000),
            (GuestAddress(0x10000), 0x2000),
        ])
        .unwrap();
        let t = MemTable::new(Arc::new(mem));
        assert!(t.translate(0, 0x1000).is_some());
        assert!(
            t.translate(0xfff, 2).is_none(),
            "crosses the end of a region"
        );
        assert!(t.translate(0x1000, 1).is_none(), "in the hole");
        assert!(t.translate(0x11fff, 1).is_some());
        assert!(t.translate(0x12000, 1).is_none());
        assert!(t.translate(u64::MAX, 2).is_none(), "wraps");
        assert!(t.translate(0x10000, u64::MAX).is_none());
        let a = t.translate(0x10000, 1).unwrap() as usize;
        let b = t.translate(0x10010, 1).unwrap() as usize;
        assert_eq!(b - a, 0x10);
    }
}
