//! ICMP (RFC 792) and ICMPv6 (RFC 4443) as a router sends them: errors about packets
//! it cannot forward (time exceeded, unreachable, fragmentation needed / packet too
//! big, which traceroute and path MTU discovery rely on), the rules for when such an
//! error must not be sent, and replies to pings addressed to the router itself.
//!
//! Errors are built into a caller's buffer as complete L3 packets; echo replies are
//! made in place from the request. The caller adds the Ethernet header, and decides
//! about link-layer broadcast and multicast, which it alone can see.

use super::checksum;
use super::ipv4::{self, PROTO_ICMP, V4};
use super::ipv6::{self, Upper, NEXT_ICMP6, V6};

/// Largest IPv4 packet carrying an ICMP error (RFC 1812 section 4.3.2.3), and the
/// smallest `out` that [`v4_error`] accepts.
pub const V4_ERROR_MAX: usize = 576;
/// Largest IPv6 packet carrying an ICMPv6 error (RFC 4443 section 2.4(c)), and the
/// smallest `out` that [`v6_error`] accepts.
pub const V6_ERROR_MAX: usize = 1280;

/// Type, code, checksum and four type-specific bytes, in both versions.
const ICMP_HEADER: usize = 8;
/// TTL and hop limit of what we originate (Linux's default).
const HOPS: u8 = 64;
/// IP precedence 6, internetwork control, which RFC 1812 4.3.2.5 asks for on errors.
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

const V4_ECHO_REPLY: u8 = 0;
const V4_ECHO_REQUEST: u8 = 8;
const V6_ECHO_REQUEST: u8 = 128;
const V6_ECHO_REPLY: u8 = 129;

/// The ICMP errors a router sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmp4Error {
    /// TTL reached zero in transit: type 11, code 0.
    TimeExceeded,
    /// No route: type 3, code 0.
    NetUnreachable,
    /// The destination on a connected network does not answer ARP: type 3, code 1.
    HostUnreachable,
    /// Filtered: type 3, code 13 (RFC 1812 5.2.7.1).
    AdminProhibited,
    /// Too big for the next link and DF set: type 3, code 4, with the next link's MTU
    /// (RFC 1191).
    FragmentationNeeded { mtu: u16 },
}

impl Icmp4Error {
    /// The eight bytes of the ICMP header, checksum zero.
    fn header(self) -> [u8; ICMP_HEADER] {
        let (ty, code, mtu) = match self {
            Self::TimeExceeded => (11, 0, 0u16),
            Self::NetUnreachable => (3, 0, 0),
            Self::HostUnreachable => (3, 1, 0),
            Self::AdminProhibited => (3, 13, 0),
            Self::FragmentationNeeded { mtu } => (3, 4, mtu),
        };
        // RFC 1191: the MTU is the low half of the four bytes; the high half is unused.
        let m = mtu.to_be_bytes();
        [ty, code, 0, 0, 0, 0, m[0], m[1]]
    }
}

/// Whether RFC 1812 4.3.2.7 forbids an ICMP error about this packet (`hdr` being its
/// parsed header): it is itself an ICMP error (type 3, 4, 5, 11 or 12), or an ICMP
/// message whose 8-byte header is cut short; it is a non-first fragment; it is
/// addressed to a multicast or the limited broadcast address; or its source is not
/// one host: 0.0.0.0, multicast, loopback (127/8) or reserved (240/4, which includes
/// 255.255.255.255).
pub fn v4_error_forbidden(l3: &[u8], hdr: &V4) -> bool {
    if hdr.is_later_fragment || ipv4::is_multicast(hdr.dst) || ipv4::is_broadcast(hdr.dst) {
        return true;
    }
    if !is_v4_host(hdr.src) {
        return true;
    }
    if hdr.protocol != PROTO_ICMP {
        return false;
    }
    match l3
        .get(hdr.header_len..hdr.total_len)
        .and_then(|icmp| icmp.first_chunk::<ICMP_HEADER>())
    {
        Some(icmp) => matches!(icmp[0], 3 | 4 | 5 | 11 | 12),
        None => true,
    }
}

/// An address that names a single host, so something may be sent to it.
fn is_v4_host(a: u32) -> bool {
    !(ipv4::is_unspecified(a)
        || ipv4::is_multicast(a)
        || ipv4::is_loopback(a)
        || ipv4::is_reserved(a))
}

/// Builds a complete IPv4 packet carrying the error about `orig` (an L3 slice that
/// [`ipv4::parse`] accepts): from `src` (the address of the interface it leaves by,
/// RFC 1812 4.3.2.4) to `orig`'s source, TTL 64, the given id, TOS 0xc0, then the
/// ICMP header and as much of `orig` as keeps the whole packet within 576 bytes.
/// Returns the length written; 0, writing nothing, if `out` is shorter than 576 bytes
/// or `orig` is not a valid packet. Whether the error may be sent at all is
/// [`v4_error_forbidden`]'s question, asked first.
pub fn v4_error(orig: &[u8], kind: Icmp4Error, src: u32, id: u16, out: &mut [u8]) -> usize {
    let (Ok(h), Some(out)) = (ipv4::parse(orig), out.get_mut(..V4_ERROR_MAX)) else {
        return 0;
    };
    let quote = h.total_len.min(V4_ERROR_MAX - ipv4::HEADER - ICMP_HEADER);
    let icmp_len = ICMP_HEADER + quote;
    let header_len = ipv4::write_header(out, src, h.src, PROTO_ICMP, HOPS, icmp_len, id);
    out[1] = TOS_INTERNETWORK_CONTROL;
    ipv4::fill_checksum(&mut out[..header_len]);

    let icmp = &mut out[header_len..header_len + icmp_len];
    icmp[..ICMP_HEADER].copy_from_slice(&kind.header());
    icmp[ICMP_HEADER..].copy_from_slice(&orig[..quote]);
    fill_icmp_checksum(icmp, 0);
    header_len + icmp_len
}

/// Turns an echo request addressed to us into its reply, in place: addresses swapped,
/// TTL 64, type 0, both checksums updated incrementally. The rest (options, id,
/// sequence, data, any Ethernet padding after the packet) is left as it was.
///
/// Returns false, leaving the packet untouched, unless it is a valid IPv4 packet that
/// is not a fragment and carries an ICMP echo request (type 8) with a correct checksum,
/// from a single host to a unicast address (a request to a broadcast or multicast
/// address gets no reply, as with Linux's default `icmp_echo_ignore_broadcasts`).
pub fn v4_echo_reply(l3: &mut [u8]) -> bool {
    let Ok(h) = ipv4::parse(l3) else {
        return false;
    };
    if h.protocol != PROTO_ICMP
        || h.is_fragment
        || !is_v4_host(h.src)
        || ipv4::is_multicast(h.dst)
        || ipv4::is_broadcast(h.dst)
    {
        return false;
    }
    let (header, rest) = l3.split_at_mut(h.header_len);
    let Some(icmp) = rest.get_mut(..h.total_len - h.header_len) else {
        return false;
    };
    if icmp.len() < ICMP_HEADER || icmp[0] != V4_ECHO_REQUEST || !checksum::verify(icmp, 0) {
        return false;
    }
    set_word(icmp, 0, [V4_ECHO_REPLY, icmp[1]], 2);
    set_word(header, 8, [HOPS, header[9]], 10);
    // The header checksum does not care about the order of its words.
    let (a, b) = header[12..20].split_at_mut(4);
    a.swap_with_slice(b);
    true
}

/// The ICMPv6 errors a router sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmp6Error {
    /// Hop limit reached zero in transit: type 3, code 0.
    TimeExceeded,
    /// No route to the destination: type 1, code 0.
    NoRoute,
    /// Filtered: type 1, code 1.
    AdminProhibited,
    /// Neighbour discovery for the destination failed: type 1, code 3.
    AddressUnreachable,
    /// Too big for the next link (IPv6 routers never fragment): type 2, code 0, with
    /// the next link's MTU.
    PacketTooBig { mtu: u32 },
}

impl Icmp6Error {
    /// The eight bytes of the ICMPv6 header, checksum zero.
    fn header(self) -> [u8; ICMP_HEADER] {
        let (ty, code, rest) = match self {
            Self::TimeExceeded => (3, 0, 0u32),
            Self::NoRoute => (1, 0, 0),
            Self::AdminProhibited => (1, 1, 0),
            Self::AddressUnreachable => (1, 3, 0),
            Self::PacketTooBig { mtu } => (2, 0, mtu),
        };
        let r = rest.to_be_bytes();
        [ty, code, 0, 0, r[0], r[1], r[2], r[3]]
    }
}

/// Whether RFC 4443 2.4(e) forbids an ICMPv6 error of `kind` about this packet (`hdr`
/// being its parsed header): it is an ICMPv6 error message (type below 128) or an
/// ICMPv6 message whose 8-byte header is cut short; it is addressed to a multicast
/// address, unless the error is PacketTooBig; or its source is unspecified or
/// multicast. The ICMPv6 header is looked for past any extension headers; a packet
/// whose extension headers run past its end is refused too (we cannot tell what it
/// carries), while a non-first fragment is not (its upper layer is in the first one:
/// Linux answers those too).
pub fn v6_error_forbidden(l3: &[u8], hdr: &V6, kind: Icmp6Error) -> bool {
    if ipv6::is_unspecified(hdr.src) || ipv6::is_multicast(hdr.src) {
        return true;
    }
    if ipv6::is_multicast(hdr.dst) && !matches!(kind, Icmp6Error::PacketTooBig { .. }) {
        return true;
    }
    match ipv6::upper_layer(l3, hdr) {
        None => true,
        Some(Upper::LaterFragment) => false,
        Some(Upper::At {
            protocol: NEXT_ICMP6,
            offset,
        }) => {
            let end = ipv6::HEADER.saturating_add(hdr.payload_len);
            match l3
                .get(offset..end)
                .and_then(|icmp| icmp.first_chunk::<ICMP_HEADER>())
            {
                Some(icmp) => icmp[0] < 128,
                None => true,
            }
        }
        Some(Upper::At { .. }) => false,
    }
}

/// Builds a complete IPv6 packet carrying the ICMPv6 error about `orig` (an L3 slice
/// that [`ipv6::parse`] accepts): from `src` to `orig`'s source, hop limit 64, then the
/// ICMPv6 header and as much of `orig` as keeps the whole packet within 1280 bytes,
/// with the checksum over the pseudo-header. Returns the length written; 0, writing
/// nothing, if `out` is shorter than 1280 bytes or `orig` is not a valid packet. Ask
/// [`v6_error_forbidden`] first.
pub fn v6_error(orig: &[u8], kind: Icmp6Error, src: u128, out: &mut [u8]) -> usize {
    let (Ok(h), Some(out)) = (ipv6::parse(orig), out.get_mut(..V6_ERROR_MAX)) else {
        return 0;
    };
    let quote = (ipv6::HEADER + h.payload_len).min(V6_ERROR_MAX - ipv6::HEADER - ICMP_HEADER);
    let icmp_len = ICMP_HEADER + quote;
    let header_len = ipv6::write_header(out, src, h.src, NEXT_ICMP6, HOPS, icmp_len);
    let icmp = &mut out[header_len..header_len + icmp_len];
    icmp[..ICMP_HEADER].copy_from_slice(&kind.header());
    icmp[ICMP_HEADER..].copy_from_slice(&orig[..quote]);
    fill_icmp_checksum(icmp, pseudo(src, h.src, icmp_len));
    header_len + icmp_len
}

/// Turns an ICMPv6 echo request (type 128) into its reply (129), in place: from `src`
/// (normally the request's destination; for a request to a multicast address, our
/// unicast address on that link, hence a parameter) to the request's source, hop
/// limit 64, checksum recomputed. Traffic class, flow label, identifier, sequence and
/// data are left as they were.
///
/// Returns false, leaving the packet untouched, unless it is a valid IPv6 packet whose
/// next header is ICMPv6 (a request behind extension headers is not answered) and
/// which carries an echo request with a correct checksum, from a unicast source; and
/// `src` is unicast too.
pub fn v6_echo_reply(l3: &mut [u8], src: u128) -> bool {
    let Ok(h) = ipv6::parse(l3) else {
        return false;
    };
    let not_unicast = |a| ipv6::is_unspecified(a) || ipv6::is_multicast(a);
    if h.next_header != NEXT_ICMP6 || not_unicast(h.src) || not_unicast(src) {
        return false;
    }
    let (header, rest) = l3.split_at_mut(ipv6::HEADER);
    let Some(icmp) = rest.get_mut(..h.payload_len) else {
        return false;
    };
    if icmp.len() < ICMP_HEADER
        || icmp[0] != V6_ECHO_REQUEST
        || !checksum::verify(icmp, pseudo(h.src, h.dst, icmp.len()))
    {
        return false;
    }
    header[7] = HOPS;
    header[8..24].copy_from_slice(&src.to_be_bytes());
    header[24..40].copy_from_slice(&h.src.to_be_bytes());
    icmp[0] = V6_ECHO_REPLY;
    fill_icmp_checksum(icmp, pseudo(src, h.src, icmp.len()));
    true
}

/// The ICMPv6 pseudo-header's partial sum; `len` is at most 1280 or 65535 here.
fn pseudo(src: u128, dst: u128, len: usize) -> u32 {
    checksum::pseudo6(
        &src.to_be_bytes(),
        &dst.to_be_bytes(),
        len as u32,
        NEXT_ICMP6,
    )
}

/// Computes the checksum of an ICMP message (bytes 2..4) over all of it, starting from
/// `initial` (a pseudo-header's sum for ICMPv6, 0 for ICMP).
fn fill_icmp_checksum(icmp: &mut [u8], initial: u32) {
    icmp[2..4].fill(0);
    let c = checksum::finish(checksum::sum(icmp, initial));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Replaces the 16-bit word at `at` and updates the checksum at `check` to match
/// (RFC 1624). Both lie inside `data`: the callers checked its length.
fn set_word(data: &mut [u8], at: usize, new: [u8; 2], check: usize) {
    let old = u16::from_be_bytes([data[at], data[at + 1]]);
    let c = u16::from_be_bytes([data[check], data[check + 1]]);
    data[at..at + 2].copy_from_slice(&new);
    let c = checksum::update16(c, old, u16::from_be_bytes(new));
    data[check..check + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::fragment::tests::{fragments, reassemble, OPTIONS};
    use crate::l3::ipv4::tests::{packet as packet4, set_frag};
    use crate::l3::ipv6::tests::{packet as packet6, A, B};
    use crate::testing::SplitMix64;

    const HOST: u32 = 0x0a00_0001; // 10.0.0.1
    const FAR: u32 = 0xc000_0209; // 192.0.2.9
    const ROUTER: u32 = 0x0a00_00fe; // 10.0.0.254
    const ROUTER6: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_00fe;

    const ALL_V4: [Icmp4Error; 5] = [
        Icmp4Error::TimeExceeded,
        Icmp4Error::NetUnreachable,
        Icmp4Error::HostUnreachable,
        Icmp4Error::AdminProhibited,
        Icmp4Error::FragmentationNeeded { mtu: 1400 },
    ];
    const ALL_V6: [Icmp6Error; 5] = [
        Icmp6Error::TimeExceeded,
        Icmp6Error::NoRoute,
        Icmp6Error::AdminProhibited,
        Icmp6Error::AddressUnreachable,
        Icmp6Error::PacketTooBig { mtu: 1280 },
    ];

    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = SplitMix64(seed);
        (0..len).map(|_| rng.u32() as u8).collect()
    }

    /// A UDP packet of `total` bytes (ports 33434, traceroute's).
    fn udp4(src: u32, dst: u32, total: usize) -> Vec<u8> {
        let mut body = data(total - 20, total as u64);
        if let Some(udp) = body.get_mut(..8) {
            let len = ((total - 20) as u16).to_be_bytes();
            udp.copy_from_slice(&[0x9c, 0x40, 0x82, 0x9a, len[0], len[1], 0, 0]);
        }
        packet4(src, dst, 17, &[], &body)
    }

    /// An ICMP message with a correct checksum.
    fn icmp4(src: u32, dst: u32, ty: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![ty, 0, 0, 0];
        m.extend_from_slice(body);
        fill_icmp_checksum(&mut m, 0);
        packet4(src, dst, PROTO_ICMP, &[], &m)
    }

    fn echo4(src: u32, dst: u32) -> Vec<u8> {
        let mut body = vec![0x12, 0x34, 0x00, 0x07];
        body.extend(data(56, 8));
        icmp4(src, dst, V4_ECHO_REQUEST, &body)
    }

    fn udp6(src: u128, dst: u128, total: usize) -> Vec<u8> {
        let mut body = data(total - 40, total as u64);
        body[..4].copy_from_slice(&[0x9c, 0x40, 0x82, 0x9a]);
        packet6(src, dst, 17, &body)
    }

    /// An ICMPv6 message with a correct checksum, after `ext` (extension headers, the
    /// last of which names ICMPv6; empty for none).
    fn icmp6(src: u128, dst: u128, ext: &[u8], ty: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![ty, 0, 0, 0];
        m.extend_from_slice(body);
        let sum = pseudo(src, dst, m.len());
        fill_icmp_checksum(&mut m, sum);
        let next = if ext.is_empty() { NEXT_ICMP6 } else { 0 };
        packet6(src, dst, next, &[ext, &m].concat())
    }

    fn echo6(src: u128, dst: u128) -> Vec<u8> {
        let mut body = vec![0x12, 0x34, 0x00, 0x07];
        body.extend(data(56, 9));
        icmp6(src, dst, &[], V6_ECHO_REQUEST, &body)
    }

    fn forbidden4(p: &[u8]) -> bool {
        v4_error_forbidden(p, &ipv4::parse(p).unwrap())
    }

    fn forbidden6(p: &[u8], kind: Icmp6Error) -> bool {
        v6_error_forbidden(p, &ipv6::parse(p).unwrap(), kind)
    }

    #[test]
    fn v4_errors_are_allowed_about_ordinary_packets() {
        assert!(!forbidden4(&udp4(HOST, FAR, 100)));
        assert!(!forbidden4(&packet4(HOST, FAR, 6, &[], &[0; 20])));
        // ICMP queries and replies are not errors.
        for ty in [0, 8, 13, 14, 17, 18] {
            assert!(!forbidden4(&icmp4(HOST, FAR, ty, &[0; 4])), "type {ty}");
        }
        // The first fragment carries the ICMP header: it may be answered.
        let mut p = echo4(HOST, FAR);
        set_frag(&mut p, 0x2000);
        assert!(!forbidden4(&p));
    }

    #[test]
    fn v4_errors_about_errors_fragments_and_non_hosts_are_forbidden() {
        for ty in [3, 4, 5, 11, 12] {
            assert!(forbidden4(&icmp4(HOST, FAR, ty, &[0; 32])), "type {ty}");
        }
        // ICMP header cut short, within the packet; padding after it does not count.
        for len in 0..8 {
            let p = packet4(HOST, FAR, PROTO_ICMP, &[], &[8, 0, 0, 0, 0, 0, 0, 0][..len]);
            assert!(forbidden4(&p), "{len} ICMP bytes");
            let mut padded = p.clone();
            padded.resize(60, 0);
            assert!(forbidden4(&padded));
        }
        // A later fragment, of anything.
        let mut p = udp4(HOST, FAR, 100);
        set_frag(&mut p, 10);
        assert!(forbidden4(&p));
        let mut p = echo4(HOST, FAR);
        set_frag(&mut p, 0x2000 | 1);
        assert!(forbidden4(&p));
        // To multicast or broadcast.
        for dst in [0xe000_0005, 0xefff_fffa, 0xffff_ffff] {
            assert!(forbidden4(&udp4(HOST, dst, 100)), "{dst:#x}");
        }
        // From a source that is not one host.
        for src in [
            0,
            0xe000_0001,
            0xffff_ffff,
            0x7f00_0001,
            0x7f12_3456,
            0xf000_0001,
        ] {
            assert!(forbidden4(&udp4(src, FAR, 100)), "{src:#x}");
        }
        // A header that does not match the slice is not read past the slice.
        let p = udp4(HOST, FAR, 100);
        let mut h = ipv4::parse(&p).unwrap();
        h.protocol = PROTO_ICMP;
        h.total_len = 5000;
        assert!(v4_error_forbidden(&p, &h));
        h.header_len = 6000;
        assert!(v4_error_forbidden(&p, &h));
    }

    /// Checks an error built about `orig` on its own terms, without parse where it
    /// matters, and returns the ICMP message.
    fn check_v4_error(orig: &[u8], kind: Icmp4Error, out: &[u8], n: usize) -> Vec<u8> {
        let h = ipv4::parse(&out[..n]).expect("a valid packet");
        let o = ipv4::parse(orig).unwrap();
        assert!(n <= V4_ERROR_MAX);
        assert_eq!((h.header_len, h.total_len), (20, n));
        assert_eq!(
            (h.src, h.dst, h.protocol, h.ttl),
            (ROUTER, o.src, PROTO_ICMP, 64)
        );
        assert!(!h.is_fragment && !h.dont_fragment);
        assert_eq!(out[0], 0x45);
        assert_eq!(out[1], 0xc0);
        assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])), n);
        assert_eq!(&out[4..6], &[0xab, 0xcd], "id");
        assert_eq!(&out[12..16], &ROUTER.to_be_bytes());
        assert_eq!(&out[16..20], &orig[12..16]);
        assert!(checksum::verify(&out[..20], 0));
        let icmp = &out[20..n];
        assert!(checksum::verify(icmp, 0), "ICMP checksum");
        let (ty, code) = (icmp[0], icmp[1]);
        let want = match kind {
            Icmp4Error::TimeExceeded => (11, 0),
            Icmp4Error::NetUnreachable => (3, 0),
            Icmp4Error::HostUnreachable => (3, 1),
            Icmp4Error::AdminProhibited => (3, 13),
            Icmp4Error::FragmentationNeeded { .. } => (3, 4),
        };
        assert_eq!((ty, code), want, "{kind:?}");
        let mtu = match kind {
            Icmp4Error::FragmentationNeeded { mtu } => mtu,
            _ => 0,
        };
        assert_eq!(&icmp[4..6], &[0, 0]);
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), mtu);
        // As much of the original as fits, never its padding.
        let quoted = &icmp[8..];
        assert_eq!(quoted.len(), o.total_len.min(548));
        assert_eq!(quoted, &orig[..quoted.len()]);
        icmp.to_vec()
    }

    #[test]
    fn v4_error_of_each_kind() {
        for total in [20, 28, 100, 547, 548, 549, 1500, 65_535] {
            let orig = udp4(HOST, FAR, total);
            for kind in ALL_V4 {
                let mut out = [0x55u8; 2000];
                let n = v4_error(&orig, kind, ROUTER, 0xabcd, &mut out);
                assert_eq!(n, 28 + total.min(548), "total {total}");
                check_v4_error(&orig, kind, &out, n);
                assert!(out[n..].iter().all(|&b| b == 0x55), "wrote past the packet");
                // The error is itself an error: no error about it.
                assert!(forbidden4(&out[..n]));
            }
        }
        // Padding after the original is not quoted.
        let mut orig = udp4(HOST, FAR, 30);
        orig.resize(46, 0xee);
        let mut out = [0u8; 576];
        let n = v4_error(&orig, Icmp4Error::TimeExceeded, ROUTER, 0xabcd, &mut out);
        assert_eq!(n, 58);
        check_v4_error(&orig, Icmp4Error::TimeExceeded, &out, n);
        // Checksums exercised with extreme MTUs.
        for mtu in [0, 68, 0xffff] {
            let kind = Icmp4Error::FragmentationNeeded { mtu };
            let n = v4_error(&udp4(HOST, FAR, 1500), kind, ROUTER, 0xabcd, &mut out);
            check_v4_error(&udp4(HOST, FAR, 1500), kind, &out, n);
        }
    }

    #[test]
    fn v4_error_refuses_small_buffers_and_invalid_originals() {
        let orig = udp4(HOST, FAR, 100);
        let mut out = [0u8; 575];
        assert_eq!(
            v4_error(&orig, Icmp4Error::TimeExceeded, ROUTER, 1, &mut out),
            0
        );
        assert_eq!(out, [0; 575]);
        let mut out = [0u8; 576];
        assert_eq!(
            v4_error(&orig[..19], Icmp4Error::TimeExceeded, ROUTER, 1, &mut out),
            0
        );
        assert_eq!(
            v4_error(&orig[..99], Icmp4Error::TimeExceeded, ROUTER, 1, &mut out),
            0
        );
        let mut bad = orig.clone();
        bad[10] ^= 1;
        assert_eq!(
            v4_error(&bad, Icmp4Error::TimeExceeded, ROUTER, 1, &mut out),
            0
        );
        assert_eq!(out, [0; 576]);
    }

    #[test]
    fn v4_echo_reply_round_trip() {
        for options in [&[][..], &[0x94, 4, 0, 0][..]] {
            let mut body = vec![0x12, 0x34, 0x00, 0x07];
            body.extend(data(56, 8));
            let mut m = vec![8, 0, 0, 0];
            m.extend_from_slice(&body);
            fill_icmp_checksum(&mut m, 0);
            let req = packet4(HOST, ROUTER, PROTO_ICMP, options, &m);
            let mut p = req.clone();
            p.resize(req.len() + 6, 0xee); // padding, left alone
            assert!(v4_echo_reply(&mut p));
            let h = ipv4::parse(&p).unwrap();
            assert_eq!(
                (h.src, h.dst, h.ttl, h.protocol, h.total_len),
                (ROUTER, HOST, 64, 1, req.len())
            );
            let hl = h.header_len;
            // Only the TTL, addresses and checksum changed in the header.
            assert_eq!(p[..8], req[..8]);
            assert_eq!(p[9], req[9]);
            assert_eq!(p[20..hl], req[20..hl]);
            let mut fresh = p[..hl].to_vec();
            ipv4::fill_checksum(&mut fresh);
            assert_eq!(fresh, p[..hl], "header checksum equals a recomputation");
            let icmp = &p[hl..req.len()];
            assert_eq!((icmp[0], icmp[1]), (0, 0));
            assert_eq!(icmp[4..], req[hl + 4..]);
            let mut fresh = icmp.to_vec();
            fill_icmp_checksum(&mut fresh, 0);
            assert_eq!(fresh, icmp, "ICMP checksum equals a recomputation");
            assert_eq!(p[req.len()..], [0xee; 6]);
            // A reply is not a request.
            let before = p.clone();
            assert!(!v4_echo_reply(&mut p));
            assert_eq!(p, before);
        }
    }

    #[test]
    fn v4_echo_reply_refuses_what_is_not_a_valid_request() {
        let good = echo4(HOST, ROUTER);
        let refuse = |mut p: Vec<u8>, why: &str| {
            let before = p.clone();
            assert!(!v4_echo_reply(&mut p), "{why}");
            assert_eq!(p, before, "{why}: touched");
        };
        let mut p = good.clone();
        p[30] ^= 1;
        refuse(p, "ICMP checksum");
        let mut p = good.clone();
        p[10] ^= 1;
        refuse(p, "IP checksum");
        refuse(good[..good.len() - 1].to_vec(), "truncated");
        for len in 0..8 {
            let mut m = [8u8, 0, 0, 0, 0, 0, 0, 0][..len].to_vec();
            if len >= 4 {
                fill_icmp_checksum(&mut m, 0);
            }
            refuse(
                packet4(HOST, ROUTER, PROTO_ICMP, &[], &m),
                "short ICMP header",
            );
        }
        for ty in [0, 13, 3, 11] {
            refuse(icmp4(HOST, ROUTER, ty, &[0; 60]), "not a request");
        }
        for frag in [0x2000, 0x0001, 0x2001] {
            let mut p = good.clone();
            set_frag(&mut p, frag);
            refuse(p, "fragment");
        }
        refuse(packet4(HOST, ROUTER, 17, &[], &good[20..]), "not ICMP");
        for dst in [0xffff_ffff, 0xe000_0001] {
            refuse(echo4(HOST, dst), "to broadcast or multicast");
        }
        for src in [0, 0xe000_0001, 0xffff_ffff, 0x7f00_0001] {
            refuse(echo4(src, ROUTER), "from a non-host");
        }
    }

    #[test]
    fn v6_errors_are_allowed_about_ordinary_packets() {
        for kind in ALL_V6 {
            assert!(!forbidden6(&udp6(A, B, 100), kind));
            for ty in [128, 129, 133, 135, 255] {
                assert!(
                    !forbidden6(&icmp6(A, B, &[], ty, &[0; 4]), kind),
                    "type {ty}"
                );
            }
            // An echo request behind a hop-by-hop header.
            let hbh = [58, 0, 1, 4, 0, 0, 0, 0];
            assert!(!forbidden6(&icmp6(A, B, &hbh, 128, &[0; 4]), kind));
            // A later fragment: what it carries is unknown; Linux answers it.
            let frag = packet6(A, B, 44, &[58, 0, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
            assert!(!forbidden6(&frag, kind));
        }
        // PacketTooBig may be sent about a packet to a multicast group.
        let to_group = udp6(A, 0xff0e << 112 | 0x101, 1500);
        assert!(!forbidden6(
            &to_group,
            Icmp6Error::PacketTooBig { mtu: 1280 }
        ));
    }

    #[test]
    fn v6_errors_about_errors_multicast_and_non_hosts_are_forbidden() {
        for kind in ALL_V6 {
            for ty in [1, 2, 3, 4, 100, 127] {
                assert!(
                    forbidden6(&icmp6(A, B, &[], ty, &[0; 4]), kind),
                    "type {ty}"
                );
                // Also behind extension headers.
                let ext = [60, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0];
                assert!(
                    forbidden6(&icmp6(A, B, &ext, ty, &[0; 4]), kind),
                    "type {ty}"
                );
            }
            // ICMPv6 header cut short; padding after the packet does not count.
            for len in 0..8 {
                let p = packet6(A, B, 58, &[128, 0, 0, 0, 0, 0, 0, 0][..len]);
                assert!(forbidden6(&p, kind), "{len} ICMPv6 bytes");
                let mut padded = p.clone();
                padded.resize(64, 0);
                assert!(forbidden6(&padded, kind));
            }
            // Extension headers running past the end.
            assert!(forbidden6(
                &packet6(A, B, 0, &[17, 1, 0, 0, 0, 0, 0, 0]),
                kind
            ));
            // From a source that is not one node.
            for src in [0, 0xff02 << 112 | 1] {
                assert!(forbidden6(&udp6(src, B, 100), kind));
            }
            // To multicast: all but PacketTooBig.
            let to_group = udp6(A, 0xff02 << 112 | 1, 100);
            let ptb = matches!(kind, Icmp6Error::PacketTooBig { .. });
            assert_eq!(forbidden6(&to_group, kind), !ptb, "{kind:?}");
        }
        // A header that does not match the slice.
        let p = udp6(A, B, 100);
        let mut h = ipv6::parse(&p).unwrap();
        h.next_header = 58;
        h.payload_len = usize::MAX;
        assert!(v6_error_forbidden(&p, &h, Icmp6Error::NoRoute));
    }

    fn check_v6_error(orig: &[u8], kind: Icmp6Error, out: &[u8], n: usize) {
        let h = ipv6::parse(&out[..n]).expect("a valid packet");
        assert!(n <= V6_ERROR_MAX);
        assert_eq!(h.payload_len + 40, n);
        assert_eq!((h.src, h.next_header, h.hop_limit), (ROUTER6, 58, 64));
        assert_eq!(&out[..4], &[0x60, 0, 0, 0]);
        assert_eq!(&out[24..40], &orig[8..24], "to the original's source");
        let icmp = &out[40..n];
        let sum = checksum::pseudo6(
            out[8..24].try_into().unwrap(),
            out[24..40].try_into().unwrap(),
            icmp.len() as u32,
            58,
        );
        assert!(checksum::verify(icmp, sum), "ICMPv6 checksum");
        let (want_type, want_code, want_rest) = match kind {
            Icmp6Error::TimeExceeded => (3, 0, 0),
            Icmp6Error::NoRoute => (1, 0, 0),
            Icmp6Error::AdminProhibited => (1, 1, 0),
            Icmp6Error::AddressUnreachable => (1, 3, 0),
            Icmp6Error::PacketTooBig { mtu } => (2, 0, mtu),
        };
        assert_eq!((icmp[0], icmp[1]), (want_type, want_code), "{kind:?}");
        assert_eq!(
            u32::from_be_bytes(icmp[4..8].try_into().unwrap()),
            want_rest
        );
        let quoted = &icmp[8..];
        let orig_len = 40 + usize::from(u16::from_be_bytes([orig[4], orig[5]]));
        assert_eq!(quoted.len(), orig_len.min(1232));
        assert_eq!(quoted, &orig[..quoted.len()]);
    }

    #[test]
    fn v6_error_of_each_kind() {
        for total in [40, 48, 100, 1231, 1232, 1233, 1500, 9000, 65_575] {
            let orig = udp6(A, B, total.max(48));
            let orig = if total == 40 {
                packet6(A, B, 59, &[])
            } else {
                orig
            };
            for kind in ALL_V6 {
                let mut out = vec![0x55u8; 2000];
                let n = v6_error(&orig, kind, ROUTER6, &mut out);
                assert_eq!(n, 48 + orig.len().min(1232), "total {total}");
                check_v6_error(&orig, kind, &out, n);
                assert!(out[n..].iter().all(|&b| b == 0x55));
                assert!(
                    forbidden6(&out[..n], Icmp6Error::NoRoute),
                    "no error about an error"
                );
            }
        }
        let mut orig = udp6(A, B, 50);
        orig.resize(64, 0xee);
        let mut out = [0u8; 1280];
        let n = v6_error(&orig, Icmp6Error::NoRoute, ROUTER6, &mut out);
        assert_eq!(n, 98);
        check_v6_error(&orig, Icmp6Error::NoRoute, &out, n);
        for mtu in [0, 1280, u32::MAX] {
            let kind = Icmp6Error::PacketTooBig { mtu };
            let orig = udp6(A, B, 1500);
            let n = v6_error(&orig, kind, ROUTER6, &mut out);
            check_v6_error(&orig, kind, &out, n);
        }
    }

    #[test]
    fn v6_error_refuses_small_buffers_and_invalid_originals() {
        let orig = udp6(A, B, 100);
        let mut out = [0u8; 1279];
        assert_eq!(v6_error(&orig, Icmp6Error::NoRoute, ROUTER6, &mut out), 0);
        assert_eq!(out, [0; 1279]);
        let mut out = [0u8; 1280];
        assert_eq!(
            v6_error(&orig[..39], Icmp6Error::NoRoute, ROUTER6, &mut out),
            0
        );
        assert_eq!(
            v6_error(&orig[..99], Icmp6Error::NoRoute, ROUTER6, &mut out),
            0
        );
        let mut bad = orig.clone();
        bad[0] = 0x45;
        assert_eq!(v6_error(&bad, Icmp6Error::NoRoute, ROUTER6, &mut out), 0);
        assert_eq!(out, [0; 1280]);
    }

    #[test]
    fn v6_echo_reply_round_trip() {
        let group = 0xff02 << 112 | 1;
        for (dst, from) in [(ROUTER6, ROUTER6), (group, ROUTER6)] {
            let req = echo6(A, dst);
            let mut p = req.clone();
            p[1] = 0x0a; // traffic class and flow label are kept
            p.resize(req.len() + 6, 0xee);
            assert!(v6_echo_reply(&mut p, from));
            let h = ipv6::parse(&p).unwrap();
            assert_eq!(
                (h.src, h.dst, h.hop_limit, h.next_header),
                (from, A, 64, 58)
            );
            assert_eq!(h.payload_len + 40, req.len());
            assert_eq!(p[1..7], [0x0a, 0, 0, 0, 64, 58]);
            let icmp = &p[40..req.len()];
            assert_eq!((icmp[0], icmp[1]), (129, 0));
            assert_eq!(icmp[4..], req[44..]);
            assert!(checksum::verify(icmp, pseudo(from, A, icmp.len())));
            assert_eq!(p[req.len()..], [0xee; 6]);
            let before = p.clone();
            assert!(!v6_echo_reply(&mut p, from), "a reply is not a request");
            assert_eq!(p, before);
        }
    }

    #[test]
    fn v6_echo_reply_refuses_what_is_not_a_valid_request() {
        let good = echo6(A, ROUTER6);
        let refuse = |mut p: Vec<u8>, from: u128, why: &str| {
            let before = p.clone();
            assert!(!v6_echo_reply(&mut p, from), "{why}");
            assert_eq!(p, before, "{why}: touched");
        };
        let mut p = good.clone();
        p[50] ^= 1;
        refuse(p, ROUTER6, "checksum");
        let mut p = good.clone();
        p[8] ^= 1;
        refuse(p, ROUTER6, "checksum covers the pseudo-header");
        refuse(good[..good.len() - 1].to_vec(), ROUTER6, "truncated");
        for len in 0..8 {
            refuse(
                packet6(A, ROUTER6, 58, &[128, 0, 0, 0, 0, 0, 0, 0][..len]),
                ROUTER6,
                "short",
            );
        }
        refuse(icmp6(A, ROUTER6, &[], 1, &[0; 60]), ROUTER6, "an error");
        refuse(
            icmp6(A, ROUTER6, &[], 8, &[0; 60]),
            ROUTER6,
            "ICMP type, not ICMPv6",
        );
        refuse(
            icmp6(A, ROUTER6, &[58, 0, 1, 4, 0, 0, 0, 0], 128, &[0; 8]),
            ROUTER6,
            "extension header",
        );
        refuse(echo6(0, ROUTER6), ROUTER6, "from ::");
        refuse(echo6(0xff02 << 112 | 1, ROUTER6), ROUTER6, "from multicast");
        refuse(good.clone(), 0xff02 << 112 | 1, "reply from multicast");
        refuse(good.clone(), 0, "reply from ::");
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = SplitMix64(0x5eed_1c3b);
        let mut out = vec![0u8; 1280];
        for i in 0..20_000 {
            let len = rng.below(200) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| rng.u32() as u8).collect();
            if i % 2 == 0 && len >= 40 {
                // Plausible headers, so the deeper checks are reached.
                if i % 4 == 0 {
                    p[0] = 0x45 + rng.below(3) as u8;
                    p[2..4].copy_from_slice(&(rng.below(len as u32 + 1) as u16).to_be_bytes());
                    p[9] = [1, 17, 58][rng.below(3) as usize];
                    let hl = usize::from(p[0] & 0xf) * 4;
                    ipv4::fill_checksum(&mut p[..hl]);
                } else {
                    p[0] = 0x60;
                    p[4..6].copy_from_slice(&(rng.below(len as u32 - 39) as u16).to_be_bytes());
                    p[6] = [0, 44, 58, 60][rng.below(4) as usize];
                }
            }
            if let Ok(h) = ipv4::parse(&p) {
                let _ = v4_error_forbidden(&p, &h);
                for kind in ALL_V4 {
                    let n = v4_error(&p, kind, ROUTER, 1, &mut out);
                    assert!(n > 0 && ipv4::parse(&out[..n]).is_ok());
                }
            }
            if let Ok(h) = ipv6::parse(&p) {
                for kind in ALL_V6 {
                    let _ = v6_error_forbidden(&p, &h, kind);
                    let n = v6_error(&p, kind, ROUTER6, &mut out);
                    assert!(n > 0 && ipv6::parse(&out[..n]).is_ok());
                }
            }
            let mut q = p.clone();
            if v4_echo_reply(&mut q) {
                assert_eq!(
                    q[..12],
                    {
                        let mut r = p.clone();
                        set_word(&mut r, 8, [64, p[9]], 10);
                        r
                    }[..12]
                );
            }
            let mut q = p.clone();
            let _ = v6_echo_reply(&mut q, ROUTER6);
            let _ = v4_error(&p, ALL_V4[0], ROUTER, 1, &mut out);
            let _ = v6_error(&p, ALL_V6[0], ROUTER6, &mut out);
        }
    }

    /// Finds a python3 that has scapy: the one on PATH, else the system's (a pyenv or
    /// virtualenv python3 may shadow the one Debian's python3-scapy went into).
    fn python_with_scapy() -> &'static str {
        for python in ["python3", "/usr/bin/python3"] {
            let ok = std::process::Command::new(python)
                .args(["-c", "import scapy"])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return python;
            }
        }
        panic!(
            "this test needs python3 with scapy, an independent decoder: \
             apt-get install python3-scapy (tests/install-deps.sh) or pip3 install scapy"
        );
    }

    const SCAPY_CHECKS: &str = r#"
import sys
from scapy.all import IP, ICMP, IPv6, ICMPv6PacketTooBig, IPerror, IPerror6, raw, defragment

pk, frags = {}, []
for line in sys.stdin:
    name, hx = line.split()
    if name == "frag":
        frags.append(bytes.fromhex(hx))
    else:
        pk[name] = bytes.fromhex(hx)

def check_v4(name, orig, ty, code):
    b, o = pk[name], IP(pk[orig])
    p = IP(b)
    assert p.version == 4 and p.ihl == 5 and p.len == len(b) <= 576, name
    assert p.ttl == 64 and p.proto == 1 and p.src == "10.0.0.254" and p.dst == o.src, name
    assert not p.flags.MF and p.frag == 0, name
    q = IP(b)
    del q.chksum
    del q[ICMP].chksum
    q = IP(raw(q))
    assert q.chksum == p.chksum, (name, "IP checksum", q.chksum, p.chksum)
    assert q[ICMP].chksum == p[ICMP].chksum, (name, "ICMP checksum")
    i = p[ICMP]
    assert (i.type, i.code) == (ty, code), (name, i.type, i.code)
    e = p[IPerror]
    assert (e.src, e.dst, e.id, e.proto, e.len) == (o.src, o.dst, o.id, o.proto, o.len), name
    assert b[28:] == pk[orig][:len(b) - 28], name
    return i

check_v4("time_exceeded", "udp", 11, 0)
i = check_v4("frag_needed", "tcp_df", 3, 4)
assert i.nexthopmtu == 1400, i.nexthopmtu

b, o = pk["too_big"], IPv6(pk["udp6"])
p = IPv6(b)
assert p.nh == 58 and p.hlim == 64 and p.plen + 40 == len(b) <= 1280
assert p.src == "2001:db8::fe" and p.dst == o.src
t = p[ICMPv6PacketTooBig]
assert t.type == 2 and t.code == 0 and t.mtu == 1280, (t.type, t.mtu)
q = IPv6(b)
del q[ICMPv6PacketTooBig].cksum
q = IPv6(raw(q))
assert q[ICMPv6PacketTooBig].cksum == t.cksum, "ICMPv6 checksum"
e = p[IPerror6]
assert (e.src, e.dst, e.nh) == (o.src, o.dst, 17)
assert b[48:] == pk["udp6"][:len(b) - 48]

big = IP(pk["big"])
assert len(frags) > 2
for i, f in enumerate(frags):
    p = IP(f)
    assert p.len == len(f) <= 1000, i
    q = IP(f)
    del q.chksum
    assert IP(raw(q)).chksum == p.chksum, (i, "fragment checksum")
    assert p.id == big.id and p.ttl == big.ttl and p.proto == big.proto
    assert p.flags.MF == (i < len(frags) - 1), i
    if i == 0:
        assert f[20:p.ihl * 4] == pk["big"][20:big.ihl * 4]
    else:
        opts = [o for o in p.options if o.option not in (0, 1)]
        assert opts and all(o.copy_flag for o in opts), (i, p.options)
whole = defragment([IP(f) for f in frags])
assert len(whole) == 1, whole
r = whole[0]
assert (r.src, r.dst, r.proto) == (big.src, big.dst, big.proto)
assert raw(r)[r.ihl * 4:] == pk["big"][big.ihl * 4:], "reassembled payload"
print("ok")
"#;

    /// Runs SCAPY_CHECKS on `packets` (name, bytes); its verdict and its output.
    fn scapy_checks(python: &str, packets: &[(&str, Vec<u8>)]) -> (bool, String) {
        use std::fmt::Write as _;
        use std::io::Write as _;
        use std::process::{Command, Stdio};

        let mut input = String::new();
        for (name, bytes) in packets {
            let _ = write!(input, "{name} ");
            for b in bytes {
                let _ = write!(input, "{b:02x}");
            }
            input.push('\n');
        }
        let mut child = Command::new(python)
            .args(["-c", SCAPY_CHECKS])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let result = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&result.stdout);
        let ok = result.status.success() && stdout.trim_end().ends_with("ok");
        let said = format!("{stdout}\n{}", String::from_utf8_lossy(&result.stderr));
        (ok, said)
    }

    /// An independent decoder: scapy reads what we build and checks it its own way.
    #[test]
    fn scapy_decodes_errors_and_fragments() {
        let mut packets: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut add = |name, bytes: &[u8]| packets.push((name, bytes.to_vec()));
        let mut out = [0u8; 1280];

        let mut udp = udp4(HOST, FAR, 1000);
        udp[8] = 1;
        ipv4::fill_checksum(&mut udp[..20]);
        let n = v4_error(&udp, Icmp4Error::TimeExceeded, ROUTER, 7, &mut out);
        add("udp", &udp);
        add("time_exceeded", &out[..n]);

        let mut tcp = packet4(HOST, FAR, 6, &[], &data(1480, 3));
        set_frag(&mut tcp, 0x4000);
        let n = v4_error(
            &tcp,
            Icmp4Error::FragmentationNeeded { mtu: 1400 },
            ROUTER,
            8,
            &mut out,
        );
        add("tcp_df", &tcp);
        add("frag_needed", &out[..n]);

        let udp6 = udp6(A, B, 1500);
        let n = v6_error(
            &udp6,
            Icmp6Error::PacketTooBig { mtu: 1280 },
            ROUTER6,
            &mut out,
        );
        add("udp6", &udp6);
        add("too_big", &out[..n]);

        let mut body = data(2940, 4);
        body[..8].copy_from_slice(&[0x9c, 0x40, 0x82, 0x9a, 0x0b, 0x7c, 0, 0]);
        let big = packet4(HOST, FAR, 17, &OPTIONS, &body);
        assert_eq!(big.len(), 3000);
        let frags = fragments(&big, 1000);
        assert_eq!(reassemble(&frags).0, body);
        add("big", &big);
        for f in &frags {
            add("frag", f);
        }

        let python = python_with_scapy();
        let (ok, said) = scapy_checks(python, &packets);
        assert!(ok, "scapy ({python}) disagrees:\n{said}");

        // The checks can fail: one bit of a fragment's payload changed is noticed.
        let last = packets.len() - 1;
        packets[last].1[100] ^= 1;
        let (ok, said) = scapy_checks(python, &packets);
        assert!(
            !ok && said.contains("reassembled payload"),
            "scapy ({python}) missed a corrupted fragment:\n{said}"
        );
    }
}
