//! How a guest is started: its NICs, size, addresses and script, and the QEMU command
//! line built from them.

use crate::image::image;
use crate::net::Tpid;
use std::path::PathBuf;
use std::process::Command;

/// The kernel command line has room for about 2 KiB; the script travels in it.
const MAX_APPEND: usize = 2000;

/// Which side of the vhost-user socket QEMU is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketRole {
    /// QEMU connects to a socket that the backend listens on (vnf port mode `server`),
    /// and reconnects if the backend goes away.
    Connect,
    /// QEMU listens and the backend connects (vnf port mode `client`).
    Listen,
}

/// One virtio-net NIC backed by vhost-user.
#[derive(Clone, Debug)]
pub struct Nic {
    pub socket: PathBuf,
    pub role: SocketRole,
    pub queues: u32,
    pub mac: String,
    /// QEMU's `host_mtu`: the MTU the device offers the guest (VIRTIO_NET_F_MTU), which
    /// also caps what the guest may set. `None` offers none; the guest starts at 1500
    /// and may raise its MTU at will.
    pub mtu: Option<u32>,
}

impl Nic {
    pub fn new(socket: impl Into<PathBuf>, role: SocketRole, mac: &str) -> Nic {
        Nic {
            socket: socket.into(),
            role,
            queues: 1,
            mac: mac.to_string(),
            mtu: None,
        }
    }

    /// Offers `mtu` to the guest (QEMU `host_mtu`, see the `mtu` field).
    pub fn mtu(mut self, mtu: u32) -> Nic {
        self.mtu = Some(mtu);
        self
    }

    pub fn queues(mut self, queues: u32) -> Nic {
        self.queues = queues;
        self
    }

    fn qemu_args(&self, index: usize) -> Vec<String> {
        let mut chardev = format!("socket,id=chr{index},path={}", self.socket.display());
        match self.role {
            SocketRole::Listen => chardev.push_str(",server=on,wait=off"),
            SocketRole::Connect => chardev.push_str(",reconnect-ms=1000"),
        }
        let mut netdev = format!("vhost-user,id=net{index},chardev=chr{index}");
        let mut device = format!("virtio-net-pci,netdev=net{index},mac={}", self.mac);
        if self.queues > 1 {
            netdev.push_str(&format!(",queues={}", self.queues));
            // One vector per virtqueue plus config and control.
            device.push_str(&format!(",mq=on,vectors={}", 2 * self.queues + 2));
        }
        if let Some(mtu) = self.mtu {
            device.push_str(&format!(",host_mtu={mtu}"));
        }
        ["-chardev", &chardev, "-netdev", &netdev, "-device", &device]
            .map(String::from)
            .to_vec()
    }
}

/// A VLAN interface the guest's /init makes: `PARENT.ID`.
#[derive(Clone, Debug)]
pub struct VlanIf {
    pub parent: String,
    pub id: u16,
    pub tpid: Tpid,
}

impl VlanIf {
    pub fn name(&self) -> String {
        format!("{}.{}", self.parent, self.id)
    }
}

/// How to start a guest.
#[derive(Clone, Debug)]
pub struct GuestConfig {
    /// Used in log file names and failure reports.
    pub name: String,
    pub nics: Vec<Nic>,
    pub smp: u32,
    pub mem_mb: u32,
    /// `(device, address/prefix)`, e.g. `("eth0", "10.0.0.1/24")`; IPv6 when the
    /// address has a ':'. The device may be one of `vlans`.
    pub addrs: Vec<(String, String)>,
    /// VLAN interfaces /init creates, in order, before it adds addresses.
    pub vlans: Vec<VlanIf>,
    /// Shell script run by /init once the network is up; empty runs nothing.
    pub script: String,
    /// Replaces the memory and NIC arguments the harness would build from `mem_mb`
    /// and `nics` (used to run a command line exactly as documented).
    pub machine_args: Option<Vec<String>>,
    /// Working directory of QEMU (relative socket paths resolve against it).
    pub cwd: Option<PathBuf>,
}

impl GuestConfig {
    pub fn new(name: &str) -> GuestConfig {
        GuestConfig {
            name: name.to_string(),
            nics: Vec::new(),
            smp: 1,
            mem_mb: 256,
            addrs: Vec::new(),
            vlans: Vec::new(),
            script: String::new(),
            machine_args: None,
            cwd: None,
        }
    }

    pub fn nic(mut self, nic: Nic) -> GuestConfig {
        self.nics.push(nic);
        self
    }

    pub fn smp(mut self, cpus: u32) -> GuestConfig {
        self.smp = cpus;
        self
    }

    /// Adds an address (IPv4 or IPv6, with prefix length) to `eth{iface}`.
    pub fn addr(self, iface: usize, addr: &str) -> GuestConfig {
        self.addr_on(&format!("eth{iface}"), addr)
    }

    /// Adds an address (IPv4 or IPv6, with prefix length) to device `dev`, e.g. a VLAN
    /// interface made with [`GuestConfig::vlan`].
    pub fn addr_on(mut self, dev: &str, addr: &str) -> GuestConfig {
        self.addrs.push((dev.to_string(), addr.to_string()));
        self
    }

    /// Makes VLAN interface `PARENT.ID` (Linux 8021q) that sends and receives frames
    /// of `parent` tagged `id` with tag type `tpid`; the parent may itself be a VLAN
    /// interface made earlier (QinQ: `.vlan("eth0", 100, Dot1ad).vlan("eth0.100", 200,
    /// Dot1q)` makes `eth0.100.200`). Returns the config; the name is `PARENT.ID`.
    pub fn vlan(mut self, parent: &str, id: u16, tpid: Tpid) -> GuestConfig {
        self.vlans.push(VlanIf {
            parent: parent.to_string(),
            id,
            tpid,
        });
        self
    }

    pub fn script(mut self, script: &str) -> GuestConfig {
        self.script = script.to_string();
        self
    }

    pub fn machine_args(mut self, args: Vec<String>) -> GuestConfig {
        self.machine_args = Some(args);
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> GuestConfig {
        self.cwd = Some(dir.into());
        self
    }

    fn kernel_append(&self) -> String {
        let mut append = String::from("console=ttyS0 quiet panic=-1");
        for vlan in &self.vlans {
            append.push_str(&format!(
                " vnf.vlan={}:{}:{}",
                vlan.parent,
                vlan.id,
                vlan.tpid.as_str()
            ));
        }
        for (dev, addr) in &self.addrs {
            append.push_str(&format!(" vnf.addr={dev}:{addr}"));
        }
        if !self.script.is_empty() {
            append.push_str(" vcmd=");
            append.push_str(&base64(self.script.as_bytes()));
        }
        assert!(
            append.len() <= MAX_APPEND,
            "guest {}: kernel command line is {} bytes, over the {MAX_APPEND} that fit; shorten the script",
            self.name,
            append.len()
        );
        append
    }

    pub(super) fn qemu_command(&self) -> Command {
        let image = image();
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-accel", "tcg", "-smp", &self.smp.to_string()])
            .args([
                "-display",
                "none",
                "-nodefaults",
                "-no-user-config",
                "-serial",
                "stdio",
                "-no-reboot",
            ])
            .arg("-kernel")
            .arg(&image.kernel)
            .arg("-initrd")
            .arg(&image.initrd)
            .args(["-append", &self.kernel_append()]);
        match &self.machine_args {
            Some(args) => {
                cmd.args(args);
            }
            None => {
                let mem = self.mem_mb;
                cmd.args(["-m", &format!("{mem}M")])
                    .args([
                        "-object",
                        &format!("memory-backend-memfd,id=mem,size={mem}M,share=on"),
                    ])
                    .args(["-numa", "node,memdev=mem"]);
                for (i, nic) in self.nics.iter().enumerate() {
                    cmd.args(nic.qemu_args(i));
                }
            }
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }
}

/// Standard base64 with padding, as busybox `base64 -d` reads it.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_reference_vectors() {
        // RFC 4648 section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn vlans_and_addresses_go_on_the_kernel_command_line_in_order() {
        let config = GuestConfig::new("q")
            .addr(0, "10.0.0.1/24")
            .vlan("eth0", 100, Tpid::Dot1ad)
            .vlan("eth0.100", 200, Tpid::Dot1q)
            .addr_on("eth0.100.200", "fd00::1/64");
        let append = config.kernel_append();
        let words: Vec<&str> = append.split(' ').collect();
        let at = |w: &str| words.iter().position(|x| *x == w).expect(w);
        assert!(at("vnf.vlan=eth0:100:802.1ad") < at("vnf.vlan=eth0.100:200:802.1q"));
        assert!(words.contains(&"vnf.addr=eth0:10.0.0.1/24"), "{append}");
        assert!(
            words.contains(&"vnf.addr=eth0.100.200:fd00::1/64"),
            "{append}"
        );
        assert_eq!(config.vlans[1].name(), "eth0.100.200");
    }

    #[test]
    fn mtu_becomes_host_mtu() {
        let nic = Nic::new("/s/vm0.sock", SocketRole::Connect, "52:54:00:00:00:01");
        assert!(!nic.qemu_args(0).join(" ").contains("host_mtu"));
        let args = nic.mtu(9000).qemu_args(0).join(" ");
        assert!(
            args.contains("virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,host_mtu=9000"),
            "{args}"
        );
    }

    #[test]
    fn multiqueue_nic_gets_vectors_for_every_queue() {
        let nic = Nic::new("/s/vm0.sock", SocketRole::Listen, "52:54:00:00:00:01").queues(2);
        let args = nic.qemu_args(3).join(" ");
        assert!(
            args.contains("socket,id=chr3,path=/s/vm0.sock,server=on,wait=off"),
            "{args}"
        );
        assert!(
            args.contains("vhost-user,id=net3,chardev=chr3,queues=2"),
            "{args}"
        );
        assert!(args.contains("mq=on,vectors=6"), "{args}");
        let single = Nic::new("/s/vm1.sock", SocketRole::Connect, "52:54:00:00:00:02")
            .qemu_args(0)
            .join(" ");
        assert!(
            single.contains("reconnect-ms=1000") && !single.contains("queues="),
            "{single}"
        );
    }
}
