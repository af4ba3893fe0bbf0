//! Clocks, line-rate arithmetic and pacing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Ethernet preamble, start delimiter and minimum inter-frame gap: on the wire every frame
/// costs 20 bytes more than its size.
pub const WIRE_OVERHEAD: f64 = 20.0;
pub const DEFAULT_LINE_BPS: f64 = 10e9;

/// Frames per second of a full line: bps / ((frame + 20) × 8).
pub fn line_pps(line_bps: f64, frame_size: f64) -> f64 {
    line_bps / ((frame_size + WIRE_OVERHEAD) * 8.0)
}

/// An offered rate, in frames per second or as a share of the line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    Pps(f64),
    PercentOfLine(f64),
}

impl Rate {
    pub fn pps(&self, line_bps: f64, frame_size: f64) -> f64 {
        match *self {
            Rate::Pps(p) => p,
            Rate::PercentOfLine(pct) => line_pps(line_bps, frame_size) * pct / 100.0,
        }
    }
}

impl std::str::FromStr for Rate {
    type Err = String;
    /// "50%" or "1000000" (pps), "1.5M", "200k".
    fn from_str(s: &str) -> Result<Rate, String> {
        let bad = || format!("bad rate {s:?}: want e.g. 50% or 1.5M (pps)");
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.parse().map_err(|_| bad())?;
            return if v > 0.0 && v <= 100.0 {
                Ok(Rate::PercentOfLine(v))
            } else {
                Err(bad())
            };
        }
        let (num, mult) = match s.as_bytes().last() {
            Some(b'k' | b'K') => (&s[..s.len() - 1], 1e3),
            Some(b'm' | b'M') => (&s[..s.len() - 1], 1e6),
            Some(b'g' | b'G') => (&s[..s.len() - 1], 1e9),
            _ => (s, 1.0),
        };
        let v: f64 = num.parse().map_err(|_| bad())?;
        if v > 0.0 && v.is_finite() {
            Ok(Rate::Pps(v * mult))
        } else {
            Err(bad())
        }
    }
}

/// Time for the generator; tests substitute a virtual clock to make trials exact.
pub trait Clock {
    /// Nanoseconds, monotonic.
    fn now_ns(&self) -> u64;
    /// Called when nothing is due before `until_ns`. May return early: callers poll.
    fn pause(&self, until_ns: u64);
}

/// CLOCK_MONOTONIC, so timestamps agree with a receiver in another process.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MonotonicClock;

/// Sleeping is only worth it when far ahead: timer slack makes short sleeps overshoot.
const SLEEP_THRESHOLD_NS: u64 = 200_000;
const SLEEP_MARGIN_NS: u64 = 100_000;

impl Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        monotonic_ns()
    }

    fn pause(&self, until_ns: u64) {
        let now = monotonic_ns();
        if until_ns > now + SLEEP_THRESHOLD_NS {
            std::thread::sleep(Duration::from_nanos(until_ns - now - SLEEP_MARGIN_NS));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A clock that moves only when paused; shared by clones (a test port can read it).
#[derive(Clone, Debug, Default)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    pub fn new(start_ns: u64) -> VirtualClock {
        VirtualClock(Arc::new(AtomicU64::new(start_ns)))
    }
}

impl Clock for VirtualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn pause(&self, until_ns: u64) {
        self.0.fetch_max(until_ns, Ordering::Relaxed);
    }
}

/// Decides how many frames may go now. Frame k is due at start + k / pps; a caller that
/// fell behind may catch up by at most one burst, so a stall (preemption, a full ring)
/// lowers the achieved rate instead of turning into a flood at port speed.
#[derive(Clone, Debug)]
pub struct Pacer {
    start_ns: u64,
    ns_per_frame: f64,
    burst: u64,
    sent: u64,
}

impl Pacer {
    pub fn new(pps: f64, burst: usize, start_ns: u64) -> Pacer {
        Pacer {
            start_ns,
            ns_per_frame: 1e9 / pps.max(1e-3),
            burst: burst.max(1) as u64,
            sent: 0,
        }
    }

    fn due_ns(&self, k: u64) -> u64 {
        self.start_ns + (k as f64 * self.ns_per_frame) as u64
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> u64 {
        self.due_ns(self.sent)
    }

    /// Frames due by `now`, at most one burst.
    pub fn allowed(&mut self, now: u64) -> usize {
        let lag = now.saturating_sub(self.next_due());
        let max_lag = (self.burst as f64 * self.ns_per_frame) as u64;
        if lag > max_lag {
            self.start_ns += lag - max_lag;
        }
        // Behind schedule (always, at --rate max): the whole burst is due, and that is
        // one deadline to compute instead of one per frame.
        if self.due_ns(self.sent + self.burst - 1) <= now {
            return self.burst as usize;
        }
        let mut n = 0;
        while n < self.burst && self.due_ns(self.sent + n) <= now {
            n += 1;
        }
        n as usize
    }

    pub fn sent(&mut self, n: usize) {
        self.sent += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_rate_arithmetic() {
        // 10 GbE at 64 bytes: the classic 14.88 Mpps.
        assert!((line_pps(10e9, 64.0) - 14_880_952.38).abs() < 0.01);
        assert!((line_pps(10e9, 1518.0) - 812_743.82).abs() < 0.01);
        let half = Rate::PercentOfLine(50.0).pps(1e9, 64.0);
        assert!((half - 744_047.62).abs() < 0.01);
        assert_eq!(Rate::Pps(5.0).pps(1e9, 64.0), 5.0);
        assert_eq!("50%".parse::<Rate>().unwrap(), Rate::PercentOfLine(50.0));
        assert_eq!("1.5M".parse::<Rate>().unwrap(), Rate::Pps(1.5e6));
        assert_eq!("200k".parse::<Rate>().unwrap(), Rate::Pps(200e3));
        assert!("0%".parse::<Rate>().is_err());
        assert!("101%".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }

    #[test]
    fn pacer_spaces_frames_and_bursts_when_late() {
        // 1 Mpps: a frame every 1000 ns.
        let mut p = Pacer::new(1e6, 4, 10_000);
        assert_eq!(p.allowed(9_999), 0);
        assert_eq!(p.allowed(10_000), 1);
        p.sent(1);
        assert_eq!(p.next_due(), 11_000);
        assert_eq!(p.allowed(10_999), 0);
        assert_eq!(p.allowed(12_500), 2);
        p.sent(2);
        assert_eq!(p.allowed(13_000), 1);
        p.sent(1);
        // Far behind: one burst now, and the schedule restarts from there.
        assert_eq!(p.allowed(1_000_000), 4);
        p.sent(4);
        assert_eq!(p.allowed(1_000_000), 1);
        p.sent(1);
        assert_eq!(p.next_due(), 1_001_000);
        assert_eq!(p.allowed(1_000_999), 0);
    }

    #[test]
    fn pacer_over_a_long_run_hits_the_rate_exactly() {
        let clock = VirtualClock::new(0);
        let mut p = Pacer::new(3e6, 32, 0);
        let mut sent = 0;
        while sent < 3_000_000 {
            let n = p.allowed(clock.now_ns()).min(3_000_000 - sent);
            if n == 0 {
                clock.pause(p.next_due());
            }
            p.sent(n);
            sent += n;
        }
        // The last of 3M frames at 3 Mpps is due just before one second.
        let t = clock.now_ns();
        assert!((999_999_000..=1_000_000_000).contains(&t), "{t}");
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let c = MonotonicClock;
        let a = c.now_ns();
        c.pause(a + 1_000_000);
        let b = c.now_ns();
        assert!(b > a);
    }
}
