//! The vhost-user device: what we tell the frontend we are, and how the queues it sets up
//! are handed to the workers.
//!
//! vhost-user-backend runs the control protocol. It calls `handle_event` once when a ring
//! becomes ready and enabled and after each kick; that is where a queue is attached to its
//! slot. `stop_vring` (GET_VRING_BASE) detaches it and hands back where the guest should
//! resume. One `NetBackend` serves one connection: a reconnecting frontend gets a fresh
//! one, so no state leaks from the previous guest.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::virtio_config::{VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1};
use virtio_bindings::virtio_net::{
    VIRTIO_NET_F_MAC, VIRTIO_NET_F_MQ, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_NET_F_MTU,
    VIRTIO_NET_F_STATUS, VIRTIO_NET_S_LINK_UP,
};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier,
};

use crate::mem::MemTable;
use crate::net::{NetQueue, VNET_HDR_LEN, VNET_HDR_LEN_LEGACY};
use crate::port::PortQueues;
use crate::ring::{RingConfig, SplitRing};

type Mem = GuestMemoryAtomic<GuestMemoryMmap<()>>;
pub type Vring = VringRwLock<Mem>;

/// Largest ring the frontend may ask for (QEMU's maximum for virtio-net).
pub const MAX_QUEUE_SIZE: usize = 1024;

const fn bit(b: u32) -> u64 {
    1 << b
}

pub const FEATURES: u64 = bit(VIRTIO_F_VERSION_1)
    | bit(VIRTIO_NET_F_MQ)
    | bit(VIRTIO_NET_F_MRG_RXBUF)
    | bit(VIRTIO_RING_F_EVENT_IDX)
    | bit(VIRTIO_RING_F_INDIRECT_DESC)
    | bit(VIRTIO_NET_F_MAC)
    | bit(VIRTIO_NET_F_MTU)
    | bit(VIRTIO_NET_F_STATUS)
    | bit(VIRTIO_F_NOTIFY_ON_EMPTY);

#[derive(Clone)]
pub struct NetBackend(Arc<Inner>);

struct Inner {
    port: Arc<PortQueues>,
    acked: AtomicU64,
    /// Cleared when the connection ends, so that a late event from the old connection's
    /// threads cannot attach a queue again.
    alive: AtomicBool,
    mem: Mutex<Option<(Mem, Arc<MemTable>)>>,
    vrings: Mutex<Vec<Vring>>,
}

impl NetBackend {
    pub fn new(port: Arc<PortQueues>) -> NetBackend {
        NetBackend(Arc::new(Inner {
            port,
            acked: AtomicU64::new(0),
            alive: AtomicBool::new(true),
            mem: Mutex::new(None),
            vrings: Mutex::new(Vec::new()),
        }))
    }

    /// The connection is gone: take every queue out of service.
    pub fn disconnect(&self) {
        self.0.alive.store(false, Ordering::SeqCst);
        for i in 0..self.num_queues() {
            *self.0.port.slot(i).lock() = None;
        }
    }

    fn hdr_len(&self) -> usize {
        let f = self.0.acked.load(Ordering::Relaxed);
        if f & (bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_MRG_RXBUF)) != 0 {
            VNET_HDR_LEN
        } else {
            VNET_HDR_LEN_LEGACY
        }
    }

    /// Where the frontend put the ring; with `running`, only if it is ready and enabled.
    fn ring_config(vring: &Vring, running: bool) -> Option<RingConfig> {
        let state = vring.get_ref();
        let q = state.get_queue();
        use virtio_queue::QueueT;
        if running && (!q.ready() || !state.is_enabled()) {
            return None;
        }
        Some(RingConfig {
            desc: q.desc_table(),
            avail: q.avail_ring(),
            used: q.used_ring(),
            size: q.size(),
            next_avail: q.next_avail(),
            next_used: q.next_used(),
            event_idx: q.event_idx_enabled(),
        })
    }

    /// Attaches queue `index` if the frontend has made it ready and it is not running yet.
    fn attach(&self, index: usize, vring: &Vring) {
        let slot = self.0.port.slot(index);
        let mut g = slot.lock();
        if g.is_some() || !self.0.alive.load(Ordering::SeqCst) {
            return;
        }
        let Some(cfg) = Self::ring_config(vring, true) else {
            return;
        };
        let Some(mem) = self.0.mem.lock().unwrap().as_ref().map(|m| m.1.clone()) else {
            return;
        };
        let call = vring.clone();
        let notify = Box::new(move || {
            // A failed eventfd write means the frontend is going away; nothing to do.
            let _ = call.signal_used_queue();
        });
        let mergeable = self.0.acked.load(Ordering::Relaxed) & bit(VIRTIO_NET_F_MRG_RXBUF) != 0;
        match SplitRing::new(mem, &cfg) {
            Ok(mut ring) => {
                // We poll; kicks only matter to wake an idle worker, which asks for them
                // itself before it sleeps.
                ring.set_kicks(false);
                *g = Some(NetQueue::new(ring, self.hdr_len(), mergeable, notify));
                log::info!(
                    "port {}: queue {} attached (size {}, event_idx {}, mergeable {})",
                    self.0.port.name,
                    index,
                    cfg.size,
                    cfg.event_idx,
                    mergeable
                );
            }
            Err(e) => {
                slot.counters.error(e);
                log::warn!(
                    "port {}: queue {} rejected: {} (desc {:#x} avail {:#x} used {:#x} size {})",
                    self.0.port.name,
                    index,
                    e.name(),
                    cfg.desc,
                    cfg.avail,
                    cfg.used,
                    cfg.size
                );
            }
        }
    }
}

impl VhostUserBackend for NetBackend {
    type Bitmap = ();
    type Vring = Vring;

    fn num_queues(&self) -> usize {
        2 * self.0.port.pairs as usize
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        FEATURES | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn acked_features(&self, features: u64) {
        self.0.acked.store(features, Ordering::Relaxed);
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::CONFIG
            | VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
    }

    fn set_event_idx(&self, _enabled: bool) {
        // Read per queue from the vring when it is attached.
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        // struct virtio_net_config: mac[6], status, max_virtqueue_pairs, mtu (little endian).
        let mut cfg = Vec::with_capacity(12);
        cfg.extend_from_slice(&self.0.port.mac);
        cfg.extend_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
        cfg.extend_from_slice(&self.0.port.pairs.to_le_bytes());
        cfg.extend_from_slice(&self.0.port.mtu.to_le_bytes());
        let start = (offset as usize).min(cfg.len());
        let end = (offset as usize)
            .saturating_add(size as usize)
            .min(cfg.len());
        cfg[start..end].to_vec()
    }

    fn update_memory(&self, mem: Mem) -> io::Result<()> {
        let table = Arc::new(MemTable::new(mem.memory().into_inner()));
        *self.0.mem.lock().unwrap() = Some((mem, table.clone()));
        // Attached queues move to the new table; their rings' guest addresses are unchanged.
        // A frontend may disable its queues around the change (DPDK's virtio-user does),
        // so this does not wait for them to be enabled.
        let vrings = self.0.vrings.lock().unwrap().clone();
        for (i, vring) in vrings.iter().enumerate() {
            let slot = self.0.port.slot(i);
            let mut g = slot.lock();
            let Some(q) = g.as_mut() else { continue };
            let Some(cfg) = Self::ring_config(vring, false) else {
                continue;
            };
            match q.ring().remap(table.clone(), cfg.desc, cfg.avail, cfg.used) {
                Ok(r) => q.replace_ring(r),
                Err(e) => q.fail(e, &slot.counters),
            }
        }
        Ok(())
    }

    fn queues_per_thread(&self) -> Vec<u64> {
        // One control thread for every queue of the port: it only relays kicks to idle
        // workers and attaches queues, so more would buy nothing.
        vec![(1u64 << self.num_queues()) - 1]
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        new_event_consumer_and_notifier(EventFlag::NONBLOCK).ok()
    }

    fn stop_vring(&self, index: u32) -> io::Result<()> {
        let index = index as usize;
        if index >= self.num_queues() {
            return Ok(());
        }
        let taken = self.0.port.slot(index).lock().take();
        if let Some(q) = taken {
            if let Some(vring) = self.0.vrings.lock().unwrap().get(index) {
                vring.set_queue_next_avail(q.ring().last_avail());
            }
            log::info!("port {}: queue {} stopped", self.0.port.name, index);
        }
        Ok(())
    }

    fn reset_device(&self) {
        for i in 0..self.num_queues() {
            *self.0.port.slot(i).lock() = None;
        }
    }

    fn handle_event(
        &self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[Vring],
        _thread_id: usize,
    ) -> io::Result<()> {
        let index = device_event as usize;
        if index >= self.num_queues() || index >= vrings.len() {
            return Ok(());
        }
        {
            let mut stored = self.0.vrings.lock().unwrap();
            if stored.is_empty() {
                *stored = vrings.to_vec();
            }
        }
        self.attach(index, &vrings[index]);
        if let Some(bell) = self.0.port.slot(index).doorbell.get() {
            bell.ring();
        }
        Ok(())
    }
}
