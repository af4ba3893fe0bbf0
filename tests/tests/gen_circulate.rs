//! `vnf gen --circulate` as a process, against vnf's cross-connect and against DPDK
//! testpmd's vhost PMD (io forwarding): frames injected on both ports go round for two
//! seconds. A closed loop loses nothing unless something drops a frame, so every frame
//! injected must still be circulating at the end; the rate must be above zero, and both
//! ports (each the end of one direction) must receive about as many frames. Results are
//! read from the JSON `vnf gen` writes, and checked against its final line.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vnf_tests::manifest::cross_connected;
use vnf_tests::testpmd::{Testpmd, VhostPort};
use vnf_tests::{serial, Mode, Port, TempDir, Vnf};

/// Far more than a two-second run with its set-up and drain takes.
const GEN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `vnf gen --circulate` for two seconds on sockets `a` and `b` with `args` added;
/// returns its JSON report. Panics with its output if it fails or hangs.
fn circulate(dir: &Path, a: &Path, b: &Path, args: &[&str]) -> Value {
    let json = dir.join("circulate.json");
    let mut child = Command::new(vnf_tests::vnf::binary())
        .args(["gen", "--circulate", "--duration", "2", "--port"])
        .arg(a)
        .arg("--port")
        .arg(b)
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vnf gen");
    let deadline = Instant::now() + GEN_TIMEOUT;
    while child.try_wait().expect("wait for vnf gen").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("vnf gen output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!(
        "vnf gen --circulate {args:?}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let report = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let r: Value = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}\n{report}"));
    let last = stdout.lines().last().unwrap_or_default();
    let fields: HashMap<&str, &str> = last
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    for key in ["injected", "circulating", "frames_lost", "rx_a", "rx_b"] {
        assert_eq!(
            fields.get(key).copied(),
            Some(r[key].to_string().as_str()),
            "the final line says what the JSON does ({key}):\n{text}"
        );
    }
    eprintln!("{last}");
    r
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key} in {v:#}"))
}

/// Every frame still going round, a rate, both directions alike, every lane busy.
fn check(r: &Value, queue_pairs: u64) {
    assert_eq!(num(r, "injected"), 2 * queue_pairs * 512, "{r:#}");
    assert_eq!(num(r, "circulating"), num(r, "injected"), "{r:#}");
    for key in ["frames_lost", "gen_dropped", "bad_used"] {
        assert_eq!(num(r, key), 0, "{key}: {r:#}");
    }
    assert!(r["rx_mpps"].as_f64().unwrap_or(0.0) > 0.0, "{r:#}");
    let (a, b) = (num(r, "rx_a"), num(r, "rx_b"));
    assert!(
        a.abs_diff(b) * 10 <= a.max(b),
        "the two directions are alike, so both ports receive within 10% of each other: {r:#}"
    );
    let queues = r["queues"].as_array().expect("queues");
    assert_eq!(queues.len() as u64, 2 * queue_pairs, "{r:#}");
    for q in queues {
        assert!(
            num(q, "rx") > 0,
            "every queue pair carries frames both ways: {r:#}"
        );
    }
}

/// No ring errors, and no drops but of the generator's probes, which it sends until the
/// path is up: one that reaches a queue vnf has not attached yet is dropped as
/// `detached`, and never counted as circulating.
fn check_vnf(vnf: &mut Vnf, queue_pairs: u32) {
    let stats = vnf.stats();
    for port in ["a", "b"] {
        for q in 0..queue_pairs {
            let q = q.to_string();
            assert!(stats.counter(port, &q, "rx_packets") > 0, "{stats}");
            let mut drops = stats.drop_reasons(port, &q);
            drops.remove("detached");
            assert!(drops.is_empty(), "{drops:?} on {port}/{q}:\n{stats}");
            for key in stats.port(port, &q).unwrap().keys() {
                assert!(!key.starts_with("error_"), "{key} on {port}/{q}:\n{stats}");
            }
        }
    }
    vnf.assert_running();
}

#[test]
fn circulate_through_vnf() {
    let _serial = serial();
    let dir = TempDir::new("circulate-vnf");
    let ports = [
        Port::new("a", dir.path(), Mode::Server, 1),
        Port::new("b", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&cross_connected(1, &ports), &[]);
    let r = circulate(dir.path(), &ports[0].socket, &ports[1].socket, &[]);
    check(&r, 1);
    check_vnf(&mut vnf, 1);
}

/// vnf keeps queue pair q with queue pair q only when each worker serves one pair (a
/// worker transmits on one pair of every port), hence two workers for two pairs. Its
/// ports connect out, so the generator listens.
#[test]
fn circulate_through_vnf_client_ports_on_two_queue_pairs() {
    let _serial = serial();
    let dir = TempDir::new("circulate-vnf-client");
    let ports = [
        Port::new("a", dir.path(), Mode::Client, 2),
        Port::new("b", dir.path(), Mode::Client, 2),
    ];
    let mut vnf = Vnf::start(&cross_connected(2, &ports), &[]);
    let (a, b) = (&ports[0].socket, &ports[1].socket);
    let r = circulate(dir.path(), a, b, &["--listen", "--queues", "2"]);
    check(&r, 2);
    check_vnf(&mut vnf, 2);
}

#[test]
fn circulate_through_testpmd() {
    let _serial = serial();
    let dir = TempDir::new("circulate-testpmd");
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let _testpmd = Testpmd::start(&[VhostPort::server(&a, 2), VhostPort::server(&b, 2)]);
    let r = circulate(dir.path(), &a, &b, &["--queues", "2"]);
    check(&r, 2);
}
