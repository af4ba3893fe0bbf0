use std::path::PathBuf;

use super::{accept, env};
use crate::{
    CrossConnect, Manifest, PollMode, PortKind, PortSpec, SocketMode, VhostUserSpec, Workers,
    DEFAULT_MANIFEST, DEFAULT_MANIFEST_NAME,
};

fn vhost(port: &PortSpec) -> &VhostUserSpec {
    match &port.kind {
        PortKind::VhostUser(spec) => spec,
    }
}

#[test]
fn default_manifest_is_two_server_ports_cross_connected() {
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
    }
    assert_eq!(
        m.cross_connects,
        [CrossConnect {
            a: "vm0".into(),
            b: "vm1".into()
        }]
    );
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

fn assert_round_trips(m: &Manifest) {
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
