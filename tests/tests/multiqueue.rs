//! Two-vCPU guests with two queue pairs each: traffic sent from both vCPUs leaves on
//! both transmit queues, and vnf (two workers) carries it on both queue pairs of both
//! ports.

use std::time::Duration;
use vnf_tests::manifest::cross_connected;
use vnf_tests::net::{await_peer, ipv4, mac, numbered_guest, pinned_pings, summaries};
use vnf_tests::{serial, Guest, Mode, Port, TempDir, Vnf};

const COUNT: u32 = 200;
const QUEUES: u32 = 2;

#[test]
fn multiqueue() {
    let _serial = serial();
    let dir = TempDir::new("multiqueue");
    let ports = [
        Port::new("vm0", dir.path(), Mode::Server, QUEUES),
        Port::new("vm1", dir.path(), Mode::Server, QUEUES),
    ];
    let mut vnf = Vnf::start(&cross_connected(2, &ports), &[]);

    let start = |port: &Port, n: u8, peer: u8| {
        let script = format!(
            "{}; {}; echo PINGS-DONE; sleep 600",
            await_peer(&ipv4(peer)),
            pinned_pings(&ipv4(peer), QUEUES, COUNT)
        );
        Guest::start(
            numbered_guest(&port.name, n, port.nic(&mac(n)))
                .smp(QUEUES)
                .script(&script),
        )
    };
    let mut guests = [start(&ports[0], 1, 2), start(&ports[1], 2, 1)];
    for guest in &mut guests {
        guest.wait_ready();
    }
    for guest in &mut guests {
        let output = guest.expect("PINGS-DONE", Duration::from_secs(240));
        let runs = summaries(&output);
        if !(runs.len() == QUEUES as usize && runs.iter().all(|s| s.lossless(COUNT))) {
            guest.fail(&format!(
                "expected {QUEUES} runs of {COUNT} pings without loss, got {runs:?}"
            ));
        }
    }

    let stats = vnf.stats();
    for port in ["vm0", "vm1"] {
        let queues = stats.queues(port);
        assert_eq!(
            queues,
            ["0", "1"],
            "{port} should list queue pairs 0 and 1:\n{stats}"
        );
        for queue in ["0", "1"] {
            // The guest's run pinned to this queue's CPU sent COUNT requests here.
            let rx = stats.counter(port, queue, "rx_packets");
            assert!(
                rx >= u64::from(COUNT),
                "{port} queue {queue} rx_packets={rx}, expected >= {COUNT}:\n{stats}"
            );
            let tx = stats.counter(port, queue, "tx_packets");
            assert!(
                tx > 0,
                "{port} queue {queue} delivered nothing to the guest:\n{stats}"
            );
        }
    }
    vnf.assert_running();
}

/// A port with fewer queue pairs than workers: vm0 has two pairs, each polled by its own
/// worker, and both workers transmit into vm1's single pair at once, sharing it.
#[test]
fn shared_transmit_queue() {
    let _serial = serial();
    let dir = TempDir::new("shared-tx");
    let ports = [
        Port::new("vm0", dir.path(), Mode::Server, QUEUES),
        Port::new("vm1", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&cross_connected(2, &ports), &[]);
    let script = |peer: u8, cpus: u32| {
        format!(
            "{}; {}; echo PINGS-DONE; sleep 600",
            await_peer(&ipv4(peer)),
            pinned_pings(&ipv4(peer), cpus, COUNT)
        )
    };
    let mut guests = [
        Guest::start(
            numbered_guest("vm0", 1, ports[0].nic(&mac(1)))
                .smp(QUEUES)
                .script(&script(2, QUEUES)),
        ),
        Guest::start(numbered_guest("vm1", 2, ports[1].nic(&mac(2))).script(&script(1, 1))),
    ];
    for guest in &mut guests {
        guest.wait_ready();
    }
    for (guest, runs_expected) in guests.iter_mut().zip([QUEUES as usize, 1]) {
        let output = guest.expect("PINGS-DONE", Duration::from_secs(240));
        let runs = summaries(&output);
        if !(runs.len() == runs_expected && runs.iter().all(|s| s.lossless(COUNT))) {
            guest.fail(&format!(
                "expected {runs_expected} runs of {COUNT} pings without loss, got {runs:?}"
            ));
        }
    }
    let stats = vnf.stats();
    for queue in ["0", "1"] {
        let rx = stats.counter("vm0", queue, "rx_packets");
        assert!(
            rx >= u64::from(COUNT),
            "vm0 queue {queue} rx_packets={rx}:\n{stats}"
        );
    }
    // Everything vm0 sent on both pairs (requests and replies) reached vm1's one pair,
    // except what vm0 sent while vm1 was booting: before vm1's queue existed (counted as
    // drop_detached), or after its driver started the device but before Linux filled
    // the receive ring, which it does only when the interface goes up (counted as
    // drop_no_rx_buffers; a few IPv6 housekeeping frames at most, never a ping, as the
    // lossless runs above show). The guests may still send a stray frame while the
    // counters are read, so a mismatch is read again before it counts as a loss.
    let delivered = |s: &vnf_tests::Stats| {
        s.counter("vm1", "0", "tx_packets")
            + s.counter_or_zero("vm1", "0", "drop_detached")
            + s.counter_or_zero("vm1", "0", "drop_no_rx_buffers")
    };
    let mut stats = stats;
    for _ in 0..5 {
        if delivered(&stats) == stats.counter("vm0", "all", "rx_packets") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        stats = vnf.stats();
    }
    let vm0_rx = stats.counter("vm0", "all", "rx_packets");
    assert_eq!(
        delivered(&stats),
        vm0_rx,
        "frames lost on the shared queue:\n{stats}"
    );
    let no_buffers = stats.counter_or_zero("vm1", "0", "drop_no_rx_buffers");
    assert!(
        no_buffers <= 8,
        "{no_buffers} frames found vm1 without receive buffers:\n{stats}"
    );
    let other_drops =
        stats.counter("vm1", "0", "drops") - stats.counter_or_zero("vm1", "0", "drop_detached");
    assert_eq!(other_drops, 0, "{stats}");
    vnf.assert_running();
}
