//! IPv4 longest-prefix match with a million routes: time to load them, cycles per
//! lookup of random addresses (single and bulk), time to delete them.
//!
//! The routes are unique random prefixes in 1.0.0.0-223.255.255.255 with the depth mix
//! of [`MIX`], shaped like a full Internet table: 59.5% /24, 35.5% /16-/23, 0.2%
//! shorter, 4.8% longer than /24 (nearly all in /24s of their own, so about 48,000
//! second-level groups).
//!
//! First a report in the manner of DPDK's `lpm_perf_autotest`, to set beside its
//! figures: 1024 rounds, each of 4096 fresh uniformly random 32-bit addresses, the
//! lookups of each round timed together; cycles are nanoseconds times the nominal clock
//! from /proc/cpuinfo (`LPM_MHZ` overrides it), which is what DPDK's rdtsc counts on a
//! CPU with an invariant TSC. Then criterion runs of the same lookups.
//!
//! `cargo bench -p vnf --bench lpm` (add `-- --quick` for a short criterion run).

mod common;

use std::time::{Duration, Instant};

use common::tables::routes4;
use common::{mhz, rounds, Rng, BATCH};
use criterion::Criterion;
use vnf::l3::lpm4::{DEFAULT_GROUPS, MAX_NEXT_HOP};
use vnf::l3::{Lpm4, NO_ROUTE};

const ROUTES: u32 = 1_000_000;
const ROUNDS: usize = 1024;

fn bulk<const N: usize>(t: &Lpm4, addrs: &[u32; BATCH]) -> u64 {
    let mut misses = 0;
    for c in addrs.chunks_exact(N) {
        let hops = t.lookup_bulk::<N>(c.try_into().expect("chunks of N"));
        misses += hops.iter().filter(|&&h| h == NO_ROUTE).count() as u64;
    }
    misses
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // Without --bench (cargo test --benches), a small smoke run.
    let (total, n_rounds) = if full { (ROUTES, ROUNDS) } else { (10_000, 4) };
    let mhz = mhz();
    let mut rng = Rng(0x1b4);
    let routes = routes4(&mut rng, total, |_| true);

    println!("lpm4: {} routes, clock {mhz:.0} MHz", routes.len());
    let mut depths = [0u32; 33];
    for r in &routes {
        depths[usize::from(r.1)] += 1;
    }
    print!("depth mix:");
    for (d, &n) in depths.iter().enumerate().filter(|x| *x.1 > 0) {
        print!(" /{d} {:.2}%", f64::from(n) * 100.0 / routes.len() as f64);
    }
    println!();

    let mut t = Lpm4::new(DEFAULT_GROUPS).expect("table");
    let start = Instant::now();
    for (i, &(p, l)) in routes.iter().enumerate() {
        t.insert(p, l, i as u32 & MAX_NEXT_HOP).expect("insert");
    }
    let load = start.elapsed();
    println!(
        "load into a new table: {:.1} ms for {} routes, {:.0} ns = {:.0} cycles per route; {} groups",
        load.as_secs_f64() * 1e3,
        routes.len(),
        load.as_nanos() as f64 / routes.len() as f64,
        load.as_nanos() as f64 * mhz / 1000.0 / routes.len() as f64,
        t.groups_used()
    );

    if let Ok(s) = std::fs::read_to_string("/proc/self/smaps_rollup") {
        if let Some(l) = s.lines().find(|l| l.starts_with("AnonHugePages")) {
            println!("{l} (transparent huge pages in use)");
        }
    }
    let report = |name: &str, (cycles, fails): (f64, f64)| {
        println!("{name}: {cycles:.1} cycles (fails = {fails:.1}%)");
    };
    let all = |t: &Lpm4, rng: &mut Rng, suffix: &str| {
        report(
            &format!("lookup{suffix}"),
            rounds(rng, n_rounds, mhz, &|r| r.u32(), |a| {
                a.iter().filter(|&&a| t.lookup(a).is_none()).count() as u64
            }),
        );
        report(
            &format!("lookup_bulk 8{suffix}"),
            rounds(rng, n_rounds, mhz, &|r| r.u32(), |a| bulk::<8>(t, a)),
        );
        report(
            &format!("lookup_bulk 16{suffix}"),
            rounds(rng, n_rounds, mhz, &|r| r.u32(), |a| bulk::<16>(t, a)),
        );
        report(
            &format!("lookup_bulk 32{suffix}"),
            rounds(rng, n_rounds, mhz, &|r| r.u32(), |a| bulk::<32>(t, a)),
        );
    };
    all(&t, &mut rng, "");
    // Every address matches something: the figures for a table without holes.
    t.insert(0, 0, 0).expect("default route");
    all(&t, &mut rng, " (with 0.0.0.0/0)");
    t.delete(0, 0).expect("default route");

    criterion_runs(&t, full);

    let start = Instant::now();
    for &(p, l) in &routes {
        t.delete(p, l).expect("delete");
    }
    let del = start.elapsed();
    println!(
        "delete: {:.1} ms, {:.0} cycles per route; {} routes and {} groups left",
        del.as_secs_f64() * 1e3,
        del.as_nanos() as f64 * mhz / 1000.0 / routes.len() as f64,
        t.len(),
        t.groups_used()
    );

    // The first load also paid for the kernel zeroing the table's pages as they were
    // first written; DPDK's figure does not (its tables are zeroed at creation).
    let start = Instant::now();
    for (i, &(p, l)) in routes.iter().enumerate() {
        t.insert(p, l, i as u32 & MAX_NEXT_HOP).expect("insert");
    }
    let load = start.elapsed();
    println!(
        "reload (pages already there): {:.1} ms, {:.0} ns = {:.0} cycles per route",
        load.as_secs_f64() * 1e3,
        load.as_nanos() as f64 / routes.len() as f64,
        load.as_nanos() as f64 * mhz / 1000.0 / routes.len() as f64,
    );
}

fn criterion_runs(t: &Lpm4, full: bool) {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let mut rng = Rng(0x5eed);
    // 4 MB of addresses: reading them streams, the table lookups miss.
    let addrs: Vec<u32> = (0..if full { 1 << 20 } else { BATCH })
        .map(|_| rng.u32())
        .collect();
    let mut g = c.benchmark_group("lpm4_1M_random");
    g.throughput(criterion::Throughput::Elements(BATCH as u64));
    let mut chunks = addrs.chunks_exact(BATCH).cycle();
    g.bench_function("single", |b| {
        b.iter(|| {
            let a = chunks.next().expect("cycle");
            a.iter().filter(|&&a| t.lookup(a).is_none()).count()
        })
    });
    let mut chunks = addrs.chunks_exact(BATCH).cycle();
    g.bench_function("bulk8", |b| {
        b.iter(|| bulk::<8>(t, chunks.next().expect("cycle").try_into().expect("batch")))
    });
    let mut chunks = addrs.chunks_exact(BATCH).cycle();
    g.bench_function("bulk16", |b| {
        b.iter(|| bulk::<16>(t, chunks.next().expect("cycle").try_into().expect("batch")))
    });
    g.finish();
    c.final_summary();
}
