//! The typed manifest and the entry points that produce it.

use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::default::{DEFAULT_MANIFEST, DEFAULT_MANIFEST_NAME};
use crate::diagnostic::{Diagnostic, Diagnostics, Pos, Report};
use crate::{expand, mac, tree, validate};

/// A validated manifest: every default filled in and every `${VAR}` expanded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub workers: Workers,
    pub ports: Vec<PortSpec>,
    pub cross_connects: Vec<CrossConnect>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workers {
    pub count: usize,
    /// One CPU per worker, in worker order; `None` leaves placement to the scheduler
    /// (the process's inherited affinity mask).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<usize>>,
    pub poll: PollMode,
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            count: 1,
            cpus: None,
            poll: PollMode::Adaptive,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PollMode {
    /// Spin while traffic flows, sleep on the queues' kick eventfds when idle.
    Adaptive,
    /// Spin always: lowest latency, one core fully used per worker.
    Busy,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    pub name: String,
    /// Flattened so the written manifest has `type:` beside `name:`, as users write it.
    #[serde(flatten)]
    pub kind: PortKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum PortKind {
    #[serde(rename = "vhost-user")]
    VhostUser(VhostUserSpec),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VhostUserSpec {
    #[serde(serialize_with = "serialize_socket")]
    pub socket: PathBuf,
    pub mode: SocketMode,
    pub queue_pairs: u16,
    #[serde(serialize_with = "serialize_mac")]
    pub mac: [u8; 6],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketMode {
    /// vnf creates and listens on the socket; the VMM connects.
    Server,
    /// vnf connects to a socket the VMM listens on, and reconnects when it goes away.
    Client,
}

/// Two ports, by name, that forward every frame to each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "[String; 2]")]
pub struct CrossConnect {
    pub a: String,
    pub b: String,
}

/// Written as `[a, b]`, the form the manifest accepts.
impl From<CrossConnect> for [String; 2] {
    fn from(cc: CrossConnect) -> Self {
        [cc.a, cc.b]
    }
}

fn serialize_socket<S: Serializer>(socket: &Path, s: S) -> Result<S::Ok, S::Error> {
    // Escaped so that feeding `to_yaml` output back in yields this same path rather
    // than expanding a `$` a second time.
    s.serialize_str(&expand::escape(&socket.to_string_lossy()))
}

fn serialize_mac<S: Serializer>(address: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&mac::format(address))
}

impl Manifest {
    /// Parses and validates `text`; `file` names the source in diagnostics; `env` looks up variables.
    ///
    /// On failure every problem found is returned, sorted by position. A YAML syntax
    /// error is the exception: the text after it cannot be read, so it ends the pass.
    pub fn parse(
        file: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Manifest, Diagnostics> {
        let mut report = Report::new(file);
        let manifest = tree::build(text, &mut report)
            .and_then(|root| validate::manifest(&root, env, &mut report));
        match manifest {
            Some(manifest) if report.is_clean() => Ok(manifest),
            _ => {
                if report.is_clean() {
                    // Every check that fails reports why; reaching here is our bug, and
                    // the user still deserves a diagnostic rather than a panic.
                    report.error(
                        Pos { line: 1, column: 1 },
                        "",
                        "internal error: manifest rejected without a reason",
                    );
                }
                Err(report.finish())
            }
        }
    }

    /// Reads the file and parses it with the process environment. An unreadable file is one Diagnostic at line 0 col 0.
    pub fn load(path: &Path) -> Result<Manifest, Diagnostics> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostics(vec![Diagnostic {
                file: file.clone(),
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("cannot read manifest: {e}"),
            }])
        })?;
        Manifest::parse(&file, &text, &|name| std::env::var(name).ok())
    }

    /// The manifest `vnf run` uses when given no file; see [`DEFAULT_MANIFEST`].
    pub fn default_manifest() -> Manifest {
        // The embedded text takes no variables, so the environment cannot break it; a
        // unit test parses it, so a failure here means the crate shipped broken.
        Manifest::parse(DEFAULT_MANIFEST_NAME, DEFAULT_MANIFEST, &|_| None)
            .unwrap_or_else(|d| panic!("embedded default manifest is invalid:\n{d}"))
    }

    /// The normalized manifest as YAML: defaults written out, variables expanded. It
    /// parses back to an equal `Manifest`.
    pub fn to_yaml(&self) -> String {
        // Every field is a string, integer, enum or list of those, and the socket path is
        // written lossily, so serde_yaml has nothing here it could reject.
        serde_yaml::to_string(self).expect("a Manifest always serializes to YAML")
    }

    pub fn port(&self, name: &str) -> Option<&PortSpec> {
        self.ports.iter().find(|p| p.name == name)
    }
}
