//! The port abstraction the generator sends and receives through, and an in-memory
//! loopback that injects loss, duplication, reordering and rate limits for tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::frame::MAX_WIRE;
use super::rate::Clock;

/// A multiqueue frame port, such as a virtio-user device or a loopback.
pub trait FramePort {
    fn queues(&self) -> u16;

    /// Sends up to `max` frames on `queue`. `fill(i, buf)` writes frame `i` (counting from
    /// 0) into `buf`, which is at least `frame::MAX_WIRE` bytes, and returns its length; 0
    /// ends the batch without sending. Returns how many frames were sent, which may be
    /// fewer than `fill` was asked for when the ring fills up.
    fn send(
        &mut self,
        queue: u16,
        max: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> usize;

    /// Hands up to `max` received frames of `queue` to `sink`; returns how many.
    fn recv(&mut self, queue: u16, max: usize, sink: &mut dyn FnMut(&[u8])) -> usize;

    /// How many fixed frames (see `fix_frames`) each transmit queue can hold: its
    /// buffers. 0 when the port cannot send fixed frames.
    fn fixed_capacity(&self) -> usize {
        0
    }

    /// Writes `n` frames (at most `fixed_capacity`) for transmit queue `queue`, once:
    /// frame `k` is what `fill(k, buf)` writes, as for `send`. From then on `send_fixed`
    /// sends them again and again, and `send` is not used on that queue.
    fn fix_frames(
        &mut self,
        queue: u16,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<(), String> {
        let _ = (queue, n, fill);
        Err("this port cannot send fixed frames".into())
    }

    /// Sends up to `max` of `queue`'s fixed frames, in turn: frame 0, 1, ..., n - 1, 0,
    /// ...; returns how many, which may be fewer when the ring is full.
    fn send_fixed(&mut self, queue: u16, max: usize) -> usize {
        let _ = (queue, max);
        0
    }
}

/// The receiving side of a transmit-only run: receives nothing.
pub struct NullPort;

impl FramePort for NullPort {
    fn queues(&self) -> u16 {
        1
    }
    fn send(&mut self, _: u16, _: usize, _: &mut dyn FnMut(usize, &mut [u8]) -> usize) -> usize {
        0
    }
    fn recv(&mut self, _: u16, _: usize, _: &mut dyn FnMut(&[u8])) -> usize {
        0
    }
}

/// Makes the loopback lose frames above a rate, like a device under test that cannot keep
/// up: a token bucket of `depth` frames refilled at `pps`, read from `clock`.
#[derive(Clone)]
pub struct RateLimit {
    pub pps: f64,
    pub depth: f64,
    pub clock: Arc<dyn Clock + Send + Sync>,
}

/// Injections count frames offered per queue from 1: with `drop_every: 3` the 3rd, 6th, …
/// frame of each queue is lost. A reordered frame is held back and delivered right after
/// the next frame of its queue; one still held when the sender stops stays in the loopback.
#[derive(Clone)]
pub struct LoopbackConfig {
    pub queues: u16,
    /// Frames a queue holds before it drops new ones.
    pub capacity: usize,
    pub drop_every: u64,
    pub duplicate_every: u64,
    pub reorder_every: u64,
    pub rate_limit: Option<RateLimit>,
    /// Fixed frames a transmit queue holds (`FramePort::fixed_capacity`): its "ring".
    pub fixed_capacity: usize,
}

impl Default for LoopbackConfig {
    fn default() -> LoopbackConfig {
        LoopbackConfig {
            queues: 1,
            capacity: 4096,
            drop_every: 0,
            duplicate_every: 0,
            reorder_every: 0,
            rate_limit: None,
            fixed_capacity: 256,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopbackStats {
    pub offered: u64,
    pub dropped_rate: u64,
    pub dropped_injected: u64,
    pub dropped_full: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Vec<u8>>,
    held: Option<(Vec<u8>, bool)>,
    offered: u64,
}

struct Direction {
    cfg: LoopbackConfig,
    queues: Vec<Queue>,
    /// Buffers come back here after delivery, so a warmed-up loopback does not allocate.
    free: Vec<Vec<u8>>,
    tokens: f64,
    refilled_ns: u64,
    stats: LoopbackStats,
}

impl Direction {
    fn new(cfg: &LoopbackConfig) -> Direction {
        let (tokens, refilled_ns) = match &cfg.rate_limit {
            Some(r) => (r.depth, r.clock.now_ns()),
            None => (0.0, 0),
        };
        Direction {
            cfg: cfg.clone(),
            queues: (0..cfg.queues).map(|_| Queue::default()).collect(),
            free: Vec::new(),
            tokens,
            refilled_ns,
            stats: LoopbackStats::default(),
        }
    }

    fn refill(&mut self) {
        if let Some(r) = &self.cfg.rate_limit {
            let now = r.clock.now_ns();
            let dt = now.saturating_sub(self.refilled_ns) as f64;
            self.tokens = (self.tokens + dt * r.pps / 1e9).min(r.depth);
            self.refilled_ns = now;
        }
    }

    fn copy(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut b = self.free.pop().unwrap_or_default();
        b.clear();
        b.extend_from_slice(frame);
        b
    }

    fn enqueue(&mut self, q: usize, buf: Vec<u8>) {
        if self.queues[q].frames.len() >= self.cfg.capacity {
            self.stats.dropped_full += 1;
            self.free.push(buf);
        } else {
            self.queues[q].frames.push_back(buf);
        }
    }

    fn offer(&mut self, q: usize, frame: &[u8]) {
        self.stats.offered += 1;
        self.queues[q].offered += 1;
        let n = self.queues[q].offered;
        // checked_rem: 0 means "never" (and is_multiple_of is newer than our MSRV).
        let every = |k: u64| n.checked_rem(k) == Some(0);
        if self.cfg.rate_limit.is_some() {
            if self.tokens < 1.0 {
                self.stats.dropped_rate += 1;
                return;
            }
            self.tokens -= 1.0;
        }
        if every(self.cfg.drop_every) {
            self.stats.dropped_injected += 1;
            return;
        }
        let dup = every(self.cfg.duplicate_every);
        if dup {
            self.stats.duplicated += 1;
        }
        let buf = self.copy(frame);
        if every(self.cfg.reorder_every) && self.queues[q].held.is_none() {
            self.queues[q].held = Some((buf, dup));
            return;
        }
        if dup {
            let copy = self.copy(frame);
            self.enqueue(q, copy);
        }
        self.enqueue(q, buf);
        if let Some((held, held_dup)) = self.queues[q].held.take() {
            self.stats.reordered += 1;
            if held_dup {
                let copy = self.copy(&held);
                self.enqueue(q, copy);
            }
            self.enqueue(q, held);
        }
    }
}

/// One end of an in-memory link: what one end sends, the other receives.
pub struct Loopback {
    tx: Arc<Mutex<Direction>>,
    rx: Arc<Mutex<Direction>>,
    queues: u16,
    scratch: Vec<u8>,
    fixed_capacity: usize,
    /// Per transmit queue: its fixed frames, and the one whose turn it is.
    fixed: Vec<(Vec<Vec<u8>>, usize)>,
}

fn lock(d: &Mutex<Direction>) -> MutexGuard<'_, Direction> {
    d.lock().unwrap_or_else(|e| e.into_inner())
}

impl Loopback {
    /// Two ends; the injections apply to both directions.
    pub fn pair(cfg: &LoopbackConfig) -> (Loopback, Loopback) {
        let ab = Arc::new(Mutex::new(Direction::new(cfg)));
        let ba = Arc::new(Mutex::new(Direction::new(cfg)));
        let a = Loopback::end(ab.clone(), ba.clone(), cfg);
        let b = Loopback::end(ba, ab, cfg);
        (a, b)
    }

    /// One end that receives what it sends.
    pub fn hairpin(cfg: &LoopbackConfig) -> Loopback {
        let d = Arc::new(Mutex::new(Direction::new(cfg)));
        Loopback::end(d.clone(), d, cfg)
    }

    fn end(tx: Arc<Mutex<Direction>>, rx: Arc<Mutex<Direction>>, cfg: &LoopbackConfig) -> Loopback {
        Loopback {
            tx,
            rx,
            queues: cfg.queues,
            scratch: vec![0; MAX_WIRE],
            fixed_capacity: cfg.fixed_capacity,
            fixed: vec![(Vec::new(), 0); usize::from(cfg.queues)],
        }
    }

    /// What happened to the frames this end sent.
    pub fn tx_stats(&self) -> LoopbackStats {
        lock(&self.tx).stats
    }

    /// Frames waiting to be received at this end.
    pub fn pending(&self) -> usize {
        lock(&self.rx).queues.iter().map(|q| q.frames.len()).sum()
    }
}

impl FramePort for Loopback {
    fn queues(&self) -> u16 {
        self.queues
    }

    fn send(
        &mut self,
        queue: u16,
        max: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> usize {
        if queue >= self.queues {
            return 0;
        }
        let mut d = lock(&self.tx);
        d.refill();
        let mut sent = 0;
        while sent < max {
            let len = fill(sent, &mut self.scratch).min(MAX_WIRE);
            if len == 0 {
                break;
            }
            d.offer(usize::from(queue), &self.scratch[..len]);
            sent += 1;
        }
        sent
    }

    fn recv(&mut self, queue: u16, max: usize, sink: &mut dyn FnMut(&[u8])) -> usize {
        if queue >= self.queues {
            return 0;
        }
        let mut d = lock(&self.rx);
        let mut n = 0;
        while n < max {
            let Some(buf) = d.queues[usize::from(queue)].frames.pop_front() else {
                break;
            };
            sink(&buf);
            d.free.push(buf);
            n += 1;
        }
        n
    }

    fn fixed_capacity(&self) -> usize {
        self.fixed_capacity
    }

    fn fix_frames(
        &mut self,
        queue: u16,
        n: usize,
        fill: &mut dyn FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<(), String> {
        if queue >= self.queues || n == 0 || n > self.fixed_capacity {
            return Err(format!(
                "{n} fixed frames on queue {queue}: {} queues of {}",
                self.queues, self.fixed_capacity
            ));
        }
        let frames = (0..n)
            .map(|k| {
                let len = fill(k, &mut self.scratch).min(MAX_WIRE);
                match len {
                    0 => Err(format!("fixed frame {k} is empty")),
                    _ => Ok(self.scratch[..len].to_vec()),
                }
            })
            .collect::<Result<_, _>>()?;
        self.fixed[usize::from(queue)] = (frames, 0);
        Ok(())
    }

    fn send_fixed(&mut self, queue: u16, max: usize) -> usize {
        let Some((frames, next)) = self.fixed.get_mut(usize::from(queue)) else {
            return 0;
        };
        if frames.is_empty() {
            return 0;
        }
        let mut d = lock(&self.tx);
        d.refill();
        for _ in 0..max {
            d.offer(usize::from(queue), &frames[*next]);
            *next = (*next + 1) % frames.len();
        }
        max
    }
}

#[cfg(test)]
mod tests {
    use super::super::rate::VirtualClock;
    use super::*;

    /// Sends frames whose first byte is their number, in bursts of `burst`.
    fn send_numbered(port: &mut Loopback, queue: u16, count: u8, burst: usize) {
        let mut next = 0u8;
        while next < count {
            let n = usize::from(count - next).min(burst);
            let sent = port.send(queue, n, &mut |i, buf| {
                buf[0] = next + i as u8;
                60
            });
            assert_eq!(sent, n);
            next += n as u8;
        }
    }

    fn drain(port: &mut Loopback, queue: u16) -> Vec<u8> {
        let mut got = Vec::new();
        while port.recv(queue, 7, &mut |f| got.push(f[0])) > 0 {}
        got
    }

    #[test]
    fn pair_delivers_in_order_per_queue_and_direction() {
        let cfg = LoopbackConfig {
            queues: 2,
            ..LoopbackConfig::default()
        };
        let (mut a, mut b) = Loopback::pair(&cfg);
        send_numbered(&mut a, 0, 5, 2);
        send_numbered(&mut a, 1, 3, 8);
        assert_eq!(b.pending(), 8);
        assert_eq!(a.pending(), 0, "nothing comes back to the sender");
        assert_eq!(drain(&mut b, 1), [0, 1, 2]);
        assert_eq!(drain(&mut b, 0), [0, 1, 2, 3, 4]);
        assert_eq!(a.send(2, 1, &mut |_, _| 60), 0, "no such queue");
        let mut h = Loopback::hairpin(&cfg);
        send_numbered(&mut h, 0, 2, 2);
        assert_eq!(drain(&mut h, 0), [0, 1]);
    }

    #[test]
    fn fill_returning_zero_ends_the_batch() {
        let (mut a, b) = Loopback::pair(&LoopbackConfig::default());
        let sent = a.send(0, 10, &mut |i, _| if i < 3 { 60 } else { 0 });
        assert_eq!(sent, 3);
        assert_eq!(b.pending(), 3);
    }

    #[test]
    fn injections_hit_exactly_the_configured_frames() {
        let cfg = LoopbackConfig {
            drop_every: 4,
            duplicate_every: 3,
            reorder_every: 5,
            ..LoopbackConfig::default()
        };
        let (mut a, mut b) = Loopback::pair(&cfg);
        send_numbered(&mut a, 0, 20, 3);
        // Frame k is number k-1. Dropped: 4 8 12 16 20. Duplicated: 3 6 9 (12 dropped)
        // 15 18. Held: 5 (after 6), 10 (after 11), 15 (after 16 is dropped: after 17).
        assert_eq!(
            drain(&mut b, 0),
            [0, 1, 2, 2, 5, 5, 4, 6, 8, 8, 10, 9, 12, 13, 16, 14, 14, 17, 17, 18]
        );
        let s = a.tx_stats();
        assert_eq!(
            (s.offered, s.dropped_injected, s.duplicated, s.reordered),
            (20, 5, 5, 3)
        );
    }

    #[test]
    fn full_queues_drop_the_tail() {
        let cfg = LoopbackConfig {
            capacity: 4,
            ..LoopbackConfig::default()
        };
        let (mut a, mut b) = Loopback::pair(&cfg);
        send_numbered(&mut a, 0, 10, 10);
        assert_eq!(drain(&mut b, 0), [0, 1, 2, 3]);
        assert_eq!(a.tx_stats().dropped_full, 6);
    }

    #[test]
    fn rate_limit_passes_the_bucket_and_its_refill() {
        let clock = VirtualClock::new(0);
        let cfg = LoopbackConfig {
            rate_limit: Some(RateLimit {
                pps: 1000.0,
                depth: 3.0,
                clock: Arc::new(clock.clone()),
            }),
            ..LoopbackConfig::default()
        };
        let (mut a, mut b) = Loopback::pair(&cfg);
        send_numbered(&mut a, 0, 5, 5);
        assert_eq!(drain(&mut b, 0), [0, 1, 2]);
        // 2 ms at 1000 pps earns two frames.
        clock.pause(2_000_000);
        send_numbered(&mut a, 0, 5, 5);
        assert_eq!(drain(&mut b, 0), [0, 1]);
        assert_eq!(a.tx_stats().dropped_rate, 5);
    }

    #[test]
    fn fixed_frames_go_round_in_turn() {
        let cfg = LoopbackConfig {
            queues: 2,
            fixed_capacity: 4,
            drop_every: 5,
            ..LoopbackConfig::default()
        };
        let (mut a, mut b) = Loopback::pair(&cfg);
        assert_eq!(a.fixed_capacity(), 4);
        a.fix_frames(1, 3, &mut |k, buf| {
            buf[0] = 10 + k as u8;
            60
        })
        .unwrap();
        assert_eq!(a.send_fixed(0, 5), 0, "queue 0 has no fixed frames");
        assert_eq!(a.send_fixed(1, 5), 5);
        assert_eq!(a.send_fixed(1, 2), 2);
        // The 5th frame offered is dropped, as for `send`.
        assert_eq!(drain(&mut b, 1), [10, 11, 12, 10, 12, 10]);
        assert!(
            a.fix_frames(1, 5, &mut |_, _| 60).is_err(),
            "beyond capacity"
        );
        assert!(a.fix_frames(2, 1, &mut |_, _| 60).is_err(), "no such queue");
        assert!(a.fix_frames(0, 2, &mut |k, _| k).is_err(), "an empty frame");
    }
}
