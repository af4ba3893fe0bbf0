//! A guest's QEMU dies and comes back on the same socket; vnf, still the same process,
//! carries traffic to the new instance. Once with vnf listening (port mode `server`),
//! once with QEMU listening and vnf connecting (port mode `client`).

use regex::Regex;
use std::time::Duration;
use vnf_tests::manifest::cross_connected;
use vnf_tests::net::{await_peer, ipv4, mac, numbered_guest, reply_seqs, summaries};
use vnf_tests::{serial, Guest, GuestConfig, Mode, Port, TempDir, Vnf};

const CHECK_PINGS: u32 = 20;

/// B pings A and reports, then idles so that A's pings keep being answered.
fn responder(port: &Port) -> GuestConfig {
    let script = format!(
        "{}; ping -q -c {CHECK_PINGS} -i 0.05 {}; echo CHECK-DONE; sleep 600",
        await_peer(&ipv4(1)),
        ipv4(1)
    );
    numbered_guest(&port.name, 2, port.nic(&mac(2))).script(&script)
}

fn expect_lossless_check(guest: &mut Guest) {
    let output = guest.expect("CHECK-DONE", Duration::from_secs(180));
    let runs = summaries(&output);
    if !(runs.len() == 1 && runs[0].lossless(CHECK_PINGS)) {
        guest.fail(&format!(
            "expected {CHECK_PINGS} pings to the other guest without loss, got {runs:?}"
        ));
    }
}

fn reconnect(mode: Mode) {
    let _serial = serial();
    let dir = TempDir::new(&format!("reconnect-{}", mode.as_str()));
    let ports = [
        Port::new("vm0", dir.path(), mode, 1),
        Port::new("vm1", dir.path(), mode, 1),
    ];
    let mut vnf = Vnf::start(&cross_connected(1, &ports), &[]);

    // A pings B for as long as the test runs.
    let script = format!(
        "{}; echo PEER-UP; ping -i 0.2 {}",
        await_peer(&ipv4(2)),
        ipv4(2)
    );
    let mut a = Guest::start(numbered_guest("vm0", 1, ports[0].nic(&mac(1))).script(&script));
    let mut b = Guest::start(responder(&ports[1]));
    a.wait_ready();
    b.wait_ready();
    a.expect("PEER-UP", Duration::from_secs(180));
    expect_lossless_check(&mut b);

    b.kill();
    // Replies already on their way may still arrive; after that, silence, which shows
    // that B really is gone and that its replies afterwards come from the new QEMU.
    std::thread::sleep(Duration::from_secs(1));
    a.mark();
    std::thread::sleep(Duration::from_secs(3));
    let stray = reply_seqs(&a.unread(), &ipv4(2));
    if !stray.is_empty() {
        a.fail(&format!(
            "replies {stray:?} arrived after B's QEMU was killed"
        ));
    }
    vnf.assert_running();

    let mut b = Guest::start(responder(&ports[1]));
    b.wait_ready();
    expect_lossless_check(&mut b);
    let reply = Regex::new(&format!(r"bytes from {}: seq=\d+", regex::escape(&ipv4(2)))).unwrap();
    a.expect(&reply, Duration::from_secs(30));
    // The process the test started (not reaped, so its PID was not reused) carried the
    // traffic throughout.
    vnf.assert_running();
}

#[test]
fn reconnect_server() {
    reconnect(Mode::Server);
}

#[test]
fn reconnect_client() {
    reconnect(Mode::Client);
}
