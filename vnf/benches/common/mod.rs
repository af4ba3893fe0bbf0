//! What the benchmarks share: random input, route tables, the switch's rings, timing
//! rounds, the nominal clock.

use std::hint::black_box;
use std::time::{Duration, Instant};

pub mod rings;
pub mod tables;

pub use vnf::testing::SplitMix64 as Rng;

/// Addresses per timed round, as in DPDK's lpm_perf_autotest.
pub const BATCH: usize = 4096;

/// The nominal clock in MHz: `LPM_MHZ`, else the first "cpu MHz" of /proc/cpuinfo.
pub fn mhz() -> f64 {
    if let Some(m) = std::env::var("LPM_MHZ").ok().and_then(|s| s.parse().ok()) {
        return m;
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(1000.0)
}

/// Fisher-Yates.
pub fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u32 + 1) as usize);
    }
}

/// `rounds` rounds of `BATCH` fresh addresses from `addr`, each round timed through `f`
/// (which returns its misses); returns (cycles per lookup, % misses).
pub fn rounds<A: Copy + Default>(
    rng: &mut Rng,
    rounds: usize,
    mhz: f64,
    addr: &dyn Fn(&mut Rng) -> A,
    mut f: impl FnMut(&[A; BATCH]) -> u64,
) -> (f64, f64) {
    let mut addrs = Box::new([A::default(); BATCH]);
    let mut time = Duration::ZERO;
    let mut misses = 0;
    for _ in 0..rounds {
        for a in addrs.iter_mut() {
            *a = addr(rng);
        }
        let start = Instant::now();
        misses += f(black_box(&addrs));
        time += start.elapsed();
    }
    let n = (rounds * BATCH) as f64;
    (
        time.as_nanos() as f64 * mhz / 1000.0 / n,
        misses as f64 * 100.0 / n,
    )
}
