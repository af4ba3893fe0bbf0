//! `vnf run` without a manifest, and two VMs started with exactly the QEMU command lines
//! that README.md shows (`vnf_tests::readme`), reach each other.

use std::time::Duration;
use vnf_tests::net::{await_peer, ipv4, ipv4_cidr, summaries};
use vnf_tests::readme::{args, QEMU_VM0, QEMU_VM1};
use vnf_tests::{serial, Guest, GuestConfig, TempDir, Vnf};

const COUNT: u32 = 50;

#[test]
fn default_manifest() {
    let _serial = serial();
    let cwd = TempDir::new("default-manifest");
    let mut vnf = Vnf::start_default(cwd.path(), &[]);

    let start = |name: &str, command_line: &str, n: u8, peer: u8| {
        let script = format!(
            "{}; ping -q -c {COUNT} -i 0.02 {}; echo PINGS-DONE; sleep 600",
            await_peer(&ipv4(peer)),
            ipv4(peer)
        );
        Guest::start(
            GuestConfig::new(name)
                .machine_args(args(command_line))
                .cwd(cwd.path())
                .addr(0, &ipv4_cidr(n))
                .script(&script),
        )
    };
    let mut guests = [
        start("readme-vm0", QEMU_VM0, 1, 2),
        start("readme-vm1", QEMU_VM1, 2, 1),
    ];
    for guest in &mut guests {
        guest.wait_ready();
    }
    for guest in &mut guests {
        let output = guest.expect("PINGS-DONE", Duration::from_secs(180));
        let runs = summaries(&output);
        if !(runs.len() == 1 && runs[0].lossless(COUNT)) {
            guest.fail(&format!(
                "expected {COUNT} pings without loss, got {runs:?}"
            ));
        }
    }
    let stats = vnf.stats();
    for port in ["vm0", "vm1"] {
        let rx = stats.counter(port, "all", "rx_packets");
        assert!(
            rx >= u64::from(2 * COUNT),
            "{port} rx_packets={rx}:\n{stats}"
        );
    }
}
