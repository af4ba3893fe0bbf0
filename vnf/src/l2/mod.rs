//! Layer 2: Ethernet and VLAN tags, bridge domains with MAC learning.

pub mod config;
mod fast;
pub mod forward;
pub mod mactable;
pub mod wire;

pub use config::L2;
pub use forward::{bridge_batch, L2Counters, Outputs};
