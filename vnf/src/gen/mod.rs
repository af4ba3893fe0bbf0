//! `vnf gen`: a traffic generator and RFC 2544 tester, modelled on NetBSD's ipgen.
//!
//! Nothing here knows how frames reach the wire: everything runs against `FramePort`, so
//! the in-memory `Loopback` exercises the whole engine in tests.
//!
//! One trial on a port that sees its own frames again:
//!
//! ```ignore
//! let mut traffic = Traffic::new(&FlowSpec::default(), &FrameSize::Fixed(64))?;
//! let spec = TrialSpec::new(1e6, Length::Duration(Duration::from_secs(10)));
//! let result = run_trial(&mut traffic, Ports::Same(&mut port), &MonotonicClock, &spec)?;
//! print!("{}", report::trial_table(&[result]));
//! ```
//!
//! An RFC 2544 run:
//!
//! ```ignore
//! let mut runner = PortRunner {
//!     traffic: Traffic::new(&flows, &FrameSize::Fixed(64))?,
//!     ports: Ports::Split { tx: &mut a, rx: &mut b },
//!     clock: &MonotonicClock,
//!     spec: TrialSpec { tx_queues: vec![0, 1], ..TrialSpec::new(1.0, Length::Frames(0)) },
//! };
//! let mut bar = ProgressBar::stderr();
//! let r = rfc2544::run(&Rfc2544Config::default(), &mut runner, &mut |p| bar.update(p))?;
//! bar.finish();
//! print!("{}", report::table(&r));
//! ```

// The command line uses only part of this API (the loopback serves tests and self-tests),
// and a binary crate has no other users to keep the rest alive.
#![allow(dead_code)]

pub mod circulate;
pub mod flows;
pub mod frame;
pub mod port;
pub mod progress;
pub mod rate;
pub mod report;
pub mod rfc2544;
pub mod run;
pub mod rx;

/// Proves the per-packet paths allocate nothing, by counting this thread's allocations.
#[cfg(test)]
mod no_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use super::flows::{FlowSpec, Traffic};
    use super::frame::{FrameSize, Stamp, MAX_WIRE};
    use super::rate::Pacer;
    use super::rx::RxTracker;

    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    // SAFETY: defers to System; the counter is a const-initialised thread local without
    // a destructor, so touching it cannot allocate or recurse.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            System.alloc(layout)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout)
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn allocations() -> u64 {
        ALLOCATIONS.with(|c| c.get())
    }

    #[test]
    fn stamping_pacing_and_accounting_do_not_allocate() {
        // Template cap 8 of 64 flows: the patched path is exercised too.
        let spec = FlowSpec {
            src_port: "1-64".parse().unwrap(),
            template_cap: 8,
            ..FlowSpec::default()
        };
        let mut traffic = Traffic::new(&spec, &FrameSize::imix()).unwrap();
        let mut rx = RxTracker::new(1, 1, 2);
        let mut pacer = Pacer::new(1e6, 32, 0);
        let mut buf = vec![0u8; MAX_WIRE];
        let before = allocations();
        for seq in 0..10_000u64 {
            let st = Stamp {
                stream: 1,
                queue: (seq % 2) as u16,
                seq: seq / 2,
                ts: seq,
            };
            let n = traffic.fill(&mut buf, &st);
            rx.record(&buf[..n], seq + 100);
            rx.record(&buf[..n], seq + 100);
            rx.record(&[0u8; 60], 0);
            let due = pacer.allowed(seq * 1000);
            pacer.sent(due);
        }
        assert_eq!(allocations(), before);
        let t = rx.totals();
        assert_eq!(
            (t.received, t.duplicates, t.foreign),
            (10_000, 10_000, 10_000)
        );
    }
}
