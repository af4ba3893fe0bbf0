//! The control thread: signals and timers, dispatched by event-manager.
//!
//! SIGUSR1 prints the statistics; SIGINT and SIGTERM stop vnf; with `--stats N` a timer
//! prints them every N seconds.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_manager::{EventManager, EventOps, Events, MutEventSubscriber, SubscriberOps};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::timerfd::TimerFd;

use crate::stats;
use crate::switch::Switch;
use crate::worker::WorkerStats;

const SIGNALS: [libc::c_int; 3] = [libc::SIGUSR1, libc::SIGINT, libc::SIGTERM];

/// Blocks the handled signals in the calling thread, so that threads created afterwards
/// inherit the mask and the signals reach only the signalfd. Call before any thread starts.
pub fn block_signals() -> std::io::Result<()> {
    // SAFETY: sigset manipulation on a local set; pthread_sigmask with valid pointers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

fn signalfd() -> std::io::Result<OwnedFd> {
    // SAFETY: as in block_signals; signalfd returns a new descriptor or -1.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn read_signal(fd: RawFd) -> Option<libc::c_int> {
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most `size` bytes into `info`.
    let n = unsafe { libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
    (n == size as isize).then_some(info.ssi_signo as libc::c_int)
}

struct Control {
    signals: OwnedFd,
    timer: Option<TimerFd>,
    switch: Arc<Switch>,
    workers: Vec<Arc<WorkerStats>>,
    stop: Arc<AtomicBool>,
}

impl Control {
    fn print_stats(&self) {
        let report = stats::report(&self.switch, &self.workers);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(report.as_bytes());
        let _ = out.flush();
    }
}

impl MutEventSubscriber for Control {
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.signals, EventSet::IN)) {
            log::error!("cannot watch signals: {e:?}");
        }
        if let Some(t) = &self.timer {
            if let Err(e) = ops.add(Events::new(t, EventSet::IN)) {
                log::error!("cannot watch the statistics timer: {e:?}");
            }
        }
    }

    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        if events.fd() == self.signals.as_raw_fd() {
            while let Some(sig) = read_signal(self.signals.as_raw_fd()) {
                match sig {
                    libc::SIGUSR1 => self.print_stats(),
                    _ => {
                        log::info!("signal {sig}: stopping");
                        self.stop.store(true, Ordering::SeqCst);
                    }
                }
            }
        } else if let Some(t) = &mut self.timer {
            let _ = t.wait();
            self.print_stats();
        }
    }
}

/// Runs the control loop until a stop signal arrives.
pub fn run(
    switch: Arc<Switch>,
    workers: Vec<Arc<WorkerStats>>,
    stats_every: Option<Duration>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let timer = match stats_every {
        Some(d) => {
            let mut t = TimerFd::new()?;
            t.reset(d, Some(d))?;
            Some(t)
        }
        None => None,
    };
    let control = Control {
        signals: signalfd()?,
        timer,
        switch,
        workers,
        stop: stop.clone(),
    };
    let mut manager = EventManager::<Arc<Mutex<dyn MutEventSubscriber + Send>>>::new()
        .map_err(|e| std::io::Error::other(format!("event manager: {e:?}")))?;
    manager.add_subscriber(Arc::new(Mutex::new(control)));
    while !stop.load(Ordering::SeqCst) {
        manager
            .run_with_timeout(500)
            .map_err(|e| std::io::Error::other(format!("event manager: {e:?}")))?;
    }
    Ok(())
}
