//! Ethernet MAC addresses as written in manifests.

use std::fmt::Write;

/// Parses `aa:bb:cc:dd:ee:ff` (two hex digits per octet) into a unicast address; `what`
/// names the address's use in messages, e.g. "port address".
pub(crate) fn parse(text: &str, what: &str) -> Result<[u8; 6], String> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for octet in &mut mac {
        let part = parts.next().unwrap_or("");
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(text));
        }
        *octet = u8::from_str_radix(part, 16).map_err(|_| malformed(text))?;
    }
    if parts.next().is_some() {
        return Err(malformed(text));
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "`{text}` is a multicast address (lowest bit of the first octet is set); a {what} must be unicast"
        ));
    }
    if mac == [0; 6] {
        return Err(format!("the all-zero MAC address is not a valid {what}"));
    }
    Ok(mac)
}

fn malformed(text: &str) -> String {
    format!(
        "`{text}` is not a MAC address; expected six two-digit hex octets like `52:54:00:12:34:56`"
    )
}

pub(crate) fn format(mac: &[u8; 6]) -> String {
    let mut out = String::with_capacity(17);
    for (i, octet) in mac.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        // Writing into a String cannot fail.
        let _ = write!(out, "{octet:02x}");
    }
    out
}

/// A stable address for a port that was given none, so that a guest sees the same MAC
/// across restarts. The first octet 0x02 marks it locally administered and unicast, so
/// it cannot collide with a vendor-assigned address.
pub(crate) fn derive_from_name(name: &str) -> [u8; 6] {
    let h = spread(fnv1a(name.as_bytes())).to_be_bytes();
    [0x02, h[0], h[1], h[2], h[3], h[4]]
}

/// The address of router interface `index` that was given none: 02:76:6e:00:HH:LL, HHLL
/// the index. Locally administered unicast like [`derive_from_name`]'s, and 0x76 0x6e
/// ("vn") keeps it recognisable in a guest's neighbor table; an index past 65535 wraps,
/// and the check for duplicate addresses then asks for a `mac`.
pub(crate) fn router_interface(index: usize) -> [u8; 6] {
    let [hi, lo] = (index as u16).to_be_bytes();
    [0x02, 0x76, 0x6e, 0x00, hi, lo]
}

/// 64-bit FNV-1a: tiny and fixed forever, which matters more here than any
/// cryptographic property.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// MurmurHash3's 64-bit finalizer. FNV changes only a few bits when names differ in
/// their last character (vm0, vm1), which would give neighbouring ports addresses that
/// differ in one digit; this spreads every input bit over the whole word.
fn spread(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        let mac = parse("52:54:00:AB:cd:01", "port address").unwrap();
        assert_eq!(mac, [0x52, 0x54, 0x00, 0xab, 0xcd, 0x01]);
        assert_eq!(format(&mac), "52:54:00:ab:cd:01");
    }

    #[test]
    fn rejects_malformed_multicast_and_zero() {
        for bad in [
            "",
            "52:54:00:00:00",
            "52:54:00:00:00:01:02",
            "52-54-00-00-00-01",
            "5:54:00:00:00:01",
            "052:54:00:00:00:01",
            "52:54:00:00:00:0g",
            "+5:54:00:00:00:01",
        ] {
            assert!(
                parse(bad, "port address")
                    .unwrap_err()
                    .contains("not a MAC"),
                "{bad}"
            );
        }
        let multicast = parse("01:00:5e:00:00:01", "static entry").unwrap_err();
        assert!(
            multicast.contains("a static entry must be unicast"),
            "{multicast}"
        );
        let zero = parse("00:00:00:00:00:00", "port address").unwrap_err();
        assert!(zero.contains("not a valid port address"), "{zero}");
    }

    #[test]
    fn derived_addresses_are_stable_local_unicast_and_distinct() {
        let a = derive_from_name("vm0");
        assert_eq!(a, derive_from_name("vm0"));
        assert_ne!(a, derive_from_name("vm1"));
        assert_eq!(a[0], 0x02);
        // Published FNV-1a test vector, so the hash is the standard one.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        // Pinned output: a change would silently give every guest a new MAC.
        assert_eq!(format(&a), "02:d6:49:fd:10:5a");
        assert!(parse(&format(&a), "port address").is_ok());
    }

    #[test]
    fn router_interface_addresses_count_up() {
        assert_eq!(format(&router_interface(0)), "02:76:6e:00:00:00");
        assert_eq!(format(&router_interface(258)), "02:76:6e:00:01:02");
        assert!(parse(&format(&router_interface(0)), "router interface MAC").is_ok());
    }
}
