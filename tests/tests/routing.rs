//! Routing: guests in different subnets reach each other through vnf's router, which
//! resolves them with ARP and neighbor discovery, answers theirs, shows up as a hop in
//! traceroute, and tells a sender with too big a packet the path MTU.

use std::time::Duration;
use vnf_tests::manifest::routed;
use vnf_tests::net::{await_peers, frag_counters, mac, parse_frag_counters, ping_run};
use vnf_tests::{serial, Guest, GuestConfig, Mode, Port, Stats, TempDir, Vnf};

const COUNT: u32 = 50;

/// Router interfaces on vm0 (subnet 1) and vm1 (subnet 2); guest n sits on vm(n-1) as
/// host 2 of its subnet.
const ROUTER: &str = "\
router:
  interfaces:
    - { name: vm0, addresses: [10.1.0.1/24, \"fd01::1/64\"] }
    - { name: vm1, addresses: [10.2.0.1/24, \"fd02::1/64\"] }
";

/// Guest `n` (1 or 2) on `port`: host 2 of subnet n, default routes via the router.
fn guest(port: &Port, n: u8, mtu: Option<u32>, script: &str) -> Guest {
    let mut nic = port.nic(&mac(n));
    if let Some(m) = mtu {
        nic = nic.mtu(m);
    }
    let routes = format!(
        "ip route add default via 10.{n}.0.1; ip -6 route add default via fd0{n}::1; {script}"
    );
    Guest::start(
        GuestConfig::new(&port.name)
            .nic(nic)
            .addr(0, &format!("10.{n}.0.2/24"))
            .addr(0, &format!("fd0{n}::2/64"))
            .script(&routes),
    )
}

/// Drops a router interface may show without anything being wrong: the guests' own
/// multicast chatter (MLD reports, router solicitations, their duplicate address
/// detection for their own addresses), and traceroute's probes that expire at the
/// router (counted, and checked, separately).
const EXPECTED: &[&str] = &["unsupported", "not_for_us", "ttl_exceeded"];

fn unexpected_drops(stats: &Stats, iface: &str) -> Vec<(String, u64)> {
    stats
        .router_drops(iface)
        .into_iter()
        .filter(|(r, _)| !EXPECTED.contains(&r.as_str()))
        .collect()
}

#[test]
fn two_subnets_route_over_ipv4_and_ipv6() {
    let _serial = serial();
    let dir = TempDir::new("routing");
    let ports = [
        Port::new("vm0", dir.path(), Mode::Server, 1),
        Port::new("vm1", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&routed(1, &ports, ROUTER), &[]);

    // Guest 2 only answers: the router learns of it by asking (ARP and NS) when guest 1's
    // first packets arrive, so resolution is seen in the router-to-guest direction; guest
    // 1 resolves the router, so it is seen in the other direction too.
    let mut g2 = guest(&ports[1], 2, None, "echo READY; sleep 600");
    let peers = ["10.2.0.2".to_string(), "fd02::2".to_string()];
    let runs = [
        ping_run("10.2.0.2", COUNT),
        ping_run("fd02::2", COUNT),
        ping_run("10.1.0.1", COUNT),
        ping_run("fd01::1", COUNT),
        ping_run("10.2.0.1", COUNT),
    ];
    let script = format!(
        "{}; echo PEER-UP; {}; echo PINGS-DONE; \
         traceroute -n -q 1 -w 2 10.2.0.2; traceroute6 -n -q 1 -w 2 fd02::2; echo TRACE-DONE; sleep 600",
        await_peers(&peers),
        runs.join("; ")
    );
    let mut g1 = guest(&ports[0], 1, None, &script);
    g2.wait_ready();
    g1.wait_ready();
    g2.expect("READY", Duration::from_secs(60));
    g1.expect("PEER-UP", Duration::from_secs(180));
    g1.expect_pings("PINGS-DONE", Duration::from_secs(120), &[(COUNT, COUNT); 5]);
    let trace = g1.expect("TRACE-DONE", Duration::from_secs(60));
    let stats = vnf.stats();

    // traceroute: the router's address on guest 1's side is hop 1, guest 2 is hop 2.
    for (hop1, hop2) in [("10.1.0.1", "10.2.0.2"), ("fd01::1", "fd02::2")] {
        let hops: Vec<&str> = trace
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                match (w.next(), w.next()) {
                    (Some("1"), Some(a)) if a == hop1 => Some("1"),
                    (Some("2"), Some(a)) if a == hop2 => Some("2"),
                    _ => None,
                }
            })
            .collect();
        assert_eq!(
            hops,
            ["1", "2"],
            "traceroute to {hop2} should show {hop1} then {hop2}:\n{trace}"
        );
    }

    // Neighbor discovery, both ways: the router asked for guest 2 and holds its confirmed
    // address; it answered guest 1 and learned guest 1 from the asking.
    for (addr, port, n) in [
        ("10.2.0.2", "vm1", 2),
        ("fd02::2", "vm1", 2),
        ("10.1.0.2", "vm0", 1),
        ("fd01::2", "vm0", 1),
    ] {
        let entries = stats.neighbors(addr);
        assert!(
            entries.len() == 1 && entries[0].0 == port && entries[0].1 == mac(n),
            "neighbor {addr} should be {} on {port}: {entries:?}\n{stats}",
            mac(n)
        );
    }
    for addr in ["10.2.0.2", "fd02::2"] {
        assert_eq!(
            stats.neighbors(addr)[0].2,
            "reachable",
            "{addr} answered the router's solicitation\n{stats}"
        );
    }
    assert!(stats.router_counter("vm1", "arp_requests") >= 1, "{stats}");
    assert!(stats.router_counter("vm1", "nd_solicits") >= 1, "{stats}");
    assert!(stats.router_counter("vm0", "arp_replies") >= 1, "{stats}");
    assert!(stats.router_counter("vm0", "nd_adverts") >= 1, "{stats}");
    // The echo requests to the router's own addresses were answered by the router
    // (COUNT each to 10.1.0.1, fd01::1 and 10.2.0.1, plus the awaits' probes).
    assert!(
        stats.router_counter("vm0", "icmp_sent") >= 3 * u64::from(COUNT),
        "{stats}"
    );
    // Routed traffic: at least the counted pings each way on each interface.
    for iface in ["vm0", "vm1"] {
        assert!(
            stats.router_counter(iface, "tx_packets") >= 2 * u64::from(COUNT),
            "{stats}"
        );
        assert_eq!(unexpected_drops(&stats, iface), vec![], "{iface}\n{stats}");
    }
    // The time-exceeded messages traceroute relied on were counted as such.
    assert!(
        stats.router_counter("vm0", "drop_ttl_exceeded") >= 2,
        "{stats}"
    );
    vnf.assert_running();
}

#[test]
fn path_mtu_discovery_and_a_tcp_transfer_across_mtus() {
    let _serial = serial();
    let dir = TempDir::new("routing-mtu");
    // Guest 1 has a 9000-byte MTU; guest 2's side of the router 1500.
    let ports = [
        Port::new("vm0", dir.path(), Mode::Server, 1).mtu(9000),
        Port::new("vm1", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&routed(1, &ports, ROUTER), &[]);

    // Guest 2 serves 2 MB of random bytes over HTTP and prints their checksum.
    let mut g2 = guest(
        &ports[1],
        2,
        None,
        "mkdir /www; dd if=/dev/urandom of=/www/blob bs=1024 count=2048 2>/dev/null; \
         echo SUM $(md5sum /www/blob); httpd -p 80 -h /www; echo READY; sleep 600",
    );
    // Guest 1 sends pings too big for the far side with DF set (Linux's default path
    // MTU discovery): the first is refused with fragmentation-needed, after which the
    // guest fragments to 1500 itself and the rest get through. IPv6 likewise with
    // packet-too-big. Then it fetches the file.
    let script = format!(
        "{}; echo PEER-UP; {}; ping -q -c 5 -i 0.2 -s 2000 10.2.0.2; {}; \
         ping -6 -q -c 5 -i 0.2 -s 2000 fd02::2; echo BIG-DONE; \
         wget -q -O /tmp/blob http://10.2.0.2/blob; echo GOT $(md5sum /tmp/blob); sleep 600",
        await_peers(&["10.2.0.2".to_string(), "fd02::2".to_string()]),
        frag_counters(),
        frag_counters()
    );
    let mut g1 = guest(&ports[0], 1, Some(9000), &script);
    g2.wait_ready();
    g1.wait_ready();
    let served = g2.expect("READY", Duration::from_secs(60));
    g1.expect("PEER-UP", Duration::from_secs(180));
    let big = g1.expect("BIG-DONE", Duration::from_secs(60));
    let got = g1.expect(regex_line("GOT "), Duration::from_secs(180));
    let stats = vnf.stats();

    // The router refused the first big packet of each family and said why.
    assert!(
        stats.router_counter("vm0", "drop_fragmentation_needed") >= 2,
        "{stats}"
    );
    // The guest took the hint: it fragmented the later IPv4 pings itself ...
    let frags: Vec<(u64, u64)> = big
        .lines()
        .filter(|l| l.trim_start().starts_with("FRAG creates="))
        .filter_map(parse_frag_counters)
        .collect();
    assert_eq!(frags.len(), 2, "fragment counters before and after:\n{big}");
    assert!(
        frags[1].0 > frags[0].0,
        "guest 1 fragmented after learning the path MTU: {frags:?}\n{big}"
    );
    let summaries = vnf_tests::net::summaries(&big);
    assert_eq!(summaries.len(), 2, "two ping runs:\n{big}");
    for s in &summaries {
        assert!(
            s.transmitted == 5 && s.received >= 4,
            "after the first refusal the big pings get through: {s:?}\n{big}"
        );
    }
    // ... and the file crossed intact.
    let sum = |text: &str, tag: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(tag))
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    };
    let want = sum(&served, "SUM ").expect("guest 2 printed the checksum");
    let have = sum(&got, "GOT ").expect("guest 1 printed the checksum");
    assert_eq!(
        have, want,
        "the transfer through the router changed the data"
    );
    assert_eq!(unexpected_drops(&stats, "vm1"), vec![], "{stats}");
    vnf.assert_running();
}

/// A pattern that matches once a whole line starting with `prefix` has arrived.
fn regex_line(prefix: &str) -> regex::Regex {
    regex::Regex::new(&format!(r"(?m)^{}\S+.*\n", regex::escape(prefix))).expect("regex")
}

#[test]
fn the_router_defends_its_addresses() {
    let _serial = serial();
    let dir = TempDir::new("routing-dad");
    let ports = [
        Port::new("vm0", dir.path(), Mode::Server, 1),
        Port::new("vm1", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&routed(1, &ports, ROUTER), &[]);
    // A guest misconfigured with the router's own addresses: its IPv6 duplicate address
    // detection (a solicitation from ::, which the harness's guests normally skip) is
    // answered, so the kernel gives the address up; its ARP probe for the IPv4 address
    // (busybox arping -D) gets a reply.
    let script = "sleep 2; arping -D -c 2 -w 3 -I eth0 10.1.0.1; echo ARPING-RC $?; \
                  echo 1 >/proc/sys/net/ipv6/conf/eth0/accept_dad; \
                  ip -6 addr add fd01::1/64 dev eth0; sleep 4; \
                  cat /proc/net/if_inet6; echo ADDRS-DONE; sleep 600";
    let mut g = Guest::start(
        GuestConfig::new("vm0")
            .nic(ports[0].nic(&mac(1)))
            .script(script),
    );
    g.wait_ready();
    let text = g.expect("ADDRS-DONE", Duration::from_secs(60));
    assert!(
        text.contains("ARPING-RC 1"),
        "arping -D should have seen the router answer for 10.1.0.1:\n{text}"
    );
    // /proc/net/if_inet6: address, index, prefix length, scope, flags (hex), name;
    // IFA_F_DADFAILED is 0x08.
    let flags = text
        .lines()
        .find(|l| l.starts_with("fd010000000000000000000000000001"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|f| u32::from_str_radix(f, 16).ok())
        .unwrap_or_else(|| panic!("fd01::1 not listed:\n{text}"));
    assert!(
        flags & 0x08 != 0,
        "the guest's copy of fd01::1 should have failed DAD (flags {flags:#x}):\n{text}"
    );
    let stats = vnf.stats();
    assert!(
        stats.router_counter("vm0", "address_conflicts") >= 1,
        "{stats}"
    );
    assert!(
        vnf.log().contains("duplicate address"),
        "a conflict is logged:\n{}",
        vnf.log()
    );
    vnf.assert_running();
}
