//! A vhost-user port: its queue slots, shared with the workers, and the thread that keeps
//! a frontend connected to it.

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
    pub rx: Vec<QueueSlot>,
    pub tx: Vec<QueueSlot>,
}

impl PortQueues {
    pub fn new(name: &str, pairs: u16, mac: [u8; 6]) -> PortQueues {
        PortQueues {
            name: name.to_string(),
            pairs,
            mac,
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
    let mut listener = match mode {
        Mode::Server => Some(listen(&socket)?),
        Mode::Client => None,
    };
    std::thread::Builder::new()
        .name(format!("vhost-{}", port.name))
        .spawn(move || loop {
            if let Err(e) = serve_one(&port, &socket, listener.as_mut()) {
                log::warn!("port {}: {}", port.name, e);
                std::thread::sleep(Duration::from_millis(500));
            }
        })?;
    Ok(())
}

fn listen(socket: &Path) -> std::io::Result<Listener> {
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Listener::new(socket, true)
        .map_err(|e| std::io::Error::other(format!("cannot listen on {}: {e}", socket.display())))
}

/// Serves one frontend connection from start to end.
fn serve_one(
    port: &Arc<PortQueues>,
    socket: &Path,
    listener: Option<&mut Listener>,
) -> Result<(), String> {
    let backend = NetBackend::new(port.clone());
    let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
    let mut daemon = VhostUserDaemon::new(port.name.clone(), backend.clone(), mem)
        .map_err(|e| format!("cannot create device: {e}"))?;
    match listener {
        Some(l) => {
            log::info!("port {}: listening on {}", port.name, socket.display());
            daemon.start(l).map_err(|e| format!("accept failed: {e}"))?;
        }
        None => connect(&mut daemon, port, socket),
    }
    log::info!("port {}: frontend connected", port.name);
    let result = daemon.wait();
    backend.disconnect();
    for h in daemon.get_epoll_handlers() {
        h.send_exit_event();
    }
    drop(daemon);
    match result {
        Ok(()) => log::info!("port {}: frontend disconnected", port.name),
        Err(e) => log::warn!("port {}: frontend disconnected: {e}", port.name),
    }
    Ok(())
}

fn connect(daemon: &mut VhostUserDaemon<NetBackend>, port: &PortQueues, socket: &Path) {
    let path = socket.to_string_lossy();
    let mut logged = false;
    loop {
        match daemon.start_client(&path) {
            Ok(()) => return,
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
