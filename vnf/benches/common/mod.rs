//! What the benchmarks share: random input, route tables, the switch's rings and timed
//! batches, the LPM benchmarks' timing, criterion's settings, the nominal clock.

use std::time::Duration;

use criterion::Criterion;

pub mod lpm;
pub mod rings;
pub mod tables;

pub use vnf::testing::SplitMix64 as Rng;

/// Criterion's settings for every benchmark here: short, so that a full run of a
/// benchmark file stays within minutes.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

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

/// Prints the kernel's `AnonHugePages` line for this process after `prefix`: the
/// tables' figures depend on whether their memory got huge pages.
pub fn print_huge_pages(prefix: &str) {
    if let Ok(s) = std::fs::read_to_string("/proc/self/smaps_rollup") {
        if let Some(l) = s.lines().find(|l| l.starts_with("AnonHugePages")) {
            println!("{prefix}{l} (transparent huge pages in use)");
        }
    }
}

/// Fisher-Yates.
pub fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u32 + 1) as usize);
    }
}
