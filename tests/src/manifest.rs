//! Builds the vnf manifests that tests use.

use crate::guest::{Nic, SocketRole};
use crate::net::Tpid;
use std::path::{Path, PathBuf};

/// Which side of the vhost-user socket vnf is on (the manifest's `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Server,
    Client,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Server => "server",
            Mode::Client => "client",
        }
    }

    /// The role QEMU must take on the other end.
    pub fn qemu_role(self) -> SocketRole {
        match self {
            Mode::Server => SocketRole::Connect,
            Mode::Client => SocketRole::Listen,
        }
    }
}

/// A vhost-user port.
#[derive(Clone, Debug)]
pub struct Port {
    pub name: String,
    pub socket: PathBuf,
    pub mode: Mode,
    pub queue_pairs: u32,
    /// The manifest's `mtu`; `None` leaves vnf's default (1500).
    pub mtu: Option<u32>,
}

impl Port {
    /// Port `name` with its socket `DIR/NAME.sock`.
    pub fn new(name: &str, dir: &Path, mode: Mode, queue_pairs: u32) -> Port {
        Port {
            name: name.to_string(),
            socket: dir.join(format!("{name}.sock")),
            mode,
            queue_pairs,
            mtu: None,
        }
    }

    /// Sets the manifest's `mtu` for this port (the QEMU side is left alone: see
    /// [`Nic::mtu`] for offering an MTU to the guest).
    pub fn mtu(mut self, mtu: u32) -> Port {
        self.mtu = Some(mtu);
        self
    }

    /// The port's entry in the manifest's `ports:` list, as one flow mapping.
    fn yaml(&self) -> String {
        let socket = self.socket.to_str().expect("UTF-8 socket path");
        assert!(
            !socket.contains(['"', '\\']),
            "socket path needs no YAML escaping"
        );
        let mut yaml = format!(
            "{{ name: {}, type: vhost-user, socket: \"{socket}\", mode: {}, queue_pairs: {}",
            self.name,
            self.mode.as_str(),
            self.queue_pairs
        );
        if let Some(mtu) = self.mtu {
            yaml.push_str(&format!(", mtu: {mtu}"));
        }
        yaml.push_str(" }");
        yaml
    }

    /// The QEMU NIC that attaches to this port.
    pub fn nic(&self, mac: &str) -> Nic {
        Nic::new(&self.socket, self.mode.qemu_role(), mac).queues(self.queue_pairs)
    }
}

/// A manifest with `ports`, cross-connected pairwise in order (first with second,
/// third with fourth, ...).
pub fn cross_connected(workers: u32, ports: &[Port]) -> String {
    let mut yaml = workers_and_ports(workers, ports);
    yaml.push_str("cross_connects:\n");
    for pair in ports.chunks(2) {
        if let [a, b] = pair {
            yaml.push_str(&format!("  - [{}, {}]\n", a.name, b.name));
        }
    }
    yaml
}

fn workers_and_ports(workers: u32, ports: &[Port]) -> String {
    let mut yaml = format!("workers: {{ count: {workers}, poll: adaptive }}\nports:\n");
    for p in ports {
        yaml.push_str(&format!("  - {}\n", p.yaml()));
    }
    yaml
}

/// A manifest with `ports` and `bridges` (and no cross-connects).
pub fn bridged(workers: u32, ports: &[Port], bridges: &[Bridge]) -> String {
    let mut yaml = workers_and_ports(workers, ports);
    yaml.push_str("bridges:\n");
    for b in bridges {
        yaml.push_str(&b.yaml());
    }
    yaml
}

/// A manifest with `ports` and a `router:` section given as YAML text (indented as a
/// top-level key, starting with `router:`).
pub fn routed(workers: u32, ports: &[Port], router: &str) -> String {
    let mut yaml = workers_and_ports(workers, ports);
    yaml.push_str(router);
    if !yaml.ends_with('\n') {
        yaml.push('\n');
    }
    yaml
}

/// How a bridge member maps frames to the bridge's VLANs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanMode {
    /// Written as the bare interface name: vnf's default, access VLAN 1.
    Default,
    /// Untagged on the wire, in this VLAN inside the bridge.
    Access(u16),
    /// Tagged with `tpid` for the allowed VLANs; untagged frames belong to `native`.
    Trunk {
        allowed: Vec<u16>,
        native: Option<u16>,
        tpid: Option<Tpid>,
    },
}

/// A member of a bridge: a port (`vm0`) or a VLAN subinterface of one (`vm0.100`,
/// `vm0.300.400`), with its VLAN mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub interface: String,
    pub vlan: VlanMode,
}

impl Member {
    /// `interface` in access VLAN 1, written the short way (`- vm0`).
    pub fn plain(interface: &str) -> Member {
        Member {
            interface: interface.to_string(),
            vlan: VlanMode::Default,
        }
    }

    pub fn access(interface: &str, vlan: u16) -> Member {
        Member {
            interface: interface.to_string(),
            vlan: VlanMode::Access(vlan),
        }
    }

    /// An 802.1Q trunk (no `tpid` written: vnf's default) allowing `vlans`, no native VLAN.
    pub fn trunk(interface: &str, vlans: &[u16]) -> Member {
        Member {
            interface: interface.to_string(),
            vlan: VlanMode::Trunk {
                allowed: vlans.to_vec(),
                native: None,
                tpid: None,
            },
        }
    }

    /// Sets the native VLAN of a trunk member.
    pub fn native(mut self, vlan: u16) -> Member {
        match &mut self.vlan {
            VlanMode::Trunk { native, .. } => *native = Some(vlan),
            other => panic!("native VLAN on a member that is not a trunk: {other:?}"),
        }
        self
    }

    /// Sets the tag type of a trunk member.
    pub fn tpid(mut self, tag: Tpid) -> Member {
        match &mut self.vlan {
            VlanMode::Trunk { tpid, .. } => *tpid = Some(tag),
            other => panic!("tpid on a member that is not a trunk: {other:?}"),
        }
        self
    }

    fn yaml(&self) -> String {
        let name = &self.interface;
        match &self.vlan {
            VlanMode::Default => name.clone(),
            VlanMode::Access(vlan) => format!("{{ interface: {name}, access: {vlan} }}"),
            VlanMode::Trunk {
                allowed,
                native,
                tpid,
            } => {
                let list: Vec<String> = allowed.iter().map(u16::to_string).collect();
                let mut yaml = format!("{{ interface: {name}, trunk: [{}]", list.join(", "));
                if let Some(native) = native {
                    yaml.push_str(&format!(", native: {native}"));
                }
                if let Some(tpid) = tpid {
                    yaml.push_str(&format!(", tpid: {}", tpid.as_str()));
                }
                yaml.push_str(" }");
                yaml
            }
        }
    }
}

/// A bridge for [`bridged`].
#[derive(Clone, Debug)]
pub struct Bridge {
    pub name: String,
    pub mac_aging: Option<u32>,
    pub mac_limit: Option<u32>,
    pub members: Vec<Member>,
    /// `(mac, interface, vlan)`; no `vlan` written when `None`.
    pub static_macs: Vec<(String, String, Option<u16>)>,
}

impl Bridge {
    pub fn new(name: &str) -> Bridge {
        Bridge {
            name: name.to_string(),
            mac_aging: None,
            mac_limit: None,
            members: Vec::new(),
            static_macs: Vec::new(),
        }
    }

    pub fn member(mut self, member: Member) -> Bridge {
        self.members.push(member);
        self
    }

    pub fn mac_aging(mut self, seconds: u32) -> Bridge {
        self.mac_aging = Some(seconds);
        self
    }

    pub fn mac_limit(mut self, entries: u32) -> Bridge {
        self.mac_limit = Some(entries);
        self
    }

    pub fn static_mac(mut self, mac: &str, interface: &str, vlan: Option<u16>) -> Bridge {
        self.static_macs
            .push((mac.to_string(), interface.to_string(), vlan));
        self
    }

    fn yaml(&self) -> String {
        let mut yaml = format!("  - name: {}\n", self.name);
        if let Some(aging) = self.mac_aging {
            yaml.push_str(&format!("    mac_aging: {aging}\n"));
        }
        if let Some(limit) = self.mac_limit {
            yaml.push_str(&format!("    mac_limit: {limit}\n"));
        }
        yaml.push_str("    members:\n");
        for m in &self.members {
            yaml.push_str(&format!("      - {}\n", m.yaml()));
        }
        if !self.static_macs.is_empty() {
            yaml.push_str("    static_macs:\n");
            for (mac, interface, vlan) in &self.static_macs {
                yaml.push_str(&format!(
                    "      - {{ mac: \"{mac}\", interface: {interface}"
                ));
                if let Some(vlan) = vlan {
                    yaml.push_str(&format!(", vlan: {vlan}"));
                }
                yaml.push_str(" }\n");
            }
        }
        yaml
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_ports_in_order() {
        let dir = Path::new("/tmp/s");
        let yaml = cross_connected(
            2,
            &[
                Port::new("vm0", dir, Mode::Server, 2),
                Port::new("vm1", dir, Mode::Client, 2),
            ],
        );
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(doc["workers"]["count"].as_u64(), Some(2));
        assert_eq!(doc["ports"][0]["socket"].as_str(), Some("/tmp/s/vm0.sock"));
        assert_eq!(doc["ports"][1]["mode"].as_str(), Some("client"));
        assert_eq!(doc["ports"][1]["queue_pairs"].as_u64(), Some(2));
        assert_eq!(doc["cross_connects"][0][1].as_str(), Some("vm1"));
        assert!(doc["ports"][0].get("mtu").is_none());
    }

    #[test]
    fn writes_bridges_in_the_manifest_schema() {
        let dir = Path::new("/tmp/s");
        let ports = [
            Port::new("vm0", dir, Mode::Server, 1).mtu(9000),
            Port::new("vm1", dir, Mode::Server, 1),
            Port::new("vm2", dir, Mode::Server, 1),
        ];
        let bridge = Bridge::new("br0")
            .mac_aging(30)
            .member(Member::plain("vm0"))
            .member(Member::access("vm1", 10))
            .member(Member::trunk("vm2", &[10, 20]).native(1))
            .member(Member::trunk("vm3", &[100]).tpid(Tpid::Dot1ad))
            .member(Member::access("vm4.300.400", 10))
            .static_mac("02:00:00:00:00:01", "vm0", None);
        let yaml = bridged(1, &ports, &[bridge]);
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(doc["ports"][0]["mtu"].as_u64(), Some(9000), "{yaml}");
        assert!(doc.get("cross_connects").is_none());
        let br = &doc["bridges"][0];
        assert_eq!(br["name"].as_str(), Some("br0"));
        assert_eq!(br["mac_aging"].as_u64(), Some(30));
        assert!(br.get("mac_limit").is_none());
        let m = &br["members"];
        assert_eq!(m[0].as_str(), Some("vm0"));
        assert_eq!(m[1]["interface"].as_str(), Some("vm1"));
        assert_eq!(m[1]["access"].as_u64(), Some(10));
        assert_eq!(m[2]["trunk"][1].as_u64(), Some(20));
        assert_eq!(m[2]["native"].as_u64(), Some(1));
        assert!(m[2].get("tpid").is_none());
        assert_eq!(m[3]["tpid"].as_str(), Some("802.1ad"));
        assert_eq!(m[4]["interface"].as_str(), Some("vm4.300.400"));
        assert_eq!(
            br["static_macs"][0]["mac"].as_str(),
            Some("02:00:00:00:00:01")
        );
        assert_eq!(br["static_macs"][0]["interface"].as_str(), Some("vm0"));
    }
}
