//! Serialises tests that start guests.
//!
//! Two cores running several TCG guests at once make timing-sensitive tests flaky, so
//! every such test holds one exclusive file lock. A file lock (rather than a static
//! mutex) also keeps separate test binaries, or a developer's second `cargo test`, from
//! overlapping.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Held for the duration of a test; released on drop (the kernel releases it if the
/// process dies).
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the exclusive lock on `path` is ours.
    pub fn acquire(path: &Path) -> FileLock {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create lock directory");
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open lock file {}: {e}", path.display()));
        loop {
            // SAFETY: flock on a descriptor we own; no memory is shared with the kernel.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return FileLock { _file: file };
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                panic!("flock {}: {err}", path.display());
            }
        }
    }
}

/// Take this first in every test that starts guests or vnf.
pub fn serial() -> FileLock {
    FileLock::acquire(&crate::paths::target_dir().join("vnf-tests.lock"))
}
