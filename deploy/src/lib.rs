//! vnf deployment manifests (format v0): the types, loading from YAML, and validation
//! that reports every problem at once with file, line, column and field.
//!
//! ```yaml
//! workers: { count: 2, cpus: [0, 1], poll: adaptive }
//! ports:
//!   - { name: vm0, type: vhost-user, socket: "${SOCKDIR}/vh0.sock", queue_pairs: 2 }
//!   - { name: vm1, type: vhost-user, socket: "${SOCKDIR}/vh1.sock", mtu: 9000 }
//!   - { name: vm2, type: vhost-user, socket: "${SOCKDIR}/vh2.sock" }
//! bridges:
//!   - name: br0
//!     members:
//!       - vm0                               # untagged frames, VLAN 1
//!       - { interface: vm1, access: 10 }    # untagged frames, VLAN 10
//!       # 802.1Q-tagged frames of VLANs 10 and 100 to 200; untagged ones are VLAN 1
//!       - { interface: vm2, trunk: [10, "100-200"], native: 1 }
//!     static_macs:
//!       - { mac: "52:54:00:00:00:01", interface: vm0 }
//! ```
#![forbid(unsafe_code)]

mod default;
mod diagnostic;
mod expand;
mod mac;
mod manifest;
mod scalar;
mod suggest;
mod tree;
mod validate;

#[cfg(test)]
mod tests;

pub use default::{DEFAULT_MANIFEST, DEFAULT_MANIFEST_NAME};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use manifest::{
    Attach, BridgeSpec, CrossConnect, InterfaceName, Manifest, MemberSpec, NeighborSpec,
    NextHopSpec, PollMode, PortKind, PortSpec, Prefix, RouteAction, RouteSpec, RouterInterfaceSpec,
    RouterSpec, SocketMode, StaticMac, Tpid, VhostUserSpec, VlanMode, VlanSet, Workers,
    DEFAULT_MAC_AGING, DEFAULT_MAC_LIMIT, DEFAULT_MTU, MAX_MAC_LIMIT, MAX_MTU, MAX_NEXT_HOPS,
};
