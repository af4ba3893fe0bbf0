//! Layer 3: routing.
//!
//! So far only the IPv4 longest-prefix-match table ([`lpm4`]) the FIB will be built on.

pub mod lpm4;
mod mem;

pub use lpm4::{Lpm4, Lpm4Error, Lpm4Reader, Lpm4Table, NO_ROUTE};
