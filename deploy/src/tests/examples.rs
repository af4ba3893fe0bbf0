use std::path::Path;

use super::env;
use crate::{Manifest, PollMode};

#[test]
fn every_shipped_example_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/examples exists") {
        let path = entry.expect("readable directory entry").path();
        let text = std::fs::read_to_string(&path).expect("readable example");
        let file = path.display().to_string();
        if let Err(d) = Manifest::parse(&file, &text, &env) {
            panic!("{file} is invalid:\n{d}");
        }
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected the shipped examples, found {checked} files"
    );
}

#[test]
fn bench_example_busy_polls_and_leaves_cpu_placement_to_the_harness() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/xconnect-bench.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let m = Manifest::parse("xconnect-bench.yaml", &text, &env).unwrap();
    assert_eq!(m.workers.poll, PollMode::Busy);
    assert_eq!(m.workers.cpus, None);
    assert_eq!(m.ports.len(), 2);
    assert_eq!(m.cross_connects.len(), 1);
}
