//! vnf driven without QEMU: our virtio-user frontend attaches to every vhost-user port
//! of a vnf started from a hand-written manifest, plays the hosts behind each port, and
//! sees every frame vnf sends to any of them. The datapath tests build their frames and
//! expectations on top of this.

use std::fmt;
use std::time::{Duration, Instant};

use virtio::user::{Config, QueuePair, VirtioUser};

use crate::{Stats, TempDir, Vnf};

/// How long a frame may take to cross vnf (an adaptive worker may be asleep).
pub const SETTLE: Duration = Duration::from_millis(300);

/// How long vnf may take to start listening on a port's socket.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// Frames a port may hand over per receive call. The receive rings hold 1024, so this
/// only bounds how long one port is polled before the next gets its turn.
const RECV_BATCH: usize = 256;

/// vnf plus one frontend per port.
pub struct Rig {
    pub vnf: Vnf,
    names: Vec<String>,
    /// Every queue pair of each port, pair 0 first.
    pairs: Vec<Vec<QueuePair>>,
    // Dropping a device tells vnf it is gone, and vnf stops serving its queues.
    _devs: Vec<VirtioUser>,
    // Holds the sockets until vnf and the frontends are gone.
    _dir: TempDir,
}

impl Rig {
    /// vnf with one worker, `ports` (name, extra port settings such as `, mtu: 9000`)
    /// with one queue pair each, and `rest` (the `bridges:` and `router:` sections).
    pub fn start(label: &str, ports: &[(&str, &str)], rest: &str) -> Rig {
        Rig::start_with(label, 1, 1, ports, rest)
    }

    /// `start` with `workers` workers and `pairs` queue pairs on every port, all of
    /// them attached.
    pub fn start_with(
        label: &str,
        workers: u32,
        pairs: u16,
        ports: &[(&str, &str)],
        rest: &str,
    ) -> Rig {
        let dir = TempDir::new(label);
        let socket = |name: &str| dir.join(&format!("{name}.sock"));
        let mut manifest = format!("workers: {{ count: {workers} }}\nports:\n");
        for (name, extra) in ports {
            manifest.push_str(&format!(
                "  - {{ name: {name}, type: vhost-user, socket: {}, queue_pairs: {pairs}{extra} }}\n",
                socket(name).display()
            ));
        }
        manifest.push_str(rest);
        let mut vnf = Vnf::start(&manifest, &[]);
        // Transmit buffers large enough for jumbo frames (receive merges buffers).
        let cfg = Config {
            buf_size: 9216 + 32,
            ..Config::new(pairs)
        };
        let mut devs = Vec::new();
        let mut all = Vec::new();
        for (name, _) in ports {
            let sock = socket(name);
            // Each socket appears once vnf's thread for that port is listening.
            let deadline = Instant::now() + SOCKET_TIMEOUT;
            while !sock.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut dev = VirtioUser::connect_with(&sock, &cfg)
                .unwrap_or_else(|e| vnf.fail(&format!("port {name}: {e}")));
            all.push(dev.take_pairs());
            devs.push(dev);
        }
        Rig {
            vnf,
            names: ports.iter().map(|(n, _)| n.to_string()).collect(),
            pairs: all,
            _devs: devs,
            _dir: dir,
        }
    }

    /// The ports, in the order they were given to `start`.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn port(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no port {name} in the rig"))
    }

    /// Queue pair `pair` of `port`, for tests that pace their own traffic.
    pub fn pair(&mut self, port: &str, pair: usize) -> &mut QueuePair {
        let p = self.port(port);
        &mut self.pairs[p][pair]
    }

    /// Posts `frames` on queue pair 0 of port `from` in one burst.
    pub fn inject<F: AsRef<[u8]>>(&mut self, from: &str, frames: &[F]) {
        self.inject_on(from, 0, frames)
    }

    /// Posts `frames` on queue pair `pair` of port `from` in one burst: one index
    /// update, so vnf takes them in one batch when there are at most 64.
    pub fn inject_on<F: AsRef<[u8]>>(&mut self, from: &str, pair: usize, frames: &[F]) {
        let sent = self.pair(from, pair).tx.send(frames.len(), |i, b| {
            let f = frames[i].as_ref();
            b[..f.len()].copy_from_slice(f);
            f.len()
        });
        assert_eq!(
            sent,
            frames.len(),
            "the frontend had no free transmit buffer"
        );
    }

    /// `inject`, then what every port received within [`SETTLE`].
    pub fn send<F: AsRef<[u8]>>(&mut self, from: &str, frames: &[F]) -> Got {
        self.send_on(from, 0, frames)
    }

    /// `inject_on`, then what every port received within [`SETTLE`].
    pub fn send_on<F: AsRef<[u8]>>(&mut self, from: &str, pair: usize, frames: &[F]) -> Got {
        self.inject_on(from, pair, frames);
        self.collect_for(SETTLE)
    }

    /// Nothing yet, from every port.
    pub fn empty(&self) -> Got {
        Got {
            names: self.names.clone(),
            frames: vec![Vec::new(); self.names.len()],
        }
    }

    /// Adds to `got` what has arrived on any queue pair of any port, without waiting.
    pub fn poll_into(&mut self, got: &mut Got) {
        for (pairs, frames) in self.pairs.iter_mut().zip(&mut got.frames) {
            for q in pairs {
                q.rx.recv(RECV_BATCH, |f| frames.push(f.to_vec()));
            }
        }
    }

    /// Everything that arrives within `time`.
    pub fn collect_for(&mut self, time: Duration) -> Got {
        let mut got = self.empty();
        let end = Instant::now() + time;
        while Instant::now() < end {
            self.poll_into(&mut got);
            std::thread::sleep(Duration::from_millis(2));
        }
        got
    }

    /// Receives until `n` frames have arrived in all (or `timeout`), then a moment
    /// more so that a frame too many shows up too.
    pub fn wait_for(&mut self, n: usize, timeout: Duration) -> Got {
        let mut got = self.empty();
        let end = Instant::now() + timeout;
        while got.total() < n && Instant::now() < end {
            self.poll_into(&mut got);
            std::thread::sleep(Duration::from_millis(1));
        }
        let grace = Instant::now() + Duration::from_millis(5);
        while Instant::now() < grace {
            self.poll_into(&mut got);
        }
        got
    }

    pub fn stats(&mut self) -> Stats {
        self.vnf.stats()
    }
}

/// What each port received, in arrival order.
#[derive(Clone)]
pub struct Got {
    names: Vec<String>,
    frames: Vec<Vec<Vec<u8>>>,
}

impl Got {
    pub fn on(&self, port: &str) -> &[Vec<u8>] {
        let i = self
            .names
            .iter()
            .position(|n| n == port)
            .unwrap_or_else(|| panic!("no port {port} in the rig"));
        &self.frames[i]
    }

    pub fn total(&self) -> usize {
        self.frames.iter().map(Vec::len).sum()
    }

    /// The first port, in the rig's order, that did not receive exactly the frames `to`
    /// lists for it, in that order.
    pub fn mismatch(&self, to: &[(&str, Vec<u8>)]) -> Option<Mismatch<'_>> {
        self.names
            .iter()
            .zip(&self.frames)
            .find_map(|(port, have)| {
                let want: Vec<Vec<u8>> = to
                    .iter()
                    .filter(|(n, _)| n == port)
                    .map(|(_, f)| f.clone())
                    .collect();
                (*have != want).then_some(Mismatch { port, have, want })
            })
    }
}

/// A port that received other frames than expected.
pub struct Mismatch<'a> {
    pub port: &'a str,
    pub have: &'a [Vec<u8>],
    pub want: Vec<Vec<u8>>,
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, frames) in self.names.iter().zip(&self.frames) {
            for fr in frames {
                writeln!(f, "  on {name}: {}", describe(fr))?;
            }
        }
        Ok(())
    }
}

/// A frame's length and first 54 bytes: Ethernet and an IPv6 header, or an IPv4 one
/// and the start of what it carries, where a wrong frame usually shows.
pub fn describe(f: &[u8]) -> String {
    format!("{} bytes {:02x?}", f.len(), &f[..f.len().min(54)])
}
