//! Test harness for vnf: boots real QEMU (TCG) guests from a cached Debian-kernel +
//! busybox image, attaches them over vhost-user to the vnf binary (or to DPDK testpmd,
//! an independent switch), and reads vnf's statistics.
//!
//! Tests that start guests take [`serial()`] first: guests are slow under TCG on two
//! cores, and running them side by side would make timing flaky.

mod capture;
pub mod guest;
pub mod image;
mod lock;
pub mod manifest;
pub mod net;
pub mod paths;
pub mod pattern;
mod process;
pub mod readme;
pub mod rig;
pub mod stats;
mod tempdir;
pub mod testpmd;
pub mod vnf;

pub use guest::{Guest, GuestConfig, Nic, ScriptResult, SocketRole, VlanIf, BOOT_TIMEOUT};
pub use image::{image, Image};
pub use lock::serial;
pub use manifest::{Bridge, Member, Mode, Port};
pub use net::Tpid;
pub use stats::{MacEntry, Stats};
pub use tempdir::TempDir;
pub use testpmd::{Testpmd, VhostPort};
pub use vnf::{Validation, Vnf};
