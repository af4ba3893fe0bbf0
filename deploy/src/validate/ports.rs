//! The `ports` section: each port's name, kind and kind-specific settings, plus the
//! checks that span ports (unique names, unique sockets).

use std::collections::HashMap;
use std::path::PathBuf;

use super::fields::{integer, keyword, mapping, sequence, string, Fields};
use super::FirstUse;
use crate::diagnostic::Report;
use crate::expand::expand;
use crate::mac;
use crate::manifest::{PortKind, PortSpec, SocketMode, VhostUserSpec, DEFAULT_MTU, MAX_MTU};
use crate::tree::{join_index, Node};

const PATH: &str = "ports";
const VHOST_USER_KEYS: &[&str] = &[
    "name",
    "type",
    "mtu",
    "socket",
    "mode",
    "queue_pairs",
    "mac",
];
/// Port names become Linux interface and thread names in places, and those stop at
/// 15 bytes (IFNAMSIZ less the terminating NUL).
const MAX_NAME_LEN: usize = 15;
const MAX_QUEUE_PAIRS: u64 = 16;
/// The smallest MTU IPv4 allows (RFC 791), and Linux's least for an Ethernet device
/// (ETH_MIN_MTU): a guest could not use a smaller one.
pub(super) const MIN_MTU: u64 = 68;

pub(crate) type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

/// What the ports section yielded: the ports themselves when every one is valid, and
/// the names seen either way so cross-connects and bridges can be checked against them.
pub(crate) struct Ports {
    pub specs: Option<Vec<PortSpec>>,
    /// Each name and the port that defines it. `None` when the section could not be
    /// read as a list at all, in which case nothing can be said about which names exist.
    pub names: Option<HashMap<String, FirstUse>>,
    /// Each valid name's MTU, which a router interface on the port may not exceed.
    pub mtus: HashMap<String, u16>,
}

#[derive(Default)]
struct Seen {
    names: HashMap<String, FirstUse>,
    sockets: HashMap<PathBuf, FirstUse>,
    mtus: HashMap<String, u16>,
}

pub(crate) fn ports(node: &Node, env: Env<'_>, report: &mut Report<'_>) -> Ports {
    let Some(items) = sequence(node, PATH, report) else {
        return Ports {
            specs: None,
            names: None,
            mtus: HashMap::new(),
        };
    };
    if items.is_empty() {
        report.error(node.pos, PATH, "at least one port is required");
    }
    let mut seen = Seen::default();
    let mut specs = Some(Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let spec = port(item, &join_index(PATH, i), env, &mut seen, report);
        specs = specs.zip(spec).map(|(mut all, one)| {
            all.push(one);
            all
        });
    }
    Ports {
        specs: specs.filter(|s| !s.is_empty()),
        names: Some(seen.names),
        mtus: seen.mtus,
    }
}

fn port(
    item: &Node,
    path: &str,
    env: Env<'_>,
    seen: &mut Seen,
    report: &mut Report<'_>,
) -> Option<PortSpec> {
    let fields = mapping(item, path, report)?;
    let name = fields
        .require("name", report)
        .and_then(|n| port_name(n, &fields.path("name"), seen, report));
    // Read for every kind: the MTU is a property of the port, not of how it attaches.
    let mtu = match fields.get("mtu") {
        // Bounded by MAX_MTU, so the cast cannot truncate.
        Some(n) => {
            integer(n, &fields.path("mtu"), MIN_MTU..=u64::from(MAX_MTU), report).map(|m| m as u16)
        }
        None => Some(DEFAULT_MTU),
    };
    if let (Some(name), Some(mtu)) = (&name, mtu) {
        seen.mtus.insert(name.clone(), mtu);
    }

    let kind = match fields.get("type") {
        Some(n) => {
            let kind = keyword(
                n,
                &fields.path("type"),
                "port type",
                &[("vhost-user", ())],
                report,
            );
            // An unknown type leaves no schema to check the remaining keys against.
            kind?;
            kind
        }
        None => {
            fields.require("type", report);
            // vhost-user is the only kind so far, so the checks below still run as if it
            // were given: the user learns about every other mistake in this same pass.
            None
        }
    };
    let vhost = vhost_user(&fields, name.as_deref(), env, seen, report);
    kind?;
    Some(PortSpec {
        name: name?,
        mtu: mtu?,
        kind: PortKind::VhostUser(vhost?),
    })
}

fn port_name(node: &Node, path: &str, seen: &mut Seen, report: &mut Report<'_>) -> Option<String> {
    let name = string(node, path, report)?;
    let problem = name_problem("port", name);
    if let Some(first) = seen.names.get(name) {
        report.error(
            node.pos,
            path,
            format!("port name `{name}` is already used by {first}"),
        );
        return None;
    }
    // Recorded even when malformed, so a cross-connect naming it is not also called unknown.
    seen.names.insert(
        name.to_owned(),
        FirstUse {
            path: parent_of(path).to_owned(),
            pos: node.pos,
        },
    );
    if let Some(problem) = problem {
        report.error(node.pos, path, problem);
        return None;
    }
    Some(name.to_owned())
}

/// What is wrong with `name` as the name of a `what` (a port or a bridge), if anything.
pub(super) fn name_problem(what: &str, name: &str) -> Option<String> {
    if name.is_empty() {
        Some(format!("{what} name is empty"))
    } else if name.len() > MAX_NAME_LEN {
        Some(format!(
            "{what} name `{name}` is {} characters long; at most {MAX_NAME_LEN} are allowed",
            name.chars().count()
        ))
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some(format!("{what} name `{name}` must start with a letter"))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .map(|c| {
                format!(
                    "{what} name `{name}` contains `{c}`; only letters, digits, `_`, `.` and `-` are allowed"
                )
            })
    }
}

fn vhost_user(
    fields: &Fields<'_>,
    name: Option<&str>,
    env: Env<'_>,
    seen: &mut Seen,
    report: &mut Report<'_>,
) -> Option<VhostUserSpec> {
    fields.reject_unknown(VHOST_USER_KEYS, report);
    let socket = fields
        .require("socket", report)
        .and_then(|n| socket(n, &fields.path("socket"), env, seen, report));
    let mode = match fields.get("mode") {
        Some(n) => keyword(
            n,
            &fields.path("mode"),
            "socket mode",
            &[
                ("server", SocketMode::Server),
                ("client", SocketMode::Client),
            ],
            report,
        ),
        None => Some(SocketMode::Server),
    };
    let queue_pairs = match fields.get("queue_pairs") {
        // Bounded by MAX_QUEUE_PAIRS, so the cast cannot truncate.
        Some(n) => {
            integer(n, &fields.path("queue_pairs"), 1..=MAX_QUEUE_PAIRS, report).map(|q| q as u16)
        }
        None => Some(1),
    };
    let mac = match fields.get("mac") {
        Some(n) => {
            let path = fields.path("mac");
            string(n, &path, report).and_then(|text| match mac::parse(text, "port address") {
                Ok(mac) => Some(mac),
                Err(problem) => {
                    report.error(n.pos, &path, problem);
                    None
                }
            })
        }
        None => name.map(mac::derive_from_name),
    };
    Some(VhostUserSpec {
        socket: socket?,
        mode: mode?,
        queue_pairs: queue_pairs?,
        mac: mac?,
    })
}

fn socket(
    node: &Node,
    path: &str,
    env: Env<'_>,
    seen: &mut Seen,
    report: &mut Report<'_>,
) -> Option<PathBuf> {
    let text = string(node, path, report)?;
    let expanded = match expand(text, env) {
        Ok(expanded) => expanded,
        Err(problems) => {
            for problem in problems {
                report.error(node.pos, path, problem);
            }
            return None;
        }
    };
    if expanded.is_empty() {
        report.error(node.pos, path, "socket path is empty");
        return None;
    }
    let socket = PathBuf::from(expanded);
    // Two ports on one socket would fight over it: the second bind fails in server
    // mode, and in client mode both would attach to the same guest device.
    if let Some(first) = seen.sockets.get(&socket) {
        report.error(
            node.pos,
            path,
            format!("socket `{}` is already used by {first}", socket.display()),
        );
        return None;
    }
    seen.sockets.insert(
        socket.clone(),
        FirstUse {
            path: parent_of(path).to_owned(),
            pos: node.pos,
        },
    );
    Some(socket)
}

/// `ports[2].name` -> `ports[2]`: messages name the port, not the field.
fn parent_of(path: &str) -> &str {
    path.rsplit_once('.').map_or(path, |(parent, _)| parent)
}
