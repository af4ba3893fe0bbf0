//! Builds the vnf manifests that tests use.

use crate::guest::{Nic, SocketRole};
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
}

impl Port {
    /// Port `name` with its socket `DIR/NAME.sock`.
    pub fn new(name: &str, dir: &Path, mode: Mode, queue_pairs: u32) -> Port {
        Port {
            name: name.to_string(),
            socket: dir.join(format!("{name}.sock")),
            mode,
            queue_pairs,
        }
    }

    /// The QEMU NIC that attaches to this port.
    pub fn nic(&self, mac: &str) -> Nic {
        Nic::new(&self.socket, self.mode.qemu_role(), mac).queues(self.queue_pairs)
    }
}

/// A manifest with `ports`, cross-connected pairwise in order (first with second,
/// third with fourth, ...).
pub fn cross_connected(workers: u32, ports: &[Port]) -> String {
    let mut yaml = format!("workers: {{ count: {workers}, poll: adaptive }}\nports:\n");
    for p in ports {
        let socket = p.socket.to_str().expect("UTF-8 socket path");
        assert!(
            !socket.contains(['"', '\\']),
            "socket path needs no YAML escaping"
        );
        yaml.push_str(&format!(
            "  - {{ name: {}, type: vhost-user, socket: \"{socket}\", mode: {}, queue_pairs: {} }}\n",
            p.name,
            p.mode.as_str(),
            p.queue_pairs
        ));
    }
    yaml.push_str("cross_connects:\n");
    for pair in ports.chunks(2) {
        if let [a, b] = pair {
            yaml.push_str(&format!("  - [{}, {}]\n", a.name, b.name));
        }
    }
    yaml
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
    }
}
