//! Layer 3: routing.
//!
//! So far only the longest-prefix-match tables the FIB will be built on: IPv4 ([`lpm4`])
//! and IPv6 ([`lpm6`]).

pub mod arp;
pub mod checksum;
pub mod forward;
pub mod fragment;
mod groups;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod lpm4;
pub mod lpm6;
mod mem;
pub mod nd;
pub mod neighbor;
pub mod pending;
pub mod ratelimit;
pub mod router;

pub use lpm4::{Lpm4, Lpm4Error, Lpm4Reader, Lpm4Table, NO_ROUTE};
pub use lpm6::{Lpm6, Lpm6Error, Lpm6Reader, Lpm6Table};
pub use router::Router;
