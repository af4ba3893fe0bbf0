//! Per-frame cost of the router against the cross-connect, on the same rings and in the
//! same run as `benches/bridge.rs` measures the bridge: each measured batch is 64 frames
//! of 64 bytes dequeued from port `a`'s transmit ring, passed through the stage, and
//! enqueued on port `b`'s receive ring.
//!
//! - `xconnect`: the batch goes to the peer port as it is (the baseline, as in bridge.rs).
//! - `route_one_flow`: `a` and `b` are routed ports; every frame is IPv4 UDP to one host
//!   on `b`'s subnet, which has a static neighbor entry. The FIB holds a million random
//!   routes besides the connected ones, shaped like an Internet table (as in
//!   `benches/lpm.rs`), so the tables are their real size (the routing issue asks for
//!   at least 0.85 of `xconnect`).
//! - `route_random_dst/1M`: the same FIB; every frame to a random address inside a
//!   random one of the million routes, which lead to four gateways on `b` (static
//!   neighbors): a first-level lookup that misses the caches for nearly every frame.
//! - `route_random_dst_prelookup/1M` (an experiment, not in the issue): as
//!   `route_random_dst`, with the batch's destinations looked up by `lookup_bulk` before
//!   the routing stage runs, so that their cache misses overlap: what a bulk FIB stage
//!   in `Ctx::route_batch` could gain.
//! - `route_v6_one_flow`: as `route_one_flow` for IPv6, with 100,000 IPv6 routes shaped
//!   like an IPv6 Internet table (as in `benches/lpm6.rs`).
//! - `route_while_updating`: `route_one_flow` while another thread deletes and
//!   re-inserts random routes of the million through [`Router::update`] (the FIB
//!   writer, then a grace period when groups were retired) as fast as it can; asserts
//!   that every batch is forwarded completely, and prints the update rate.
//!
//! Then `fib_lookup_64`, the flow cache experiment (NetBSD's ipflow, a per-worker
//! cache in front of the FIB; it is kept in the router only if it helps): the IPv4
//! next-hop ids of a batch of 64 destinations, from the same million-route table, by
//! `Lpm4Table::lookup` per address, by `lookup_bulk::<16>`, by the run shortcut the
//! routing stage uses (reuse the previous frame's lookup for the same destination), and
//! by a 4096-entry direct-mapped flow cache ([`FlowCache`], in this file only), for
//! one flow, a thousand flows and uniformly random destinations.
//!
//! A [`DriverRing`] plays the guests, outside the timed region; everything runs on one
//! core with the rings hot, so the figures are the switch's own cost per frame (the
//! updater of `route_while_updating` needs a second core). The setup prints how long
//! the routes take to load, and the end a summary: each benchmark's median time per
//! batch over criterion's samples and the ratios to `xconnect` (criterion's own
//! estimates, above it, are the authoritative figures).
//!
//! `cargo bench -p vnf --bench route` (add `-- --quick` for a short run).

// This file uses the route tables, the rings, `Rng`, `mhz` and criterion's settings; the
// rest is for the LPM benchmarks.
#[allow(dead_code)]
mod common;

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::rings::{self, LEN, N};
use common::tables::{mask4, routes4, routes6};
use common::{config, mhz, print_huge_pages, Rng};
use criterion::measurement::WallTime;
use criterion::{Bencher, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use packet::{Batch, Pool};

use vnf::l2::{Outputs, L2};
use vnf::l3::forward::{v4_of_key, Ctx, L3Counters, L3Worker, Tx};
use vnf::l3::router::NextHop;
use vnf::l3::{checksum, ipv4, ipv6, Lpm4Table, Router, NO_ROUTE};

// ---------------------------------------------------------------------------------
// The rings (benches/common/rings.rs) and the worker's state around them.

/// Port `a`'s transmit ring and a receive ring for `a` and `b`; `local` is the routing
/// stage's input, as the worker's `Local::scratch`.
///
/// The frames in the transmit buffers serve batch after batch: dequeue copies each into a
/// packet buffer, and the router decrements the TTL and rewrites the Ethernet header of
/// that copy only. So they go out with TTL 64 and a valid checksum every time, without
/// any per-batch preparation in either the routed or the cross-connected runs (the
/// comparison stays fair); only `route_random_dst` rewrites them, untimed, for new
/// destinations (as bridge.rs's random benchmark).
type Rig = rings::Rig<Batch>;

impl Rig {
    /// A rig on which every batch must arrive whole on `b`. `outputs`: the worker's
    /// output batches, one per port and virtual port.
    fn routed(outputs: usize) -> Rig {
        Rig {
            whole_to: Some(1),
            ..Rig::new(2, outputs)
        }
    }

    /// The experiment of `route_random_dst_prelookup`: looks up the IPv4 destinations
    /// of the whole batch with `lookup_bulk` first, so that their first-level loads
    /// overlap instead of each frame waiting for its own (the answers are thrown away;
    /// the routing stage then finds the entries in the cache).
    fn prelookup(&mut self, t: &Lpm4Table) {
        let mut dsts = [0u32; N as usize];
        for (d, p) in dsts.iter_mut().zip(self.batch.iter()) {
            let ip = &p.data()[14 + 16..14 + 20];
            *d = u32::from_be_bytes(ip.try_into().expect("4 bytes"));
        }
        black_box(t.lookup_bulk(&dsts));
    }

    /// What the worker does with a batch from a routed port (`Worker::poll_once` for
    /// `Fwd::Route`, its `route` and `finish`, and the end of its poll loop).
    fn route(&mut self, s: &mut Stage<'_>, ri: u16) {
        // Split borrows: the flush closure takes the receive queues.
        let Rig {
            rx,
            pool,
            batch,
            local: scratch,
            out,
            c,
            ..
        } = self;
        std::mem::swap(batch, scratch);
        let mut flush =
            |p: u16, b: &mut Batch, pool: &mut Pool| rx[p as usize].q.enqueue(b, pool, c);
        let tx = Tx {
            pool: &mut *pool,
            out: &mut *out,
            flush: &mut flush,
        };
        Ctx::new(s.r, tx, &mut s.w, &s.counters).route_batch(ri, scratch);
        // `finish`: nothing goes to a virtual port or a bridge from routed ports, but
        // the worker looks, so the benchmark looks too.
        for vp in s.base..out.batches.len() {
            assert!(out.batches[vp].is_empty(), "frames for virtual port {vp}");
        }
        for q in &s.w.inject {
            assert!(q.is_empty(), "frames for a bridge");
        }
        for (port, b) in out.batches[..s.base].iter_mut().enumerate() {
            if !b.is_empty() {
                flush(port as u16, b, pool);
            }
        }
        // The end of `poll_once` (held packets: none, all neighbors are static) and of
        // the poll loop (the grace-period quiescent point, one store).
        assert!(s.w.pending.is_empty(), "packets held for resolution");
        s.r.grace.quiescent(0);
    }
}

/// One worker's routing state, as `Worker` keeps it.
struct Stage<'r> {
    r: &'r Router,
    /// The first virtual port (`L2::router_base`).
    base: usize,
    w: L3Worker,
    counters: L3Counters,
}

impl Stage<'_> {
    fn assert_no_drops(&self) {
        for (i, c) in self.counters.ifaces.iter().enumerate() {
            assert_eq!(c.rx.total_drops(), 0, "router interface {i} dropped frames");
        }
        assert_eq!(self.counters.unresolved.get(), 0, "unresolved neighbors");
    }
}

// ---------------------------------------------------------------------------------
// The router: two routed ports, gateways with static neighbors, random routes.

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x01, 0x10];
/// The sender, on `a`'s subnet.
const SRC4: u32 = 0x0a00_010a; // 10.0.1.10
const SRC6: u128 = 0xfd00_0001_0000_0000_0000_0000_0000_0010; // fd00:1::10
/// The one-flow destination: a host on `b`'s subnet with a static neighbor entry.
const DST4: u32 = 0x0a00_020a; // 10.0.2.10
const DST6: u128 = 0xfd00_0002_0000_0000_0000_0000_0000_0010; // fd00:2::10
/// Gateways on `b` (10.0.2.2-5, fd00:2::2-5), each with a static route (and so a
/// next-hop id) of its own; the random routes share those ids.
const GATEWAYS: usize = 4;

/// Everything the benchmark's addresses need lies in 10.0.0.0/8 and fd00::/8, which the
/// random routes never touch: a random route equal to a connected or static one would
/// replace it (and `route_while_updating` would then delete it).
fn manifest() -> deploy::Manifest {
    let mut text = String::from(
        "workers: { count: 1 }
ports:
  - { name: a, type: vhost-user, socket: /nonexistent/a.sock }
  - { name: b, type: vhost-user, socket: /nonexistent/b.sock }
router:
  interfaces:
    - { name: a, addresses: [10.0.1.1/24, \"fd00:1::1/64\"] }
    - { name: b, addresses: [10.0.2.1/24, \"fd00:2::1/64\"] }
  routes:
",
    );
    for g in 0..GATEWAYS {
        text.push_str(&format!(
            "    - {{ to: 10.200.{g}.0/24, via: 10.0.2.{} }}\n",
            g + 2
        ));
        text.push_str(&format!(
            "    - {{ to: \"fd00:100:{g}::/48\", via: \"fd00:2::{}\" }}\n",
            g + 2
        ));
    }
    text.push_str("  neighbors:\n");
    let mut neighbor = |v4: String, v6: String, n: usize| {
        text.push_str(&format!(
            "    - {{ interface: b, address: {v4}, mac: \"52:54:00:00:02:{n:02x}\" }}\n"
        ));
        text.push_str(&format!(
            "    - {{ interface: b, address: \"{v6}\", mac: \"52:54:00:00:02:{n:02x}\" }}\n"
        ));
    };
    neighbor("10.0.2.10".into(), "fd00:2::10".into(), 0x10);
    for g in 0..GATEWAYS {
        neighbor(
            format!("10.0.2.{}", g + 2),
            format!("fd00:2::{}", g + 2),
            g + 2,
        );
    }
    deploy::Manifest::parse("route-bench.yaml", &text, &|_| None).unwrap()
}

/// The next-hop ids of the configured gateways: (IPv4, IPv6).
fn gateway_ids(r: &Router) -> (Vec<u32>, Vec<u32>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (id, hop) in r.hops.iter().enumerate() {
        if let NextHop::Gateway { via, .. } = hop {
            if v4_of_key(*via).is_some() {
                v4.push(id as u32);
            } else {
                v6.push(id as u32);
            }
        }
    }
    assert_eq!((v4.len(), v6.len()), (GATEWAYS, GATEWAYS));
    (v4, v6)
}

/// A random address inside a random one of `routes`.
fn inside4(routes: &[(u32, u8)], rng: &mut Rng) -> u32 {
    let (p, l) = routes[rng.below(routes.len() as u32) as usize];
    p | (rng.u32() & !mask4(l))
}

// ---------------------------------------------------------------------------------
// Frames.

/// A 64-byte IPv4 UDP frame to the router's `mac` (checksum valid, TTL 64).
fn udp4(e: &mut [u8; LEN], mac: [u8; 6], src: u32, dst: u32) {
    e[..6].copy_from_slice(&mac);
    e[6..12].copy_from_slice(&GUEST_MAC);
    e[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let udp_len = LEN - 14 - ipv4::HEADER;
    let n = ipv4::write_header(&mut e[14..], src, dst, 17, 64, udp_len, 1);
    assert_eq!(n, ipv4::HEADER);
    let u = &mut e[14 + ipv4::HEADER..];
    u[0..2].copy_from_slice(&4321u16.to_be_bytes());
    u[2..4].copy_from_slice(&5001u16.to_be_bytes());
    u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    // Checksum 0: none (allowed for UDP over IPv4).
}

/// A 64-byte IPv6 UDP frame to the router's `mac` (hop limit 64, UDP checksum valid).
fn udp6(e: &mut [u8; LEN], mac: [u8; 6], src: u128, dst: u128) {
    e[..6].copy_from_slice(&mac);
    e[6..12].copy_from_slice(&GUEST_MAC);
    e[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let udp_len = LEN - 14 - ipv6::HEADER;
    let n = ipv6::write_header(&mut e[14..], src, dst, 17, 64, udp_len);
    assert_eq!(n, ipv6::HEADER);
    let u = &mut e[14 + ipv6::HEADER..];
    u[0..2].copy_from_slice(&4321u16.to_be_bytes());
    u[2..4].copy_from_slice(&5001u16.to_be_bytes());
    u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let pseudo = checksum::pseudo6(&src.to_be_bytes(), &dst.to_be_bytes(), udp_len as u32, 17);
    let c = match checksum::finish(checksum::sum(u, pseudo)) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
}

// ---------------------------------------------------------------------------------
// The route updater of `route_while_updating`.

/// Route changes (a delete or an insert each) made so far.
static CHANGES: AtomicU64 = AtomicU64::new(0);

/// Deletes and re-inserts (with the same next hop) random routes of `routes` until
/// `stop`, `CHUNK` pairs per [`Router::update`]: under the writer lock, then (when a
/// delete retired a second-level group) a grace period, which waits for the worker's
/// next quiescent point, and the groups' reclamation.
fn churn(r: &Router, routes: &[(u32, u8)], stop: &AtomicBool) {
    const CHUNK: usize = 256;
    let mut rng = Rng(0xc4a2);
    while !stop.load(Ordering::Relaxed) {
        r.update(|lpm, _| {
            for _ in 0..CHUNK {
                let (p, l) = routes[rng.below(routes.len() as u32) as usize];
                let hop = lpm.delete(p, l).expect("delete");
                lpm.insert(p, l, hop).expect("insert");
            }
        });
        CHANGES.fetch_add(2 * CHUNK as u64, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------
// The flow cache experiment.

/// Slots of the flow cache: 32 KB, about a level-1 data cache.
const CACHE_SLOTS: usize = 4096;
/// Marks a filled slot (next-hop ids have 24 bits).
const FILLED: u64 = 1 << 31;

/// A per-worker direct-mapped cache of IPv4 destination -> FIB next-hop id, in the
/// manner of NetBSD's ipflow: one slot per hash of the destination, replaced on a
/// miss; emptied whenever the FIB changes (a generation number read once per batch).
/// Each slot is `destination << 32 | FILLED | next hop`.
struct FlowCache {
    slots: Box<[u64; CACHE_SLOTS]>,
    generation: u64,
}

impl FlowCache {
    fn new() -> FlowCache {
        FlowCache {
            slots: Box::new([0; CACHE_SLOTS]),
            generation: 0,
        }
    }

    /// Once per batch: forget everything if the FIB changed since the last batch.
    #[inline]
    fn begin(&mut self, fib_generation: &AtomicU64) {
        let g = fib_generation.load(Ordering::Acquire);
        if g != self.generation {
            self.slots.fill(0);
            self.generation = g;
        }
    }

    #[inline]
    fn lookup(&mut self, t: &Lpm4Table, dst: u32) -> u32 {
        // Fibonacci hashing: the top 12 bits of the product.
        let i = (dst.wrapping_mul(0x9e37_79b1) >> 20) as usize;
        let e = self.slots[i];
        if e & FILLED != 0 && (e >> 32) as u32 == dst {
            return e as u32 & !(FILLED as u32);
        }
        let hop = t.lookup(dst).unwrap_or(NO_ROUTE);
        if hop != NO_ROUTE {
            self.slots[i] = u64::from(dst) << 32 | FILLED | u64::from(hop);
        }
        hop
    }
}

/// Ways to find the next hops of a batch of 64 destinations; each returns their sum.
#[derive(Clone, Copy)]
enum Method {
    /// `Lpm4Table::lookup` per address.
    Single,
    /// `Lpm4Table::lookup_bulk::<16>`, four times.
    Bulk16,
    /// The routing stage's shortcut: the previous address's answer when the address
    /// repeats, else `lookup`.
    Run,
    /// [`FlowCache`].
    Cache,
}

impl Method {
    const ALL: [(Method, &'static str); 4] = [
        (Method::Single, "lpm_single"),
        (Method::Bulk16, "lpm_bulk16"),
        (Method::Run, "lpm_run_shortcut"),
        (Method::Cache, "flow_cache"),
    ];

    #[inline]
    fn batch(
        self,
        t: &Lpm4Table,
        cache: &mut FlowCache,
        generation: &AtomicU64,
        a: &[u32; 64],
    ) -> u64 {
        match self {
            Method::Single => a
                .iter()
                .map(|&a| u64::from(t.lookup(a).unwrap_or(NO_ROUTE)))
                .sum(),
            Method::Bulk16 => a
                .chunks_exact(16)
                .map(|c| {
                    let h = t.lookup_bulk::<16>(c.try_into().expect("16"));
                    h.iter().map(|&h| u64::from(h)).sum::<u64>()
                })
                .sum(),
            Method::Run => {
                let mut last: Option<(u32, u32)> = None;
                a.iter()
                    .map(|&a| {
                        let hop = match last {
                            Some((d, h)) if d == a => h,
                            _ => {
                                let h = t.lookup(a).unwrap_or(NO_ROUTE);
                                last = Some((a, h));
                                h
                            }
                        };
                        u64::from(hop)
                    })
                    .sum()
            }
            Method::Cache => {
                cache.begin(generation);
                a.iter().map(|&a| u64::from(cache.lookup(t, a))).sum()
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The summary.

/// Every timed call's time per iteration, by benchmark, in the order first seen.
#[derive(Default)]
struct Samples(RefCell<Vec<(String, Vec<f64>)>>);

impl Samples {
    fn add(&self, name: &str, total: Duration, iters: u64) {
        let ns = total.as_nanos() as f64 / iters.max(1) as f64;
        let mut v = self.0.borrow_mut();
        match v.iter_mut().find(|(n, _)| n == name) {
            Some((_, s)) => s.push(ns),
            None => v.push((name.to_string(), vec![ns])),
        }
    }

    /// Registers `name` in `g`: batches timed by [`Rig::run`], each call's time also
    /// kept here.
    fn bench_rig(
        &self,
        g: &mut BenchmarkGroup<'_, WallTime>,
        name: &str,
        rig: &mut Rig,
        mut prepare: impl FnMut(&mut Rig),
        mut stage: impl FnMut(&mut Rig),
    ) {
        let timed = |b: &mut Bencher<'_>| {
            b.iter_custom(|iters| {
                let d = rig.run(iters, &mut prepare, &mut stage);
                self.add(name, d, iters);
                d
            })
        };
        // Criterion files a plain name's slash as `_`: a `function/parameter` name must
        // go in as that kind of id to keep its place among earlier results.
        match name.split_once('/') {
            Some((function, parameter)) => {
                g.bench_function(BenchmarkId::new(function, parameter), timed)
            }
            None => g.bench_function(name, timed),
        };
    }

    /// The median of the later half of the calls: criterion's samples, after its
    /// warm-up calls.
    fn median(&self, name: &str) -> Option<f64> {
        let v = self.0.borrow();
        let (_, s) = v.iter().find(|(n, _)| n == name)?;
        let mut s = s[s.len() / 2..].to_vec();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied()
    }
}

// ---------------------------------------------------------------------------------

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let mut c = config().configure_from_args();
    // Without --bench (cargo test --benches), small tables for a smoke run.
    let (n4, n6, n_addrs) = if full {
        (1_000_000, 100_000, 1 << 20)
    } else {
        (10_000, 10_000, 1 << 12)
    };
    let samples = Samples::default();
    let summary = benches(&mut c, &samples, n4, n6, n_addrs);
    c.final_summary();
    if full {
        summary();
    }
}

/// Runs everything; returns the summary's printer.
fn benches<'s>(
    c: &mut Criterion,
    samples: &'s Samples,
    n4: u32,
    n6: u32,
    n_addrs: usize,
) -> impl FnOnce() + 's {
    // Setup, untimed by criterion.
    let m = manifest();
    let l2 = L2::build(&m);
    let router = Router::build(&m, &l2).unwrap().expect("router interfaces");
    let (gw4, gw6) = gateway_ids(&router);
    let mut rng = Rng(0x70_75_74_65);
    // Outside 10.0.0.0/8, where the benchmark's own subnets are: a random route must
    // not replace a connected one (route_while_updating deletes them again).
    let routes = routes4(&mut rng, n4, |a| a >> 24 != 10);
    let routes_v6 = routes6(&mut rng, n6);
    let start = Instant::now();
    {
        let mut w = router.fib_writer();
        for (i, &(p, l)) in routes.iter().enumerate() {
            w.0.insert(p, l, gw4[i % GATEWAYS]).expect("insert");
        }
    }
    let load4 = start.elapsed();
    let start = Instant::now();
    {
        let mut w = router.fib_writer();
        for (i, &(p, l)) in routes_v6.iter().enumerate() {
            w.1.insert(p, l, gw6[i % GATEWAYS]).expect("insert");
        }
    }
    let load6 = start.elapsed();
    {
        let w = router.fib_writer();
        println!(
            "route: loaded {} IPv4 routes in {:.0} ms ({:.0} ns per route; {} routes, {} groups \
             in the FIB), {} IPv6 routes in {:.0} ms ({:.0} ns per route; {} groups)",
            routes.len(),
            load4.as_secs_f64() * 1e3,
            load4.as_nanos() as f64 / routes.len() as f64,
            w.0.len(),
            w.0.groups_used(),
            routes_v6.len(),
            load6.as_secs_f64() * 1e3,
            load6.as_nanos() as f64 / routes_v6.len() as f64,
            w.1.groups_used(),
        );
    }
    print_huge_pages("route: ");
    let rmac = router.ifaces[0].mac;
    let base = l2.router_base as usize;
    let outputs = l2.ports.len();
    let mut stage = Stage {
        r: &router,
        base,
        w: L3Worker::new(&router, 0),
        counters: L3Counters::new(router.ifaces.len()),
    };

    let mut g = c.benchmark_group("route_64B");
    g.throughput(Throughput::Elements(u64::from(N)));

    let mut rig = Rig::routed(outputs);
    rig.write_frames(|_, e| udp4(e, rmac, SRC4, DST4));
    samples.bench_rig(&mut g, "xconnect", &mut rig, |_| {}, |r| r.xconnect());

    let mut rig = Rig::routed(outputs);
    rig.write_frames(|_, e| udp4(e, rmac, SRC4, DST4));
    let one_flow = |r: &mut Rig| r.route(&mut stage, 0);
    samples.bench_rig(&mut g, "route_one_flow", &mut rig, |_| {}, one_flow);

    // The routing stage alone, without the rings: the same 64 frames routed again and
    // again, their destination MAC, TTL and checksum put back each time (10 bytes a
    // frame, included in the figure).
    {
        let mut pool = Pool::new(4 * N as usize).expect("pool");
        let mut batch = Batch::default();
        let mut e = [0u8; LEN];
        udp4(&mut e, rmac, SRC4, DST4);
        for _ in 0..N {
            let mut p = pool.alloc().expect("buffer");
            p.room_mut()[..LEN].copy_from_slice(&e);
            p.set_len(LEN);
            let _ = batch.push(p);
        }
        let mut out = Outputs::new(outputs);
        g.bench_function("route_stage_only", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for p in batch.iter_mut() {
                        let d = p.data_mut();
                        d[..6].copy_from_slice(&e[..6]);
                        d[22..26].copy_from_slice(&e[22..26]);
                    }
                    let mut flush = |_: u16, b: &mut Batch, pool: &mut Pool| b.free_all(pool);
                    let tx = Tx {
                        pool: &mut pool,
                        out: &mut out,
                        flush: &mut flush,
                    };
                    Ctx::new(&router, tx, &mut stage.w, &stage.counters).route_batch(0, &mut batch);
                    std::mem::swap(&mut batch, &mut out.batches[1]);
                }
                let d = start.elapsed();
                assert_eq!(batch.len(), N as usize, "every frame routed");
                samples.add("route_stage_only", d, iters);
                d
            })
        });
    }

    let random_name = format!("route_random_dst/{}", count_name(routes.len()));
    let mut rig = Rig::routed(outputs);
    let frames = random_frames(&routes, rmac);
    let route = |r: &mut Rig| r.route(&mut stage, 0);
    samples.bench_rig(&mut g, &random_name, &mut rig, frames, route);

    // Not a figure the issue asks for: what a bulk FIB stage could gain on random
    // destinations (the same frames, looked up for the whole batch first).
    let prelookup_name = format!("route_random_dst_prelookup/{}", count_name(routes.len()));
    let mut rig = Rig::routed(outputs);
    let frames = random_frames(&routes, rmac);
    let route = |r: &mut Rig| {
        r.prelookup(&router.fib4);
        r.route(&mut stage, 0)
    };
    samples.bench_rig(&mut g, &prelookup_name, &mut rig, frames, route);

    let mut rig = Rig::routed(outputs);
    rig.write_frames(|_, e| udp6(e, rmac, SRC6, DST6));
    let one_flow = |r: &mut Rig| r.route(&mut stage, 0);
    samples.bench_rig(&mut g, "route_v6_one_flow", &mut rig, |_| {}, one_flow);

    // The updater runs from before the first call to after the last; its rate is taken
    // over the calls only (between them the reader is idle and the updater soon waits
    // for a grace period).
    let mut rig = Rig::routed(outputs);
    rig.write_frames(|_, e| udp4(e, rmac, SRC4, DST4));
    let stop = AtomicBool::new(false);
    let (mut changes, mut wall) = (0u64, Duration::ZERO);
    let slowest = std::thread::scope(|s| {
        let updater = s.spawn(|| churn(&router, &routes, &stop));
        g.bench_function("route_while_updating", |b| {
            b.iter_custom(|iters| {
                let (c0, t0) = (CHANGES.load(Ordering::Relaxed), Instant::now());
                let d = rig.run(iters, |_| {}, |r| r.route(&mut stage, 0));
                wall += t0.elapsed();
                changes += CHANGES.load(Ordering::Relaxed) - c0;
                samples.add("route_while_updating", d, iters);
                d
            })
        });
        stop.store(true, Ordering::Relaxed);
        // The worker stops, as if asleep: the updater's last grace period ends.
        router.grace.offline(0);
        updater.join().expect("updater");
        router.grace.online(0);
        rig.slowest
    });
    let update_rate = changes as f64 / wall.as_secs_f64().max(1e-9);
    g.finish();
    stage.assert_no_drops();
    {
        let w = router.fib_writer();
        assert_eq!(
            w.0.len(),
            routes.len() + 2 * 2 + GATEWAYS,
            "the routes are all back"
        );
    }

    // The flow cache experiment, on the same table (all updates done).
    let t: &Lpm4Table = &router.fib4;
    let generation = AtomicU64::new(0);
    let mut rng = Rng(0xf10);
    let one = inside4(&routes, &mut rng);
    let thousand: Vec<u32> = (0..1000).map(|_| inside4(&routes, &mut rng)).collect();
    let workloads: [(&str, Vec<u32>); 3] = [
        ("1_flow", vec![one; 64 * 1024]),
        (
            "1k_flows",
            (0..64 * 1024)
                .map(|_| thousand[rng.below(1000) as usize])
                .collect(),
        ),
        (
            "random_dst",
            (0..n_addrs).map(|_| inside4(&routes, &mut rng)).collect(),
        ),
    ];
    let mut g = c.benchmark_group("fib_lookup_64");
    g.throughput(Throughput::Elements(64));
    for (load, addrs) in &workloads {
        let batches: Vec<&[u32; 64]> = addrs
            .chunks_exact(64)
            .map(|c| c.try_into().expect("64"))
            .collect();
        // Every method agrees with the plain lookup.
        let mut cache = FlowCache::new();
        for a in batches.iter().take(256) {
            let want = Method::Single.batch(t, &mut cache, &generation, a);
            for (m, name) in Method::ALL {
                assert_eq!(m.batch(t, &mut cache, &generation, a), want, "{name}");
            }
        }
        for (m, name) in Method::ALL {
            let mut cache = FlowCache::new();
            let mut at = 0;
            let id = format!("{name}/{load}");
            g.bench_function(BenchmarkId::new(name, load), |b| {
                b.iter_custom(|iters| {
                    let mut sum = 0u64;
                    let start = Instant::now();
                    for _ in 0..iters {
                        let a = black_box(batches[at]);
                        sum = sum.wrapping_add(m.batch(t, &mut cache, &generation, a));
                        at += 1;
                        if at == batches.len() {
                            at = 0;
                        }
                    }
                    let d = start.elapsed();
                    black_box(sum);
                    samples.add(&id, d, iters);
                    d
                })
            });
        }
    }
    g.finish();

    move || {
        summary(
            samples,
            &[&random_name, &prelookup_name],
            update_rate,
            slowest,
        )
    }
}

/// The `prepare` of the random-destination benchmarks: each batch's frames rewritten
/// for destinations inside random ones of `routes`, from the same seed for each
/// benchmark so that they route the same frames.
fn random_frames<'a>(routes: &'a [(u32, u8)], rmac: [u8; 6]) -> impl FnMut(&mut Rig) + 'a {
    let mut dst_rng = Rng(0xd57);
    move |r| {
        let dsts: Vec<u32> = (0..N).map(|_| inside4(routes, &mut dst_rng)).collect();
        r.write_frames(|h, e| udp4(e, rmac, SRC4, dsts[h as usize]));
    }
}

fn count_name(n: usize) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

fn summary(samples: &Samples, random: &[&str], update_rate: f64, slowest: Duration) {
    println!();
    println!("route summary (median ns per 64-frame batch over criterion's samples):");
    let Some(base) = samples.median("xconnect") else {
        return;
    };
    let names = ["xconnect", "route_one_flow"]
        .iter()
        .chain(random)
        .chain(&["route_v6_one_flow", "route_while_updating"]);
    for &name in names {
        let Some(ns) = samples.median(name) else {
            continue;
        };
        println!(
            "  {name:<32} {ns:8.1} ns/batch {:6.2} ns/frame {:6.1} Mpps  {:.2} of xconnect",
            ns / f64::from(N),
            f64::from(N) * 1e3 / ns,
            base / ns
        );
    }
    if samples.median("route_while_updating").is_some() {
        println!(
            "  route_while_updating: {:.0} route changes/s (deletes and inserts) meanwhile; \
             every batch forwarded whole; slowest batch {:.1} us",
            update_rate,
            slowest.as_secs_f64() * 1e6
        );
    }
    let mhz = mhz();
    println!("fib lookups (ns per 64 destinations; cycles per lookup at {mhz:.0} MHz):");
    for load in ["1_flow", "1k_flows", "random_dst"] {
        let mut line = format!("  {load:<11}");
        let mut any = false;
        for (_, name) in Method::ALL {
            if let Some(ns) = samples.median(&format!("{name}/{load}")) {
                line.push_str(&format!("  {name} {ns:.0} ({:.1})", ns * mhz / 1e3 / 64.0));
                any = true;
            }
        }
        if any {
            println!("{line}");
        }
    }
}
