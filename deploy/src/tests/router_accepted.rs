//! The router section as accepted: what each form becomes, and that the written
//! manifest reads back the same.

use std::net::IpAddr;

use super::accept;
use super::accepted::assert_round_trips;
use crate::{
    Attach, InterfaceName, Manifest, NeighborSpec, NextHopSpec, Prefix, RouteAction, RouteSpec,
    RouterInterfaceSpec, RouterSpec,
};

/// Ports vm0 (mtu 1500), vm1 (9000) and vm2 (1400); vm1 and vm2.5 are in bridge br0.
const PORTS: &str = "\
ports:
  - {name: vm0, type: vhost-user, socket: a}
  - {name: vm1, type: vhost-user, socket: b, mtu: 9000}
  - {name: vm2, type: vhost-user, socket: c, mtu: 1400}
bridges:
  - {name: br0, members: [vm1, vm2.5]}
";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn prefix(text: &str) -> Prefix {
    let (addr, len) = text.split_once('/').unwrap();
    Prefix {
        addr: ip(addr),
        len: len.parse().unwrap(),
    }
}

fn iface(port: &str, tags: &[u16]) -> InterfaceName {
    InterfaceName {
        port: port.into(),
        tags: tags.to_vec(),
    }
}

fn via(gateway: &str, interface: usize) -> NextHopSpec {
    NextHopSpec {
        via: Some(ip(gateway)),
        interface,
    }
}

fn route(to: &str, action: RouteAction) -> RouteSpec {
    RouteSpec {
        to: prefix(to),
        action,
    }
}

/// Accepts a router section after PORTS, checks the round trip, and returns the router.
fn router(router: &str) -> RouterSpec {
    let m = accept(&format!("{PORTS}{router}"));
    assert_round_trips(&m);
    m.router
}

#[test]
fn every_router_field_is_read() {
    let r = router(
        "\
router:
  interfaces:
    - { name: vm0, addresses: [10.0.1.1/24, \"fd00:1::1/64\"] }
    - { name: vm2.100, addresses: [10.0.2.1/24], mac: \"02:00:00:00:00:01\", mtu: 1300 }
    - { name: br0, addresses: [192.168.1.1/24] }
  routes:
    - { to: 10.9.0.0/16, via: 10.0.1.2 }
    - { to: 0.0.0.0/0, via: [10.0.1.2, 10.0.2.2] }
    - { to: 10.8.0.0/16, interface: vm2.100 }
    - { to: \"fd00:9::/48\", via: \"fe80::1\", interface: vm0 }
    - { to: 10.7.0.0/16, type: blackhole }
    - { to: 10.6.0.0/16, type: unreachable }
    - { to: \"fd00:6::/48\", type: prohibit }
    - { to: 10.5.0.0/16, via: 192.168.1.9, interface: br0 }
  neighbors:
    - { interface: vm0, address: 10.0.1.5, mac: \"52:54:00:00:00:05\" }
    - { interface: br0, address: \"fe80::7\", mac: \"52:54:00:00:00:07\" }
",
    );
    assert_eq!(
        r.interfaces,
        [
            RouterInterfaceSpec {
                name: iface("vm0", &[]),
                attach: Attach::Port,
                mac: [0x02, 0x76, 0x6e, 0, 0, 0],
                mtu: 1500,
                addresses: vec![prefix("10.0.1.1/24"), prefix("fd00:1::1/64")],
            },
            RouterInterfaceSpec {
                name: iface("vm2", &[100]),
                attach: Attach::Port,
                mac: [0x02, 0, 0, 0, 0, 1],
                mtu: 1300,
                addresses: vec![prefix("10.0.2.1/24")],
            },
            RouterInterfaceSpec {
                name: iface("br0", &[]),
                attach: Attach::Bridge,
                mac: [0x02, 0x76, 0x6e, 0, 0, 2],
                // The smaller of vm1's 9000 and vm2's 1400.
                mtu: 1400,
                addresses: vec![prefix("192.168.1.1/24")],
            },
        ]
    );
    use RouteAction::*;
    assert_eq!(
        r.routes,
        [
            route("10.9.0.0/16", Forward(vec![via("10.0.1.2", 0)])),
            route(
                "0.0.0.0/0",
                Forward(vec![via("10.0.1.2", 0), via("10.0.2.2", 1)])
            ),
            route(
                "10.8.0.0/16",
                Forward(vec![NextHopSpec {
                    via: None,
                    interface: 1
                }])
            ),
            route("fd00:9::/48", Forward(vec![via("fe80::1", 0)])),
            route("10.7.0.0/16", Blackhole),
            route("10.6.0.0/16", Unreachable),
            route("fd00:6::/48", Prohibit),
            route("10.5.0.0/16", Forward(vec![via("192.168.1.9", 2)])),
        ]
    );
    assert_eq!(
        r.neighbors,
        [
            NeighborSpec {
                interface: 0,
                address: ip("10.0.1.5"),
                mac: [0x52, 0x54, 0, 0, 0, 5],
            },
            NeighborSpec {
                interface: 2,
                address: ip("fe80::7"),
                mac: [0x52, 0x54, 0, 0, 0, 7],
            },
        ]
    );
}

#[test]
fn no_router_is_an_empty_router() {
    let m = accept(PORTS);
    assert!(m.router.is_empty());
    assert_eq!(m.router, RouterSpec::default());
    assert!(!m.to_yaml().contains("router"), "{}", m.to_yaml());
    for empty in [
        "router:\n",
        "router: {}\n",
        "router:\n  interfaces:\n  routes: []\n  neighbors:\n",
    ] {
        let m = accept(&format!("{PORTS}{empty}"));
        assert!(m.router.is_empty(), "{empty}");
        assert!(!m.to_yaml().contains("router"), "{empty}");
    }
    assert!(Manifest::default_manifest().router.is_empty());
}

#[test]
fn defaults_follow_the_index_and_the_link() {
    let r = router(
        "router:\n  interfaces:\n    - {name: vm1.7, addresses: [10.0.0.1/24]}\n    - {name: vm0.8.9, addresses: [10.0.1.1/24]}\n    - {name: vm2, addresses: [10.0.2.1/24]}\n",
    );
    let macs: Vec<[u8; 6]> = r.interfaces.iter().map(|i| i.mac).collect();
    assert_eq!(
        macs,
        [
            [0x02, 0x76, 0x6e, 0, 0, 0],
            [0x02, 0x76, 0x6e, 0, 0, 1],
            [0x02, 0x76, 0x6e, 0, 0, 2]
        ]
    );
    // A subinterface's MTU is its port's: tags do not count against it.
    let mtus: Vec<u16> = r.interfaces.iter().map(|i| i.mtu).collect();
    assert_eq!(mtus, [9000, 1500, 1400]);
}

#[test]
fn routing_and_bridging_share_a_port_on_different_interfaces() {
    // vm1 and vm2.5 are bridged; vm1.5 and vm2 are not, so they may be routed.
    let r = router(
        "router:\n  interfaces:\n    - {name: vm1.5, addresses: [10.0.0.1/24]}\n    - {name: vm2, addresses: [10.0.1.1/24]}\n",
    );
    assert_eq!(r.interfaces[0].name, iface("vm1", &[5]));
    assert_eq!(r.interfaces[1].name, iface("vm2", &[]));
}

#[test]
fn a_bridge_name_wins_over_a_port_with_a_tag() {
    // `vm0.5` is the bridge, as the longest port name wins among ports.
    let m = accept(
        "\
ports:
  - {name: vm0, type: vhost-user, socket: a}
  - {name: vm1, type: vhost-user, socket: b}
bridges:
  - {name: vm0.5, members: [vm1]}
router:
  interfaces:
    - {name: vm0.5, addresses: [10.0.0.1/24]}
    - {name: vm0.6, addresses: [10.0.1.1/24]}
",
    );
    assert_eq!(m.router.interfaces[0].attach, Attach::Bridge);
    assert_eq!(m.router.interfaces[0].name, iface("vm0.5", &[]));
    assert_eq!(m.router.interfaces[1].attach, Attach::Port);
    assert_eq!(m.router.interfaces[1].name, iface("vm0", &[6]));
    assert_round_trips(&m);
}

#[test]
fn a_bridge_has_a_router_interface_per_vlan() {
    let m = accept(
        "\
ports:
  - {name: vm0, type: vhost-user, socket: a}
  - {name: vm1, type: vhost-user, socket: b}
bridges:
  - name: br0
    members: [{interface: vm0, trunk: [100, 200]}, {interface: vm1, access: 200}]
router:
  interfaces:
    - {name: br0, addresses: [10.0.1.1/24]}
    - {name: br0.100, addresses: [10.0.2.1/24]}
    - {name: br0.200, addresses: [10.0.3.1/24]}
",
    );
    let names: Vec<_> = m
        .router
        .interfaces
        .iter()
        .map(|i| (i.name.clone(), i.attach))
        .collect();
    assert_eq!(
        names,
        vec![
            (iface("br0", &[]), Attach::Bridge),
            (iface("br0", &[100]), Attach::Bridge),
            (iface("br0", &[200]), Attach::Bridge),
        ]
    );
    assert_round_trips(&m);
}

#[test]
fn addresses_may_be_any_host_of_their_subnet() {
    // /31 and /32 have no network or broadcast address; a subnet of one interface may
    // sit next to another's; addresses are written back in their usual form.
    let r = router(
        "router:\n  interfaces:\n    - {name: vm0, addresses: [10.0.0.0/31, 10.0.1.255/32, 10.0.2.255/23, \"FD00:0:0:0::1/64\", \"2001:db8::/127\"]}\n    - {name: vm2, addresses: [10.0.4.1/22]}\n",
    );
    let written: Vec<String> = r.interfaces[0]
        .addresses
        .iter()
        .map(Prefix::to_string)
        .collect();
    assert_eq!(
        written,
        [
            "10.0.0.0/31",
            "10.0.1.255/32",
            "10.0.2.255/23",
            "fd00::1/64",
            "2001:db8::/127"
        ]
    );
}

#[test]
fn default_routes_and_host_routes_are_prefixes_too() {
    let r = router(
        "\
router:
  interfaces:
    - {name: vm0, addresses: [10.0.1.1/24, \"fd00:1::1/64\"]}
  routes:
    - {to: 0.0.0.0/0, via: 10.0.1.2}
    - {to: ::/0, via: \"fd00:1::2\"}
    - {to: 10.0.9.9/32, interface: vm0}
    - {to: \"fd00:9::9/128\", interface: vm0}
",
    );
    let to: Vec<String> = r.routes.iter().map(|r| r.to.to_string()).collect();
    assert_eq!(to, ["0.0.0.0/0", "::/0", "10.0.9.9/32", "fd00:9::9/128"]);
}

#[test]
fn link_local_gateways_and_neighbors_are_on_any_interface() {
    // vm2 has no IPv6 address of its own; vnf derives one from the MAC.
    let r = router(
        "\
router:
  interfaces:
    - {name: vm0, addresses: [10.0.1.1/24, \"fd00:1::1/64\"]}
    - {name: vm2, addresses: [10.0.2.1/24]}
  routes:
    - {to: \"fd00:9::/48\", via: [\"fe80::1\", \"fe80::2\"], interface: vm2}
  neighbors:
    - {interface: vm2, address: \"fe80::1\", mac: \"52:54:00:00:00:01\"}
    - {interface: vm0, address: \"fe80::1\", mac: \"52:54:00:00:00:01\"}
",
    );
    assert_eq!(
        r.routes[0].action,
        RouteAction::Forward(vec![via("fe80::1", 1), via("fe80::2", 1)])
    );
    assert_eq!((r.neighbors[0].interface, r.neighbors[1].interface), (1, 0));
}

#[test]
fn ecmp_over_several_interfaces_is_written_without_one() {
    let m = accept(&format!(
        "{PORTS}router:\n  interfaces:\n    - {{name: vm0, addresses: [10.0.1.1/24]}}\n    - {{name: vm2, addresses: [10.0.2.1/24]}}\n  routes:\n    - {{to: 0.0.0.0/0, via: [10.0.2.2, 10.0.1.2, 10.0.2.3]}}\n    - {{to: 10.9.0.0/16, via: 10.0.2.2}}\n"
    ));
    assert_eq!(
        m.router.routes[0].action,
        RouteAction::Forward(vec![
            via("10.0.2.2", 1),
            via("10.0.1.2", 0),
            via("10.0.2.3", 1)
        ])
    );
    let yaml = m.to_yaml();
    for expected in [
        "  - to: 0.0.0.0/0\n    via:\n    - 10.0.2.2\n    - 10.0.1.2\n    - 10.0.2.3\n  - to:",
        // One interface for all next hops: written out, as every default is.
        "  - to: 10.9.0.0/16\n    via: 10.0.2.2\n    interface: vm2\n",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    assert_round_trips(&m);
}

#[test]
fn to_yaml_writes_the_router_as_it_is_accepted() {
    let m = accept(&format!(
        "{PORTS}router:\n  interfaces:\n    - {{name: vm0.3, addresses: [\"fd00::1/64\"]}}\n  routes:\n    - {{to: \"fd00:5::/64\", interface: vm0.3}}\n    - {{to: \"fd00:6::/64\", type: prohibit}}\n  neighbors:\n    - {{interface: vm0.3, address: \"fd00::9\", mac: \"52:54:00:00:00:09\"}}\n"
    ));
    let yaml = m.to_yaml();
    for expected in [
        "router:\n  interfaces:\n  - name: vm0.3\n    mac: 02:76:6e:00:00:00\n    mtu: 1500\n    addresses:\n    - fd00::1/64\n",
        "  - to: fd00:5::/64\n    interface: vm0.3\n",
        "  - to: fd00:6::/64\n    type: prohibit\n",
        "  neighbors:\n  - interface: vm0.3\n    address: fd00::9\n    mac: 52:54:00:00:00:09\n",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    for absent in ["attach", "Bridge", "Port"] {
        assert!(!yaml.contains(absent), "{absent} is not written:\n{yaml}");
    }
    assert_round_trips(&m);
}

#[test]
fn prefixes_know_their_network() {
    let p = prefix("10.2.3.4/16");
    assert!(p.is_v4());
    assert_eq!(p.network(), prefix("10.2.0.0/16"));
    assert_eq!(p.to_string(), "10.2.3.4/16");
    assert!(p.contains(ip("10.2.255.255")));
    assert!(!p.contains(ip("10.3.0.0")));
    assert!(!p.contains(ip("::a02:0")), "another family");
    let v6 = prefix("fd00:1::1/64");
    assert!(!v6.is_v4());
    assert_eq!(v6.network().to_string(), "fd00:1::/64");
    assert!(prefix("::/0").contains(ip("2001:db8::1")));
    // A length past the family's keeps every bit rather than overflow.
    let odd = Prefix {
        addr: ip("10.0.0.1"),
        len: 40,
    };
    assert_eq!(odd.network().addr, ip("10.0.0.1"));
}
