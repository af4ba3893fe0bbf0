//! The L2 configuration the workers read: interfaces (ports and their VLAN
//! subinterfaces), bridge domains with their members, and each bridge's MAC table.
//! Built once from the manifest; only the MAC tables and counters change afterwards.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use deploy::{Attach, InterfaceName, Manifest, Tpid, VlanMode};

use super::mactable::{key, MacTable};
use super::wire::{Tag, TPID_8021AD, TPID_8021Q};

pub struct L2 {
    /// Per port, in manifest order.
    pub ports: Vec<PortL2>,
    pub interfaces: Vec<Interface>,
    pub bridges: Vec<Bridge>,
    /// Total members over all bridges: the length of each worker's member counters.
    pub member_count: usize,
    /// Index of the first virtual port: `ports[router_base + i]` stands for router
    /// interface `i` (frames sent to it are routed; frames from a bridge's router
    /// interface enter the bridge through it).
    pub router_base: u16,
    /// Seconds since start, advanced by the ager; read once per batch by workers.
    clock: AtomicU32,
}

pub struct PortL2 {
    pub mtu: u16,
    /// When the port has no subinterfaces and is itself an access member: its bridge,
    /// member index and VLAN, which every untagged frame of the port belongs to (known
    /// before parsing, so the batch skips classification and prefetches its lookups).
    pub access: Option<Access>,
    /// The interface that is the port itself (frames no subinterface claims).
    pub main: u16,
    pub subifs: Vec<SubIf>,
}

#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub bridge: u16,
    pub member: u16,
    pub vlan: u16,
}

/// A subinterface's match: frames whose outer tag is `outer` and, for a double-tagged
/// one, whose inner 802.1Q tag is `inner` (0 for a single tag).
#[derive(Clone, Copy, Debug)]
pub struct SubIf {
    pub outer: u16,
    pub inner: u16,
    pub iface: u16,
}

pub struct Interface {
    pub name: String,
    pub port: u16,
    /// Tags to add on the way out, in push order (innermost first).
    pub push: Vec<Tag>,
    /// The bridge and member index within it, if the interface is a bridge member.
    pub member: Option<(u16, u16)>,
    /// The router interface it is, if routed.
    pub routed: Option<u16>,
}

#[derive(Clone, Debug)]
pub enum Mode {
    Access(u16),
    Trunk {
        tpid: u16,
        allowed: Box<[u64; 64]>,
        native: Option<u16>,
    },
}

impl Mode {
    /// Whether frames of `vlan` may cross this member.
    pub fn carries(&self, vlan: u16) -> bool {
        match self {
            Mode::Access(v) => *v == vlan,
            Mode::Trunk {
                allowed, native, ..
            } => {
                *native == Some(vlan)
                    || allowed[(vlan >> 6) as usize & 63] & (1 << (vlan & 63)) != 0
            }
        }
    }
}

pub struct Member {
    pub iface: u16,
    pub port: u16,
    pub mode: Mode,
    /// Frames leave exactly as they are held inside the bridge (an access member that
    /// is a port, not a subinterface): nothing to add.
    pub plain: bool,
    /// Longest frame the member's port takes without counting tags (header + MTU).
    pub max_untagged: usize,
    /// Index into every worker's member counters.
    pub counter: usize,
}

pub struct Bridge {
    pub name: String,
    pub table: MacTable,
    pub aging: u32,
    pub members: Vec<Member>,
    /// Per VLAN, the members that carry it (flooding targets).
    pub flood: Vec<Box<[u16]>>,
    /// Entries removed by aging.
    pub aged: AtomicU64,
}

/// The VLAN of a bridge that its router interface is in when its name has no VLAN.
pub const ROUTER_VLAN: u16 = 1;

/// The bridge VLAN of a router interface attached to a bridge (`br0` or `br0.VID`).
fn router_vlan(r: &deploy::RouterInterfaceSpec) -> u16 {
    r.name.tags.first().copied().unwrap_or(ROUTER_VLAN)
}

fn tpid(t: Tpid) -> u16 {
    match t {
        Tpid::Dot1q => TPID_8021Q,
        Tpid::Dot1ad => TPID_8021AD,
    }
}

impl L2 {
    /// Builds the configuration; the manifest has been validated, so every name resolves.
    pub fn build(m: &Manifest) -> L2 {
        let mut ports: Vec<PortL2> = Vec::with_capacity(m.ports.len());
        let mut interfaces: Vec<Interface> = Vec::new();
        for (i, p) in m.ports.iter().enumerate() {
            ports.push(PortL2 {
                mtu: p.mtu,
                access: None,
                main: interfaces.len() as u16,
                subifs: Vec::new(),
            });
            interfaces.push(Interface {
                name: p.name.clone(),
                port: i as u16,
                push: Vec::new(),
                member: None,
                routed: None,
            });
        }
        let port_index = |name: &str| m.ports.iter().position(|p| p.name == name);
        let mut iface_of = |name: &InterfaceName, interfaces: &mut Vec<Interface>| -> u16 {
            let p = port_index(&name.port).expect("validated port name");
            if name.tags.is_empty() {
                return ports[p].main;
            }
            let (outer, inner) = (name.tags[0], name.tags.get(1).copied().unwrap_or(0));
            if let Some(s) = ports[p]
                .subifs
                .iter()
                .find(|s| s.outer == outer && s.inner == inner)
            {
                return s.iface;
            }
            let id = interfaces.len() as u16;
            let push = if inner == 0 {
                vec![Tag {
                    tpid: TPID_8021Q,
                    tci: outer,
                }]
            } else {
                vec![
                    Tag {
                        tpid: TPID_8021Q,
                        tci: inner,
                    },
                    Tag {
                        tpid: TPID_8021AD,
                        tci: outer,
                    },
                ]
            };
            interfaces.push(Interface {
                name: name.to_string(),
                port: p as u16,
                push,
                member: None,
                routed: None,
            });
            ports[p].subifs.push(SubIf {
                outer,
                inner,
                iface: id,
            });
            id
        };

        let mut bridges = Vec::with_capacity(m.bridges.len());
        let mut member_count = 0;
        for (bi, b) in m.bridges.iter().enumerate() {
            let mut members = Vec::with_capacity(b.members.len());
            for (mi, spec) in b.members.iter().enumerate() {
                let iface = iface_of(&spec.interface, &mut interfaces);
                interfaces[iface as usize].member = Some((bi as u16, mi as u16));
                let mode = match &spec.vlan {
                    VlanMode::Access(v) => Mode::Access(*v),
                    VlanMode::Trunk {
                        trunk,
                        native,
                        tpid: t,
                    } => Mode::Trunk {
                        tpid: tpid(*t),
                        allowed: Box::new(trunk.0),
                        native: *native,
                    },
                };
                let port = interfaces[iface as usize].port;
                members.push(Member {
                    iface,
                    port,
                    plain: matches!(mode, Mode::Access(_))
                        && interfaces[iface as usize].push.is_empty(),
                    max_untagged: super::wire::ETH_HEADER + m.ports[port as usize].mtu as usize,
                    mode,
                    counter: member_count,
                });
                member_count += 1;
            }
            // Each router interface of the bridge is one more access member, in its
            // VLAN (1 unless named BRIDGE.VID), on the virtual port of that interface.
            let mut router_members = Vec::new();
            for (ri, r) in m.router.interfaces.iter().enumerate() {
                if r.attach != Attach::Bridge || r.name.port != b.name {
                    continue;
                }
                let vlan = router_vlan(r);
                let iface = interfaces.len() as u16;
                let vport = (m.ports.len() + ri) as u16;
                interfaces.push(Interface {
                    name: r.name.to_string(),
                    port: vport,
                    push: Vec::new(),
                    member: Some((bi as u16, members.len() as u16)),
                    routed: None,
                });
                router_members.push((key(vlan, &r.mac), members.len() as u16));
                members.push(Member {
                    iface,
                    port: vport,
                    mode: Mode::Access(vlan),
                    plain: true,
                    max_untagged: super::wire::ETH_HEADER + r.mtu as usize,
                    counter: member_count,
                });
                member_count += 1;
            }
            let flood = (0..4096u16)
                .map(|vlan| {
                    (0..members.len() as u16)
                        .filter(|&i| members[i as usize].mode.carries(vlan))
                        .collect()
                })
                .collect();
            let table = MacTable::new(b.mac_limit, b.static_macs.len() + router_members.len());
            for (k, member) in router_members {
                // The router's address is pinned to its member: no guest can draw the
                // gateway's traffic away by sending from it.
                table.add_static(k, member);
            }
            for s in &b.static_macs {
                let iface = iface_of(&s.interface, &mut interfaces);
                let member = members
                    .iter()
                    .position(|m| m.iface == iface)
                    .expect("validated: static MAC on a member")
                    as u16;
                if !table.add_static(key(s.vlan, &s.mac), member) {
                    log::warn!("bridge {}: no room for static MAC entries", b.name);
                }
            }
            bridges.push(Bridge {
                name: b.name.clone(),
                table,
                aging: b.mac_aging,
                members,
                flood,
                aged: AtomicU64::new(0),
            });
        }
        for (ri, r) in m.router.interfaces.iter().enumerate() {
            if r.attach == Attach::Port {
                let iface = iface_of(&r.name, &mut interfaces);
                interfaces[iface as usize].routed = Some(ri as u16);
            }
        }
        for p in &mut ports {
            // Double-tagged matches are tried before single ones.
            p.subifs.sort_by_key(|s| (s.inner == 0, s.outer, s.inner));
            if let (true, Some((b, m))) = (p.subifs.is_empty(), interfaces[p.main as usize].member)
            {
                if let Mode::Access(vlan) = bridges[b as usize].members[m as usize].mode {
                    p.access = Some(Access {
                        bridge: b,
                        member: m,
                        vlan,
                    });
                }
            }
        }
        let router_base = ports.len() as u16;
        for (ri, r) in m.router.interfaces.iter().enumerate() {
            let bvi = interfaces
                .iter()
                .position(|i| i.port == router_base + ri as u16);
            let access = bvi.and_then(|i| interfaces[i].member).map(|(b, m)| Access {
                bridge: b,
                member: m,
                vlan: router_vlan(r),
            });
            ports.push(PortL2 {
                mtu: r.mtu,
                access,
                main: bvi.unwrap_or(0) as u16,
                subifs: Vec::new(),
            });
        }
        L2 {
            ports,
            interfaces,
            bridges,
            member_count,
            router_base,
            clock: AtomicU32::new(0),
        }
    }

    /// The virtual port of router interface `ri`.
    pub fn router_vport(&self, ri: u16) -> u16 {
        self.router_base + ri
    }

    /// The interface called `name` (a port or subinterface).
    pub fn interface_index(&self, name: &InterfaceName) -> Option<usize> {
        let name = name.to_string();
        self.interfaces.iter().position(|i| i.name == name)
    }

    /// Whether any interface of `port` is routed.
    pub fn is_routed(&self, port: u16) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.port == port && i.routed.is_some())
    }

    /// Whether any interface of `port` is a bridge member.
    pub fn is_bridged(&self, port: u16) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.port == port && i.member.is_some())
    }

    #[inline]
    pub fn now(&self) -> u32 {
        self.clock.load(Ordering::Relaxed)
    }

    /// Advances the clock to `secs` and removes entries older than each bridge's aging.
    pub fn tick(&self, secs: u32) {
        self.clock.store(secs, Ordering::Relaxed);
        for b in &self.bridges {
            if b.aging > 0 {
                let n = b.table.age(secs, b.aging);
                b.aged.fetch_add(u64::from(n), Ordering::Relaxed);
            }
        }
    }

    /// Runs [`L2::tick`] once a second on its own thread until `stop` is set.
    pub fn spawn_ager(
        l2: std::sync::Arc<L2>,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("l2-ager".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let mut last = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Short naps so a stop request is seen quickly; one sweep a second.
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    let secs = start.elapsed().as_secs() as u32;
                    if secs != last {
                        last = secs;
                        l2.tick(secs);
                    }
                }
            })
    }
}
