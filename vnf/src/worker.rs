//! Forwarding workers: each polls its receive queues, moves each batch to its destination
//! and transmits it, run to completion; when idle (adaptive polling) it sleeps until a
//! guest kicks one of its queues.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deploy::PollMode;
use packet::{Batch, Pool};
use virtio::counters::Counter;
use virtio::DropReason;

use crate::l2::{self, L2Counters, Outputs};
use crate::l3::forward::{Ctx, L3Counters, L3Worker, Tx};
use crate::switch::{Fwd, Switch, WorkerPlan};

/// Buffers per worker: enough for a batch in flight on every queue plus slack.
const POOL_BUFFERS: usize = 4096;
/// Idle time after which an adaptive worker stops spinning.
const IDLE_BEFORE_SLEEP: Duration = Duration::from_millis(1);
/// Longest sleep, so a stop request is noticed even without traffic.
const MAX_SLEEP: Duration = Duration::from_millis(200);

pub struct WorkerStats {
    pub polls: Counter,
    pub busy_polls: Counter,
    pub sleeps: Counter,
    /// Polls that found the buffer pool empty (frames wait in the rings meanwhile).
    pub pool_empty: Counter,
    pub l2: L2Counters,
    pub l3: L3Counters,
}

impl WorkerStats {
    pub fn new(switch: &Switch) -> WorkerStats {
        WorkerStats {
            polls: Counter::default(),
            busy_polls: Counter::default(),
            sleeps: Counter::default(),
            pool_empty: Counter::default(),
            l2: L2Counters::new(&switch.l2),
            l3: L3Counters::new(switch.router.as_ref().map_or(0, |r| r.ifaces.len())),
        }
    }
}

/// A worker's own mutable state, beside its shared configuration.
struct Local {
    pool: Pool,
    batch: Batch,
    /// Router input taken from a virtual port's output batch.
    scratch: Batch,
    out: Outputs,
    l3: Option<L3Worker>,
}

pub struct Worker {
    plan: WorkerPlan,
    switch: Arc<Switch>,
    poll: PollMode,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    pub fn new(
        plan: WorkerPlan,
        switch: Arc<Switch>,
        poll: PollMode,
        stats: Arc<WorkerStats>,
        stop: Arc<AtomicBool>,
    ) -> Worker {
        Worker {
            plan,
            switch,
            poll,
            stats,
            stop,
        }
    }

    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("worker-{}", self.plan.id))
            .spawn(move || self.run())
    }

    fn run(self) {
        if let Some(cpu) = self.plan.cpu {
            if let Err(e) = pin_to_cpu(cpu) {
                log::warn!("worker {}: cannot pin to CPU {cpu}: {e}", self.plan.id);
            }
        }
        self.plan.doorbell.bind_current();
        let pool = match Pool::new(POOL_BUFFERS) {
            Ok(p) => p,
            Err(e) => {
                log::error!("worker {}: cannot map packet buffers: {e}", self.plan.id);
                return;
            }
        };
        let mut local = Local {
            pool,
            batch: Batch::default(),
            scratch: Batch::default(),
            out: Outputs::new(self.switch.l2.ports.len()),
            l3: self
                .switch
                .router
                .as_ref()
                .map(|r| L3Worker::new(r, self.plan.id)),
        };
        let mut idle_since: Option<Instant> = None;
        let mut idle_polls = 0u32;
        log::info!(
            "worker {}: polling {} queue(s){}",
            self.plan.id,
            self.plan.rx.len(),
            self.plan
                .cpu
                .map(|c| format!(" on CPU {c}"))
                .unwrap_or_default()
        );
        while !self.stop.load(Ordering::Relaxed) {
            let moved = self.poll_once(&mut local);
            if let Some(r) = &self.switch.router {
                r.grace.quiescent(self.plan.id);
            }
            self.stats.polls.add(1);
            if local.pool.available() == 0 {
                self.stats.pool_empty.add(1);
            }
            if moved > 0 {
                self.stats.busy_polls.add(1);
                idle_since = None;
                idle_polls = 0;
                continue;
            }
            if self.poll == PollMode::Busy {
                continue;
            }
            // Reading the clock on every empty poll would cost more than the poll.
            idle_polls += 1;
            if !idle_polls.is_multiple_of(256) {
                continue;
            }
            let now = Instant::now();
            match idle_since {
                None => idle_since = Some(now),
                Some(t) if now - t >= IDLE_BEFORE_SLEEP => {
                    self.sleep();
                    idle_since = None;
                }
                Some(_) => {}
            }
        }
    }

    /// One pass over every receive queue; returns the number of frames received.
    #[inline]
    fn poll_once(&self, w: &mut Local) -> usize {
        let mut total = 0;
        for &(p, q) in &self.plan.rx {
            let port = &self.switch.ports[p as usize];
            let slot = &port.rx[q as usize];
            let n = {
                let Some(mut g) = slot.try_lock() else {
                    continue;
                };
                let Some(nq) = g.as_mut() else { continue };
                nq.dequeue(&mut w.pool, &mut w.batch, p, q, &slot.counters)
            };
            if n == 0 {
                continue;
            }
            total += n;
            match self.switch.fwd[p as usize] {
                // The whole batch leaves on the peer port.
                Fwd::CrossConnect(peer) => self.transmit(peer, &mut w.batch, &mut w.pool),
                Fwd::Classify => {
                    let mut flush =
                        |port: u16, b: &mut Batch, pool: &mut Pool| self.transmit(port, b, pool);
                    l2::bridge_batch(
                        &self.switch.l2,
                        p,
                        &mut w.batch,
                        &mut w.pool,
                        &mut w.out,
                        &slot.counters,
                        &self.stats.l2,
                        &mut flush,
                    );
                    self.finish(w);
                }
                Fwd::Route(ri) => {
                    std::mem::swap(&mut w.batch, &mut w.scratch);
                    self.route(w, ri);
                    self.finish(w);
                }
                Fwd::Drop => {
                    slot.counters
                        .drop(DropReason::NoDestination, w.batch.len() as u64);
                    w.batch.free_all(&mut w.pool);
                }
            }
        }
        if let (Some(r), Some(l3), 0) = (&self.switch.router, &w.l3, self.plan.id) {
            if l3.announce_due(r.now()) {
                let attached: Vec<bool> = (0..self.switch.ports.len())
                    .map(|p| {
                        let pair = self.plan.tx_pair[p] as usize;
                        self.switch.ports[p].tx[pair].lock().is_some()
                    })
                    .collect();
                let mut flush =
                    |port: u16, b: &mut Batch, pool: &mut Pool| self.transmit(port, b, pool);
                let tx = Tx {
                    pool: &mut w.pool,
                    out: &mut w.out,
                    flush: &mut flush,
                };
                let l3 = w.l3.as_mut().expect("router state");
                Ctx::new(r, tx, l3, &self.stats.l3).announce(&attached);
                self.finish(w);
            }
        }
        if let (Some(r), Some(l3)) = (&self.switch.router, &w.l3) {
            if !l3.pending.is_empty() {
                let mut flush =
                    |port: u16, b: &mut Batch, pool: &mut Pool| self.transmit(port, b, pool);
                let tx = Tx {
                    pool: &mut w.pool,
                    out: &mut w.out,
                    flush: &mut flush,
                };
                let l3 = w.l3.as_mut().expect("router state");
                Ctx::new(r, tx, l3, &self.stats.l3).release_pending();
                self.finish(w);
            }
        }
        total
    }

    /// Routes the frames in `w.scratch`, received on router interface `ri`.
    fn route(&self, w: &mut Local, ri: u16) {
        let (Some(r), Some(l3)) = (&self.switch.router, w.l3.as_mut()) else {
            w.scratch.free_all(&mut w.pool);
            return;
        };
        let mut flush = |port: u16, b: &mut Batch, pool: &mut Pool| self.transmit(port, b, pool);
        let tx = Tx {
            pool: &mut w.pool,
            out: &mut w.out,
            flush: &mut flush,
        };
        Ctx::new(r, tx, l3, &self.stats.l3).route_batch(ri, &mut w.scratch);
    }

    /// Moves everything a stage left in the output batches on: frames for router
    /// interfaces (virtual ports) are routed, frames routed into a bridge are bridged,
    /// until only port batches remain; those are transmitted.
    fn finish(&self, w: &mut Local) {
        let base = self.switch.l2.router_base as usize;
        loop {
            let mut more = false;
            for vp in base..w.out.batches.len() {
                if w.out.batches[vp].is_empty() {
                    continue;
                }
                more = true;
                std::mem::swap(&mut w.out.batches[vp], &mut w.scratch);
                self.route(w, (vp - base) as u16);
            }
            let injected = w.l3.as_ref().map_or(0, |l3| l3.inject.len());
            for ri in 0..injected {
                let l3 = w.l3.as_mut().expect("router state");
                if l3.inject[ri].is_empty() {
                    continue;
                }
                more = true;
                while w.batch.room() > 0 {
                    match l3.inject[ri].pop_front() {
                        Some(p) => {
                            let _ = w.batch.push(p);
                        }
                        None => break,
                    }
                }
                let mut flush =
                    |port: u16, b: &mut Batch, pool: &mut Pool| self.transmit(port, b, pool);
                let counters = &self.stats.l3.ifaces[ri].rx;
                l2::bridge_batch(
                    &self.switch.l2,
                    base as u16 + ri as u16,
                    &mut w.batch,
                    &mut w.pool,
                    &mut w.out,
                    counters,
                    &self.stats.l2,
                    &mut flush,
                );
            }
            if !more {
                break;
            }
        }
        for port in 0..base {
            if !w.out.batches[port].is_empty() {
                let b = &mut w.out.batches[port];
                self.transmit(port as u16, b, &mut w.pool);
            }
        }
    }

    /// Sends the batch on this worker's transmit queue of `port`.
    #[inline]
    fn transmit(&self, port: u16, batch: &mut Batch, pool: &mut Pool) {
        if port as usize >= self.switch.ports.len() {
            // A virtual port's batch is routed by `finish` before it can fill up (a
            // stage sends it at most one frame per frame it takes); never reached.
            debug_assert!(false, "flush of virtual port {port}");
            batch.free_all(pool);
            return;
        }
        let slot = &self.switch.ports[port as usize].tx[self.plan.tx_pair[port as usize] as usize];
        let mut g = slot.lock();
        match g.as_mut() {
            Some(nq) => nq.enqueue(batch, pool, &slot.counters),
            None => {
                slot.counters.drop(DropReason::Detached, batch.len() as u64);
                batch.free_all(pool);
            }
        }
    }

    /// Asks for kicks on every receive queue and sleeps unless something arrived
    /// meanwhile; the port's control thread rings the doorbell on a kick.
    fn sleep(&self) {
        self.stats.sleeps.add(1);
        let bell = &self.plan.doorbell;
        bell.set_sleeping(true);
        let mut work = false;
        for &(p, q) in &self.plan.rx {
            let mut g = self.switch.ports[p as usize].rx[q as usize].lock();
            if let Some(nq) = g.as_mut() {
                nq.ring_mut().set_kicks(true);
                work |= nq.ring().pending().is_ok_and(|n| n > 0);
            }
        }
        if !work {
            if let Some(r) = &self.switch.router {
                r.grace.offline(self.plan.id);
            }
            std::thread::park_timeout(MAX_SLEEP);
            if let Some(r) = &self.switch.router {
                r.grace.online(self.plan.id);
            }
        }
        bell.set_sleeping(false);
        for &(p, q) in &self.plan.rx {
            let mut g = self.switch.ports[p as usize].rx[q as usize].lock();
            if let Some(nq) = g.as_mut() {
                nq.ring_mut().set_kicks(false);
            }
        }
    }
}

fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET bounds-checks against its size and
    // sched_setaffinity reads exactly that many bytes.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
