//! What bridge members, static MAC entries and router interfaces refer to: interfaces
//! (`vm0`, `vm0.100`, `vm0.300.400`, and for the router bridges too), VLAN IDs and
//! trunk VLAN lists.

use std::collections::HashMap;

use super::fields::{integer, sequence, string, type_error};
use super::FirstUse;
use crate::diagnostic::Report;
use crate::manifest::{Attach, InterfaceName, VlanSet};
use crate::scalar::ScalarKind;
use crate::suggest;
use crate::tree::{join_index, Node, Value};

/// 802.1Q reserves VID 0 (a priority tag, no VLAN) and 4095.
const MIN_VID: u16 = 1;
const MAX_VID: u16 = 4094;
/// An outer and an inner tag, as QinQ stacks them; nothing in the path a frame takes
/// through vnf reads further than that.
const MAX_TAGS: usize = 2;

/// The ports defined, by name.
pub(super) type PortNames = HashMap<String, FirstUse>;

pub(super) fn vid(node: &Node, path: &str, report: &mut Report<'_>) -> Option<u16> {
    // Bounded by MAX_VID, so the cast cannot truncate.
    integer(node, path, u64::from(MIN_VID)..=u64::from(MAX_VID), report).map(|v| v as u16)
}

/// A trunk's VLANs: a non-empty list of VLAN IDs and `"A-B"` ranges.
pub(super) fn vlan_set(node: &Node, path: &str, report: &mut Report<'_>) -> Option<VlanSet> {
    let items = sequence(node, path, report)?;
    if items.is_empty() {
        report.error(
            node.pos,
            path,
            "a trunk needs at least one VLAN; for untagged frames only, use `access` instead",
        );
        return None;
    }
    let mut set = Some(VlanSet::empty());
    for (i, item) in items.iter().enumerate() {
        let range = vlan_range(item, &join_index(path, i), report);
        set = set.zip(range).map(|(mut set, (first, last))| {
            for vid in first..=last {
                set.insert(vid);
            }
            set
        });
    }
    set
}

/// One trunk list item as an inclusive range; a lone VLAN ID is a range of one.
fn vlan_range(item: &Node, path: &str, report: &mut Report<'_>) -> Option<(u16, u16)> {
    match &item.value {
        Value::Scalar(s) if s.kind() == ScalarKind::Int => vid(item, path, report).map(|v| (v, v)),
        Value::Scalar(s) if s.kind() == ScalarKind::Str => match parse_range(&s.text) {
            Ok(range) => Some(range),
            Err(problem) => {
                report.error(item.pos, path, problem);
                None
            }
        },
        _ => {
            type_error(item, path, "a VLAN ID or a range like \"100-200\"", report);
            None
        }
    }
}

fn parse_range(text: &str) -> Result<(u16, u16), String> {
    let Some((first, last)) = text
        .split_once('-')
        .filter(|(first, last)| is_digits(first) && is_digits(last))
    else {
        return Err(if is_digits(text) {
            format!(
                "expected a VLAN ID, found the quoted string \"{text}\"; integers are written without quotes"
            )
        } else {
            format!(
                "`{text}` is not a VLAN ID or range; write a range as \"A-B\", like \"100-200\""
            )
        });
    };
    let bound = |digits: &str| {
        digits
            .parse::<u16>()
            .ok()
            .filter(|v| (MIN_VID..=MAX_VID).contains(v))
            .ok_or_else(|| {
                format!(
                    "VLAN {digits} in range `{text}` is out of range; expected {MIN_VID} to {MAX_VID}"
                )
            })
    };
    let (first, last) = (bound(first)?, bound(last)?);
    if first > last {
        return Err(format!(
            "range `{text}` runs backwards; write it as \"{last}-{first}\""
        ));
    }
    Ok((first, last))
}

/// Reads an interface name: a port, or a port followed by one or two `.VID` tags.
/// `ports` is `None` when the ports section was unreadable; then nothing can be said
/// about the name, and the ports section's own problems are the ones to fix first.
pub(super) fn interface(
    node: &Node,
    path: &str,
    ports: Option<&PortNames>,
    report: &mut Report<'_>,
) -> Option<InterfaceName> {
    let text = string(node, path, report)?;
    match parse_interface(text, ports?) {
        Ok(name) => Some(name),
        Err(problem) => {
            report.error(node.pos, path, problem);
            None
        }
    }
}

/// Reads a router interface's name: an interface as [`interface`] reads it, or a
/// bridge's name, which stands for the bridge's own routed interface in VLAN 1, or
/// `BRIDGE.VID` for one in VLAN VID. `bridges` is `None` when the bridges section was
/// unreadable.
pub(super) fn routed_interface(
    node: &Node,
    path: &str,
    ports: Option<&PortNames>,
    bridges: Option<&HashMap<String, FirstUse>>,
    report: &mut Report<'_>,
) -> Option<(InterfaceName, Attach)> {
    let text = string(node, path, report)?;
    // A bridge's name is the whole text, so it wins over a port with tags (`br.5`) the
    // way the longest port name wins among ports.
    if bridges.is_some_and(|bridges| bridges.contains_key(text)) {
        let name = InterfaceName {
            port: text.to_owned(),
            tags: Vec::new(),
        };
        return Some((name, Attach::Bridge));
    }
    let ports = ports?;
    let problem = match parse_interface(text, ports) {
        Ok(name) => return Some((name, Attach::Port)),
        Err(problem) => problem,
    };
    // Without the bridges' names, a name that is no port may well be a bridge's.
    let bridges = bridges?;
    let bridge = port_part(text);
    if bridges.contains_key(bridge) {
        return match bridge_vlan(text, bridge) {
            Ok(vid) => Some((
                InterfaceName {
                    port: bridge.to_owned(),
                    tags: vec![vid],
                },
                Attach::Bridge,
            )),
            Err(problem) => {
                report.error(node.pos, path, problem);
                None
            }
        };
    }
    let unknown = !text.is_empty() && split_port(text, ports).is_none();
    let problem = if unknown && port_part(text) == text {
        let hint = did_you_mean(text, "", ports.keys().chain(bridges.keys()));
        format!("unknown port or bridge `{text}`{hint}")
    } else {
        problem
    };
    report.error(node.pos, path, problem);
    None
}

/// The VLAN of a bridge's router interface named `BRIDGE.VID` (`text` is `bridge`
/// followed by numeric tags).
fn bridge_vlan(text: &str, bridge: &str) -> Result<u16, String> {
    let tags = &text[bridge.len() + 1..];
    if tags.contains('.') {
        return Err(format!(
            "router interface `{text}` has more than one VLAN; a bridge's router interface is in one VLAN of the bridge: write `{bridge}.VID`"
        ));
    }
    match tags.parse::<u16>() {
        Ok(1) => Err(format!(
            "router interface `{text}`: VLAN 1 is the bridge's own router interface; write `{bridge}`"
        )),
        Ok(vid) if (MIN_VID..=MAX_VID).contains(&vid) => Ok(vid),
        _ => Err(format!(
            "VLAN {tags} in router interface `{text}` is out of range; expected {MIN_VID} to {MAX_VID}"
        )),
    }
}

fn parse_interface(text: &str, ports: &PortNames) -> Result<InterfaceName, String> {
    if text.is_empty() {
        return Err("interface name is empty".to_owned());
    }
    let Some((port, rest)) = split_port(text, ports) else {
        return Err(unknown_port(text, ports));
    };
    let parts: Vec<&str> = match rest.strip_prefix('.') {
        Some(tags) => tags.split('.').collect(),
        None => Vec::new(),
    };
    if parts.contains(&"") {
        return Err(format!(
            "interface `{text}` has an empty VLAN tag; write PORT.VID or PORT.OUTER.INNER, like `{port}.100`"
        ));
    }
    if let Some(bad) = parts.iter().find(|part| !is_digits(part)) {
        // More likely a misspelt port name than a tag: say both, and suggest a port
        // other than the one already named.
        let others = ports.keys().filter(|name| name.as_str() != port);
        return Err(format!(
            "unknown interface `{text}`: no port has that name, and `{bad}` is not a VLAN ID of port `{port}`{}",
            did_you_mean(text, "", others)
        ));
    }
    if parts.len() > MAX_TAGS {
        return Err(format!(
            "interface `{text}` has {} VLAN tags; at most {MAX_TAGS} are supported (PORT.OUTER.INNER)",
            parts.len()
        ));
    }
    let mut tags = Vec::with_capacity(parts.len());
    for part in parts {
        match part.parse::<u16>() {
            Ok(vid) if (MIN_VID..=MAX_VID).contains(&vid) => tags.push(vid),
            _ => {
                return Err(format!(
                    "VLAN {part} in interface `{text}` is out of range; expected {MIN_VID} to {MAX_VID}"
                ))
            }
        }
    }
    Ok(InterfaceName {
        port: port.to_owned(),
        tags,
    })
}

/// The port an interface name starts with, and the tags after it.
fn split_port<'t>(text: &'t str, ports: &PortNames) -> Option<(&'t str, &'t str)> {
    // Port names may contain `.` themselves, so the port is the longest prefix that
    // names one: with ports `a` and `a.1`, `a.1` is that port, not VLAN 1 of `a`.
    std::iter::once(text.len())
        .chain(text.rmatch_indices('.').map(|(i, _)| i))
        .map(|end| text.split_at(end))
        .find(|(port, _)| ports.contains_key(*port))
}

/// `vm9.100.200` -> `vm9`: the name less any trailing numeric tags.
fn port_part(text: &str) -> &str {
    let mut port = text;
    while let Some((head, tail)) = port.rsplit_once('.') {
        if head.is_empty() || !is_digits(tail) {
            break;
        }
        port = head;
    }
    port
}

fn unknown_port(text: &str, ports: &PortNames) -> String {
    // `vm9.100` is compared with the port names as `vm9`, and a suggestion keeps the tags.
    let port = port_part(text);
    let tags = &text[port.len()..];
    let hint = did_you_mean(port, tags, ports.keys());
    if tags.is_empty() {
        format!("unknown port `{text}`{hint}")
    } else {
        format!("unknown port `{port}` in interface `{text}`{hint}")
    }
}

/// `; did you mean `vm0.100`?` for a near miss of a port name, else nothing.
fn did_you_mean<'p>(port: &str, tags: &str, ports: impl Iterator<Item = &'p String>) -> String {
    let mut names: Vec<&str> = ports.map(String::as_str).collect();
    // Sorted so that a tie between two candidates is broken the same way every run.
    names.sort_unstable();
    suggest::closest(port, &names)
        .map(|near| format!("; did you mean `{near}{tags}`?"))
        .unwrap_or_default()
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Pos;

    fn ports(names: &[&str]) -> PortNames {
        names
            .iter()
            .map(|name| {
                let first = FirstUse {
                    path: "ports[0]".to_owned(),
                    pos: Pos { line: 1, column: 1 },
                };
                ((*name).to_owned(), first)
            })
            .collect()
    }

    fn name(port: &str, tags: &[u16]) -> InterfaceName {
        InterfaceName {
            port: port.to_owned(),
            tags: tags.to_vec(),
        }
    }

    #[test]
    fn splits_after_the_longest_port_name() {
        let ports = ports(&["a", "a.1", "b.x"]);
        assert_eq!(parse_interface("a", &ports), Ok(name("a", &[])));
        assert_eq!(parse_interface("a.1", &ports), Ok(name("a.1", &[])));
        assert_eq!(parse_interface("a.2", &ports), Ok(name("a", &[2])));
        assert_eq!(parse_interface("a.1.7", &ports), Ok(name("a.1", &[7])));
        assert_eq!(
            parse_interface("a.2.0300", &ports),
            Ok(name("a", &[2, 300]))
        );
        assert_eq!(
            parse_interface("b.x.4094", &ports),
            Ok(name("b.x", &[4094]))
        );
    }

    #[test]
    fn rejects_bad_tags_and_unknown_ports() {
        let ports = ports(&["vm0"]);
        let err = |text| parse_interface(text, &ports).unwrap_err();
        assert!(err("vm0.").contains("empty VLAN tag"));
        assert!(err("vm0..5").contains("empty VLAN tag"));
        assert!(err("vm0.0").contains("VLAN 0 in interface `vm0.0` is out of range"));
        assert!(err("vm0.4095").contains("out of range"));
        assert!(err("vm0.99999").contains("out of range"));
        assert!(err("vm0.1.2.3").contains("has 3 VLAN tags"));
        assert_eq!(
            err("vm0.x"),
            "unknown interface `vm0.x`: no port has that name, and `x` is not a VLAN ID of port `vm0`"
        );
        assert!(err("vm0.+5").contains("not a VLAN ID"));
        assert_eq!(err("vm9"), "unknown port `vm9`; did you mean `vm0`?");
        assert_eq!(
            err("vm9.100.200"),
            "unknown port `vm9` in interface `vm9.100.200`; did you mean `vm0.100.200`?"
        );
        assert_eq!(err("zzzz"), "unknown port `zzzz`");
        assert_eq!(err(""), "interface name is empty");
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("100-200"), Ok((100, 200)));
        assert_eq!(parse_range("7-7"), Ok((7, 7)));
        assert!(parse_range("200-100")
            .unwrap_err()
            .contains("write it as \"100-200\""));
        assert!(parse_range("0-10").unwrap_err().contains("VLAN 0 in range"));
        assert!(parse_range("1-4095").unwrap_err().contains("VLAN 4095"));
        assert!(parse_range("10").unwrap_err().contains("quoted string"));
        for bad in ["1-", "-1", "1-2-3", "a-b", "1 - 2", ""] {
            assert!(
                parse_range(bad)
                    .unwrap_err()
                    .contains("not a VLAN ID or range"),
                "{bad}"
            );
        }
    }
}
