//! IPv4 fragmentation (RFC 791 section 3.2, "Fragmentation"), for a packet routed to
//! a link whose MTU it exceeds. Fragments are written one at a time into the caller's
//! buffers, straight from the original's bytes: nothing is allocated.

use super::ipv4::{self, FLAG_MF, HEADER, OFFSET_MASK};

/// Largest options area: IHL is at most 15 words.
const MAX_OPTIONS: usize = 40;
/// Every fragment but the last carries a multiple of this many payload bytes, the
/// unit of the offset field.
const UNIT: usize = 8;
/// The MTU every IPv4 link must have (RFC 791): a 60-byte header and 8 bytes.
const MIN_MTU: usize = 68;

/// Splits a packet into fragments of at most `mtu` bytes (RFC 791): fragment payloads
/// are multiples of 8 bytes except the last; the first fragment keeps all options,
/// later ones only those with the copied flag (type bit 0x80), padded to a 4-byte
/// multiple; offsets continue from the original's own offset (fragmenting a fragment),
/// MF is set on all but the last, and the last keeps the original's MF; total length
/// and checksum are rewritten in each. Everything else in the header (TOS, id, TTL,
/// the reserved flag) is the original's.
#[derive(Clone, Debug)]
pub struct Fragmenter<'a> {
    /// The original, without any padding after it.
    packet: &'a [u8],
    header_len: usize,
    /// The options later fragments carry, padded with end-of-options (0) bytes.
    later_options: [u8; MAX_OPTIONS],
    later_options_len: usize,
    mtu: usize,
    /// Payload bytes already written out.
    sent: usize,
    /// The original's offset, in bytes.
    base: usize,
    /// The original's MF flag, which its last fragment inherits.
    more: bool,
}

impl<'a> Fragmenter<'a> {
    /// None if the packet fits already, has DF set, or `mtu` is below 68 (then it
    /// could not always carry 8 payload bytes after the header); also if the packet is
    /// not a valid IPv4 packet (see [`ipv4::parse`]), or ends past offset 65535, where
    /// no reassembly could take it.
    pub fn new(l3: &'a [u8], mtu: usize) -> Option<Fragmenter<'a>> {
        let h = ipv4::parse(l3).ok()?;
        if h.total_len <= mtu || h.dont_fragment || mtu < MIN_MTU {
            return None;
        }
        let packet = &l3[..h.total_len];
        let frag = u16::from_be_bytes([packet[6], packet[7]]);
        let base = usize::from(frag & OFFSET_MASK) * UNIT;
        if base + (h.total_len - h.header_len) > usize::from(u16::MAX) {
            return None;
        }
        let mut later_options = [0u8; MAX_OPTIONS];
        let later_options_len = copied_options(&packet[HEADER..h.header_len], &mut later_options);
        Some(Fragmenter {
            packet,
            header_len: h.header_len,
            later_options,
            later_options_len,
            mtu,
            sent: 0,
            base,
            more: frag & FLAG_MF != 0,
        })
    }

    /// Writes the next fragment into `out`, returning its length; None when all have
    /// been written. `out` needs room for the fragment (at most `mtu` bytes): if it is
    /// shorter, nothing is written and None is returned without moving on.
    pub fn next_into(&mut self, out: &mut [u8]) -> Option<usize> {
        let payload = self.packet.get(self.header_len..)?;
        let rest = payload.get(self.sent..).filter(|r| !r.is_empty())?;
        let first = self.sent == 0;
        let header_len = if first {
            self.header_len
        } else {
            HEADER + self.later_options_len
        };
        let room = self.mtu.saturating_sub(header_len) & !(UNIT - 1);
        let take = rest.len().min(room);
        let last = take == rest.len();
        let total = header_len + take;
        let out = out.get_mut(..total)?;

        let (header, body) = out.split_at_mut(header_len);
        if first {
            header.copy_from_slice(&self.packet[..header_len]);
        } else {
            header[..HEADER].copy_from_slice(&self.packet[..HEADER]);
            header[0] = 0x40 | (header_len / 4) as u8;
            header[HEADER..].copy_from_slice(&self.later_options[..self.later_options_len]);
        }
        body.copy_from_slice(&rest[..take]);

        // Both fit in 16 bits: the fragment is no longer than the original, and new()
        // checked that the original's payload ends by offset 65535.
        header[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let reserved = u16::from_be_bytes([self.packet[6], self.packet[7]]) & 0x8000;
        let more = if last { self.more } else { true };
        let offset = ((self.base + self.sent) / UNIT) as u16;
        let frag = reserved | if more { FLAG_MF } else { 0 } | offset;
        header[6..8].copy_from_slice(&frag.to_be_bytes());
        ipv4::fill_checksum(header);

        self.sent += take;
        Some(total)
    }
}

/// Copies the options whose copied flag is set from `options` (the original's options
/// area) into `out`, and returns their length padded to a multiple of 4. A malformed
/// option (length below 2 or past the area) ends the copy there: what came before it
/// is kept, as Linux does.
fn copied_options(options: &[u8], out: &mut [u8; MAX_OPTIONS]) -> usize {
    const END: u8 = 0;
    const NOP: u8 = 1;
    const COPIED: u8 = 0x80;
    let mut at = 0;
    let mut len_out = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            END => break,
            NOP => {
                at += 1;
                continue;
            }
            _ => {}
        }
        let Some(len) = options
            .get(at + 1)
            .map(|&l| usize::from(l))
            .filter(|&l| l >= 2)
        else {
            break;
        };
        let Some(option) = options.get(at..at + len) else {
            break;
        };
        if kind & COPIED != 0 {
            // Never more than the input, which is at most MAX_OPTIONS bytes.
            let Some(dst) = out.get_mut(len_out..len_out + len) else {
                break;
            };
            dst.copy_from_slice(option);
            len_out += len;
        }
        at += len;
    }
    // `out` started zeroed: the padding is end-of-options bytes already.
    (len_out + 3) & !3
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::l3::checksum;
    use crate::l3::ipv4::tests::{packet, set_frag};
    use crate::l3::ipv4::V4;
    use crate::testing::SplitMix64;

    /// All the fragments, each checked against the rules that hold for any of them.
    pub(crate) fn fragments(p: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let mut f = Fragmenter::new(p, mtu).expect("needs fragmenting");
        let mut out = Vec::new();
        let mut buf = vec![0u8; mtu];
        while let Some(n) = f.next_into(&mut buf) {
            assert!(n <= mtu);
            let frag = buf[..n].to_vec();
            let h = ipv4::parse(&frag).expect("a valid packet");
            assert_eq!(h.total_len, n);
            assert!(checksum::verify(&frag[..h.header_len], 0));
            assert_eq!(frag[1], p[1], "TOS");
            assert_eq!(frag[4..6], p[4..6], "id");
            assert_eq!(frag[8..10], p[8..10], "TTL and protocol");
            assert_eq!(frag[12..20], p[12..20], "addresses");
            assert!(!h.dont_fragment);
            out.push(frag);
            assert!(out.len() < 10_000);
        }
        // Done is done.
        assert_eq!(f.next_into(&mut buf), None);
        out
    }

    fn offset_and_more(frag: &[u8]) -> (usize, bool) {
        let w = u16::from_be_bytes([frag[6], frag[7]]);
        (usize::from(w & OFFSET_MASK) * 8, w & FLAG_MF != 0)
    }

    /// Puts the payloads back together by offset, checking they tile without gaps,
    /// overlaps, or odd sizes; returns the payload, the first offset and the last MF.
    pub(crate) fn reassemble(frags: &[Vec<u8>]) -> (Vec<u8>, usize, bool) {
        let mut payload = Vec::new();
        let first_offset = offset_and_more(&frags[0]).0;
        let mut last_more = false;
        for (i, f) in frags.iter().enumerate() {
            let h = ipv4::parse(f).unwrap();
            let (offset, more) = offset_and_more(f);
            assert_eq!(
                offset,
                first_offset + payload.len(),
                "fragment {i} leaves a gap or overlaps"
            );
            let body = &f[h.header_len..h.total_len];
            if i + 1 < frags.len() {
                assert!(more, "MF on all but the last");
                assert_eq!(
                    body.len() & 7,
                    0,
                    "fragment {i}: payload not a multiple of 8"
                );
            }
            payload.extend_from_slice(body);
            last_more = more;
        }
        (payload, first_offset, last_more)
    }

    /// Router alert (copied), NOP, record route (not copied), a copied security-like
    /// option of odd length, end of list: 40 bytes.
    pub(crate) const OPTIONS: [u8; 40] = [
        0x94, 4, 0, 0, // router alert, copied
        1, // NOP
        7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, // record route, not copied, 11 bytes
        0x82, 5, 0xaa, 0xbb, 0xcc, // copied, 5 bytes
        0x44, 8, 5, 0, 0, 0, 0, 0, // timestamp, not copied
        0x88, 4, 0x12, 0x34, // stream id, copied
        0, 0, 0, 0, 0, 0, 0, // end of list
    ];
    /// The copied ones, in order, padded.
    const COPIED: [u8; 16] = [
        0x94, 4, 0, 0, 0x82, 5, 0xaa, 0xbb, 0xcc, 0x88, 4, 0x12, 0x34, 0, 0, 0,
    ];

    fn payload(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = SplitMix64(seed);
        (0..len).map(|_| rng.u32() as u8).collect()
    }

    #[test]
    fn fragments_reassemble_to_the_original() {
        let data = payload(2980, 1);
        let p = packet(0x0a00_0001, 0x0a00_0002, 17, &[], &data);
        assert_eq!(p.len(), 3000);
        for mtu in [68, 69, 75, 76, 100, 576, 1000, 1280, 1500, 1501, 2999] {
            let frags = fragments(&p, mtu);
            let (got, first, more) = reassemble(&frags);
            assert_eq!(got, data, "mtu {mtu}");
            assert_eq!((first, more), (0, false));
            // As few as the MTU allows: all but the last are full.
            let per = (mtu - 20) & !7;
            assert_eq!(frags.len(), data.len().div_ceil(per), "mtu {mtu}");
        }
        // mtu 68 carries 48 payload bytes after a plain header.
        assert_eq!(fragments(&p, 68)[0].len(), 68);
        assert_eq!(
            fragments(&p, 1500).iter().map(Vec::len).collect::<Vec<_>>(),
            [1500, 1500, 40]
        );
    }

    #[test]
    fn options_first_fragment_all_later_only_copied() {
        let data = payload(2960, 2);
        let p = packet(0xc0a8_0001, 0xc0a8_0102, 6, &OPTIONS, &data);
        let frags = fragments(&p, 1000);
        assert_eq!(reassemble(&frags).0, data);
        assert_eq!(
            frags[0][20..60],
            p[20..60],
            "first fragment keeps the whole options area"
        );
        for f in &frags[1..] {
            assert_eq!(f[0], 0x49, "later fragments: 20 + 16 bytes of header");
            assert_eq!(f[20..36], COPIED);
        }
        // The first fragment's 60-byte header leaves 936 bytes, the later ones' 36 leave 960.
        assert_eq!(
            frags.iter().map(Vec::len).collect::<Vec<_>>(),
            [996, 996, 996, 140]
        );

        // No copied option at all: later fragments have a bare header.
        let p = packet(1, 2, 17, &[7, 7, 4, 0, 0, 0, 0, 1], &data);
        let frags = fragments(&p, 576);
        assert_eq!(frags[0][0], 0x47);
        assert!(frags[1..].iter().all(|f| f[0] == 0x45));
        assert_eq!(reassemble(&frags).0, data);

        // A 60-byte header and mtu 68: 8 bytes in the first fragment.
        let frags = fragments(&packet(1, 2, 17, &OPTIONS, &data[..100]), 68);
        assert_eq!(frags[0].len(), 68);
        assert_eq!(frags[1].len(), 36 + 32);
        assert_eq!(reassemble(&frags).0, data[..100]);
    }

    #[test]
    fn copied_options_rules() {
        let copy = |o: &[u8]| -> Vec<u8> {
            let mut out = [0u8; MAX_OPTIONS];
            let n = copied_options(o, &mut out);
            out[..n].to_vec()
        };
        assert_eq!(copy(&OPTIONS), COPIED);
        assert_eq!(copy(&[]), [0u8; 0]);
        assert_eq!(copy(&[1, 1, 1, 1]), [0u8; 0]);
        assert_eq!(copy(&[0x83, 3, 1, 0]), [0x83, 3, 1, 0]);
        // Options after end-of-list are not options.
        assert_eq!(copy(&[0, 0x83, 3, 1]), [0u8; 0]);
        // Malformed: the copy stops there, keeping what came before.
        assert_eq!(copy(&[0x83, 3, 1, 0x83, 1, 0, 0, 0]), [0x83, 3, 1, 0]);
        assert_eq!(copy(&[0x83, 3, 1, 0x83, 0, 0, 0, 0]), [0x83, 3, 1, 0]);
        assert_eq!(copy(&[0x83, 3, 1, 0x83, 9, 0, 0, 0]), [0x83, 3, 1, 0]);
        assert_eq!(copy(&[0x83]), [0u8; 0]);
        // A copied option filling the whole area.
        let mut full = [0u8; 40];
        full[0] = 0x83;
        full[1] = 40;
        assert_eq!(copy(&full), full);
    }

    #[test]
    fn fragment_of_a_fragment_keeps_offsets_and_mf() {
        let data = payload(1600, 3);
        for orig_more in [true, false] {
            let mut p = packet(1, 2, 17, &[0x94, 4, 0, 0], &data);
            set_frag(&mut p, (if orig_more { FLAG_MF } else { 0 }) | 100);
            let frags = fragments(&p, 600);
            let (got, first, more) = reassemble(&frags);
            assert_eq!(got, data);
            assert_eq!(first, 800, "offsets continue from the original's");
            assert_eq!(more, orig_more, "the last keeps the original's MF");
            // The original already had an offset: its first fragment keeps all options.
            assert_eq!(frags[0][20..24], [0x94, 4, 0, 0]);
        }
        // The reserved flag is carried along.
        let mut p = packet(1, 2, 17, &[], &data);
        set_frag(&mut p, 0x8000);
        assert!(fragments(&p, 1000).iter().all(|f| f[6] & 0x80 != 0));
    }

    #[test]
    fn nothing_to_do_or_not_allowed() {
        let data = payload(1480, 4);
        let p = packet(1, 2, 17, &[], &data);
        assert!(Fragmenter::new(&p, 1500).is_none(), "exactly fits");
        assert!(Fragmenter::new(&p, 9000).is_none());
        assert!(Fragmenter::new(&p, 1499).is_some());
        let mut df = p.clone();
        set_frag(&mut df, 0x4000);
        assert!(Fragmenter::new(&df, 1000).is_none(), "DF");
        assert!(Fragmenter::new(&p, 67).is_none());
        assert!(Fragmenter::new(&p, 0).is_none());
        assert!(Fragmenter::new(&p, 68).is_some());
        // Ethernet padding is not part of the packet: it still fits.
        let mut padded = p.clone();
        padded.resize(1600, 0);
        assert!(Fragmenter::new(&padded, 1500).is_none());
        // Not a valid packet.
        let mut bad = p.clone();
        bad[10] ^= 1;
        assert!(Fragmenter::new(&bad, 1000).is_none());
        assert!(Fragmenter::new(&p[..1000], 576).is_none());
        // A fragment that would end past offset 65535.
        let mut far = p.clone();
        set_frag(&mut far, 8100);
        assert!(Fragmenter::new(&far, 1000).is_none());
        set_frag(&mut far, (65_535 - 1480) / 8);
        let frags = fragments(&far, 1000);
        assert_eq!(reassemble(&frags).0, data);
    }

    #[test]
    fn a_short_buffer_writes_nothing_and_does_not_advance() {
        let data = payload(3000, 5);
        let p = packet(1, 2, 17, &[], &data);
        let mut f = Fragmenter::new(&p, 1500).unwrap();
        let mut small = [0u8; 1499];
        assert_eq!(f.next_into(&mut small), None);
        assert_eq!(small, [0; 1499]);
        let mut buf = [0u8; 1500];
        assert_eq!(f.next_into(&mut buf), Some(1500));
        assert_eq!(&buf[20..], &data[..1480]);
        // The last one is short, and so may its buffer be.
        assert_eq!(f.next_into(&mut buf), Some(1500));
        let mut last = [0u8; 60];
        assert_eq!(f.next_into(&mut last), Some(60));
        assert_eq!(f.next_into(&mut buf), None);
    }

    #[test]
    fn random_packets_and_garbage() {
        let mut rng = SplitMix64(0x5eed_f4a9);
        let mut buf = vec![0u8; 70_000];
        for i in 0..3_000 {
            let mtu = 60 + rng.below(1500) as usize;
            if i % 2 == 0 {
                // Garbage, with a plausible first byte and length now and then.
                let len = rng.below(3000) as usize;
                let mut p: Vec<u8> = (0..len).map(|_| rng.u32() as u8).collect();
                if len >= 60 {
                    p[0] = 0x45 + rng.below(11) as u8;
                    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                    p[6] &= 0xbf;
                    let hl = usize::from(p[0] & 0xf) * 4;
                    ipv4::fill_checksum(&mut p[..hl]);
                }
                if let Some(mut f) = Fragmenter::new(&p, mtu) {
                    let mut n = 0;
                    while let Some(len) = f.next_into(&mut buf) {
                        assert!(len <= mtu && ipv4::parse(&buf[..len]).is_ok());
                        n += 1;
                        assert!(n < 2_000);
                    }
                }
            } else {
                // Valid, with random options (a malformed tail included now and then).
                let words = rng.below(11) as usize;
                let options: Vec<u8> = (0..words * 4).map(|_| rng.u32() as u8).collect();
                let data = payload(rng.below(4000) as usize, rng.u64());
                let mut p = packet(rng.u32(), rng.u32(), 17, &options, &data);
                let frag = (rng.below(2) as u16 * FLAG_MF) | rng.below(64) as u16;
                set_frag(&mut p, frag);
                let hdr: V4 = ipv4::parse(&p).unwrap();
                if hdr.total_len <= mtu || mtu < 68 {
                    assert!(Fragmenter::new(&p, mtu).is_none());
                    continue;
                }
                let frags = fragments(&p, mtu);
                let (got, first, more) = reassemble(&frags);
                assert_eq!(got, data);
                assert_eq!(
                    (first, more),
                    (usize::from(frag & 0x1fff) * 8, frag & FLAG_MF != 0)
                );
                assert_eq!(frags[0][20..hdr.header_len], p[20..hdr.header_len]);
            }
        }
    }
}
