//! The router's datapath, driven without QEMU: our virtio-user frontend attaches to
//! every port of a vnf with a `router:` section and plays the hosts on each link. The
//! frames are built by hand here (Ethernet, IPv4, IPv6, UDP, ICMP, ARP, ND, with their
//! checksums computed independently of vnf), and each test checks the exact frames the
//! router sends back or on, and the exact counters it keeps. scapy, run as a separate
//! decoder, reassembles the router's IPv4 fragments.
//!
//! Router interface MACs are vnf's defaults, 02:76:6e:00:00:NN for the NN-th entry of
//! `router.interfaces`; hosts are 02:00:00:00:00:HH. The router announces itself when
//! the ports attach (gratuitous ARP, duplicate address detection): the rig waits for
//! that before a test starts, and counters are compared with their values after it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use vnf_tests::rig::{self, describe, Got, SETTLE};
use vnf_tests::{serial, Stats};

/// An IPv6 destination, a hop limit, and the ICMPv6 (type, code) expected back, if any.
type Case6 = (Ipv6Addr, u8, Option<(u8, u8)>);

// ---------------------------------------------------------------------------------------
// The rig: vnf plus one frontend per port, past the router's announcements.
// ---------------------------------------------------------------------------------------

struct Rig {
    io: rig::Rig,
    /// What the router sent when the ports attached (it announces its addresses).
    announced: Got,
    /// The counters once those announcements were out.
    base: Stats,
}

// The tests send and receive through the shared rig as it is; only the expectations
// and the counters' baseline are the router's own.
impl Deref for Rig {
    type Target = rig::Rig;

    fn deref(&self) -> &rig::Rig {
        &self.io
    }
}

impl DerefMut for Rig {
    fn deref_mut(&mut self) -> &mut rig::Rig {
        &mut self.io
    }
}

impl Rig {
    /// vnf with one worker, `ports` (name, extra port settings) and `rest` (the
    /// `bridges:` and `router:` sections) as its manifest.
    fn start(label: &str, ports: &[(&str, &str)], rest: &str) -> Rig {
        let mut io = rig::Rig::start(label, ports, rest);
        let announced = absorb_announcements(&mut io);
        let base = io.stats();
        Rig {
            io,
            announced,
            base,
        }
    }

    /// A router counter's growth since the announcements (which count in
    /// `arp_requests`, `nd_solicits` and `tx_packets`).
    fn grown(&self, s: &Stats, iface: &str, key: &str) -> u64 {
        s.router_counter(iface, key) - self.base.router_counter(iface, key)
    }

    /// Sends `frames` in one burst and asserts that the ports received exactly the
    /// frames listed for them in `to`, in that order, and nothing else.
    fn expect(&mut self, from: &str, frames: &[Vec<u8>], to: &[(&str, Vec<u8>)]) -> Got {
        let got = self.send(from, frames);
        self.check(&got, &format!("{} frame(s) from {from}", frames.len()), to);
        got
    }

    fn check(&mut self, got: &Got, what: &str, to: &[(&str, Vec<u8>)]) {
        if let Some(m) = got.mismatch(to) {
            let stats = self.stats();
            let mut why = format!(
                "{what}: port {} received {} frame(s), expected {}\n",
                m.port,
                m.have.len(),
                m.want.len()
            );
            for (i, (h, w)) in m.have.iter().zip(&m.want).enumerate() {
                if h != w {
                    why.push_str(&format!("frame {i}: {}\n", diff(h, w)));
                }
            }
            panic!("{why}received:\n{got}{stats}");
        }
    }
}

/// Waits for the router's announcements (gratuitous ARP, duplicate address
/// detection) that follow the ports' attachment, so that the tests see only the
/// answers to what they send. The router looks for new attachments every 500 ms,
/// and ports that attach across a look are announced a look apart: the
/// announcements are over after 700 ms without any.
fn absorb_announcements(io: &mut rig::Rig) -> Got {
    let mut got = io.empty();
    let start = Instant::now();
    let mut last = None;
    let mut seen = 0;
    while start.elapsed() < Duration::from_secs(5) {
        io.poll_into(&mut got);
        if got.total() > seen {
            seen = got.total();
            last = Some(Instant::now());
        }
        if last.is_some_and(|t| t.elapsed() > Duration::from_millis(700)) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the router did not announce itself within 5 s:\n{got}");
}

/// Where two frames first differ, with the bytes around it.
fn diff(have: &[u8], want: &[u8]) -> String {
    let at = have
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(have.len().min(want.len()));
    let from = at.saturating_sub(8);
    format!(
        "{} bytes vs {} expected, first difference at byte {at}: got {:02x?}, expected {:02x?}",
        have.len(),
        want.len(),
        &have[from..have.len().min(at + 8)],
        &want[from..want.len().min(at + 8)]
    )
}

// ---------------------------------------------------------------------------------------
// Frames, built by hand.
// ---------------------------------------------------------------------------------------

const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86dd;
const ARP: u16 = 0x0806;
const BCAST: [u8; 6] = [0xff; 6];

/// The MAC vnf gives the `i`-th router interface.
fn rmac(i: u8) -> [u8; 6] {
    [0x02, 0x76, 0x6e, 0x00, 0x00, i]
}

fn host(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// `len` bytes counting up from `seed`.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

/// The one's-complement sum of `bytes` as 16-bit big-endian words, added to `acc`.
fn sum(bytes: &[u8], mut acc: u64) -> u64 {
    for w in bytes.chunks(2) {
        acc += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    acc
}

/// The Internet checksum of `bytes` (RFC 1071) after the partial sum `acc`.
fn checksum(bytes: &[u8], acc: u64) -> u16 {
    let mut s = sum(bytes, acc);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn pseudo4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u64 {
    sum(&src.octets(), sum(&dst.octets(), 0)) + u64::from(proto) + len as u64
}

fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, len: usize) -> u64 {
    sum(&src.octets(), sum(&dst.octets(), 0)) + u64::from(next) + len as u64
}

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `frame` with an 802.1Q tag of VLAN `vid` after its addresses.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// An IPv4 header's fields (no options).
#[derive(Clone, Copy)]
struct V4 {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    id: u16,
    df: bool,
    tos: u8,
}

impl V4 {
    fn new(src: Ipv4Addr, dst: Ipv4Addr) -> V4 {
        V4 {
            src,
            dst,
            ttl: 64,
            id: 0x4242,
            df: false,
            tos: 0,
        }
    }

    fn ttl(self, ttl: u8) -> V4 {
        V4 { ttl, ..self }
    }

    /// The whole packet: header with its checksum, then `payload`.
    fn packet(&self, proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let flags: u16 = if self.df { 0x4000 } else { 0 };
        let mut p = vec![0x45, self.tos];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&[self.ttl, proto, 0, 0]);
        p.extend_from_slice(&self.src.octets());
        p.extend_from_slice(&self.dst.octets());
        let c = checksum(&p, 0);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }
}

/// A UDP header and `body`, its checksum over the pseudo-header sum `pseudo`.
fn udp(pseudo: u64, sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + body.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(body);
    let c = match checksum(&u, pseudo) {
        0 => 0xffff,
        c => c,
    };
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

/// An IPv4 UDP packet.
fn udp4(h: V4, sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let pseudo = pseudo4(h.src, h.dst, 17, 8 + body.len());
    h.packet(17, &udp(pseudo, sport, dport, body))
}

/// An ICMP message: type, code, the four type-specific bytes, then `body`.
fn icmp_msg(ty: u8, code: u8, rest: [u8; 4], body: &[u8], pseudo: u64) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    let c = checksum(&m, pseudo);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An IPv4 ICMP packet.
fn icmp4(h: V4, ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    h.packet(1, &icmp_msg(ty, code, rest, body, 0))
}

/// An IPv6 packet (traffic class and flow label 0).
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hlim: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, hlim]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

fn udp6(src: Ipv6Addr, dst: Ipv6Addr, hlim: u8, sport: u16, dport: u16, body: &[u8]) -> Vec<u8> {
    let pseudo = pseudo6(src, dst, 17, 8 + body.len());
    ipv6(src, dst, 17, hlim, &udp(pseudo, sport, dport, body))
}

fn icmp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hlim: u8,
    (ty, code): (u8, u8),
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let pseudo = pseudo6(src, dst, 58, 8 + body.len());
    ipv6(src, dst, 58, hlim, &icmp_msg(ty, code, rest, body, pseudo))
}

/// An Ethernet/IPv4 ARP message (28 bytes).
fn arp(op: u16, smac: [u8; 6], sip: Ipv4Addr, tmac: [u8; 6], tip: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&smac);
    a.extend_from_slice(&sip.octets());
    a.extend_from_slice(&tmac);
    a.extend_from_slice(&tip.octets());
    a
}

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;

/// A neighbor solicitation for `target` (hop limit 255) with a source link-layer
/// address option if `sll` is given.
fn ns(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, sll: Option<[u8; 6]>) -> Vec<u8> {
    let mut body = target.octets().to_vec();
    if let Some(m) = sll {
        body.extend_from_slice(&[1, 1]);
        body.extend_from_slice(&m);
    }
    icmp6(src, dst, 255, (135, 0), [0; 4], &body)
}

/// A neighbor advertisement for `target` with `flags` and a target link-layer address
/// option.
fn na(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, flags: u8, tll: [u8; 6]) -> Vec<u8> {
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&tll);
    icmp6(src, dst, 255, (136, 0), [flags, 0, 0, 0], &body)
}

/// ff02::1:ffXX:XXXX, the solicited-node group of `a`, and its MAC.
fn solicited_node(a: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let o = a.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    (group, [0x33, 0x33, 0xff, o[13], o[14], o[15]])
}

/// fe80::/64 with the modified EUI-64 of router interface `i`'s MAC.
fn link_local(i: u8) -> Ipv6Addr {
    let m = rmac(i);
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

/// An IPv4 packet (no options) as the next hop should see it: TTL one lower, header
/// checksum computed afresh.
fn ttl_minus_one(l3: &[u8]) -> Vec<u8> {
    let mut p = l3.to_vec();
    p[8] -= 1;
    p[10..12].fill(0);
    let c = checksum(&p[..20], 0);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// The IPv4 identification field of an IPv4 frame (untagged).
fn ip_id(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[18], frame[19]])
}

/// The ICMP error vnf should send from `from` (router interface `ri`'s address) to the
/// host `to_mac`/`orig`'s source: TOS 0xc0, TTL 64, DF clear, and as much of `orig` as
/// keeps the packet within 576 bytes (RFC 1812 4.3.2.3). The IP id is vnf's choice:
/// `id` is taken from the frame received.
fn icmp4_error(
    ri: u8,
    to_mac: [u8; 6],
    from: Ipv4Addr,
    id: u16,
    (ty, code): (u8, u8),
    rest: [u8; 4],
    orig: &[u8],
) -> Vec<u8> {
    let to = Ipv4Addr::new(orig[12], orig[13], orig[14], orig[15]);
    let h = V4 {
        tos: 0xc0,
        id,
        ..V4::new(from, to)
    };
    let quote = &orig[..orig.len().min(576 - 28)];
    eth(to_mac, rmac(ri), IPV4, &icmp4(h, ty, code, rest, quote))
}

/// The ICMPv6 error vnf should send: hop limit 64, quoting `orig` up to 1280 bytes in
/// all (RFC 4443 2.4(c)).
fn icmp6_error(
    ri: u8,
    to_mac: [u8; 6],
    from: Ipv6Addr,
    kind: (u8, u8),
    rest: [u8; 4],
    orig: &[u8],
) -> Vec<u8> {
    let to = Ipv6Addr::from(<[u8; 16]>::try_from(&orig[8..24]).unwrap());
    let quote = &orig[..orig.len().min(1280 - 48)];
    eth(
        to_mac,
        rmac(ri),
        IPV6,
        &icmp6(from, to, 64, kind, rest, quote),
    )
}

// ---------------------------------------------------------------------------------------
// The usual topology: port a with 10.1.0.1/24 and fd01::1/64 (router interface 0), port
// b with 10.2.0.1/24 and fd02::1/64 (router interface 1); host 2 of each subnet.
// ---------------------------------------------------------------------------------------

const RA: u8 = 0;
const RB: u8 = 1;
const A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const B_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const A_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const A_HOST: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const B_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
const B_HOST: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
const A_ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 1);
const A_HOST6: Ipv6Addr = Ipv6Addr::new(0xfd01, 0, 0, 0, 0, 0, 0, 2);
const B_ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 1);
const B_HOST6: Ipv6Addr = Ipv6Addr::new(0xfd02, 0, 0, 0, 0, 0, 0, 2);

/// The router section for ports a and b, with `more` (routes, neighbors) after the
/// interfaces.
fn two_subnets(more: &str) -> String {
    format!(
        "router:\n  interfaces:\n\
         \x20   - {{ name: a, addresses: [10.1.0.1/24, \"fd01::1/64\"] }}\n\
         \x20   - {{ name: b, addresses: [10.2.0.1/24, \"fd02::1/64\"] }}\n{more}"
    )
}

/// Static neighbor entries: the hosts on a and b, so that nothing waits for ARP/ND.
const STATIC_HOSTS: &str = "  neighbors:\n\
    \x20   - { interface: a, address: 10.1.0.2, mac: \"02:00:00:00:00:0a\" }\n\
    \x20   - { interface: a, address: \"fd01::2\", mac: \"02:00:00:00:00:0a\" }\n\
    \x20   - { interface: b, address: 10.2.0.2, mac: \"02:00:00:00:00:0b\" }\n\
    \x20   - { interface: b, address: \"fd02::2\", mac: \"02:00:00:00:00:0b\" }\n";

fn drops(stats: &Stats, iface: &str) -> Vec<(String, u64)> {
    stats.router_drops(iface).into_iter().collect()
}

fn owned(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

// ---------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------

/// Forwarding to static neighbors: the Ethernet header is rewritten (the neighbor's
/// MAC, the egress interface's MAC), the TTL / hop limit drops by one with the header
/// checksum still valid, and the rest is untouched. Frames not addressed to the router
/// and IPv4 headers with a bad checksum go no further.
#[test]
fn static_neighbors_forward_both_families() {
    let _serial = serial();
    let mut r = Rig::start(
        "l3-static",
        &[("a", ""), ("b", "")],
        &two_subnets(STATIC_HOSTS),
    );
    // When the ports attached, the router announced itself on each: a gratuitous ARP
    // for its IPv4 address and duplicate address detection (an NS from ::) for each
    // IPv6 one, its link-local address included.
    let mut want = Vec::new();
    for (port, ri, v4, v6) in [
        ("a", RA, A_ROUTER, A_ROUTER6),
        ("b", RB, B_ROUTER, B_ROUTER6),
    ] {
        let garp = arp(ARP_REQUEST, rmac(ri), v4, [0; 6], v4);
        want.push((port, eth(BCAST, rmac(ri), ARP, &garp)));
        for ip in [v6, link_local(ri)] {
            let (group, group_mac) = solicited_node(ip);
            let dad = ns(Ipv6Addr::UNSPECIFIED, group, ip, None);
            want.push((port, eth(group_mac, rmac(ri), IPV6, &dad)));
        }
    }
    let announced = r.announced.clone();
    r.check(&announced, "announcements", &want);

    // IPv4: the expected frame is built from scratch with TTL 16, so its checksum is
    // the full recomputation that vnf's incremental update must equal.
    let h = V4::new(A_HOST, B_HOST).ttl(17);
    let body = data(200, 1);
    let sent = eth(rmac(RA), A_MAC, IPV4, &udp4(h, 1111, 2222, &body));
    let want = eth(B_MAC, rmac(RB), IPV4, &udp4(h.ttl(16), 1111, 2222, &body));
    let got = r.expect("a", &[sent], &[("b", want)]);
    assert_eq!(
        checksum(&got.on("b")[0][14..34], 0),
        0,
        "IPv4 header checksum"
    );

    // A short datagram in a frame padded to 60 bytes leaves without the padding.
    let short = udp4(h, 1111, 2222, &[9, 8, 7, 6]);
    let mut padded = eth(rmac(RA), A_MAC, IPV4, &short);
    padded.resize(60, 0);
    let want = eth(
        B_MAC,
        rmac(RB),
        IPV4,
        &udp4(h.ttl(16), 1111, 2222, &[9, 8, 7, 6]),
    );
    r.expect("a", &[padded], &[("b", want)]);

    // IPv6: hop limit 9 becomes 8; no header checksum, the UDP one is unchanged.
    let sent = eth(
        rmac(RA),
        A_MAC,
        IPV6,
        &udp6(A_HOST6, B_HOST6, 9, 1111, 2222, &body),
    );
    let want = eth(
        B_MAC,
        rmac(RB),
        IPV6,
        &udp6(A_HOST6, B_HOST6, 8, 1111, 2222, &body),
    );
    r.expect("a", &[sent], &[("b", want)]);

    // The reverse direction uses the other static entries.
    let h = V4::new(B_HOST, A_HOST);
    r.expect(
        "b",
        &[eth(rmac(RB), B_MAC, IPV4, &udp4(h, 7, 8, &body))],
        &[(
            "a",
            eth(A_MAC, rmac(RA), IPV4, &udp4(h.ttl(63), 7, 8, &body)),
        )],
    );

    // To a unicast MAC that is not the router's: dropped, both families.
    let other = host(0x99);
    let h = V4::new(A_HOST, B_HOST);
    r.expect(
        "a",
        &[
            eth(other, A_MAC, IPV4, &udp4(h, 1, 2, &body)),
            eth(other, A_MAC, IPV6, &udp6(A_HOST6, B_HOST6, 64, 1, 2, &body)),
        ],
        &[],
    );
    // A bad header checksum: dropped.
    let mut bad = udp4(h, 1, 2, &body);
    bad[10] ^= 0x01;
    r.expect("a", &[eth(rmac(RA), A_MAC, IPV4, &bad)], &[]);

    // One flow in one burst (the batch is rewritten whole): identifications chosen so
    // that the header checksums take many values, the TTL's carry included; then the
    // same burst with one bad checksum in the middle, which alone is dropped.
    let flow = |id: u16| udp4(V4 { id, ..h }, 5, 6, &body[..18]);
    let ids: Vec<u16> = (0..64u16).map(|i| i.wrapping_mul(0x0fd3)).collect();
    let burst: Vec<Vec<u8>> = ids
        .iter()
        .map(|&i| eth(rmac(RA), A_MAC, IPV4, &flow(i)))
        .collect();
    let want: Vec<(&str, Vec<u8>)> = ids
        .iter()
        .map(|&i| ("b", eth(B_MAC, rmac(RB), IPV4, &ttl_minus_one(&flow(i)))))
        .collect();
    r.expect("a", &burst, &want);
    let mut broken = burst.clone();
    broken[30][14 + 10] ^= 0x40;
    let mut want = want;
    want.remove(30);
    r.expect("a", &broken, &want);

    // The same for IPv6 (the batch goes whole too): every packet leaves with hop limit
    // 63 and without the bytes some frames carry after the packet; then one packet with
    // hop limit 1 in the middle gets time exceeded, and only it.
    let flow6 = |i: u16| udp6(A_HOST6, B_HOST6, 64, 7, 8, &body[..usize::from(i % 40) + 1]);
    let burst: Vec<Vec<u8>> = (0..64u16)
        .map(|i| {
            let mut f = eth(rmac(RA), A_MAC, IPV6, &flow6(i));
            f.resize(f.len() + usize::from(i % 3) * 5, 0xee);
            f
        })
        .collect();
    let want: Vec<(&str, Vec<u8>)> = (0..64u16)
        .map(|i| {
            let mut p = flow6(i);
            p[7] = 63;
            ("b", eth(B_MAC, rmac(RB), IPV6, &p))
        })
        .collect();
    r.expect("a", &burst, &want);
    let mut expiring = burst.clone();
    expiring[17][14 + 7] = 1;
    let mut want = want;
    want.remove(17);
    let orig = &expiring[17][14..14 + 40 + 8 + 18];
    want.push(("a", icmp6_error(RA, A_MAC, A_ROUTER6, (3, 0), [0; 4], orig)));
    r.expect("a", &expiring, &want);

    let s = r.stats();
    assert_eq!(r.grown(&s, "a", "rx_packets"), 6 + 4 * 64, "{s}");
    assert_eq!(r.grown(&s, "b", "tx_packets"), 3 + 2 * (64 + 63), "{s}");
    assert_eq!(r.grown(&s, "a", "tx_packets"), 2, "{s}");
    assert_eq!(
        drops(&s, "a"),
        owned(&[("bad_ip_header", 2), ("not_for_us", 2), ("ttl_exceeded", 1)]),
        "{s}"
    );
    assert_eq!(drops(&s, "b"), vec![], "{s}");
    assert_eq!(
        s.neighbors("10.2.0.2"),
        vec![("b".into(), "02:00:00:00:00:0b".into(), "static".into())],
        "{s}"
    );
    r.vnf.assert_running();
}

/// The router resolves a next hop itself: the first packet makes it ask (broadcast ARP
/// request / multicast NS, every field checked), it holds that packet and the ones
/// that follow, and sends them in order once the answer comes. Nobody answering: the
/// solicitation is repeated twice a second apart, then the held packets are dropped
/// after 3 s, counted as unresolved, and their sender told.
#[test]
fn router_resolves_next_hops_and_holds_packets() {
    let _serial = serial();
    let mut r = Rig::start("l3-resolve", &[("a", ""), ("b", "")], &two_subnets(""));
    let h = V4::new(A_HOST, B_HOST);
    let sent: Vec<Vec<u8>> = (1..=3)
        .map(|i| {
            eth(
                rmac(RA),
                A_MAC,
                IPV4,
                &udp4(V4 { id: i, ..h }, 5, 6, &data(64, i as u8)),
            )
        })
        .collect();
    let fwd: Vec<Vec<u8>> = (1..=3)
        .map(|i| {
            let h = V4 { id: i, ..h }.ttl(63);
            eth(B_MAC, rmac(RB), IPV4, &udp4(h, 5, 6, &data(64, i as u8)))
        })
        .collect();
    // One request for the three packets; nothing is forwarded yet.
    let request = eth(
        BCAST,
        rmac(RB),
        ARP,
        &arp(ARP_REQUEST, rmac(RB), B_ROUTER, [0; 6], B_HOST),
    );
    r.expect("a", &sent, &[("b", request)]);
    // The answer releases them, in order.
    let reply = eth(
        rmac(RB),
        B_MAC,
        ARP,
        &arp(ARP_REPLY, B_MAC, B_HOST, rmac(RB), B_ROUTER),
    );
    let to: Vec<(&str, Vec<u8>)> = fwd.into_iter().map(|f| ("b", f)).collect();
    r.expect("b", &[reply], &to);

    // IPv6: a neighbor solicitation from the router's address on that link to the
    // target's solicited-node group, with the router's MAC in the option.
    let sent: Vec<Vec<u8>> = (1..=3)
        .map(|i| {
            eth(
                rmac(RA),
                A_MAC,
                IPV6,
                &udp6(A_HOST6, B_HOST6, 64, 5, 6, &data(64, i)),
            )
        })
        .collect();
    let (group, group_mac) = solicited_node(B_HOST6);
    let solicit = eth(
        group_mac,
        rmac(RB),
        IPV6,
        &ns(B_ROUTER6, group, B_HOST6, Some(rmac(RB))),
    );
    r.expect("a", &sent, &[("b", solicit)]);
    let advert = eth(
        rmac(RB),
        B_MAC,
        IPV6,
        &na(
            B_HOST6,
            B_ROUTER6,
            B_HOST6,
            NA_SOLICITED | NA_OVERRIDE,
            B_MAC,
        ),
    );
    let to: Vec<(&str, Vec<u8>)> = (1..=3)
        .map(|i| {
            let f = udp6(A_HOST6, B_HOST6, 63, 5, 6, &data(64, i));
            ("b", eth(B_MAC, rmac(RB), IPV6, &f))
        })
        .collect();
    r.expect("b", &[advert], &to);

    let s = r.stats();
    for addr in ["10.2.0.2", "fd02::2"] {
        assert_eq!(
            s.neighbors(addr),
            vec![("b".into(), "02:00:00:00:00:0b".into(), "reachable".into())],
            "{addr}\n{s}"
        );
    }
    assert_eq!(r.grown(&s, "b", "arp_requests"), 1, "{s}");
    assert_eq!(r.grown(&s, "b", "nd_solicits"), 1, "{s}");
    assert_eq!(r.grown(&s, "b", "tx_packets"), 8, "{s}");

    // Nobody answers for 10.2.0.3 and fd02::3: one solicitation each, then silence.
    let (v4, v6) = (Ipv4Addr::new(10, 2, 0, 3), "fd02::3".parse().unwrap());
    let mut sent: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            eth(
                rmac(RA),
                A_MAC,
                IPV4,
                &udp4(V4::new(A_HOST, v4), 5, 6, &[i]),
            )
        })
        .collect();
    sent.extend((0..3).map(|i| eth(rmac(RA), A_MAC, IPV6, &udp6(A_HOST6, v6, 64, 5, 6, &[i]))));
    let asked = Instant::now();
    let request = eth(
        BCAST,
        rmac(RB),
        ARP,
        &arp(ARP_REQUEST, rmac(RB), B_ROUTER, [0; 6], v4),
    );
    let (group, group_mac) = solicited_node(v6);
    let solicit = eth(
        group_mac,
        rmac(RB),
        IPV6,
        &ns(B_ROUTER6, group, v6, Some(rmac(RB))),
    );
    r.expect(
        "a",
        &sent,
        &[("b", request.clone()), ("b", solicit.clone())],
    );
    // Still held two seconds on: nothing counted yet.
    let got = r.collect_for(Duration::from_secs(2).saturating_sub(asked.elapsed()));
    let s = r.stats();
    assert_eq!(s.router_counter("all", "unresolved"), 0, "{s}");
    // By four seconds they have been dropped (held 3 s, the clock ticks every 50 ms).
    let later = r.collect_for(Duration::from_secs(4).saturating_sub(asked.elapsed()));
    // Meanwhile each solicitation was repeated a second apart, three in all as Linux
    // does, with no traffic to prompt it; and no held packet went out.
    let on_b: Vec<&Vec<u8>> = got.on("b").iter().chain(later.on("b")).collect();
    let count = |f: &Vec<u8>| on_b.iter().filter(|g| **g == f).count();
    assert_eq!(
        (count(&request), count(&solicit), on_b.len()),
        (2, 2, 4),
        "b while held:\n{got}{later}"
    );
    assert!(got.on("a").is_empty(), "a while held:\n{got}");
    // Given up: each sender is told, ICMP host / address unreachable quoting its packet
    // as it would have left (TTL and hop limit one lower). The router first has to
    // find the sender, who answers.
    let ask_a = eth(
        BCAST,
        rmac(RA),
        ARP,
        &arp(ARP_REQUEST, rmac(RA), A_ROUTER, [0; 6], A_HOST),
    );
    let (group_a, group_a_mac) = solicited_node(A_HOST6);
    let ns_a = eth(
        group_a_mac,
        rmac(RA),
        IPV6,
        &ns(A_ROUTER6, group_a, A_HOST6, Some(rmac(RA))),
    );
    let mut on_a = later.on("a").to_vec();
    on_a.sort();
    let mut want = vec![ask_a, ns_a];
    want.sort();
    assert_eq!(on_a, want, "a after giving up:\n{later}");
    let answers = [
        eth(
            rmac(RA),
            A_MAC,
            ARP,
            &arp(ARP_REPLY, A_MAC, A_HOST, rmac(RA), A_ROUTER),
        ),
        eth(
            rmac(RA),
            A_MAC,
            IPV6,
            &na(
                A_HOST6,
                A_ROUTER6,
                A_HOST6,
                NA_SOLICITED | NA_OVERRIDE,
                A_MAC,
            ),
        ),
    ];
    let errors = r.send("a", &answers);
    let mut have = errors.on("a").to_vec();
    let mut want: Vec<Vec<u8>> = sent
        .iter()
        .zip(&have)
        .map(|(f, e)| match u16::from_be_bytes([f[12], f[13]]) {
            IPV4 => icmp4_error(
                RA,
                A_MAC,
                A_ROUTER,
                ip_id(e),
                (3, 1),
                [0; 4],
                &ttl_minus_one(&f[14..]),
            ),
            _ => {
                let mut quote = f[14..].to_vec();
                quote[7] -= 1;
                icmp6_error(RA, A_MAC, A_ROUTER6, (1, 3), [0; 4], &quote)
            }
        })
        .collect();
    // The IPv4 identification is vnf's: taken from each error in arrival order, which
    // is the order the packets were held in.
    have.sort();
    want.sort();
    assert_eq!(have.len(), 6, "errors:\n{errors}");
    for (h, w) in have.iter().zip(&want) {
        assert!(h == w, "error {}\nwant {}", describe(h), describe(w));
    }
    let s = r.stats();
    assert_eq!(s.router_counter("all", "unresolved"), 6, "{s}");
    // An answer now finds nothing left to send.
    let late = eth(
        rmac(RB),
        host(0x0c),
        ARP,
        &arp(ARP_REPLY, host(0x0c), v4, rmac(RB), B_ROUTER),
    );
    r.expect("b", &[late], &[]);
    r.vnf.assert_running();
}

/// The router answers for itself: ARP requests and neighbor solicitations for its
/// addresses, and echo requests to any of them (the asking taught it the sender).
#[test]
fn router_answers_arp_nd_and_pings() {
    let _serial = serial();
    let mut r = Rig::start("l3-answers", &[("a", ""), ("b", "")], &two_subnets(""));
    // A request padded to the Ethernet minimum, as hosts send it.
    let mut request = eth(
        BCAST,
        A_MAC,
        ARP,
        &arp(ARP_REQUEST, A_MAC, A_HOST, [0; 6], A_ROUTER),
    );
    request.resize(60, 0);
    let reply = eth(
        A_MAC,
        rmac(RA),
        ARP,
        &arp(ARP_REPLY, rmac(RA), A_ROUTER, A_MAC, A_HOST),
    );
    r.expect("a", &[request], &[("a", reply)]);

    let (group, group_mac) = solicited_node(A_ROUTER6);
    let solicit = eth(
        group_mac,
        A_MAC,
        IPV6,
        &ns(A_HOST6, group, A_ROUTER6, Some(A_MAC)),
    );
    // Solicited, from a router, overriding; the router's MAC as target link-layer address.
    let advert = eth(
        A_MAC,
        rmac(RA),
        IPV6,
        &na(
            A_ROUTER6,
            A_HOST6,
            A_ROUTER6,
            NA_ROUTER | NA_SOLICITED | NA_OVERRIDE,
            rmac(RA),
        ),
    );
    r.expect("a", &[solicit], &[("a", advert)]);

    // Pings to the router's address on a and on b, both answered on a from the
    // address pinged; the reply keeps the request's IP id, identifier, sequence and data.
    let body = data(56, 0x30);
    for (i, to) in [A_ROUTER, B_ROUTER].into_iter().enumerate() {
        let h = V4 {
            id: 0x700 + i as u16,
            df: true,
            ..V4::new(A_HOST, to)
        };
        let rest = [0x12, 0x34, 0, i as u8];
        let ping = eth(rmac(RA), A_MAC, IPV4, &icmp4(h.ttl(9), 8, 0, rest, &body));
        let h = V4 {
            src: to,
            dst: A_HOST,
            ..h
        };
        let pong = eth(A_MAC, rmac(RA), IPV4, &icmp4(h, 0, 0, rest, &body));
        r.expect("a", &[ping], &[("a", pong)]);
    }
    for (i, to) in [A_ROUTER6, B_ROUTER6].into_iter().enumerate() {
        let rest = [0x56, 0x78, 0, i as u8];
        let ping = icmp6(A_HOST6, to, 7, (128, 0), rest, &body);
        let pong = icmp6(to, A_HOST6, 64, (129, 0), rest, &body);
        r.expect(
            "a",
            &[eth(rmac(RA), A_MAC, IPV6, &ping)],
            &[("a", eth(A_MAC, rmac(RA), IPV6, &pong))],
        );
    }
    let s = r.stats();
    assert_eq!(r.grown(&s, "a", "arp_replies"), 1, "{s}");
    assert_eq!(r.grown(&s, "a", "nd_adverts"), 1, "{s}");
    assert_eq!(r.grown(&s, "a", "icmp_sent"), 4, "{s}");
    assert_eq!(r.grown(&s, "a", "tx_packets"), 6, "{s}");
    // Learned from the asking, unconfirmed.
    for addr in ["10.1.0.2", "fd01::2"] {
        assert_eq!(
            s.neighbors(addr),
            vec![("a".into(), "02:00:00:00:00:0a".into(), "stale".into())],
            "{addr}\n{s}"
        );
    }
    assert_eq!(drops(&s, "a"), vec![], "{s}");
    assert_eq!(r.grown(&s, "b", "rx_packets"), 0, "{s}");
    r.vnf.assert_running();
}

/// ICMP errors back to the sender, from the router's address on the sender's link:
/// time exceeded, no route, unreachable and prohibit routes, for both families; a
/// blackhole route answers nothing, and neither is an ICMP error ever answered with
/// one.
#[test]
fn icmp_errors_for_undeliverable_packets() {
    let _serial = serial();
    let routes = "  routes:\n\
        \x20   - { to: 10.50.0.0/16, type: unreachable }\n\
        \x20   - { to: 10.51.0.0/16, type: prohibit }\n\
        \x20   - { to: 10.52.0.0/16, type: blackhole }\n\
        \x20   - { to: \"fd51::/16\", type: prohibit }\n\
        \x20   - { to: \"fd52::/16\", type: blackhole }\n";
    let mut r = Rig::start(
        "l3-icmp",
        &[("a", ""), ("b", "")],
        &two_subnets(&format!("{routes}{STATIC_HOSTS}")),
    );
    let body = data(40, 5);
    // (destination, TTL, expected type and code)
    let cases = [
        (B_HOST, 1, Some((11, 0))),
        (Ipv4Addr::new(192, 0, 2, 1), 64, Some((3, 0))),
        (Ipv4Addr::new(10, 50, 0, 1), 64, Some((3, 1))),
        (Ipv4Addr::new(10, 51, 0, 1), 64, Some((3, 13))),
        (Ipv4Addr::new(10, 52, 0, 1), 64, None),
    ];
    for (dst, ttl, kind) in cases {
        let orig = udp4(V4::new(A_HOST, dst).ttl(ttl), 3, 4, &body);
        let got = r.send("a", &[eth(rmac(RA), A_MAC, IPV4, &orig)]);
        // The IP id of an error is the router's choice: taken from what came (if
        // nothing did, the check below says so).
        let id = got.on("a").first().map_or(0, |f| ip_id(f));
        let want: Vec<(&str, Vec<u8>)> = kind
            .map(|k| ("a", icmp4_error(RA, A_MAC, A_ROUTER, id, k, [0; 4], &orig)))
            .into_iter()
            .collect();
        r.check(&got, &format!("UDP to {dst} TTL {ttl}"), &want);
    }
    // An ICMP error whose TTL runs out gets no error back (RFC 1812 4.3.2.7).
    let quoted = udp4(V4::new(B_HOST, A_HOST), 1, 2, &[]);
    let error = icmp4(V4::new(A_HOST, B_HOST).ttl(1), 3, 3, [0; 4], &quoted);
    r.expect("a", &[eth(rmac(RA), A_MAC, IPV4, &error)], &[]);

    let cases6: [Case6; 4] = [
        (B_HOST6, 1, Some((3, 0))),
        ("2001:db8::1".parse().unwrap(), 64, Some((1, 0))),
        ("fd51::1".parse().unwrap(), 64, Some((1, 1))),
        ("fd52::1".parse().unwrap(), 64, None),
    ];
    for (dst, hlim, kind) in cases6 {
        let orig = udp6(A_HOST6, dst, hlim, 3, 4, &body);
        let want: Vec<(&str, Vec<u8>)> = kind
            .map(|k| ("a", icmp6_error(RA, A_MAC, A_ROUTER6, k, [0; 4], &orig)))
            .into_iter()
            .collect();
        r.expect("a", &[eth(rmac(RA), A_MAC, IPV6, &orig)], &want);
    }
    let s = r.stats();
    assert_eq!(
        drops(&s, "a"),
        owned(&[
            ("blackhole", 2),
            ("no_route", 2),
            ("ttl_exceeded", 3),
            ("unreachable", 3),
        ]),
        "{s}"
    );
    assert_eq!(r.grown(&s, "a", "icmp_sent"), 7, "{s}");
    assert_eq!(r.grown(&s, "a", "icmp_rate_limited"), 0, "{s}");
    assert_eq!(r.grown(&s, "b", "tx_packets"), 0, "{s}");
    r.vnf.assert_running();
}

/// scapy, as an independent decoder, reassembles fragments: reads lines `orig HEX`
/// (the datagram expected after reassembly) then `frag HEX` (L3 fragments), and prints
/// `ok` if `defragment` makes exactly that datagram of them.
const SCAPY_DEFRAGMENT: &str = r#"
import sys
from scapy.all import IP, raw, defragment
orig, frags = None, []
for line in sys.stdin:
    name, hx = line.split()
    if name == "orig":
        orig = bytes.fromhex(hx)
    else:
        frags.append(IP(bytes.fromhex(hx)))
for f in frags:
    q = f.copy()
    del q.chksum
    assert IP(raw(q)).chksum == f.chksum, ("fragment header checksum", f.summary())
whole = defragment(frags)
assert len(whole) == 1, [p.summary() for p in whole]
got = raw(whole[0])
assert got == orig, ("reassembled", len(got), len(orig), got[:40].hex(), orig[:40].hex())
print("ok")
"#;

/// Runs SCAPY_DEFRAGMENT; panics with scapy's words unless it says ok.
fn scapy_defragments(orig: &[u8], frags: &[&[u8]]) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut input = format!("orig {}\n", hex(orig));
    for f in frags {
        input.push_str(&format!("frag {}\n", hex(f)));
    }
    // The system python3, where Debian's python3-scapy lives (a pyenv one may shadow it).
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCAPY_DEFRAGMENT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 (with python3-scapy)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim_end().ends_with("ok"),
        "scapy could not reassemble vnf's fragments into the original:\n{said}"
    );
}

/// Path MTU: b's port MTU (1280) is its router interface's. Too big with DF set:
/// fragmentation needed with the MTU; IPv6: packet too big. Without DF the router
/// fragments, and scapy puts the fragments back together into the original datagram.
#[test]
fn path_mtu_errors_and_fragmentation() {
    let _serial = serial();
    let mut r = Rig::start(
        "l3-mtu",
        &[("a", ", mtu: 9000"), ("b", ", mtu: 1280")],
        &two_subnets(STATIC_HOSTS),
    );
    // A 1400-byte datagram: 20 + 8 + 1372.
    let body = data(1372, 0x11);
    let df = V4 {
        df: true,
        ..V4::new(A_HOST, B_HOST)
    };
    let orig = udp4(df, 9, 10, &body);
    assert_eq!(orig.len(), 1400);
    let got = r.send("a", &[eth(rmac(RA), A_MAC, IPV4, &orig)]);
    let id = got.on("a").first().map_or(0, |f| ip_id(f));
    // RFC 1191: the next-hop MTU in the low half of the second word.
    let want = icmp4_error(RA, A_MAC, A_ROUTER, id, (3, 4), [0, 0, 0x05, 0x00], &orig);
    r.check(&got, "1400 bytes with DF", &[("a", want)]);

    let orig6 = udp6(A_HOST6, B_HOST6, 64, 9, 10, &data(1352, 0x22));
    assert_eq!(orig6.len(), 1400);
    let want = icmp6_error(RA, A_MAC, A_ROUTER6, (2, 0), 1280u32.to_be_bytes(), &orig6);
    r.expect("a", &[eth(rmac(RA), A_MAC, IPV6, &orig6)], &[("a", want)]);

    // Without DF: fragments. The second time a small datagram to the same destination
    // goes ahead of the big one in the same burst, so that the big one follows a
    // forwarding decision the batch already made.
    let h = V4::new(A_HOST, B_HOST);
    let small = udp4(V4 { id: 0x5150, ..h }, 9, 10, &[1, 2, 3]);
    // (sent ahead in the same burst, the datagram to fragment, fragments expected)
    let cases = [
        (None, udp4(V4 { id: 0x5151, ..h }, 9, 10, &body), 2),
        (
            Some(small),
            udp4(V4 { id: 0x5152, ..h }, 9, 10, &data(3972, 0x33)),
            4,
        ),
    ];
    let mut fragments = 0;
    for (ahead, big, count) in cases {
        let mut frames: Vec<Vec<u8>> = ahead
            .iter()
            .map(|d| eth(rmac(RA), A_MAC, IPV4, d))
            .collect();
        frames.push(eth(rmac(RA), A_MAC, IPV4, &big));
        let got = r.send("a", &frames);
        let mut on_b = got.on("b");
        if let Some(small) = &ahead {
            // The small one goes through whole, first.
            let want = eth(B_MAC, rmac(RB), IPV4, &ttl_minus_one(small));
            assert!(
                on_b.first() == Some(&want),
                "the small datagram should arrive whole first:\n{got}"
            );
            on_b = &on_b[1..];
        }
        let mut frags: Vec<&[u8]> = Vec::new();
        for f in on_b {
            assert!(
                f.len() <= 14 + 1280 && f[..14] == eth(B_MAC, rmac(RB), IPV4, &[])[..],
                "fragment {} too long or misaddressed:\n{got}",
                describe(f)
            );
            frags.push(&f[14..]);
        }
        assert_eq!(
            frags.len(),
            count,
            "fragments of {} bytes:\n{got}",
            big.len()
        );
        assert!(got.on("a").is_empty(), "{got}");
        // Reassembled, they are the original with its TTL one lower.
        scapy_defragments(&ttl_minus_one(&big), &frags);
        fragments += count as u64;
    }
    let s = r.stats();
    assert_eq!(r.grown(&s, "b", "fragments"), fragments, "{s}");
    assert_eq!(r.grown(&s, "b", "tx_packets"), fragments + 1, "{s}");
    assert_eq!(drops(&s, "a"), owned(&[("fragmentation_needed", 2)]), "{s}");
    assert_eq!(r.grown(&s, "a", "icmp_sent"), 2, "{s}");
    r.vnf.assert_running();
}

/// A flood of packets that each deserve an error gets at most the burst (50) plus
/// 1000 a second of them; the rest are counted as rate limited.
#[test]
fn icmp_errors_are_rate_limited() {
    let _serial = serial();
    let mut r = Rig::start(
        "l3-ratelimit",
        &[("a", ""), ("b", "")],
        &two_subnets(STATIC_HOSTS),
    );
    const N: u16 = 300;
    const BURST: usize = 50;
    let origs: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let h = V4 {
                id: i,
                ..V4::new(A_HOST, B_HOST).ttl(1)
            };
            udp4(h, 1, 2, &data(20, i as u8))
        })
        .collect();
    let frames: Vec<Vec<u8>> = origs
        .iter()
        .map(|o| eth(rmac(RA), A_MAC, IPV4, o))
        .collect();
    let start = Instant::now();
    r.inject("a", &frames);
    // Receive until nothing has come for SETTLE; the errors are all made while the
    // packets are being routed, so by the last one's arrival at the latest.
    let mut got = r.empty();
    let mut last = start;
    let mut seen = 0;
    while last.elapsed() < SETTLE {
        r.poll_into(&mut got);
        if got.total() > seen {
            seen = got.total();
            last = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed_ms = (last - start).as_millis() as usize;
    let replies = got.on("a");
    // Each reply is an exact time exceeded for one of the packets (the one it quotes).
    for f in replies {
        let quoted_id = u16::from_be_bytes([f[14 + 28 + 4], f[14 + 28 + 5]]);
        let orig = origs
            .get(quoted_id as usize)
            .unwrap_or_else(|| panic!("reply quotes an unknown packet: {}", describe(f)));
        let want = icmp4_error(RA, A_MAC, A_ROUTER, ip_id(f), (11, 0), [0; 4], orig);
        assert!(*f == want, "{}", diff(f, &want));
    }
    // The router's clock ticks every 50 ms: a tick inside the run may refill up to 50
    // tokens at once, hence the 50 ms added to the time measured here.
    let most = BURST + 1 + (elapsed_ms + 50) * 1000 / 1000;
    assert!(
        (BURST..=most).contains(&replies.len()),
        "{} time exceeded for {N} packets in {elapsed_ms} ms: expected {BURST}..={most}",
        replies.len()
    );
    assert!(got.on("b").is_empty(), "{got}");
    let burst_replies = replies.len() as u64;

    // A limit on the rate, not a quota: after a pause, a trickle far below 1000/s is
    // answered in full.
    std::thread::sleep(Duration::from_millis(200));
    const TRICKLE: u16 = 20;
    for i in 0..TRICKLE {
        let h = V4 {
            id: N + i,
            ..V4::new(A_HOST, B_HOST).ttl(1)
        };
        let orig = udp4(h, 1, 2, &[]);
        r.inject("a", &[eth(rmac(RA), A_MAC, IPV4, &orig)]);
        let got = r.wait_for(1, Duration::from_secs(1));
        let ok = got.on("a").len() == 1 && {
            let f = &got.on("a")[0];
            *f == icmp4_error(RA, A_MAC, A_ROUTER, ip_id(f), (11, 0), [0; 4], &orig)
        };
        assert!(ok, "packet {i} of the trickle: no time exceeded:\n{got}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let s = r.stats();
    let sent = r.grown(&s, "a", "icmp_sent");
    let limited = r.grown(&s, "a", "icmp_rate_limited");
    let total = u64::from(N + TRICKLE);
    assert_eq!(sent, burst_replies + u64::from(TRICKLE), "{s}");
    assert_eq!(sent + limited, total, "{s}");
    assert_eq!(drops(&s, "a"), owned(&[("ttl_exceeded", total)]), "{s}");
    r.vnf.assert_running();
}

/// Equal-cost multipath: the flows to one destination spread over both gateways, and
/// each flow keeps to one, whether it arrives in a batch with other flows or alone.
#[test]
fn ecmp_spreads_flows_and_keeps_each_on_one_path() {
    let _serial = serial();
    let more = "  routes:\n\
        \x20   - { to: 10.9.0.0/16, via: [10.2.0.2, 10.2.0.3] }\n\
        \x20 neighbors:\n\
        \x20   - { interface: b, address: 10.2.0.2, mac: \"02:00:00:00:00:0b\" }\n\
        \x20   - { interface: b, address: 10.2.0.3, mac: \"02:00:00:00:00:0c\" }\n";
    let mut r = Rig::start("l3-ecmp", &[("a", ""), ("b", "")], &two_subnets(more));
    let gateways = [host(0x0b), host(0x0c)];
    let dst = Ipv4Addr::new(10, 9, 0, 5);
    const FLOWS: u16 = 64;
    let packet =
        |flow: u16, ttl: u8| udp4(V4::new(A_HOST, dst).ttl(ttl), 10_000 + flow, 53, &[7; 20]);
    // Which gateway each received frame went to, checked against the exact frame.
    let gateway_of = |f: &[u8]| -> (u16, usize) {
        let flow = u16::from_be_bytes([f[34], f[35]]).wrapping_sub(10_000);
        let g = gateways
            .iter()
            .position(|m| *f == eth(*m, rmac(RB), IPV4, &packet(flow, 63))[..])
            .unwrap_or_else(|| panic!("not a forwarded flow packet: {}", describe(f)));
        (flow, g)
    };

    // All flows in one burst (one batch).
    let burst: Vec<Vec<u8>> = (0..FLOWS)
        .map(|f| eth(rmac(RA), A_MAC, IPV4, &packet(f, 64)))
        .collect();
    r.inject("a", &burst);
    let got = r.wait_for(FLOWS as usize, Duration::from_secs(5));
    assert_eq!(got.on("b").len(), FLOWS as usize, "{got}");
    let mut first = vec![usize::MAX; FLOWS as usize];
    for f in got.on("b") {
        let (flow, g) = gateway_of(f);
        first[flow as usize] = g;
    }
    let per_gateway = [0, 1].map(|g| first.iter().filter(|&&x| x == g).count());
    assert!(
        per_gateway.iter().all(|&n| n >= 10),
        "flows per gateway {per_gateway:?}: not spread"
    );

    // Each flow again, alone: the same gateway as in the burst.
    for flow in 0..FLOWS {
        r.inject("a", &[burst[flow as usize].clone()]);
        let got = r.wait_for(1, Duration::from_secs(2));
        assert_eq!(got.on("b").len(), 1, "flow {flow}:\n{got}");
        let (f, g) = gateway_of(&got.on("b")[0]);
        assert_eq!(f, flow);
        assert_eq!(
            g, first[flow as usize],
            "flow {flow} switched gateways (burst: {per_gateway:?} per gateway)"
        );
    }
    let s = r.stats();
    assert_eq!(r.grown(&s, "b", "tx_packets"), 2 * u64::from(FLOWS), "{s}");
    assert_eq!(drops(&s, "a"), vec![], "{s}");
    r.vnf.assert_running();
}

/// Router interfaces on a VLAN subinterface and on a bridge: tagged frames in and out
/// of a.100; and the router as one more member of bridge br, reached from either
/// member port, sending to a neighbor only where the bridge learned it, answering ARP
/// that the bridge also floods.
#[test]
fn subinterface_and_bridge_router_interfaces() {
    let _serial = serial();
    let rest = "bridges:\n  - { name: br, members: [c, d] }\n\
        router:\n  interfaces:\n\
        \x20   - { name: a.100, addresses: [10.3.0.1/24] }\n\
        \x20   - { name: b, addresses: [10.2.0.1/24] }\n\
        \x20   - { name: br, addresses: [10.4.0.1/24] }\n\
        \x20 neighbors:\n\
        \x20   - { interface: a.100, address: 10.3.0.2, mac: \"02:00:00:00:00:0a\" }\n\
        \x20   - { interface: b, address: 10.2.0.2, mac: \"02:00:00:00:00:0b\" }\n\
        \x20   - { interface: br, address: 10.4.0.2, mac: \"02:00:00:00:00:0d\" }\n";
    let mut r = Rig::start(
        "l3-sub-bridge",
        &[("a", ""), ("b", ""), ("c", ""), ("d", "")],
        rest,
    );
    let (r_sub, r_b, r_br) = (0, 1, 2);
    let (c_mac, d_mac) = (host(0x0c), host(0x0d));
    let sub_host = Ipv4Addr::new(10, 3, 0, 2);
    let (br_router, c_host, d_host) = (
        Ipv4Addr::new(10, 4, 0, 1),
        Ipv4Addr::new(10, 4, 0, 3),
        Ipv4Addr::new(10, 4, 0, 2),
    );
    let body = data(80, 0x44);

    // Tagged 100 on a: routed to b, untagged there.
    let h = V4::new(sub_host, B_HOST);
    r.expect(
        "a",
        &[tagged(
            &eth(rmac(r_sub), A_MAC, IPV4, &udp4(h, 1, 2, &body)),
            100,
        )],
        &[(
            "b",
            eth(B_MAC, rmac(r_b), IPV4, &udp4(h.ttl(63), 1, 2, &body)),
        )],
    );
    // Untagged on a: not the subinterface, and port a itself is nowhere.
    r.expect(
        "a",
        &[eth(rmac(r_sub), A_MAC, IPV4, &udp4(h, 1, 2, &body))],
        &[],
    );
    // From b to the subinterface's host: tagged 100 on a.
    let h = V4::new(B_HOST, sub_host);
    r.expect(
        "b",
        &[eth(rmac(r_b), B_MAC, IPV4, &udp4(h, 3, 4, &body))],
        &[(
            "a",
            tagged(
                &eth(A_MAC, rmac(r_sub), IPV4, &udp4(h.ttl(63), 3, 4, &body)),
                100,
            ),
        )],
    );

    // From bridge member c to the router's MAC on br: routed to b, nothing to d.
    let h = V4::new(c_host, B_HOST);
    r.expect(
        "c",
        &[eth(rmac(r_br), c_mac, IPV4, &udp4(h, 5, 6, &body))],
        &[(
            "b",
            eth(B_MAC, rmac(r_b), IPV4, &udp4(h.ttl(63), 5, 6, &body)),
        )],
    );
    // The bridge learns d's host on d (the frame floods to c, and to the router,
    // which has no use for it).
    let hello = eth(BCAST, d_mac, 0x88b5, &data(46, 0));
    r.expect("d", std::slice::from_ref(&hello), &[("c", hello.clone())]);
    // From b to 10.4.0.2 (static, d's MAC): out of d only, not flooded to c.
    let h = V4::new(B_HOST, d_host);
    r.expect(
        "b",
        &[eth(rmac(r_b), B_MAC, IPV4, &udp4(h, 7, 8, &body))],
        &[(
            "d",
            eth(d_mac, rmac(r_br), IPV4, &udp4(h.ttl(63), 7, 8, &body)),
        )],
    );
    // ARP for the router from c: flooded to d as well, answered to c.
    let request = eth(
        BCAST,
        c_mac,
        ARP,
        &arp(ARP_REQUEST, c_mac, c_host, [0; 6], br_router),
    );
    let reply = eth(
        c_mac,
        rmac(r_br),
        ARP,
        &arp(ARP_REPLY, rmac(r_br), br_router, c_mac, c_host),
    );
    r.expect(
        "c",
        std::slice::from_ref(&request),
        &[("c", reply), ("d", request.clone())],
    );

    let s = r.stats();
    assert_eq!(r.grown(&s, "a.100", "rx_packets"), 1, "{s}");
    assert_eq!(r.grown(&s, "a.100", "tx_packets"), 1, "{s}");
    assert_eq!(r.grown(&s, "b", "tx_packets"), 2, "{s}");
    assert_eq!(r.grown(&s, "br", "tx_packets"), 2, "{s}");
    assert_eq!(r.grown(&s, "br", "arp_replies"), 1, "{s}");
    assert_eq!(
        s.counter_or_zero("a", "all", "drop_no_destination"),
        1,
        "{s}"
    );
    assert_eq!(drops(&s, "br"), owned(&[("unsupported", 1)]), "{s}");
    let entries = s.mac_entries("br", "02:00:00:00:00:0d");
    assert_eq!(entries.len(), 1, "{s}");
    assert_eq!(entries[0].interface, "d", "{s}");
    r.vnf.assert_running();
}

/// A VLAN-aware bridge with a router interface in each of two VLANs (`br.100`,
/// `br.200`): a host on the trunk in VLAN 100 reaches a host on the access port of
/// VLAN 200 and back, tags added and removed by the bridge; the router answers ARP in
/// VLAN 100 on the trunk, tagged; and a frame for VLAN 100's router address sent in
/// VLAN 200 never reaches the router's VLAN 100 interface.
#[test]
fn router_interfaces_in_a_bridges_vlans() {
    let _serial = serial();
    let rest = "bridges:\n  - name: br\n    members:\n\
        \x20     - { interface: t, trunk: [100, 200] }\n\
        \x20     - { interface: a, access: 200 }\n\
        router:\n  interfaces:\n\
        \x20   - { name: br.100, addresses: [10.1.0.1/24] }\n\
        \x20   - { name: br.200, addresses: [10.2.0.1/24] }\n\
        \x20 neighbors:\n\
        \x20   - { interface: br.100, address: 10.1.0.2, mac: \"02:00:00:00:00:11\" }\n\
        \x20   - { interface: br.200, address: 10.2.0.2, mac: \"02:00:00:00:00:22\" }\n";
    let mut r = Rig::start("l3-bridge-vlans", &[("t", ""), ("a", "")], rest);
    let (r100, r200) = (0, 1);
    let (x_mac, y_mac) = (host(0x11), host(0x22));
    let (x, y) = (Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 2, 0, 2));
    let body = data(80, 0x55);

    // y makes itself known on a (VLAN 200): flooded to the trunk, tagged 200.
    let hello = eth(BCAST, y_mac, 0x88b5, &data(46, 1));
    r.expect(
        "a",
        std::slice::from_ref(&hello),
        &[("t", tagged(&hello, 200))],
    );
    // x, tagged 100 on the trunk, to y: routed into VLAN 200 and out of a, untagged.
    let h = V4::new(x, y);
    r.expect(
        "t",
        &[tagged(
            &eth(rmac(r100), x_mac, IPV4, &udp4(h, 1, 2, &body)),
            100,
        )],
        &[(
            "a",
            eth(y_mac, rmac(r200), IPV4, &udp4(h.ttl(63), 1, 2, &body)),
        )],
    );
    // Back: from a to x, out of the trunk tagged 100 (the only member in VLAN 100).
    let h = V4::new(y, x);
    r.expect(
        "a",
        &[eth(rmac(r200), y_mac, IPV4, &udp4(h, 3, 4, &body))],
        &[(
            "t",
            tagged(
                &eth(x_mac, rmac(r100), IPV4, &udp4(h.ttl(63), 3, 4, &body)),
                100,
            ),
        )],
    );
    // ARP for the VLAN 100 address from the trunk: answered in VLAN 100.
    let request = eth(
        BCAST,
        x_mac,
        ARP,
        &arp(ARP_REQUEST, x_mac, x, [0; 6], Ipv4Addr::new(10, 1, 0, 1)),
    );
    let reply = eth(
        x_mac,
        rmac(r100),
        ARP,
        &arp(ARP_REPLY, rmac(r100), Ipv4Addr::new(10, 1, 0, 1), x_mac, x),
    );
    r.expect("t", &[tagged(&request, 100)], &[("t", tagged(&reply, 100))]);
    // To VLAN 100's router MAC, but in VLAN 200: unknown there, so flooded in VLAN
    // 200 (to a, and to the VLAN 200 interface, which is not that MAC's owner).
    let stray = eth(rmac(r100), y_mac, IPV4, &udp4(V4::new(y, x), 5, 6, &body));
    r.expect("t", &[tagged(&stray, 200)], &[("a", stray.clone())]);

    let s = r.stats();
    // The forwarded packet, and for br.100 the ARP reply.
    assert_eq!(r.grown(&s, "br.100", "tx_packets"), 2, "{s}");
    assert_eq!(r.grown(&s, "br.200", "tx_packets"), 1, "{s}");
    assert_eq!(r.grown(&s, "br.100", "arp_replies"), 1, "{s}");
    assert_eq!(
        drops(&s, "br.200"),
        owned(&[("not_for_us", 1), ("unsupported", 1)]),
        "{s}"
    );
    assert_eq!(drops(&s, "br.100"), vec![], "{s}");
    r.vnf.assert_running();
}
