//! Checks a manifest tree against the schema and, when nothing is wrong, builds the
//! typed manifest from it.
//!
//! Every check reports into the shared [`Report`] and yields `None` instead of
//! stopping, so a single run lists every problem in the file.

mod addresses;
mod bridges;
mod cross_connects;
mod fields;
mod interfaces;
mod neighbors;
mod ports;
mod router;
mod routes;
mod workers;

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::diagnostic::{Pos, Report};
use crate::manifest::Manifest;
use crate::tree::Node;

pub(crate) use ports::Env;

const TOP_KEYS: &[&str] = &["workers", "ports", "bridges", "cross_connects", "router"];

/// Where something was first defined or used, for "already used by" messages.
pub(crate) struct FirstUse {
    /// The entry that holds it, e.g. `ports[0]`.
    pub path: String,
    pub pos: Pos,
}

/// Reads as `ports[0] (line 3)`.
impl fmt::Display for FirstUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (line {})", self.path, self.pos.line)
    }
}

pub(crate) fn manifest(root: &Node, env: Env<'_>, report: &mut Report<'_>) -> Option<Manifest> {
    if root.is_null() {
        report.error(
            root.pos,
            "",
            "the manifest is empty; it needs at least a `ports` list",
        );
        return None;
    }
    let top = fields::mapping(root, "", report)?;
    top.reject_unknown(TOP_KEYS, report);

    let workers = workers::workers(top.get("workers"), report);
    let ports = top
        .require("ports", report)
        .map(|n| ports::ports(n, env, report));
    let (specs, names, mtus) = match ports {
        Some(p) => (p.specs, p.names, p.mtus),
        None => (None, None, HashMap::new()),
    };
    let known: Option<HashSet<&str>> = names
        .as_ref()
        .map(|names| names.keys().map(String::as_str).collect());
    let cross_connects =
        cross_connects::cross_connects(top.get("cross_connects"), known.as_ref(), report);
    let bridges = bridges::bridges(
        top.get("bridges"),
        names.as_ref(),
        &cross_connects.connected,
        report,
    );
    let topology = router::Topology {
        ports: names.as_ref(),
        port_mtus: &mtus,
        bridges: bridges.names.as_ref(),
        bridge_ports: &bridges.member_ports,
        members: &bridges.members,
        cross_connected: &cross_connects.connected,
    };
    let router = router::router(top.get("router"), &topology, report);

    Some(Manifest {
        workers: workers?,
        ports: specs?,
        bridges: bridges.specs?,
        cross_connects: cross_connects.pairs?,
        router: router?,
    })
}
