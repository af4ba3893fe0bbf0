//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624), shared by
//! IPv4, ICMP, ICMPv6 and ND.

/// Adds `data`, as big-endian 16-bit words (an odd last byte padded with zero), to the
/// partial sum `initial`. The result is not folded, so partial sums can be chained.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    // Eight bytes per step into a 64-bit accumulator: the carries collect in the upper
    // half and are folded once at the end.
    let mut acc = u64::from(initial);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes(c.try_into().expect("8 bytes"));
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = rest.remainder() {
        acc += u64::from(*b) << 8;
    }
    // Three folds always fit the sum in 32 bits (a loop until it fits would be a
    // data-dependent branch, mispredicted per packet on the forwarding path).
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// Folds a partial sum to 16 bits and complements it: the value for the checksum field.
#[inline]
pub fn finish(sum: u32) -> u16 {
    // Two folds always fit 32 bits into 16, without a data-dependent branch.
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// Whether data that includes its own checksum field sums correctly.
#[inline]
pub fn verify(data: &[u8], initial: u32) -> bool {
    finish(sum(data, initial)) == 0
}

/// Whether a 20-byte IPv4 header (no options), checksum field included, sums
/// correctly: the forwarding path's check, with no loop and no folding.
///
/// Two facts of the ones' complement sum make it cheap. It is the plain integer sum of
/// the 16-bit words taken modulo 0xffff (2^16 is 1 modulo 0xffff, so the carries that
/// wrap around are already counted), with a non-zero multiple read as 0xffff; and so
/// the words may be added 32 bits at a time, in either byte order (swapping a word's
/// bytes multiplies it by 256 modulo 0xffff, which is prime to 256). A header is
/// correct when that sum is 0xffff: the integer sum of its five native 32-bit words is
/// a non-zero multiple of 0xffff.
#[inline(always)]
pub fn verify_ipv4_header(h: &[u8; 20]) -> bool {
    let w = |at: usize| u64::from(u32::from_ne_bytes(h[at..at + 4].try_into().expect("4")));
    let s = w(0) + w(4) + w(8) + w(12) + w(16);
    s % 0xffff == 0 && s != 0
}

/// The checksum field after one 16-bit word of the covered data changed from `old` to
/// `new` (RFC 1624, equation 3: HC' = ~(~HC + ~m + m')).
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!check) + u32::from(!old) + u32::from(new);
    finish(s)
}

/// The partial sum of the IPv6 pseudo-header (RFC 8200, section 8.1) that ICMPv6, UDP
/// and TCP checksums start from.
#[inline]
pub fn pseudo6(src: &[u8; 16], dst: &[u8; 16], upper_len: u32, next_header: u8) -> u32 {
    let s = sum(src, 0);
    let s = sum(dst, s);
    let s = sum(&upper_len.to_be_bytes(), s);
    sum(&[0, 0, 0, next_header], s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SplitMix64;

    /// RFC 1071's definition, word by word, as the reference.
    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for (i, b) in data.iter().enumerate() {
            s += if i % 2 == 0 {
                u32::from(*b) << 8
            } else {
                u32::from(*b)
            };
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn matches_the_definition_on_random_data() {
        let mut rng = SplitMix64(7);
        for len in 0..200 {
            let data: Vec<u8> = (0..len).map(|_| rng.u32() as u8).collect();
            assert_eq!(finish(sum(&data, 0)), naive(&data), "length {len}");
        }
        // All ones: the carries must wrap around many times.
        let ff = vec![0xffu8; 9000];
        assert_eq!(finish(sum(&ff, 0)), naive(&ff));
    }

    #[test]
    fn a_known_ipv4_header_verifies() {
        // From RFC 1071's era of examples: a header whose checksum field is 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verify(&hdr, 0));
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(finish(sum(&zeroed, 0)), 0xb861);
    }

    #[test]
    fn header_verification_agrees_with_the_definition() {
        let mut rng = SplitMix64(5);
        let mut good = 0;
        for i in 0..200_000 {
            let mut h = [0u8; 20];
            for b in h.iter_mut() {
                *b = rng.u32() as u8;
            }
            if i % 2 == 0 {
                // Half the cases with a correct checksum, the rest almost all wrong.
                h[10] = 0;
                h[11] = 0;
                let c = finish(sum(&h, 0));
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let want = verify(&h, 0);
            good += usize::from(want);
            assert_eq!(verify_ipv4_header(&h), want, "{h:02x?}");
        }
        assert!(good >= 100_000);
        // The edge cases: all zero (sums to 0, not 0xffff), all ones (0xffff).
        assert!(!verify_ipv4_header(&[0; 20]));
        assert_eq!(verify_ipv4_header(&[0xff; 20]), verify(&[0xff; 20], 0));
    }

    #[test]
    fn incremental_update_equals_recomputation() {
        let mut rng = SplitMix64(11);
        for _ in 0..10_000 {
            let mut data: Vec<u8> = (0..20).map(|_| rng.u32() as u8).collect();
            data[10] = 0;
            data[11] = 0;
            let check = finish(sum(&data, 0));
            let at = 2 * rng.below(10) as usize;
            if at == 10 {
                continue;
            }
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            let new = rng.u32() as u16;
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let full = finish(sum(&data, 0));
            let inc = update16(check, old, new);
            // 0x0000 and 0xffff are the same value in ones' complement.
            assert!(
                inc == full || (inc == 0xffff && full == 0) || (inc == 0 && full == 0xffff),
                "old {old:#x} new {new:#x}: incremental {inc:#x}, full {full:#x}"
            );
        }
    }
}
