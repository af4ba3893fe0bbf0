//! Grace periods for the FIB's writer (RCU's synchronize): before a second-level group
//! that a route change unlinked can be reused, every worker must have passed a point
//! where it holds no pointer into the tables: the end of a poll loop, or sleep.
//!
//! Each worker owns one counter on its own cache line. It adds 2 at every quiescent
//! point (one store, no locked instruction) and sets bit 0 while it sleeps. The writer
//! takes a snapshot and waits until each counter has moved or shows the worker asleep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[repr(align(64))]
#[derive(Default)]
struct Slot(AtomicU64);

const OFFLINE: u64 = 1;

pub struct Grace {
    workers: Box<[Slot]>,
}

impl Grace {
    pub fn new(workers: usize) -> Grace {
        Grace {
            workers: (0..workers).map(|_| Slot::default()).collect(),
        }
    }

    /// Worker `w` holds no reference into the tables (it finished a poll loop).
    #[inline]
    pub fn quiescent(&self, w: usize) {
        let c = &self.workers[w].0;
        // Release: the worker's table reads so far happen before the writer sees this.
        c.store(
            (c.load(Ordering::Relaxed) & !OFFLINE).wrapping_add(2),
            Ordering::Release,
        );
    }

    /// Worker `w` is going to sleep: it reads nothing until [`Grace::online`].
    pub fn offline(&self, w: usize) {
        let c = &self.workers[w].0;
        c.store(c.load(Ordering::Relaxed) | OFFLINE, Ordering::Release);
    }

    /// Worker `w` woke up; it must call this before reading the tables again.
    pub fn online(&self, w: usize) {
        self.quiescent(w);
        // The writer's later snapshot must not be ordered before this store while the
        // worker already reads (store-load ordering needs the fence).
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Waits until every worker has passed a quiescent point since the call began.
    pub fn synchronize(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        let start: Vec<u64> = self
            .workers
            .iter()
            .map(|s| s.0.load(Ordering::Acquire))
            .collect();
        for (slot, seen) in self.workers.iter().zip(start) {
            if seen & OFFLINE != 0 {
                continue;
            }
            while slot.0.load(Ordering::Acquire) == seen {
                // A busy worker passes a quiescent point every few microseconds.
                std::thread::sleep(Duration::from_micros(20));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn synchronize_waits_for_every_running_worker() {
        let g = Arc::new(Grace::new(2));
        g.quiescent(0);
        g.quiescent(1);
        let done = Arc::new(AtomicBool::new(false));
        let (g2, d2) = (g.clone(), done.clone());
        let writer = std::thread::spawn(move || {
            g2.synchronize();
            d2.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !done.load(Ordering::SeqCst),
            "no worker passed a quiescent point yet"
        );
        g.quiescent(0);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !done.load(Ordering::SeqCst),
            "worker 1 has not passed one yet"
        );
        g.quiescent(1);
        writer.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
    }

    #[test]
    fn sleeping_workers_do_not_hold_up_the_writer() {
        let g = Grace::new(3);
        g.offline(0);
        g.offline(1);
        g.offline(2);
        let t = Instant::now();
        g.synchronize();
        assert!(t.elapsed() < Duration::from_secs(1));
        // Online again: the next grace period waits for them.
        g.online(1);
        let g = Arc::new(g);
        let g2 = g.clone();
        let waiter = std::thread::spawn(move || g2.synchronize());
        std::thread::sleep(Duration::from_millis(30));
        assert!(!waiter.is_finished());
        g.quiescent(1);
        waiter.join().unwrap();
    }
}
