//! virtio-user: the driver side of a virtio-net device over vhost-user, in our own
//! process. What QEMU and a guest kernel are to vnf, this is to any vhost-user backend
//! (vnf itself, DPDK's vhost PMD): it negotiates the device over the control socket,
//! shares one memfd holding its rings and packet buffers, and then moves frames through
//! the rings by polling, with no system call per packet.
//!
//! ```no_run
//! use virtio::user::VirtioUser;
//! # fn main() -> std::io::Result<()> {
//! let mut dev = VirtioUser::connect("/run/vnf/vm0.sock", 1)?;
//! let mut pair = dev.take_pairs().remove(0);
//! // 32 frames of 60 bytes, each built in place in its packet buffer.
//! let sent = pair.tx.send(32, |_, buf| {
//!     buf[..60].fill(0xff);
//!     60
//! });
//! let mut got = 0;
//! pair.rx.recv(32, |frame| got += frame.len());
//! # let _ = (sent, got);
//! # Ok(())
//! # }
//! ```
//!
//! Users: the traffic generator (`vnf gen`), integration tests that need a frontend they
//! control to the byte (including a hostile one: [`TxQueue::post_bad`]), and links
//! between vnf instances.
//!
//! Two devices can also share their packet buffers ([`VirtioUser::connect_loop`]), so
//! that what one port receives goes out of the other without a copy: only buffer ids
//! move between the rings ([`Buf`], `take_bufs`, `post_bufs`, `reclaim_bufs`). That is
//! how `vnf gen --circulate` keeps frames going round a switch, as DPDK testpmd's io
//! forwarding does.
//!
//! The frontend polls and asks the device for no interrupts; it kicks the device only
//! when the device asked to be kicked (`VRING_USED_F_NO_NOTIFY`, or `avail_event` with
//! EVENT_IDX), which polling backends such as vnf and DPDK rarely do.

mod memory;
pub mod queue;

use std::io;
use std::ops::Range;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{
    VhostUserHeaderFlag, VhostUserProtocolFeatures, VhostUserVirtioFeatures,
};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VringConfigData};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_net::{VIRTIO_NET_F_MQ, VIRTIO_NET_F_MRG_RXBUF};
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use vmm_sys_util::eventfd::EventFd;

pub use memory::SharedMemory;
pub use queue::{BadDescriptor, Buf, QueueLayout, QueueStats, RxQueue, TxQueue, CHAIN_TOO_LONG};

use crate::net::VNET_HDR_LEN;

/// How the device is set up. [`Config::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// Queue pairs to set up (1..=16 is what vnf offers; the backend decides).
    pub queue_pairs: u16,
    /// Descriptors per virtqueue, a power of two. vnf accepts up to 1024.
    pub queue_size: u16,
    /// Bytes per packet buffer, virtio-net header (12 bytes) included. Transmit frames
    /// must fit in one buffer; received frames may be spread over several with
    /// MRG_RXBUF. 2048 holds any 1518-byte frame; use 9216 + 12 for jumbo frames.
    pub buf_size: u32,
    /// Negotiate VIRTIO_RING_F_EVENT_IDX if offered. Off by default: we poll, and the
    /// used-flags protocol is one load cheaper per burst.
    pub event_idx: bool,
    /// Negotiate VIRTIO_NET_F_MRG_RXBUF if offered (on by default), so that the device
    /// may spread a frame larger than a buffer over several.
    pub mrg_rxbuf: bool,
    /// How long [`VirtioUser::accept_with`] waits for the backend; `None` waits forever.
    pub accept_timeout: Option<Duration>,
}

impl Config {
    pub fn new(queue_pairs: u16) -> Config {
        Config {
            queue_pairs,
            queue_size: 1024,
            buf_size: 2048,
            event_idx: false,
            mrg_rxbuf: true,
            accept_timeout: None,
        }
    }
}

/// The two queues of one queue pair. They are independent: each may go to its own thread.
pub struct QueuePair {
    /// Virtqueue `2p`: frames the device sends us.
    pub rx: RxQueue,
    /// Virtqueue `2p + 1`: frames we send the device.
    pub tx: TxQueue,
}

/// A connected virtio-net device. Dropping it closes the control socket, which tells the
/// backend the device is gone; the queues keep the shared memory mapped until they are
/// dropped too, but the backend no longer serves them.
pub struct VirtioUser {
    frontend: Frontend,
    mem: Arc<SharedMemory>,
    features: u64,
    protocol: VhostUserProtocolFeatures,
    pairs: Vec<QueuePair>,
    /// The "call" eventfds the backend signals if it ignores our request for no
    /// interrupts; kept open so that its writes succeed.
    _calls: Vec<EventFd>,
}

impl VirtioUser {
    /// Connects to a backend listening on `path` (vnf's `mode: server`, DPDK's vhost PMD
    /// without `client=1`) and sets up `queue_pairs` queue pairs with default settings.
    pub fn connect(path: impl AsRef<Path>, queue_pairs: u16) -> io::Result<VirtioUser> {
        Self::connect_with(path, &Config::new(queue_pairs))
    }

    pub fn connect_with(path: impl AsRef<Path>, cfg: &Config) -> io::Result<VirtioUser> {
        check(cfg)?;
        Self::setup(connect_stream(path.as_ref())?, cfg)
    }

    /// Listens on `path` and sets the device up for the first backend that connects (vnf's
    /// `mode: client`, DPDK's vhost PMD with `client=1`). A stale socket file is replaced.
    pub fn accept(path: impl AsRef<Path>, queue_pairs: u16) -> io::Result<VirtioUser> {
        Self::accept_with(path, &Config::new(queue_pairs))
    }

    pub fn accept_with(path: impl AsRef<Path>, cfg: &Config) -> io::Result<VirtioUser> {
        check(cfg)?;
        let path = path.as_ref();
        let listener = listen(path)?;
        Self::setup(accept_on(&listener, path, cfg.accept_timeout)?, cfg)
    }

    /// Connects two devices, `a` and `b`, that share their packet buffers so that frames
    /// can circulate between them without a copy: for each queue pair `q`, `a`'s receive
    /// queue and `b`'s transmit queue use one set of buffers (descriptor `i` of both
    /// rings points at buffer `i`), and so do `b`'s receive queue and `a`'s transmit
    /// queue. Whatever [`RxQueue::take_bufs`] takes on one can go out on the other with
    /// [`TxQueue::post_bufs`], and what [`TxQueue::reclaim_bufs`] gets back returns to
    /// the receive queue with [`RxQueue::post_bufs`]: ids move, bytes stay.
    ///
    /// A buffer is always with exactly one of the two rings (or in the caller's hands
    /// between a take and a post). At the start, buffers `0..tx_bufs` of each set are
    /// free on the transmit queue, for [`TxQueue::send`] to inject frames, and the others
    /// are posted on the receive queue. With `tx_bufs` at most half the ring, a receive
    /// queue never runs short while no more than `tx_bufs` frames circulate through it,
    /// provided the switch keeps queue pair `q` of one port with queue pair `q` of the
    /// other and the caller reclaims completed transmissions after each take and before
    /// posting what it took (then each frame holds at most one buffer outside the
    /// receive ring: see `vnf gen`'s `circulate` module).
    ///
    /// Both backends get the same memory table (one memfd); each device negotiates its
    /// own features.
    pub fn connect_loop(
        a: impl AsRef<Path>,
        b: impl AsRef<Path>,
        cfg: &Config,
        tx_bufs: u16,
    ) -> io::Result<(VirtioUser, VirtioUser)> {
        Self::setup_loop([a.as_ref(), b.as_ref()], cfg, tx_bufs, |[a, b]| {
            Ok([connect_stream(a)?, connect_stream(b)?])
        })
    }

    /// [`connect_loop`](Self::connect_loop) for backends that connect to us: listens on
    /// both paths, then waits for a backend on each (each within `cfg.accept_timeout`).
    pub fn accept_loop(
        a: impl AsRef<Path>,
        b: impl AsRef<Path>,
        cfg: &Config,
        tx_bufs: u16,
    ) -> io::Result<(VirtioUser, VirtioUser)> {
        let timeout = cfg.accept_timeout;
        Self::setup_loop([a.as_ref(), b.as_ref()], cfg, tx_bufs, |[a, b]| {
            // Both sockets exist before we wait on either, so neither backend finds its
            // socket missing while we wait for the other.
            let (la, lb) = (listen(a)?, listen(b)?);
            Ok([accept_on(&la, a, timeout)?, accept_on(&lb, b, timeout)?])
        })
    }

    /// Runs the whole vhost-user set-up on a connected control socket, in memory of the
    /// device's own.
    fn setup(stream: UnixStream, cfg: &Config) -> io::Result<VirtioUser> {
        let dev = Negotiated::new(stream, cfg)?;
        let (size, buf) = (cfg.queue_size, buf_size(cfg));
        let nvq = 2 * u64::from(cfg.queue_pairs);
        let mut mem = SharedMemory::new(nvq * QueueLayout::bytes(size, buf))?;
        let queues = (0..nvq)
            .map(|_| {
                let layout = QueueLayout::alloc(&mut mem, size, buf)?;
                Ok(QueuePlan {
                    layout,
                    bufs: 0..size,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        dev.start(Arc::new(mem), &queues)
    }

    /// Sets up both devices of a loop, in one memory, on the control sockets that `open`
    /// gets for `paths` (which also name the socket in errors). `cfg` is checked first, so
    /// that a bad one neither leaves socket files behind nor waits for a backend.
    fn setup_loop(
        paths: [&Path; 2],
        cfg: &Config,
        tx_bufs: u16,
        open: impl FnOnce([&Path; 2]) -> io::Result<[UnixStream; 2]>,
    ) -> io::Result<(VirtioUser, VirtioUser)> {
        check_loop(cfg, tx_bufs)?;
        let [sa, sb] = open(paths)?;
        let [pa, pb] = paths;
        let a = Negotiated::new(sa, cfg).map_err(|e| at(pa, e))?;
        let b = Negotiated::new(sb, cfg).map_err(|e| at(pb, e))?;
        let (mem, qa, qb) = loop_plan(cfg, tx_bufs)?;
        let mem = Arc::new(mem);
        let a = a.start(mem.clone(), &qa).map_err(|e| at(pa, e))?;
        let b = b.start(mem, &qb).map_err(|e| at(pb, e))?;
        Ok((a, b))
    }

    /// The queue pairs, in order; the first call takes them all, later calls get none.
    pub fn take_pairs(&mut self) -> Vec<QueuePair> {
        std::mem::take(&mut self.pairs)
    }

    /// The virtio feature bits acked with SET_FEATURES.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The vhost-user protocol features acked with SET_PROTOCOL_FEATURES.
    pub fn protocol_features(&self) -> VhostUserProtocolFeatures {
        self.protocol
    }

    /// Whether receive buffers may be merged (VIRTIO_NET_F_MRG_RXBUF was negotiated).
    pub fn mergeable(&self) -> bool {
        self.features & bit(VIRTIO_NET_F_MRG_RXBUF) != 0
    }

    pub fn event_idx(&self) -> bool {
        self.features & bit(VIRTIO_RING_F_EVENT_IDX) != 0
    }

    /// Bytes of shared memory backing the rings and buffers.
    pub fn memory_len(&self) -> u64 {
        self.mem.len()
    }

    /// The control connection, for requests this type does not wrap.
    pub fn frontend(&mut self) -> &mut Frontend {
        &mut self.frontend
    }
}

/// Where one virtqueue lives, and which of its buffers it starts with: posted (receive
/// queue) or free (transmit queue).
struct QueuePlan {
    layout: QueueLayout,
    bufs: Range<u16>,
}

/// A device whose features are agreed (SET_OWNER through SET_FEATURES), waiting for its
/// memory and rings.
struct Negotiated {
    fe: Frontend,
    offered: u64,
    features: u64,
    protocol: VhostUserProtocolFeatures,
    queue_pairs: u16,
}

impl Negotiated {
    fn new(stream: UnixStream, cfg: &Config) -> io::Result<Negotiated> {
        let pairs = cfg.queue_pairs;
        let nvq = 2 * usize::from(pairs);
        let mut fe = Frontend::from_stream(stream, nvq as u64);

        step("SET_OWNER", fe.set_owner())?;
        let offered = step("GET_FEATURES", fe.get_features())?;
        if offered & bit(VIRTIO_F_VERSION_1) == 0 {
            return Err(io::Error::other(
                "vhost-user GET_FEATURES: the backend does not offer VIRTIO_F_VERSION_1 (legacy devices are not supported)",
            ));
        }
        let proto_bit = VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
        let mut want = bit(VIRTIO_F_VERSION_1) | (offered & proto_bit);
        if cfg.mrg_rxbuf {
            want |= offered & bit(VIRTIO_NET_F_MRG_RXBUF);
        }
        if cfg.event_idx {
            want |= offered & bit(VIRTIO_RING_F_EVENT_IDX);
        }
        if pairs > 1 {
            if offered & bit(VIRTIO_NET_F_MQ) == 0 {
                return Err(io::Error::other(format!(
                    "vhost-user GET_FEATURES: {pairs} queue pairs wanted but the backend does not offer VIRTIO_NET_F_MQ"
                )));
            }
            want |= bit(VIRTIO_NET_F_MQ);
        }

        let mut protocol = VhostUserProtocolFeatures::empty();
        if offered & proto_bit != 0 {
            let p = step("GET_PROTOCOL_FEATURES", fe.get_protocol_features())?;
            protocol = p & (VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::REPLY_ACK);
            step("SET_PROTOCOL_FEATURES", fe.set_protocol_features(protocol))?;
        }
        if protocol.contains(VhostUserProtocolFeatures::MQ) {
            let n = step("GET_QUEUE_NUM", fe.get_queue_num())?;
            if n < nvq as u64 {
                return Err(io::Error::other(format!(
                    "vhost-user GET_QUEUE_NUM: {pairs} queue pairs ({nvq} virtqueues) wanted, the backend has {n} virtqueues"
                )));
            }
        } else if pairs > 1 {
            return Err(io::Error::other(format!(
                "vhost-user GET_PROTOCOL_FEATURES: {pairs} queue pairs wanted but the backend does not offer the MQ protocol feature"
            )));
        }
        if protocol.contains(VhostUserProtocolFeatures::REPLY_ACK) {
            // From here on every request is acknowledged, so a refusal shows up at the
            // step that caused it rather than as a closed socket later.
            fe.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
        }
        step("SET_FEATURES", fe.set_features(want))?;
        Ok(Negotiated {
            fe,
            offered,
            features: want,
            protocol,
            queue_pairs: pairs,
        })
    }

    /// Announces `mem`, builds the rings of `queues` (virtqueue `i` is `queues[i]`:
    /// receive queues at even indexes) and hands each to the backend.
    fn start(mut self, mem: Arc<SharedMemory>, queues: &[QueuePlan]) -> io::Result<VirtioUser> {
        debug_assert_eq!(queues.len(), 2 * usize::from(self.queue_pairs));
        let event_idx = self.features & bit(VIRTIO_RING_F_EVENT_IDX) != 0;
        let mergeable = self.features & bit(VIRTIO_NET_F_MRG_RXBUF) != 0;
        let has_proto = self.offered & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() != 0;
        let fe = &mut self.fe;
        step("SET_MEM_TABLE", fe.set_mem_table(&mem.regions()))?;
        // Rings are laid out (and receive buffers posted) before the backend learns where
        // they are.
        let (pairs, kicks) = build_queues(&mem, queues, event_idx, mergeable)?;
        let mut calls = Vec::new();
        for (i, (q, kick)) in queues.iter().zip(&kicks).enumerate() {
            let (l, size) = (q.layout, q.layout.size);
            let call = EventFd::new(libc::EFD_NONBLOCK)?;
            let va = |gpa: u64| mem.host_addr(gpa) as u64;
            let addr = VringConfigData {
                queue_max_size: size,
                queue_size: size,
                flags: 0,
                desc_table_addr: va(l.desc),
                used_ring_addr: va(l.used),
                avail_ring_addr: va(l.avail),
                log_addr: None,
            };
            let q = |what: &str| format!("{what} (virtqueue {i})");
            step(&q("SET_VRING_NUM"), fe.set_vring_num(i, size))?;
            step(&q("SET_VRING_ADDR"), fe.set_vring_addr(i, &addr))?;
            step(&q("SET_VRING_BASE"), fe.set_vring_base(i, 0))?;
            step(&q("SET_VRING_CALL"), fe.set_vring_call(i, &call))?;
            step(&q("SET_VRING_KICK"), fe.set_vring_kick(i, kick))?;
            if has_proto {
                step(&q("SET_VRING_ENABLE"), fe.set_vring_enable(i, true))?;
            }
            calls.push(call);
        }
        Ok(VirtioUser {
            frontend: self.fe,
            mem,
            features: self.features,
            protocol: self.protocol,
            pairs,
            _calls: calls,
        })
    }
}

/// Builds the queues of `queues` (receive queues at even indexes) in `mem`; returns them
/// in pairs, with the eventfd each one kicks, for the backend's end.
fn build_queues(
    mem: &Arc<SharedMemory>,
    queues: &[QueuePlan],
    event_idx: bool,
    mergeable: bool,
) -> io::Result<(Vec<QueuePair>, Vec<EventFd>)> {
    let mut kicks = Vec::new();
    let mut pairs = Vec::new();
    for two in queues.chunks_exact(2) {
        let (r, t) = (&two[0], &two[1]);
        let kick = EventFd::new(libc::EFD_NONBLOCK)?;
        let bufs = r.bufs.clone();
        let rx = RxQueue::with_bufs(
            mem.clone(),
            r.layout,
            kick.try_clone()?,
            event_idx,
            mergeable,
            bufs,
        )?;
        kicks.push(kick);
        let kick = EventFd::new(libc::EFD_NONBLOCK)?;
        let tx = TxQueue::with_bufs(
            mem.clone(),
            t.layout,
            kick.try_clone()?,
            event_idx,
            t.bufs.clone(),
        )?;
        kicks.push(kick);
        pairs.push(QueuePair { rx, tx });
    }
    Ok((pairs, kicks))
}

/// One device of a [`loop_without_backend`] pair: its queue pairs, and the layout of each
/// virtqueue (receive queues at even indexes).
#[cfg(test)]
pub(crate) struct LoopSide {
    pub pairs: Vec<QueuePair>,
    pub layouts: Vec<QueueLayout>,
}

/// A [`VirtioUser::connect_loop`] pair's queues without a backend, for tests that play the
/// device themselves: the shared memory, then `a` and `b`.
#[cfg(test)]
pub(crate) fn loop_without_backend(
    cfg: &Config,
    tx_bufs: u16,
) -> io::Result<(Arc<SharedMemory>, [LoopSide; 2])> {
    check_loop(cfg, tx_bufs)?;
    let (mem, qa, qb) = loop_plan(cfg, tx_bufs)?;
    let mem = Arc::new(mem);
    let side = |q: &[QueuePlan]| -> io::Result<LoopSide> {
        let (pairs, _kicks) = build_queues(&mem, q, cfg.event_idx, cfg.mrg_rxbuf)?;
        let layouts = q.iter().map(|p| p.layout).collect();
        Ok(LoopSide { pairs, layouts })
    };
    let sides = [side(&qa)?, side(&qb)?];
    Ok((mem, sides))
}

/// The memory of a [`VirtioUser::connect_loop`] pair and the virtqueues of each device.
/// Per queue pair: the buffers `a` receives into and `b` transmits from, the buffers the
/// other way, and four rings.
fn loop_plan(
    cfg: &Config,
    tx_bufs: u16,
) -> io::Result<(SharedMemory, Vec<QueuePlan>, Vec<QueuePlan>)> {
    let (size, buf) = (cfg.queue_size, buf_size(cfg));
    let pairs = u64::from(cfg.queue_pairs);
    let per_pair = 4 * QueueLayout::ring_bytes(size) + 2 * QueueLayout::buf_bytes(size, buf);
    let mut mem = SharedMemory::new(pairs * per_pair)?;
    let (mut qa, mut qb) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        let to_a = QueueLayout::alloc_bufs(&mut mem, size, buf)?;
        let to_b = QueueLayout::alloc_bufs(&mut mem, size, buf)?;
        let mut plan = |bufs_at: u64, bufs: Range<u16>| -> io::Result<QueuePlan> {
            let layout = QueueLayout::alloc_ring(&mut mem, size, bufs_at, buf)?;
            Ok(QueuePlan { layout, bufs })
        };
        // Receive queues post the buffers the transmit queues of the other device do not
        // start with.
        qa.push(plan(to_a, tx_bufs..size)?);
        qa.push(plan(to_b, 0..tx_bufs)?);
        qb.push(plan(to_b, tx_bufs..size)?);
        qb.push(plan(to_a, 0..tx_bufs)?);
    }
    Ok((mem, qa, qb))
}

/// Buffers are whole cache lines, so that no two frames share one.
fn buf_size(cfg: &Config) -> u32 {
    cfg.buf_size.div_ceil(64) * 64
}

fn check(cfg: &Config) -> io::Result<()> {
    if cfg.queue_pairs == 0 {
        return Err(invalid("queue_pairs must be at least 1"));
    }
    let size = cfg.queue_size;
    if size == 0 || !size.is_power_of_two() || size > 32768 {
        return Err(invalid(&format!(
            "queue_size {size} is not a power of two in 1..=32768"
        )));
    }
    if (cfg.buf_size as usize) < VNET_HDR_LEN + 64 {
        return Err(invalid(&format!(
            "buf_size {} leaves no room for a frame",
            cfg.buf_size
        )));
    }
    Ok(())
}

fn check_loop(cfg: &Config, tx_bufs: u16) -> io::Result<()> {
    check(cfg)?;
    if tx_bufs > cfg.queue_size {
        return Err(invalid(&format!(
            "{tx_bufs} transmit buffers do not fit a ring of {}",
            cfg.queue_size
        )));
    }
    Ok(())
}

fn connect_stream(path: &Path) -> io::Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("vhost-user: cannot connect to {}: {e}", path.display()),
        )
    })
}

/// `e`, saying which socket it concerns.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn named(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("vhost-user: {what} {}: {e}", path.display()),
    )
}

/// Listens on `path`, replacing a stale socket there.
fn listen(path: &Path) -> io::Result<UnixListener> {
    // Only a socket is replaced: anything else at the path is somebody's file.
    if std::fs::symlink_metadata(path).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    }) {
        std::fs::remove_file(path).map_err(|e| named("cannot remove stale", path, e))?;
    }
    UnixListener::bind(path).map_err(|e| named("cannot listen on", path, e))
}

/// Waits for a backend to connect to `listener` (bound at `path`), for `timeout` at most.
fn accept_on(
    listener: &UnixListener,
    path: &Path,
    timeout: Option<Duration>,
) -> io::Result<UnixStream> {
    let stream = match timeout {
        None => {
            listener
                .accept()
                .map_err(|e| named("accept on", path, e))?
                .0
        }
        Some(t) => {
            listener.set_nonblocking(true)?;
            let deadline = Instant::now() + t;
            loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if Instant::now() >= deadline {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!(
                                    "vhost-user: no backend connected to {} within {t:?}",
                                    path.display()
                                ),
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => return Err(named("accept on", path, e)),
                }
            }
        }
    };
    stream.set_nonblocking(false)?;
    Ok(stream)
}

const fn bit(b: u32) -> u64 {
    1 << b
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("virtio-user: {msg}"))
}

/// Names the failed step in the error, keeping the socket error's kind where there is one.
fn step<T>(what: &str, r: vhost::Result<T>) -> io::Result<T> {
    r.map_err(|e| {
        let kind = match &e {
            vhost::Error::VhostUserProtocol(
                vhost::vhost_user::Error::SocketBroken(io)
                | vhost::vhost_user::Error::SocketError(io),
            ) => io.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, format!("vhost-user {what}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_plan_shares_buffers_crosswise_and_nothing_else() {
        let cfg = Config {
            queue_size: 8,
            buf_size: 100,
            ..Config::new(2)
        };
        let (mem, qa, qb) = loop_plan(&cfg, 3).unwrap();
        assert_eq!((qa.len(), qb.len()), (4, 4));
        let mut parts = Vec::new();
        for q in 0..2 {
            let (ar, at, br, bt) = (&qa[2 * q], &qa[2 * q + 1], &qb[2 * q], &qb[2 * q + 1]);
            assert_eq!(ar.layout.bufs, bt.layout.bufs);
            assert_eq!(br.layout.bufs, at.layout.bufs);
            assert_ne!(ar.layout.bufs, br.layout.bufs);
            assert_eq!((ar.bufs.clone(), bt.bufs.clone()), (3..8, 0..3));
            assert_eq!((br.bufs.clone(), at.bufs.clone()), (3..8, 0..3));
            for p in [ar, at, br, bt] {
                assert_eq!((p.layout.size, p.layout.buf_size), (8, 128));
                parts.push((p.layout.desc, 16 * 8));
                parts.push((p.layout.avail, 6 + 2 * 8));
                parts.push((p.layout.used, 6 + 8 * 8));
            }
            parts.push((ar.layout.bufs, 8 * 128));
            parts.push((br.layout.bufs, 8 * 128));
        }
        parts.sort();
        for w in parts.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{parts:x?} overlap");
        }
        let (end, len) = parts[parts.len() - 1];
        assert!(end + len <= mem.len());
        assert!(check_loop(&cfg, 9).is_err());
        assert!(check_loop(&cfg, 8).is_ok());
    }
}
