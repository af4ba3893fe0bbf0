//! The second-level group allocator the LPM tables share: never-used groups, free
//! ones, and ones unlinked while readers existed, which wait for a grace period.

/// Group numbers below a fixed capacity. Whether readers exist is the table's business;
/// it answers `unshared` (no reader can hold a pointer into a group) when asked.
pub(super) struct GroupPool {
    capacity: u32,
    /// Groups from here to `capacity` have never been used.
    fresh: u32,
    free: Vec<u32>,
    /// Unlinked while readers existed; reusable after a grace period.
    retired: Vec<u32>,
}

impl GroupPool {
    pub fn new(capacity: u32) -> GroupPool {
        GroupPool {
            capacity,
            fresh: 0,
            free: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// `n` groups, or none (and nothing changed) if there are not that many.
    pub fn take(&mut self, n: u32, unshared: impl FnOnce() -> bool) -> Option<Vec<u32>> {
        if n == 0 {
            return Some(Vec::new());
        }
        if (self.free.len() as u32) < n && !self.retired.is_empty() && unshared() {
            self.free.append(&mut self.retired);
        }
        let fresh = n.saturating_sub(self.free.len() as u32);
        if fresh > self.capacity - self.fresh {
            return None;
        }
        let reused = (n - fresh) as usize;
        let mut taken = self.free.split_off(self.free.len() - reused);
        taken.extend(self.fresh..self.fresh + fresh);
        self.fresh += fresh;
        Some(taken)
    }

    /// Gives back a group just unlinked: free at once if no reader can hold it.
    pub fn retire(&mut self, g: u32, unshared: bool) {
        if unshared {
            self.free.push(g);
        } else {
            self.retired.push(g);
        }
    }

    /// Makes retired groups reusable (after every reader passed a quiescent point).
    pub fn reclaim(&mut self) {
        self.free.append(&mut self.retired);
    }

    /// Groups linked in the table.
    pub fn used(&self) -> u32 {
        self.fresh - self.free.len() as u32 - self.retired.len() as u32
    }

    pub fn retired(&self) -> u32 {
        self.retired.len() as u32
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }
}
