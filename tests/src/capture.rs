//! Collects a child's output stream in the background so that tests can wait for text
//! to appear, and keeps all of it (also in a log file) for failure reports.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Buffer {
    text: String,
    /// The writer closed its end: no more text will come.
    closed: bool,
}

/// Shared text of one output stream.
#[derive(Clone)]
pub struct Capture {
    inner: Arc<(Mutex<Buffer>, Condvar)>,
    log_path: PathBuf,
}

impl Capture {
    /// Starts a thread that drains `source` until end of file. Carriage returns are
    /// dropped because a serial console ends lines with CR LF.
    pub fn spawn(source: impl Read + Send + 'static, log_path: &Path) -> Capture {
        let capture = Capture {
            inner: Arc::new((Mutex::new(Buffer::default()), Condvar::new())),
            log_path: log_path.to_path_buf(),
        };
        let writer = capture.clone();
        let mut log = File::create(log_path)
            .unwrap_or_else(|e| panic!("create log {}: {e}", log_path.display()));
        std::thread::spawn(move || {
            let mut source = source;
            let mut chunk = [0u8; 4096];
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let n = match source.read(&mut chunk) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                if n == 0 {
                    writer.append(&String::from_utf8_lossy(&pending), true);
                    return;
                }
                let _ = log.write_all(&chunk[..n]);
                pending.extend(chunk[..n].iter().filter(|&&b| b != b'\r'));
                // Hold back an incomplete UTF-8 sequence until its remaining bytes arrive.
                let valid = match std::str::from_utf8(&pending) {
                    Ok(_) => pending.len(),
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => pending.len(),
                };
                let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
                pending.drain(..valid);
                writer.append(&text, false);
            }
        });
        capture
    }

    fn append(&self, text: &str, closed: bool) {
        let (lock, cvar) = &*self.inner;
        let mut buf = lock.lock().unwrap();
        buf.text.push_str(text);
        buf.closed |= closed;
        cvar.notify_all();
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.inner.0.lock().unwrap().text.clone()
    }

    pub fn len(&self) -> usize {
        self.inner.0.lock().unwrap().text.len()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Waits until `check` finds what it looks for in the text, the stream closes, or
    /// the timeout passes. `check` sees the whole text each time.
    pub fn wait<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&str) -> Option<T>,
    ) -> Waited<T> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inner;
        let mut buf = lock.lock().unwrap();
        loop {
            if let Some(found) = check(&buf.text) {
                return Waited::Found(found);
            }
            if buf.closed {
                return Waited::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Waited::TimedOut;
            }
            buf = cvar.wait_timeout(buf, deadline - now).unwrap().0;
        }
    }
}

pub enum Waited<T> {
    Found(T),
    Closed,
    TimedOut,
}
