//! Two guests on vnf ports in server mode, cross-connected, ping each other over IPv4
//! and IPv6 without loss, and vnf's counters account for the traffic.

use std::time::Duration;
use vnf_tests::manifest::cross_connected;
use vnf_tests::net::{await_peer, ipv4, ipv6, mac, numbered_guest, summaries};
use vnf_tests::{serial, Guest, Mode, Port, TempDir, Vnf};

const COUNT: u32 = 500;

#[test]
fn ping() {
    let _serial = serial();
    let dir = TempDir::new("ping");
    let ports = [
        Port::new("vm0", dir.path(), Mode::Server, 1),
        Port::new("vm1", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&cross_connected(1, &ports), &[]);

    let start = |port: &Port, n: u8, peer: u8| {
        // Stays up after its own runs so that the other guest's pings are answered.
        let script = format!(
            "{}; ping -q -c {COUNT} -i 0.01 {}; ping -6 -q -c {COUNT} -i 0.01 {}; echo PINGS-DONE; sleep 600",
            await_peer(&ipv4(peer)),
            ipv4(peer),
            ipv6(peer)
        );
        Guest::start(numbered_guest(&port.name, n, port.nic(&mac(n))).script(&script))
    };
    let mut guests = [start(&ports[0], 1, 2), start(&ports[1], 2, 1)];
    for guest in &mut guests {
        guest.wait_ready();
    }
    for guest in &mut guests {
        let output = guest.expect("PINGS-DONE", Duration::from_secs(240));
        let runs = summaries(&output);
        if !(runs.len() == 2 && runs.iter().all(|s| s.lossless(COUNT))) {
            guest.fail(&format!(
                "expected IPv4 and IPv6 runs of {COUNT} pings without loss, got {runs:?}"
            ));
        }
    }

    let stats = vnf.stats();
    // Each guest sent its own 2 x COUNT requests and answered the other's 2 x COUNT.
    let least = u64::from(4 * COUNT);
    for port in ["vm0", "vm1"] {
        for key in ["rx_packets", "tx_packets"] {
            let value = stats.counter(port, "all", key);
            assert!(
                value >= least,
                "{port} {key}={value}, expected at least {least}:\n{stats}"
            );
        }
    }
    // A cross-connect delivers each frame to one port at most.
    for (from, to) in [("vm0", "vm1"), ("vm1", "vm0")] {
        let (rx, tx) = (
            stats.counter(from, "all", "rx_packets"),
            stats.counter(to, "all", "tx_packets"),
        );
        assert!(
            tx <= rx,
            "{to} got tx_packets={tx} but {from} only received rx_packets={rx}:\n{stats}"
        );
    }
    vnf.assert_running();
}
