//! Helpers shared by unit tests and benchmarks; not part of the switch.

/// SplitMix64, a small deterministic generator: a failing test or a benchmark names
/// its seed and is reproduced exactly.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn u32(&mut self) -> u32 {
        (self.u64() >> 32) as u32
    }

    pub fn u128(&mut self) -> u128 {
        (u128::from(self.u64()) << 64) | u128::from(self.u64())
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.u64() >> 32) * u64::from(n)) >> 32) as u32
    }
}
