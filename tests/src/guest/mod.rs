//! A QEMU (TCG) guest booted from the test image, with vhost-user NICs.

mod config;

pub use config::{GuestConfig, Nic, SocketRole, VlanIf};

use crate::capture::Waited;
use crate::pattern::Pattern;
use crate::process::Process;
use regex::Regex;
use std::process::ExitStatus;
use std::time::Duration;

/// Time for the guest to boot and bring its network up under TCG.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// What the guest's script printed and how it ended.
#[derive(Debug)]
pub struct ScriptResult {
    pub output: String,
    pub rc: i32,
}

/// A running guest; dropping it kills QEMU.
pub struct Guest {
    config: GuestConfig,
    process: Process,
    /// Console text before this offset has been consumed by `expect`.
    cursor: usize,
}

impl Guest {
    pub fn start(config: GuestConfig) -> Guest {
        let cmd = config.qemu_command();
        let (process, _) = Process::spawn(&format!("guest-{}", config.name), cmd, false);
        Guest {
            config,
            process,
            cursor: 0,
        }
    }

    pub fn config(&self) -> &GuestConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Time since QEMU was started.
    pub fn elapsed(&self) -> Duration {
        self.process.elapsed()
    }

    /// The QEMU process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Waits for `pattern` on the console after the text consumed by earlier calls, and
    /// returns the console text up to the end of the match (then consumed). Panics with
    /// the console log on timeout or if QEMU exits first.
    pub fn expect(&mut self, pattern: impl Pattern, timeout: Duration) -> String {
        let cursor = self.cursor;
        let waited = self.process.stdout.wait(timeout, |text| {
            pattern
                .find_in(&text[cursor..])
                .map(|(_, end)| (cursor + end, text[cursor..cursor + end].to_string()))
        });
        match waited {
            Waited::Found((end, text)) => {
                self.cursor = end;
                text
            }
            Waited::Closed => {
                self.process.wait_exit(Duration::from_secs(5));
                self.fail(&format!(
                    "guest {}: QEMU exited before {} appeared",
                    self.name(),
                    pattern.describe()
                ))
            }
            Waited::TimedOut => self.fail(&format!(
                "guest {}: {} did not appear within {timeout:?}",
                self.name(),
                pattern.describe()
            )),
        }
    }

    /// Waits for the network to be up (`VNF-READY`); fails at once if a NIC never got
    /// its carrier, i.e. the vhost-user backend did not connect or did not stay.
    pub fn wait_ready(&mut self) -> String {
        let ready = Regex::new(r"VNF-READY|VNF-NO-CARRIER \S+\n").unwrap();
        let text = self.expect(&ready, BOOT_TIMEOUT);
        if let Some(line) = text.lines().find(|l| l.starts_with("VNF-NO-CARRIER")) {
            self.fail(&format!(
                "guest {}: {line}: no vhost-user backend attached",
                self.name()
            ));
        }
        // A VLAN interface or address the config asked for is missing: the guest is not
        // set up as the test assumes, whatever vnf does.
        let setup = Regex::new(r"VNF-(VLAN|ADDR)-FAILED .*").unwrap();
        if let Some(m) = setup.find(&text) {
            let line = m.as_str().to_string();
            self.fail(&format!("guest {}: {line}", self.name()));
        }
        text
    }

    /// Waits for the script to finish and returns its output and exit code.
    pub fn wait_script(&mut self, timeout: Duration) -> ScriptResult {
        let end = Regex::new(r"VNF-END rc=(\d+)\n").unwrap();
        let text = self.expect(&end, timeout);
        let rc = end.captures(&text).unwrap()[1].parse().unwrap();
        let mut output = &text[..text.rfind("VNF-END").unwrap()];
        if let Some(run) = output.find("VNF-RUN\n") {
            output = &output[run + "VNF-RUN\n".len()..];
        }
        ScriptResult {
            output: output.to_string(),
            rc,
        }
    }

    /// Waits for the script to end with exit code 0 and returns its output.
    pub fn wait_script_ok(&mut self, timeout: Duration) -> String {
        let result = self.wait_script(timeout);
        if result.rc != 0 {
            self.fail(&format!(
                "guest {}: script exited with {}",
                self.name(),
                result.rc
            ));
        }
        result.output
    }

    /// Waits for `marker` like [`Guest::expect`], then checks that the busybox ping runs
    /// in the text up to it ended as `expected`, `(transmitted, received)` per run in
    /// order; fails with the console log if not. Returns the text.
    pub fn expect_pings(
        &mut self,
        marker: &str,
        timeout: Duration,
        expected: &[(u32, u32)],
    ) -> String {
        let text = self.expect(marker, timeout);
        let got: Vec<(u32, u32)> = crate::net::summaries(&text)
            .iter()
            .map(|s| (s.transmitted, s.received))
            .collect();
        if got != expected {
            self.fail(&format!(
                "guest {}: ping runs before {marker} ended as (transmitted, received) {got:?}, expected {expected:?}",
                self.name()
            ));
        }
        text
    }

    /// Forgets console text seen so far, so the next `expect` only sees newer text.
    pub fn mark(&mut self) {
        self.cursor = self.process.stdout.len();
    }

    /// Console text after what `expect` consumed or `mark` skipped, without consuming it.
    pub fn unread(&self) -> String {
        self.process.stdout.text()[self.cursor..].to_string()
    }

    /// The whole console log so far.
    pub fn console(&self) -> String {
        self.process.stdout.text()
    }

    /// Waits for QEMU to exit (the script ends with `poweroff -f`).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.process.wait_exit(timeout) {
            Some(status) => status,
            None => self.fail(&format!(
                "guest {}: QEMU still running after {timeout:?}",
                self.name()
            )),
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.process.status().is_none()
    }

    /// Kills QEMU at once, as a crash would.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Panics with `message` and the console log.
    pub fn fail(&mut self, message: &str) -> ! {
        self.process.fail(message)
    }
}
