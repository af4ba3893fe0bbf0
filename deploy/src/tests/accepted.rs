use std::path::PathBuf;

use super::{accept, env};
use crate::{
    BridgeSpec, CrossConnect, InterfaceName, Manifest, MemberSpec, PollMode, PortKind, PortSpec,
    SocketMode, StaticMac, Tpid, VhostUserSpec, VlanMode, Workers, DEFAULT_MAC_AGING,
    DEFAULT_MAC_LIMIT, DEFAULT_MANIFEST, DEFAULT_MANIFEST_NAME, DEFAULT_MTU, MAX_MAC_LIMIT,
    MAX_MTU,
};

fn vhost(port: &PortSpec) -> &VhostUserSpec {
    match &port.kind {
        PortKind::VhostUser(spec) => spec,
    }
}

/// `vm0`, `vm0.100`, `vm0.300.400`.
fn iface(port: &str, tags: &[u16]) -> InterfaceName {
    InterfaceName {
        port: port.into(),
        tags: tags.to_vec(),
    }
}

fn access(port: &str, vlan: u16) -> MemberSpec {
    MemberSpec {
        interface: iface(port, &[]),
        vlan: VlanMode::Access(vlan),
    }
}

#[test]
fn default_manifest_is_two_server_ports_in_one_bridge() {
    let m = Manifest::default_manifest();
    assert_eq!(m.workers, Workers::default());
    assert_eq!(m.workers.count, 1);
    assert_eq!(m.workers.poll, PollMode::Adaptive);
    let names: Vec<&str> = m.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["vm0", "vm1"]);
    for port in &m.ports {
        let spec = vhost(port);
        assert_eq!(
            spec.socket,
            PathBuf::from(format!("run/{}.sock", port.name))
        );
        assert_eq!(spec.mode, SocketMode::Server);
        assert_eq!(spec.queue_pairs, 1);
        assert_eq!(port.mtu, DEFAULT_MTU);
    }
    assert_eq!(
        m.bridges,
        [BridgeSpec {
            name: "br0".into(),
            mac_aging: DEFAULT_MAC_AGING,
            mac_limit: DEFAULT_MAC_LIMIT,
            members: vec![access("vm0", 1), access("vm1", 1)],
            static_macs: Vec::new(),
        }]
    );
    assert!(m.cross_connects.is_empty());
    assert!(
        DEFAULT_MANIFEST.starts_with('#'),
        "explains itself in a comment header"
    );
    assert!(!DEFAULT_MANIFEST_NAME.is_empty());
}

#[test]
fn every_field_is_read() {
    let m = accept(
        "\
workers:
  count: 2
  cpus: [3, 1]
  poll: busy
ports:
  - name: vm0
    type: vhost-user
    socket: /s/vm0.sock
    mode: client
    queue_pairs: 16
    mac: \"52:54:00:AB:cd:01\"
  - name: vm.1_b-2
    type: 'vhost-user'
    socket: \"/s/vm1.sock\"
cross_connects:
  - [vm.1_b-2, vm0]
",
    );
    assert_eq!(
        m.workers,
        Workers {
            count: 2,
            cpus: Some(vec![3, 1]),
            poll: PollMode::Busy
        }
    );
    assert_eq!(
        *vhost(&m.ports[0]),
        VhostUserSpec {
            socket: "/s/vm0.sock".into(),
            mode: SocketMode::Client,
            queue_pairs: 16,
            mac: [0x52, 0x54, 0x00, 0xab, 0xcd, 0x01],
        }
    );
    assert_eq!(m.ports[1].name, "vm.1_b-2");
    assert_eq!(
        m.cross_connects,
        [CrossConnect {
            a: "vm.1_b-2".into(),
            b: "vm0".into()
        }]
    );
}

#[test]
fn omitted_fields_take_their_defaults() {
    let m = accept("ports:\n  - {name: vm0, type: vhost-user, socket: a.sock}\n");
    assert_eq!(m.workers, Workers::default());
    assert!(m.cross_connects.is_empty());
    let spec = vhost(&m.ports[0]);
    assert_eq!(spec.mode, SocketMode::Server);
    assert_eq!(spec.queue_pairs, 1);
    assert_eq!(spec.mac, crate::mac::derive_from_name("vm0"));
    assert_eq!(spec.mac[0], 0x02, "locally administered unicast");
    assert_eq!(m.ports[0].mtu, 1500);
    assert!(m.bridges.is_empty());
}

#[test]
fn mtu_is_read_up_to_jumbo_frames() {
    let m = accept(
        "ports:\n  - {name: a, type: vhost-user, socket: a, mtu: 68}\n  - {name: b, type: vhost-user, socket: b, mtu: 9216}\n",
    );
    assert_eq!(m.ports[0].mtu, 68);
    assert_eq!(m.ports[1].mtu, MAX_MTU);
}

/// Ports vm0..vm5, for bridge tests.
const SIX_PORTS: &str = "\
ports:
  - {name: vm0, type: vhost-user, socket: s0}
  - {name: vm1, type: vhost-user, socket: s1}
  - {name: vm2, type: vhost-user, socket: s2}
  - {name: vm3, type: vhost-user, socket: s3}
  - {name: vm4, type: vhost-user, socket: s4}
  - {name: vm5, type: vhost-user, socket: s5}
";

#[test]
fn bridge_defaults_are_filled_in() {
    let m = accept(&format!(
        "{SIX_PORTS}bridges:\n  - name: br0\n    members: [vm0]\n"
    ));
    assert_eq!(
        m.bridges,
        [BridgeSpec {
            name: "br0".into(),
            mac_aging: 300,
            mac_limit: 65536,
            members: vec![access("vm0", 1)],
            static_macs: Vec::new(),
        }]
    );
}

#[test]
fn every_bridge_field_is_read() {
    let m = accept(&format!(
        "{SIX_PORTS}\
bridges:
  - name: br0
    mac_aging: 0
    mac_limit: 16777216
    members:
      - vm0
      - {{interface: vm1, access: 10}}
      - {{interface: vm2, trunk: [10, 20, \"100-200\", 150-250, 4094], native: 1}}
      - interface: vm3
        trunk: [100]
        tpid: 802.1ad
      - {{interface: vm4, trunk: [7], tpid: 802.1q}}
  - name: br-1.b
    mac_aging: 1000000
    mac_limit: 1
    members: [{{interface: vm5, access: 4094}}]
"
    ));
    // Ranges may be quoted or not; `150-250` is a string either way.
    let [br0, br1] = &m.bridges[..] else {
        panic!("two bridges: {:?}", m.bridges)
    };
    assert_eq!((br0.mac_aging, br0.mac_limit), (0, MAX_MAC_LIMIT));
    assert_eq!((br1.mac_aging, br1.mac_limit), (1_000_000, 1));
    assert_eq!(br1.name, "br-1.b");
    assert_eq!(br0.members[0], access("vm0", 1));
    assert_eq!(br0.members[1], access("vm1", 10));
    let VlanMode::Trunk {
        trunk,
        native,
        tpid,
    } = &br0.members[2].vlan
    else {
        panic!("vm2 is a trunk: {:?}", br0.members[2])
    };
    // Overlapping ranges merge; the native VLAN is kept apart from the list.
    assert_eq!(
        trunk.ranges(),
        [(10, 10), (20, 20), (100, 250), (4094, 4094)]
    );
    assert!(!trunk.contains(1));
    assert_eq!((*native, *tpid), (Some(1), Tpid::Dot1q));
    assert!(matches!(
        &br0.members[3].vlan,
        VlanMode::Trunk { native: None, tpid: Tpid::Dot1ad, trunk } if trunk.ranges() == [(100, 100)]
    ));
    assert!(matches!(
        &br0.members[4].vlan,
        VlanMode::Trunk {
            tpid: Tpid::Dot1q,
            ..
        }
    ));
    assert_eq!(br1.members, [access("vm5", 4094)]);
}

#[test]
fn members_may_be_vlan_subinterfaces() {
    let m = accept(
        "\
ports:
  - {name: vm, type: vhost-user, socket: a}
  - {name: vm.1, type: vhost-user, socket: b}
bridges:
  - name: br0
    members:
      - vm.1
      - vm.1.5
      - vm.2
      - {interface: vm.3.4, access: 7}
      - {interface: vm.1.300.400, trunk: [8]}
  - name: br1
    members: [vm, vm.3, vm.1.6]
",
    );
    let interfaces = |b: &BridgeSpec| -> Vec<InterfaceName> {
        b.members.iter().map(|m| m.interface.clone()).collect()
    };
    // The longest port name wins: `vm.1.5` is VLAN 5 of port `vm.1`, not QinQ on `vm`.
    assert_eq!(
        interfaces(&m.bridges[0]),
        [
            iface("vm.1", &[]),
            iface("vm.1", &[5]),
            iface("vm", &[2]),
            iface("vm", &[3, 4]),
            iface("vm.1", &[300, 400]),
        ]
    );
    assert_eq!(m.bridges[0].members[3].vlan, VlanMode::Access(7));
    assert_eq!(
        interfaces(&m.bridges[1]),
        [iface("vm", &[]), iface("vm", &[3]), iface("vm.1", &[6])]
    );
    assert_eq!(iface("vm.1", &[300, 400]).to_string(), "vm.1.300.400");
}

#[test]
fn static_mac_vlan_defaults_to_the_members() {
    let m = accept(&format!(
        "{SIX_PORTS}\
bridges:
  - name: br0
    members:
      - vm0
      - {{interface: vm1, access: 10}}
      - {{interface: vm2, trunk: [10, 20], native: 30}}
      - {{interface: vm3, trunk: [\"40-50\"]}}
      - vm4.100
    static_macs:
      - {{mac: \"02:00:00:00:00:01\", interface: vm0}}
      - {{mac: \"02:00:00:00:00:02\", interface: vm1}}
      - {{mac: \"02:00:00:00:00:03\", interface: vm2}}
      - {{mac: \"02:00:00:00:00:03\", interface: vm2, vlan: 20}}
      - {{mac: \"02:00:00:00:00:06\", interface: vm2, vlan: 30}}
      - {{mac: \"02:00:00:00:00:04\", interface: vm3, vlan: 45}}
      - {{mac: \"02:00:00:00:00:05\", interface: vm4.100}}
  - name: br1
    members: [vm5]
    static_macs:
      - {{mac: \"02:00:00:00:00:01\", interface: vm5}}
"
    ));
    let entry = |last: u8, port: &str, tags: &[u16], vlan: u16| StaticMac {
        mac: [2, 0, 0, 0, 0, last],
        interface: iface(port, tags),
        vlan,
    };
    assert_eq!(
        m.bridges[0].static_macs,
        [
            entry(1, "vm0", &[], 1),
            entry(2, "vm1", &[], 10),
            // The native VLAN, by default and when named.
            entry(3, "vm2", &[], 30),
            entry(3, "vm2", &[], 20),
            entry(6, "vm2", &[], 30),
            entry(4, "vm3", &[], 45),
            entry(5, "vm4", &[100], 1),
        ]
    );
    // Each bridge has its own table, so the same address may be in both.
    assert_eq!(m.bridges[1].static_macs, [entry(1, "vm5", &[], 1)]);
}

#[test]
fn empty_bridges_section_means_none() {
    for bridges in ["bridges:\n", "bridges: []\n"] {
        let m = accept(&format!("{SIX_PORTS}{bridges}"));
        assert!(m.bridges.is_empty());
    }
    let m = accept(&format!(
        "{SIX_PORTS}bridges:\n  - {{name: b, members: [vm0], static_macs: }}\n"
    ));
    assert!(m.bridges[0].static_macs.is_empty());
}

#[test]
fn subinterfaces_of_one_port_may_be_in_different_bridges() {
    // Only an interface is exclusive to a bridge; a cross-connect of other ports is
    // untouched.
    let m = accept(&format!(
        "{SIX_PORTS}bridges:\n  - {{name: a, members: [vm0, vm1.10]}}\n  - {{name: b, members: [vm1, vm0.10, vm0.10.20]}}\ncross_connects: [[vm2, vm3]]\n"
    ));
    assert_eq!(m.bridges.len(), 2);
    assert_eq!(m.cross_connects.len(), 1);
}

#[test]
fn default_macs_differ_between_ports() {
    let m = accept(
        "ports:\n  - {name: vm0, type: vhost-user, socket: a}\n  - {name: vm1, type: vhost-user, socket: b}\n",
    );
    assert_ne!(vhost(&m.ports[0]).mac, vhost(&m.ports[1]).mac);
}

#[test]
fn empty_optional_sections_mean_defaults() {
    let m =
        accept("workers:\nports:\n  - {name: vm0, type: vhost-user, socket: a}\ncross_connects:\n");
    assert_eq!(m.workers, Workers::default());
    assert!(m.cross_connects.is_empty());
}

#[test]
fn socket_paths_expand_environment_variables() {
    let m = accept(
        "ports:\n  - {name: a, type: vhost-user, socket: \"${SOCKDIR}/vh0.sock\"}\n  - {name: b, type: vhost-user, socket: \"${TMP}/$$HOME/${SOCKDIR}\"}\n",
    );
    assert_eq!(
        vhost(&m.ports[0]).socket,
        PathBuf::from("/run/vnf/vh0.sock")
    );
    assert_eq!(
        vhost(&m.ports[1]).socket,
        PathBuf::from("/tmp/$HOME//run/vnf")
    );
}

#[test]
fn port_finds_by_name() {
    let m = Manifest::default_manifest();
    assert_eq!(m.port("vm1").map(|p| p.name.as_str()), Some("vm1"));
    assert!(m.port("vm2").is_none());
}

pub(super) fn assert_round_trips(m: &Manifest) {
    let yaml = m.to_yaml();
    let again = Manifest::parse("to_yaml", &yaml, &|_| None)
        .unwrap_or_else(|d| panic!("to_yaml output does not parse:\n{d}\n---\n{yaml}"));
    assert_eq!(&again, m, "{yaml}");
}

#[test]
fn to_yaml_parses_back_to_the_same_manifest() {
    assert_round_trips(&Manifest::default_manifest());
    assert_round_trips(&accept(
        "\
workers: {count: 3, cpus: [5, 0, 2], poll: busy}
ports:
  - {name: a, type: vhost-user, socket: \"${SOCKDIR}/$$1.sock\", mode: client, queue_pairs: 4}
  - {name: b, type: vhost-user, socket: \"/p/123\", mac: \"0a:00:00:00:00:0b\"}
  - {name: c, type: vhost-user, socket: \"/p/with space: and # hash\"}
  - {name: d, type: vhost-user, socket: /p/d}
cross_connects: [[a, b], [d, c]]
",
    ));
    assert_round_trips(&accept(
        "\
ports:
  - {name: vm0, type: vhost-user, socket: a, mtu: 9000}
  - {name: vm1, type: vhost-user, socket: b, mtu: 68}
  - {name: vm.2, type: vhost-user, socket: c}
  - {name: vm3, type: vhost-user, socket: d}
  - {name: vm4, type: vhost-user, socket: e}
bridges:
  - name: br0
    mac_aging: 0
    mac_limit: 16777216
    members:
      - vm0
      - {interface: vm1, access: 10}
      - {interface: vm.2, trunk: [10, 20, \"100-200\", 4094], native: 1}
      - {interface: vm3, trunk: [100], tpid: 802.1ad}
      - vm4.100
      - {interface: vm.2.300.400, access: 7}
    static_macs:
      - {mac: \"02:00:00:00:00:01\", interface: vm0}
      - {mac: \"02:00:00:00:00:02\", interface: vm.2, vlan: 20}
      - {mac: \"02:00:00:00:00:03\", interface: vm.2.300.400}
  - {name: br1, members: [vm4]}
cross_connects: []
",
    ));
}

#[test]
fn to_yaml_writes_members_as_they_are_accepted() {
    let yaml = accept(
        "ports:\n  - {name: vm0, type: vhost-user, socket: s}\nbridges:\n  - {name: b, members: [vm0, {interface: vm0.5, trunk: [1, \"3-4\"]}]}\n",
    )
    .to_yaml();
    for expected in [
        "mtu: 1500",
        "mac_aging: 300",
        "mac_limit: 65536",
        "- interface: vm0\n    access: 1\n",
        "- interface: vm0.5\n    trunk:\n    - 1\n    - 3-4\n    tpid: 802.1q\n",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    for absent in ["static_macs", "native"] {
        assert!(
            !yaml.contains(absent),
            "{absent} is left out when empty:\n{yaml}"
        );
    }
}

#[test]
fn to_yaml_writes_every_default_out() {
    let yaml = accept("ports:\n  - {name: vm0, type: vhost-user, socket: s}\n").to_yaml();
    for expected in [
        "count: 1",
        "poll: adaptive",
        "type: vhost-user",
        "mode: server",
        "queue_pairs: 1",
        "mac: ",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in:\n{yaml}");
    }
    assert!(!yaml.contains("cpus"), "absent cpus stay absent:\n{yaml}");
}

#[test]
fn load_reads_a_file_and_names_it_in_diagnostics() {
    let dir = std::env::temp_dir().join(format!("vnf-deploy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(&good, DEFAULT_MANIFEST).unwrap();
    assert_eq!(Manifest::load(&good).unwrap(), Manifest::default_manifest());

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "ports: []\n").unwrap();
    let d = Manifest::load(&bad).unwrap_err();
    assert_eq!(d.0[0].file, bad.display().to_string());

    let missing = dir.join("missing.yaml");
    let d = Manifest::load(&missing).unwrap_err();
    assert_eq!(d.0.len(), 1);
    assert_eq!((d.0[0].line, d.0[0].column), (0, 0));
    assert_eq!(d.0[0].file, missing.display().to_string());
    assert!(d.0[0].message.contains("cannot read"), "{}", d.0[0].message);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn environment_lookup_is_the_callers() {
    // The closure, not the process environment, decides: SOCKDIR is unset here.
    let text = "ports:\n  - {name: a, type: vhost-user, socket: \"${SOCKDIR}/a\"}\n";
    assert!(Manifest::parse("m", text, &|_| None).is_err());
    assert!(Manifest::parse("m", text, &env).is_ok());
}
