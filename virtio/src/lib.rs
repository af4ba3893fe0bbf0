//! virtio-net over vhost-user: the device that VMs attach to.
//!
//! [`port`] keeps a frontend connected and owns the queue slots; [`backend`] speaks the
//! device side of the vhost-user protocol; [`ring`] and [`net`] move frames through split
//! virtqueues in guest memory, checking everything the guest wrote. [`user`] is the other
//! end: a virtio-user frontend (driver) that attaches to any vhost-user backend.

pub mod backend;
pub mod counters;
pub mod driver;
pub mod mem;
pub mod net;
pub mod port;
mod relay;
pub mod ring;
pub mod slot;
#[cfg(test)]
mod tests;
pub mod user;

pub use counters::{DropReason, QueueCounters};
pub use port::{Mode, PortQueues};
pub use ring::RingError;
pub use slot::{Doorbell, QueueSlot};
