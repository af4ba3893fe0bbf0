//! Log lines on stderr: `vnf: LEVEL message`. Control-plane only; the fast path never logs.

use log::{Level, LevelFilter, Metadata, Record};

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= Level::Info || m.target().starts_with("vnf")
    }

    fn log(&self, r: &Record) {
        // The rust-vmm crates log every protocol message at debug level: keep only ours.
        if r.level() > Level::Info && !r.target().starts_with("vnf") {
            return;
        }
        eprintln!("vnf: {:<5} {}", r.level(), r.args());
    }

    fn flush(&self) {}
}

pub fn init() {
    let level = match std::env::var("VNF_LOG").as_deref() {
        Ok("debug") => LevelFilter::Debug,
        Ok("warn") => LevelFilter::Warn,
        _ => LevelFilter::Info,
    };
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
}
