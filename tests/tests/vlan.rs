//! VLANs in a bridge: access members isolate guests, a trunk member carries tagged
//! VLANs to the matching access members only, 802.1ad trunks carry QinQ frames with
//! both tags intact, subinterface members (`vm0.100`, `vm0.300.400`) strip and add
//! their tags, and jumbo frames pass ports with a large MTU while longer ones are
//! dropped and counted.
//!
//! The guests tag frames themselves with Linux VLAN interfaces (busybox `ip link add
//! ... type vlan proto 802.1q|802.1ad`); `guest_vlans_over_cross_connect` shows that
//! this works, and that the two tag types differ on the wire, without any bridge.

use std::time::Duration;
use vnf_tests::manifest::{bridged, cross_connected};
use vnf_tests::net::{
    await_peer, await_peers, dev_counter, frag_counters, ipv4, ipv4_cidr, ipv6, mac,
    numbered_guest, parse_frag_counters, ping_run, subnet_cidr, subnet_ip, unanswered_run,
};
use vnf_tests::{
    serial, Bridge, Guest, GuestConfig, Member, Mode, Port, Stats, TempDir, Tpid, Vnf,
};

const COUNT: u32 = 20;
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn ports(dir: &TempDir, count: usize) -> Vec<Port> {
    (0..count)
        .map(|i| Port::new(&format!("vm{i}"), dir.path(), Mode::Server, 1))
        .collect()
}

/// A guest with MAC `mac(n)` on `port` and no address on eth0 (VLAN interfaces and
/// addresses are added by the caller).
fn bare_guest(port: &Port, n: u8) -> GuestConfig {
    GuestConfig::new(&port.name).nic(port.nic(&mac(n)))
}

/// Checks that guest `n`'s MAC is in the bridge's table exactly at `(vlan, interface)`
/// for each of `expected`, learned, and nowhere else.
fn assert_mac_at(stats: &Stats, n: u8, expected: &[(u16, &str)]) {
    let mut got: Vec<(u16, String)> = stats
        .mac_entries("br0", &mac(n))
        .into_iter()
        .map(|e| {
            assert_eq!(e.kind, "learned", "{e}:\n{stats}");
            (e.vlan, e.interface)
        })
        .collect();
    got.sort();
    let mut want: Vec<(u16, String)> = expected.iter().map(|(v, i)| (*v, i.to_string())).collect();
    want.sort();
    assert_eq!(
        got,
        want,
        "MAC {} (guest {n}) in the table as (vlan, interface):\n{stats}",
        mac(n)
    );
}

/// Fails unless `guest` is still running the script part that ends with `marker`: its
/// pings that expect no answer only prove isolation if they overlap the time its
/// would-be peers were up.
fn assert_not_yet(guest: &mut Guest, marker: &str) {
    if guest.console().contains(marker) {
        guest.fail(&format!(
            "guest {} reached {marker} before the other guests were up: its unanswered pings prove nothing; make them run longer",
            guest.name()
        ));
    }
}

/// Re-reads stats until `holds` (the guests may send a stray frame, e.g. IPv6
/// housekeeping, between counters read for different ports), at most five times.
fn settled(vnf: &mut Vnf, holds: impl Fn(&Stats) -> bool) -> Stats {
    let mut stats = vnf.stats();
    for _ in 0..5 {
        if holds(&stats) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        stats = vnf.stats();
    }
    stats
}

/// Not a bridge test: the control for the others. Two guests on a plain cross-connect
/// (which forwards frames untouched) with QinQ interfaces (802.1ad 100, then 802.1Q
/// 200 inside) ping each other; on VLAN 101 one uses an 802.1ad tag and the other an
/// 802.1Q tag, and they do not, so the guests really send the tag type asked for.
#[test]
fn guest_vlans_over_cross_connect() {
    let _serial = serial();
    let dir = TempDir::new("vlan-xc");
    let ports = ports(&dir, 2);
    let mut vnf = Vnf::start(&cross_connected(1, &ports), &[]);
    let start = |n: u8, peer: u8, tpid_101: Tpid| {
        let script = format!(
            "{}; echo PEERS-UP; {}; {}; {}; echo PINGS-DONE; sleep 600",
            await_peer(&subnet_ip(200, peer)),
            ping_run(&subnet_ip(200, peer), COUNT),
            ping_run(&format!("fd00:200::{peer}"), COUNT),
            unanswered_run(&subnet_ip(101, peer), 5),
        );
        let port = &ports[usize::from(n - 1)];
        Guest::start(
            bare_guest(port, n)
                .vlan("eth0", 100, Tpid::Dot1ad)
                .vlan("eth0.100", 200, Tpid::Dot1q)
                .addr_on("eth0.100.200", &subnet_cidr(200, n))
                .addr_on("eth0.100.200", &format!("fd00:200::{n}/64"))
                .vlan("eth0", 101, tpid_101)
                .addr_on("eth0.101", &subnet_cidr(101, n))
                .script(&script),
        )
    };
    let mut guests = [start(1, 2, Tpid::Dot1ad), start(2, 1, Tpid::Dot1q)];
    for guest in &mut guests {
        guest.wait_ready();
    }
    for guest in &mut guests {
        guest.expect("PEERS-UP", RUN_TIMEOUT);
    }
    for guest in &mut guests {
        guest.expect_pings(
            "PINGS-DONE",
            RUN_TIMEOUT,
            &[(COUNT, COUNT), (COUNT, COUNT), (5, 0)],
        );
    }
    vnf.assert_running();
}

/// Guests 1 and 2 are access members of VLAN 10, guest 3 of VLAN 20, all in one IP
/// subnet: 1 and 2 reach each other, 3 reaches nobody and nobody reaches 3, and vnf
/// delivers no frame at all to guest 3.
#[test]
fn vlans_isolate_guests() {
    let _serial = serial();
    let dir = TempDir::new("vlan-iso");
    let ports = ports(&dir, 3);
    let bridge = Bridge::new("br0")
        .member(Member::access("vm0", 10))
        .member(Member::access("vm1", 10))
        .member(Member::access("vm2", 20));
    let mut vnf = Vnf::start(&bridged(1, &ports, &[bridge]), &[]);

    let script1 = format!(
        "{}; echo PEERS-UP; {}; {}; {}; {}; echo PINGS-DONE; sleep 600",
        await_peer(&ipv4(2)),
        ping_run(&ipv4(2), COUNT),
        ping_run(&ipv6(2), COUNT),
        unanswered_run(&ipv4(3), 5),
        unanswered_run(&ipv6(3), 5),
    );
    let script2 = format!(
        "{}; echo PEERS-UP; {}; echo PINGS-DONE; sleep 600",
        await_peer(&ipv4(1)),
        ping_run(&ipv4(1), COUNT),
    );
    // Guest 3 cannot tell when the others are up, so it keeps trying for 20 s; the test
    // checks that this overlaps the time both were up.
    let script3 = format!(
        "ping -q -c 80 -i 0.25 -W 1 {} & ping -6 -q -c 80 -i 0.25 -W 1 {} & wait; echo ISOLATED-DONE; sleep 600",
        ipv4(1),
        ipv6(2),
    );
    let mut guests = [
        Guest::start(numbered_guest("vm0", 1, ports[0].nic(&mac(1))).script(&script1)),
        Guest::start(numbered_guest("vm1", 2, ports[1].nic(&mac(2))).script(&script2)),
        Guest::start(numbered_guest("vm2", 3, ports[2].nic(&mac(3))).script(&script3)),
    ];
    for guest in &mut guests {
        guest.wait_ready();
    }
    guests[0].expect("PEERS-UP", RUN_TIMEOUT);
    guests[1].expect("PEERS-UP", RUN_TIMEOUT);
    assert_not_yet(&mut guests[2], "ISOLATED-DONE");
    guests[0].expect_pings(
        "PINGS-DONE",
        RUN_TIMEOUT,
        &[(COUNT, COUNT), (COUNT, COUNT), (5, 0), (5, 0)],
    );
    guests[1].expect_pings("PINGS-DONE", RUN_TIMEOUT, &[(COUNT, COUNT)]);
    guests[2].expect_pings("ISOLATED-DONE", RUN_TIMEOUT, &[(80, 0), (80, 0)]);

    // Frames reach guests 1 and 2 only from each other.
    let only_each_other = |s: &Stats| {
        s.counter("vm0", "all", "tx_packets") <= s.counter("vm1", "all", "rx_packets")
            && s.counter("vm1", "all", "tx_packets") <= s.counter("vm0", "all", "rx_packets")
    };
    let stats = settled(&mut vnf, only_each_other);
    assert!(
        only_each_other(&stats),
        "vm0 or vm1 was sent more frames than the other received: some came from guest 3:\n{stats}"
    );
    // Guest 3 is alone in VLAN 20: nothing at all may be delivered to it, although it
    // sent plenty (its ARP requests and neighbour solicitations alone).
    assert_eq!(
        stats.counter("vm2", "all", "tx_packets"),
        0,
        "frames of VLAN 10 reached guest 3 in VLAN 20:\n{stats}"
    );
    let rx3 = stats.counter("vm2", "all", "rx_packets");
    assert!(rx3 > 0, "guest 3 sent nothing?\n{stats}");
    assert_mac_at(&stats, 1, &[(10, "vm0")]);
    assert_mac_at(&stats, 2, &[(10, "vm1")]);
    assert_mac_at(&stats, 3, &[(20, "vm2")]);
    vnf.assert_running();
}

/// Guest T is on a trunk member allowing VLANs 10 and 20 and has VLAN interfaces
/// eth0.10, eth0.20 and eth0.30, each in its own subnet; guests A, B and C are access
/// members of VLANs 10, 20 and 30. T reaches A over eth0.10 and B over eth0.20; VLAN 30
/// is not allowed on the trunk, so T and C never reach each other, T's VLAN 30 frames
/// are dropped as `vlan_filtered` and nothing at all is delivered to C.
#[test]
fn trunk_reaches_matching_access_ports_only() {
    let _serial = serial();
    let dir = TempDir::new("vlan-trunk");
    let ports = ports(&dir, 4);
    let bridge = Bridge::new("br0")
        .member(Member::trunk("vm0", &[10, 20]))
        .member(Member::access("vm1", 10))
        .member(Member::access("vm2", 20))
        .member(Member::access("vm3", 30));
    let mut vnf = Vnf::start(&bridged(1, &ports, &[bridge]), &[]);

    // Guest T is number 1, A 2, B 3, C 4; VLAN v uses subnet 10.v.0.0/24, with T at .1
    // and the access guest at .2.
    let t_script = format!(
        "{}; echo PEERS-UP; {}; {}; {}; echo \"VLAN30-TX $({})\"; echo PINGS-DONE; sleep 600",
        await_peers(&[subnet_ip(10, 2), subnet_ip(20, 2)]),
        ping_run(&subnet_ip(10, 2), COUNT),
        ping_run(&subnet_ip(20, 2), COUNT),
        unanswered_run(&subnet_ip(30, 2), 5),
        dev_counter("eth0.30", "tx_packets"),
    );
    let mut trunk = bare_guest(&ports[0], 1);
    for vlan in [10, 20, 30] {
        trunk = trunk
            .vlan("eth0", vlan, Tpid::Dot1q)
            .addr_on(&format!("eth0.{vlan}"), &subnet_cidr(vlan as u8, 1));
    }
    let access = |n: u8, vlan: u8| {
        let script = format!(
            "{}; echo PEERS-UP; {}; echo PINGS-DONE; sleep 600",
            await_peer(&subnet_ip(vlan, 1)),
            ping_run(&subnet_ip(vlan, 1), COUNT),
        );
        Guest::start(
            bare_guest(&ports[usize::from(n - 1)], n)
                .addr(0, &subnet_cidr(vlan, 2))
                .script(&script),
        )
    };
    let c_script = format!(
        "{}; echo ISOLATED-DONE; sleep 600",
        "ping -q -c 80 -i 0.25 -W 1 10.30.0.1"
    );
    let mut guests = [
        Guest::start(trunk.script(&t_script)),
        access(2, 10),
        access(3, 20),
        Guest::start(
            bare_guest(&ports[3], 4)
                .addr(0, &subnet_cidr(30, 2))
                .script(&c_script),
        ),
    ];
    for guest in &mut guests {
        guest.wait_ready();
    }
    for guest in &mut guests[..3] {
        guest.expect("PEERS-UP", RUN_TIMEOUT);
    }
    assert_not_yet(&mut guests[3], "ISOLATED-DONE");
    let t_out = guests[0].expect_pings(
        "PINGS-DONE",
        RUN_TIMEOUT,
        &[(COUNT, COUNT), (COUNT, COUNT), (5, 0)],
    );
    for guest in &mut guests[1..3] {
        guest.expect_pings("PINGS-DONE", RUN_TIMEOUT, &[(COUNT, COUNT)]);
    }
    guests[3].expect_pings("ISOLATED-DONE", RUN_TIMEOUT, &[(80, 0)]);
    let vlan30_tx: u64 = t_out
        .lines()
        .find_map(|l| l.strip_prefix("VLAN30-TX "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| guests[0].fail("no VLAN30-TX line"));

    let stats = vnf.stats();
    assert!(vlan30_tx > 0, "guest T sent nothing on eth0.30");
    let filtered = stats.counter_or_zero("vm0", "all", "drop_vlan_filtered");
    assert!(
        filtered >= vlan30_tx,
        "guest T sent {vlan30_tx} frames tagged 30 on a trunk allowing 10 and 20, but vm0 drop_vlan_filtered={filtered}:\n{stats}"
    );
    assert_eq!(
        stats.counter("vm3", "all", "tx_packets"),
        0,
        "frames reached guest C, alone in VLAN 30:\n{stats}"
    );
    // T's MAC is known in the two VLANs it reached, on the trunk; its untagged and
    // VLAN 30 frames were dropped before learning.
    assert_mac_at(&stats, 1, &[(10, "vm0"), (20, "vm0")]);
    assert_mac_at(&stats, 2, &[(10, "vm1")]);
    assert_mac_at(&stats, 3, &[(20, "vm2")]);
    assert_mac_at(&stats, 4, &[(30, "vm3")]);
    vnf.assert_running();
}

/// Two guests on 802.1ad trunk members allowing VLAN 100 each stack an 802.1Q
/// interface (VLAN 200) on an 802.1ad one (VLAN 100) and ping over the inner one: the
/// frames cross the bridge with the outer service tag and the inner customer tag both
/// intact (Linux delivers to eth0.100.200 only frames tagged 0x88a8/100 outside and
/// 0x8100/200 inside).
#[test]
fn qinq_frames_keep_both_tags() {
    let _serial = serial();
    let dir = TempDir::new("vlan-qinq");
    let ports = ports(&dir, 2);
    let bridge = Bridge::new("br0")
        .member(Member::trunk("vm0", &[100]).tpid(Tpid::Dot1ad))
        .member(Member::trunk("vm1", &[100]).tpid(Tpid::Dot1ad));
    let mut vnf = Vnf::start(&bridged(1, &ports, &[bridge]), &[]);
    let start = |n: u8, peer: u8| {
        let script = format!(
            "{}; echo PEERS-UP; {}; {}; echo PINGS-DONE; sleep 600",
            await_peer(&subnet_ip(200, peer)),
            ping_run(&subnet_ip(200, peer), COUNT),
            ping_run(&format!("fd00:200::{peer}"), COUNT),
        );
        Guest::start(
            bare_guest(&ports[usize::from(n - 1)], n)
                .vlan("eth0", 100, Tpid::Dot1ad)
                .vlan("eth0.100", 200, Tpid::Dot1q)
                .addr_on("eth0.100.200", &subnet_cidr(200, n))
                .addr_on("eth0.100.200", &format!("fd00:200::{n}/64"))
                .script(&script),
        )
    };
    let mut guests = [start(1, 2), start(2, 1)];
    for guest in &mut guests {
        guest.wait_ready();
    }
    for guest in &mut guests {
        guest.expect("PEERS-UP", RUN_TIMEOUT);
    }
    for guest in &mut guests {
        guest.expect_pings("PINGS-DONE", RUN_TIMEOUT, &[(COUNT, COUNT), (COUNT, COUNT)]);
    }
    let stats = vnf.stats();
    // The bridge learns in the outer (service) VLAN; the inner tag is payload.
    assert_mac_at(&stats, 1, &[(100, "vm0")]);
    assert_mac_at(&stats, 2, &[(100, "vm1")]);
    for member in ["vm0", "vm1"] {
        let rx = stats.bridge_counter("br0", member, "rx_packets");
        assert!(
            rx >= u64::from(4 * COUNT),
            "{member} rx_packets={rx}:\n{stats}"
        );
    }
    vnf.assert_running();
}

/// Subinterface members: guest S's port is a member only as `vm0.300.400` (outer
/// 802.1ad tag 300, inner 802.1Q tag 400), guest V's only as `vm1.100` (802.1Q tag
/// 100), guest U's port is an untagged access member; all three are in VLAN 10 and
/// one subnet, and every pair reaches each other, so vnf removes the tags on the way
/// in and adds them on the way out. S's untagged frames belong to no member and are
/// dropped as `no_destination`.
#[test]
fn subinterface_members_tag_and_untag() {
    let _serial = serial();
    let dir = TempDir::new("vlan-sub");
    let ports = ports(&dir, 3);
    let bridge = Bridge::new("br0")
        .member(Member::access("vm0.300.400", 10))
        .member(Member::access("vm1.100", 10))
        .member(Member::access("vm2", 10));
    let mut vnf = Vnf::start(&bridged(1, &ports, &[bridge]), &[]);

    let script = |n: u8, extra: &str| {
        let peers: Vec<u8> = (1..=3).filter(|&p| p != n).collect();
        let runs: Vec<String> = peers.iter().map(|&p| ping_run(&ipv4(p), COUNT)).collect();
        format!(
            "{}; echo PEERS-UP; {}; {extra}echo PINGS-DONE; sleep 600",
            await_peers(&peers.iter().map(|&p| ipv4(p)).collect::<Vec<_>>()),
            runs.join("; "),
        )
    };
    // S also sends untagged ARP requests for an address nobody has.
    let untagged = format!("{}; ", unanswered_run("10.99.0.9", 3));
    let s = bare_guest(&ports[0], 1)
        .vlan("eth0", 300, Tpid::Dot1ad)
        .vlan("eth0.300", 400, Tpid::Dot1q)
        .addr_on("eth0.300.400", &ipv4_cidr(1))
        .addr(0, "10.99.0.1/24")
        .script(&script(1, &untagged));
    let v = bare_guest(&ports[1], 2)
        .vlan("eth0", 100, Tpid::Dot1q)
        .addr_on("eth0.100", &ipv4_cidr(2))
        .script(&script(2, ""));
    let u = bare_guest(&ports[2], 3)
        .addr(0, &ipv4_cidr(3))
        .script(&script(3, ""));
    let mut guests = [Guest::start(s), Guest::start(v), Guest::start(u)];
    for guest in &mut guests {
        guest.wait_ready();
    }
    for guest in &mut guests {
        guest.expect("PEERS-UP", RUN_TIMEOUT);
    }
    guests[0].expect_pings(
        "PINGS-DONE",
        RUN_TIMEOUT,
        &[(COUNT, COUNT), (COUNT, COUNT), (3, 0)],
    );
    for guest in &mut guests[1..] {
        guest.expect_pings("PINGS-DONE", RUN_TIMEOUT, &[(COUNT, COUNT), (COUNT, COUNT)]);
    }

    let stats = vnf.stats();
    assert_mac_at(&stats, 1, &[(10, "vm0.300.400")]);
    assert_mac_at(&stats, 2, &[(10, "vm1.100")]);
    assert_mac_at(&stats, 3, &[(10, "vm2")]);
    for member in ["vm0.300.400", "vm1.100", "vm2"] {
        for key in ["rx_packets", "tx_packets"] {
            let n = stats.bridge_counter("br0", member, key);
            assert!(
                n >= u64::from(4 * COUNT),
                "member {member} {key}={n}:\n{stats}"
            );
        }
    }
    let no_dest = stats.counter_or_zero("vm0", "all", "drop_no_destination");
    assert!(
        no_dest > 0,
        "guest S's untagged ARP requests on vm0 (no untagged member) should count as drop_no_destination:\n{stats}"
    );
    vnf.assert_running();
}

/// Jumbo frames. vm0 has MTU 9000, vm1 9216. Guest 1's NIC is offered MTU 9000 by
/// QEMU (host_mtu); guest 2's NIC is offered none and guest 2 raises its MTU to 9300.
/// Pings of 8972 bytes (9000-byte IP packets) go both ways unfragmented. Then guest 2
/// sends 9128-byte packets, which fit vm1 but not vm0 (dropped as `mtu_exceeded`),
/// and 9228-byte ones, which do not fit vm1 (dropped as `oversize`).
#[test]
fn jumbo_ping_with_mtu_9000() {
    let _serial = serial();
    let dir = TempDir::new("vlan-jumbo");
    let ports = [
        Port::new("vm0", dir.path(), Mode::Server, 1).mtu(9000),
        Port::new("vm1", dir.path(), Mode::Server, 1).mtu(9216),
    ];
    let bridge = Bridge::new("br0")
        .member(Member::plain("vm0"))
        .member(Member::plain("vm1"));
    let mut vnf = Vnf::start(&bridged(1, &ports, &[bridge]), &[]);
    let jumbo = |peer: u8| format!("ping -q -c {COUNT} -i 0.05 -s 8972 {}", ipv4(peer));
    let script1 = format!(
        "echo \"BOOT-MTU $(cat /sys/class/net/eth0/mtu)\"; {}; echo PEERS-UP; sleep 2; {}; {}; echo JUMBO-DONE; sleep 600",
        await_peer(&ipv4(2)),
        jumbo(2),
        frag_counters(),
    );
    let script2 = format!(
        "echo \"BOOT-MTU $(cat /sys/class/net/eth0/mtu)\"; ip link set eth0 mtu 9300; {}; echo PEERS-UP; sleep 2; {}; {}; echo JUMBO-DONE; sleep 4; \
         ping -q -c 5 -i 0.2 -W 1 -s 9100 {peer}; ping -q -c 5 -i 0.2 -W 1 -s 9200 {peer}; echo BIG-DONE; sleep 600",
        await_peer(&ipv4(1)),
        jumbo(1),
        frag_counters(),
        peer = ipv4(1),
    );
    let mut guests = [
        Guest::start(numbered_guest("vm0", 1, ports[0].nic(&mac(1)).mtu(9000)).script(&script1)),
        Guest::start(numbered_guest("vm1", 2, ports[1].nic(&mac(2))).script(&script2)),
    ];
    let mut boot_mtu = Vec::new();
    let boot_line = regex::Regex::new(r"BOOT-MTU (\d+)\n").unwrap();
    for guest in &mut guests {
        guest.wait_ready();
        let line = guest.expect(&boot_line, RUN_TIMEOUT);
        boot_mtu.push(boot_line.captures(&line).unwrap()[1].to_string());
    }
    // Under QEMU the guest's MTU comes from the device's host_mtu, not from the
    // backend: guest 2's port has MTU 9216 in vnf, yet (as observed) it boots with 1500;
    // QEMU's virtio-net does not read a vhost-user backend's config space.
    eprintln!(
        "eth0 MTU at boot: guest 1 (host_mtu=9000) {}, guest 2 (none; vnf port MTU 9216) {}",
        boot_mtu[0], boot_mtu[1]
    );
    if boot_mtu[0] != "9000" {
        guests[0].fail(&format!(
            "guest 1 booted with MTU {}, not the 9000 its NIC offers",
            boot_mtu[0]
        ));
    }
    for guest in &mut guests {
        guest.expect("PEERS-UP", RUN_TIMEOUT);
    }
    let before = vnf.stats();
    for guest in &mut guests {
        let out = guest.expect_pings("JUMBO-DONE", RUN_TIMEOUT, &[(COUNT, COUNT)]);
        let frags = parse_frag_counters(&out);
        if frags != Some((0, 0)) {
            guest.fail(&format!(
                "guest fragmented or reassembled IP packets: (FragCreates, ReasmReqds) = {frags:?}"
            ));
        }
    }
    let jumbo_done = vnf.stats();
    // Each port received COUNT requests and COUNT replies, 9014-byte frames, and
    // hardly anything else; split into frames of 1514 bytes or less, they would have
    // taken seven frames each.
    let jumbo_bytes = u64::from(2 * COUNT) * 9014;
    for port in ["vm0", "vm1"] {
        let delta = |key| jumbo_done.counter(port, "all", key) - before.counter(port, "all", key);
        let (frames, bytes) = (delta("rx_packets"), delta("rx_bytes"));
        assert!(
            bytes >= jumbo_bytes && frames < u64::from(4 * COUNT),
            "{port} received {frames} frames of {bytes} bytes during the jumbo pings, expected \
             {} of 9014 bytes and few others:\nbefore:\n{before}\nafter:\n{jumbo_done}",
            2 * COUNT
        );
    }

    guests[1].expect_pings("BIG-DONE", RUN_TIMEOUT, &[(5, 0), (5, 0)]);
    let stats = vnf.stats();
    let exceeded: u64 = ["vm0", "vm1"]
        .iter()
        .map(|p| stats.counter_or_zero(p, "all", "drop_mtu_exceeded"))
        .sum();
    assert!(
        exceeded >= 5,
        "5 frames of 9142 bytes from vm1 (MTU 9216) to vm0 (MTU 9000) should count as drop_mtu_exceeded:\n{stats}"
    );
    let oversize = stats.counter_or_zero("vm1", "all", "drop_oversize");
    assert!(
        oversize >= 5,
        "5 frames of 9242 bytes received on vm1 (MTU 9216) should count as drop_oversize:\n{stats}"
    );
    assert_eq!(
        stats.counter_or_zero("vm0", "all", "drop_oversize"),
        0,
        "{stats}"
    );
    // None of them reached guest 1.
    let delivered =
        stats.counter("vm0", "all", "tx_bytes") - jumbo_done.counter("vm0", "all", "tx_bytes");
    assert!(
        delivered < 9000,
        "vm0 was sent {delivered} bytes after the jumbo pings: an over-long frame got through?\n{stats}"
    );
    vnf.assert_running();
}
