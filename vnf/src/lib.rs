//! vnf: a userspace virtual switch for hypervisor hosts. The binary (`main.rs`) is
//! the command line; this library holds the switch itself, so benchmarks and tests can
//! drive its stages directly.

pub mod control;
pub mod gen;
pub mod gen_cmd;
pub mod l2;
pub mod l3;
pub mod logger;
pub mod stats;
pub mod switch;
#[doc(hidden)]
pub mod testing;
pub mod worker;
