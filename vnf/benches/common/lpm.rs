//! What the LPM benchmarks (lpm.rs, lpm6.rs) do alike to the IPv4 and the IPv6 table:
//! loading and deleting the routes, timed; rounds of lookups timed in the manner of
//! DPDK's perf autotests; criterion runs of single and bulk lookups.

// The switch benchmarks use none of it.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Throughput;
use vnf::l3::{lpm4, lpm6, Lpm4, Lpm6, LpmError, NO_ROUTE};

use super::{config, Rng};

/// Addresses per timed round, as in DPDK's lpm_perf_autotest.
pub const BATCH: usize = 4096;

/// The writer's methods the benchmarks use, so that one timing loop serves both tables.
pub trait Table {
    type Addr: Copy + Default;
    const MAX_NEXT_HOP: u32;
    fn insert(&mut self, prefix: Self::Addr, len: u8, hop: u32) -> Result<Option<u32>, LpmError>;
    fn delete(&mut self, prefix: Self::Addr, len: u8) -> Result<u32, LpmError>;
    fn lookup(&self, addr: Self::Addr) -> Option<u32>;
    fn lookup_bulk<const N: usize>(&self, addrs: &[Self::Addr; N]) -> [u32; N];
    fn routes(&self) -> usize;
    fn groups_used(&self) -> u32;
}

// `<$lpm>::name` is the table's own (inherent) method, which path resolution prefers.
macro_rules! table {
    ($lpm:ty, $addr:ty, $max:expr) => {
        impl Table for $lpm {
            type Addr = $addr;
            const MAX_NEXT_HOP: u32 = $max;

            fn insert(
                &mut self,
                prefix: $addr,
                len: u8,
                hop: u32,
            ) -> Result<Option<u32>, LpmError> {
                <$lpm>::insert(self, prefix, len, hop)
            }

            fn delete(&mut self, prefix: $addr, len: u8) -> Result<u32, LpmError> {
                <$lpm>::delete(self, prefix, len)
            }

            #[inline]
            fn lookup(&self, addr: $addr) -> Option<u32> {
                <$lpm>::lookup(self, addr)
            }

            #[inline]
            fn lookup_bulk<const N: usize>(&self, addrs: &[$addr; N]) -> [u32; N] {
                <$lpm>::lookup_bulk(self, addrs)
            }

            fn routes(&self) -> usize {
                <$lpm>::len(self)
            }

            fn groups_used(&self) -> u32 {
                <$lpm>::groups_used(self)
            }
        }
    };
}

table!(Lpm4, u32, lpm4::MAX_NEXT_HOP);
table!(Lpm6, u128, lpm6::MAX_NEXT_HOP);

/// Inserts `routes` into `t`, each with its index (cut to the table's limit) for next
/// hop; returns how long it took.
pub fn load<T: Table>(t: &mut T, routes: &[(T::Addr, u8)]) -> Duration {
    let start = Instant::now();
    for (i, &(p, l)) in routes.iter().enumerate() {
        t.insert(p, l, i as u32 & T::MAX_NEXT_HOP).expect("insert");
    }
    start.elapsed()
}

/// [`load`], and a line `what: ...` of its time and the groups the table then uses.
pub fn load_report<T: Table>(t: &mut T, routes: &[(T::Addr, u8)], mhz: f64, what: &str) {
    let load = load(t, routes);
    println!(
        "{what}: {:.1} ms for {} routes, {:.0} ns = {:.0} cycles per route; {} groups",
        load.as_secs_f64() * 1e3,
        routes.len(),
        load.as_nanos() as f64 / routes.len() as f64,
        load.as_nanos() as f64 * mhz / 1000.0 / routes.len() as f64,
        t.groups_used()
    );
}

/// Deletes `routes` from `t`, timed; the line printed ends with what is left, which
/// should be nothing.
pub fn delete_report<T: Table>(t: &mut T, routes: &[(T::Addr, u8)], mhz: f64) {
    let start = Instant::now();
    for &(p, l) in routes {
        t.delete(p, l).expect("delete");
    }
    let del = start.elapsed();
    println!(
        "delete: {:.1} ms, {:.0} cycles per route; {} routes and {} groups left",
        del.as_secs_f64() * 1e3,
        del.as_nanos() as f64 * mhz / 1000.0 / routes.len() as f64,
        t.routes(),
        t.groups_used()
    );
}

/// Prints the share of each prefix length in `routes`.
pub fn print_mix<A>(routes: &[(A, u8)]) {
    let mut depths = [0u32; 129];
    for r in routes {
        depths[usize::from(r.1)] += 1;
    }
    print!("depth mix:");
    for (d, &n) in depths.iter().enumerate().filter(|x| *x.1 > 0) {
        print!(" /{d} {:.2}%", f64::from(n) * 100.0 / routes.len() as f64);
    }
    println!();
}

/// Misses of `addrs` looked up `N` at a time.
pub fn bulk<T: Table, const N: usize>(t: &T, addrs: &[T::Addr; BATCH]) -> u64 {
    let mut misses = 0;
    for c in addrs.chunks_exact(N) {
        let hops = t.lookup_bulk::<N>(c.try_into().expect("chunks of N"));
        misses += hops.iter().filter(|&&h| h == NO_ROUTE).count() as u64;
    }
    misses
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

/// [`rounds`] of single lookups and of bulk lookups by 8, 16 and 32, a line each:
/// `lookup{suffix}: ... cycles (fails = ...%)`.
pub fn lookup_rounds<T: Table>(
    t: &T,
    rng: &mut Rng,
    n_rounds: usize,
    mhz: f64,
    addr: &dyn Fn(&mut Rng) -> T::Addr,
    suffix: &str,
) {
    let report = |name: &str, (cycles, fails): (f64, f64)| {
        println!("{name}{suffix}: {cycles:.1} cycles (fails = {fails:.1}%)");
    };
    report(
        "lookup",
        rounds(rng, n_rounds, mhz, addr, |a| {
            a.iter().filter(|&&a| t.lookup(a).is_none()).count() as u64
        }),
    );
    report(
        "lookup_bulk 8",
        rounds(rng, n_rounds, mhz, addr, |a| bulk::<T, 8>(t, a)),
    );
    report(
        "lookup_bulk 16",
        rounds(rng, n_rounds, mhz, addr, |a| bulk::<T, 16>(t, a)),
    );
    report(
        "lookup_bulk 32",
        rounds(rng, n_rounds, mhz, addr, |a| bulk::<T, 32>(t, a)),
    );
}

/// Criterion's group `group`: single, bulk8 and bulk16 lookups of `BATCH` addresses at
/// a time, from a list of addresses made by `addr` (a million in a full run: more than
/// the caches hold, so reading them streams and the table lookups miss).
pub fn criterion_runs<T: Table>(
    t: &T,
    group: &str,
    full: bool,
    mut addr: impl FnMut(&mut Rng) -> T::Addr,
) {
    let mut c = config().configure_from_args();
    let mut rng = Rng(0x5eed);
    let addrs: Vec<T::Addr> = (0..if full { 1 << 20 } else { BATCH })
        .map(|_| addr(&mut rng))
        .collect();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut chunks = addrs.chunks_exact(BATCH).cycle();
    g.bench_function("single", |b| {
        b.iter(|| {
            let a = chunks.next().expect("cycle");
            a.iter().filter(|&&a| t.lookup(a).is_none()).count()
        })
    });
    let mut chunks = addrs.chunks_exact(BATCH).cycle();
    g.bench_function("bulk8", |b| {
        b.iter(|| bulk::<T, 8>(t, chunks.next().expect("cycle").try_into().expect("batch")))
    });
    let mut chunks = addrs.chunks_exact(BATCH).cycle();
    g.bench_function("bulk16", |b| {
        b.iter(|| bulk::<T, 16>(t, chunks.next().expect("cycle").try_into().expect("batch")))
    });
    g.finish();
    c.final_summary();
}
