//! The QEMU command lines that README.md shows for attaching two VMs to `vnf run`'s
//! default manifest. README.md must show exactly these (the `default_manifest` test runs
//! them); the README adds only the VM's own boot options (disk or kernel), and the test
//! adds `-accel tcg`, a serial console and its test kernel and initramfs.

/// VM 0, attached to port `vm0` (socket `run/vm0.sock`, relative to where vnf runs).
pub const QEMU_VM0: &str = "qemu-system-x86_64 -m 256 \\
  -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \\
  -chardev socket,id=chr0,path=run/vm0.sock,reconnect-ms=1000 \\
  -netdev vhost-user,id=net0,chardev=chr0 \\
  -device virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01";

/// VM 1, attached to port `vm1`.
pub const QEMU_VM1: &str = "qemu-system-x86_64 -m 256 \\
  -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \\
  -chardev socket,id=chr0,path=run/vm1.sock,reconnect-ms=1000 \\
  -netdev vhost-user,id=net0,chardev=chr0 \\
  -device virtio-net-pci,netdev=net0,mac=52:54:00:00:00:02";

/// The arguments of a documented command line, as a shell would split it (the lines
/// use no quoting, only backslash-newline continuations).
pub fn args(command_line: &str) -> Vec<String> {
    assert!(
        !command_line.contains(['"', '\'']),
        "the documented command lines are split without a shell; keep them free of quotes"
    );
    let mut words = command_line
        .replace("\\\n", " ")
        .split_whitespace()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(words.remove(0), "qemu-system-x86_64");
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_continuation_lines() {
        let vm0 = args(QEMU_VM0);
        assert_eq!(vm0[0..2], ["-m", "256"]);
        assert!(vm0.contains(&"socket,id=chr0,path=run/vm0.sock,reconnect-ms=1000".to_string()));
        assert!(!vm0.iter().any(|a| a.contains('\\')));
    }
}
