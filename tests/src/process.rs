//! A child process whose output is captured, which is killed when dropped, and whose
//! output is printed if the test is failing, so that CI logs explain the failure.

use crate::capture::{Capture, Waited};
use crate::paths::log_dir;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Process {
    name: String,
    child: Child,
    pub stdout: Capture,
    pub stderr: Capture,
    status: Option<ExitStatus>,
    started: Instant,
    /// The output was already put into a panic message.
    reported: bool,
}

impl Process {
    /// Spawns `cmd` with stdout and stderr captured; stdin is a pipe that the caller
    /// gets back if `with_stdin`, else /dev/null.
    pub fn spawn(name: &str, mut cmd: Command, with_stdin: bool) -> (Process, Option<ChildStdin>) {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        cmd.stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        let stem = format!("{name}-{}-{n}", std::process::id());
        let logs = log_dir();
        let stdout = Capture::spawn(
            child.stdout.take().unwrap(),
            &logs.join(format!("{stem}.out.log")),
        );
        let stderr = Capture::spawn(
            child.stderr.take().unwrap(),
            &logs.join(format!("{stem}.err.log")),
        );
        let stdin = child.stdin.take();
        let process = Process {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            status: None,
            started: Instant::now(),
            reported: false,
        };
        (process, stdin)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The exit status if the process has ended.
    pub fn status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: i32) {
        if self.status.is_some() {
            return;
        }
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Waits until both output streams are closed (the process has exited and its
    /// output has been read), so that a report contains everything.
    pub fn drain(&self, timeout: Duration) {
        for capture in [&self.stdout, &self.stderr] {
            let _ = capture.wait(timeout, |_| None::<()>);
        }
    }

    /// The whole output, for a failure message.
    pub fn report(&mut self) -> String {
        let status = match self.status() {
            Some(s) => format!("exited: {s}"),
            None => "still running".to_string(),
        };
        format!(
            "===== {} (pid {}, {status}, after {:.1?}) stdout [{}] =====\n{}\n===== {} stderr [{}] =====\n{}\n===== end of {} =====",
            self.name,
            self.child.id(),
            self.started.elapsed(),
            self.stdout.log_path().display(),
            self.stdout.text(),
            self.name,
            self.stderr.log_path().display(),
            self.stderr.text(),
            self.name,
        )
    }

    /// Panics with `message` followed by the process's output.
    pub fn fail(&mut self, message: &str) -> ! {
        self.drain(Duration::from_millis(500));
        let report = self.report();
        self.reported = true;
        panic!("{message}\n{report}");
    }

    /// Waits for `pattern`-like text on stdout, see [`Capture::wait`].
    pub fn wait_stdout<T>(
        &self,
        timeout: Duration,
        check: impl FnMut(&str) -> Option<T>,
    ) -> Waited<T> {
        self.stdout.wait(timeout, check)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() && !self.reported {
            self.drain(Duration::from_secs(2));
            eprintln!("{}", self.report());
        }
    }
}
