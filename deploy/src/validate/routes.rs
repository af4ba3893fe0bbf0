//! `router.routes`: static routes, each to a destination prefix through gateways
//! (`via`), on-link out of an `interface`, or dropped (`type`).

use std::collections::HashMap;
use std::net::IpAddr;

use super::addresses::{address, is_link_local, not_a_host, prefix};
use super::fields::{keyword, mapping, sequence, type_error, Fields};
use super::router::Interfaces;
use super::FirstUse;
use crate::diagnostic::Report;
use crate::manifest::{NextHopSpec, Prefix, RouteAction, RouteSpec, MAX_NEXT_HOPS};
use crate::scalar::ScalarKind;
use crate::tree::{join_index, Node, Value};

const ROUTE_KEYS: &[&str] = &["to", "via", "interface", "type"];

/// The routes that drop what they match, as `type` names them.
#[derive(Clone, Copy, PartialEq)]
enum Discard {
    Blackhole,
    Unreachable,
    Prohibit,
}

const DISCARDS: &[(&str, Discard)] = &[
    ("blackhole", Discard::Blackhole),
    ("unreachable", Discard::Unreachable),
    ("prohibit", Discard::Prohibit),
];

pub(super) fn routes(
    node: Option<&Node>,
    path: &str,
    interfaces: &Interfaces,
    report: &mut Report<'_>,
) -> Option<Vec<RouteSpec>> {
    // An empty `routes:` is read as "none", the same as leaving it out.
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return Some(Vec::new());
    };
    let items = sequence(node, path, report)?;
    let mut destinations = HashMap::new();
    let mut specs = Some(Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let spec = route(
            item,
            &join_index(path, i),
            interfaces,
            &mut destinations,
            report,
        );
        specs = specs.zip(spec).map(|(mut all, one)| {
            all.push(one);
            all
        });
    }
    specs
}

fn route(
    item: &Node,
    path: &str,
    interfaces: &Interfaces,
    destinations: &mut HashMap<Prefix, FirstUse>,
    report: &mut Report<'_>,
) -> Option<RouteSpec> {
    let fields = mapping(item, path, report)?;
    fields.reject_unknown(ROUTE_KEYS, report);
    let to = fields
        .require("to", report)
        .and_then(|n| destination(n, &fields.path("to"), path, destinations, report));
    let action = action(&fields, item, path, to, interfaces, report);
    Some(RouteSpec {
        to: to?,
        action: action?,
    })
}

/// A prefix with no host bits, routed once.
fn destination(
    node: &Node,
    path: &str,
    route_path: &str,
    destinations: &mut HashMap<Prefix, FirstUse>,
    report: &mut Report<'_>,
) -> Option<Prefix> {
    let to = prefix(node, path, report)?;
    // `10.2.3.0/16` is most likely a slip for the network, but it could as well be a
    // wrong length; say which network it is rather than guess.
    let network = to.network();
    if network != to {
        report.error(
            node.pos,
            path,
            format!("`{to}` has host bits set; did you mean {network}?"),
        );
        return None;
    }
    if let Some(first) = destinations.get(&to) {
        report.error(
            node.pos,
            path,
            format!("a route to {to} is already given by {first}"),
        );
        return None;
    }
    destinations.insert(
        to,
        FirstUse {
            path: route_path.to_owned(),
            pos: node.pos,
        },
    );
    Some(to)
}

/// What the route does: forward through `via` and `interface`, or drop as `type` says.
/// `to` is `None` when the destination is wrong (reported); then the checks that need
/// its family are skipped.
fn action(
    fields: &Fields<'_>,
    item: &Node,
    path: &str,
    to: Option<Prefix>,
    interfaces: &Interfaces,
    report: &mut Report<'_>,
) -> Option<RouteAction> {
    let via = fields.get("via");
    let interface = fields.get("interface");
    if let Some(node) = fields.get("type") {
        return discard(node, fields, via, interface, report);
    }
    if via.is_none() && interface.is_none() {
        report.error(
            item.pos,
            path,
            "a route needs `via` (its gateways), `interface` (for a destination on-link), or `type` (blackhole, unreachable or prohibit)",
        );
        return None;
    }
    let interface_path = fields.path("interface");
    let named = interface.map(|n| (n, interfaces.reference(n, &interface_path, report)));
    let hops = match (via, named) {
        (Some(via), named) => gateways(
            via,
            &fields.path("via"),
            to,
            named.map(|(_, k)| k),
            interfaces,
            report,
        ),
        (None, Some((node, k))) => on_link(node, &interface_path, to?, k?, interfaces, report),
        (None, None) => None,
    };
    Some(RouteAction::Forward(hops?))
}

/// A route of `type` blackhole, unreachable or prohibit, which has no next hop.
fn discard(
    node: &Node,
    fields: &Fields<'_>,
    via: Option<&Node>,
    interface: Option<&Node>,
    report: &mut Report<'_>,
) -> Option<RouteAction> {
    let kind = keyword(node, &fields.path("type"), "route type", DISCARDS, report);
    let word = DISCARDS
        .iter()
        .find(|(_, k)| kind == Some(*k))
        .map(|(word, _)| *word);
    let mut consistent = true;
    for (key, given) in [("via", via), ("interface", interface)] {
        // An unknown type leaves the user's intent open; that is the one thing to fix.
        if let (Some(given), Some(word)) = (given, word) {
            report.error(
                given.pos,
                &fields.path(key),
                format!(
                    "`type: {word}` drops what the route matches, so the route takes no `{key}`; remove `{key}`, or remove `type` to forward"
                ),
            );
            consistent = false;
        }
    }
    if !consistent {
        return None;
    }
    Some(match kind? {
        Discard::Blackhole => RouteAction::Blackhole,
        Discard::Unreachable => RouteAction::Unreachable,
        Discard::Prohibit => RouteAction::Prohibit,
    })
}

/// `via`: one gateway, or a list of them for ECMP. `interface` is `Some` when the route
/// names one, holding `None` if that name is wrong (reported).
fn gateways(
    node: &Node,
    path: &str,
    to: Option<Prefix>,
    interface: Option<Option<usize>>,
    interfaces: &Interfaces,
    report: &mut Report<'_>,
) -> Option<Vec<NextHopSpec>> {
    let listed: Vec<(&Node, String)> = match &node.value {
        Value::Seq(items) => {
            if items.is_empty() {
                report.error(node.pos, path, "`via` lists no gateway; give at least one");
                return None;
            }
            if items.len() > MAX_NEXT_HOPS {
                report.error(
                    node.pos,
                    path,
                    format!(
                        "`via` lists {} gateways; a route has at most {MAX_NEXT_HOPS}",
                        items.len()
                    ),
                );
                return None;
            }
            items
                .iter()
                .enumerate()
                .map(|(j, item)| (item, join_index(path, j)))
                .collect()
        }
        Value::Scalar(s) if s.kind() == ScalarKind::Str => vec![(node, path.to_owned())],
        _ => {
            type_error(node, path, "a gateway address or a list of them", report);
            return None;
        }
    };
    let mut first: HashMap<IpAddr, &str> = HashMap::new();
    let mut hops = Some(Vec::with_capacity(listed.len()));
    for (item, item_path) in &listed {
        let hop = address(item, item_path, report).and_then(|ip| {
            if let Some(earlier) = first.get(&ip) {
                report.error(
                    item.pos,
                    item_path,
                    format!("gateway {ip} is listed twice (also {earlier})"),
                );
                return None;
            }
            first.insert(ip, item_path);
            gateway(ip, item, item_path, to, interface, interfaces, report)
        });
        hops = hops.zip(hop).map(|(mut all, one)| {
            all.push(one);
            all
        });
    }
    hops
}

/// One gateway, with the interface it is reached through.
fn gateway(
    ip: IpAddr,
    node: &Node,
    path: &str,
    to: Option<Prefix>,
    interface: Option<Option<usize>>,
    interfaces: &Interfaces,
    report: &mut Report<'_>,
) -> Option<NextHopSpec> {
    let problem = gateway_problem(ip, to, interfaces);
    let hop = match (problem, interface) {
        (Some(problem), _) => Err(problem),
        // The interface's name is wrong: that is what to fix.
        (None, Some(None)) => return None,
        (None, Some(Some(k))) => through(ip, k, interfaces),
        (None, None) => found(ip, interfaces),
    };
    match hop {
        Ok(Some(hop)) => Some(hop),
        Ok(None) => None,
        Err(problem) => {
            report.error(node.pos, path, problem);
            None
        }
    }
}

/// What makes `ip` no gateway for a route to `to`, wherever it is.
fn gateway_problem(ip: IpAddr, to: Option<Prefix>, interfaces: &Interfaces) -> Option<String> {
    if let Some(to) = to.filter(|to| to.is_v4() != ip.is_ipv4()) {
        return Some(format!(
            "gateway {ip} is {} but the destination {to} is {}; a route's gateways are of its destination's family",
            family(ip.is_ipv4()),
            family(to.is_v4())
        ));
    }
    if let Some(what) = not_a_host(ip) {
        return Some(format!("gateway {ip} is {what}, not a host"));
    }
    interfaces.owner(ip).map(|at| {
        format!(
            "gateway {ip} is the router's own address, given at {at}; name the next router instead"
        )
    })
}

/// A gateway reached through interface `k`, which the route names. `Ok(None)` when
/// whether it is on that link cannot be told (problems reported elsewhere).
fn through(ip: IpAddr, k: usize, interfaces: &Interfaces) -> Result<Option<NextHopSpec>, String> {
    let known = interfaces.on_link("gateway", ip, k)?;
    Ok(known.then_some(NextHopSpec {
        via: Some(ip),
        interface: k,
    }))
}

/// A gateway reached through the interface whose subnet holds it.
fn found(ip: IpAddr, interfaces: &Interfaces) -> Result<Option<NextHopSpec>, String> {
    if is_link_local(ip) {
        return Err(format!(
            "gateway {ip} is link-local, so the route must name its `interface`: a link-local address says nothing of which link it is on"
        ));
    }
    match interfaces.subnet_of(ip) {
        Some((k, subnet)) => interfaces.host_in("gateway", ip, &subnet, k).map(|()| {
            Some(NextHopSpec {
                via: Some(ip),
                interface: k,
            })
        }),
        None if interfaces.complete() => Err(format!(
            "gateway {ip} is not in any router interface's subnet; a gateway is a neighbor on a connected subnet"
        )),
        None => Ok(None),
    }
}

/// An on-link route: the destination is on interface `k`'s link itself.
fn on_link(
    node: &Node,
    path: &str,
    to: Prefix,
    k: usize,
    interfaces: &Interfaces,
    report: &mut Report<'_>,
) -> Option<Vec<NextHopSpec>> {
    // ARP and neighbor solicitations need a source address of the destination's family.
    if interfaces.complete_at(k) && !interfaces.has_family(k, to.is_v4()) {
        report.error(
            node.pos,
            path,
            format!(
                "interface {} has no {} address, so {to} cannot be on-link there; give it one, or route via a gateway",
                interfaces.called(k),
                family(to.is_v4())
            ),
        );
        return None;
    }
    Some(vec![NextHopSpec {
        via: None,
        interface: k,
    }])
}

pub(super) fn family(v4: bool) -> &'static str {
    if v4 {
        "IPv4"
    } else {
        "IPv6"
    }
}
