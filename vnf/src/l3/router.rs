//! The router the workers read: its interfaces, the FIB (the two longest-prefix-match
//! tables and the next hops their entries name) and the neighbor cache. Built once from
//! the manifest; afterwards the neighbor cache changes as ARP and ND run, and routes
//! change only through [`Router::fib_writer`].

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use deploy::{Attach, Manifest, RouteAction};

use super::lpm4::{Lpm4, Lpm4Reader};
use super::lpm6::{Lpm6, Lpm6Reader};
use super::nd;
use super::neighbor::{v4_key, Neighbors};
use super::rcu::Grace;
use crate::l2::wire::Tag;
use crate::l2::L2;

/// Neighbor cache slots: ample for the hosts of a few hundred VM subnets.
const NEIGHBOR_CAPACITY: usize = 1 << 16;
/// Second-level groups of the FIB tables: room for about 60k routes longer than /24
/// (IPv4) and a 100k-route IPv6 table.
const GROUPS_V4: u32 = 1 << 16;
const GROUPS_V6: u32 = 1 << 19;

pub struct Router {
    pub ifaces: Vec<RouterIf>,
    pub fib4: Lpm4Reader,
    pub fib6: Lpm6Reader,
    /// What each FIB entry's next-hop id means.
    pub hops: Vec<NextHop>,
    /// The members of ECMP sets, each a `Connected` or `Gateway` hop.
    pub paths: Vec<NextHop>,
    pub neighbors: Neighbors,
    /// The table owners, for route changes from the control plane.
    writer: Mutex<(Lpm4, Lpm6)>,
    /// The workers' quiescent points, for reclaiming what route changes unlinked.
    pub grace: Grace,
    /// Milliseconds since start, advanced by the router's timer thread; workers read it
    /// once per batch for neighbor and ICMP rate-limit timing.
    clock: AtomicU64,
}

pub struct RouterIf {
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u16,
    pub v4: Vec<(u32, u8)>,
    pub v6: Vec<(u128, u8)>,
    /// fe80::/64 with the modified EUI-64 of `mac`.
    pub link_local: u128,
    pub egress: Egress,
}

/// Where a routed frame goes once it has its Ethernet header.
#[derive(Clone, Debug)]
pub enum Egress {
    /// Onto a port, with a subinterface's tags (innermost first) if any.
    Port { port: u16, push: Vec<Tag> },
    /// Into a bridge, as if received from the bridge's router member: `vport` is the
    /// L2 virtual port of that member.
    Bridge { vport: u16 },
}

/// What a FIB entry leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// One of the router's own addresses, on this interface.
    Local(u16),
    /// A connected subnet of this interface: the destination is the neighbor.
    Connected(u16),
    /// Through the gateway `via` (a neighbor key) on `iface`.
    Gateway {
        iface: u16,
        via: u128,
    },
    /// Equal-cost paths `paths[first..first + count]`, chosen per flow.
    Multipath {
        first: u32,
        count: u32,
    },
    Blackhole,
    Unreachable,
    Prohibit,
}

impl RouterIf {
    /// The interface's address in the subnet of `dst`, else its first IPv4 address.
    pub fn v4_source_for(&self, dst: u32) -> Option<u32> {
        self.v4
            .iter()
            .find(|(a, len)| same_prefix4(*a, dst, *len))
            .or(self.v4.first())
            .map(|(a, _)| *a)
    }

    /// Likewise for IPv6: a global address in the destination's subnet, else the first
    /// global one, else the link-local address.
    pub fn v6_source_for(&self, dst: u128) -> u128 {
        if nd_is_link_local(dst) {
            return self.link_local;
        }
        self.v6
            .iter()
            .find(|(a, len)| same_prefix6(*a, dst, *len))
            .or(self.v6.first())
            .map(|(a, _)| *a)
            .unwrap_or(self.link_local)
    }

    pub fn owns_v4(&self, a: u32) -> bool {
        self.v4.iter().any(|(x, _)| *x == a)
    }

    pub fn owns_v6(&self, a: u128) -> bool {
        a == self.link_local || self.v6.iter().any(|(x, _)| *x == a)
    }

    /// Whether `a` is on one of this interface's IPv4 subnets.
    pub fn on_link_v4(&self, a: u32) -> bool {
        self.v4.iter().any(|(x, len)| same_prefix4(*x, a, *len))
    }
}

fn nd_is_link_local(a: u128) -> bool {
    a >> 118 == 0xfe80 >> 6
}

pub fn same_prefix4(a: u32, b: u32, len: u8) -> bool {
    len == 0 || (a ^ b) >> (32 - u32::from(len)) == 0
}

pub fn same_prefix6(a: u128, b: u128, len: u8) -> bool {
    len == 0 || (a ^ b) >> (128 - u32::from(len)) == 0
}

fn mask4(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
    }
}

fn key_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => v4_key(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl Router {
    /// Builds the router of a validated manifest, or None when it has no router
    /// interfaces. `l2` gives the virtual ports of bridges' router members.
    pub fn build(m: &Manifest, l2: &L2) -> std::io::Result<Option<Router>> {
        let spec = &m.router;
        if spec.interfaces.is_empty() {
            return Ok(None);
        }
        let mut ifaces = Vec::with_capacity(spec.interfaces.len());
        for (ri, s) in spec.interfaces.iter().enumerate() {
            let egress = match s.attach {
                Attach::Bridge => Egress::Bridge {
                    vport: l2.router_vport(ri as u16),
                },
                Attach::Port => {
                    let iface = &l2.interfaces[l2
                        .interface_index(&s.name)
                        .expect("validated: routed interface exists in L2")];
                    Egress::Port {
                        port: iface.port,
                        push: iface.push.clone(),
                    }
                }
            };
            let mut v4 = Vec::new();
            let mut v6 = Vec::new();
            for p in &s.addresses {
                match p.addr {
                    IpAddr::V4(a) => v4.push((u32::from(a), p.len)),
                    IpAddr::V6(a) => v6.push((u128::from(a), p.len)),
                }
            }
            ifaces.push(RouterIf {
                name: s.name.to_string(),
                mac: s.mac,
                mtu: s.mtu,
                v4,
                v6,
                link_local: nd::link_local(s.mac),
                egress,
            });
        }

        let mut lpm4 = Lpm4::new(GROUPS_V4)?;
        let mut lpm6 = Lpm6::new(GROUPS_V6)?;
        let mut hops: Vec<NextHop> = Vec::new();
        let mut paths: Vec<NextHop> = Vec::new();
        let add = |hop: NextHop, hops: &mut Vec<NextHop>| -> u32 {
            hops.push(hop);
            (hops.len() - 1) as u32
        };
        let fail = |what: String| std::io::Error::other(what);
        // Connected subnets, then the interfaces' own addresses as host routes: the
        // longer match wins, so the order only matters for equal prefixes (none: the
        // manifest rejects overlapping subnets and repeated addresses).
        for (ri, i) in ifaces.iter().enumerate() {
            let ri = ri as u16;
            for &(a, len) in &i.v4 {
                let c = add(NextHop::Connected(ri), &mut hops);
                lpm4.insert(mask4(a, len), len, c)
                    .and_then(|_| lpm4.insert(a, 32, add(NextHop::Local(ri), &mut hops)))
                    .map_err(|e| fail(format!("{}: {e}", i.name)))?;
            }
            for &(a, len) in &i.v6 {
                let c = add(NextHop::Connected(ri), &mut hops);
                lpm6.insert(mask6(a, len), len, c)
                    .and_then(|_| lpm6.insert(a, 128, add(NextHop::Local(ri), &mut hops)))
                    .map_err(|e| fail(format!("{}: {e}", i.name)))?;
            }
        }
        for r in &spec.routes {
            let hop = match &r.action {
                RouteAction::Blackhole => NextHop::Blackhole,
                RouteAction::Unreachable => NextHop::Unreachable,
                RouteAction::Prohibit => NextHop::Prohibit,
                RouteAction::Forward(list) => {
                    let one = |n: &deploy::NextHopSpec| match n.via {
                        Some(via) => NextHop::Gateway {
                            iface: n.interface as u16,
                            via: key_of(via),
                        },
                        None => NextHop::Connected(n.interface as u16),
                    };
                    if list.len() == 1 {
                        one(&list[0])
                    } else {
                        let first = paths.len() as u32;
                        paths.extend(list.iter().map(one));
                        NextHop::Multipath {
                            first,
                            count: list.len() as u32,
                        }
                    }
                }
            };
            let id = add(hop, &mut hops);
            let done = match r.to.addr {
                IpAddr::V4(a) => lpm4
                    .insert(u32::from(a), r.to.len, id)
                    .map_err(|e| e.to_string()),
                IpAddr::V6(a) => lpm6
                    .insert(u128::from(a), r.to.len, id)
                    .map_err(|e| e.to_string()),
            };
            done.map_err(|e| fail(format!("route {}: {e}", r.to)))?;
        }

        let neighbors = Neighbors::new(NEIGHBOR_CAPACITY);
        for n in &spec.neighbors {
            if !neighbors.add_static(n.interface as u16, key_of(n.address), n.mac) {
                log::warn!("router: no room for static neighbor {}", n.address);
            }
        }
        let fib4 = lpm4.reader();
        let fib6 = lpm6.reader();
        Ok(Some(Router {
            ifaces,
            fib4,
            fib6,
            hops,
            paths,
            neighbors,
            writer: Mutex::new((lpm4, lpm6)),
            grace: Grace::new(m.workers.count),
            clock: AtomicU64::new(0),
        }))
    }
}

impl Router {
    /// Milliseconds since start (coarse: advanced every [`TICK_MS`]).
    #[inline]
    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    /// The FIB's owners, for route changes; workers keep reading meanwhile. Deleted
    /// routes' groups are reused only after [`Router::update`]'s grace period.
    pub fn fib_writer(&self) -> std::sync::MutexGuard<'_, (Lpm4, Lpm6)> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes routes with `change`, then waits for a grace period and makes the groups
    /// the change unlinked reusable. Workers forward throughout: each address switches
    /// from its old route to its new one in a single store.
    pub fn update<T>(&self, change: impl FnOnce(&mut Lpm4, &mut Lpm6) -> T) -> T {
        let mut w = self.fib_writer();
        let (v4, v6) = &mut *w;
        let result = change(v4, v6);
        if v4.groups_retired() + v6.groups_retired() > 0 {
            self.grace.synchronize();
            v4.reclaim();
            v6.reclaim();
        }
        result
    }

    /// The interface index of a next hop that leaves the router (`Connected`/`Gateway`).
    pub fn hop_iface(hop: &NextHop) -> Option<u16> {
        match *hop {
            NextHop::Connected(i) | NextHop::Gateway { iface: i, .. } => Some(i),
            _ => None,
        }
    }

    /// Advances the clock every [`TICK_MS`] and ages the neighbor cache once a second,
    /// on its own thread, until `stop` is set.
    pub fn spawn_timer(
        router: Arc<Router>,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("l3-timer".into())
            .spawn(move || {
                let start = std::time::Instant::now();
                let mut last_age = 0;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(TICK_MS));
                    let now = start.elapsed().as_millis() as u64;
                    router.clock.store(now, Ordering::Relaxed);
                    if now - last_age >= 1000 {
                        last_age = now;
                        router.neighbors.age(now);
                    }
                }
            })
    }
}

/// Resolution of the router's clock: retransmission and hold times are whole seconds.
pub const TICK_MS: u64 = 50;
