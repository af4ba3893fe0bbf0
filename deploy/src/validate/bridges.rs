//! The `bridges` section: MAC-learning switches, their members (ports and VLAN
//! subinterfaces, each an access port or a trunk) and static MAC entries; plus the
//! checks that span sections: a bridge's name is unique among bridges and ports, an
//! interface belongs to one bridge at most, and no cross-connected port is bridged.
//! What the bridges claim is handed on to the router section's checks.

use std::collections::HashMap;

use super::fields::{integer, keyword, mapping, sequence, string, Fields};
use super::interfaces::{interface, vid, vlan_set, PortNames};
use super::ports::name_problem;
use super::FirstUse;
use crate::diagnostic::Report;
use crate::mac;
use crate::manifest::{
    BridgeSpec, InterfaceName, MemberSpec, StaticMac, Tpid, VlanMode, DEFAULT_MAC_AGING,
    DEFAULT_MAC_LIMIT, MAX_MAC_LIMIT,
};
use crate::scalar::ScalarKind;
use crate::suggest;
use crate::tree::{join_index, Node, Value};

const PATH: &str = "bridges";
const BRIDGE_KEYS: &[&str] = &["name", "mac_aging", "mac_limit", "members", "static_macs"];
const MEMBER_KEYS: &[&str] = &["interface", "access", "trunk", "native", "tpid"];
const STATIC_MAC_KEYS: &[&str] = &["mac", "interface", "vlan"];
/// About eleven and a half days: any longer is "never" in practice, which is written 0.
const MAX_MAC_AGING: u64 = 1_000_000;
/// The VLAN of a member that names none, as on most switches.
const DEFAULT_VLAN: u16 = 1;
const TPIDS: &[(&str, Tpid)] = &[("802.1q", Tpid::Dot1q), ("802.1ad", Tpid::Dot1ad)];

/// What the bridges section yielded: the bridges when every one is valid, and what the
/// router's interfaces are checked against either way.
pub(crate) struct Bridges {
    pub specs: Option<Vec<BridgeSpec>>,
    /// Each bridge name, with the bridge that has it. `None` when the section could not
    /// be read as a list, in which case nothing can be said about which names exist.
    pub names: Option<HashMap<String, FirstUse>>,
    /// Each interface in a bridge, with that bridge.
    pub members: HashMap<InterfaceName, FirstUse>,
    /// The ports of each bridge's members, by bridge name, for the MTU of the bridge's
    /// routed interface.
    pub member_ports: HashMap<String, Vec<String>>,
}

/// What the bridges are checked against, and what they have claimed so far.
struct Seen<'s> {
    /// `None` when the ports section was unreadable.
    ports: Option<&'s PortNames>,
    cross_connected: &'s HashMap<String, FirstUse>,
    /// Each bridge name, with the bridge that has it.
    names: HashMap<String, FirstUse>,
    /// Each interface in a bridge, with that bridge; `pos` is the member's.
    members: HashMap<InterfaceName, FirstUse>,
    member_ports: HashMap<String, Vec<String>>,
}

/// A member as read: enough to build its spec and to check the bridge's static entries.
struct Member {
    /// `None` when the interface name could not be read.
    interface: Option<InterfaceName>,
    /// `None` when the VLAN settings are wrong.
    vlan: Option<VlanMode>,
    /// False when the interface may not join this bridge (already reported).
    admitted: bool,
}

impl Member {
    fn spec(&self) -> Option<MemberSpec> {
        if !self.admitted {
            return None;
        }
        Some(MemberSpec {
            interface: self.interface.clone()?,
            vlan: self.vlan.clone()?,
        })
    }
}

/// `ports` is `None` when the ports section was unreadable; `cross_connected` holds
/// the ports in cross-connects, which cannot also be bridged.
pub(crate) fn bridges(
    node: Option<&Node>,
    ports: Option<&PortNames>,
    cross_connected: &HashMap<String, FirstUse>,
    report: &mut Report<'_>,
) -> Bridges {
    let mut seen = Seen {
        ports,
        cross_connected,
        names: HashMap::new(),
        members: HashMap::new(),
        member_ports: HashMap::new(),
    };
    // An empty `bridges:` is read as "none", the same as leaving it out.
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return seen.finish(Some(Vec::new()));
    };
    let Some(items) = sequence(node, PATH, report) else {
        return Bridges {
            names: None,
            ..seen.finish(None)
        };
    };
    let mut specs = Some(Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let spec = bridge(item, &join_index(PATH, i), &mut seen, report);
        specs = specs.zip(spec).map(|(mut all, one)| {
            all.push(one);
            all
        });
    }
    seen.finish(specs)
}

impl Seen<'_> {
    fn finish(self, specs: Option<Vec<BridgeSpec>>) -> Bridges {
        Bridges {
            specs,
            names: Some(self.names),
            members: self.members,
            member_ports: self.member_ports,
        }
    }
}

fn bridge(
    item: &Node,
    path: &str,
    seen: &mut Seen<'_>,
    report: &mut Report<'_>,
) -> Option<BridgeSpec> {
    let fields = mapping(item, path, report)?;
    fields.reject_unknown(BRIDGE_KEYS, report);
    let name = fields
        .require("name", report)
        .and_then(|n| bridge_name(n, &fields.path("name"), path, seen, report));
    let mac_aging = match fields.get("mac_aging") {
        // Bounded by MAX_MAC_AGING, so the cast cannot truncate.
        Some(n) => {
            integer(n, &fields.path("mac_aging"), 0..=MAX_MAC_AGING, report).map(|s| s as u32)
        }
        None => Some(DEFAULT_MAC_AGING),
    };
    let mac_limit = match fields.get("mac_limit") {
        // Bounded by MAX_MAC_LIMIT, so the cast cannot truncate.
        Some(n) => integer(
            n,
            &fields.path("mac_limit"),
            1..=u64::from(MAX_MAC_LIMIT),
            report,
        )
        .map(|l| l as u32),
        None => Some(DEFAULT_MAC_LIMIT),
    };
    let members = fields
        .require("members", report)
        .and_then(|n| members(n, &fields.path("members"), path, seen, report));
    let static_macs = match fields.get("static_macs") {
        // An empty `static_macs:` is read as "none", the same as leaving it out.
        Some(n) if !n.is_null() => static_macs(
            n,
            &fields.path("static_macs"),
            members.as_deref(),
            seen.ports,
            report,
        ),
        _ => Some(Vec::new()),
    };
    if let (Some(name), Some(members)) = (&name, &members) {
        let ports = members
            .iter()
            .filter(|m| m.admitted)
            .filter_map(|m| m.interface.as_ref())
            .map(|i| i.port.clone())
            .collect();
        seen.member_ports.insert(name.clone(), ports);
    }
    let members: Option<Vec<MemberSpec>> = members?.iter().map(Member::spec).collect();
    Some(BridgeSpec {
        name: name?,
        mac_aging: mac_aging?,
        mac_limit: mac_limit?,
        members: members?,
        static_macs: static_macs?,
    })
}

fn bridge_name(
    node: &Node,
    path: &str,
    bridge_path: &str,
    seen: &mut Seen<'_>,
    report: &mut Report<'_>,
) -> Option<String> {
    let name = string(node, path, report)?;
    let problem = name_problem("bridge", name);
    // One namespace for bridges and ports, so that logs, counters and commands naming
    // one can never mean the other.
    let taken = seen
        .names
        .get(name)
        .or_else(|| seen.ports.and_then(|ports| ports.get(name)));
    if let Some(first) = taken {
        report.error(
            node.pos,
            path,
            format!("bridge name `{name}` is already used by {first}"),
        );
        return None;
    }
    seen.names.insert(
        name.to_owned(),
        FirstUse {
            path: bridge_path.to_owned(),
            pos: node.pos,
        },
    );
    if let Some(problem) = problem {
        report.error(node.pos, path, problem);
        return None;
    }
    Some(name.to_owned())
}

/// Every member as read, also those with problems (reported), so that the static
/// entries naming them are not reported a second time. `None` when the list itself
/// is unreadable.
fn members(
    node: &Node,
    path: &str,
    bridge_path: &str,
    seen: &mut Seen<'_>,
    report: &mut Report<'_>,
) -> Option<Vec<Member>> {
    let items = sequence(node, path, report)?;
    if items.is_empty() {
        report.error(node.pos, path, "a bridge needs at least one member");
        return None;
    }
    let members = items
        .iter()
        .enumerate()
        .map(|(i, item)| member(item, &join_index(path, i), bridge_path, seen, report))
        .collect();
    Some(members)
}

/// A member is an interface name, which makes it an access port in VLAN 1, or a
/// mapping that names the interface and sets its VLANs.
fn member(
    item: &Node,
    path: &str,
    bridge_path: &str,
    seen: &mut Seen<'_>,
    report: &mut Report<'_>,
) -> Member {
    let unread = |vlan| Member {
        interface: None,
        vlan,
        admitted: false,
    };
    let (name_node, name_path, vlan) = match &item.value {
        Value::Scalar(s) if s.kind() == ScalarKind::Str => {
            (item, path.to_owned(), Some(VlanMode::Access(DEFAULT_VLAN)))
        }
        Value::Map(_) => {
            let Some(fields) = mapping(item, path, report) else {
                return unread(None);
            };
            fields.reject_unknown(MEMBER_KEYS, report);
            let vlan = vlan_mode(&fields, report);
            match fields.require("interface", report) {
                Some(n) => (n, fields.path("interface"), vlan),
                None => return unread(vlan),
            }
        }
        // The alias itself was reported when the tree was built.
        Value::Unsupported => return unread(None),
        _ => {
            let found = match &item.value {
                Value::Scalar(s) if !s.is_absent() => {
                    format!("{} `{}`", item.describe(), s.text)
                }
                _ => item.describe().to_owned(),
            };
            report.error(
                item.pos,
                path,
                format!(
                    "expected an interface name like `vm0` or a mapping like `{{interface: vm0, access: 10}}`, found {found}"
                ),
            );
            return unread(None);
        }
    };
    let interface = interface(name_node, &name_path, seen.ports, report);
    let admitted = interface
        .as_ref()
        .is_some_and(|name| admit(name, name_node, &name_path, bridge_path, seen, report));
    Member {
        interface,
        vlan,
        admitted,
    }
}

/// Whether `name` may join the bridge at `bridge_path`; reports why not.
fn admit(
    name: &InterfaceName,
    node: &Node,
    path: &str,
    bridge_path: &str,
    seen: &mut Seen<'_>,
    report: &mut Report<'_>,
) -> bool {
    if let Some(pair) = seen.cross_connected.get(&name.port) {
        report.error(
            node.pos,
            path,
            format!(
                "port `{}` is cross-connected by {pair}; a cross-connect takes every frame the port receives, so neither the port nor its VLAN subinterfaces can be bridge members",
                name.port
            ),
        );
        return false;
    }
    // An interface's frames go to one bridge under one VLAN mode; a second membership,
    // in this bridge or another, would contradict the first.
    if let Some(first) = seen.members.get(name) {
        report.error(
            node.pos,
            path,
            format!("interface `{name}` is already a member of {first}"),
        );
        return false;
    }
    seen.members.insert(
        name.clone(),
        FirstUse {
            path: bridge_path.to_owned(),
            pos: node.pos,
        },
    );
    true
}

/// `access: VID` (the default, VLAN 1), or `trunk: [...]` with optional `native` and
/// `tpid`. Every value is checked even when the combination is wrong, so that one pass
/// reports both.
fn vlan_mode(fields: &Fields<'_>, report: &mut Report<'_>) -> Option<VlanMode> {
    let access_node = fields.get("access");
    let trunk_node = fields.get("trunk");
    let access = access_node.map(|n| vid(n, &fields.path("access"), report));
    let trunk = trunk_node.map(|n| vlan_set(n, &fields.path("trunk"), report));
    let native = fields
        .get("native")
        .map(|n| vid(n, &fields.path("native"), report));
    let tpid = fields
        .get("tpid")
        .map(|n| keyword(n, &fields.path("tpid"), "tag type", TPIDS, report));

    let mut consistent = true;
    if let (Some(a), Some(t)) = (access_node, trunk_node) {
        // At the one written second: the first shows what the user set out to write.
        let (key, node) = if a.pos > t.pos {
            ("access", a)
        } else {
            ("trunk", t)
        };
        report.error(
            node.pos,
            &fields.path(key),
            "`access` and `trunk` cannot both be given: a member is either an access port (untagged frames, one VLAN) or a trunk (tagged frames, a list of VLANs)",
        );
        consistent = false;
    } else if trunk_node.is_none() {
        for key in ["native", "tpid"] {
            if let Some(n) = fields.get(key) {
                report.error(
                    n.pos,
                    &fields.path(key),
                    format!(
                        "`{key}` applies only to trunk members; add a `trunk` list of VLANs or remove `{key}`"
                    ),
                );
                consistent = false;
            }
        }
    }
    if !consistent {
        return None;
    }
    match trunk {
        None => Some(VlanMode::Access(access.unwrap_or(Some(DEFAULT_VLAN))?)),
        Some(trunk) => Some(VlanMode::Trunk {
            trunk: trunk?,
            native: match native {
                Some(vid) => Some(vid?),
                None => None,
            },
            tpid: tpid.unwrap_or(Some(Tpid::Dot1q))?,
        }),
    }
}

/// `members` is `None` when the bridge's member list is unreadable; then which
/// interfaces and VLANs an entry may name is unknown, and those checks are skipped.
fn static_macs(
    node: &Node,
    path: &str,
    members: Option<&[Member]>,
    ports: Option<&PortNames>,
    report: &mut Report<'_>,
) -> Option<Vec<StaticMac>> {
    let items = sequence(node, path, report)?;
    let mut first: HashMap<([u8; 6], u16), FirstUse> = HashMap::new();
    let mut entries = Some(Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let entry = static_mac(
            item,
            &join_index(path, i),
            members,
            ports,
            &mut first,
            report,
        );
        entries = entries.zip(entry).map(|(mut all, one)| {
            all.push(one);
            all
        });
    }
    entries
}

fn static_mac(
    item: &Node,
    path: &str,
    members: Option<&[Member]>,
    ports: Option<&PortNames>,
    first: &mut HashMap<([u8; 6], u16), FirstUse>,
    report: &mut Report<'_>,
) -> Option<StaticMac> {
    let fields = mapping(item, path, report)?;
    fields.reject_unknown(STATIC_MAC_KEYS, report);
    let mac_path = fields.path("mac");
    let mac = fields.require("mac", report).and_then(|n| {
        let text = string(n, &mac_path, report)?;
        match mac::parse(text, "static entry") {
            Ok(mac) => Some((mac, n)),
            Err(problem) => {
                report.error(n.pos, &mac_path, problem);
                None
            }
        }
    });
    let interface_path = fields.path("interface");
    let interface_node = fields.require("interface", report);
    let interface = interface_node.and_then(|n| interface(n, &interface_path, ports, report));
    let vlan_path = fields.path("vlan");
    let vlan_node = fields.get("vlan");
    let vlan = vlan_node.map(|n| vid(n, &vlan_path, report));

    // The member decides the default VLAN and which VLANs may be named. `mode` is
    // `None` when the member's own settings are wrong: that was reported at the member.
    let mode = match (&interface, interface_node, members) {
        (Some(name), Some(node), Some(members)) => {
            let Some(member) = members.iter().find(|m| m.interface.as_ref() == Some(name)) else {
                report.error(node.pos, &interface_path, not_a_member(name, members));
                return None;
            };
            member.vlan.as_ref()
        }
        _ => None,
    };
    let vlan = match (vlan_node.zip(vlan), mode) {
        (Some((node, vlan)), mode) => {
            let vlan = vlan?;
            if let (Some(mode), Some(name)) = (mode, &interface) {
                if !carries(mode, vlan) {
                    report.error(
                        node.pos,
                        &vlan_path,
                        format!(
                            "VLAN {vlan} is not carried by member `{name}`: {}",
                            carried(mode)
                        ),
                    );
                    return None;
                }
            }
            vlan
        }
        (None, Some(mode)) => match (default_vlan(mode), &interface) {
            (Some(vlan), _) => vlan,
            (None, name) => {
                let name = name.as_ref()?;
                report.error(
                    item.pos,
                    &vlan_path,
                    format!(
                        "missing `vlan`: member `{name}` is a trunk without a native VLAN, so there is no default; name one of the VLANs it carries"
                    ),
                );
                return None;
            }
        },
        // No member to take a default from; the reason was reported already.
        (None, None) => return None,
    };

    let ((mac, mac_node), interface) = (mac?, interface?);
    // One address in one VLAN is at one place; two entries would contradict each other
    // or repeat themselves.
    if let Some(earlier) = first.get(&(mac, vlan)) {
        report.error(
            mac_node.pos,
            &mac_path,
            format!(
                "`{}` in VLAN {vlan} already has a static entry, {earlier}",
                mac::format(&mac)
            ),
        );
        return None;
    }
    first.insert(
        (mac, vlan),
        FirstUse {
            path: path.to_owned(),
            pos: item.pos,
        },
    );
    Some(StaticMac {
        mac,
        interface,
        vlan,
    })
}

fn not_a_member(name: &InterfaceName, members: &[Member]) -> String {
    // Only members on the same port are suggested: `vm3.7` for `vm3.8` is a likely
    // slip, while `vm0` for `vm3` would just name whichever port is spelt alike.
    let names: Vec<String> = members
        .iter()
        .filter_map(|m| m.interface.as_ref())
        .filter(|member| member.port == name.port)
        .map(InterfaceName::to_string)
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = suggest::closest(&name.to_string(), &names)
        .map(|near| format!("; did you mean `{near}`?"))
        .unwrap_or_default();
    format!(
        "interface `{name}` is not a member of this bridge; a static entry must point at one of its members{hint}"
    )
}

/// The VLAN of a static entry that names none: an access member's VLAN, or a trunk's
/// native VLAN if it has one.
fn default_vlan(mode: &VlanMode) -> Option<u16> {
    match mode {
        VlanMode::Access(vlan) => Some(*vlan),
        VlanMode::Trunk { native, .. } => *native,
    }
}

/// Whether a member passes frames of `vlan`: its access VLAN, or a trunk's listed
/// VLANs and its native VLAN.
fn carries(mode: &VlanMode, vlan: u16) -> bool {
    match mode {
        VlanMode::Access(access) => *access == vlan,
        VlanMode::Trunk { trunk, native, .. } => trunk.contains(vlan) || *native == Some(vlan),
    }
}

/// The VLANs a member carries, for messages.
fn carried(mode: &VlanMode) -> String {
    match mode {
        VlanMode::Access(access) => format!("it is an access member in VLAN {access}"),
        VlanMode::Trunk { trunk, native, .. } => {
            let ranges: Vec<String> = trunk
                .ranges()
                .into_iter()
                .map(|(first, last)| {
                    if first == last {
                        first.to_string()
                    } else {
                        format!("{first}-{last}")
                    }
                })
                .collect();
            let native = native
                .map(|n| format!(" and native VLAN {n}"))
                .unwrap_or_default();
            format!("its trunk carries {}{native}", ranges.join(", "))
        }
    }
}
