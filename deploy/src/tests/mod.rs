//! Behaviour of `Manifest::parse` as a user sees it: what is accepted, what it becomes,
//! and exactly where each problem is reported.

mod accepted;
mod examples;
mod rejected;
mod router_accepted;
mod router_rejected;

use crate::{Diagnostic, Diagnostics, Manifest};

pub(crate) fn env(name: &str) -> Option<String> {
    match name {
        "SOCKDIR" => Some("/run/vnf".to_owned()),
        "TMP" => Some("/tmp".to_owned()),
        _ => None,
    }
}

pub(crate) fn parse(text: &str) -> Result<Manifest, Diagnostics> {
    Manifest::parse("m.yaml", text, &env)
}

pub(crate) fn accept(text: &str) -> Manifest {
    parse(text).unwrap_or_else(|d| panic!("expected the manifest to be accepted:\n{d}"))
}

pub(crate) fn reject(text: &str) -> Vec<Diagnostic> {
    match parse(text) {
        Ok(m) => panic!("expected the manifest to be rejected, got {m:?}"),
        Err(d) => d.0,
    }
}
