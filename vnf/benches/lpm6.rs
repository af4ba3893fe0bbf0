//! IPv6 longest-prefix match with 100,000 routes: time to load them, cycles per lookup
//! (single and bulk), time to delete them.
//!
//! The routes are unique prefixes with the depth mix of [`MIX`], shaped like an IPv6
//! Internet table: mostly /32 to /48 (a third /48, 15% /32), a tenth /64, few /128
//! and few shorter than /32. They are placed the way address allocations are: 25,000
//! random /32s in 2000::/3 stand for the allocations, and every route lies in (or, for
//! those shorter than /32, covers) one of them, with random bits below the /32.
//!
//! The lookups are of addresses that hit: a random route's prefix with random host
//! bits, so most go three to five levels down, through about 157 MB of groups that no
//! cache holds; and, for contrast, of uniformly random addresses in 2000::/3, which nearly all
//! stop at the first level. Last, DPDK's `lpm6_perf_autotest` redone on our table
//! ([`dpdk_method`]), to set beside its figures.
//!
//! Like `benches/lpm.rs`: rounds of 4096 fresh addresses, the lookups of each round
//! timed together; cycles are nanoseconds times the nominal clock from /proc/cpuinfo
//! (`LPM_MHZ` overrides it), which is what DPDK's rdtsc counts on a CPU with an
//! invariant TSC. Then criterion runs of the same lookups.
//!
//! `cargo bench -p vnf --bench lpm6` (add `-- --quick` for a short criterion run).

mod common;

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use common::lpm::{criterion_runs, delete_report, load_report, lookup_rounds, print_mix};
use common::tables::{mask6, routes6};
use common::{mhz, print_huge_pages, Rng};
use vnf::l3::lpm6::DEFAULT_GROUPS;
use vnf::l3::{Lpm6, NO_ROUTE};

const ROUTES: u32 = 100_000;
const ROUNDS: usize = 1024;

/// A random address in 2000::/3.
fn global(rng: &mut Rng) -> u128 {
    (0x2000 << 112) | (rng.u128() >> 3)
}

/// DPDK's shape: `n` random prefixes of uniformly random length 1 to 128.
fn dpdk_routes(rng: &mut Rng, n: usize) -> Vec<(u128, u8)> {
    let mut seen = HashSet::new();
    let mut v = Vec::new();
    while v.len() < n {
        let len = 1 + rng.below(128) as u8;
        let p = rng.u128() & mask6(len);
        if seen.insert((p, len)) {
            v.push((p, len));
        }
    }
    v
}

/// An address inside a random one of `routes`.
fn inside(routes: &[(u128, u8)], rng: &mut Rng) -> u128 {
    let (p, l) = routes[rng.below(routes.len() as u32) as usize];
    p | (rng.u128() & !mask6(l))
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // Without --bench (cargo test --benches), a small smoke run.
    let (total, n_rounds) = if full { (ROUTES, ROUNDS) } else { (5_000, 4) };
    let mhz = mhz();
    let mut rng = Rng(0x1b6);
    let routes = routes6(&mut rng, total);

    println!("lpm6: {} routes, clock {mhz:.0} MHz", routes.len());
    print_mix(&routes);

    let mut t = Lpm6::new(DEFAULT_GROUPS).expect("table");
    load_report(&mut t, &routes, mhz, "load into a new table");
    print_huge_pages("");
    let hit = |rng: &mut Rng| inside(&routes, rng);
    lookup_rounds(&t, &mut rng, n_rounds, mhz, &hit, " (inside routes)");
    lookup_rounds(
        &t,
        &mut rng,
        n_rounds,
        mhz,
        &global,
        " (random in 2000::/3)",
    );

    criterion_runs(&t, "lpm6_100k_inside_routes", full, hit);

    delete_report(&mut t, &routes, mhz);
    // The first load also paid for the kernel zeroing the pages as they were first
    // written; DPDK's figure does not (its tables are zeroed at creation).
    load_report(&mut t, &routes, mhz, "reload (pages already there)");
    drop(t);

    dpdk_method(&mut rng, if full { 256 } else { 2 }, mhz);
}

/// DPDK's own test, redone on our table: 1,000 random prefixes of uniformly random
/// length 1 to 128 (its fixed table has that shape), and 100,000 addresses made the way
/// its test makes them (400 in a row inside each route, so only the first 250 routes are
/// used, with random host bits), looked up in the same order `iterations` times. The
/// working set is small and the neighbouring lookups share their path, so this measures
/// the lookup code with warm caches, not memory latency.
fn dpdk_method(rng: &mut Rng, iterations: usize, mhz: f64) {
    const IPS: usize = 100_000;
    let small = dpdk_routes(rng, 1000);
    let ips: Vec<u128> = (0..IPS)
        .map(|i| {
            let (p, l) = small[i / 400 % small.len()];
            p | (rng.u128() & !mask6(l))
        })
        .collect();
    println!("dpdk-method: 1000 random prefixes, length uniform in 1..=128, {IPS} addresses");
    let mut t = Lpm6::new(1 << 16).expect("table");
    load_report(&mut t, &small, mhz, "load (dpdk-method)");
    let time = |f: &mut dyn FnMut() -> u64| {
        let mut misses = 0;
        let start = Instant::now();
        for _ in 0..iterations {
            misses += f();
        }
        let n = (iterations * IPS) as f64;
        (
            start.elapsed().as_nanos() as f64 * mhz / 1000.0 / n,
            misses as f64 * 100.0 / n,
        )
    };
    let report = |name: &str, (cycles, fails): (f64, f64)| {
        println!("{name} (dpdk-method): {cycles:.1} cycles (fails = {fails:.1}%)");
    };
    report(
        "lookup",
        time(&mut || {
            black_box(&ips)
                .iter()
                .filter(|&&a| t.lookup(a).is_none())
                .count() as u64
        }),
    );
    let mut out = vec![0; IPS];
    report(
        "lookup_many (bulk 16)",
        time(&mut || {
            t.table().lookup_many(black_box(&ips), &mut out);
            out.iter().filter(|&&h| h == NO_ROUTE).count() as u64
        }),
    );
    let start = Instant::now();
    for &(p, l) in &small {
        t.delete(p, l).expect("delete");
    }
    println!(
        "delete (dpdk-method): {:.0} cycles per route",
        start.elapsed().as_nanos() as f64 * mhz / 1000.0 / small.len() as f64
    );
}
