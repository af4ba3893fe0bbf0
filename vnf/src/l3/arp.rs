//! ARP for IPv4 over Ethernet (RFC 826): the 28-byte payload that follows the Ethernet
//! header, parsed and written in place.
//!
//! Only the one combination the router speaks is accepted (Ethernet hardware, IPv4
//! protocol, 6- and 4-byte addresses, request or reply): anything else would need
//! different field offsets, and answering it could only mislead the sender.

/// Bytes of an Ethernet/IPv4 ARP payload.
pub const LEN: usize = 28;
pub const REQUEST: u16 = 1;
pub const REPLY: u16 = 2;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: u32,
    pub target_mac: [u8; 6],
    pub target_ip: u32,
}

/// Decodes an ARP payload; bytes past [`LEN`] (Ethernet padding) are ignored.
pub fn parse(payload: &[u8]) -> Option<Arp> {
    let p: &[u8; LEN] = payload.get(..LEN)?.try_into().ok()?;
    let header_ok =
        be16(p, 0) == HTYPE_ETHERNET && be16(p, 2) == PTYPE_IPV4 && p[4] == 6 && p[5] == 4;
    let op = be16(p, 6);
    if !header_ok || !(op == REQUEST || op == REPLY) {
        return None;
    }
    Some(Arp {
        op,
        sender_mac: mac(p, 8),
        sender_ip: be32(p, 14),
        target_mac: mac(p, 18),
        target_ip: be32(p, 24),
    })
}

/// Writes `arp` as a payload at the start of `out`; returns [`LEN`], or 0 (nothing
/// written) if `out` is shorter than that.
pub fn write(out: &mut [u8], arp: &Arp) -> usize {
    let Some(p) = out.get_mut(..LEN) else {
        return 0;
    };
    p[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    p[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&arp.op.to_be_bytes());
    p[8..14].copy_from_slice(&arp.sender_mac);
    p[14..18].copy_from_slice(&arp.sender_ip.to_be_bytes());
    p[18..24].copy_from_slice(&arp.target_mac);
    p[24..28].copy_from_slice(&arp.target_ip.to_be_bytes());
    LEN
}

fn be16(p: &[u8; LEN], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

fn be32(p: &[u8; LEN], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

fn mac(p: &[u8; LEN], at: usize) -> [u8; 6] {
    [p[at], p[at + 1], p[at + 2], p[at + 3], p[at + 4], p[at + 5]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SplitMix64;

    fn request() -> Arp {
        Arp {
            op: REQUEST,
            sender_mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
            sender_ip: u32::from_be_bytes([192, 0, 2, 1]),
            target_mac: [0; 6],
            target_ip: u32::from_be_bytes([192, 0, 2, 99]),
        }
    }

    #[test]
    fn write_then_parse_round_trips() {
        let mut buf = [0u8; 60];
        for op in [REQUEST, REPLY] {
            let arp = Arp {
                op,
                target_mac: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
                ..request()
            };
            assert_eq!(write(&mut buf, &arp), LEN);
            // Trailing padding (a minimum-size Ethernet frame) does not matter.
            assert_eq!(parse(&buf), Some(arp));
            assert_eq!(parse(&buf[..LEN]), Some(arp));
        }
    }

    #[test]
    fn matches_a_known_request() {
        // who-has 192.0.2.99 tell 192.0.2.1, as tcpdump -x shows it.
        let wire = [
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
            0xc0, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x63,
        ];
        assert_eq!(parse(&wire), Some(request()));
        let mut buf = [0u8; LEN];
        write(&mut buf, &request());
        assert_eq!(buf, wire);
    }

    #[test]
    fn rejects_other_kinds_and_short_payloads() {
        let mut good = [0u8; LEN];
        write(&mut good, &request());
        for (at, value) in [
            (1, 6),
            (2, 0x86),
            (3, 0xdd),
            (4, 8),
            (5, 16),
            (7, 3),
            (7, 0),
            (6, 1),
        ] {
            let mut bad = good;
            bad[at] = value;
            assert_eq!(parse(&bad), None, "byte {at} = {value}");
        }
        for len in 0..LEN {
            assert_eq!(parse(&good[..len]), None, "length {len}");
        }
    }

    #[test]
    fn short_output_writes_nothing() {
        let mut buf = [0xeeu8; LEN - 1];
        assert_eq!(write(&mut buf, &request()), 0);
        assert!(buf.iter().all(|&b| b == 0xee));
    }

    #[test]
    fn random_input_never_panics_and_decodes_consistently() {
        let mut rng = SplitMix64(826);
        let mut good = [0u8; LEN];
        write(&mut good, &request());
        for _ in 0..20_000 {
            let len = rng.below(40) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| rng.u32() as u8).collect();
            // Half the cases start from a valid header so that the field paths run.
            if rng.below(2) == 0 {
                let n = len.min(8);
                data[..n].copy_from_slice(&good[..n]);
            }
            if let Some(arp) = parse(&data) {
                let mut again = [0u8; LEN];
                write(&mut again, &arp);
                assert_eq!(&again[..], &data[..LEN]);
            }
        }
    }
}
