//! The virtio-user frontend (`virtio::user`) against real vhost-user backends: DPDK
//! testpmd's vhost PMD (written by other people, so a check of the frontend itself) and
//! vnf, in both socket roles; then the frontend as a hostile driver, to check that vnf
//! counts each malformed descriptor on the right queue and keeps everything else running.
//!
//! Traffic is sequenced streams: each frame carries its stream, its sequence number and
//! a payload derived from both, and the receiver checks every frame is there, intact and
//! in order. Senders keep at most `WINDOW` frames in flight per stream, fewer than the
//! receiver's ring holds, so a correct switch never runs out of receive buffers and any
//! loss is a bug.

use std::time::{Duration, Instant};

use virtio::user::{BadDescriptor, Config, QueuePair, VirtioUser};
use vnf_tests::manifest::cross_connected;
use vnf_tests::{serial, Mode, Port, Stats, TempDir, Testpmd, VhostPort, Vnf};

const ETHERTYPE: [u8; 2] = [0x88, 0xb5]; // local experimental
const HDR: usize = 26; // Ethernet header, stream (4), sequence (8)
const PROBE: u64 = u64::MAX;
const WINDOW: u64 = 256;
const BURST: usize = 32;
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Payload byte `i` of frame `seq` is `PATTERN[seq % 256 + i]`.
static PATTERN: [u8; 16384] = {
    let mut p = [0u8; 16384];
    let mut i = 0;
    while i < p.len() {
        p[i] = i as u8;
        i += 1;
    }
    p
};

fn write_frame(buf: &mut [u8], stream: u32, seq: u64, len: usize) -> usize {
    buf[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    buf[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    buf[12..14].copy_from_slice(&ETHERTYPE);
    buf[14..18].copy_from_slice(&stream.to_le_bytes());
    buf[18..26].copy_from_slice(&seq.to_le_bytes());
    let start = (seq % 256) as usize;
    buf[HDR..len].copy_from_slice(&PATTERN[start..start + len - HDR]);
    len
}

/// (stream, seq) of an intact frame.
fn read_frame(f: &[u8]) -> Result<(u32, u64), String> {
    if f.len() < HDR || f[12..14] != ETHERTYPE {
        return Err(format!(
            "foreign frame of {} bytes: {:02x?}",
            f.len(),
            &f[..f.len().min(32)]
        ));
    }
    let stream = u32::from_le_bytes(f[14..18].try_into().unwrap());
    let seq = u64::from_le_bytes(f[18..26].try_into().unwrap());
    let start = (seq % 256) as usize;
    if f[HDR..] != PATTERN[start..start + f.len() - HDR] {
        return Err(format!("stream {stream} frame {seq}: payload corrupted"));
    }
    Ok((stream, seq))
}

/// One direction of traffic: `total` frames from endpoint `from` to some queue of port
/// `to_port`, frame `seq` being `lens[seq / per_len]` bytes long.
struct Stream {
    from: usize,
    to_port: usize,
    lens: &'static [usize],
    per_len: u64,
    sent: u64,
    next: u64,
    /// A probe got through: the path is set up on both sides.
    ready: bool,
    last_probe: Option<Instant>,
    /// The endpoint the stream arrives at; it must not move (order is per queue).
    rx_ep: Option<usize>,
}

impl Stream {
    fn new(from: usize, to_port: usize, lens: &'static [usize], per_len: u64) -> Stream {
        Stream {
            from,
            to_port,
            lens,
            per_len,
            sent: 0,
            next: 0,
            ready: false,
            last_probe: None,
            rx_ep: None,
        }
    }

    fn total(&self) -> u64 {
        self.per_len * self.lens.len() as u64
    }

    fn len(&self, seq: u64) -> usize {
        self.lens[(seq / self.per_len) as usize]
    }
}

/// A queue pair of one of our frontends, on port `port`.
struct Endpoint {
    port: usize,
    q: QueuePair,
}

/// Runs every stream to completion; returns a description of the first problems seen.
fn run(eps: &mut [Endpoint], streams: &mut [Stream]) -> Result<(), String> {
    run_window(eps, streams, WINDOW)
}

/// `run` with at most `window` frames of a stream in flight.
fn run_window(eps: &mut [Endpoint], streams: &mut [Stream], window: u64) -> Result<(), String> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut errors: Vec<String> = Vec::new();
    loop {
        if streams.iter().all(|s| s.next == s.total()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let state: Vec<String> = streams
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    format!(
                        "stream {i}: ready {} sent {} received {}",
                        s.ready, s.sent, s.next
                    )
                })
                .collect();
            errors.push(format!("timed out after {RUN_TIMEOUT:?}: {state:?}"));
        }
        if !errors.is_empty() {
            return Err(errors.join("\n"));
        }
        for (id, s) in streams.iter_mut().enumerate() {
            let tx = &mut eps[s.from].q.tx;
            if !s.ready {
                if s.last_probe
                    .is_none_or(|t| t.elapsed() > Duration::from_millis(5))
                {
                    tx.send(1, |_, b| write_frame(b, id as u32, PROBE, 64));
                    s.last_probe = Some(Instant::now());
                }
                continue;
            }
            let room = (window - (s.sent - s.next)).min(s.total() - s.sent) as usize;
            let n = tx.send(room.min(BURST), |i, b| {
                let seq = s.sent + i as u64;
                write_frame(b, id as u32, seq, s.len(seq))
            });
            s.sent += n as u64;
        }
        for (e, ep) in eps.iter_mut().enumerate() {
            let port = ep.port;
            ep.q.rx.recv(BURST, |f| {
                let problem = match read_frame(f) {
                    Err(why) => Some(why),
                    Ok((id, seq)) => match streams.get_mut(id as usize) {
                        None => Some(format!("frame of unknown stream {id}")),
                        Some(s) if s.to_port != port => {
                            Some(format!("stream {id} frame {seq} arrived on port {port}"))
                        }
                        Some(s) if seq == PROBE => {
                            s.ready = true;
                            None
                        }
                        Some(s) => {
                            let ep = *s.rx_ep.get_or_insert(e);
                            if ep != e {
                                Some(format!(
                                    "stream {id} frame {seq} on queue {e}, earlier ones on {ep}"
                                ))
                            } else if seq != s.next {
                                Some(format!("stream {id}: frame {seq} where {} was due", s.next))
                            } else if f.len() != s.len(seq) {
                                Some(format!(
                                    "stream {id} frame {seq}: {} bytes, sent {}",
                                    f.len(),
                                    s.len(seq)
                                ))
                            } else {
                                s.next += 1;
                                None
                            }
                        }
                    },
                };
                if let Some(p) = problem {
                    if errors.len() < 10 {
                        errors.push(p);
                    }
                }
            });
        }
    }
}

fn endpoints(dev: &mut VirtioUser, port: usize) -> Vec<Endpoint> {
    dev.take_pairs()
        .into_iter()
        .map(|q| Endpoint { port, q })
        .collect()
}

/// A counter of a vnf stats line, 0 when absent (non-zero drops and errors only appear
/// once they happen).
fn counter(stats: &Stats, port: &str, queue: &str, key: &str) -> u64 {
    stats
        .port(port, queue)
        .and_then(|r| r.get(key))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}={v} in:\n{stats}"))
        })
        .unwrap_or(0)
}

fn state(stats: &Stats, port: &str, queue: &str) -> String {
    stats
        .port(port, queue)
        .and_then(|r| r.get("state"))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn frontend_through_testpmd() {
    let _serial = serial();
    let dir = TempDir::new("frontend-testpmd");
    let (s0, s1) = (dir.join("tp0.sock"), dir.join("tp1.sock"));
    let mut testpmd = Testpmd::start(&[VhostPort::server(&s0, 1), VhostPort::server(&s1, 1)]);
    let mut a = VirtioUser::connect(&s0, 1).unwrap_or_else(|e| testpmd.fail(&e.to_string()));
    let mut b = VirtioUser::connect(&s1, 1).unwrap_or_else(|e| testpmd.fail(&e.to_string()));
    assert!(a.mergeable() && b.mergeable(), "testpmd offers MRG_RXBUF");
    let mut eps = endpoints(&mut a, 0);
    eps.extend(endpoints(&mut b, 1));
    let mut streams = [Stream::new(0, 1, &[64, 1500], 10_000)];
    if let Err(e) = run(&mut eps, &mut streams) {
        testpmd.fail(&format!("frontend -> testpmd -> frontend: {e}"));
    }
    let stats = eps[0].q.tx.stats();
    assert!(stats.frames >= 20_000, "{stats:?}");
    assert_eq!(eps[1].q.rx.stats().bad_used, 0);
    // testpmd saw them too: its port 0 received what we sent on it.
    let xstats = testpmd.xstats();
    let rx: u64 = xstats[0]["rx_good_packets"].parse().unwrap();
    assert!(rx >= 20_000, "testpmd port 0 rx_good_packets={rx}");
}

/// vnf with two cross-connected ports of two queue pairs, our frontends on both ends, a
/// stream each way on every pair.
fn vnf_zero_loss(mode: Mode) {
    let _serial = serial();
    let dir = TempDir::new("frontend-vnf");
    let ports = [
        Port::new("a", dir.path(), mode, 2),
        Port::new("b", dir.path(), mode, 2),
    ];
    let mut vnf = Vnf::start(&cross_connected(2, &ports), &[]);
    let attach = |p: &Port| {
        let cfg = Config {
            accept_timeout: Some(Duration::from_secs(30)),
            ..Config::new(2)
        };
        match mode {
            Mode::Server => VirtioUser::connect_with(&p.socket, &cfg),
            Mode::Client => VirtioUser::accept_with(&p.socket, &cfg),
        }
    };
    let mut a = attach(&ports[0]).unwrap_or_else(|e| vnf.fail(&format!("port a: {e}")));
    let mut b = attach(&ports[1]).unwrap_or_else(|e| vnf.fail(&format!("port b: {e}")));
    let mut eps = endpoints(&mut a, 0);
    eps.extend(endpoints(&mut b, 1));
    assert_eq!(eps.len(), 4);
    // Endpoints: 0, 1 = a's pairs; 2, 3 = b's.
    const LENS: &[usize] = &[64, 1500];
    let mut streams = [
        Stream::new(0, 1, LENS, 50_000),
        Stream::new(1, 1, LENS, 50_000),
        Stream::new(2, 0, LENS, 50_000),
        Stream::new(3, 0, LENS, 50_000),
    ];
    let started = Instant::now();
    if let Err(e) = run(&mut eps, &mut streams) {
        let stats = vnf.stats();
        vnf.fail(&format!("{e}\n{stats}"));
    }
    let took = started.elapsed();
    eprintln!("4 x 100k frames through vnf ({mode:?}) in {took:.2?}");
    let stats = vnf.stats();
    for port in ["a", "b"] {
        for q in ["0", "1"] {
            let rx = counter(&stats, port, q, "rx_packets");
            let tx = counter(&stats, port, q, "tx_packets");
            assert!(
                rx >= 100_000 && tx >= 100_000,
                "port {port} queue {q}: every pair carries a stream each way:\n{stats}"
            );
            assert_eq!(state(&stats, port, q), "running", "{stats}");
            for key in stats.port(port, q).unwrap().keys() {
                assert!(!key.starts_with("error_"), "{key} on {port}/{q}:\n{stats}");
            }
        }
    }
    for ep in &eps {
        assert_eq!(ep.q.rx.stats().bad_used + ep.q.tx.stats().bad_used, 0);
    }
    vnf.assert_running();
}

#[test]
fn frontend_through_vnf_server_ports() {
    vnf_zero_loss(Mode::Server);
}

#[test]
fn frontend_accepting_vnf_client_ports() {
    vnf_zero_loss(Mode::Client);
}

/// Jumbo frames from a sender with 9 KiB buffers to a receiver with 2 KiB ones: vnf
/// spreads each frame over five mergeable receive buffers, which the frontend gathers.
/// Both ends negotiate EVENT_IDX, so kicks follow vnf's avail_event.
#[test]
fn frontend_jumbo_frames_over_mergeable_buffers() {
    let _serial = serial();
    let dir = TempDir::new("frontend-jumbo");
    let ports = [
        Port::new("a", dir.path(), Mode::Server, 1),
        Port::new("b", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&cross_connected(1, &ports), &[]);
    let big = Config {
        buf_size: 9216 + 12,
        event_idx: true,
        ..Config::new(1)
    };
    let small = Config {
        event_idx: true,
        ..Config::new(1)
    };
    let mut a = VirtioUser::connect_with(&ports[0].socket, &big)
        .unwrap_or_else(|e| vnf.fail(&format!("port a: {e}")));
    let mut b = VirtioUser::connect_with(&ports[1].socket, &small)
        .unwrap_or_else(|e| vnf.fail(&format!("port b: {e}")));
    assert!(a.event_idx() && b.event_idx() && b.mergeable());
    let mut eps = endpoints(&mut a, 0);
    eps.extend(endpoints(&mut b, 1));
    // Five buffers a frame: 64 frames in flight fill 320 of b's 1024 buffers.
    let mut streams = [Stream::new(0, 1, &[9000, 2037, 2036, 9216], 2_000)];
    if let Err(e) = run_window(&mut eps, &mut streams, 64) {
        let stats = vnf.stats();
        vnf.fail(&format!("{e}\n{stats}"));
    }
    let stats = vnf.stats();
    assert_eq!(counter(&stats, "a", "0", "drops"), 0, "{stats}");
    assert_eq!(counter(&stats, "b", "0", "drops"), 0, "{stats}");
    assert_eq!(eps[1].q.rx.stats().bad_used, 0);
    assert_eq!(eps[1].q.rx.stats().dropped, 0);
    vnf.assert_running();
}

/// Polls vnf's stats until `done` holds, for at most 10 s.
fn await_stats(vnf: &mut Vnf, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = vnf.stats();
        if done(&stats) {
            return stats;
        }
        if Instant::now() > deadline {
            vnf.fail(&format!("{what}; stats:\n{stats}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hostile_frontend_breaks_only_its_own_queue() {
    let _serial = serial();
    let dir = TempDir::new("frontend-hostile");
    let ports = [
        Port::new("h0", dir.path(), Mode::Server, 1),
        Port::new("h1", dir.path(), Mode::Server, 1),
        Port::new("c0", dir.path(), Mode::Server, 1),
        Port::new("c1", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&cross_connected(2, &ports), &[]);
    let connect = |p: &Port, size: u16, vnf: &mut Vnf| {
        let cfg = Config {
            queue_size: size,
            ..Config::new(1)
        };
        VirtioUser::connect_with(&p.socket, &cfg)
            .unwrap_or_else(|e| vnf.fail(&format!("port {}: {e}", p.name)))
    };
    // The clean pair and the hostile port's peer stay connected throughout.
    let mut h1 = connect(&ports[1], 256, &mut vnf);
    let mut c0 = connect(&ports[2], 256, &mut vnf);
    let mut c1 = connect(&ports[3], 256, &mut vnf);
    let mut clean = endpoints(&mut c0, 0);
    clean.extend(endpoints(&mut c1, 1));
    // hostile[0] is h0's queue pair of the current round, hostile[1] h1's.
    let mut hostile: Vec<Endpoint> = Vec::new();
    let mut peer = Some(endpoints(&mut h1, 1).remove(0));

    for (round, kind) in BadDescriptor::ALL.into_iter().enumerate() {
        let key = kind.vnf_counter();
        // 512 descriptors: room for a chain longer than vnf's limit of 256.
        let mut h0 = connect(&ports[0], 512, &mut vnf);
        let ep = endpoints(&mut h0, 0).remove(0);
        if hostile.is_empty() {
            hostile.push(ep);
            hostile.push(peer.take().unwrap());
        } else {
            hostile[0] = ep;
        }
        // The fresh connection carries frames (which also shows the queue is attached).
        let good = |hostile: &mut [Endpoint], vnf: &mut Vnf, when: &str| {
            if let Err(e) = run(hostile, &mut [Stream::new(0, 1, &[64], 100)]) {
                let stats = vnf.stats();
                vnf.fail(&format!("{kind:?}, h0 -> h1 {when}: {e}\n{stats}"));
            }
        };
        good(&mut hostile, &mut vnf, "before");
        let before = vnf.stats();
        assert_eq!(state(&before, "h0", "0"), "running", "{kind:?}:\n{before}");
        let was = counter(&before, "h0", "0", key);
        if let Err(e) = hostile[0].q.tx.post_bad(kind) {
            vnf.fail(&format!("post_bad({kind:?}): {e}"));
        }
        let stats = await_stats(&mut vnf, &format!("{kind:?}: no {key} on h0"), |s| {
            counter(s, "h0", "0", key) > was
                && (!kind.breaks_queue() || state(s, "h0", "0") == "needs_reset")
        });
        assert_eq!(
            counter(&stats, "h0", "0", key),
            was + 1,
            "{kind:?}:\n{stats}"
        );
        let bad_headers = BadDescriptor::ALL[..=round]
            .iter()
            .filter(|k| !k.breaks_queue())
            .count();
        assert_eq!(
            counter(&stats, "h0", "0", "drop_bad_header"),
            bad_headers as u64,
            "{kind:?}:\n{stats}"
        );
        if kind.breaks_queue() {
            assert_eq!(
                counter(&stats, "h0", "0", "rx_packets"),
                counter(&before, "h0", "0", "rx_packets"),
                "{kind:?} passed for a frame:\n{stats}"
            );
        } else {
            assert_eq!(state(&stats, "h0", "0"), "running", "{stats}");
            good(&mut hostile, &mut vnf, "after a bad header");
        }
        // Errors so far: one per round that breaks the queue, all on h0, none elsewhere.
        let errors: u64 = stats
            .port("h0", "0")
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("error_"))
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .sum();
        let broken_rounds = BadDescriptor::ALL[..=round]
            .iter()
            .filter(|k| k.breaks_queue())
            .count();
        assert_eq!(errors, broken_rounds as u64, "{kind:?}:\n{stats}");
        for port in ["h1", "c0", "c1"] {
            assert_eq!(
                state(&stats, port, "0"),
                "running",
                "{kind:?}: {port}\n{stats}"
            );
            for key in stats.port(port, "0").unwrap().keys() {
                assert!(
                    !key.starts_with("error_") && !key.starts_with("drop_"),
                    "{kind:?}: {key} on {port}:\n{stats}"
                );
            }
        }
        vnf.assert_running();
        // The other pair, untouched, moves traffic both ways without a loss.
        drop(h0);
        let mut streams = [
            Stream::new(0, 1, &[64, 1500], 5_000),
            Stream::new(1, 0, &[64, 1500], 5_000),
        ];
        if let Err(e) = run(&mut clean, &mut streams) {
            let stats = vnf.stats();
            vnf.fail(&format!("clean pair after {kind:?}: {e}\n{stats}"));
        }
    }
    let stats = vnf.stats();
    for (from, to) in [("c0", "c1"), ("c1", "c0")] {
        assert_eq!(
            counter(&stats, from, "0", "rx_packets"),
            counter(&stats, to, "0", "tx_packets"),
            "everything {from} sent reached {to}:\n{stats}"
        );
    }
    vnf.assert_running();
}

/// Set-up failures name the step that failed; vnf stays up for the next frontend.
#[test]
fn frontend_reports_the_failing_step() {
    let _serial = serial();
    let dir = TempDir::new("frontend-errors");
    let ports = [
        Port::new("a", dir.path(), Mode::Server, 1),
        Port::new("b", dir.path(), Mode::Server, 1),
    ];
    let mut vnf = Vnf::start(&cross_connected(1, &ports), &[]);
    let missing = VirtioUser::connect(dir.join("nothing.sock"), 1)
        .err()
        .unwrap();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound, "{missing}");
    assert!(missing.to_string().contains("nothing.sock"), "{missing}");
    let err = VirtioUser::connect(&ports[0].socket, 2).err().unwrap();
    assert!(
        err.to_string().contains("GET_QUEUE_NUM") && err.to_string().contains("has 2 virtqueues"),
        "{err}"
    );
    let bad = Config {
        queue_size: 1000,
        ..Config::new(1)
    };
    let err = VirtioUser::connect_with(&ports[0].socket, &bad)
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    // The port takes a well-formed frontend after the failed ones.
    let mut a =
        VirtioUser::connect(&ports[0].socket, 1).unwrap_or_else(|e| vnf.fail(&e.to_string()));
    let mut b =
        VirtioUser::connect(&ports[1].socket, 1).unwrap_or_else(|e| vnf.fail(&e.to_string()));
    let mut eps = endpoints(&mut a, 0);
    eps.extend(endpoints(&mut b, 1));
    let mut streams = [
        Stream::new(0, 1, &[64], 1_000),
        Stream::new(1, 0, &[64], 1_000),
    ];
    if let Err(e) = run(&mut eps, &mut streams) {
        let stats = vnf.stats();
        vnf.fail(&format!("{e}\n{stats}"));
    }
    vnf.assert_running();
}
