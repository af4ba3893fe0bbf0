//! Frame templates and the payload signature.
//!
//! A template holds one flow's headers with the length fields and checksums left open,
//! together with partial one's-complement sums, so that writing a frame of any size costs
//! one header copy, a few stores and a handful of additions (RFC 1624 style incremental
//! checksums) instead of a pass over the frame.

use crate::l3::checksum;
use std::net::IpAddr;

/// RFC 2544 frame sizes include the frame check sequence, which the virtio wire omits.
pub const FCS_LEN: usize = 4;
pub const MIN_FRAME: u32 = 64;
pub const MAX_FRAME: u32 = 9216;
/// The largest frame the generator writes; ports must hand `fill` buffers this long.
pub const MAX_WIRE: usize = MAX_FRAME as usize - FCS_LEN;

/// Two magics tell the receiver which signature layout follows.
pub const MAGIC_FULL: [u8; 4] = *b"vnfG";
pub const MAGIC_COMPACT: [u8; 4] = *b"vnfg";
/// magic, stream u16, queue u16, seq u64, timestamp u64.
pub const SIG_FULL: usize = 24;
/// magic, stream u16, queue u16, seq u32, timestamp u32: used when the full signature does
/// not fit (a 64-byte IPv4 frame has only 18 payload bytes). The receiver extends the
/// 32-bit sequence against its window and takes latency as a wrapping 32-bit difference,
/// which holds while latency stays under 4.29 s.
pub const SIG_COMPACT: usize = 16;

const ETH_HDR: usize = 14;
const VLAN_HDR: usize = 4;
const IPV4_HDR: usize = 20;
const IPV6_HDR: usize = 40;
const UDP_HDR: usize = 8;
pub const MAX_HEADER: usize = ETH_HDR + VLAN_HDR + IPV6_HDR + UDP_HDR;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const PROTO_UDP: u8 = 17;
const TTL: u8 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlan {
    pub id: u16,
    pub pcp: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

/// The header layout every flow of one traffic set shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub vlan: Option<Vlan>,
    pub ip: IpVersion,
    pub udp_checksum: bool,
}

impl Layout {
    /// IPv6 forbids a zero UDP checksum (RFC 8200 8.1), so it is forced on there.
    pub fn new(vlan: Option<Vlan>, ip: IpVersion, udp_checksum: bool) -> Layout {
        Layout {
            vlan,
            ip,
            udp_checksum: udp_checksum || ip == IpVersion::V6,
        }
    }

    pub fn l3_offset(&self) -> usize {
        ETH_HDR + if self.vlan.is_some() { VLAN_HDR } else { 0 }
    }

    pub fn l4_offset(&self) -> usize {
        self.l3_offset()
            + match self.ip {
                IpVersion::V4 => IPV4_HDR,
                IpVersion::V6 => IPV6_HDR,
            }
    }

    pub fn header_len(&self) -> usize {
        self.l4_offset() + UDP_HDR
    }

    /// The smallest frame (with FCS) that carries a signature; smaller requests are raised
    /// to it, e.g. IPv6 cannot do 64 bytes (RFC 5180 5 makes the same observation).
    pub fn min_frame_size(&self) -> u32 {
        ((self.header_len() + SIG_COMPACT + FCS_LEN) as u32).max(MIN_FRAME)
    }
}

/// The fields that tell one flow from another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowFields {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
}

/// One flow's headers with lengths and checksums zero, plus the partial sums over them.
#[derive(Clone, Copy, Debug)]
pub struct Template {
    hdr: [u8; MAX_HEADER],
    /// IPv4 header sum without the total length.
    ip_sum: u32,
    /// UDP sum of the pseudo-header addresses, protocol and ports, without lengths.
    udp_sum: u32,
}

impl Template {
    /// Panics when the addresses do not match the layout's IP version; `FlowSpec`
    /// validates that before any template is built.
    pub fn build(layout: &Layout, f: &FlowFields) -> Template {
        let mut hdr = [0u8; MAX_HEADER];
        hdr[0..6].copy_from_slice(&f.dst_mac);
        hdr[6..12].copy_from_slice(&f.src_mac);
        let mut off = 12;
        if let Some(v) = layout.vlan {
            hdr[off..off + 2].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            let tci = (u16::from(v.pcp & 7) << 13) | (v.id & 0x0fff);
            hdr[off + 2..off + 4].copy_from_slice(&tci.to_be_bytes());
            off += 4;
        }
        let l3 = layout.l3_offset();
        let l4 = layout.l4_offset();
        let mut udp_sum = u32::from(PROTO_UDP);
        let mut ip_sum = 0;
        match (layout.ip, f.src_ip, f.dst_ip) {
            (IpVersion::V4, IpAddr::V4(s), IpAddr::V4(d)) => {
                hdr[off..off + 2].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
                let ip = &mut hdr[l3..l4];
                ip[0] = 0x45;
                // DF: the generator never wants its frames fragmented on the way.
                ip[6] = 0x40;
                ip[8] = TTL;
                ip[9] = PROTO_UDP;
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                ip_sum = checksum::sum(ip, 0);
                udp_sum += checksum::sum(&ip[12..20], 0);
            }
            (IpVersion::V6, IpAddr::V6(s), IpAddr::V6(d)) => {
                hdr[off..off + 2].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
                let ip = &mut hdr[l3..l4];
                ip[0] = 0x60;
                ip[6] = PROTO_UDP;
                ip[7] = TTL;
                ip[8..24].copy_from_slice(&s.octets());
                ip[24..40].copy_from_slice(&d.octets());
                udp_sum += checksum::sum(&ip[8..40], 0);
            }
            _ => panic!("flow addresses do not match the layout's IP version"),
        }
        hdr[l4..l4 + 2].copy_from_slice(&f.src_port.to_be_bytes());
        hdr[l4 + 2..l4 + 4].copy_from_slice(&f.dst_port.to_be_bytes());
        udp_sum += u32::from(f.src_port) + u32::from(f.dst_port);
        Template {
            hdr,
            ip_sum,
            udp_sum,
        }
    }
}

/// Everything about one frame size that does not depend on the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizePlan {
    /// With FCS, after raising to the layout's minimum.
    pub frame_size: u32,
    pub wire_len: usize,
    ip_len: u16,
    udp_len: u16,
    compact: bool,
    /// The UDP sum contributions of the lengths and the magic.
    udp_fixed: u32,
}

impl SizePlan {
    pub fn new(layout: &Layout, frame_size: u32) -> SizePlan {
        let frame_size = frame_size.clamp(layout.min_frame_size(), MAX_FRAME);
        let wire_len = frame_size as usize - FCS_LEN;
        let udp_len = (wire_len - layout.l4_offset()) as u16;
        let ip_len = match layout.ip {
            IpVersion::V4 => (wire_len - layout.l3_offset()) as u16,
            // IPv6 carries the payload length, which here is the UDP datagram.
            IpVersion::V6 => udp_len,
        };
        let compact = wire_len - layout.header_len() < SIG_FULL;
        let magic = if compact { MAGIC_COMPACT } else { MAGIC_FULL };
        // The length appears twice: in the pseudo-header and in the UDP header.
        let udp_fixed = 2 * u32::from(udp_len) + checksum::sum(&magic, 0);
        SizePlan {
            frame_size,
            wire_len,
            ip_len,
            udp_len,
            compact,
            udp_fixed,
        }
    }

    pub fn compact(&self) -> bool {
        self.compact
    }
}

/// The per-frame fields of the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub stream: u16,
    pub queue: u16,
    pub seq: u64,
    pub ts: u64,
}

/// Writes one frame into `buf` and returns its length on the wire, or 0 when `buf` is too
/// short. The bytes after the signature are zero, so they add nothing to the UDP sum.
#[inline]
pub fn write_frame(
    layout: &Layout,
    t: &Template,
    size: &SizePlan,
    st: &Stamp,
    buf: &mut [u8],
) -> usize {
    let len = size.wire_len;
    if buf.len() < len {
        return 0;
    }
    let frame = &mut buf[..len];
    let hl = layout.header_len();
    frame[..hl].copy_from_slice(&t.hdr[..hl]);
    let l3 = layout.l3_offset();
    let l4 = layout.l4_offset();
    match layout.ip {
        IpVersion::V4 => {
            frame[l3 + 2..l3 + 4].copy_from_slice(&size.ip_len.to_be_bytes());
            let c = !fold(u64::from(t.ip_sum) + u64::from(size.ip_len));
            frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        IpVersion::V6 => frame[l3 + 4..l3 + 6].copy_from_slice(&size.ip_len.to_be_bytes()),
    }
    frame[l4 + 4..l4 + 6].copy_from_slice(&size.udp_len.to_be_bytes());
    let p = hl;
    let mut sum = u64::from(t.udp_sum) + u64::from(size.udp_fixed);
    sum += u64::from(st.stream) + u64::from(st.queue);
    frame[p + 4..p + 6].copy_from_slice(&st.stream.to_be_bytes());
    frame[p + 6..p + 8].copy_from_slice(&st.queue.to_be_bytes());
    let end = if size.compact {
        frame[p..p + 4].copy_from_slice(&MAGIC_COMPACT);
        let (seq, ts) = (st.seq as u32, st.ts as u32);
        frame[p + 8..p + 12].copy_from_slice(&seq.to_be_bytes());
        frame[p + 12..p + 16].copy_from_slice(&ts.to_be_bytes());
        sum += words32(seq) + words32(ts);
        p + SIG_COMPACT
    } else {
        frame[p..p + 4].copy_from_slice(&MAGIC_FULL);
        frame[p + 8..p + 16].copy_from_slice(&st.seq.to_be_bytes());
        frame[p + 16..p + 24].copy_from_slice(&st.ts.to_be_bytes());
        sum += words64(st.seq) + words64(st.ts);
        p + SIG_FULL
    };
    frame[end..].fill(0);
    let c = if layout.udp_checksum {
        // A computed zero is sent as all ones; zero means "no checksum" (RFC 768).
        match !fold(sum) {
            0 => 0xffff,
            c => c,
        }
    } else {
        0
    };
    frame[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    len
}

/// A decoded signature. For compact signatures `seq` and `ts` hold only the low 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub stream: u16,
    pub queue: u16,
    pub seq: u64,
    pub ts: u64,
    pub compact: bool,
}

/// Finds our signature in a received frame: Ethernet, up to two VLAN tags (the switch
/// may add or strip them), IPv4 or IPv6, UDP. None for anything else ("foreign").
#[inline]
pub fn parse(frame: &[u8]) -> Option<Signature> {
    let mut off = 12;
    let mut ethertype = be16(frame, off)?;
    let mut tags = 0;
    while (ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ) && tags < 2 {
        off += 4;
        tags += 1;
        ethertype = be16(frame, off)?;
    }
    let l3 = off + 2;
    let l4 = match ethertype {
        ETHERTYPE_IPV4 => {
            let vihl = *frame.get(l3)?;
            if vihl >> 4 != 4 || *frame.get(l3 + 9)? != PROTO_UDP {
                return None;
            }
            l3 + usize::from(vihl & 0x0f) * 4
        }
        ETHERTYPE_IPV6 => {
            if *frame.get(l3)? >> 4 != 6 || *frame.get(l3 + 6)? != PROTO_UDP {
                return None;
            }
            l3 + IPV6_HDR
        }
        _ => return None,
    };
    let p = l4 + UDP_HDR;
    let sig = frame.get(p..p + SIG_COMPACT)?;
    let stream = u16::from_be_bytes([sig[4], sig[5]]);
    let queue = u16::from_be_bytes([sig[6], sig[7]]);
    if sig[..4] == MAGIC_COMPACT {
        return Some(Signature {
            stream,
            queue,
            seq: u64::from(u32::from_be_bytes(sig[8..12].try_into().ok()?)),
            ts: u64::from(u32::from_be_bytes(sig[12..16].try_into().ok()?)),
            compact: true,
        });
    }
    if sig[..4] != MAGIC_FULL {
        return None;
    }
    let sig = frame.get(p..p + SIG_FULL)?;
    Some(Signature {
        stream,
        queue,
        seq: u64::from_be_bytes(sig[8..16].try_into().ok()?),
        ts: u64::from_be_bytes(sig[16..24].try_into().ok()?),
        compact: false,
    })
}

/// Frame sizes of a run: one size, or a weighted mix such as IMIX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameSize {
    Fixed(u32),
    /// (frame size, weight) pairs.
    Mix(Vec<(u32, u32)>),
}

impl FrameSize {
    /// The common "simple IMIX": 7:4:1 of 64, 594 and 1518 bytes.
    pub fn imix() -> FrameSize {
        FrameSize::Mix(vec![(64, 7), (594, 4), (1518, 1)])
    }

    pub fn label(&self) -> String {
        match self {
            FrameSize::Fixed(n) => n.to_string(),
            FrameSize::Mix(m) if *m == [(64, 7), (594, 4), (1518, 1)] => "imix".to_string(),
            FrameSize::Mix(m) => {
                let parts: Vec<String> = m.iter().map(|(s, w)| format!("{s}:{w}")).collect();
                format!("mix({})", parts.join(","))
            }
        }
    }

    /// Checks the sizes against 64..=9216 and the weights against zero.
    pub fn validate(&self) -> Result<(), String> {
        let ok = |s: u32| (MIN_FRAME..=MAX_FRAME).contains(&s);
        match self {
            FrameSize::Fixed(s) if ok(*s) => Ok(()),
            FrameSize::Fixed(s) => Err(format!("frame size {s} outside {MIN_FRAME}..={MAX_FRAME}")),
            FrameSize::Mix(m) if m.is_empty() => Err("empty frame size mix".to_string()),
            FrameSize::Mix(m) => match m.iter().find(|(s, w)| !ok(*s) || *w == 0) {
                Some((s, w)) => Err(format!("bad mix entry {s}:{w}")),
                None => Ok(()),
            },
        }
    }

    /// Size plans and the order to cycle through them. The order is a smooth weighted
    /// round robin, so 7:4:1 interleaves instead of sending seven small frames in a row.
    pub fn plans(&self, layout: &Layout) -> (Vec<SizePlan>, Vec<u16>) {
        let entries: Vec<(u32, u32)> = match self {
            FrameSize::Fixed(s) => vec![(*s, 1)],
            FrameSize::Mix(m) => m.clone(),
        };
        let plans = entries
            .iter()
            .map(|(s, _)| SizePlan::new(layout, *s))
            .collect();
        let total: i64 = entries.iter().map(|(_, w)| i64::from(*w)).sum();
        let mut current = vec![0i64; entries.len()];
        let mut order = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, (_, w)) in current.iter_mut().zip(&entries) {
                *c += i64::from(*w);
            }
            let best = (0..entries.len()).max_by_key(|&i| (current[i], -(i as i64)));
            let best = best.unwrap_or(0);
            current[best] -= total;
            order.push(best as u16);
        }
        (plans, order)
    }
}

fn be16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(off)?, *b.get(off + 1)?]))
}

#[inline]
fn words32(x: u32) -> u64 {
    u64::from(x >> 16) + u64::from(x & 0xffff)
}

#[inline]
fn words64(x: u64) -> u64 {
    (x >> 48) + ((x >> 32) & 0xffff) + ((x >> 16) & 0xffff) + (x & 0xffff)
}

#[inline]
pub fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A deliberately naive checksum, independent of the incremental code under test.
    fn naive_sum(parts: &[&[u8]]) -> u16 {
        let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let mut s: u64 = 0;
        for i in (0..bytes.len()).step_by(2) {
            let hi = u64::from(bytes[i]) << 8;
            let lo = bytes.get(i + 1).map_or(0, |b| u64::from(*b));
            s += hi | lo;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    fn v4_flow() -> FlowFields {
        FlowFields {
            src_mac: [0x52, 0x54, 0, 0, 0, 1],
            dst_mac: [0x52, 0x54, 0, 0, 0, 2],
            src_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)),
            dst_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 0, 199)),
            src_port: 1234,
            dst_port: 5678,
        }
    }

    fn v6_flow() -> FlowFields {
        FlowFields {
            src_ip: IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
            dst_ip: IpAddr::V6("2001:db8::ffff:2".parse::<Ipv6Addr>().unwrap()),
            ..v4_flow()
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            stream: 0xbeef,
            queue: 3,
            seq: 0x0102_0304_0506_0708,
            ts: 0xfedc_ba98_7654_3210,
        }
    }

    fn build(layout: Layout, flow: FlowFields, size: u32, st: &Stamp) -> Vec<u8> {
        let t = Template::build(&layout, &flow);
        let plan = SizePlan::new(&layout, size);
        let mut buf = vec![0xaau8; MAX_WIRE];
        let n = write_frame(&layout, &t, &plan, st, &mut buf);
        buf.truncate(n);
        buf
    }

    #[test]
    fn ipv4_header_matches_a_hand_computed_checksum() {
        // The textbook header 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7: total
        // length 0x73 = 115, so the frame is 14 + 115 + 4 FCS = 133 bytes.
        let layout = Layout::new(None, IpVersion::V4, false);
        let f = build(layout, v4_flow(), 133, &stamp());
        assert_eq!(f.len(), 129);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        let expected = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(&f[14..34], &expected);
        assert_eq!(naive_sum(&[&f[14..34]]), 0xffff, "verifies to zero");
        // UDP: ports, length 115 - 20, checksum left zero as asked.
        assert_eq!(&f[34..42], &[0x04, 0xd2, 0x16, 0x2e, 0x00, 95, 0, 0]);
    }

    #[test]
    fn signature_round_trips_and_pads_with_zero() {
        let layout = Layout::new(None, IpVersion::V4, true);
        let f = build(layout, v4_flow(), 128, &stamp());
        assert_eq!(f.len(), 124);
        assert_eq!(&f[42..46], b"vnfG");
        assert_eq!(&f[46..48], &[0xbe, 0xef]);
        assert_eq!(&f[48..50], &[0, 3]);
        assert_eq!(&f[50..58], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(
            f[66..].iter().all(|b| *b == 0),
            "buffer garbage must not leak"
        );
        let sig = parse(&f).unwrap();
        assert_eq!(
            sig,
            Signature {
                stream: 0xbeef,
                queue: 3,
                seq: 0x0102_0304_0506_0708,
                ts: 0xfedc_ba98_7654_3210,
                compact: false
            }
        );
    }

    fn udp_verifies_v4(f: &[u8], l3: usize) -> bool {
        let l4 = l3 + 20;
        let udp_len = u16::from_be_bytes([f[l4 + 4], f[l4 + 5]]);
        assert_eq!(usize::from(udp_len), f.len() - l4);
        let pseudo = [&f[l3 + 12..l3 + 20], &[0, 17], &udp_len.to_be_bytes()].concat();
        naive_sum(&[&pseudo, &f[l4..]]) == 0xffff
    }

    fn udp_verifies_v6(f: &[u8], l3: usize) -> bool {
        let l4 = l3 + 40;
        let len = (f.len() - l4) as u32;
        let pseudo = [&f[l3 + 8..l3 + 40], &len.to_be_bytes()[..], &[0, 0, 0, 17]].concat();
        naive_sum(&[&pseudo, &f[l4..]]) == 0xffff
    }

    #[test]
    fn ipv4_udp_checksum_verifies_for_many_stamps_and_sizes() {
        let layout = Layout::new(None, IpVersion::V4, true);
        for size in [64, 65, 127, 1518, 9216] {
            for seq in [0, 1, 0xffff, u64::MAX, 0x8000_0000_0000_0001] {
                let st = Stamp {
                    seq,
                    ts: seq.rotate_left(17),
                    ..stamp()
                };
                let f = build(layout, v4_flow(), size, &st);
                assert_eq!(f.len(), size as usize - 4);
                assert_ne!(&f[40..42], &[0, 0]);
                assert!(udp_verifies_v4(&f, 14), "size {size} seq {seq}");
                assert_eq!(naive_sum(&[&f[14..34]]), 0xffff);
            }
        }
    }

    #[test]
    fn ipv6_udp_checksum_verifies_even_when_not_asked_for() {
        let layout = Layout::new(None, IpVersion::V6, false);
        assert!(layout.udp_checksum);
        for size in [128, 1518, 9216] {
            let f = build(layout, v6_flow(), size, &stamp());
            assert_eq!(&f[12..14], &[0x86, 0xdd]);
            assert_eq!(u16::from_be_bytes([f[18], f[19]]) as usize, f.len() - 54);
            assert_eq!(f[20], 17);
            assert!(udp_verifies_v6(&f, 14), "size {size}");
            assert_eq!(parse(&f).unwrap().seq, stamp().seq);
        }
    }

    #[test]
    fn vlan_tag_carries_id_and_priority() {
        let layout = Layout::new(Some(Vlan { id: 100, pcp: 5 }), IpVersion::V4, true);
        let f = build(layout, v4_flow(), 256, &stamp());
        assert_eq!(&f[12..18], &[0x81, 0x00, 0xa0, 0x64, 0x08, 0x00]);
        assert!(udp_verifies_v4(&f, 18));
        assert_eq!(naive_sum(&[&f[18..38]]), 0xffff);
        assert_eq!(parse(&f).unwrap().queue, 3);
    }

    #[test]
    fn small_frames_use_the_compact_signature() {
        let layout = Layout::new(None, IpVersion::V4, true);
        let f = build(layout, v4_flow(), 64, &stamp());
        assert_eq!(f.len(), 60, "a 64-byte frame is 60 bytes without FCS");
        assert_eq!(&f[42..46], b"vnfg");
        let sig = parse(&f).unwrap();
        assert!(sig.compact);
        assert_eq!(sig.seq, 0x0506_0708);
        assert_eq!(sig.ts, 0x7654_3210);
        assert!(udp_verifies_v4(&f, 14));
        // 18 payload bytes: 16 of signature, then zero padding.
        assert_eq!(&f[58..60], &[0, 0]);
    }

    #[test]
    fn too_small_sizes_are_raised_to_fit_a_signature() {
        let v6 = Layout::new(None, IpVersion::V6, true);
        assert_eq!(v6.min_frame_size(), 14 + 40 + 8 + 16 + 4);
        assert_eq!(SizePlan::new(&v6, 64).frame_size, 82);
        let f = build(v6, v6_flow(), 64, &stamp());
        assert_eq!(f.len(), 78);
        assert!(udp_verifies_v6(&f, 14));
        let vlan4 = Layout::new(Some(Vlan { id: 1, pcp: 0 }), IpVersion::V4, false);
        assert_eq!(SizePlan::new(&vlan4, 64).frame_size, 66);
        assert_eq!(SizePlan::new(&vlan4, 100_000).frame_size, MAX_FRAME);
    }

    #[test]
    fn short_buffer_writes_nothing() {
        let layout = Layout::new(None, IpVersion::V4, true);
        let t = Template::build(&layout, &v4_flow());
        let plan = SizePlan::new(&layout, 128);
        let mut buf = [0u8; 100];
        assert_eq!(write_frame(&layout, &t, &plan, &stamp(), &mut buf), 0);
    }

    #[test]
    fn parse_rejects_foreign_frames() {
        let layout = Layout::new(None, IpVersion::V4, true);
        let mut f = build(layout, v4_flow(), 128, &stamp());
        assert!(parse(&f[..50]).is_none(), "truncated");
        f[42] = b'x';
        assert!(parse(&f).is_none(), "wrong magic");
        let arp = [0u8; 60];
        assert!(parse(&arp).is_none());
        let mut tcp = build(layout, v4_flow(), 128, &stamp());
        tcp[23] = 6;
        assert!(parse(&tcp).is_none());
    }

    #[test]
    fn imix_order_interleaves_by_weight() {
        let layout = Layout::new(None, IpVersion::V4, false);
        let (plans, order) = FrameSize::imix().plans(&layout);
        assert_eq!(
            plans.iter().map(|p| p.frame_size).collect::<Vec<_>>(),
            [64, 594, 1518]
        );
        assert_eq!(order.len(), 12);
        for (i, want) in [7, 4, 1].iter().enumerate() {
            assert_eq!(order.iter().filter(|&&o| o as usize == i).count(), *want);
        }
        let longest_run = order
            .chunk_by(|a, b| a == b)
            .map(|c| c.len())
            .max()
            .unwrap();
        assert!(longest_run <= 2, "{order:?}");
        assert_eq!(FrameSize::imix().label(), "imix");
        assert!(FrameSize::Fixed(63).validate().is_err());
        assert!(FrameSize::Mix(vec![(64, 0)]).validate().is_err());
        assert!(FrameSize::Fixed(9216).validate().is_ok());
    }
}
