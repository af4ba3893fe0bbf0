use std::path::Path;

use super::accepted::assert_round_trips;
use super::env;
use crate::{Attach, Manifest, MemberSpec, PollMode, RouteAction, Tpid, VlanMode};

#[test]
fn every_shipped_example_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/examples exists") {
        let path = entry.expect("readable directory entry").path();
        let text = std::fs::read_to_string(&path).expect("readable example");
        let file = path.display().to_string();
        match Manifest::parse(&file, &text, &env) {
            Ok(m) => assert_round_trips(&m),
            Err(d) => panic!("{file} is invalid:\n{d}"),
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "expected the shipped examples, found {checked} files"
    );
}

#[test]
fn bench_example_busy_polls_and_leaves_cpu_placement_to_the_harness() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/xconnect-bench.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let m = Manifest::parse("xconnect-bench.yaml", &text, &env).unwrap();
    assert_eq!(m.workers.poll, PollMode::Busy);
    assert_eq!(m.workers.cpus, None);
    assert_eq!(m.ports.len(), 2);
    assert_eq!(m.cross_connects.len(), 1);
}

#[test]
fn vlans_example_shows_access_trunk_qinq_and_subinterfaces() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vlans.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let m = Manifest::parse("vlans.yaml", &text, &env).unwrap();
    let members: Vec<&MemberSpec> = m.bridges.iter().flat_map(|b| &b.members).collect();
    let shows = |what: &dyn Fn(&MemberSpec) -> bool| members.iter().any(|member| what(member));
    assert!(shows(
        &|m| matches!(m.vlan, VlanMode::Access(vid) if vid != 1)
    ));
    assert!(shows(&|m| matches!(
        m.vlan,
        VlanMode::Trunk {
            tpid: Tpid::Dot1q,
            ..
        }
    )));
    assert!(shows(&|m| matches!(
        m.vlan,
        VlanMode::Trunk {
            tpid: Tpid::Dot1ad,
            ..
        }
    )));
    assert!(shows(&|m| m.interface.tags.len() == 1));
    assert!(shows(&|m| m.interface.tags.len() == 2));
    assert!(m.bridges.iter().any(|b| !b.static_macs.is_empty()));
}

#[test]
fn router_example_shows_each_kind_of_interface_route_and_neighbor() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/router.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let m = Manifest::parse("router.yaml", &text, &env).unwrap();
    let interfaces = &m.router.interfaces;
    assert!(interfaces
        .iter()
        .any(|i| i.attach == Attach::Port && i.name.tags.is_empty()));
    assert!(interfaces.iter().any(|i| i.name.tags.len() == 1));
    assert!(interfaces.iter().any(|i| i.attach == Attach::Bridge));
    assert!(interfaces
        .iter()
        .any(|i| i.attach == Attach::Bridge && i.name.tags.len() == 1));
    assert!(interfaces
        .iter()
        .flat_map(|i| &i.addresses)
        .any(|a| !a.is_v4()));
    let forwards = |what: &dyn Fn(usize) -> bool| {
        m.router
            .routes
            .iter()
            .any(|r| matches!(&r.action, RouteAction::Forward(hops) if what(hops.len())))
    };
    assert!(forwards(&|hops| hops == 1));
    assert!(forwards(&|hops| hops > 1), "ECMP");
    assert!(m
        .router
        .routes
        .iter()
        .any(|r| r.action == RouteAction::Blackhole));
    assert!(!m.router.neighbors.is_empty());
}

#[test]
fn crate_doc_example_is_valid() {
    // The manifest in lib.rs's documentation, with its `//! ` prefixes taken off.
    let source = include_str!("../lib.rs");
    let yaml: String = source
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .skip_while(|line| *line != "```yaml")
        .skip(1)
        .take_while(|line| *line != "```")
        .map(|line| format!("{line}\n"))
        .collect();
    let m = Manifest::parse("lib.rs", &yaml, &env).unwrap_or_else(|d| panic!("{d}\n{yaml}"));
    assert_eq!(m.bridges.len(), 1);
}
