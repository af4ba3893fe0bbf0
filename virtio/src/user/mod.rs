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
//! The frontend polls and asks the device for no interrupts; it kicks the device only
//! when the device asked to be kicked (`VRING_USED_F_NO_NOTIFY`, or `avail_event` with
//! EVENT_IDX), which polling backends such as vnf and DPDK rarely do.

mod memory;
pub mod queue;

use std::io;
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
pub use queue::{BadDescriptor, QueueLayout, QueueStats, RxQueue, TxQueue, CHAIN_TOO_LONG};

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
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("vhost-user: cannot connect to {}: {e}", path.display()),
            )
        })?;
        Self::setup(stream, cfg)
    }

    /// Listens on `path` and sets the device up for the first backend that connects (vnf's
    /// `mode: client`, DPDK's vhost PMD with `client=1`). A stale socket file is replaced.
    pub fn accept(path: impl AsRef<Path>, queue_pairs: u16) -> io::Result<VirtioUser> {
        Self::accept_with(path, &Config::new(queue_pairs))
    }

    pub fn accept_with(path: impl AsRef<Path>, cfg: &Config) -> io::Result<VirtioUser> {
        let path = path.as_ref();
        let named = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("vhost-user: {what} {}: {e}", path.display()),
            )
        };
        // Only a socket is replaced: anything else at the path is somebody's file.
        if std::fs::symlink_metadata(path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            std::fs::remove_file(path).map_err(|e| named("cannot remove stale", e))?;
        }
        let listener = UnixListener::bind(path).map_err(|e| named("cannot listen on", e))?;
        let stream = match cfg.accept_timeout {
            None => listener.accept().map_err(|e| named("accept on", e))?.0,
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
                        Err(e) => return Err(named("accept on", e)),
                    }
                }
            }
        };
        stream.set_nonblocking(false)?;
        Self::setup(stream, cfg)
    }

    /// Runs the whole vhost-user set-up on a connected control socket.
    fn setup(stream: UnixStream, cfg: &Config) -> io::Result<VirtioUser> {
        let pairs = cfg.queue_pairs;
        if pairs == 0 {
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

        let event_idx = want & bit(VIRTIO_RING_F_EVENT_IDX) != 0;
        let mergeable = want & bit(VIRTIO_NET_F_MRG_RXBUF) != 0;
        let buf = cfg.buf_size.div_ceil(64) * 64;
        let mut mem = SharedMemory::new(nvq as u64 * QueueLayout::bytes(size, buf))?;
        let layouts = (0..nvq)
            .map(|_| QueueLayout::alloc(&mut mem, size, buf))
            .collect::<io::Result<Vec<_>>>()?;
        let mem = Arc::new(mem);
        step("SET_MEM_TABLE", fe.set_mem_table(&mem.regions()))?;

        let mut rxs = Vec::new();
        let mut txs = Vec::new();
        let mut calls = Vec::new();
        for (i, l) in layouts.iter().enumerate() {
            let kick = EventFd::new(libc::EFD_NONBLOCK)?;
            let call = EventFd::new(libc::EFD_NONBLOCK)?;
            let our_kick = kick.try_clone()?;
            // Rings are laid out (and receive buffers posted) before the backend learns
            // where they are.
            if i % 2 == 0 {
                rxs.push(RxQueue::new(
                    mem.clone(),
                    *l,
                    our_kick,
                    event_idx,
                    mergeable,
                )?);
            } else {
                txs.push(TxQueue::new(mem.clone(), *l, our_kick, event_idx)?);
            }
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
            step(&q("SET_VRING_KICK"), fe.set_vring_kick(i, &kick))?;
            if offered & proto_bit != 0 {
                step(&q("SET_VRING_ENABLE"), fe.set_vring_enable(i, true))?;
            }
            calls.push(call);
        }
        let pairs = rxs
            .into_iter()
            .zip(txs)
            .map(|(rx, tx)| QueuePair { rx, tx })
            .collect();
        Ok(VirtioUser {
            frontend: fe,
            mem,
            features: want,
            protocol,
            pairs,
            _calls: calls,
        })
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
