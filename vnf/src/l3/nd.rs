//! IPv6 Neighbor Discovery (RFC 4861): Neighbor Solicitation and Advertisement, parsed
//! from and written as whole IPv6 packets (the slice starts at the IPv6 header).
//!
//! The IPv6 header is handled here rather than by the general IPv6 code because ND has
//! its own rules for it: a hop limit of 255 proves the packet was not forwarded (an
//! off-link sender cannot poison the cache), and the messages must not follow any
//! extension header, so the ICMPv6 message is always at offset 40.
//!
//! Parsing applies every receive-side check of RFC 4861 sections 7.1.1 and 7.1.2; a
//! message failing any of them is silently ignored, as the RFC says, so `parse` simply
//! answers `None`. Only Ethernet link-layer options (8 bytes, a 6-byte address) are
//! understood; of duplicated options the first counts (as Linux does); unknown options
//! are skipped.

use super::checksum;

/// ff02::1, all nodes on the link.
pub const ALL_NODES: u128 = 0xff02_0000_0000_0000_0000_0000_0000_0001;
/// The longest packet `write_solicit` and `write_advert` produce: IPv6 header, ICMPv6
/// message and one link-layer address option.
pub const MAX_LEN: usize = IPV6_LEN + MSG_LEN + OPT_LEN;

const IPV6_LEN: usize = 40;
/// ICMPv6 type, code, checksum, four bytes of flags/reserved, target address.
const MSG_LEN: usize = 24;
const OPT_LEN: usize = 8;
const NEXT_HEADER_ICMPV6: u8 = 58;
const HOP_LIMIT: u8 = 255;
const TYPE_NS: u8 = 135;
const TYPE_NA: u8 = 136;
const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;
/// ff02::1:ff00:0/104, the solicited-node prefix.
const SOLICITED_NODE: u128 = 0xff02_0000_0000_0000_0000_0001_ff00_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nd {
    Solicit {
        src: u128,
        dst: u128,
        target: u128,
        source_mac: Option<[u8; 6]>,
    },
    Advert {
        src: u128,
        dst: u128,
        target: u128,
        router: bool,
        solicited: bool,
        override_: bool,
        target_mac: Option<[u8; 6]>,
    },
}

/// Validates per RFC 4861 7.1.1/7.1.2: next header 58 (no extension headers), hop limit
/// 255, ICMPv6 checksum, code 0, ICMP length ≥ 24, target not multicast, options
/// well-formed (each length > 0, within the packet), NS from :: has no SLLAO and goes
/// to a solicited-node address, NA with solicited flag not to a multicast destination.
/// Returns None for anything else (including other ICMPv6 types). Also refused: a
/// multicast source (RFC 4291 forbids it) and a link-layer option whose length is not
/// that of an Ethernet address (Linux drops those too). Bytes after the IPv6 payload
/// length (Ethernet padding) are ignored.
pub fn parse(l3: &[u8]) -> Option<Nd> {
    let ip = l3.get(..IPV6_LEN)?;
    if ip[0] >> 4 != 6 || ip[6] != NEXT_HEADER_ICMPV6 || ip[7] != HOP_LIMIT {
        return None;
    }
    let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let msg = l3.get(IPV6_LEN..IPV6_LEN + payload_len)?;
    let src = addr_at(ip, 8)?;
    let dst = addr_at(ip, 24)?;
    if msg.len() < MSG_LEN || msg[1] != 0 || is_multicast(src) {
        return None;
    }
    let pseudo = checksum::pseudo6(
        &src.to_be_bytes(),
        &dst.to_be_bytes(),
        payload_len as u32,
        NEXT_HEADER_ICMPV6,
    );
    if !checksum::verify(msg, pseudo) {
        return None;
    }
    let target = addr_at(msg, 8)?;
    if is_multicast(target) {
        return None;
    }
    let options = &msg[MSG_LEN..];
    match msg[0] {
        TYPE_NS => {
            let source_mac = link_layer_option(options, OPT_SOURCE_LLADDR)?;
            // Duplicate address detection: no address to answer, so nothing to learn.
            if src == 0 && (source_mac.is_some() || dst & !0xff_ffff != SOLICITED_NODE) {
                return None;
            }
            Some(Nd::Solicit {
                src,
                dst,
                target,
                source_mac,
            })
        }
        TYPE_NA => {
            let flags = msg[4];
            let solicited = flags & FLAG_SOLICITED != 0;
            if solicited && is_multicast(dst) {
                return None;
            }
            Some(Nd::Advert {
                src,
                dst,
                target,
                router: flags & FLAG_ROUTER != 0,
                solicited,
                override_: flags & FLAG_OVERRIDE != 0,
                target_mac: link_layer_option(options, OPT_TARGET_LLADDR)?,
            })
        }
        _ => None,
    }
}

/// Walks the options: `None` if they are malformed, else the first Ethernet address
/// carried in an option of type `wanted`, if any.
fn link_layer_option(mut options: &[u8], wanted: u8) -> Option<Option<[u8; 6]>> {
    let mut found = None;
    while !options.is_empty() {
        let (&kind, rest) = options.split_first()?;
        // The length counts 8-byte units including the type and length bytes; zero
        // would loop forever, which is why RFC 4861 4.6 makes it invalid.
        let len = usize::from(*rest.first()?) * 8;
        if len == 0 {
            return None;
        }
        let option = options.get(..len)?;
        if kind == wanted && found.is_none() {
            if len != OPT_LEN {
                return None;
            }
            found = Some([
                option[2], option[3], option[4], option[5], option[6], option[7],
            ]);
        }
        options = &options[len..];
    }
    Some(found)
}

/// IPv6 + NS with a source link-layer address option; dst is the target's
/// solicited-node multicast address unless `unicast_dst` is Some (a unicast probe).
/// Returns the length, or 0 (nothing written) if `out` is shorter than [`MAX_LEN`].
/// With `src` unspecified (duplicate address detection) RFC 4861 7.2.2 forbids the
/// option and a unicast destination, so the packet has neither.
pub fn write_solicit(
    out: &mut [u8],
    src: u128,
    target: u128,
    src_mac: [u8; 6],
    unicast_dst: Option<u128>,
) -> usize {
    let (dst, option) = match unicast_dst {
        Some(dst) if src != 0 => (dst, Some((OPT_SOURCE_LLADDR, src_mac))),
        _ if src != 0 => (solicited_node(target), Some((OPT_SOURCE_LLADDR, src_mac))),
        _ => (solicited_node(target), None),
    };
    write_message(out, src, dst, TYPE_NS, 0, target, option)
}

/// IPv6 + NA with a target link-layer address option; flags R (router), S (solicited),
/// O (override) as given. Returns the length, or 0 if `out` is shorter than
/// [`MAX_LEN`].
#[allow(clippy::too_many_arguments)] // the signature mirrors the message's fields
pub fn write_advert(
    out: &mut [u8],
    src: u128,
    dst: u128,
    target: u128,
    mac: [u8; 6],
    router: bool,
    solicited: bool,
    override_: bool,
) -> usize {
    let flags = flag(router, FLAG_ROUTER)
        | flag(solicited, FLAG_SOLICITED)
        | flag(override_, FLAG_OVERRIDE);
    write_message(
        out,
        src,
        dst,
        TYPE_NA,
        flags,
        target,
        Some((OPT_TARGET_LLADDR, mac)),
    )
}

fn flag(set: bool, bit: u8) -> u8 {
    if set {
        bit
    } else {
        0
    }
}

fn write_message(
    out: &mut [u8],
    src: u128,
    dst: u128,
    kind: u8,
    flags: u8,
    target: u128,
    option: Option<(u8, [u8; 6])>,
) -> usize {
    let msg_len = MSG_LEN + if option.is_some() { OPT_LEN } else { 0 };
    let len = IPV6_LEN + msg_len;
    // Checked against the longest message so that callers size buffers once.
    let Some(p) = out.get_mut(..MAX_LEN) else {
        return 0;
    };
    let (ip, msg) = p.split_at_mut(IPV6_LEN);
    let msg = &mut msg[..msg_len];
    ip[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    ip[4..6].copy_from_slice(&(msg_len as u16).to_be_bytes());
    ip[6] = NEXT_HEADER_ICMPV6;
    ip[7] = HOP_LIMIT;
    ip[8..24].copy_from_slice(&src.to_be_bytes());
    ip[24..40].copy_from_slice(&dst.to_be_bytes());
    msg[..8].copy_from_slice(&[kind, 0, 0, 0, flags, 0, 0, 0]);
    msg[8..24].copy_from_slice(&target.to_be_bytes());
    if let Some((opt_kind, mac)) = option {
        msg[24] = opt_kind;
        msg[25] = 1;
        msg[26..32].copy_from_slice(&mac);
    }
    let pseudo = checksum::pseudo6(
        &src.to_be_bytes(),
        &dst.to_be_bytes(),
        msg_len as u32,
        NEXT_HEADER_ICMPV6,
    );
    let check = checksum::finish(checksum::sum(msg, pseudo));
    msg[2..4].copy_from_slice(&check.to_be_bytes());
    len
}

/// ff02::1:ffXX:XXXX, where an address's neighbors send their solicitations.
pub fn solicited_node(addr: u128) -> u128 {
    SOLICITED_NODE | (addr & 0xff_ffff)
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 7): 33:33 and the
/// group's low 32 bits.
pub fn multicast_mac(addr: u128) -> [u8; 6] {
    let b = (addr as u32).to_be_bytes();
    [0x33, 0x33, b[0], b[1], b[2], b[3]]
}

/// fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291
/// appendix A: ff:fe in the middle, universal/local bit inverted).
pub fn link_local(mac: [u8; 6]) -> u128 {
    let iid = u64::from_be_bytes([
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]);
    (0xfe80u128 << 112) | u128::from(iid)
}

fn is_multicast(addr: u128) -> bool {
    addr >> 120 == 0xff
}

fn addr_at(bytes: &[u8], at: usize) -> Option<u128> {
    Some(u128::from_be_bytes(
        bytes.get(at..at + 16)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::arp;
    use crate::testing::SplitMix64;

    const MAC_A: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    const MAC_B: [u8; 6] = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
    /// 2001:db8::1 and 2001:db8::2.
    const ADDR_A: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001;
    const ADDR_B: u128 = 0x2001_0db8_0000_0000_0000_0000_0abc_0002;

    fn solicit(unicast: Option<u128>) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_LEN];
        let n = write_solicit(&mut buf, ADDR_A, ADDR_B, MAC_A, unicast);
        buf.truncate(n);
        buf
    }

    fn advert(dst: u128, solicited: bool) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_LEN];
        let n = write_advert(&mut buf, ADDR_B, dst, ADDR_B, MAC_B, true, solicited, true);
        buf.truncate(n);
        buf
    }

    /// Recomputes the ICMPv6 checksum after a test edited the packet, so that the
    /// edit, not the checksum, is what parse sees.
    fn fix_checksum(p: &mut [u8]) {
        let len = usize::from(u16::from_be_bytes([p[4], p[5]]));
        let src: [u8; 16] = p[8..24].try_into().unwrap();
        let dst: [u8; 16] = p[24..40].try_into().unwrap();
        let msg = &mut p[40..40 + len];
        msg[2] = 0;
        msg[3] = 0;
        let c = checksum::finish(checksum::sum(
            msg,
            checksum::pseudo6(&src, &dst, len as u32, 58),
        ));
        msg[2..4].copy_from_slice(&c.to_be_bytes());
    }

    /// Appends `extra` to the options, fixing the lengths and the checksum.
    fn with_options(p: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut v = p.to_vec();
        v.extend_from_slice(extra);
        let len = (v.len() - 40) as u16;
        v[4..6].copy_from_slice(&len.to_be_bytes());
        fix_checksum(&mut v);
        v
    }

    #[test]
    fn helpers_match_known_addresses() {
        assert_eq!(
            solicited_node(0x2001_0db8_0000_0000_0000_0000_1234_5678),
            0xff02_0000_0000_0000_0000_0001_ff34_5678
        );
        assert_eq!(
            multicast_mac(0xff02_0000_0000_0000_0000_0001_ff34_5678),
            [0x33, 0x33, 0xff, 0x34, 0x56, 0x78]
        );
        assert_eq!(multicast_mac(ALL_NODES), [0x33, 0x33, 0, 0, 0, 1]);
        // 52:54:00:12:34:56 -> fe80::5054:ff:fe12:3456, as Linux configures it.
        assert_eq!(
            link_local([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            0xfe80_0000_0000_0000_5054_00ff_fe12_3456
        );
    }

    #[test]
    fn solicitation_round_trips() {
        let p = solicit(None);
        assert_eq!(p.len(), MAX_LEN);
        assert_eq!(
            parse(&p),
            Some(Nd::Solicit {
                src: ADDR_A,
                dst: solicited_node(ADDR_B),
                target: ADDR_B,
                source_mac: Some(MAC_A),
            })
        );
        let probe = solicit(Some(ADDR_B));
        assert_eq!(
            parse(&probe),
            Some(Nd::Solicit {
                src: ADDR_A,
                dst: ADDR_B,
                target: ADDR_B,
                source_mac: Some(MAC_A),
            })
        );
        // Ethernet padding after the payload is ignored.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(parse(&padded), parse(&p));
    }

    #[test]
    fn advertisement_round_trips_with_each_flag() {
        for bits in 0..8u8 {
            let (r, s, o) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
            let mut buf = [0u8; MAX_LEN];
            let n = write_advert(&mut buf, ADDR_B, ADDR_A, ADDR_B, MAC_B, r, s, o);
            assert_eq!(n, MAX_LEN);
            assert_eq!(
                parse(&buf[..n]),
                Some(Nd::Advert {
                    src: ADDR_B,
                    dst: ADDR_A,
                    target: ADDR_B,
                    router: r,
                    solicited: s,
                    override_: o,
                    target_mac: Some(MAC_B),
                })
            );
        }
        // Unsolicited, to all nodes: allowed.
        assert!(parse(&advert(ALL_NODES, false)).is_some());
    }

    #[test]
    fn duplicate_address_detection_solicitation() {
        let mut buf = [0u8; MAX_LEN];
        // A unicast destination is ignored: DAD must go to the solicited-node group.
        let n = write_solicit(&mut buf, 0, ADDR_B, MAC_A, Some(ADDR_B));
        assert_eq!(n, 40 + 24);
        assert_eq!(
            parse(&buf[..n]),
            Some(Nd::Solicit {
                src: 0,
                dst: solicited_node(ADDR_B),
                target: ADDR_B,
                source_mac: None,
            })
        );
    }

    #[test]
    fn options_are_walked_not_assumed() {
        // An unknown option before the address option, and a second address option
        // after it: the address is found, and the first one counts.
        let base = solicit(None);
        let mut p = base[..64].to_vec();
        p[4..6].copy_from_slice(&24u16.to_be_bytes());
        let unknown = [14, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
        let first = [1, 1, 1, 1, 1, 1, 1, 1];
        let second = [1, 1, 2, 2, 2, 2, 2, 2];
        let p = with_options(&p, &[&unknown[..], &first, &second].concat());
        match parse(&p) {
            Some(Nd::Solicit { source_mac, .. }) => assert_eq!(source_mac, Some([1; 6])),
            other => panic!("{other:?}"),
        }
        // No option at all is fine for a unicast solicitation.
        let mut bare = base[..64].to_vec();
        bare[4..6].copy_from_slice(&24u16.to_be_bytes());
        fix_checksum(&mut bare);
        match parse(&bare) {
            Some(Nd::Solicit { source_mac, .. }) => assert_eq!(source_mac, None),
            other => panic!("{other:?}"),
        }
        // An NA ignores a source address option (it is not the target's).
        let na = advert(ADDR_A, true);
        let mut na_src_opt = na[..64].to_vec();
        na_src_opt[4..6].copy_from_slice(&24u16.to_be_bytes());
        let na_src_opt = with_options(&na_src_opt, &first);
        match parse(&na_src_opt) {
            Some(Nd::Advert { target_mac, .. }) => assert_eq!(target_mac, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_each_malformed_case() {
        let ns = solicit(None);
        let na = advert(ADDR_A, true);
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

        let mut p = ns.clone();
        p[40 + 2] ^= 1;
        cases.push(("bad checksum", p));
        let mut p = ns.clone();
        p[7] = 254;
        cases.push(("hop limit 254", p));
        let mut p = ns.clone();
        p[7] = 64;
        cases.push(("hop limit 64", p));
        let mut p = ns.clone();
        p[6] = 0; // a hop-by-hop options header in front
        cases.push(("extension header", p));
        let mut p = ns.clone();
        p[0] = 0x40;
        cases.push(("not IPv6", p));
        let mut p = ns.clone();
        p[41] = 1;
        fix_checksum(&mut p);
        cases.push(("code 1", p));
        let mut p = ns.clone();
        p[40] = 128; // echo request
        fix_checksum(&mut p);
        cases.push(("other ICMPv6 type", p));
        let mut p = ns.clone();
        p[4..6].copy_from_slice(&20u16.to_be_bytes());
        p.truncate(60);
        fix_checksum(&mut p);
        cases.push(("ICMP length 20", p));
        let mut p = ns.clone();
        p[4..6].copy_from_slice(&40u16.to_be_bytes());
        cases.push(("payload length past the packet", p));
        let mut p = ns.clone();
        p[40 + 8] = 0xff;
        fix_checksum(&mut p);
        cases.push(("multicast target", p));
        let mut p = ns.clone();
        p[8] = 0xff;
        fix_checksum(&mut p);
        cases.push(("multicast source", p));
        let mut p = ns.clone();
        p[40 + 25] = 0;
        fix_checksum(&mut p);
        cases.push(("zero-length option", p));
        let mut p = ns.clone();
        p[40 + 25] = 2;
        fix_checksum(&mut p);
        cases.push(("option past the packet", p));
        let mut p = ns[..ns.len() - 3].to_vec();
        p[4..6].copy_from_slice(&29u16.to_be_bytes());
        fix_checksum(&mut p);
        cases.push(("truncated option", p));
        let mut p = ns[..ns.len() - 7].to_vec();
        p[4..6].copy_from_slice(&25u16.to_be_bytes());
        fix_checksum(&mut p);
        cases.push(("one byte of option", p));
        let long_option = [
            1, 2, 2, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        cases.push((
            "16-byte link-layer option",
            with_options(&ns[..64], &long_option),
        ));
        let mut p = ns.clone();
        p[8..24].fill(0);
        fix_checksum(&mut p);
        cases.push(("NS from :: with SLLAO", p));
        let mut p = ns[..64].to_vec();
        p[4..6].copy_from_slice(&24u16.to_be_bytes());
        p[8..24].fill(0);
        p[24..40].copy_from_slice(&ADDR_B.to_be_bytes());
        fix_checksum(&mut p);
        cases.push(("NS from :: to a unicast address", p));
        cases.push(("solicited NA to all nodes", advert(ALL_NODES, true)));
        cases.push((
            "solicited NA to a solicited-node group",
            advert(solicited_node(ADDR_A), true),
        ));
        let mut p = na.clone();
        p[40 + 8] = 0xff;
        fix_checksum(&mut p);
        cases.push(("NA with multicast target", p));
        let mut p = na.clone();
        p[40 + 25] = 0;
        fix_checksum(&mut p);
        cases.push(("NA zero-length option", p));

        for (what, p) in &cases {
            assert_eq!(parse(p), None, "{what}");
        }
        // The unedited packets are accepted: the cases fail for their edit alone.
        assert!(parse(&ns).is_some() && parse(&na).is_some());
    }

    #[test]
    fn short_output_writes_nothing() {
        let mut buf = [0u8; MAX_LEN - 1];
        assert_eq!(write_solicit(&mut buf, ADDR_A, ADDR_B, MAC_A, None), 0);
        assert_eq!(
            write_advert(&mut buf, ADDR_A, ADDR_B, ADDR_A, MAC_A, false, true, true),
            0
        );
        assert!(buf.iter().all(|&b| b == 0));
    }

    #[test]
    fn random_and_truncated_input_never_panics() {
        let mut rng = SplitMix64(4861);
        let valid = [solicit(None), solicit(Some(ADDR_B)), advert(ADDR_A, true)];
        for i in 0..30_000 {
            let base = &valid[i % valid.len()];
            let mut p = base.clone();
            match rng.below(4) {
                // Truncated anywhere.
                0 => p.truncate(rng.below(p.len() as u32 + 1) as usize),
                // A few bytes flipped, the checksum fixed when the header still allows,
                // so that the option walk sees the damage.
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(p.len() as u32) as usize;
                        p[at] = rng.u32() as u8;
                    }
                    let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
                    if 40 + plen <= p.len() && plen >= 4 {
                        fix_checksum(&mut p);
                    }
                }
                // Random options after a valid message.
                2 => {
                    let extra: Vec<u8> = (0..rng.below(40)).map(|_| rng.u32() as u8).collect();
                    p = with_options(&p[..64], &extra);
                }
                // Pure noise of any length.
                _ => {
                    let len = rng.below(120) as usize;
                    p = (0..len).map(|_| rng.u32() as u8).collect();
                }
            }
            if let Some(nd) = parse(&p) {
                // Whatever is accepted satisfies the rules parse promises.
                let (target, dst) = match nd {
                    Nd::Solicit { target, dst, .. } | Nd::Advert { target, dst, .. } => {
                        (target, dst)
                    }
                };
                assert!(!is_multicast(target));
                if let Nd::Advert {
                    solicited: true, ..
                } = nd
                {
                    assert!(!is_multicast(dst));
                }
                assert_eq!(p[7], 255);
            }
        }
    }

    /// scapy, an independent implementation, decodes what we write. Fails (does not
    /// skip) without scapy: the tests' setup (tests/install-deps.sh) provides it.
    #[test]
    fn scapy_decodes_what_we_write() {
        let ns = solicit(None);
        let na = advert(ADDR_A, true);
        let mut req = [0u8; arp::LEN];
        arp::write(
            &mut req,
            &arp::Arp {
                op: arp::REQUEST,
                sender_mac: MAC_A,
                sender_ip: u32::from_be_bytes([192, 0, 2, 1]),
                target_mac: [0; 6],
                target_ip: u32::from_be_bytes([192, 0, 2, 99]),
            },
        );
        let script = r#"
import sys
from scapy.layers.inet6 import (IPv6, ICMPv6ND_NS, ICMPv6ND_NA,
    ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr)
from scapy.layers.l2 import ARP

def checksum_ok(pkt, layer):
    sent = pkt[layer].cksum
    pkt = pkt.copy()
    del pkt[layer].cksum
    rebuilt = IPv6(bytes(pkt))
    assert rebuilt[layer].cksum == sent, (layer.__name__, hex(sent), hex(rebuilt[layer].cksum))

ns = IPv6(bytes.fromhex(sys.argv[1]))
assert ns.version == 6 and ns.nh == 58 and ns.hlim == 255 and ns.plen == 32, ns.show(dump=True)
assert ns.src == "2001:db8::1", ns.src
assert ns.dst == "ff02::1:ffbc:2", ns.dst
assert ns[ICMPv6ND_NS].type == 135 and ns[ICMPv6ND_NS].code == 0
assert ns[ICMPv6ND_NS].tgt == "2001:db8::abc:2", ns[ICMPv6ND_NS].tgt
assert ns[ICMPv6NDOptSrcLLAddr].len == 1
assert ns[ICMPv6NDOptSrcLLAddr].lladdr == "02:11:22:33:44:55", ns[ICMPv6NDOptSrcLLAddr].lladdr
checksum_ok(ns, ICMPv6ND_NS)

na = IPv6(bytes.fromhex(sys.argv[2]))
assert na.hlim == 255 and na.src == "2001:db8::abc:2" and na.dst == "2001:db8::1"
assert na[ICMPv6ND_NA].type == 136 and na[ICMPv6ND_NA].code == 0
assert (na[ICMPv6ND_NA].R, na[ICMPv6ND_NA].S, na[ICMPv6ND_NA].O) == (1, 1, 1)
assert na[ICMPv6ND_NA].tgt == "2001:db8::abc:2"
assert na[ICMPv6NDOptDstLLAddr].lladdr == "52:54:00:ab:cd:ef"
checksum_ok(na, ICMPv6ND_NA)

arp = ARP(bytes.fromhex(sys.argv[3]))
assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen, arp.op) == (1, 0x800, 6, 4, 1)
assert arp.hwsrc == "02:11:22:33:44:55" and arp.psrc == "192.0.2.1"
assert arp.hwdst == "00:00:00:00:00:00" and arp.pdst == "192.0.2.99"
print("ok")
"#;
        let python = python_with_scapy().expect(
            "scapy not found for python3 (or /usr/bin/python3): install it \
             (apt-get install python3-scapy, or pip3 install --break-system-packages scapy)",
        );
        let out = std::process::Command::new(&python)
            .arg("-c")
            .arg(script)
            .args([hex(&ns), hex(&na), hex(&req)])
            .output()
            .expect("run python3");
        assert!(
            out.status.success() && out.stdout.starts_with(b"ok"),
            "scapy rejected our packets:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The first python3 that can import scapy: the one on PATH, or the system's (a
    /// pyenv or virtualenv python3 on PATH may lack the distribution's python3-scapy).
    fn python_with_scapy() -> Option<String> {
        ["python3", "/usr/bin/python3"]
            .into_iter()
            .find(|py| {
                std::process::Command::new(py)
                    .args(["-c", "import scapy"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .map(str::to_string)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
