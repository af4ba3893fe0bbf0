//! IPv6 headers (RFC 8200): the checks before forwarding, the hop-limit decrement,
//! a plain header for packets we originate, the walk over extension headers to the
//! upper-layer header, and the address classes the ICMPv6 rules need.
//!
//! As for IPv4, the slice may be longer than the packet (Ethernet padding): the packet
//! is the first `HEADER + payload_len` bytes. IPv6 has no header checksum.

/// Length of the fixed header.
pub const HEADER: usize = 40;
/// Next-header value of ICMPv6.
pub const NEXT_ICMP6: u8 = 58;

const NEXT_HOP_BY_HOP: u8 = 0;
const NEXT_ROUTING: u8 = 43;
const NEXT_FRAGMENT: u8 = 44;
const NEXT_AH: u8 = 51;
const NEXT_DEST_OPTS: u8 = 60;
const NEXT_MOBILITY: u8 = 135;
const NEXT_HIP: u8 = 139;
const NEXT_SHIM6: u8 = 140;

/// The fields of a header that [`parse`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V6 {
    /// Bytes after the fixed header, extension headers included; `HEADER + payload_len`
    /// is at most the slice's length.
    pub payload_len: usize,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: u128,
    pub dst: u128,
}

/// Why [`parse`] refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V6Error {
    /// Shorter than the fixed header.
    Truncated,
    /// Version field not 6.
    Version,
    /// Payload length longer than what arrived.
    PayloadLength,
}

/// Accepts a slice of at least 40 bytes with version 6 and
/// `40 + payload_len ≤ l3.len()`. (A jumbogram's payload length of 0 reads as an
/// empty payload: jumbograms do not exist on Ethernet.)
#[inline]
pub fn parse(l3: &[u8]) -> Result<V6, V6Error> {
    let Some(h) = l3.first_chunk::<HEADER>() else {
        return Err(V6Error::Truncated);
    };
    if h[0] >> 4 != 6 {
        return Err(V6Error::Version);
    }
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    if HEADER + payload_len > l3.len() {
        return Err(V6Error::PayloadLength);
    }
    Ok(V6 {
        payload_len,
        next_header: h[6],
        hop_limit: h[7],
        src: addr(h, 8),
        dst: addr(h, 24),
    })
}

fn addr(h: &[u8; HEADER], at: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&h[at..at + 16]);
    u128::from_be_bytes(a)
}

/// Hop limit minus one; nothing to fix, IPv6 has no header checksum. The caller
/// checked `hop_limit > 1`; a hop limit of 0, or a slice shorter than the header, is
/// left as it is.
#[inline]
pub fn decrement_hop_limit(l3: &mut [u8]) {
    if let Some(h) = l3.first_chunk_mut::<HEADER>() {
        h[7] = h[7].saturating_sub(1);
    }
}

/// Writes a 40-byte header (traffic class and flow label 0); returns 40. Returns 0,
/// writing nothing, if `out` is shorter than 40 or `payload_len` does not fit in 16
/// bits.
pub fn write_header(
    out: &mut [u8],
    src: u128,
    dst: u128,
    next_header: u8,
    hop_limit: u8,
    payload_len: usize,
) -> usize {
    let (Some(h), Ok(len)) = (out.first_chunk_mut::<HEADER>(), u16::try_from(payload_len)) else {
        return 0;
    };
    h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    h[4..6].copy_from_slice(&len.to_be_bytes());
    h[6] = next_header;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&src.to_be_bytes());
    h[24..40].copy_from_slice(&dst.to_be_bytes());
    HEADER
}

/// What follows the extension headers; see [`upper_layer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upper {
    /// The upper-layer header (or "no next header", 59, or an ESP header, whose
    /// contents are opaque): its protocol number and offset in the packet, at most the
    /// packet's end.
    At { protocol: u8, offset: usize },
    /// A fragment with a non-zero offset: the upper-layer header is in the first one.
    LaterFragment,
}

/// Walks the extension headers (RFC 8200 section 4 and the IANA list of RFC 7045) to
/// the upper-layer header. None if an extension header runs past the packet's end.
pub fn upper_layer(l3: &[u8], hdr: &V6) -> Option<Upper> {
    let packet = l3.get(..HEADER.checked_add(hdr.payload_len)?)?;
    let mut next = hdr.next_header;
    let mut at = HEADER;
    // Every extension header is at least 8 bytes, so the walk ends within
    // payload_len / 8 steps.
    loop {
        let len = match next {
            NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_DEST_OPTS | NEXT_MOBILITY | NEXT_HIP
            | NEXT_SHIM6 => (usize::from(*packet.get(at + 1)?) + 1) * 8,
            NEXT_FRAGMENT => {
                let f = packet.get(at..at + 8)?;
                if u16::from_be_bytes([f[2], f[3]]) & 0xfff8 != 0 {
                    return Some(Upper::LaterFragment);
                }
                8
            }
            // Counted in 4-byte units, less two (RFC 4302).
            NEXT_AH => (usize::from(*packet.get(at + 1)?) + 2) * 4,
            protocol => {
                return Some(Upper::At {
                    protocol,
                    offset: at,
                })
            }
        };
        let ext = packet.get(at..at + len)?;
        next = ext[0];
        at += len;
    }
}

/// ff00::/8.
#[inline]
pub fn is_multicast(a: u128) -> bool {
    a >> 120 == 0xff
}

/// fe80::/10.
#[inline]
pub fn is_link_local(a: u128) -> bool {
    a >> 118 == 0xfe80 >> 6
}

/// `::`.
#[inline]
pub fn is_unspecified(a: u128) -> bool {
    a == 0
}

/// `::1`.
#[inline]
pub fn is_loopback(a: u128) -> bool {
    a == 1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::SplitMix64;

    pub(crate) const A: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001;
    pub(crate) const B: u128 = 0x2001_0db8_0001_0000_0000_0000_0000_0002;

    /// A packet with the given next header and payload (extension headers included).
    pub(crate) fn packet(src: u128, dst: u128, next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER + payload.len()];
        assert_eq!(
            write_header(&mut p, src, dst, next, 17, payload.len()),
            HEADER
        );
        p[HEADER..].copy_from_slice(payload);
        p
    }

    #[test]
    fn parse_accepts_a_valid_header() {
        let mut p = packet(A, B, NEXT_ICMP6, &[1, 2, 3]);
        p[1] = 0xab; // traffic class and flow label are not checked
        let want = V6 {
            payload_len: 3,
            next_header: 58,
            hop_limit: 17,
            src: A,
            dst: B,
        };
        assert_eq!(parse(&p), Ok(want));
        p.resize(64, 0xee);
        assert_eq!(parse(&p), Ok(want));
        assert_eq!(parse(&packet(A, B, 59, &[])).map(|h| h.payload_len), Ok(0));
    }

    #[test]
    fn parse_rejects_each_error() {
        let good = packet(A, B, 17, &[0; 8]);
        for len in 0..HEADER {
            assert_eq!(parse(&good[..len]), Err(V6Error::Truncated));
        }
        for v in [0u8, 4, 7, 15] {
            let mut p = good.clone();
            p[0] = v << 4;
            assert_eq!(parse(&p), Err(V6Error::Version));
        }
        assert_eq!(parse(&good[..47]), Err(V6Error::PayloadLength));
        let mut p = good.clone();
        p[4..6].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(parse(&p), Err(V6Error::PayloadLength));
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = SplitMix64(0x5eed_0601);
        let mut accepted = 0;
        for i in 0..50_000 {
            let len = rng.below(120) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| rng.u32() as u8).collect();
            if len >= HEADER && i % 4 != 0 {
                p[0] = 0x60;
                p[4] = 0;
                p[5] = rng.below(len as u32) as u8;
                p[6] = [0, 43, 44, 51, 60, 58, 135, 17][rng.below(8) as usize];
            }
            if let Ok(h) = parse(&p) {
                accepted += 1;
                assert!(HEADER + h.payload_len <= p.len());
                match upper_layer(&p, &h) {
                    Some(Upper::At { offset, .. }) => assert!(offset <= HEADER + h.payload_len),
                    Some(Upper::LaterFragment) | None => {}
                }
            }
            // Headers that do not match the slice must not make it panic either.
            let h = V6 {
                payload_len: rng.below(200) as usize,
                next_header: rng.u32() as u8,
                hop_limit: 0,
                src: 0,
                dst: 0,
            };
            let _ = upper_layer(&p, &h);
            decrement_hop_limit(&mut p);
        }
        let h = V6 {
            payload_len: usize::MAX,
            next_header: 0,
            hop_limit: 0,
            src: 0,
            dst: 0,
        };
        assert_eq!(upper_layer(&[0; 64], &h), None);
        assert!(accepted > 10_000);
    }

    #[test]
    fn decrement_hop_limit_edges() {
        for (before, after) in [(255u8, 254u8), (2, 1), (1, 0), (0, 0)] {
            let mut p = packet(A, B, 58, &[]);
            p[7] = before;
            decrement_hop_limit(&mut p);
            assert_eq!(p[7], after);
            assert_eq!(p[..7], packet(A, B, 58, &[])[..7]);
        }
        let mut short = [0x60u8; 39];
        decrement_hop_limit(&mut short);
        assert_eq!(short, [0x60; 39]);
    }

    #[test]
    fn write_header_round_trips_through_parse() {
        let mut out = [0xaau8; 48];
        assert_eq!(write_header(&mut out, A, B, 58, 64, 8), 40);
        assert_eq!(&out[..4], &[0x60, 0, 0, 0]);
        assert_eq!(
            parse(&out),
            Ok(V6 {
                payload_len: 8,
                next_header: 58,
                hop_limit: 64,
                src: A,
                dst: B
            })
        );
        assert_eq!(write_header(&mut out[..39], A, B, 58, 64, 0), 0);
        assert_eq!(write_header(&mut out, A, B, 58, 64, 65_536), 0);
        assert_eq!(write_header(&mut out, A, B, 58, 64, 65_535), 40);
    }

    #[test]
    fn upper_layer_walks_extension_headers() {
        let at = |p: &[u8]| upper_layer(p, &parse(p).unwrap());
        assert_eq!(
            at(&packet(A, B, 58, &[128, 0, 0, 0])),
            Some(Upper::At {
                protocol: 58,
                offset: 40
            })
        );
        // Hop-by-hop (8 bytes), destination options (16), routing (8), AH (12), then ICMPv6.
        let mut chain = vec![60, 0, 1, 4, 0, 0, 0, 0];
        chain.extend([43, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        chain.extend([51, 0, 0, 0, 0, 0, 0, 0]);
        chain.extend([58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        chain.extend([1, 0, 0, 0, 0, 0, 0, 0]);
        let p = packet(A, B, 0, &chain);
        assert_eq!(
            at(&p),
            Some(Upper::At {
                protocol: 58,
                offset: 84
            })
        );
        // The same chain cut inside each header.
        for cut in [0, 1, 7, 8, 9, 23, 24, 31, 32, 43] {
            assert_eq!(at(&packet(A, B, 0, &chain[..cut])), None, "cut at {cut}");
        }
        // Cut right after the last extension header: the upper layer starts at the end.
        assert_eq!(
            at(&packet(A, B, 0, &chain[..44])),
            Some(Upper::At {
                protocol: 58,
                offset: 84
            })
        );
        // Fragment header: first fragment (offset 0, M set) goes on, later ones stop.
        let first = packet(A, B, 44, &[58, 0, 0, 1, 0, 0, 0, 7, 128, 0]);
        assert_eq!(
            at(&first),
            Some(Upper::At {
                protocol: 58,
                offset: 48
            })
        );
        let later = packet(A, B, 44, &[58, 0, 0, 8, 0, 0, 0, 7, 128, 0]);
        assert_eq!(at(&later), Some(Upper::LaterFragment));
        // ESP and "no next header" end the walk.
        assert_eq!(
            at(&packet(A, B, 50, &[0; 8])),
            Some(Upper::At {
                protocol: 50,
                offset: 40
            })
        );
        assert_eq!(
            at(&packet(A, B, 60, &[59, 0, 0, 0, 0, 0, 0, 0])),
            Some(Upper::At {
                protocol: 59,
                offset: 48
            })
        );
        // Padding after the packet is not walked into.
        let mut padded = packet(A, B, 0, &chain[..8]);
        padded.extend([58, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(upper_layer(&padded, &parse(&padded).unwrap()), None);
    }

    #[test]
    fn address_classes() {
        assert!(
            is_multicast(0xff02 << 112 | 1)
                && is_multicast(u128::MAX)
                && !is_multicast(0xfe80 << 112)
        );
        assert!(
            is_link_local(0xfe80 << 112 | 1)
                && is_link_local(0xfebf << 112)
                && !is_link_local(0xfec0 << 112)
        );
        assert!(!is_link_local(0xfe7f << 112) && !is_link_local(A));
        assert!(is_unspecified(0) && !is_unspecified(1));
        assert!(is_loopback(1) && !is_loopback(0) && !is_loopback(A));
    }
}
