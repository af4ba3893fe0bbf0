//! A vhost-user port: its queue slots, shared with the workers, and the thread that keeps
//! a frontend connected to it.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vhost::vhost_user::Listener;
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

use crate::backend::NetBackend;
use crate::slot::QueueSlot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// vnf listens on the socket.
    Server,
    /// vnf connects to a socket the frontend listens on, and reconnects.
    Client,
}

/// The queues of one port. Queue pair `p` is virtqueue `2p` (the guest's receive queue,
/// which we transmit on) and `2p + 1` (the guest's transmit queue, which we receive from).
pub struct PortQueues {
    pub name: String,
    pub pairs: u16,
    pub mac: [u8; 6],
    /// Advertised to the frontend (VIRTIO_NET_F_MTU); enforced by the switch.
    pub mtu: u16,
    pub rx: Vec<QueueSlot>,
    pub tx: Vec<QueueSlot>,
}

impl PortQueues {
    pub fn new(name: &str, pairs: u16, mac: [u8; 6], mtu: u16) -> PortQueues {
        PortQueues {
            name: name.to_string(),
            pairs,
            mac,
            mtu,
            rx: (0..pairs).map(|_| QueueSlot::default()).collect(),
            tx: (0..pairs).map(|_| QueueSlot::default()).collect(),
        }
    }

    /// The slot of virtqueue `index`.
    pub fn slot(&self, index: usize) -> &QueueSlot {
        let pair = index / 2;
        if index.is_multiple_of(2) {
            &self.tx[pair]
        } else {
            &self.rx[pair]
        }
    }
}

/// Runs the port's connection loop on its own thread, for the life of the process.
pub fn spawn(port: Arc<PortQueues>, socket: PathBuf, mode: Mode) -> std::io::Result<()> {
    let public = match mode {
        Mode::Server => Some(listen(&socket)?),
        Mode::Client => None,
    };
    // vhost-user-backend's handler talks to the frontend through the relay (see
    // relay.rs) over this private socket, named in the abstract namespace so that it
    // leaves no file behind.
    let name = format!("vnf-{}-{}", std::process::id(), port.name);
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    let mut internal = Listener::from(UnixListener::bind_addr(&addr)?);
    std::thread::Builder::new()
        .name(format!("vhost-{}", port.name))
        .spawn(move || loop {
            let frontend = match &public {
                Some(l) => accept(l, &port, &socket),
                None => connect(&port, &socket),
            };
            if let Err(e) = serve_one(&port, frontend, &addr, &mut internal) {
                log::warn!("port {}: {}", port.name, e);
                std::thread::sleep(Duration::from_millis(500));
            }
        })?;
    Ok(())
}

fn listen(socket: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // A socket file left by an earlier run would make bind fail.
    let _ = std::fs::remove_file(socket);
    UnixListener::bind(socket)
        .map_err(|e| std::io::Error::other(format!("cannot listen on {}: {e}", socket.display())))
}

fn accept(l: &UnixListener, port: &PortQueues, socket: &Path) -> UnixStream {
    log::info!("port {}: listening on {}", port.name, socket.display());
    loop {
        match l.accept() {
            Ok((s, _)) => return s,
            Err(e) => {
                log::warn!("port {}: accept failed: {e}", port.name);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn connect(port: &PortQueues, socket: &Path) -> UnixStream {
    let mut logged = false;
    loop {
        match UnixStream::connect(socket) {
            Ok(s) => return s,
            Err(e) => {
                if !logged {
                    log::info!("port {}: waiting for {} ({e})", port.name, socket.display());
                    logged = true;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}

/// Serves one frontend connection from start to end.
fn serve_one(
    port: &Arc<PortQueues>,
    frontend: UnixStream,
    internal_addr: &SocketAddr,
    internal: &mut Listener,
) -> Result<(), String> {
    let backend = NetBackend::new(port.clone());
    let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
    let mut daemon = VhostUserDaemon::new(port.name.clone(), backend.clone(), mem)
        .map_err(|e| format!("cannot create device: {e}"))?;
    let handler_side = UnixStream::connect_addr(internal_addr)
        .map_err(|e| format!("cannot reach the protocol handler: {e}"))?;
    let relay = crate::relay::spawn(frontend, handler_side)
        .map_err(|e| format!("cannot start the relay: {e}"))?;
    daemon
        .start(internal)
        .map_err(|e| format!("protocol handler did not start: {e}"))?;
    log::info!("port {}: frontend connected", port.name);
    let result = daemon.wait();
    backend.disconnect();
    for h in daemon.get_epoll_handlers() {
        h.send_exit_event();
    }
    drop(daemon);
    for t in relay {
        let _ = t.join();
    }
    match result {
        Ok(()) => log::info!("port {}: frontend disconnected", port.name),
        Err(e) => log::warn!("port {}: frontend disconnected: {e}", port.name),
    }
    Ok(())
}
