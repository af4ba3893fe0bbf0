//! Where the workspace, its build output and the harness's scratch files live.

use std::path::PathBuf;

/// The workspace root: this crate sits one level below it.
pub fn workspace() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .expect("tests crate lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory, honouring CARGO_TARGET_DIR like cargo does.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace().join(dir)
            }
        }
        None => workspace().join("target"),
    }
}

/// Console logs and process output are kept here so that a failed run can be
/// inspected after the test process is gone.
pub fn log_dir() -> PathBuf {
    let dir = target_dir().join("test-logs");
    std::fs::create_dir_all(&dir).expect("create target/test-logs");
    dir
}
