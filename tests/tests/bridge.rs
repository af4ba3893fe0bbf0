//! Bridging: guests on one bridge reach each other through MAC learning, and the
//! bridge's MAC table and counters account for it.

use std::collections::BTreeMap;
use std::time::Duration;
use vnf_tests::manifest::bridged;
use vnf_tests::net::{await_peers, ipv4, ipv6, mac, numbered_guest, ping_run};
use vnf_tests::{serial, Bridge, Guest, Member, Mode, Port, TempDir, Vnf};

const COUNT: u32 = 50;
const GUESTS: u8 = 3;

/// Drop reasons a port may show from the time its guest, or a peer's, was still
/// booting: frames for a port whose guest has not attached yet, or whose driver has
/// not posted receive buffers yet.
const BOOT_DROPS: &[&str] = &["detached", "no_rx_buffers"];

#[test]
fn three_guests_ping_every_pair() {
    let _serial = serial();
    let dir = TempDir::new("bridge");
    let ports: Vec<Port> = (0..GUESTS)
        .map(|i| Port::new(&format!("vm{i}"), dir.path(), Mode::Server, 1))
        .collect();
    let bridge = ports
        .iter()
        .fold(Bridge::new("br0"), |b, p| b.member(Member::plain(&p.name)));
    let mut vnf = Vnf::start(&bridged(1, &ports, &[bridge]), &[]);

    // Guest n is on port vm(n-1). Each waits for both others, then pings each over IPv4
    // and IPv6, and stays up to answer theirs.
    let mut guests: Vec<Guest> = (1..=GUESTS)
        .map(|n| {
            let peers: Vec<u8> = (1..=GUESTS).filter(|&p| p != n).collect();
            let waits = await_peers(&peers.iter().map(|&p| ipv4(p)).collect::<Vec<_>>());
            let runs: Vec<String> = peers
                .iter()
                .flat_map(|&p| [ping_run(&ipv4(p), COUNT), ping_run(&ipv6(p), COUNT)])
                .collect();
            let script = format!(
                "{waits}; echo PEERS-UP; sleep 2; {}; echo PINGS-DONE; sleep 600",
                runs.join("; ")
            );
            let port = &ports[usize::from(n - 1)];
            Guest::start(numbered_guest(&port.name, n, port.nic(&mac(n))).script(&script))
        })
        .collect();
    for guest in &mut guests {
        guest.wait_ready();
    }
    for guest in &mut guests {
        guest.expect("PEERS-UP", Duration::from_secs(120));
    }
    // Every guest is up and has reached both others: from here on no frame has a reason
    // to be dropped.
    let before = vnf.stats();
    let runs = [(COUNT, COUNT); 2 * (GUESTS as usize - 1)];
    for guest in &mut guests {
        guest.expect_pings("PINGS-DONE", Duration::from_secs(120), &runs);
    }
    let stats = vnf.stats();

    // The MAC table: each guest's MAC, learned on its own port in VLAN 1, and nothing
    // else (no other source addresses were on the wire).
    let table = stats.macs("br0");
    for n in 1..=GUESTS {
        let entries = stats.mac_entries("br0", &mac(n));
        let port = format!("vm{}", n - 1);
        assert!(
            entries.len() == 1
                && entries[0].vlan == 1
                && entries[0].interface == port
                && entries[0].kind == "learned",
            "guest {n}'s MAC should be learned once, on {port} in VLAN 1; table: {table:?}\n{stats}"
        );
    }
    assert_eq!(table.len(), usize::from(GUESTS), "{stats}");
    assert_eq!(
        stats.bridge_counter("br0", "all", "macs"),
        u64::from(GUESTS),
        "{stats}"
    );

    // Each guest sent 2 x (GUESTS-1) x COUNT requests and answered as many, and received
    // as many of each.
    let per_guest = u64::from(4 * (u32::from(GUESTS) - 1) * COUNT);
    for port in &ports {
        let name = &port.name;
        for key in ["rx_packets", "tx_packets"] {
            let n = stats.bridge_counter("br0", name, key);
            assert!(
                n >= per_guest,
                "bridge member {name} {key}={n}, expected at least {per_guest}:\n{stats}"
            );
        }
        let learned = stats.bridge_counter("br0", name, "learned");
        assert!(learned >= 1, "member {name} learned={learned}:\n{stats}");
    }
    for (key, want) in [("moved", 0), ("limit_hits", 0)] {
        assert_eq!(
            stats.bridge_counter("br0", "all", key),
            want,
            "{key}:\n{stats}"
        );
    }
    let flooded = stats.bridge_counter("br0", "all", "flooded");
    assert!(
        flooded > 0,
        "ARP requests and neighbour solicitations are flooded:\n{stats}"
    );

    // Known unicast is not flooded: while the pings ran, each guest was sent its own
    // traffic (per_guest frames) and little else. Flooding the pings would have sent
    // every guest the other pairs' traffic too, per_guest more.
    let slack = 100;
    for port in &ports {
        let name = &port.name;
        let sent =
            stats.counter(name, "all", "tx_packets") - before.counter(name, "all", "tx_packets");
        assert!(
            sent <= per_guest + slack,
            "{name} was sent {sent} frames while the pings ran; its own traffic is {per_guest}: \
             was unicast flooded?\nbefore:\n{before}\nafter:\n{stats}"
        );
    }

    // No drops once all guests were up; before that, only those of booting guests.
    for port in &ports {
        let name = &port.name;
        let grew = stats.drops_since(&before, name);
        assert!(
            grew.is_empty(),
            "{name} dropped frames while every guest was up: {grew:?}\nbefore:\n{before}\nafter:\n{stats}"
        );
        let unexpected: BTreeMap<String, u64> = stats
            .drop_reasons(name, "all")
            .into_iter()
            .filter(|(reason, _)| !BOOT_DROPS.contains(&reason.as_str()))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{name} dropped frames for {unexpected:?}:\n{stats}"
        );
    }
    vnf.assert_running();
}
