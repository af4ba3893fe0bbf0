//! IPv4 headers (RFC 791): the checks a router makes before it forwards (RFC 1812
//! section 5.2.2), the TTL decrement, and a plain header for packets we originate.
//!
//! Everything works on the L3 slice, the bytes after the Ethernet header, which may
//! be longer than the packet (Ethernet pads short frames): the packet is the first
//! `total_len` bytes.

use super::checksum;

/// Length of a header without options.
pub const HEADER: usize = 20;
/// Protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;

/// Flags and fragment offset, bytes 6..8.
pub(crate) const FLAG_DF: u16 = 0x4000;
pub(crate) const FLAG_MF: u16 = 0x2000;
pub(crate) const OFFSET_MASK: u16 = 0x1fff;

/// The fields of a header that [`parse`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V4 {
    /// 20 to 60 bytes, options included.
    pub header_len: usize,
    /// At least `header_len`, at most the slice's length.
    pub total_len: usize,
    pub ttl: u8,
    pub protocol: u8,
    pub src: u32,
    pub dst: u32,
    pub dont_fragment: bool,
    /// MF set or offset non-zero.
    pub is_fragment: bool,
    /// Offset non-zero (not the first fragment): no upper-layer header in it.
    pub is_later_fragment: bool,
}

/// Why [`parse`] refused a packet; a router drops it silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V4Error {
    /// Shorter than a header without options.
    Truncated,
    /// Version field not 4.
    Version,
    /// IHL below 5.
    HeaderLength,
    /// Total length shorter than the header, or longer than what arrived.
    TotalLength,
    /// Header checksum wrong.
    Checksum,
}

/// Validates as RFC 1812 5.2.2 asks: length ≥ 20, version 4, IHL ≥ 5,
/// IHL*4 ≤ total length ≤ `l3.len()`, header checksum.
#[inline]
pub fn parse(l3: &[u8]) -> Result<V4, V4Error> {
    let Some(h) = l3.first_chunk::<HEADER>() else {
        return Err(V4Error::Truncated);
    };
    // Cheap rejections first: the checksum is the only part that reads every byte.
    if h[0] >> 4 != 4 {
        return Err(V4Error::Version);
    }
    let header_len = usize::from(h[0] & 0x0f) * 4;
    if header_len < HEADER {
        return Err(V4Error::HeaderLength);
    }
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total_len < header_len || total_len > l3.len() {
        return Err(V4Error::TotalLength);
    }
    if !checksum::verify(&l3[..header_len], 0) {
        return Err(V4Error::Checksum);
    }
    let frag = u16::from_be_bytes([h[6], h[7]]);
    Ok(V4 {
        header_len,
        total_len,
        ttl: h[8],
        protocol: h[9],
        src: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
        dst: u32::from_be_bytes([h[16], h[17], h[18], h[19]]),
        dont_fragment: frag & FLAG_DF != 0,
        is_fragment: frag & (FLAG_MF | OFFSET_MASK) != 0,
        is_later_fragment: frag & OFFSET_MASK != 0,
    })
}

/// TTL minus one with the checksum updated incrementally (RFC 1624); the caller
/// checked `ttl > 1` and a length of at least 20. A shorter slice, or a TTL of 0, is
/// left as it is rather than wrapped.
#[inline]
pub fn decrement_ttl(l3: &mut [u8]) {
    if let Some(h) = l3.first_chunk_mut::<HEADER>() {
        if h[8] != 0 {
            decrement_nonzero_ttl(h);
        }
    }
}

/// `decrement_ttl` for a header whose TTL is known to be above 0 (the fast path has
/// checked it for the whole batch).
#[inline(always)]
pub fn decrement_nonzero_ttl(h: &mut [u8; HEADER]) {
    debug_assert!(h[8] != 0);
    // TTL shares its 16-bit word with the protocol, and that word falls by 0x100:
    // RFC 1624's HC' = ~(~HC + ~m + m') with ~m + m' = 0xffff - 0x100. One fold is
    // enough: 0xffff + 0xfeff carries once and the folded sum stays below 0xffff.
    let check = u16::from_be_bytes([h[10], h[11]]);
    let s = u32::from(!check) + 0xfeff;
    let s = (s & 0xffff) + (s >> 16);
    h[8] = h[8].wrapping_sub(1);
    h[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

/// Writes a 20-byte header (no options, TOS 0, DF clear, the given id and TTL) with
/// its checksum; returns 20. Returns 0, writing nothing, if `out` is shorter than 20
/// or the total length would not fit in 16 bits.
pub fn write_header(
    out: &mut [u8],
    src: u32,
    dst: u32,
    protocol: u8,
    ttl: u8,
    payload_len: usize,
    id: u16,
) -> usize {
    let Some(h) = out.first_chunk_mut::<HEADER>() else {
        return 0;
    };
    let Some(total) = payload_len
        .checked_add(HEADER)
        .and_then(|t| u16::try_from(t).ok())
    else {
        return 0;
    };
    h[0] = 0x45;
    h[1] = 0;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].fill(0);
    h[8] = ttl;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src.to_be_bytes());
    h[16..20].copy_from_slice(&dst.to_be_bytes());
    fill_checksum(h);
    HEADER
}

/// Computes a header's checksum into bytes 10..12; `header` is exactly the header,
/// options included.
pub(crate) fn fill_checksum(header: &mut [u8]) {
    let Some(field) = header.get_mut(10..12) else {
        return;
    };
    field.fill(0);
    let c = checksum::finish(checksum::sum(header, 0));
    header[10..12].copy_from_slice(&c.to_be_bytes());
}

/// 224.0.0.0/4.
#[inline]
pub fn is_multicast(a: u32) -> bool {
    a >> 28 == 0xe
}

/// 255.255.255.255, the limited broadcast. (A subnet's directed broadcast depends on
/// the interface's prefix, which only the caller knows.)
#[inline]
pub fn is_broadcast(a: u32) -> bool {
    a == u32::MAX
}

/// 127.0.0.0/8.
#[inline]
pub fn is_loopback(a: u32) -> bool {
    a >> 24 == 127
}

/// 0.0.0.0.
#[inline]
pub fn is_unspecified(a: u32) -> bool {
    a == 0
}

/// 240.0.0.0/4, reserved ("class E"); includes the limited broadcast.
#[inline]
pub fn is_reserved(a: u32) -> bool {
    a >> 28 == 0xf
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::SplitMix64;

    /// A valid packet: header with `options` (a multiple of 4 bytes) and `payload`.
    pub(crate) fn packet(
        src: u32,
        dst: u32,
        protocol: u8,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        assert_eq!(options.len() & 3, 0);
        let hl = HEADER + options.len();
        let mut p = vec![0u8; hl + payload.len()];
        assert_eq!(
            write_header(
                &mut p,
                src,
                dst,
                protocol,
                33,
                payload.len() + options.len(),
                0x1234
            ),
            HEADER
        );
        p[0] = 0x40 | (hl / 4) as u8;
        p[20..hl].copy_from_slice(options);
        p[hl..].copy_from_slice(payload);
        fill_checksum(&mut p[..hl]);
        p
    }

    /// Sets bytes 6..8 and fixes the checksum.
    pub(crate) fn set_frag(p: &mut [u8], frag: u16) {
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        let hl = usize::from(p[0] & 0xf) * 4;
        fill_checksum(&mut p[..hl]);
    }

    #[test]
    fn parse_accepts_a_valid_header() {
        let p = packet(0x0a00_0001, 0xc0a8_0102, 17, &[], &[1, 2, 3, 4, 5]);
        let h = parse(&p).unwrap();
        assert_eq!(
            h,
            V4 {
                header_len: 20,
                total_len: 25,
                ttl: 33,
                protocol: 17,
                src: 0x0a00_0001,
                dst: 0xc0a8_0102,
                dont_fragment: false,
                is_fragment: false,
                is_later_fragment: false,
            }
        );
        // Ethernet padding after the packet is not part of it.
        let mut padded = p.clone();
        padded.resize(60, 0xee);
        assert_eq!(parse(&padded), Ok(h));
    }

    #[test]
    fn parse_accepts_options_and_reads_the_flags() {
        let mut p = packet(1, 2, 6, &[0x94, 4, 0, 0, 1, 1, 1, 0], &[9; 16]);
        let h = parse(&p).unwrap();
        assert_eq!((h.header_len, h.total_len), (28, 44));
        for (frag, df, is_frag, later) in [
            (0x4000, true, false, false),
            (0x2000, false, true, false),
            (0x0001, false, true, true),
            (0x3fff, false, true, true),
            (0x8000, false, false, false),
        ] {
            set_frag(&mut p, frag);
            let h = parse(&p).unwrap();
            assert_eq!(
                (h.dont_fragment, h.is_fragment, h.is_later_fragment),
                (df, is_frag, later),
                "{frag:#x}"
            );
        }
    }

    #[test]
    fn parse_rejects_each_error() {
        let good = packet(1, 2, 17, &[1, 1, 1, 1], &[0; 12]);
        assert!(parse(&good).is_ok());
        for len in 0..HEADER {
            assert_eq!(parse(&good[..len]), Err(V4Error::Truncated), "length {len}");
        }
        let mut p = good.clone();
        p[0] = 0x65;
        assert_eq!(parse(&p), Err(V4Error::Version));
        for ihl in 0..5u8 {
            let mut p = good.clone();
            p[0] = 0x40 | ihl;
            assert_eq!(parse(&p), Err(V4Error::HeaderLength), "IHL {ihl}");
        }
        // Total length shorter than the header, and longer than what arrived.
        for total in [0u16, 20, 23, 24, 30, 36, 37] {
            let mut p = good.clone();
            p[2..4].copy_from_slice(&total.to_be_bytes());
            fill_checksum(&mut p[..24]);
            let want = if (24..=36).contains(&total) {
                Ok(())
            } else {
                Err(V4Error::TotalLength)
            };
            assert_eq!(parse(&p).map(|_| ()), want, "total {total}");
        }
        assert_eq!(parse(&good[..good.len() - 1]), Err(V4Error::TotalLength));
        // The header is longer than the slice: IHL 15 with a 36-byte packet.
        let mut p = good.clone();
        p[0] = 0x4f;
        assert_eq!(parse(&p), Err(V4Error::TotalLength));
        for byte in 0..24 {
            let mut p = good.clone();
            p[byte] ^= 0x10;
            if matches!(byte, 0 | 2 | 3) {
                continue; // changes the version or length: another error
            }
            assert_eq!(parse(&p), Err(V4Error::Checksum), "byte {byte}");
        }
        // The checksum covers exactly the header: payload bytes do not matter.
        let mut p = good.clone();
        p[30] ^= 0xff;
        assert!(parse(&p).is_ok());
    }

    #[test]
    fn parse_never_panics_on_random_input() {
        let mut rng = SplitMix64(0x5eed_0004);
        let mut accepted = 0;
        for i in 0..50_000 {
            let len = rng.below(90) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| rng.u32() as u8).collect();
            // Make most of them plausible, so the later checks are reached too.
            if len >= HEADER && i % 4 != 0 {
                p[0] = 0x45 + rng.below(11) as u8;
                p[2..4].copy_from_slice(&(rng.below(len as u32 + 8) as u16).to_be_bytes());
                let hl = usize::from(p[0] & 0xf) * 4;
                if i % 3 != 0 && hl <= len {
                    fill_checksum(&mut p[..hl]);
                }
            }
            if let Ok(h) = parse(&p) {
                accepted += 1;
                assert!(
                    HEADER <= h.header_len && h.header_len <= h.total_len && h.total_len <= p.len()
                );
                assert!(checksum::verify(&p[..h.header_len], 0));
            }
        }
        assert!(
            accepted > 3_000,
            "only {accepted} accepted: the generator is too weak"
        );
    }

    fn recomputed(p: &[u8]) -> u16 {
        let mut h = p[..HEADER].to_vec();
        fill_checksum(&mut h);
        u16::from_be_bytes([h[10], h[11]])
    }

    fn check_decrement(mut p: Vec<u8>) {
        let ttl = p[8];
        decrement_ttl(&mut p);
        assert_eq!(p[8], ttl - 1);
        assert!(checksum::verify(&p[..HEADER], 0));
        assert_eq!(
            u16::from_be_bytes([p[10], p[11]]),
            recomputed(&p),
            "TTL {ttl}"
        );
    }

    #[test]
    fn decrement_ttl_equals_recomputation() {
        let mut rng = SplitMix64(0x5eed_0005);
        for _ in 0..20_000 {
            let mut p = packet(rng.u32(), rng.u32(), rng.u32() as u8, &[], &[]);
            p[1] = rng.u32() as u8;
            p[4..8].copy_from_slice(&rng.u32().to_be_bytes());
            p[8] = 1 + rng.below(255) as u8;
            fill_checksum(&mut p);
            check_decrement(p);
        }
        // Edges: TTL 255, 2, 1; protocol 0 and 255 (the borrow must not cross into it).
        for ttl in [255, 2, 1] {
            for proto in [0, 255] {
                let mut p = packet(0xffff_ffff, 0, proto, &[], &[]);
                p[8] = ttl;
                fill_checksum(&mut p);
                check_decrement(p);
            }
        }
    }

    #[test]
    fn decrement_ttl_with_checksum_at_zero_and_ffff() {
        // Choose the id so the header sums to 0xffff: the checksum is 0x0000, and
        // 0xffff (the other ones' complement zero) verifies too.
        let mut rng = SplitMix64(0x5eed_0006);
        for _ in 0..1_000 {
            let mut p = packet(rng.u32(), rng.u32(), rng.u32() as u8, &[], &[]);
            p[8] = 2 + rng.below(254) as u8;
            p[4..6].fill(0);
            p[10..12].fill(0);
            let s = checksum::finish(checksum::sum(&p, 0));
            p[4..6].copy_from_slice(&s.to_be_bytes());
            assert_eq!(recomputed(&p), 0);
            check_decrement(p.clone());
            p[10..12].copy_from_slice(&[0xff, 0xff]);
            assert!(checksum::verify(&p, 0));
            check_decrement(p);
        }
        // And a header whose new checksum lands on the edge: after the decrement it
        // sums to 0xffff.
        let mut p = packet(0x0a00_0001, 0x0a00_0002, 17, &[], &[]);
        p[8] = 65;
        p[4..6].fill(0);
        let mut after = p.clone();
        after[8] = 64;
        after[10..12].fill(0);
        let s = checksum::finish(checksum::sum(&after, 0));
        p[4..6].copy_from_slice(&s.to_be_bytes());
        fill_checksum(&mut p);
        let mut q = p.clone();
        decrement_ttl(&mut q);
        assert_eq!(&q[10..12], &[0, 0]);
        check_decrement(p);
    }

    #[test]
    fn decrement_ttl_ignores_what_it_cannot_do() {
        let mut short = [0x45u8, 0, 0, 20, 0, 0, 0, 0, 9];
        decrement_ttl(&mut short);
        assert_eq!(short[8], 9);
        let mut p = packet(1, 2, 3, &[], &[]);
        p[8] = 0;
        fill_checksum(&mut p);
        let before = p.clone();
        decrement_ttl(&mut p);
        assert_eq!(p, before);
    }

    #[test]
    fn write_header_round_trips_through_parse() {
        let mut out = [0xaau8; 64];
        assert_eq!(
            write_header(&mut out, 0xc000_0201, 0x0a0b_0c0d, 1, 64, 44, 0xbeef),
            20
        );
        let h = parse(&out).unwrap();
        assert_eq!(
            (h.src, h.dst, h.protocol, h.ttl),
            (0xc000_0201, 0x0a0b_0c0d, 1, 64)
        );
        assert_eq!(
            (h.header_len, h.total_len, h.is_fragment, h.dont_fragment),
            (20, 64, false, false)
        );
        assert_eq!(&out[4..6], &[0xbe, 0xef]);
        assert_eq!(out[1], 0);
        assert_eq!(write_header(&mut out[..19], 1, 2, 3, 4, 0, 5), 0);
        assert_eq!(write_header(&mut out, 1, 2, 3, 4, 65_516, 5), 0);
        assert_eq!(write_header(&mut out, 1, 2, 3, 4, usize::MAX, 5), 0);
        assert_eq!(write_header(&mut out, 1, 2, 3, 4, 65_515, 5), 20);
    }

    #[test]
    fn address_classes() {
        assert!(
            is_multicast(0xe000_0001) && is_multicast(0xefff_ffff) && !is_multicast(0xdfff_ffff)
        );
        assert!(!is_multicast(0xf000_0000));
        assert!(is_broadcast(0xffff_ffff) && !is_broadcast(0xffff_fffe));
        assert!(is_loopback(0x7f00_0001) && is_loopback(0x7fff_ffff) && !is_loopback(0x8000_0000));
        assert!(is_unspecified(0) && !is_unspecified(1));
        assert!(is_reserved(0xf000_0000) && is_reserved(u32::MAX) && !is_reserved(0xefff_ffff));
    }
}
