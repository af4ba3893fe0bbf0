//! Packet buffers for the forwarding core.
//!
//! A worker owns one [`Pool`] of fixed-size buffers carved from a single mapping, and moves
//! frames around as [`Packet`] handles collected in a [`Batch`]. Nothing here allocates
//! after the pool is created, takes a lock or makes a system call, so all of it may run per
//! packet. Buffers never cross threads: a packet is taken from and returned to the pool of
//! the worker that holds it.

mod batch;
mod pool;

pub use batch::{Batch, BATCH_SIZE};
pub use pool::{Packet, Pool, BUF_SIZE, HEADROOM, MAX_FRAME};
