//! A token bucket, one per worker, to bound the ICMP errors the router generates: a
//! flood of packets that each deserve an error must not turn into a flood of errors
//! (RFC 4443 2.4(f) requires this for ICMPv6; RFC 1812 4.3.2.8 allows it for IPv4).

/// As Linux's `net.ipv4.icmp_msgs_per_sec`.
pub const ICMP_RATE: u32 = 1000;
/// As Linux's `net.ipv4.icmp_msgs_burst`.
pub const ICMP_BURST: u32 = 50;

/// Tokens are counted in thousandths: `rate` tokens per second is exactly `rate`
/// thousandths per millisecond, so refilling from a millisecond clock needs no
/// division and loses no fraction.
const MILLI: u64 = 1000;

/// Token bucket: `rate` tokens per second up to `burst`; per worker, for generated ICMP.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Refill per millisecond, in thousandths of a token.
    rate: u64,
    /// Capacity in thousandths of a token: `burst` whole tokens plus the largest
    /// fraction, so that the fraction accumulating towards the next token survives a
    /// full bucket (and `burst` in a row is still the most ever allowed).
    cap: u64,
    tokens: u64,
    last: u64,
}

impl TokenBucket {
    /// A full bucket: the first `burst` calls are allowed at once.
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        let whole = u64::from(burst) * MILLI;
        TokenBucket {
            rate: u64::from(rate),
            cap: whole + MILLI - 1,
            tokens: whole,
            last: 0,
        }
    }

    /// Takes a token if there is one. `now_ms` is the caller's coarse clock.
    #[inline]
    pub fn allow(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.tokens >= MILLI {
            self.tokens -= MILLI;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, now_ms: u64) {
        // A clock that went backwards (or is first read) only moves the reference
        // point: at worst the bucket refills to `burst` once more, never beyond.
        let elapsed = now_ms.saturating_sub(self.last);
        self.last = now_ms;
        // Saturating: after a long idle the product can overflow, and a full bucket is
        // the right answer anyway.
        let added = elapsed.saturating_mul(self.rate);
        self.tokens = self.tokens.saturating_add(added).min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(b: &mut TokenBucket, now: u64, tries: u32) -> u32 {
        (0..tries).filter(|_| b.allow(now)).count() as u32
    }

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(ICMP_RATE, ICMP_BURST);
        assert_eq!(allowed(&mut b, 1_000, 200), ICMP_BURST);
        // 1000 per second is one per millisecond.
        assert_eq!(allowed(&mut b, 1_001, 10), 1);
        assert_eq!(allowed(&mut b, 1_011, 100), 10);
        // Sustained: one second of steady demand gets exactly `rate`.
        let mut total = 0;
        for t in 1_012..2_012 {
            total += allowed(&mut b, t, 5);
        }
        assert_eq!(total, ICMP_RATE);
    }

    #[test]
    fn fractional_rates_accumulate() {
        // Three per second: a token every 333.3 ms, with the fraction carried over.
        let mut b = TokenBucket::new(3, 1);
        assert!(b.allow(0));
        let mut got = 0;
        for t in 1..=10_000 {
            got += u32::from(b.allow(t));
        }
        assert_eq!(got, 30);
    }

    #[test]
    fn refill_stops_at_burst() {
        let mut b = TokenBucket::new(1000, 5);
        assert_eq!(allowed(&mut b, 0, 100), 5);
        assert_eq!(allowed(&mut b, 60_000, 100), 5);
    }

    #[test]
    fn no_overflow_on_long_idle() {
        let mut b = TokenBucket::new(u32::MAX, u32::MAX);
        assert!(b.allow(0));
        assert!(b.allow(u64::MAX));
        assert!(b.allow(u64::MAX));
        let mut c = TokenBucket::new(ICMP_RATE, ICMP_BURST);
        assert_eq!(allowed(&mut c, 5, 100), ICMP_BURST);
        assert_eq!(allowed(&mut c, u64::MAX, 100), ICMP_BURST);
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let mut b = TokenBucket::new(10, 2);
        assert_eq!(allowed(&mut b, 1_000_000, 10), 2);
        // Backwards: no tokens appear from nowhere.
        assert_eq!(allowed(&mut b, 5, 10), 0);
        // And the clock resumes from the new reading: 100 ms later is one token.
        assert_eq!(allowed(&mut b, 105, 10), 1);
        assert_eq!(allowed(&mut b, 205, 10), 1);
    }

    #[test]
    fn zero_rate_or_burst_allows_accordingly() {
        let mut none = TokenBucket::new(1000, 0);
        assert_eq!(allowed(&mut none, 10_000, 10), 0);
        let mut once = TokenBucket::new(0, 3);
        assert_eq!(allowed(&mut once, 0, 10), 3);
        assert_eq!(allowed(&mut once, 1_000_000, 10), 0);
    }
}
