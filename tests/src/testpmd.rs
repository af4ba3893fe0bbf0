//! DPDK testpmd as an independent vhost-user peer.
//!
//! Its vhost PMD is a vhost-user backend written by other people, which makes it the
//! reference switch against which the harness itself is checked, and a peer for tests
//! that need one. Forwarding mode `io` cross-connects port 0 with port 1, 2 with 3, and
//! so on, queue by queue.

use crate::capture::Waited;
use crate::process::Process;
use crate::stats::Record;
use std::io::Write;
use std::path::PathBuf;
use std::process::{ChildStdin, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A vhost-user port of testpmd.
#[derive(Clone, Debug)]
pub struct VhostPort {
    pub socket: PathBuf,
    pub queues: u32,
    /// testpmd connects to a socket that QEMU listens on (and reconnects).
    pub client: bool,
}

impl VhostPort {
    pub fn server(socket: impl Into<PathBuf>, queues: u32) -> VhostPort {
        VhostPort {
            socket: socket.into(),
            queues,
            client: false,
        }
    }

    pub fn client(socket: impl Into<PathBuf>, queues: u32) -> VhostPort {
        VhostPort {
            client: true,
            ..VhostPort::server(socket, queues)
        }
    }
}

pub struct Testpmd {
    process: Process,
    stdin: ChildStdin,
}

impl Testpmd {
    /// Starts testpmd forwarding between its ports; returns once its server sockets
    /// exist and forwarding has started.
    pub fn start(ports: &[VhostPort]) -> Testpmd {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let queues = ports.iter().map(|p| p.queues).max().unwrap_or(1);
        // Interactive mode reads commands from stdin; stdbuf makes its stdio unbuffered
        // so that command output reaches us as it is printed.
        let mut cmd = Command::new("stdbuf");
        cmd.args([
            "-o0",
            "-e0",
            "dpdk-testpmd",
            "--no-pci",
            "--no-huge",
            "-m",
            "256",
            "-l",
            "0-1",
        ]);
        // Separate runtime directories let several instances (or leftovers) coexist.
        cmd.arg(format!(
            "--file-prefix=vnf-tests-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        for (i, port) in ports.iter().enumerate() {
            let mut vdev = format!(
                "net_vhost{i},iface={},queues={}",
                port.socket.display(),
                port.queues
            );
            if port.client {
                vdev.push_str(",client=1");
            }
            cmd.args(["--vdev", &vdev]);
        }
        cmd.args([
            "--",
            "-i",
            "--forward-mode=io",
            "--nb-cores=1",
            "--total-num-mbufs=16384",
        ])
        .arg(format!("--rxq={queues}"))
        .arg(format!("--txq={queues}"));
        let (process, stdin) = Process::spawn("testpmd", cmd, true);
        let mut testpmd = Testpmd {
            process,
            stdin: stdin.unwrap(),
        };
        testpmd.command("start");
        testpmd.wait_for("io packet forwarding", Duration::from_secs(30));
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in ports.iter().filter(|p| !p.client) {
            while !port.socket.exists() {
                if Instant::now() > deadline || testpmd.process.status().is_some() {
                    testpmd
                        .process
                        .fail(&format!("testpmd did not create {}", port.socket.display()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        testpmd
    }

    fn wait_for(&mut self, needle: &str, timeout: Duration) {
        match self
            .process
            .wait_stdout(timeout, |t| t.contains(needle).then_some(()))
        {
            Waited::Found(()) => {}
            _ => self
                .process
                .fail(&format!("testpmd: no {needle:?} within {timeout:?}")),
        }
    }

    fn command(&mut self, line: &str) {
        if writeln!(self.stdin, "{line}").is_err() {
            self.process
                .fail(&format!("testpmd exited; could not send {line:?}"));
        }
    }

    /// Extended statistics of every port (`rx_good_packets`, `rx_q0_good_packets`, ...),
    /// indexed by port number.
    pub fn xstats(&mut self) -> Vec<Record> {
        let from = self.process.stdout.len();
        self.command("show port xstats all");
        // The block of the last port ends at the next prompt.
        let waited = self.process.wait_stdout(Duration::from_secs(10), |text| {
            let text = &text[from..];
            let start = text.find("###### NIC extended statistics")?;
            let end = text[start..].find("testpmd> ")? + start;
            Some(text[start..end].to_string())
        });
        let text = match waited {
            Waited::Found(t) => t,
            _ => self.process.fail("testpmd printed no xstats"),
        };
        let mut ports: Vec<Record> = Vec::new();
        for line in text.lines() {
            if line.starts_with("###### NIC extended statistics") {
                ports.push(Record::new());
            } else if let (Some(port), Some((key, value))) =
                (ports.last_mut(), line.split_once(':'))
            {
                port.insert(key.trim().to_string(), value.trim().to_string());
            }
        }
        ports
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn fail(&mut self, message: &str) -> ! {
        self.process.fail(message)
    }
}
