//! The route tables the LPM and routing benchmarks load: random prefixes in the
//! length mix of real tables (an Internet IPv4 table of about 1M routes, an IPv6 table
//! of 100k), unique, in random order so that loading does not go length by length.

// Each benchmark uses the IPv4 or the IPv6 half, or both.
#![allow(dead_code)]

use std::collections::HashSet;

use super::{shuffle, Rng};

/// IPv4 routes per prefix length, out of 1,000,000 (/24 takes what the others leave):
/// the mix of an Internet routing table.
const MIX4: [(u8, u32); 24] = [
    (8, 20),
    (9, 10),
    (10, 30),
    (11, 60),
    (12, 150),
    (13, 300),
    (14, 550),
    (15, 900),
    (16, 13_000),
    (17, 8_000),
    (18, 14_000),
    (19, 30_000),
    (20, 45_000),
    (21, 50_000),
    (22, 100_000),
    (23, 95_000),
    (25, 3_000),
    (26, 6_000),
    (27, 7_000),
    (28, 7_000),
    (29, 13_000),
    (30, 7_000),
    (31, 500),
    (32, 4_480),
];

pub fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

pub fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// `total` unique random IPv4 routes in the mix of [`MIX4`], in random order, from
/// addresses in 1.0.0.0 to 223.255.255.255 that `keep` accepts.
pub fn routes4(rng: &mut Rng, total: u32, keep: impl Fn(u32) -> bool) -> Vec<(u32, u8)> {
    let scale = |n: u32| (u64::from(n) * u64::from(total) / 1_000_000) as u32;
    let mut counts: Vec<(u8, u32)> = MIX4.iter().map(|&(l, n)| (l, scale(n))).collect();
    let others: u32 = counts.iter().map(|c| c.1).sum();
    counts.push((24, total - others));
    counts.sort_unstable();
    let mut seen = HashSet::with_capacity(total as usize);
    let mut v = Vec::with_capacity(total as usize);
    for (len, n) in counts {
        let mut made = 0;
        while made < n {
            // 1.0.0.0 to 223.255.255.255: unicast, as in a real table.
            let a = 0x0100_0000 + ((u64::from(rng.u32()) * 0xdf00_0000) >> 32) as u32;
            if !keep(a) {
                continue;
            }
            if seen.insert((a & mask4(len), len)) {
                v.push((a & mask4(len), len));
                made += 1;
            }
        }
    }
    shuffle(rng, &mut v);
    v
}

/// IPv6 routes per prefix length, out of 100,000 (/48 takes what the others leave):
/// the mix of a large IPv6 table.
const MIX6: [(u8, u32); 33] = [
    (16, 50),
    (19, 100),
    (20, 150),
    (22, 200),
    (24, 250),
    (26, 250),
    (28, 500),
    (29, 2_500),
    (30, 500),
    (31, 500),
    (32, 15_000),
    (33, 1_000),
    (34, 1_000),
    (35, 1_000),
    (36, 3_000),
    (38, 1_000),
    (40, 6_000),
    (42, 1_000),
    (44, 7_000),
    (45, 1_000),
    (46, 2_000),
    (47, 2_000),
    (49, 500),
    (52, 1_000),
    (56, 3_000),
    (57, 500),
    (60, 1_000),
    (62, 500),
    (63, 500),
    (64, 10_000),
    (96, 200),
    (127, 100),
    (128, 1_000),
];

/// `total` unique IPv6 routes in the mix of [`MIX6`], in random order: inside (or, when
/// shorter, covering) 25,000 random /32 allocations in 2000::/3.
pub fn routes6(rng: &mut Rng, total: u32) -> Vec<(u128, u8)> {
    const ALLOCATIONS: u32 = 25_000;
    let scale = |n: u32| (u64::from(n) * u64::from(total) / 100_000) as u32;
    let mut counts: Vec<(u8, u32)> = MIX6.iter().map(|&(l, n)| (l, scale(n))).collect();
    let others: u32 = counts.iter().map(|c| c.1).sum();
    counts.push((48, total - others));
    let allocations: Vec<u128> = (0..ALLOCATIONS)
        .map(|_| ((0x2000 << 112) | (rng.u128() >> 3)) & mask6(32))
        .collect();
    let mut seen = HashSet::with_capacity(total as usize);
    let mut v = Vec::with_capacity(total as usize);
    for (len, n) in counts {
        let mut made = 0;
        while made < n {
            let p = (allocations[rng.below(ALLOCATIONS) as usize] | (rng.u128() & !mask6(32)))
                & mask6(len);
            if seen.insert((p, len)) {
                v.push((p, len));
                made += 1;
            }
        }
    }
    shuffle(rng, &mut v);
    v
}
