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

use common::lpm::{criterion_runs, delete_report, load, load_report, lookup_rounds, print_mix};
use common::tables::routes4;
use common::{mhz, print_huge_pages, Rng};
use vnf::l3::lpm4::DEFAULT_GROUPS;
use vnf::l3::Lpm4;

const ROUTES: u32 = 1_000_000;
const ROUNDS: usize = 1024;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // Without --bench (cargo test --benches), a small smoke run.
    let (total, n_rounds) = if full { (ROUTES, ROUNDS) } else { (10_000, 4) };
    let mhz = mhz();
    let mut rng = Rng(0x1b4);
    let routes = routes4(&mut rng, total, |_| true);

    println!("lpm4: {} routes, clock {mhz:.0} MHz", routes.len());
    print_mix(&routes);

    let mut t = Lpm4::new(DEFAULT_GROUPS).expect("table");
    load_report(&mut t, &routes, mhz, "load into a new table");
    print_huge_pages("");
    let random = |r: &mut Rng| r.u32();
    lookup_rounds(&t, &mut rng, n_rounds, mhz, &random, "");
    // Every address matches something: the figures for a table without holes.
    t.insert(0, 0, 0).expect("default route");
    lookup_rounds(&t, &mut rng, n_rounds, mhz, &random, " (with 0.0.0.0/0)");
    t.delete(0, 0).expect("default route");

    criterion_runs(&t, "lpm4_1M_random", full, random);

    delete_report(&mut t, &routes, mhz);
    // The first load also paid for the kernel zeroing the table's pages as they were
    // first written; DPDK's figure does not (its tables are zeroed at creation).
    let load = load(&mut t, &routes);
    println!(
        "reload (pages already there): {:.1} ms, {:.0} ns = {:.0} cycles per route",
        load.as_secs_f64() * 1e3,
        load.as_nanos() as f64 / routes.len() as f64,
        load.as_nanos() as f64 * mhz / 1000.0 / routes.len() as f64,
    );
}
