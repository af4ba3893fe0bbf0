//! The `router` section: IP interfaces on ports, VLAN subinterfaces and bridges, static
//! routes and static neighbors; plus the checks that span sections: a routed interface
//! is neither a bridge member nor on a cross-connected port, and its MTU fits what it
//! is attached to.

use std::collections::HashMap;
use std::net::IpAddr;

use super::addresses::{is_link_local, not_a_host, overlap, prefix, subnet_role};
use super::fields::{integer, mapping, sequence, string, Fields};
use super::interfaces::{routed_interface, PortNames};
use super::ports::MIN_MTU;
use super::{neighbors, routes, FirstUse};
use crate::diagnostic::{Pos, Report};
use crate::mac;
use crate::manifest::{Attach, InterfaceName, Prefix, RouterInterfaceSpec, RouterSpec, MAX_MTU};
use crate::scalar::ScalarKind;
use crate::suggest;
use crate::tree::{join_index, Node, Value};

const PATH: &str = "router";
const ROUTER_KEYS: &[&str] = &["interfaces", "routes", "neighbors"];
const INTERFACE_KEYS: &[&str] = &["name", "mac", "mtu", "addresses"];
/// IPv6 needs every link to carry 1280-byte packets (RFC 8200, section 5).
const MIN_IPV6_MTU: u16 = 1280;

/// What the other sections define and claim, which the router's interfaces are
/// checked against.
pub(crate) struct Topology<'t> {
    /// `None` when the ports section was unreadable.
    pub ports: Option<&'t PortNames>,
    pub port_mtus: &'t HashMap<String, u16>,
    /// `None` when the bridges section was unreadable.
    pub bridges: Option<&'t HashMap<String, FirstUse>>,
    pub bridge_ports: &'t HashMap<String, Vec<String>>,
    pub members: &'t HashMap<InterfaceName, FirstUse>,
    pub cross_connected: &'t HashMap<String, FirstUse>,
}

pub(crate) fn router(
    node: Option<&Node>,
    topology: &Topology<'_>,
    report: &mut Report<'_>,
) -> Option<RouterSpec> {
    // An empty `router:` is read as "no router", the same as leaving it out.
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return Some(RouterSpec::default());
    };
    let fields = mapping(node, PATH, report)?;
    fields.reject_unknown(ROUTER_KEYS, report);
    let interfaces = interfaces(
        fields.get("interfaces"),
        &fields.path("interfaces"),
        topology,
        report,
    );
    let routes = routes::routes(
        fields.get("routes"),
        &fields.path("routes"),
        &interfaces,
        report,
    );
    let neighbors = neighbors::neighbors(
        fields.get("neighbors"),
        &fields.path("neighbors"),
        &interfaces,
        report,
    );
    let specs: Option<Vec<RouterInterfaceSpec>> = interfaces
        .all?
        .into_iter()
        .map(|interface| interface.spec)
        .collect();
    Some(RouterSpec {
        interfaces: specs?,
        routes: routes?,
        neighbors: neighbors?,
    })
}

/// The router's interfaces as read, also those with problems (reported), so that the
/// routes and neighbors naming them are neither called unknown nor checked against
/// addresses that are missing.
pub(super) struct Interfaces {
    /// One per entry of `router.interfaces`; `None` when the list is unreadable.
    all: Option<Vec<Interface>>,
}

struct Interface {
    /// The name as written; `None` when it is not a string.
    text: Option<String>,
    /// The name as understood, which may be spelt differently (`vm0.0100`).
    name: Option<InterfaceName>,
    /// Each address that was read and accepted, with where it is.
    addresses: Vec<(Prefix, FirstUse)>,
    /// Whether every address was: only then can an address be said to be in none of
    /// this interface's subnets.
    complete: bool,
    spec: Option<RouterInterfaceSpec>,
}

impl Interface {
    fn unread() -> Interface {
        Interface {
            text: None,
            name: None,
            addresses: Vec::new(),
            complete: false,
            spec: None,
        }
    }

    /// The connected subnet that holds `ip`.
    fn subnet_holding(&self, ip: IpAddr) -> Option<Prefix> {
        self.addresses
            .iter()
            .map(|(a, _)| a.network())
            .find(|subnet| subnet.contains(ip))
    }
}

/// How messages name an interface: `vm0` as understood, else as written, else
/// `otherwise` (its place, or "this interface").
fn display_name(name: Option<&InterfaceName>, text: Option<&str>, otherwise: &str) -> String {
    match (name, text) {
        (Some(name), _) => format!("`{name}`"),
        (None, Some(text)) => format!("`{text}`"),
        (None, None) => otherwise.to_owned(),
    }
}

impl Interfaces {
    /// Reads a route's or neighbor's `interface`: the index of the router interface it
    /// names.
    pub fn reference(&self, node: &Node, path: &str, report: &mut Report<'_>) -> Option<usize> {
        let text = string(node, path, report)?;
        // With the list unreadable, every name would look unknown.
        let all = self.all.as_ref()?;
        let found = all.iter().position(|i| {
            i.text.as_deref() == Some(text)
                || i.name.as_ref().is_some_and(|n| n.to_string() == text)
        });
        if found.is_some() {
            return found;
        }
        let mut names: Vec<&str> = all.iter().filter_map(|i| i.text.as_deref()).collect();
        // Sorted so that a tie between two candidates is broken the same way every run.
        names.sort_unstable();
        let hint = suggest::closest(text, &names)
            .map(|near| format!("; did you mean `{near}`?"))
            .unwrap_or_default();
        report.error(
            node.pos,
            path,
            format!(
                "`{text}` is not a router interface; name one given in router.interfaces{hint}"
            ),
        );
        None
    }

    /// How messages name interface `k`: `vm0`.
    pub fn called(&self, k: usize) -> String {
        let at = join_index("router.interfaces", k);
        let i = self.get(k);
        display_name(
            i.and_then(|i| i.name.as_ref()),
            i.and_then(|i| i.text.as_deref()),
            &at,
        )
    }

    /// Where `ip` is assigned to one of the router's own interfaces.
    pub fn owner(&self, ip: IpAddr) -> Option<&FirstUse> {
        self.each()
            .flat_map(|i| &i.addresses)
            .find(|(a, _)| a.addr == ip)
            .map(|(_, at)| at)
    }

    /// The interface with a connected subnet holding `ip`, and that subnet.
    pub fn subnet_of(&self, ip: IpAddr) -> Option<(usize, Prefix)> {
        self.each()
            .enumerate()
            .find_map(|(k, i)| i.subnet_holding(ip).map(|s| (k, s)))
    }

    /// Interface `k`'s connected subnet that holds `ip`.
    pub fn subnet_on(&self, k: usize, ip: IpAddr) -> Option<Prefix> {
        self.get(k)?.subnet_holding(ip)
    }

    /// Whether `ip` is a host on interface `k`'s link: IPv6 link-local, or in one of
    /// its subnets and neither that subnet's network nor its broadcast address. `Ok(false)`
    /// when that cannot be told, because the interface has problems of its own
    /// (reported). `what` names the address in messages: `gateway`, `neighbor`.
    pub fn on_link(&self, what: &str, ip: IpAddr, k: usize) -> Result<bool, String> {
        // Link-local addresses are on every link; naming the link is what makes them unique.
        if is_link_local(ip) {
            return Ok(true);
        }
        match self.subnet_on(k, ip) {
            Some(subnet) => self.host_in(what, ip, &subnet, k).map(|()| true),
            None if self.complete_at(k) => Err(format!(
                "{what} {ip} is not in a subnet of interface {} ({})",
                self.called(k),
                self.subnets(k)
            )),
            None => Ok(false),
        }
    }

    /// `Err` when `ip` is the network or broadcast address of `subnet`, interface `k`'s:
    /// those name the subnet, not a host in it.
    pub fn host_in(&self, what: &str, ip: IpAddr, subnet: &Prefix, k: usize) -> Result<(), String> {
        match subnet_role(subnet, ip) {
            Some(role) => Err(format!(
                "{what} {ip} is the {role} address of subnet {subnet} on {}, not a host",
                self.called(k)
            )),
            None => Ok(()),
        }
    }

    /// Whether interface `k` has an IPv4 address (`v4`) or an IPv6 one.
    pub fn has_family(&self, k: usize, v4: bool) -> bool {
        self.get(k)
            .is_some_and(|i| i.addresses.iter().any(|(a, _)| a.is_v4() == v4))
    }

    /// Interface `k`'s subnets, for messages: `10.0.1.0/24, fd00:1::/64`.
    pub fn subnets(&self, k: usize) -> String {
        let subnets: Vec<String> = self
            .get(k)
            .map(|i| &i.addresses[..])
            .unwrap_or_default()
            .iter()
            .map(|(a, _)| a.network().to_string())
            .collect();
        subnets.join(", ")
    }

    /// Whether interface `k` was read in full, so that what it lacks is really missing.
    pub fn complete_at(&self, k: usize) -> bool {
        self.get(k).is_some_and(|i| i.complete)
    }

    /// Whether every interface was read in full, so that a subnet none of them holds
    /// really is missing.
    pub fn complete(&self) -> bool {
        self.all
            .as_ref()
            .is_some_and(|all| all.iter().all(|i| i.complete))
    }

    fn get(&self, k: usize) -> Option<&Interface> {
        self.all.as_ref().and_then(|all| all.get(k))
    }

    fn each(&self) -> impl Iterator<Item = &Interface> {
        self.all.iter().flatten()
    }
}

/// What the interfaces have claimed so far.
#[derive(Default)]
struct Seen {
    names: HashMap<InterfaceName, FirstUse>,
    macs: HashMap<[u8; 6], FirstUse>,
}

fn interfaces(
    node: Option<&Node>,
    path: &str,
    topology: &Topology<'_>,
    report: &mut Report<'_>,
) -> Interfaces {
    // An empty `interfaces:` is read as "none", the same as leaving it out.
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return Interfaces {
            all: Some(Vec::new()),
        };
    };
    let Some(items) = sequence(node, path, report) else {
        return Interfaces { all: None };
    };
    let mut seen = Seen::default();
    let mut all = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let read = interface(
            item,
            i,
            &join_index(path, i),
            topology,
            &all,
            &mut seen,
            report,
        );
        all.push(read);
    }
    Interfaces { all: Some(all) }
}

fn interface(
    item: &Node,
    index: usize,
    path: &str,
    topology: &Topology<'_>,
    earlier: &[Interface],
    seen: &mut Seen,
    report: &mut Report<'_>,
) -> Interface {
    let Some(fields) = mapping(item, path, report) else {
        return Interface::unread();
    };
    fields.reject_unknown(INTERFACE_KEYS, report);
    let name_node = fields.require("name", report);
    // Kept even when the name is wrong, so that routes naming it are not also wrong.
    let text = name_node.and_then(|n| match &n.value {
        Value::Scalar(s) if s.kind() == ScalarKind::Str => Some(s.text.clone()),
        _ => None,
    });
    let name = name_node
        .and_then(|n| interface_name(n, &fields.path("name"), path, topology, seen, report));
    let called = display_name(
        name.as_ref().map(|(name, _)| name),
        text.as_deref(),
        "this interface",
    );
    let mac = interface_mac(&fields, item.pos, index, path, seen, report);
    let (addresses, complete) = match fields.require("addresses", report) {
        Some(n) => addresses(n, &fields.path("addresses"), &called, earlier, report),
        None => (Vec::new(), false),
    };
    let mtu = mtu(
        &fields,
        item.pos,
        name.as_ref(),
        &addresses,
        topology,
        report,
    );
    let spec = match (name.clone(), mac, mtu, complete) {
        (Some((name, attach)), Some(mac), Some(mtu), true) => Some(RouterInterfaceSpec {
            name,
            attach,
            mac,
            mtu,
            addresses: addresses.iter().map(|(a, _)| *a).collect(),
        }),
        _ => None,
    };
    Interface {
        text,
        name: name.map(|(name, _)| name),
        addresses,
        complete,
        spec,
    }
}

/// The name of the interface at `entry_path`, and what it attaches to.
fn interface_name(
    node: &Node,
    path: &str,
    entry_path: &str,
    topology: &Topology<'_>,
    seen: &mut Seen,
    report: &mut Report<'_>,
) -> Option<(InterfaceName, Attach)> {
    let (name, attach) = routed_interface(node, path, topology.ports, topology.bridges, report)?;
    if let Some(first) = seen.names.get(&name) {
        report.error(
            node.pos,
            path,
            format!("router interface `{name}` is already given by {first}"),
        );
        return None;
    }
    seen.names.insert(
        name.clone(),
        FirstUse {
            path: entry_path.to_owned(),
            pos: node.pos,
        },
    );
    // A bridge's own interface is one more member of the bridge: nothing to clash with.
    if attach == Attach::Bridge {
        return Some((name, attach));
    }
    if let Some(pair) = topology.cross_connected.get(&name.port) {
        report.error(
            node.pos,
            path,
            format!(
                "port `{}` is cross-connected by {pair}; a cross-connect takes every frame the port receives, so neither the port nor its VLAN subinterfaces can be routed",
                name.port
            ),
        );
        return None;
    }
    // A member's frames are switched by its bridge; routing them too would make two
    // owners of one frame. The bridge's own interface is the way to route a bridge.
    if let Some(bridge) = topology.members.get(&name) {
        report.error(
            node.pos,
            path,
            format!(
                "interface `{name}` is a member of {bridge}, so its frames are switched, not routed; to route that bridge's traffic, give the bridge itself a router interface (its name)"
            ),
        );
        return None;
    }
    Some((name, attach))
}

/// The interface's MAC: given, or derived from its index. Either way unique among the
/// router's interfaces, since a neighbor learns one interface per address.
fn interface_mac(
    fields: &Fields<'_>,
    item_pos: Pos,
    index: usize,
    entry_path: &str,
    seen: &mut Seen,
    report: &mut Report<'_>,
) -> Option<[u8; 6]> {
    let path = fields.path("mac");
    let (mac, pos, given) = match fields.get("mac") {
        Some(n) => {
            let text = string(n, &path, report)?;
            match mac::parse(text, "router interface MAC") {
                Ok(mac) => (mac, n.pos, true),
                Err(problem) => {
                    report.error(n.pos, &path, problem);
                    return None;
                }
            }
        }
        None => (mac::router_interface(index), item_pos, false),
    };
    if let Some(first) = seen.macs.get(&mac) {
        let mac = mac::format(&mac);
        let problem = if given {
            format!("MAC address {mac} is already used by {first}")
        } else {
            format!(
                "this interface's default MAC address, {mac}, is already used by {first}; give this interface a `mac`"
            )
        };
        report.error(pos, &path, problem);
        return None;
    }
    seen.macs.insert(
        mac,
        FirstUse {
            path: entry_path.to_owned(),
            pos,
        },
    );
    Some(mac)
}

/// The addresses accepted, each with where it is, and whether every one was.
fn addresses(
    node: &Node,
    path: &str,
    called: &str,
    earlier: &[Interface],
    report: &mut Report<'_>,
) -> (Vec<(Prefix, FirstUse)>, bool) {
    let Some(items) = sequence(node, path, report) else {
        return (Vec::new(), false);
    };
    if items.is_empty() {
        report.error(
            node.pos,
            path,
            "a router interface needs at least one address",
        );
        return (Vec::new(), false);
    }
    let mut accepted: Vec<(Prefix, FirstUse)> = Vec::with_capacity(items.len());
    let mut complete = true;
    for (j, item) in items.iter().enumerate() {
        let item_path = join_index(path, j);
        let address = prefix(item, &item_path, report)
            .filter(|a| host_address(a, item, &item_path, report))
            .filter(|a| unclaimed(a, item, &item_path, called, earlier, &accepted, report));
        match address {
            Some(a) => accepted.push((
                a,
                FirstUse {
                    path: item_path,
                    pos: item.pos,
                },
            )),
            None => complete = false,
        }
    }
    (accepted, complete)
}

/// Whether `a` can be an address of this router; reports why not.
fn host_address(a: &Prefix, node: &Node, path: &str, report: &mut Report<'_>) -> bool {
    let problem = if let Some(what) = not_a_host(a.addr) {
        format!("`{a}` is {what}; a router interface needs a unicast address of its own")
    } else if is_link_local(a.addr) {
        format!(
            "`{a}` is an IPv6 link-local address; vnf derives each interface's link-local address from its MAC, so list only global or unique local addresses here"
        )
    } else if let Some(role) = subnet_role(a, a.addr) {
        let subnet = a.network();
        format!(
            "`{a}` is the {role} address of subnet {subnet}; a router interface needs a host address in it, like `{}`",
            first_host(&subnet)
        )
    } else {
        return true;
    };
    report.error(node.pos, path, problem);
    false
}

/// `10.0.1.0/24` -> `10.0.1.1/24`, for an IPv4 subnet of /30 or wider.
fn first_host(subnet: &Prefix) -> Prefix {
    let addr = match subnet.addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) | 1).into()),
        other => other,
    };
    Prefix {
        addr,
        len: subnet.len,
    }
}

/// Whether neither `a` nor its subnet is already this router's, on this interface
/// (`accepted`) or an earlier one; reports where it is.
fn unclaimed(
    a: &Prefix,
    node: &Node,
    path: &str,
    called: &str,
    earlier: &[Interface],
    accepted: &[(Prefix, FirstUse)],
    report: &mut Report<'_>,
) -> bool {
    let theirs = earlier
        .iter()
        .flat_map(|i| i.addresses.iter().map(move |(b, at)| (b, at, Some(i))));
    let ours = accepted.iter().map(|(b, at)| (b, at, None));
    let mut claimed = theirs.chain(ours);
    // The same address twice is its own mistake; its subnets overlap as a matter of course.
    let problem = if let Some((_, at, _)) = claimed.clone().find(|(b, _, _)| b.addr == a.addr) {
        format!("address {} is already assigned by {at}", a.addr)
    } else if let Some((b, at, owner)) = claimed.find(|(b, _, _)| overlap(a, b)) {
        let (mine, other) = (a.network(), b.network());
        match owner {
            // Each packet to the subnet must have one way out.
            Some(owner) => format!(
                "subnet {mine} of {called} overlaps subnet {other} of {}, given by {at}; a connected subnet belongs to one interface",
                display_name(owner.name.as_ref(), owner.text.as_deref(), &at.path)
            ),
            None => format!(
                "subnet {mine} overlaps subnet {other}, also on this interface at {at}; an interface has one address per subnet"
            ),
        }
    } else {
        return true;
    };
    report.error(node.pos, path, problem);
    false
}

/// The interface's MTU: given, or what it is attached to allows, which a given one
/// may not exceed either.
fn mtu(
    fields: &Fields<'_>,
    item_pos: Pos,
    name: Option<&(InterfaceName, Attach)>,
    addresses: &[(Prefix, FirstUse)],
    topology: &Topology<'_>,
    report: &mut Report<'_>,
) -> Option<u16> {
    let path = fields.path("mtu");
    let limit = name.and_then(|(name, attach)| link_mtu(name, *attach, topology));
    let (mtu, node) = match fields.get("mtu") {
        // Bounded by MAX_MTU, so the cast cannot truncate.
        Some(n) => {
            let mtu = integer(n, &path, MIN_MTU..=u64::from(MAX_MTU), report)? as u16;
            (mtu, Some(n))
        }
        // Without a limit the default is unknown, and why was reported: a bad name, or
        // a port or bridge with problems of its own.
        None => (limit.as_ref()?.0, None),
    };
    if let (Some(node), Some((max, what))) = (node, &limit) {
        if mtu > *max {
            report.error(
                node.pos,
                &path,
                format!(
                    "mtu {mtu} exceeds {max}, {what}; packets that large would be dropped on the way out, so lower this mtu or raise that one"
                ),
            );
            return None;
        }
    }
    let ipv6 = addresses.iter().find(|(a, _)| !a.is_v4());
    if let (true, Some((a, _))) = (mtu < MIN_IPV6_MTU, ipv6) {
        let (pos, problem) = match (node, &limit) {
            (Some(node), _) => (
                node.pos,
                format!(
                    "mtu {mtu} is below {MIN_IPV6_MTU}, the least IPv6 allows, and this interface has IPv6 address {a}"
                ),
            ),
            (None, Some((_, what))) => (
                item_pos,
                format!(
                    "the default mtu, {mtu} ({what}), is below {MIN_IPV6_MTU}, the least IPv6 allows, and this interface has IPv6 address {a}; raise that mtu"
                ),
            ),
            (None, None) => return None,
        };
        report.error(pos, &path, problem);
        return None;
    }
    Some(mtu)
}

/// The largest MTU an interface can have on what it is attached to, and what sets it
/// (for messages). `None` when that is unknown because of a problem reported elsewhere.
fn link_mtu(
    name: &InterfaceName,
    attach: Attach,
    topology: &Topology<'_>,
) -> Option<(u16, String)> {
    match attach {
        // The port's MTU counts the payload after any VLAN tags, so it holds for its
        // subinterfaces as it is.
        Attach::Port => {
            let mtu = *topology.port_mtus.get(&name.port)?;
            Some((mtu, format!("the mtu of port `{}`", name.port)))
        }
        // Flooded frames go to every member, so the smallest member decides.
        Attach::Bridge => {
            let (mtu, port) = topology
                .bridge_ports
                .get(&name.port)?
                .iter()
                .filter_map(|port| topology.port_mtus.get(port).map(|mtu| (*mtu, port)))
                .min()?;
            Some((
                mtu,
                format!(
                    "the smallest mtu among the ports of bridge `{}` (port `{port}`)",
                    name.port
                ),
            ))
        }
    }
}
