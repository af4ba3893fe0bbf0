//! IP addresses and prefixes as the router section writes them (`10.0.1.2`,
//! `10.0.1.1/24`, `fd00::1/64`), and what makes one unfit for a host.

use std::net::IpAddr;

use super::fields::type_error;
use crate::diagnostic::Report;
use crate::manifest::Prefix;
use crate::scalar::ScalarKind;
use crate::tree::{Node, Value};

/// An address with a prefix length, `ADDRESS/LENGTH`.
pub(super) fn prefix(node: &Node, path: &str, report: &mut Report<'_>) -> Option<Prefix> {
    let text = text(node, path, "an IP prefix like `10.0.0.0/24`", report)?;
    parsed(parse_prefix(text), node, path, report)
}

/// An address alone, without a prefix length.
pub(super) fn address(node: &Node, path: &str, report: &mut Report<'_>) -> Option<IpAddr> {
    let text = text(node, path, "an IP address", report)?;
    parsed(parse_address(text), node, path, report)
}

fn text<'n>(
    node: &'n Node,
    path: &str,
    expected: &str,
    report: &mut Report<'_>,
) -> Option<&'n str> {
    match &node.value {
        // Plain or quoted: `10.0.0.1` reads as a string either way, and IPv6 addresses
        // often need quotes in flow mappings.
        Value::Scalar(s) if s.kind() == ScalarKind::Str => Some(s.text.as_str()),
        _ => {
            type_error(node, path, expected, report);
            None
        }
    }
}

fn parsed<T>(
    result: Result<T, String>,
    node: &Node,
    path: &str,
    report: &mut Report<'_>,
) -> Option<T> {
    result
        .map_err(|problem| report.error(node.pos, path, problem))
        .ok()
}

fn parse_prefix(text: &str) -> Result<Prefix, String> {
    let Some((addr, len)) = text.split_once('/') else {
        return Err(match text.parse::<IpAddr>() {
            Ok(ip) => format!(
                "`{text}` has no prefix length; write ADDRESS/LENGTH, like `{text}/{}`",
                if ip.is_ipv4() { 24 } else { 64 }
            ),
            Err(_) => format!(
                "`{text}` is not an IP prefix; expected ADDRESS/LENGTH, like `10.0.0.1/24` or `fd00::1/64`"
            ),
        });
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` in `{text}` is not an IPv4 or IPv6 address"))?;
    let (family, bits) = if addr.is_ipv4() {
        ("IPv4", 32)
    } else {
        ("IPv6", 128)
    };
    let len = Some(len)
        .filter(|len| !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|len| len.parse::<u8>().ok())
        .filter(|len| *len <= bits)
        .ok_or_else(|| {
            format!(
                "prefix length `{len}` in `{text}` is out of range; an {family} prefix is 0 to {bits} bits long"
            )
        })?;
    Ok(Prefix { addr, len })
}

fn parse_address(text: &str) -> Result<IpAddr, String> {
    if let Some((addr, _)) = text.split_once('/') {
        if parse_prefix(text).is_ok() {
            return Err(format!(
                "`{text}` is a prefix; write the address alone, like `{addr}`"
            ));
        }
    }
    text.parse()
        .map_err(|_| format!("`{text}` is not an IPv4 or IPv6 address"))
}

/// Why no host, ours or a neighbor, can have `ip`: it names no one host.
pub(super) fn not_a_host(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip == IpAddr::from([255, 255, 255, 255]) {
        Some("the IPv4 limited broadcast address")
    } else {
        None
    }
}

/// IPv6 link-local, fe80::/10: reachable on any link without configuring a subnet.
pub(super) fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

/// Whether `ip` is the network or the broadcast address of IPv4 subnet `subnet`: those
/// name the subnet, not a host. /31 (RFC 3021) and /32 have neither.
pub(super) fn subnet_role(subnet: &Prefix, ip: IpAddr) -> Option<&'static str> {
    let IpAddr::V4(a) = ip else {
        return None;
    };
    if subnet.len > 30 || !subnet.contains(ip) {
        return None;
    }
    let host_bits = u32::MAX >> subnet.len;
    match u32::from(a) & host_bits {
        0 => Some("network"),
        bits if bits == host_bits => Some("broadcast"),
        _ => None,
    }
}

/// Whether two prefixes share an address: one of them holds the other.
pub(super) fn overlap(a: &Prefix, b: &Prefix) -> bool {
    let (wide, narrow) = if a.len <= b.len { (a, b) } else { (b, a) };
    wide.contains(narrow.addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Prefix {
        parse_prefix(text).unwrap()
    }

    #[test]
    fn parses_prefixes() {
        assert_eq!(
            p("10.0.1.1/24"),
            Prefix {
                addr: [10, 0, 1, 1].into(),
                len: 24
            }
        );
        assert_eq!(p("FD00::1/64").to_string(), "fd00::1/64");
        assert_eq!(p("0.0.0.0/0").len, 0);
        assert_eq!(p("::/0").to_string(), "::/0");
        assert_eq!(p("::/128").len, 128);
    }

    #[test]
    fn rejects_malformed_prefixes() {
        let err = |text| parse_prefix(text).unwrap_err();
        assert_eq!(
            err("10.0.0.1"),
            "`10.0.0.1` has no prefix length; write ADDRESS/LENGTH, like `10.0.0.1/24`"
        );
        assert!(err("fd00::1").contains("like `fd00::1/64`"));
        assert!(err("eth0").contains("`eth0` is not an IP prefix"));
        assert_eq!(
            err("10.0.0.300/24"),
            "`10.0.0.300` in `10.0.0.300/24` is not an IPv4 or IPv6 address"
        );
        assert_eq!(
            err("10.0.0.1/33"),
            "prefix length `33` in `10.0.0.1/33` is out of range; an IPv4 prefix is 0 to 32 bits long"
        );
        assert!(err("fd00::/129").contains("an IPv6 prefix is 0 to 128 bits long"));
        for bad in [
            "10.0.0.1/",
            "10.0.0.1/-1",
            "10.0.0.1/+8",
            "10.0.0.1/999",
            "1.2.3.4/8/8",
        ] {
            assert!(err(bad).contains("out of range"), "{bad}");
        }
        assert!(err("fe80::1%eth0/64").contains("not an IPv4 or IPv6 address"));
    }

    #[test]
    fn parses_addresses() {
        assert_eq!(parse_address("10.0.1.2"), Ok([10, 0, 1, 2].into()));
        assert_eq!(
            parse_address("10.0.1.2/24").unwrap_err(),
            "`10.0.1.2/24` is a prefix; write the address alone, like `10.0.1.2`"
        );
        assert!(parse_address("10.0.1")
            .unwrap_err()
            .contains("not an IPv4 or IPv6 address"));
        assert!(parse_address("x/y")
            .unwrap_err()
            .contains("not an IPv4 or IPv6 address"));
    }

    #[test]
    fn prefixes_contain_and_overlap() {
        assert_eq!(p("10.2.3.4/16").network(), p("10.2.0.0/16"));
        assert_eq!(p("10.2.3.4/0").network(), p("0.0.0.0/0"));
        assert_eq!(p("fd00:1:2::5/32").network(), p("fd00:1::/32"));
        assert!(p("10.0.0.0/8").contains([10, 9, 9, 9].into()));
        assert!(!p("10.0.0.0/8").contains([11, 0, 0, 0].into()));
        assert!(!p("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(p("::/0").contains("fd00::1".parse().unwrap()));
        assert!(overlap(&p("10.0.0.0/8"), &p("10.1.0.0/16")));
        assert!(overlap(&p("10.1.0.0/16"), &p("10.0.0.0/8")));
        assert!(!overlap(&p("10.0.0.0/24"), &p("10.0.1.0/24")));
        assert!(!overlap(&p("0.0.0.0/0"), &p("::/0")));
    }

    #[test]
    fn knows_addresses_that_are_no_host() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert_eq!(not_a_host(ip("0.0.0.0")), Some("the unspecified address"));
        assert_eq!(not_a_host(ip("::")), Some("the unspecified address"));
        assert_eq!(not_a_host(ip("127.0.0.2")), Some("a loopback address"));
        assert_eq!(not_a_host(ip("::1")), Some("a loopback address"));
        assert_eq!(not_a_host(ip("239.1.1.1")), Some("a multicast address"));
        assert_eq!(not_a_host(ip("ff02::1")), Some("a multicast address"));
        assert!(not_a_host(ip("255.255.255.255")).is_some());
        assert_eq!(not_a_host(ip("10.0.0.1")), None);
        assert!(is_link_local(ip("fe80::1")));
        assert!(is_link_local(ip("febf::1")));
        assert!(!is_link_local(ip("fec0::1")));
        assert!(!is_link_local(ip("169.254.0.1")));
        assert_eq!(
            subnet_role(&p("10.0.1.7/24"), ip("10.0.1.0")),
            Some("network")
        );
        assert_eq!(
            subnet_role(&p("10.0.1.7/24"), ip("10.0.1.255")),
            Some("broadcast")
        );
        assert_eq!(subnet_role(&p("10.0.1.7/24"), ip("10.0.1.1")), None);
        assert_eq!(subnet_role(&p("10.0.1.7/24"), ip("10.0.2.0")), None);
        assert_eq!(subnet_role(&p("10.0.1.0/31"), ip("10.0.1.0")), None);
        assert_eq!(
            subnet_role(&p("10.0.1.2/30"), ip("10.0.1.3")),
            Some("broadcast")
        );
        assert_eq!(subnet_role(&p("fd00::1/64"), ip("fd00::")), None);
    }
}
