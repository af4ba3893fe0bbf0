//! Checks a manifest tree against the schema and, when nothing is wrong, builds the
//! typed manifest from it.
//!
//! Every check reports into the shared [`Report`] and yields `None` instead of
//! stopping, so a single run lists every problem in the file.

mod cross_connects;
mod fields;
mod ports;
mod workers;

use std::collections::HashSet;

use crate::diagnostic::Report;
use crate::manifest::Manifest;
use crate::tree::Node;

pub(crate) use ports::Env;

const TOP_KEYS: &[&str] = &["workers", "ports", "cross_connects"];

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
    let (specs, names) = match ports {
        Some(p) => (p.specs, p.names),
        None => (None, None),
    };
    let known: Option<HashSet<&str>> = names
        .as_ref()
        .map(|names| names.iter().map(String::as_str).collect());
    let cross_connects =
        cross_connects::cross_connects(top.get("cross_connects"), known.as_ref(), report);

    Some(Manifest {
        workers: workers?,
        ports: specs?,
        bridges: Vec::new(),
        cross_connects: cross_connects?,
    })
}
