//! Per-frame cost of the bridge against the cross-connect, on the same rings and in the
//! same run: each measured batch is 64 frames of 64 bytes dequeued from one port's
//! transmit ring, passed through the stage, and enqueued on the receiving port(s).
//!
//! - `xconnect`: the batch goes to the peer port as it is (the baseline).
//! - `bridge_learned`: two members, both addresses learned (the ratio the L2 issue asks
//!   for: at least 0.9 of `xconnect`).
//! - `bridge_per_frame`: as `bridge_learned` but alternating between two destinations,
//!   so no shortcut applies: every frame is looked up and sorted into its output on its
//!   own (all table reads hit the cache).
//! - `bridge_1M_random`: a million learned addresses, every frame to a random one of
//!   them (the table is far larger than the caches; at least 0.7 of `xconnect`).
//! - `learn_new`: every frame has a source never seen before (learning rate).
//! - `flood_4`: broadcast frames to four other members (four copies per frame).
//!
//! A [`DriverRing`] plays the guests, outside the timed region; everything runs on one
//! core with the rings hot, so the figures are the switch's own cost per frame.
//! `cargo bench -p vnf --bench bridge` (add `-- --quick` for a short run).

// This file uses the rings and criterion's settings; the rest is for the other
// benchmarks.
#[allow(dead_code)]
mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use packet::{Batch, Pool};

use common::config;
use common::rings::{Rig, N};
use vnf::l2::mactable::key;
use vnf::l2::{bridge_batch, L2Counters, L2};

fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0x01, b[0], b[1], b[2], b[3]]
}

impl Rig {
    /// Port 0's transmit ring and a receive ring for each of `ports` members, the frames
    /// from `mac(1)` to `mac(2)`.
    fn with_members(ports: usize) -> Rig {
        let mut rig = Rig::new(ports, ports);
        rig.write_macs(|_| mac(2), |_| mac(1));
        rig
    }

    /// Writes the transmit frames with these addresses (outside any timing).
    fn write_macs(&mut self, dst: impl Fn(u16) -> [u8; 6], src: impl Fn(u16) -> [u8; 6]) {
        self.write_frames(|h, e| {
            e[..6].copy_from_slice(&dst(h));
            e[6..12].copy_from_slice(&src(h));
            e[12..14].copy_from_slice(&[0x08, 0x00]);
        });
    }

    fn bridge(&mut self, l2: &L2, counters: &L2Counters) {
        // Split borrows: the flush closure takes the receive queues.
        let Rig {
            rx,
            pool,
            batch,
            out,
            c,
            ..
        } = self;
        let mut flush =
            |p: u16, b: &mut Batch, pool: &mut Pool| rx[p as usize].q.enqueue(b, pool, c);
        bridge_batch(l2, 0, batch, pool, out, c, counters, &mut flush);
        for (p, b) in out.batches.iter_mut().enumerate() {
            if !b.is_empty() {
                flush(p as u16, b, pool);
            }
        }
    }
}

fn l2(ports: usize, limit: u32) -> L2 {
    let mut text = String::from("ports:\n");
    for p in 0..ports {
        text.push_str(&format!(
            "  - {{ name: p{p}, type: vhost-user, socket: /nonexistent/p{p}.sock }}\n"
        ));
    }
    let members: Vec<String> = (0..ports).map(|p| format!("p{p}")).collect();
    text.push_str(&format!(
        "bridges:\n  - {{ name: br0, mac_limit: {limit}, members: [{}] }}\n",
        members.join(", ")
    ));
    let m = deploy::Manifest::parse("bench.yaml", &text, &|_| None).unwrap();
    L2::build(&m)
}

fn forwarding(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward_64B");
    g.throughput(Throughput::Elements(u64::from(N)));

    let mut rig = Rig::with_members(2);
    g.bench_function("xconnect", |b| {
        b.iter_custom(|iters| rig.run(iters, |_| {}, |r| r.xconnect()))
    });

    let table = l2(2, 1024);
    let counters = L2Counters::new(&table);
    table.bridges[0].table.learn(key(1, &mac(1)), 0, 0);
    table.bridges[0].table.learn(key(1, &mac(2)), 1, 0);
    let mut rig = Rig::with_members(2);
    g.bench_function("bridge_learned", |b| {
        b.iter_custom(|iters| rig.run(iters, |_| {}, |r| r.bridge(&table, &counters)))
    });

    // Destinations alternate between two learned addresses: no whole-batch shortcut and
    // no repeated decision, but every table read hits the cache (the per-frame path).
    let table = l2(2, 1024);
    let counters = L2Counters::new(&table);
    table.bridges[0].table.learn(key(1, &mac(1)), 0, 0);
    table.bridges[0].table.learn(key(1, &mac(2)), 1, 0);
    table.bridges[0].table.learn(key(1, &mac(3)), 1, 0);
    let mut rig = Rig::with_members(2);
    rig.write_macs(|h| mac(2 + u32::from(h % 2)), |_| mac(1));
    g.bench_function("bridge_per_frame", |b| {
        b.iter_custom(|iters| rig.run(iters, |_| {}, |r| r.bridge(&table, &counters)))
    });

    const MANY: u32 = 1 << 20;
    let table = l2(2, MANY + 64);
    let counters = L2Counters::new(&table);
    for n in 0..MANY {
        table.bridges[0].table.learn(key(1, &mac(1000 + n)), 1, 0);
    }
    table.bridges[0].table.learn(key(1, &mac(1)), 0, 0);
    let mut rig = Rig::with_members(2);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    g.bench_function(BenchmarkId::new("bridge_random_of", MANY), |b| {
        b.iter_custom(|iters| {
            rig.run(
                iters,
                |r| {
                    let dsts: Vec<u32> = (0..N)
                        .map(|_| 1000 + (next() % u64::from(MANY)) as u32)
                        .collect();
                    r.write_macs(|h| mac(dsts[h as usize]), |_| mac(1));
                },
                |r| r.bridge(&table, &counters),
            )
        })
    });

    let table = l2(2, 1 << 22);
    let counters = L2Counters::new(&table);
    table.bridges[0].table.learn(key(1, &mac(2)), 1, 0);
    let mut rig = Rig::with_members(2);
    let mut fresh = 1_000_000u32;
    g.bench_function("learn_new", |b| {
        b.iter_custom(|iters| {
            rig.run(
                iters,
                |r| {
                    let base = fresh;
                    fresh += u32::from(N);
                    r.write_macs(|_| mac(2), |h| mac(base + u32::from(h)));
                },
                |r| r.bridge(&table, &counters),
            )
        })
    });

    let table = l2(5, 1024);
    let counters = L2Counters::new(&table);
    let mut rig = Rig::with_members(5);
    rig.write_macs(|_| [0xff; 6], |_| mac(1));
    g.bench_function("flood_4", |b| {
        b.iter_custom(|iters| rig.run(iters, |_| {}, |r| r.bridge(&table, &counters)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = forwarding
}
criterion_main!(benches);
