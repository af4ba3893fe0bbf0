//! Flows as ranges of header fields, and the frame source that cycles through them.
//!
//! Flow `i` is the mixed-radix decomposition of `i` over the range sizes, source port
//! varying fastest, so consecutive frames differ in the field a switch's hash is most
//! likely to spread on. Templates are prebuilt for the first `template_cap` flows; flows
//! beyond that are built into a stack value when they are sent, which costs a few dozen
//! additions but no memory.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::frame::{
    write_frame, FlowFields, FrameSize, IpVersion, Layout, SizePlan, Stamp, Template, Vlan,
};

pub const DEFAULT_TEMPLATE_CAP: usize = 65536;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacRange {
    pub start: [u8; 6],
    pub count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    pub start: IpAddr,
    pub count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub count: u32,
}

impl MacRange {
    pub fn single(mac: [u8; 6]) -> MacRange {
        MacRange {
            start: mac,
            count: 1,
        }
    }

    pub fn nth(&self, i: u64) -> [u8; 6] {
        let base = mac_to_u64(self.start);
        let v = (base + i) & 0xffff_ffff_ffff;
        let b = v.to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    }
}

impl IpRange {
    pub fn single(ip: IpAddr) -> IpRange {
        IpRange {
            start: ip,
            count: 1,
        }
    }

    pub fn nth(&self, i: u64) -> IpAddr {
        match self.start {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(i as u32))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(u128::from(i)))),
        }
    }
}

impl PortRange {
    pub fn single(port: u16) -> PortRange {
        PortRange {
            start: port,
            count: 1,
        }
    }

    pub fn nth(&self, i: u64) -> u16 {
        self.start.wrapping_add(i as u16)
    }
}

fn mac_to_u64(m: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

/// "A" or "A-B" (inclusive), the form used on the command line.
fn split_range(s: &str) -> (&str, Option<&str>) {
    // IPv6 addresses contain no '-', MACs use ':', so '-' is unambiguous.
    match s.split_once('-') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (s.trim(), None),
    }
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("bad MAC address {s:?}"));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| format!("bad MAC address {s:?}"))?;
    }
    Ok(mac)
}

impl FromStr for MacRange {
    type Err = String;
    fn from_str(s: &str) -> Result<MacRange, String> {
        let (a, b) = split_range(s);
        let start = parse_mac(a)?;
        let end = b.map(parse_mac).transpose()?.unwrap_or(start);
        let (lo, hi) = (mac_to_u64(start), mac_to_u64(end));
        if hi < lo {
            return Err(format!("empty MAC range {s:?}"));
        }
        Ok(MacRange {
            start,
            count: hi - lo + 1,
        })
    }
}

impl FromStr for IpRange {
    type Err = String;
    fn from_str(s: &str) -> Result<IpRange, String> {
        let (a, b) = split_range(s);
        let bad = |_| format!("bad IP address in {s:?}");
        let start: IpAddr = a.parse().map_err(bad)?;
        let end: IpAddr = b
            .map(|b| b.parse().map_err(bad))
            .transpose()?
            .unwrap_or(start);
        let (lo, hi) = match (start, end) {
            (IpAddr::V4(x), IpAddr::V4(y)) => (u128::from(u32::from(x)), u128::from(u32::from(y))),
            (IpAddr::V6(x), IpAddr::V6(y)) => (u128::from(x), u128::from(y)),
            _ => return Err(format!("mixed IPv4 and IPv6 in {s:?}")),
        };
        if hi < lo || hi - lo >= u128::from(u32::MAX) {
            return Err(format!("empty or oversized IP range {s:?}"));
        }
        Ok(IpRange {
            start,
            count: (hi - lo + 1) as u64,
        })
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<PortRange, String> {
        let (a, b) = split_range(s);
        let bad = |_| format!("bad UDP port in {s:?}");
        let start: u16 = a.parse().map_err(bad)?;
        let end: u16 = b
            .map(|b| b.parse().map_err(bad))
            .transpose()?
            .unwrap_or(start);
        if end < start {
            return Err(format!("empty port range {s:?}"));
        }
        Ok(PortRange {
            start,
            count: u32::from(end - start) + 1,
        })
    }
}

/// What to send: header layout and field ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSpec {
    pub src_mac: MacRange,
    pub dst_mac: MacRange,
    pub src_ip: IpRange,
    pub dst_ip: IpRange,
    pub src_port: PortRange,
    pub dst_port: PortRange,
    pub vlan: Option<Vlan>,
    pub udp_checksum: bool,
    pub template_cap: usize,
}

impl Default for FlowSpec {
    /// One flow between the two MACs of the README's example VMs, RFC 2544 appendix C
    /// test addresses (198.18.0.0/15) and the discard port.
    fn default() -> FlowSpec {
        FlowSpec {
            src_mac: MacRange::single([0x52, 0x54, 0, 0, 0, 1]),
            dst_mac: MacRange::single([0x52, 0x54, 0, 0, 0, 2]),
            src_ip: IpRange::single(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))),
            dst_ip: IpRange::single(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1))),
            src_port: PortRange::single(1024),
            dst_port: PortRange::single(9),
            vlan: None,
            udp_checksum: true,
            template_cap: DEFAULT_TEMPLATE_CAP,
        }
    }
}

impl FlowSpec {
    pub fn layout(&self) -> Result<Layout, String> {
        let ip = match (self.src_ip.start, self.dst_ip.start) {
            (IpAddr::V4(_), IpAddr::V4(_)) => IpVersion::V4,
            (IpAddr::V6(_), IpAddr::V6(_)) => IpVersion::V6,
            _ => return Err("source and destination IPs must be the same version".into()),
        };
        if let Some(v) = self.vlan {
            if v.id > 4094 || v.pcp > 7 {
                return Err(format!("bad VLAN id {} or priority {}", v.id, v.pcp));
            }
        }
        Ok(Layout::new(self.vlan, ip, self.udp_checksum))
    }

    /// Radices, fastest first.
    fn radices(&self) -> [u64; 6] {
        [
            u64::from(self.src_port.count),
            u64::from(self.dst_port.count),
            self.src_ip.count,
            self.dst_ip.count,
            self.src_mac.count,
            self.dst_mac.count,
        ]
    }

    /// The product of the range sizes, or an error when a range is empty or it overflows.
    pub fn flow_count(&self) -> Result<u64, String> {
        self.radices().iter().try_fold(1u64, |acc, &r| {
            if r == 0 {
                return Err("empty range".to_string());
            }
            acc.checked_mul(r)
                .ok_or_else(|| "too many flows".to_string())
        })
    }

    pub fn fields(&self, mut i: u64) -> FlowFields {
        let mut digit = |r: u64| {
            let d = i % r;
            i /= r;
            d
        };
        let [sp, dp, si, di, sm, dm] = self.radices();
        let src_port = self.src_port.nth(digit(sp));
        let dst_port = self.dst_port.nth(digit(dp));
        let src_ip = self.src_ip.nth(digit(si));
        let dst_ip = self.dst_ip.nth(digit(di));
        let src_mac = self.src_mac.nth(digit(sm));
        let dst_mac = self.dst_mac.nth(digit(dm));
        FlowFields {
            src_mac,
            dst_mac,
            src_ip,
            dst_ip,
            src_port,
            dst_port,
        }
    }
}

/// The frame source: writes frame after frame, cycling flows and sizes.
/// Frames up to this size are composed on the stack first (see `Traffic::fill`).
const SCRATCH: usize = 128;

pub struct Traffic {
    spec: FlowSpec,
    layout: Layout,
    flows: u64,
    templates: Vec<Template>,
    sizes: Vec<SizePlan>,
    order: Vec<u16>,
    size: FrameSize,
    next_flow: u64,
    next_size: usize,
}

impl Traffic {
    pub fn new(spec: &FlowSpec, size: &FrameSize) -> Result<Traffic, String> {
        let layout = spec.layout()?;
        let flows = spec.flow_count()?;
        size.validate()?;
        let prebuilt = flows.min(spec.template_cap as u64);
        let templates = (0..prebuilt)
            .map(|i| Template::build(&layout, &spec.fields(i)))
            .collect();
        let (sizes, order) = size.plans(&layout);
        Ok(Traffic {
            spec: spec.clone(),
            layout,
            flows,
            templates,
            sizes,
            order,
            size: size.clone(),
            next_flow: 0,
            next_size: 0,
        })
    }

    /// Templates do not depend on the size, so a size change rebuilds only the plans.
    pub fn set_size(&mut self, size: &FrameSize) -> Result<(), String> {
        size.validate()?;
        (self.sizes, self.order) = size.plans(&self.layout);
        self.size = size.clone();
        self.next_size = 0;
        Ok(())
    }

    pub fn size(&self) -> &FrameSize {
        &self.size
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn flow_count(&self) -> u64 {
        self.flows
    }

    pub fn prebuilt(&self) -> usize {
        self.templates.len()
    }

    /// Frames after which the sequence `fill` writes repeats, flows and sizes together:
    /// the least common multiple of the flow count and the length of the size order
    /// (12 for IMIX). None beyond `u64`.
    pub fn cycle(&self) -> Option<u64> {
        let sizes = self.order.len() as u64;
        let (mut a, mut b) = (self.flows, sizes);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        (self.flows / a).checked_mul(sizes)
    }

    /// The mean frame size (with FCS) over one cycle of the size order, after raising
    /// too-small sizes; line-rate arithmetic uses it.
    pub fn mean_frame_size(&self) -> f64 {
        let total: u64 = self
            .order
            .iter()
            .map(|&i| u64::from(self.sizes[usize::from(i)].frame_size))
            .sum();
        total as f64 / self.order.len() as f64
    }

    /// Restarts the flow and size cycles, so that every trial sends the same sequence.
    pub fn rewind(&mut self) {
        self.next_flow = 0;
        self.next_size = 0;
    }

    /// Writes the next frame; returns its wire length (0 if `buf` is too short).
    #[inline]
    pub fn fill(&mut self, buf: &mut [u8], stamp: &Stamp) -> usize {
        let flow = self.next_flow;
        self.next_flow += 1;
        if self.next_flow == self.flows {
            self.next_flow = 0;
        }
        let plan = &self.sizes[usize::from(self.order[self.next_size])];
        self.next_size += 1;
        if self.next_size == self.order.len() {
            self.next_size = 0;
        }
        let built;
        let t = match self.templates.get(flow as usize) {
            Some(t) => t,
            None => {
                built = Template::build(&self.layout, &self.spec.fields(flow));
                &built
            }
        };
        // A small frame is composed on the stack and stored with a few wide moves. Its
        // buffer's cache lines were last read by the receiver's core: a dozen scattered
        // stores into them would each wait for those lines to come back, and fill the
        // store buffer; two wide stores per frame keep many frames' transfers in flight.
        if plan.wire_len <= SCRATCH && buf.len() >= plan.wire_len {
            let mut scratch = [0u8; SCRATCH];
            let n = write_frame(&self.layout, t, plan, stamp, &mut scratch);
            buf[..n].copy_from_slice(&scratch[..n]);
            n
        } else {
            write_frame(&self.layout, t, plan, stamp, buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{parse, MAX_WIRE};
    use super::*;

    fn stamp(seq: u64) -> Stamp {
        Stamp {
            stream: 1,
            queue: 0,
            seq,
            ts: 7,
        }
    }

    #[test]
    fn ranges_parse() {
        let m: MacRange = "52:54:00:00:00:fe-52:54:00:00:01:01".parse().unwrap();
        assert_eq!(m.count, 4);
        assert_eq!(m.nth(3), [0x52, 0x54, 0, 0, 1, 1]);
        let ip: IpRange = "10.0.0.250-10.0.1.4".parse().unwrap();
        assert_eq!(ip.count, 11);
        assert_eq!(ip.nth(10), "10.0.1.4".parse::<IpAddr>().unwrap());
        let ip6: IpRange = "2001:db8::1-2001:db8::10".parse().unwrap();
        assert_eq!(ip6.count, 16);
        let p: PortRange = "1000-1999".parse().unwrap();
        assert_eq!(p.count, 1000);
        assert!("10-9".parse::<PortRange>().is_err());
        assert!("10.0.0.1-2001:db8::1".parse::<IpRange>().is_err());
        assert!("52:54:00".parse::<MacRange>().is_err());
    }

    #[test]
    fn flows_enumerate_every_combination_once() {
        let spec = FlowSpec {
            src_port: "1-3".parse().unwrap(),
            dst_ip: "10.0.0.1-10.0.0.2".parse().unwrap(),
            dst_mac: "02:00:00:00:00:01-02:00:00:00:00:02".parse().unwrap(),
            ..FlowSpec::default()
        };
        assert_eq!(spec.flow_count().unwrap(), 12);
        let all: std::collections::HashSet<_> =
            (0..12).map(|i| format!("{:?}", spec.fields(i))).collect();
        assert_eq!(all.len(), 12);
        assert_eq!(spec.fields(0).src_port, 1);
        assert_eq!(spec.fields(1).src_port, 2, "source port varies fastest");
        assert_eq!(spec.fields(3).dst_ip, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(spec.fields(6).dst_mac, [2, 0, 0, 0, 0, 2]);
        let huge = FlowSpec {
            src_ip: "10.0.0.0-10.255.255.255".parse().unwrap(),
            dst_ip: "11.0.0.0-11.255.255.255".parse().unwrap(),
            src_port: "0-65535".parse().unwrap(),
            dst_port: "0-65535".parse().unwrap(),
            ..FlowSpec::default()
        };
        assert!(huge.flow_count().is_err());
    }

    #[test]
    fn frames_beyond_the_template_cap_match_prebuilt_ones() {
        let spec = FlowSpec {
            src_port: "100-109".parse().unwrap(),
            src_ip: "10.0.0.1-10.0.0.3".parse().unwrap(),
            ..FlowSpec::default()
        };
        let capped = FlowSpec {
            template_cap: 4,
            ..spec.clone()
        };
        let mut full = Traffic::new(&spec, &FrameSize::Fixed(128)).unwrap();
        let mut part = Traffic::new(&capped, &FrameSize::Fixed(128)).unwrap();
        assert_eq!((full.prebuilt(), part.prebuilt()), (30, 4));
        assert_eq!(full.cycle(), Some(30));
        full.set_size(&FrameSize::imix()).unwrap();
        assert_eq!(full.cycle(), Some(60), "30 flows, 12 sizes");
        full.set_size(&FrameSize::Fixed(128)).unwrap();
        let (mut a, mut b) = (vec![0u8; MAX_WIRE], vec![0u8; MAX_WIRE]);
        for i in 0..65 {
            let na = full.fill(&mut a, &stamp(i));
            let nb = part.fill(&mut b, &stamp(i));
            assert_eq!(na, 124);
            assert_eq!(a[..na], b[..nb], "frame {i}");
        }
        // Rewinding makes the next trial start again at flow 0.
        full.rewind();
        let n = full.fill(&mut a, &stamp(0));
        assert_eq!(u16::from_be_bytes([a[34], a[35]]), 100);
        assert_eq!(parse(&a[..n]).unwrap().seq, 0);
    }

    #[test]
    fn imix_traffic_cycles_sizes() {
        let mut t = Traffic::new(&FlowSpec::default(), &FrameSize::imix()).unwrap();
        let expected_mean = (7.0 * 64.0 + 4.0 * 594.0 + 1518.0) / 12.0;
        assert!((t.mean_frame_size() - expected_mean).abs() < 1e-9);
        let mut buf = vec![0u8; MAX_WIRE];
        let mut lens = std::collections::BTreeMap::new();
        for i in 0..120 {
            *lens.entry(t.fill(&mut buf, &stamp(i))).or_insert(0) += 1;
        }
        assert_eq!(
            lens.into_iter().collect::<Vec<_>>(),
            [(60, 70), (590, 40), (1514, 10)]
        );
        assert_eq!(t.cycle(), Some(12));
        t.set_size(&FrameSize::Fixed(256)).unwrap();
        assert_eq!(t.cycle(), Some(1));
        assert_eq!(t.fill(&mut buf, &stamp(0)), 252);
        assert!(t.set_size(&FrameSize::Fixed(10_000)).is_err());
    }

    #[test]
    fn spec_rejects_mixed_versions_and_bad_vlans() {
        let mixed = FlowSpec {
            dst_ip: "2001:db8::1".parse().unwrap(),
            ..FlowSpec::default()
        };
        assert!(mixed.layout().is_err());
        let vlan = FlowSpec {
            vlan: Some(Vlan { id: 4095, pcp: 0 }),
            ..FlowSpec::default()
        };
        assert!(Traffic::new(&vlan, &FrameSize::Fixed(64)).is_err());
    }
}
