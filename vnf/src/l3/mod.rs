//! Layer 3: routing.
//!
//! The router ([`router`]) and its routing stage ([`forward`]); the FIB's
//! longest-prefix-match tables ([`lpm4`], [`lpm6`]) with their grace periods ([`rcu`]);
//! neighbors ([`arp`], [`nd`], [`neighbor`], [`pending`]); and the packet formats the
//! router reads and writes ([`ipv4`], [`ipv6`], [`icmp`], [`fragment`], [`checksum`]).

mod announce;
pub mod arp;
pub mod checksum;
mod fast4;
mod fast6;
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
pub mod rcu;
pub mod router;
mod routes;

pub use lpm4::{Lpm4, Lpm4Error, Lpm4Reader, Lpm4Table, NO_ROUTE};
pub use lpm6::{Lpm6, Lpm6Error, Lpm6Reader, Lpm6Table};
pub use router::Router;
pub use routes::{Lpm, LpmError, LpmReader};
