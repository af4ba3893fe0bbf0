//! The vnf binary under test, run as a child process.

use crate::capture::Waited;
use crate::paths::target_dir;
use crate::process::Process;
use crate::stats::{find_block, Stats};
use crate::tempdir::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// `$VNF_BIN`, else the release build, else the debug build.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("VNF_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "VNF_BIN={} does not exist", bin.display());
        return bin;
    }
    let target = target_dir();
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join("vnf");
        if bin.is_file() {
            return bin;
        }
    }
    panic!(
        "no vnf binary: set VNF_BIN or build it (cargo build --release -p vnf) so that {} exists",
        target.join("release/vnf").display()
    );
}

/// A running `vnf run`; dropping it kills the process.
pub struct Vnf {
    process: Process,
    /// Holds the manifest for as long as vnf runs.
    _dir: TempDir,
}

impl Vnf {
    /// Writes `manifest` to a file and runs `vnf run FILE` with `env` added to the
    /// environment; returns once every server-mode port's socket exists.
    pub fn start(manifest: &str, env: &[(&str, &str)]) -> Vnf {
        let dir = TempDir::new("manifest");
        let path = dir.join("vnf.yaml");
        std::fs::write(&path, manifest).expect("write manifest");
        let sockets = server_sockets(manifest, env);
        let mut cmd = Command::new(binary());
        cmd.arg("run").arg(&path).current_dir(dir.path());
        Vnf::spawn(cmd, env, dir, sockets)
    }

    /// Runs `vnf run` without a manifest in `cwd`, so the embedded default applies
    /// (sockets `run/vm0.sock` and `run/vm1.sock` under `cwd`).
    pub fn start_default(cwd: &Path, env: &[(&str, &str)]) -> Vnf {
        let mut cmd = Command::new(binary());
        cmd.arg("run").current_dir(cwd);
        let sockets = vec![cwd.join("run/vm0.sock"), cwd.join("run/vm1.sock")];
        Vnf::spawn(cmd, env, TempDir::new("default"), sockets)
    }

    fn spawn(mut cmd: Command, env: &[(&str, &str)], dir: TempDir, sockets: Vec<PathBuf>) -> Vnf {
        cmd.envs(env.iter().copied());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let (process, _) = Process::spawn("vnf", cmd, false);
        let mut vnf = Vnf { process, _dir: dir };
        vnf.wait_for_sockets(&sockets);
        vnf
    }

    fn wait_for_sockets(&mut self, sockets: &[PathBuf]) {
        use std::os::unix::fs::FileTypeExt;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let missing: Vec<&PathBuf> = sockets
                .iter()
                .filter(|s| !std::fs::metadata(s).is_ok_and(|m| m.file_type().is_socket()))
                .collect();
            if missing.is_empty() {
                return;
            }
            if self.process.status().is_some() {
                self.fail("vnf exited during start-up");
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "vnf did not create {missing:?} within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn is_running(&mut self) -> bool {
        self.process.status().is_none()
    }

    /// Panics (with vnf's output) unless vnf is still running.
    pub fn assert_running(&mut self) {
        if !self.is_running() {
            self.fail("vnf is no longer running");
        }
    }

    /// Sends SIGUSR1 and returns the stats block printed in response.
    pub fn stats(&mut self) -> Stats {
        self.assert_running();
        let from = self.process.stdout.len();
        self.process.signal(libc::SIGUSR1);
        let waited = self.process.wait_stdout(STATS_TIMEOUT, |text| {
            find_block(text, from).map(str::to_string)
        });
        match waited {
            Waited::Found(block) => {
                Stats::parse(&block).unwrap_or_else(|e| self.fail(&format!("bad stats block: {e}")))
            }
            Waited::Closed => self.fail("vnf exited instead of printing stats"),
            Waited::TimedOut => self.fail(&format!(
                "no stats block within {STATS_TIMEOUT:?} of SIGUSR1"
            )),
        }
    }

    /// SIGTERM, then waits for vnf to exit.
    pub fn stop(&mut self, timeout: Duration) -> ExitStatus {
        self.process.signal(libc::SIGTERM);
        match self.process.wait_exit(timeout) {
            Some(status) => status,
            None => self.fail(&format!("vnf did not exit within {timeout:?} of SIGTERM")),
        }
    }

    /// vnf's log (stderr) so far.
    pub fn log(&self) -> String {
        self.process.stderr.text()
    }

    /// Panics with `message` and vnf's stdout and stderr.
    pub fn fail(&mut self, message: &str) -> ! {
        self.process.fail(message)
    }

    /// Runs `vnf validate FILE` on `manifest` written to a file.
    pub fn validate(manifest: &str) -> Validation {
        let dir = TempDir::new("validate");
        let file = dir.join("manifest.yaml");
        std::fs::write(&file, manifest).expect("write manifest");
        let out = Command::new(binary())
            .arg("validate")
            .arg(&file)
            .output()
            .expect("run vnf validate");
        Validation {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            file,
            _dir: dir,
        }
    }
}

/// The outcome of `vnf validate`.
pub struct Validation {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The manifest's path as passed on the command line.
    pub file: PathBuf,
    _dir: TempDir,
}

impl Validation {
    /// stdout then stderr: the spec says "prints" without naming the stream.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Socket paths of the manifest's vhost-user ports that vnf listens on, with `${VAR}`
/// expanded from `env` or the test's own environment.
fn server_sockets(manifest: &str, env: &[(&str, &str)]) -> Vec<PathBuf> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(manifest).expect("test manifest is valid YAML");
    let Some(ports) = doc.get("ports").and_then(|p| p.as_sequence()) else {
        return Vec::new();
    };
    ports
        .iter()
        .filter(|p| p.get("mode").and_then(|m| m.as_str()) == Some("server"))
        .filter_map(|p| p.get("socket").and_then(|s| s.as_str()))
        .map(|s| PathBuf::from(expand(s, env)))
        .collect()
}

fn expand(value: &str, env: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .expect("unterminated ${ in manifest")
            + start;
        let name = &rest[start + 2..end];
        let value = env
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .or_else(|| std::env::var(name).ok())
            .unwrap_or_else(|| panic!("manifest uses ${{{name}}} but it is not set"));
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_server_sockets_and_expands_variables() {
        let manifest = r#"
workers: { count: 2, poll: adaptive }
ports:
  - { name: vm0, type: vhost-user, socket: "${SOCKDIR}/vm0.sock", mode: server, queue_pairs: 2 }
  - { name: vm1, type: vhost-user, socket: "${SOCKDIR}/vm1.sock", mode: client }
  - { name: vm2, type: vhost-user, socket: "/x/${N}.sock", mode: server }
cross_connects:
  - [vm0, vm1]
"#;
        let sockets = server_sockets(manifest, &[("SOCKDIR", "/tmp/s"), ("N", "two")]);
        assert_eq!(
            sockets,
            vec![
                PathBuf::from("/tmp/s/vm0.sock"),
                PathBuf::from("/x/two.sock")
            ]
        );
    }
}
