//! The manifest built into the binary, for `vnf run` without a manifest file.

/// The manifest `vnf run` uses when given no file: two server-mode vhost-user ports
/// `vm0` at run/vm0.sock and `vm1` at run/vm1.sock (relative to the working directory),
/// one queue pair each, both members of bridge `br0` (VLAN 1, default MAC aging and
/// limit); one worker, adaptive polling.
pub const DEFAULT_MANIFEST: &str = "\
# Built-in vnf manifest, used by `vnf run` when no manifest file is given.
#
# Two VMs attach as vhost-user virtio-net devices: vnf listens on run/vm0.sock and
# run/vm1.sock (relative to the directory vnf was started in) and each QEMU connects
# as a client. Both ports are untagged members of bridge br0 (VLAN 1), so the two VMs
# are on one Ethernet segment: the bridge learns which MAC address is behind which
# port, sends each frame only where its destination is, and floods broadcasts and
# destinations not yet learned. Learned addresses are forgotten after 300 s without
# traffic from them. One worker thread polls both ports, sleeping when there is no
# traffic.
workers:
  count: 1
  poll: adaptive
ports:
  - name: vm0
    type: vhost-user
    socket: run/vm0.sock
    mode: server
    queue_pairs: 1
  - name: vm1
    type: vhost-user
    socket: run/vm1.sock
    mode: server
    queue_pairs: 1
bridges:
  - name: br0
    mac_aging: 300
    mac_limit: 65536
    members: [vm0, vm1]
";

/// How diagnostics and logs name [`DEFAULT_MANIFEST`], which has no file of its own.
pub const DEFAULT_MANIFEST_NAME: &str = "<embedded default manifest>";
