//! A queue slot: where a queue's state lives between the thread that sets it up (the
//! vhost-user control thread) and the workers that run it.
//!
//! A slot is guarded by a one-word spin lock that a worker takes once per batch. It is
//! uncontended except when a port has fewer queue pairs than there are workers (several
//! workers then share its transmit queues) or while the control thread attaches, remaps
//! or detaches the queue, which is rare and brief.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;

use crate::counters::QueueCounters;
use crate::net::NetQueue;

/// Wakes a worker that sleeps while its queues are idle.
#[derive(Default)]
pub struct Doorbell {
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Doorbell {
    /// Binds the doorbell to the calling thread (the worker that will sleep on it).
    pub fn bind_current(&self) {
        let _ = self.thread.set(std::thread::current());
    }

    pub fn set_sleeping(&self, s: bool) {
        self.sleeping.store(s, Ordering::SeqCst);
    }

    pub fn ring(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }
}

#[derive(Default)]
pub struct QueueSlot {
    locked: AtomicBool,
    queue: UnsafeCell<Option<NetQueue>>,
    pub counters: QueueCounters,
    /// The worker polling this queue, for queues that deliver frames to us.
    pub doorbell: OnceLock<Arc<Doorbell>>,
}

// SAFETY: `queue` is only reached through a `SlotGuard`, which holds the lock.
unsafe impl Sync for QueueSlot {}

pub struct SlotGuard<'a> {
    slot: &'a QueueSlot,
}

impl QueueSlot {
    #[inline]
    pub fn try_lock(&self) -> Option<SlotGuard<'_>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| SlotGuard { slot: self })
    }

    #[inline]
    pub fn lock(&self) -> SlotGuard<'_> {
        let mut spins = 0u32;
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            spins += 1;
            if spins < 1000 {
                std::hint::spin_loop();
            } else {
                // The holder may have been preempted on a shared core; let it run.
                std::thread::yield_now();
            }
        }
    }

    /// Whether a queue is attached, for the statistics (reads no queue state).
    pub fn is_attached(&self) -> bool {
        let g = self.lock();
        g.is_some()
    }

    pub fn state(&self) -> &'static str {
        let g = self.lock();
        match g.as_ref() {
            None => "detached",
            Some(q) if q.broken().is_some() => "needs_reset",
            Some(_) => "running",
        }
    }
}

impl Deref for SlotGuard<'_> {
    type Target = Option<NetQueue>;
    fn deref(&self) -> &Self::Target {
        // SAFETY: the guard holds the slot's lock.
        unsafe { &*self.slot.queue.get() }
    }
}

impl DerefMut for SlotGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        // SAFETY: the guard holds the slot's lock.
        unsafe { &mut *self.slot.queue.get() }
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.slot.locked.store(false, Ordering::Release);
    }
}
