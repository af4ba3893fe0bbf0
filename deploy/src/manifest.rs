//! The typed manifest and the entry points that produce it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::default::{DEFAULT_MANIFEST, DEFAULT_MANIFEST_NAME};
use crate::diagnostic::{Diagnostic, Diagnostics, Pos, Report};
use crate::{expand, mac, tree, validate};

/// A validated manifest: every default filled in and every `${VAR}` expanded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub workers: Workers,
    pub ports: Vec<PortSpec>,
    pub bridges: Vec<BridgeSpec>,
    pub cross_connects: Vec<CrossConnect>,
    /// Left out of the written manifest when empty, as users leave it out.
    #[serde(skip_serializing_if = "RouterSpec::is_empty")]
    pub router: RouterSpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workers {
    pub count: usize,
    /// One CPU per worker, in worker order; `None` leaves placement to the scheduler
    /// (the process's inherited affinity mask).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<usize>>,
    pub poll: PollMode,
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            count: 1,
            cpus: None,
            poll: PollMode::Adaptive,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PollMode {
    /// Spin while traffic flows, sleep on the queues' kick eventfds when idle.
    Adaptive,
    /// Spin always: lowest latency, one core fully used per worker.
    Busy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    pub name: String,
    /// Largest payload after the Ethernet header and any VLAN tags (as Linux counts
    /// MTU), 68..=9216, default 1500. Offered in the device config (VIRTIO_NET_F_MTU;
    /// QEMU ignores it and takes its own `host_mtu`); longer frames are dropped as
    /// `oversize` on receive and `mtu_exceeded` on transmit.
    pub mtu: u16,
    /// Flattened so the written manifest has `type:` beside `name:`, as users write it.
    #[serde(flatten)]
    pub kind: PortKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum PortKind {
    #[serde(rename = "vhost-user")]
    VhostUser(VhostUserSpec),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VhostUserSpec {
    #[serde(serialize_with = "serialize_socket")]
    pub socket: PathBuf,
    pub mode: SocketMode,
    pub queue_pairs: u16,
    #[serde(serialize_with = "serialize_mac")]
    pub mac: [u8; 6],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketMode {
    /// vnf creates and listens on the socket; the VMM connects.
    Server,
    /// vnf connects to a socket the VMM listens on, and reconnects when it goes away.
    Client,
}

/// A bridge domain: an L2 switch with MAC learning between its members, VLAN-aware
/// (each VLAN is its own broadcast domain with its own MAC entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BridgeSpec {
    /// Unique among bridges and ports.
    pub name: String,
    /// Seconds an unrefreshed learned entry lives; 0 keeps entries until they move.
    pub mac_aging: u32,
    /// Most learned entries the bridge holds (static entries not counted).
    pub mac_limit: u32,
    pub members: Vec<MemberSpec>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub static_macs: Vec<StaticMac>,
}

/// Default of [`BridgeSpec::mac_aging`]: 300 s, as in IEEE 802.1D and most switches.
pub const DEFAULT_MAC_AGING: u32 = 300;
/// Default of [`BridgeSpec::mac_limit`].
pub const DEFAULT_MAC_LIMIT: u32 = 65536;
/// Largest accepted [`BridgeSpec::mac_limit`] (the table is sized from it).
pub const MAX_MAC_LIMIT: u32 = 1 << 24;
/// Largest accepted [`PortSpec::mtu`].
pub const MAX_MTU: u16 = 9216;
/// Default of [`PortSpec::mtu`].
pub const DEFAULT_MTU: u16 = 1500;

/// A port (`vm0`) or a VLAN subinterface of one: `vm0.100` carries the frames tagged
/// 100 on vm0, `vm0.300.400` those with outer tag 300 and inner tag 400; the tags are
/// removed on the way in and added on the way out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceName {
    pub port: String,
    /// Outer tag first; empty for the port itself.
    pub tags: Vec<u16>,
}

impl std::fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.port)?;
        for t in &self.tags {
            write!(f, ".{t}")?;
        }
        Ok(())
    }
}

impl Serialize for InterfaceName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberSpec {
    pub interface: InterfaceName,
    #[serde(flatten)]
    pub vlan: VlanMode,
}

/// How a member's frames map to the bridge's VLANs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
// The trunk's 512-byte bitmap stays inline: a manifest holds a handful of members, built
// once, and a lookup per frame should not chase a pointer.
#[allow(clippy::large_enum_variant)]
pub enum VlanMode {
    /// Untagged frames (and priority-tagged, VID 0) belong to this VLAN; tagged frames
    /// are dropped. Frames leave untagged. The default is `access: 1`.
    Access(u16),
    /// Frames carry a tag of type `tpid` whose VLAN must be in `allowed`; untagged
    /// frames belong to `native` if set (and leave untagged), else are dropped.
    #[serde(untagged)]
    Trunk {
        trunk: VlanSet,
        #[serde(skip_serializing_if = "Option::is_none")]
        native: Option<u16>,
        tpid: Tpid,
    },
}

/// The tag type a trunk member sends and accepts.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub enum Tpid {
    /// 0x8100, a customer tag.
    #[serde(rename = "802.1q")]
    Dot1q,
    /// 0x88a8, a service tag (QinQ: an inner 802.1Q tag is carried as payload).
    #[serde(rename = "802.1ad")]
    Dot1ad,
}

/// A set of VLAN IDs (1..=4094), written as a list of numbers and `A-B` ranges.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet(pub [u64; 64]);

impl VlanSet {
    pub fn empty() -> VlanSet {
        VlanSet([0; 64])
    }
    pub fn insert(&mut self, vid: u16) {
        self.0[(vid >> 6) as usize & 63] |= 1 << (vid & 63);
    }
    pub fn contains(&self, vid: u16) -> bool {
        self.0[(vid >> 6) as usize & 63] & (1 << (vid & 63)) != 0
    }
    /// The set as sorted inclusive ranges.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for vid in 0..4096u16 {
            if !self.contains(vid) {
                continue;
            }
            match out.last_mut() {
                Some((_, hi)) if *hi + 1 == vid => *hi = vid,
                _ => out.push((vid, vid)),
            }
        }
        out
    }
}

impl std::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ranges()).finish()
    }
}

/// Written as `[10, 20, "100-200"]`, the form the manifest accepts.
impl Serialize for VlanSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let ranges = self.ranges();
        let mut seq = s.serialize_seq(Some(ranges.len()))?;
        for (lo, hi) in ranges {
            if lo == hi {
                seq.serialize_element(&lo)?;
            } else {
                seq.serialize_element(&format!("{lo}-{hi}"))?;
            }
        }
        seq.end()
    }
}

/// A MAC entry that never ages and never moves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaticMac {
    #[serde(serialize_with = "serialize_mac")]
    pub mac: [u8; 6],
    pub interface: InterfaceName,
    pub vlan: u16,
}

/// Two ports, by name, that forward every frame to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "[String; 2]")]
pub struct CrossConnect {
    pub a: String,
    pub b: String,
}

/// Written as `[a, b]`, the form the manifest accepts.
impl From<CrossConnect> for [String; 2] {
    fn from(cc: CrossConnect) -> Self {
        [cc.a, cc.b]
    }
}

/// The router: IP interfaces on ports, VLAN subinterfaces and bridges, with static
/// routes and neighbors. Empty when the manifest has no `router` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterSpec {
    pub interfaces: Vec<RouterInterfaceSpec>,
    pub routes: Vec<RouteSpec>,
    pub neighbors: Vec<NeighborSpec>,
}

impl RouterSpec {
    pub fn is_empty(&self) -> bool {
        self.interfaces.is_empty() && self.routes.is_empty() && self.neighbors.is_empty()
    }
}

/// Most next hops of one route (equal-cost multipath).
pub const MAX_NEXT_HOPS: usize = 16;

/// An IP address with a prefix length: `10.0.0.1/24`, `fd00::1/64`. Serialized as that
/// string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The prefix with its host bits cleared: `10.0.1.1/24` -> `10.0.1.0/24`.
    pub fn network(&self) -> Prefix {
        Prefix {
            addr: masked(self.addr, self.len),
            len: self.len,
        }
    }

    /// Whether `ip` is of the same family and within the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_v4() && masked(ip, self.len) == self.network().addr
    }
}

/// `ip` with all but its first `len` bits cleared (a longer `len` than the family has
/// keeps every bit, so a hand-built `Prefix` cannot make this overflow).
fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An IP interface of the router.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouterInterfaceSpec {
    /// A port (`vm0`), a VLAN subinterface (`vm0.100`, `vm0.300.400`), or a bridge's
    /// name (the bridge's own routed interface, like VPP's BVI; then `name.port` is the
    /// bridge name and `name.tags` is empty).
    pub name: InterfaceName,
    /// Follows from the name, so it is not written.
    #[serde(skip)]
    pub attach: Attach,
    /// Default: 02:76:6e:00:HH:LL where HHLL is the interface's index in
    /// router.interfaces (big endian u16).
    #[serde(serialize_with = "serialize_mac")]
    pub mac: [u8; 6],
    /// Default: the port's mtu; for a bridge, the smallest mtu among its members'
    /// ports, and never more than that. 68..=9216, and at least 1280 with an IPv6
    /// address.
    pub mtu: u16,
    /// At least one; each one's subnet is connected to this interface.
    pub addresses: Vec<Prefix>,
}

/// What a router interface's name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// A port or a VLAN subinterface of one.
    Port,
    /// A bridge: the router is one more member of it.
    Bridge,
}

/// A static route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Host bits are zero.
    pub to: Prefix,
    pub action: RouteAction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAction {
    /// One next hop, or several for ECMP (at most [`MAX_NEXT_HOPS`]).
    Forward(Vec<NextHopSpec>),
    /// Silently dropped.
    Blackhole,
    /// Dropped with ICMP destination unreachable.
    Unreachable,
    /// Dropped with ICMP administratively prohibited.
    Prohibit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHopSpec {
    /// The gateway; `None` means the destination is on-link on `interface`.
    pub via: Option<IpAddr>,
    /// Index into router.interfaces: given explicitly, or the interface whose
    /// connected subnet contains `via`.
    pub interface: usize,
}

/// A static neighbor (ARP or ND) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborSpec {
    /// Index into router.interfaces.
    pub interface: usize,
    pub address: IpAddr,
    pub mac: [u8; 6],
}

/// Written in the form the manifest accepts: routes and neighbors name their
/// interfaces rather than give indexes.
impl Serialize for RouterSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let name = |index: usize| {
            self.interfaces
                .get(index)
                .map(|i| &i.name)
                .ok_or_else(|| S::Error::custom(format!("no router interface {index}")))
        };
        let mut routes = Vec::with_capacity(self.routes.len());
        for route in &self.routes {
            routes.push(RouteOut::new(route, name)?);
        }
        let mut neighbors = Vec::with_capacity(self.neighbors.len());
        for n in &self.neighbors {
            neighbors.push(NeighborOut {
                interface: name(n.interface)?,
                address: n.address,
                mac: n.mac,
            });
        }
        RouterOut {
            interfaces: self.interfaces.iter().collect(),
            routes,
            neighbors,
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
struct RouterOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<&'a RouterInterfaceSpec>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<RouteOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    neighbors: Vec<NeighborOut<'a>>,
}

#[derive(Serialize)]
struct RouteOut<'a> {
    to: Prefix,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<Gateways>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<&'a InterfaceName>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
}

impl<'a> RouteOut<'a> {
    fn new<E>(
        route: &RouteSpec,
        name: impl Fn(usize) -> Result<&'a InterfaceName, E>,
    ) -> Result<Self, E> {
        let mut out = RouteOut {
            to: route.to,
            via: None,
            interface: None,
            kind: None,
        };
        let hops = match &route.action {
            RouteAction::Forward(hops) => hops,
            RouteAction::Blackhole => return Ok(out.with_kind("blackhole")),
            RouteAction::Unreachable => return Ok(out.with_kind("unreachable")),
            RouteAction::Prohibit => return Ok(out.with_kind("prohibit")),
        };
        let gateways: Vec<IpAddr> = hops.iter().filter_map(|h| h.via).collect();
        out.via = match gateways.len() {
            0 => None,
            1 => Some(Gateways::One(gateways[0])),
            _ => Some(Gateways::Many(gateways)),
        };
        // The interface is written whenever the next hops share one, which is always
        // valid input; ECMP over several interfaces leaves each to be found from its
        // gateway's subnet again.
        if let Some(first) = hops.first() {
            if hops.iter().all(|h| h.interface == first.interface) {
                out.interface = Some(name(first.interface)?);
            }
        }
        Ok(out)
    }

    fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = Some(kind);
        self
    }
}

/// One gateway is written as a scalar, several as a list, as users write them.
#[derive(Serialize)]
#[serde(untagged)]
enum Gateways {
    One(IpAddr),
    Many(Vec<IpAddr>),
}

#[derive(Serialize)]
struct NeighborOut<'a> {
    interface: &'a InterfaceName,
    address: IpAddr,
    #[serde(serialize_with = "serialize_mac")]
    mac: [u8; 6],
}

fn serialize_socket<S: Serializer>(socket: &Path, s: S) -> Result<S::Ok, S::Error> {
    // Escaped so that feeding `to_yaml` output back in yields this same path rather
    // than expanding a `$` a second time.
    s.serialize_str(&expand::escape(&socket.to_string_lossy()))
}

fn serialize_mac<S: Serializer>(address: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&mac::format(address))
}

impl Manifest {
    /// Parses and validates `text`; `file` names the source in diagnostics; `env` looks up variables.
    ///
    /// On failure every problem found is returned, sorted by position. A YAML syntax
    /// error is the exception: the text after it cannot be read, so it ends the pass.
    pub fn parse(
        file: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, Diagnostics> {
        let mut report = Report::new(file);
        let manifest = tree::build(text, &mut report)
            .and_then(|root| validate::manifest(&root, env, &mut report));
        match manifest {
            Some(manifest) if report.is_clean() => Ok(manifest),
            _ => {
                if report.is_clean() {
                    // Every check that fails reports why; reaching here is our bug, and
                    // the user still deserves a diagnostic rather than a panic.
                    report.error(
                        Pos { line: 1, column: 1 },
                        "",
                        "internal error: manifest rejected without a reason",
                    );
                }
                Err(report.finish())
            }
        }
    }

    /// Reads the file and parses it with the process environment. An unreadable file is one Diagnostic at line 0 col 0.
    pub fn load(path: &Path) -> Result<Manifest, Diagnostics> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics(vec![Diagnostic {
                file: file.clone(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("cannot read manifest: {e}"),
            }])
        })?;
        Manifest::parse(&file, &text, &|name| std::env::var(name).ok())
    }

    /// The manifest `vnf run` uses when given no file; see [`DEFAULT_MANIFEST`].
    pub fn default_manifest() -> Manifest {
        // The embedded text takes no variables, so the environment cannot break it; a
        // unit test parses it, so a failure here means the crate shipped broken.
        Manifest::parse(DEFAULT_MANIFEST_NAME, DEFAULT_MANIFEST, &|_| None)
            .unwrap_or_else(|d| panic!("embedded default manifest is invalid:\n{d}"))
    }

    /// The normalized manifest as YAML: defaults written out, variables expanded. It
    /// parses back to an equal `Manifest`.
    pub fn to_yaml(&self) -> String {
        // Every field is a string, integer, enum or list of those, and the socket path is
        // written lossily, so serde_yaml has nothing here it could reject; the one error
        // of our own, a route or neighbor naming no router interface, validation rules out.
        serde_yaml::to_string(self).expect("a Manifest always serializes to YAML")
    }

    pub fn port(&self, name: &str) -> Option<&PortSpec> {
        self.ports.iter().find(|p| p.name == name)
    }
}
