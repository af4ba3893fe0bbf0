//! Receive accounting: loss, duplicates, reordering and latency from the signatures.
//!
//! Everything is sized when the tracker is made; recording a frame touches a bitmap word
//! and a histogram bucket and allocates nothing.

use serde::Serialize;

use super::frame::parse;

/// Sequence numbers remembered behind the highest one seen. A frame older than that can no
/// longer be told from a duplicate and is counted as `stale` (and, never counted as
/// received, shows up as lost).
pub const WINDOW: u64 = 4096;
const WORDS: usize = (WINDOW / 64) as usize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeqCounts {
    /// Distinct sequence numbers received.
    pub received: u64,
    pub duplicates: u64,
    /// Frames that arrived after a higher sequence number (late arrivals).
    pub reordered: u64,
    pub stale: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arrival {
    First,
    Duplicate,
    Stale,
}

/// One (stream, queue)'s sliding window of received sequence numbers.
#[derive(Clone)]
struct SeqWindow {
    /// One past the highest sequence number seen; the window is [next - WINDOW, next).
    next: u64,
    bits: [u64; WORDS],
    counts: SeqCounts,
}

impl SeqWindow {
    fn new() -> SeqWindow {
        SeqWindow {
            next: 0,
            bits: [0; WORDS],
            counts: SeqCounts::default(),
        }
    }

    fn bit(seq: u64) -> (usize, u64) {
        let pos = seq % WINDOW;
        ((pos / 64) as usize, 1 << (pos % 64))
    }

    /// A 32-bit compact sequence number taken as the one nearest the window's head.
    fn extend(&self, low: u32) -> Option<u64> {
        let delta = i64::from(low.wrapping_sub(self.next as u32) as i32);
        let seq = self.next as i64 + delta;
        (seq >= 0).then_some(seq as u64)
    }

    fn record(&mut self, seq: u64) -> Arrival {
        if seq >= self.next {
            // Positions entering the window still hold bits from WINDOW numbers ago.
            if seq - self.next >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for s in self.next..seq {
                    let (w, m) = Self::bit(s);
                    self.bits[w] &= !m;
                }
            }
            let (w, m) = Self::bit(seq);
            self.bits[w] |= m;
            self.next = seq + 1;
            self.counts.received += 1;
            return Arrival::First;
        }
        if self.next - seq > WINDOW {
            self.counts.stale += 1;
            return Arrival::Stale;
        }
        let (w, m) = Self::bit(seq);
        if self.bits[w] & m != 0 {
            self.counts.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.bits[w] |= m;
        self.counts.received += 1;
        self.counts.reordered += 1;
        Arrival::First
    }
}

/// Log-linear buckets: exact below 32 ns, then 32 buckets per power of two, so a bucket is
/// at most 1/32 of its value wide. Covers all of u64 in 1920 buckets (15 KiB).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    pub count: u64,
    pub min_ns: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let shift = 63 - v.leading_zeros() - SUB_BITS;
        (SUB + u64::from(shift) * SUB + ((v >> shift) - SUB)) as usize
    }

    /// The lowest value of a bucket and its width.
    fn bucket(idx: usize) -> (u64, u64) {
        let idx = idx as u64;
        if idx < SUB {
            return (idx, 1);
        }
        let shift = (idx - SUB) / SUB;
        let sub = (idx - SUB) % SUB + SUB;
        (sub << shift, 1 << shift)
    }

    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value below which `pct` percent of the samples lie, to within half a bucket.
    pub fn percentile(&self, pct: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((pct / 100.0 * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = Self::bucket(i);
                return (low + (width - 1) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    pub fn stats(&self) -> LatencyStats {
        if self.total == 0 {
            return LatencyStats::default();
        }
        LatencyStats {
            count: self.total,
            min_ns: self.min,
            mean_ns: self.sum as f64 / self.total as f64,
            p50_ns: self.percentile(50.0),
            p99_ns: self.percentile(99.0),
            max_ns: self.max,
        }
    }
}

/// All receive counters of one trial.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RxCounts {
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub stale: u64,
    /// Frames without our signature.
    pub foreign: u64,
    /// Ours, but of a stream or queue this tracker does not expect (e.g. a late frame of
    /// an earlier trial).
    pub unexpected: u64,
}

/// Accounting for the streams `stream_base..stream_base + streams` over `queues` transmit
/// queues (the queue in the signature, not the one the frame arrived on).
pub struct RxTracker {
    stream_base: u16,
    streams: u16,
    queues: u16,
    windows: Vec<SeqWindow>,
    latency: Histogram,
    foreign: u64,
    unexpected: u64,
}

impl RxTracker {
    pub fn new(stream_base: u16, streams: u16, queues: u16) -> RxTracker {
        RxTracker {
            stream_base,
            streams,
            queues,
            windows: vec![SeqWindow::new(); usize::from(streams) * usize::from(queues)],
            latency: Histogram::default(),
            foreign: 0,
            unexpected: 0,
        }
    }

    /// Accounts one frame received at `now_ns` (same clock as the transmit timestamps).
    #[inline]
    pub fn record(&mut self, frame: &[u8], now_ns: u64) {
        let Some(sig) = parse(frame) else {
            self.foreign += 1;
            return;
        };
        let s = sig.stream.wrapping_sub(self.stream_base);
        if s >= self.streams || sig.queue >= self.queues {
            self.unexpected += 1;
            return;
        }
        let w =
            &mut self.windows[usize::from(s) * usize::from(self.queues) + usize::from(sig.queue)];
        let seq = if sig.compact {
            match w.extend(sig.seq as u32) {
                Some(seq) => seq,
                None => {
                    w.counts.stale += 1;
                    return;
                }
            }
        } else {
            sig.seq
        };
        if w.record(seq) == Arrival::First {
            let latency = if sig.compact {
                u64::from((now_ns as u32).wrapping_sub(sig.ts as u32))
            } else {
                now_ns.saturating_sub(sig.ts)
            };
            self.latency.record(latency);
        }
    }

    pub fn counts_of(&self, stream: u16, queue: u16) -> Option<SeqCounts> {
        let s = stream.wrapping_sub(self.stream_base);
        if s >= self.streams || queue >= self.queues {
            return None;
        }
        Some(self.windows[usize::from(s) * usize::from(self.queues) + usize::from(queue)].counts)
    }

    pub fn totals(&self) -> RxCounts {
        let mut t = RxCounts {
            foreign: self.foreign,
            unexpected: self.unexpected,
            ..RxCounts::default()
        };
        for w in &self.windows {
            t.received += w.counts.received;
            t.duplicates += w.counts.duplicates;
            t.reordered += w.counts.reordered;
            t.stale += w.counts.stale;
        }
        t
    }

    pub fn latency(&self) -> &Histogram {
        &self.latency
    }
}

#[cfg(test)]
mod tests {
    use super::super::flows::{FlowSpec, Traffic};
    use super::super::frame::{FrameSize, Stamp};
    use super::super::port::{FramePort, Loopback, LoopbackConfig};
    use super::*;

    /// Sends `count` frames per queue through a loopback and accounts what comes out.
    fn through(cfg: LoopbackConfig, size: u32, count: u64) -> RxTracker {
        let queues = cfg.queues;
        let (mut a, mut b) = Loopback::pair(&cfg);
        let mut traffic = Traffic::new(&FlowSpec::default(), &FrameSize::Fixed(size)).unwrap();
        let mut rx = RxTracker::new(7, 1, queues);
        for q in 0..queues {
            let mut seq = 0;
            while seq < count {
                let n = (count - seq).min(32) as usize;
                let sent = a.send(q, n, &mut |i, buf| {
                    let st = Stamp {
                        stream: 7,
                        queue: q,
                        seq: seq + i as u64,
                        ts: 1000,
                    };
                    traffic.fill(buf, &st)
                });
                seq += sent as u64;
                b.recv(q, 64, &mut |f| rx.record(f, 1500));
            }
        }
        for q in 0..queues {
            while b.recv(q, 64, &mut |f| rx.record(f, 1500)) > 0 {}
        }
        rx
    }

    #[test]
    fn clean_link_counts_everything_once() {
        let cfg = LoopbackConfig {
            queues: 2,
            ..LoopbackConfig::default()
        };
        let rx = through(cfg, 64, 1000);
        let t = rx.totals();
        assert_eq!(
            t,
            RxCounts {
                received: 2000,
                ..RxCounts::default()
            }
        );
        assert_eq!(rx.counts_of(7, 1).unwrap().received, 1000);
        assert_eq!(rx.counts_of(8, 0), None);
        let l = rx.latency().stats();
        assert_eq!(
            (l.count, l.min_ns, l.max_ns, l.p99_ns),
            (2000, 500, 500, 500)
        );
    }

    #[test]
    fn injected_drops_are_lost_frames() {
        for size in [64, 1518] {
            let cfg = LoopbackConfig {
                drop_every: 7,
                ..LoopbackConfig::default()
            };
            let t = through(cfg, size, 1000).totals();
            assert_eq!(1000 - t.received, 142, "size {size}");
            assert_eq!((t.duplicates, t.reordered, t.stale), (0, 0, 0));
        }
    }

    #[test]
    fn injected_duplicates_are_counted_not_received() {
        let cfg = LoopbackConfig {
            queues: 3,
            duplicate_every: 10,
            ..LoopbackConfig::default()
        };
        let t = through(cfg, 128, 1000).totals();
        assert_eq!((t.received, t.duplicates, t.reordered), (3000, 300, 0));
    }

    #[test]
    fn injected_reordering_is_counted_as_late_arrivals() {
        let cfg = LoopbackConfig {
            reorder_every: 9,
            ..LoopbackConfig::default()
        };
        // 1000 = 111 × 9 + 1: every held frame has a successor.
        let t = through(cfg, 64, 1000).totals();
        assert_eq!((t.received, t.duplicates, t.reordered), (1000, 0, 111));
        // 999 = 111 × 9: the last frame stays held, so it is lost, not late.
        let cfg = LoopbackConfig {
            reorder_every: 9,
            ..LoopbackConfig::default()
        };
        let t = through(cfg, 64, 999).totals();
        assert_eq!((t.received, t.reordered), (998, 110));
    }

    #[test]
    fn all_injections_together() {
        let cfg = LoopbackConfig {
            queues: 2,
            drop_every: 4,
            duplicate_every: 3,
            reorder_every: 5,
            ..LoopbackConfig::default()
        };
        // Per queue, as in the loopback's own test over 20 frames: 5 dropped, 5
        // duplicated, 3 reordered.
        let t = through(cfg, 1518, 20).totals();
        assert_eq!(
            (t.received, t.duplicates, t.reordered, t.foreign),
            (30, 10, 6, 0)
        );
    }

    #[test]
    fn window_counts_gaps_late_frames_and_stale_ones() {
        let mut w = SeqWindow::new();
        for s in [0, 1, 5, 3, 3, 2, 6, 1] {
            w.record(s);
        }
        assert_eq!(
            w.counts,
            SeqCounts {
                received: 6,
                duplicates: 2,
                reordered: 2,
                stale: 0
            }
        );
        // Jump far ahead; the old numbers fall out of the window.
        assert_eq!(w.record(10_000), Arrival::First);
        assert_eq!(w.record(4), Arrival::Stale);
        assert_eq!(w.record(10_000 - WINDOW + 1), Arrival::First);
        assert_eq!(w.record(10_000 - WINDOW + 1), Arrival::Duplicate);
        // A bit set WINDOW numbers ago must not read as a duplicate after advancing.
        let mut w = SeqWindow::new();
        w.record(5);
        w.record(4000);
        w.record(WINDOW + 6);
        assert_eq!(w.record(WINDOW + 5), Arrival::First);
        assert_eq!(w.counts.reordered, 1);
    }

    #[test]
    fn compact_sequence_numbers_extend_across_the_32_bit_wrap() {
        let mut w = SeqWindow::new();
        w.next = (1 << 32) - 2;
        assert_eq!(w.extend(u32::MAX), Some((1 << 32) - 1));
        assert_eq!(w.extend(1), Some((1 << 32) + 1));
        assert_eq!(w.extend(u32::MAX - 10), Some((1 << 32) - 11));
        let w = SeqWindow::new();
        assert_eq!(w.extend(u32::MAX), None, "before the start");
    }

    #[test]
    fn compact_latency_survives_timestamp_wrap() {
        let mut traffic = Traffic::new(&FlowSpec::default(), &FrameSize::Fixed(64)).unwrap();
        let mut buf = vec![0u8; super::super::frame::MAX_WIRE];
        let ts = (5u64 << 32) - 100;
        let n = traffic.fill(
            &mut buf,
            &Stamp {
                stream: 0,
                queue: 0,
                seq: 0,
                ts,
            },
        );
        let mut rx = RxTracker::new(0, 1, 1);
        rx.record(&buf[..n], ts + 250);
        assert_eq!(rx.latency().stats().max_ns, 250);
    }

    #[test]
    fn foreign_and_unexpected_frames_are_kept_apart() {
        let mut traffic = Traffic::new(&FlowSpec::default(), &FrameSize::Fixed(128)).unwrap();
        let mut buf = vec![0u8; super::super::frame::MAX_WIRE];
        let mut rx = RxTracker::new(10, 2, 1);
        for (stream, queue) in [(10, 0), (11, 0), (9, 0), (12, 0), (10, 1)] {
            let n = traffic.fill(
                &mut buf,
                &Stamp {
                    stream,
                    queue,
                    seq: 0,
                    ts: 0,
                },
            );
            rx.record(&buf[..n], 0);
        }
        rx.record(&[0u8; 60], 0);
        let t = rx.totals();
        assert_eq!((t.received, t.unexpected, t.foreign), (2, 3, 1));
    }

    #[test]
    fn histogram_buckets_are_contiguous_and_narrow() {
        let mut prev_end = 0;
        for i in 0..BUCKETS {
            let (low, width) = Histogram::bucket(i);
            assert_eq!(low, prev_end, "bucket {i}");
            assert_eq!(Histogram::index(low), i);
            assert_eq!(Histogram::index(low + (width - 1)), i);
            if low >= SUB {
                assert!(width * SUB <= low);
            }
            prev_end = low.wrapping_add(width);
        }
        assert_eq!(prev_end, 0, "the last bucket ends at u64::MAX");
        let mut h = Histogram::default();
        h.record(u64::MAX);
        assert_eq!(h.percentile(50.0), u64::MAX);
    }

    #[test]
    fn percentiles_are_within_bucket_precision() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        let within = |got: u64, want: f64| (got as f64 - want).abs() <= want / 32.0;
        assert!(
            within(h.percentile(50.0), 50_000.0),
            "{}",
            h.percentile(50.0)
        );
        assert!(
            within(h.percentile(99.0), 99_000.0),
            "{}",
            h.percentile(99.0)
        );
        assert!(within(h.percentile(1.0), 1_000.0));
        let s = h.stats();
        assert_eq!((s.count, s.min_ns, s.max_ns), (100_000, 1, 100_000));
        assert!((s.mean_ns - 50_000.5).abs() < 1e-6);
        // A skewed distribution: 98 % fast, 2 % slow.
        let mut h = Histogram::default();
        for _ in 0..980 {
            h.record(2_000);
        }
        for _ in 0..20 {
            h.record(1_000_000);
        }
        assert!(within(h.percentile(50.0), 2_000.0));
        assert!(within(h.percentile(99.0), 1_000_000.0));
        assert_eq!(h.percentile(100.0), 1_000_000);
        assert_eq!(Histogram::default().stats(), LatencyStats::default());
    }
}
