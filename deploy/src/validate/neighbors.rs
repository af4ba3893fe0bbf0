//! `router.neighbors`: static ARP and ND entries, an address's MAC on one interface.

use std::collections::HashMap;
use std::net::IpAddr;

use super::addresses::{address, not_a_host};
use super::fields::{mapping, sequence, string};
use super::router::Interfaces;
use super::FirstUse;
use crate::diagnostic::Report;
use crate::mac;
use crate::manifest::NeighborSpec;
use crate::tree::{join_index, Node};

const NEIGHBOR_KEYS: &[&str] = &["interface", "address", "mac"];

pub(super) fn neighbors(
    node: Option<&Node>,
    path: &str,
    interfaces: &Interfaces,
    report: &mut Report<'_>,
) -> Option<Vec<NeighborSpec>> {
    // An empty `neighbors:` is read as "none", the same as leaving it out.
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return Some(Vec::new());
    };
    let items = sequence(node, path, report)?;
    let mut first = HashMap::new();
    let mut specs = Some(Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let spec = neighbor(item, &join_index(path, i), interfaces, &mut first, report);
        specs = specs.zip(spec).map(|(mut all, one)| {
            all.push(one);
            all
        });
    }
    specs
}

fn neighbor(
    item: &Node,
    path: &str,
    interfaces: &Interfaces,
    first: &mut HashMap<(usize, IpAddr), FirstUse>,
    report: &mut Report<'_>,
) -> Option<NeighborSpec> {
    let fields = mapping(item, path, report)?;
    fields.reject_unknown(NEIGHBOR_KEYS, report);
    let interface = fields
        .require("interface", report)
        .and_then(|n| interfaces.reference(n, &fields.path("interface"), report));
    let address_path = fields.path("address");
    let address_node = fields.require("address", report);
    let address = address_node.and_then(|n| {
        let ip = address(n, &address_path, report)?;
        match neighbor_problem(ip, interface, interfaces) {
            Ok(known) => known.then_some((ip, n)),
            Err(problem) => {
                report.error(n.pos, &address_path, problem);
                None
            }
        }
    });
    let mac_path = fields.path("mac");
    let mac = fields.require("mac", report).and_then(|n| {
        let text = string(n, &mac_path, report)?;
        mac::parse(text, "neighbor MAC")
            .map_err(|problem| report.error(n.pos, &mac_path, problem))
            .ok()
    });

    let (interface, (address, address_node), mac) = (interface?, address?, mac?);
    // One address on one link has one MAC; a second entry would contradict the first
    // or repeat it.
    if let Some(earlier) = first.get(&(interface, address)) {
        report.error(
            address_node.pos,
            &address_path,
            format!(
                "neighbor {address} on {} is already given by {earlier}",
                interfaces.called(interface)
            ),
        );
        return None;
    }
    first.insert(
        (interface, address),
        FirstUse {
            path: path.to_owned(),
            pos: item.pos,
        },
    );
    Some(NeighborSpec {
        interface,
        address,
        mac,
    })
}

/// What makes `ip` no neighbor on interface `interface` (`None` when that name is
/// wrong, reported). `Ok(false)` when that cannot be told, for a problem reported
/// elsewhere.
fn neighbor_problem(
    ip: IpAddr,
    interface: Option<usize>,
    interfaces: &Interfaces,
) -> Result<bool, String> {
    if let Some(what) = not_a_host(ip) {
        return Err(format!("neighbor {ip} is {what}, not a host"));
    }
    if let Some(at) = interfaces.owner(ip) {
        return Err(format!(
            "{ip} is the router's own address, given at {at}, not a neighbor's"
        ));
    }
    match interface {
        Some(k) => interfaces.on_link("neighbor", ip, k),
        None => Ok(false),
    }
}
