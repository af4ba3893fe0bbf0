//! Each kind of mistake in the router section, with the exact place it must be reported.

use super::rejected::expect;

/// Ports vm0 (mtu 1500), vm1 (9000, a member of br0), vm2 (1200; vm2.5 is in br0), the
/// cross-connected xc0 and xc1, and the start of a router section whose first
/// interface is on line 12.
const ROUTED: &str = "\
ports:
  - {name: vm0, type: vhost-user, socket: a}
  - {name: vm1, type: vhost-user, socket: b, mtu: 9000}
  - {name: vm2, type: vhost-user, socket: c, mtu: 1200}
  - {name: xc0, type: vhost-user, socket: d}
  - {name: xc1, type: vhost-user, socket: e}
bridges:
  - {name: br0, members: [vm1, vm2.5]}
cross_connects: [[xc0, xc1]]
router:
  interfaces:
";

/// Three valid router interfaces, on lines 12 to 14.
const INTERFACES: &str = "    - {name: vm0, addresses: [10.0.1.1/24, \"fd00:1::1/64\"]}
    - {name: vm1.100, addresses: [10.0.2.1/24]}
    - {name: br0, addresses: [10.0.3.1/24]}
";

/// ROUTED followed by `lines` (less a leading newline), the first on line 12.
fn interfaces(lines: &str) -> String {
    format!("{ROUTED}{}", lines.strip_prefix('\n').unwrap_or(lines))
}

/// ROUTED and INTERFACES followed by a `section` (`routes`, `neighbors`) holding
/// `lines`, the first on line 16.
fn after_interfaces(section: &str, lines: &str) -> String {
    format!(
        "{ROUTED}{INTERFACES}  {section}:\n{}",
        lines.strip_prefix('\n').unwrap_or(lines)
    )
}

#[test]
fn router_keys_are_checked() {
    expect(
        "\
ports:
  - {name: vm0, type: vhost-user, socket: s}
router:
  interface: []
  route: []
  neighbours: []
",
        &[
            ("router.interface", 4, 3, "did you mean `interfaces`?"),
            ("router.route", 5, 3, "did you mean `routes`?"),
            ("router.neighbours", 6, 3, "did you mean `neighbors`?"),
        ],
    );
    expect(
        "ports:\n  - {name: vm0, type: vhost-user, socket: s}\nrouter: [vm0]\n",
        &[("router", 3, 9, "expected a mapping, found a sequence")],
    );
    expect(
        &interfaces(
            "
    - {name: vm0, address: [10.0.1.1/24], mtus: 1400}
  routes:
    - {to: 10.9.0.0/16, gateway: 10.0.1.2}
  neighbors:
    - {interface: vm0, ip: 10.0.1.5, mac: \"52:54:00:00:00:05\"}
",
        ),
        &[
            (
                "router.interfaces[0].addresses",
                12,
                7,
                "missing required field `addresses`",
            ),
            (
                "router.interfaces[0].address",
                12,
                19,
                "did you mean `addresses`?",
            ),
            ("router.interfaces[0].mtus", 12, 43, "did you mean `mtu`?"),
            (
                "router.routes[0]",
                14,
                7,
                "a route needs `via` (its gateways), `interface` (for a destination on-link), or `type` (blackhole, unreachable or prohibit)",
            ),
            (
                "router.routes[0].gateway",
                14,
                25,
                "unknown key `gateway`; expected one of `to`, `via`, `interface` or `type`",
            ),
            (
                "router.neighbors[0].address",
                16,
                7,
                "missing required field `address`",
            ),
            (
                "router.neighbors[0].ip",
                16,
                24,
                "unknown key `ip`; expected one of `interface`, `address` or `mac`",
            ),
        ],
    );
}

#[test]
fn router_interface_names_must_resolve() {
    let diags = expect(
        &interfaces(
            "
    - {name: vm9, addresses: [10.0.1.1/24]}
    - {name: brO, addresses: [10.0.2.1/24]}
    - {name: vm9.100, addresses: [10.0.3.1/24]}
    - {name: vm0.0, addresses: [10.0.4.1/24]}
    - {name: vm0.1.2.3, addresses: [10.0.5.1/24]}
    - {name: vm0.x, addresses: [10.0.6.1/24]}
    - {name: 7, addresses: [10.0.7.1/24]}
    - {addresses: [10.0.8.1/24]}
",
        ),
        &[
            (
                "router.interfaces[0].name",
                12,
                14,
                "unknown port or bridge `vm9`; did you mean `vm0`?",
            ),
            (
                "router.interfaces[1].name",
                13,
                14,
                "unknown port or bridge `brO`; did you mean `br0`?",
            ),
            (
                "router.interfaces[2].name",
                14,
                14,
                "unknown port `vm9` in interface `vm9.100`; did you mean `vm0.100`?",
            ),
            (
                "router.interfaces[3].name",
                15,
                14,
                "VLAN 0 in interface `vm0.0` is out of range",
            ),
            ("router.interfaces[4].name", 16, 14, "has 3 VLAN tags"),
            (
                "router.interfaces[5].name",
                17,
                14,
                "`x` is not a VLAN ID of port `vm0`",
            ),
            (
                "router.interfaces[6].name",
                18,
                14,
                "expected a string, found an integer",
            ),
            (
                "router.interfaces[7].name",
                19,
                7,
                "missing required field `name`",
            ),
        ],
    );
    assert_eq!(
        diags[0].to_string(),
        "m.yaml:12:14: router.interfaces[0].name: unknown port or bridge `vm9`; did you mean `vm0`?"
    );
}

#[test]
fn a_bridge_router_interface_names_one_vlan() {
    expect(
        &interfaces(
            "
    - {name: br0.1, addresses: [10.0.1.1/24]}
    - {name: br0.4095, addresses: [10.0.2.1/24]}
    - {name: br0.100.200, addresses: [10.0.3.1/24]}
    - {name: br0.100, addresses: [10.0.4.1/24]}
    - {name: br0.0100, addresses: [10.0.5.1/24]}
",
        ),
        &[
            (
                "router.interfaces[0].name",
                12,
                14,
                "router interface `br0.1`: VLAN 1 is the bridge's own router interface; write `br0`",
            ),
            (
                "router.interfaces[1].name",
                13,
                14,
                "VLAN 4095 in router interface `br0.4095` is out of range; expected 1 to 4094",
            ),
            (
                "router.interfaces[2].name",
                14,
                14,
                "router interface `br0.100.200` has more than one VLAN",
            ),
            (
                "router.interfaces[4].name",
                16,
                14,
                "router interface `br0.100` is already given by router.interfaces[3] (line 15)",
            ),
        ],
    );
}

#[test]
fn router_interface_is_given_once() {
    expect(
        &interfaces(
            "
    - {name: vm0.100, addresses: [10.0.1.1/24]}
    - {name: br0, addresses: [10.0.2.1/24]}
    - {name: vm0.0100, addresses: [10.0.3.1/24]}
    - {name: br0, addresses: [10.0.4.1/24]}
",
        ),
        &[
            (
                "router.interfaces[2].name",
                14,
                14,
                "router interface `vm0.100` is already given by router.interfaces[0] (line 12)",
            ),
            (
                "router.interfaces[3].name",
                15,
                14,
                "router interface `br0` is already given by router.interfaces[1] (line 13)",
            ),
        ],
    );
}

#[test]
fn bridge_members_and_cross_connected_ports_are_not_routed() {
    let diags = expect(
        &interfaces(
            "
    - {name: vm1, addresses: [10.0.1.1/24]}
    - {name: vm2.5, addresses: [10.0.2.1/24]}
    - {name: xc0, addresses: [10.0.3.1/24]}
    - {name: xc1.7, addresses: [10.0.4.1/24]}
",
        ),
        &[
            (
                "router.interfaces[0].name",
                12,
                14,
                "interface `vm1` is a member of bridges[0] (line 8)",
            ),
            (
                "router.interfaces[1].name",
                13,
                14,
                "interface `vm2.5` is a member of bridges[0] (line 8)",
            ),
            (
                "router.interfaces[2].name",
                14,
                14,
                "port `xc0` is cross-connected by cross_connects[0] (line 9)",
            ),
            (
                "router.interfaces[3].name",
                15,
                14,
                "port `xc1` is cross-connected",
            ),
        ],
    );
    assert!(diags[0]
        .message
        .ends_with("give the bridge itself a router interface (its name)"));
    assert!(diags[3]
        .message
        .ends_with("neither the port nor its VLAN subinterfaces can be routed"));
}

#[test]
fn addresses_must_be_prefixes() {
    expect(
        &interfaces(
            "
    - {name: vm0, addresses: [10.0.1.1, 10.0.2.1/33, 10.0.3.300/24, eth0, 5, \"fd00::1/129\"]}
    - {name: vm0.5, addresses: []}
    - {name: vm0.6, addresses: 10.0.9.1/24}
",
        ),
        &[
            (
                "router.interfaces[0].addresses[0]",
                12,
                31,
                "`10.0.1.1` has no prefix length; write ADDRESS/LENGTH, like `10.0.1.1/24`",
            ),
            (
                "router.interfaces[0].addresses[1]",
                12,
                41,
                "prefix length `33` in `10.0.2.1/33` is out of range; an IPv4 prefix is 0 to 32 bits long",
            ),
            (
                "router.interfaces[0].addresses[2]",
                12,
                54,
                "`10.0.3.300` in `10.0.3.300/24` is not an IPv4 or IPv6 address",
            ),
            (
                "router.interfaces[0].addresses[3]",
                12,
                69,
                "`eth0` is not an IP prefix",
            ),
            (
                "router.interfaces[0].addresses[4]",
                12,
                75,
                "expected an IP prefix like `10.0.0.0/24`, found an integer `5`",
            ),
            (
                "router.interfaces[0].addresses[5]",
                12,
                78,
                "an IPv6 prefix is 0 to 128 bits long",
            ),
            (
                "router.interfaces[1].addresses",
                13,
                32,
                "a router interface needs at least one address",
            ),
            (
                "router.interfaces[2].addresses",
                14,
                32,
                "expected a sequence, found a string",
            ),
        ],
    );
}

#[test]
fn addresses_must_be_unicast_hosts() {
    let diags = expect(
        &interfaces(
            "
    - name: vm0
      addresses:
        - 0.0.0.0/8
        - 127.0.0.1/8
        - 224.0.0.1/24
        - 255.255.255.255/32
        - \"::1/128\"
        - \"fe80::1/64\"
        - 10.0.1.0/24
        - 10.0.2.255/24
        - 10.0.3.3/30
",
        ),
        &[
            (
                "router.interfaces[0].addresses[0]",
                14,
                11,
                "`0.0.0.0/8` is the unspecified address; a router interface needs a unicast address of its own",
            ),
            (
                "router.interfaces[0].addresses[1]",
                15,
                11,
                "`127.0.0.1/8` is a loopback address",
            ),
            (
                "router.interfaces[0].addresses[2]",
                16,
                11,
                "`224.0.0.1/24` is a multicast address",
            ),
            (
                "router.interfaces[0].addresses[3]",
                17,
                11,
                "`255.255.255.255/32` is the IPv4 limited broadcast address",
            ),
            (
                "router.interfaces[0].addresses[4]",
                18,
                11,
                "`::1/128` is a loopback address",
            ),
            (
                "router.interfaces[0].addresses[5]",
                19,
                11,
                "`fe80::1/64` is an IPv6 link-local address",
            ),
            (
                "router.interfaces[0].addresses[6]",
                20,
                11,
                "`10.0.1.0/24` is the network address of subnet 10.0.1.0/24; a router interface needs a host address in it, like `10.0.1.1/24`",
            ),
            (
                "router.interfaces[0].addresses[7]",
                21,
                11,
                "`10.0.2.255/24` is the broadcast address of subnet 10.0.2.0/24",
            ),
            (
                "router.interfaces[0].addresses[8]",
                22,
                11,
                "`10.0.3.3/30` is the broadcast address of subnet 10.0.3.0/30",
            ),
        ],
    );
    assert!(diags[5]
        .message
        .contains("vnf derives each interface's link-local address from its MAC"));
}

#[test]
fn an_address_is_assigned_once() {
    expect(
        &interfaces(
            "
    - {name: vm0, addresses: [10.0.1.1/24, \"fd00::1/64\"]}
    - {name: vm2, addresses: [10.0.1.1/16, \"FD00:0::1/48\"]}
    - {name: vm0.5, addresses: [10.0.5.1/24, 10.0.5.1/25]}
",
        ),
        &[
            (
                "router.interfaces[1].addresses[0]",
                13,
                31,
                "address 10.0.1.1 is already assigned by router.interfaces[0].addresses[0] (line 12)",
            ),
            (
                "router.interfaces[1].addresses[1]",
                13,
                44,
                "address fd00::1 is already assigned by router.interfaces[0].addresses[1] (line 12)",
            ),
            (
                "router.interfaces[2].addresses[1]",
                14,
                46,
                "address 10.0.5.1 is already assigned by router.interfaces[2].addresses[0] (line 14)",
            ),
        ],
    );
}

#[test]
fn connected_subnets_do_not_overlap() {
    expect(
        &interfaces(
            "
    - {name: vm0, addresses: [10.0.1.1/24, \"fd00:1::1/64\"]}
    - {name: vm2, addresses: [10.0.0.1/16, \"fd00:1::2/64\", 10.1.0.1/24, 10.1.1.1/16]}
",
        ),
        &[
            (
                "router.interfaces[1].addresses[0]",
                13,
                31,
                "subnet 10.0.0.0/16 of `vm2` overlaps subnet 10.0.1.0/24 of `vm0`, given by router.interfaces[0].addresses[0] (line 12); a connected subnet belongs to one interface",
            ),
            (
                "router.interfaces[1].addresses[1]",
                13,
                44,
                "subnet fd00:1::/64 of `vm2` overlaps subnet fd00:1::/64 of `vm0`",
            ),
            (
                "router.interfaces[1].addresses[3]",
                13,
                73,
                "subnet 10.1.0.0/16 overlaps subnet 10.1.0.0/24, also on this interface at router.interfaces[1].addresses[2] (line 13); an interface has one address per subnet",
            ),
        ],
    );
}

#[test]
fn router_interface_macs_are_unicast_and_unique() {
    let diags = expect(
        &interfaces(
            "
    - {name: vm0, addresses: [10.0.1.1/24], mac: \"01:00:5e:00:00:01\"}
    - {name: vm0.1, addresses: [10.0.2.1/24], mac: \"00:00:00:00:00:00\"}
    - {name: vm0.2, addresses: [10.0.3.1/24], mac: \"02:00:00:00:00\"}
    - {name: vm0.3, addresses: [10.0.4.1/24], mac: \"02:76:6e:00:00:05\"}
    - {name: vm0.4, addresses: [10.0.5.1/24], mac: \"02:76:6E:00:00:05\"}
    - {name: vm0.5, addresses: [10.0.6.1/24]}
",
        ),
        &[
            (
                "router.interfaces[0].mac",
                12,
                50,
                "`01:00:5e:00:00:01` is a multicast address (lowest bit of the first octet is set); a router interface MAC must be unicast",
            ),
            (
                "router.interfaces[1].mac",
                13,
                52,
                "the all-zero MAC address is not a valid router interface MAC",
            ),
            ("router.interfaces[2].mac", 14, 52, "not a MAC address"),
            (
                "router.interfaces[4].mac",
                16,
                52,
                "MAC address 02:76:6e:00:00:05 is already used by router.interfaces[3] (line 15)",
            ),
            (
                "router.interfaces[5].mac",
                17,
                7,
                "this interface's default MAC address, 02:76:6e:00:00:05, is already used by router.interfaces[3] (line 15); give this interface a `mac`",
            ),
        ],
    );
    assert_eq!(diags.len(), 5);
}

#[test]
fn router_mtu_fits_the_link() {
    let diags = expect(
        &interfaces(
            "
    - {name: vm0, addresses: [10.0.1.1/24], mtu: 67}
    - {name: vm0.1, addresses: [10.0.2.1/24], mtu: 9217}
    - {name: vm0.2, addresses: [10.0.3.1/24], mtu: 1501}
    - {name: br0, addresses: [10.0.4.1/24], mtu: 1300}
    - {name: vm0.3, addresses: [10.0.5.1/24], mtu: \"1400\"}
",
        ),
        &[
            (
                "router.interfaces[0].mtu",
                12,
                50,
                "67 is out of range; expected 68 to 9216",
            ),
            ("router.interfaces[1].mtu", 13, 52, "expected 68 to 9216"),
            (
                "router.interfaces[2].mtu",
                14,
                52,
                "mtu 1501 exceeds 1500, the mtu of port `vm0`; packets that large would be dropped on the way out, so lower this mtu or raise that one",
            ),
            (
                "router.interfaces[3].mtu",
                15,
                50,
                "mtu 1300 exceeds 1200, the smallest mtu among the ports of bridge `br0` (port `vm2`)",
            ),
            ("router.interfaces[4].mtu", 16, 52, "quoted string \"1400\""),
        ],
    );
    assert_eq!(diags.len(), 5);
}

#[test]
fn ipv6_needs_an_mtu_of_1280() {
    expect(
        &interfaces(
            "
    - {name: vm0, addresses: [10.0.1.1/24, \"fd00:1::1/64\"], mtu: 1279}
    - {name: vm2, addresses: [\"fd00:2::1/64\"]}
    - {name: vm0.7, addresses: [10.0.3.1/24], mtu: 1000}
",
        ),
        &[
            (
                "router.interfaces[0].mtu",
                12,
                66,
                "mtu 1279 is below 1280, the least IPv6 allows, and this interface has IPv6 address fd00:1::1/64",
            ),
            (
                "router.interfaces[1].mtu",
                13,
                7,
                "the default mtu, 1200 (the mtu of port `vm2`), is below 1280, the least IPv6 allows, and this interface has IPv6 address fd00:2::1/64; raise that mtu",
            ),
        ],
    );
}

#[test]
fn route_destinations_are_networks_routed_once() {
    expect(
        &after_interfaces(
            "routes",
            "
    - {to: 10.2.3.0/16, via: 10.0.1.2}
    - {to: \"fd00:9::1/48\", via: \"fd00:1::2\"}
    - {to: 10.9.0.0/16, via: 10.0.1.2}
    - {to: 10.9.0.0/16, via: 10.0.2.2}
    - {to: 10.0.0.1, via: 10.0.1.2}
    - {via: 10.0.1.2}
",
        ),
        &[
            (
                "router.routes[0].to",
                16,
                12,
                "`10.2.3.0/16` has host bits set; did you mean 10.2.0.0/16?",
            ),
            (
                "router.routes[1].to",
                17,
                12,
                "`fd00:9::1/48` has host bits set; did you mean fd00:9::/48?",
            ),
            (
                "router.routes[3].to",
                19,
                12,
                "a route to 10.9.0.0/16 is already given by router.routes[2] (line 18)",
            ),
            (
                "router.routes[4].to",
                20,
                12,
                "`10.0.0.1` has no prefix length",
            ),
            ("router.routes[5].to", 21, 7, "missing required field `to`"),
        ],
    );
}

#[test]
fn a_route_forwards_or_drops() {
    expect(
        &after_interfaces(
            "routes",
            "
    - {to: 10.9.0.0/16}
    - {to: 10.8.0.0/16, type: blackhole, via: 10.0.1.2, interface: vm0}
    - {to: 10.7.0.0/16, interface: vm0, type: unreachable}
    - {to: 10.6.0.0/16, type: blackhol}
    - {to: 10.5.0.0/16, type: drop, via: 10.0.1.2}
",
        ),
        &[
            (
                "router.routes[0]",
                16,
                7,
                "a route needs `via` (its gateways), `interface` (for a destination on-link), or `type`",
            ),
            (
                "router.routes[1].via",
                17,
                47,
                "`type: blackhole` drops what the route matches, so the route takes no `via`; remove `via`, or remove `type` to forward",
            ),
            (
                "router.routes[1].interface",
                17,
                68,
                "`type: blackhole` drops what the route matches, so the route takes no `interface`",
            ),
            (
                "router.routes[2].interface",
                18,
                36,
                "`type: unreachable` drops what the route matches, so the route takes no `interface`",
            ),
            (
                "router.routes[3].type",
                19,
                31,
                "unknown route type `blackhol`; did you mean `blackhole`?",
            ),
            (
                "router.routes[4].type",
                20,
                31,
                "unknown route type `drop`; expected `blackhole`, `unreachable` or `prohibit`",
            ),
        ],
    );
}

#[test]
fn via_is_one_gateway_or_a_short_list() {
    let many: Vec<String> = (2..=18).map(|h| format!("10.0.1.{h}")).collect();
    expect(
        &after_interfaces(
            "routes",
            &format!(
                "
    - {{to: 10.9.0.0/16, via: []}}
    - {{to: 10.8.0.0/16, via: [{}]}}
    - {{to: 10.7.0.0/16, via: [10.0.1.2, 10.0.2.2, 10.0.1.2]}}
    - {{to: 10.6.0.0/16, via: {{gw: 10.0.1.2}}}}
    - {{to: 10.5.0.0/16, via: 10.0.1.2/24}}
    - {{to: 10.4.0.0/16, via: [10.0.1.2, 7]}}
",
                many.join(", ")
            ),
        ),
        &[
            (
                "router.routes[0].via",
                16,
                30,
                "`via` lists no gateway; give at least one",
            ),
            (
                "router.routes[1].via",
                17,
                30,
                "`via` lists 17 gateways; a route has at most 16",
            ),
            (
                "router.routes[2].via[2]",
                18,
                51,
                "gateway 10.0.1.2 is listed twice (also router.routes[2].via[0])",
            ),
            (
                "router.routes[3].via",
                19,
                30,
                "expected a gateway address or a list of them, found a mapping",
            ),
            (
                "router.routes[4].via",
                20,
                30,
                "`10.0.1.2/24` is a prefix; write the address alone, like `10.0.1.2`",
            ),
            (
                "router.routes[5].via[1]",
                21,
                41,
                "expected an IP address, found an integer `7`",
            ),
        ],
    );
}

#[test]
fn gateways_are_neighbors_on_a_connected_subnet() {
    let diags = expect(
        &after_interfaces(
            "routes",
            "
    - {to: 10.9.0.0/16, via: 10.5.0.1}
    - {to: 10.8.0.0/16, via: \"fd00:1::2\"}
    - {to: \"fd00:8::/48\", via: 10.0.1.2}
    - {to: 10.7.0.0/16, via: 10.0.2.1}
    - {to: 10.6.0.0/16, via: 224.0.0.5}
    - {to: 10.5.0.0/16, via: 10.0.3.255}
    - {to: \"fd00:5::/48\", via: \"fe80::1\"}
    - {to: 10.4.0.0/16, via: [10.0.1.2, 10.0.1.0]}
",
        ),
        &[
            (
                "router.routes[0].via",
                16,
                30,
                "gateway 10.5.0.1 is not in any router interface's subnet",
            ),
            (
                "router.routes[1].via",
                17,
                30,
                "gateway fd00:1::2 is IPv6 but the destination 10.8.0.0/16 is IPv4",
            ),
            (
                "router.routes[2].via",
                18,
                32,
                "gateway 10.0.1.2 is IPv4 but the destination fd00:8::/48 is IPv6",
            ),
            (
                "router.routes[3].via",
                19,
                30,
                "gateway 10.0.2.1 is the router's own address, given at router.interfaces[1].addresses[0] (line 13)",
            ),
            (
                "router.routes[4].via",
                20,
                30,
                "gateway 224.0.0.5 is a multicast address, not a host",
            ),
            (
                "router.routes[5].via",
                21,
                30,
                "gateway 10.0.3.255 is the broadcast address of subnet 10.0.3.0/24 on `br0`, not a host",
            ),
            (
                "router.routes[6].via",
                22,
                32,
                "gateway fe80::1 is link-local, so the route must name its `interface`",
            ),
            (
                "router.routes[7].via[1]",
                23,
                41,
                "gateway 10.0.1.0 is the network address of subnet 10.0.1.0/24 on `vm0`",
            ),
        ],
    );
    assert_eq!(
        diags[0].message,
        "gateway 10.5.0.1 is not in any router interface's subnet; a gateway is a neighbor on a connected subnet"
    );
}

#[test]
fn a_named_interface_must_hold_the_gateway() {
    expect(
        &after_interfaces(
            "routes",
            "
    - {to: 10.9.0.0/16, via: 10.0.2.2, interface: vm0}
    - {to: 10.8.0.0/16, via: [10.0.1.2, 10.0.2.2], interface: vm0}
    - {to: 10.7.0.0/16, via: 10.0.1.2, interface: vm1}
    - {to: 10.6.0.0/16, via: 10.0.1.2, interface: vm2}
    - {to: \"fd00:6::/48\", via: \"fe80::1\", interface: vm0.100}
",
        ),
        &[
            (
                "router.routes[0].via",
                16,
                30,
                "gateway 10.0.2.2 is not in a subnet of interface `vm0` (10.0.1.0/24, fd00:1::/64)",
            ),
            (
                "router.routes[1].via[1]",
                17,
                41,
                "gateway 10.0.2.2 is not in a subnet of interface `vm0`",
            ),
            (
                "router.routes[2].interface",
                18,
                51,
                "`vm1` is not a router interface; name one given in router.interfaces; did you mean `vm0`?",
            ),
            (
                "router.routes[3].interface",
                19,
                51,
                "`vm2` is not a router interface",
            ),
            (
                "router.routes[4].interface",
                20,
                54,
                "`vm0.100` is not a router interface; name one given in router.interfaces; did you mean `vm1.100`?",
            ),
        ],
    );
}

#[test]
fn on_link_routes_need_an_address_of_their_family() {
    expect(
        &after_interfaces(
            "routes",
            "
    - {to: \"fd00:8::/48\", interface: vm1.100}
    - {to: \"fd00:7::/48\", interface: vm0}
    - {to: 10.6.0.0/16, interface: br1}
",
        ),
        &[
            (
                "router.routes[0].interface",
                16,
                38,
                "interface `vm1.100` has no IPv6 address, so fd00:8::/48 cannot be on-link there; give it one, or route via a gateway",
            ),
            (
                "router.routes[2].interface",
                18,
                36,
                "`br1` is not a router interface; name one given in router.interfaces; did you mean `br0`?",
            ),
        ],
    );
}

#[test]
fn neighbors_are_hosts_on_their_interface() {
    let diags = expect(
        &after_interfaces(
            "neighbors",
            "
    - {interface: vm0, address: 10.0.9.5, mac: \"52:54:00:00:00:05\"}
    - {interface: vm0, address: 10.0.1.1, mac: \"52:54:00:00:00:05\"}
    - {interface: vm0, address: 10.0.1.5, mac: \"52:54:00:00:00:05\"}
    - {interface: vm0, address: 10.0.1.5, mac: \"52:54:00:00:00:06\"}
    - {interface: vm1.100, address: 10.0.1.5, mac: \"52:54:00:00:00:05\"}
    - {interface: vm2, address: 10.0.2.5, mac: \"52:54:00:00:00:05\"}
    - {interface: br0, address: 10.0.3.5, mac: \"ff:ff:ff:ff:ff:ff\"}
    - {interface: br0, address: 10.0.3.6/24}
    - {interface: br0, address: 10.0.3.255, mac: \"52:54:00:00:00:05\"}
    - {interface: br0, address: ff02::1, mac: \"52:54:00:00:00:05\"}
",
        ),
        &[
            (
                "router.neighbors[0].address",
                16,
                33,
                "neighbor 10.0.9.5 is not in a subnet of interface `vm0` (10.0.1.0/24, fd00:1::/64)",
            ),
            (
                "router.neighbors[1].address",
                17,
                33,
                "10.0.1.1 is the router's own address, given at router.interfaces[0].addresses[0] (line 12), not a neighbor's",
            ),
            (
                "router.neighbors[3].address",
                19,
                33,
                "neighbor 10.0.1.5 on `vm0` is already given by router.neighbors[2] (line 18)",
            ),
            (
                "router.neighbors[4].address",
                20,
                37,
                "neighbor 10.0.1.5 is not in a subnet of interface `vm1.100` (10.0.2.0/24)",
            ),
            (
                "router.neighbors[5].interface",
                21,
                19,
                "`vm2` is not a router interface",
            ),
            (
                "router.neighbors[6].mac",
                22,
                48,
                "a neighbor MAC must be unicast",
            ),
            (
                "router.neighbors[7].mac",
                23,
                7,
                "missing required field `mac`",
            ),
            (
                "router.neighbors[7].address",
                23,
                33,
                "`10.0.3.6/24` is a prefix; write the address alone, like `10.0.3.6`",
            ),
            (
                "router.neighbors[8].address",
                24,
                33,
                "neighbor 10.0.3.255 is the broadcast address of subnet 10.0.3.0/24 on `br0`, not a host",
            ),
            (
                "router.neighbors[9].address",
                25,
                33,
                "neighbor ff02::1 is a multicast address, not a host",
            ),
        ],
    );
    assert_eq!(diags.len(), 10);
}

#[test]
fn router_is_not_checked_against_unreadable_sections() {
    // With no port names to go by, every interface would look unknown.
    expect(
        "\
ports: 5
router:
  interfaces:
    - {name: vm0, addresses: [10.0.1.1/24]}
  routes:
    - {to: 10.9.0.0/16, via: 10.0.1.2}
",
        &[("ports", 1, 8, "expected a sequence")],
    );
    // Nor, with no bridge names, can a name that is no port be called unknown.
    expect(
        "\
ports:
  - {name: vm0, type: vhost-user, socket: a}
bridges: {name: br0}
router:
  interfaces:
    - {name: br0, addresses: [10.0.1.1/24]}
",
        &[("bridges", 3, 10, "expected a sequence")],
    );
    // With the interfaces unreadable, routes and neighbors cannot be checked against them.
    expect(
        &format!(
            "{ROUTED}    oops\n  routes:\n    - {{to: 10.9.0.0/16, via: 10.0.1.2, interface: vm0}}\n  neighbors:\n    - {{interface: vm0, address: 10.0.1.5, mac: \"52:54:00:00:00:05\"}}\n"
        ),
        &[("router.interfaces", 12, 5, "expected a sequence")],
    );
    // An interface with a wrong address may well be where a gateway was meant to be.
    expect(
        &interfaces(
            "
    - {name: vm0, addresses: [10.0.1.1]}
  routes:
    - {to: 10.9.0.0/16, via: 10.0.1.2}
    - {to: \"fd00:9::/48\", interface: vm0}
  neighbors:
    - {interface: vm0, address: 10.0.1.5, mac: \"52:54:00:00:00:05\"}
",
        ),
        &[(
            "router.interfaces[0].addresses[0]",
            12,
            31,
            "has no prefix length",
        )],
    );
}

#[test]
fn every_router_problem_is_reported_in_one_pass() {
    expect(
        "\
ports:
  - {name: vm0, type: vhost-user, socket: a, mtu: 1000}
  - {name: vm1, type: vhost-user, socket: b}
bridges:
  - {name: br0, members: [vm1]}
router:
  interfaces:
    - {name: vm0, addresses: [10.0.1.1/24, \"fd00::1/64\"]}
    - {name: vm1, addresses: [10.0.1.2/24], mac: \"02:76:6e:00:00:00\"}
    - {name: br0, addresses: [10.0.2.1], colour: blue}
  routes:
    - {to: 10.9.0.1/16, via: 10.0.9.9}
    - {to: 10.8.0.0/16, type: blackhole, interface: vm0}
  neighbors:
    - {interface: vm9, address: 10.0.1.5, mac: \"52:54:00:00:00:05\"}
",
        &[
            ("router.interfaces[0].mtu", 8, 7, "the default mtu, 1000"),
            (
                "router.interfaces[1].name",
                9,
                14,
                "is a member of bridges[0]",
            ),
            (
                "router.interfaces[1].addresses[0]",
                9,
                31,
                "overlaps subnet 10.0.1.0/24 of `vm0`",
            ),
            (
                "router.interfaces[1].mac",
                9,
                50,
                "already used by router.interfaces[0]",
            ),
            (
                "router.interfaces[2].addresses[0]",
                10,
                31,
                "no prefix length",
            ),
            (
                "router.interfaces[2].colour",
                10,
                42,
                "unknown key `colour`",
            ),
            ("router.routes[0].to", 12, 12, "did you mean 10.9.0.0/16?"),
            ("router.routes[1].interface", 13, 53, "takes no `interface`"),
            (
                "router.neighbors[0].interface",
                15,
                19,
                "did you mean `vm0`?",
            ),
        ],
    );
}
