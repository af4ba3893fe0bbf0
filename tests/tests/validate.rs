//! `vnf validate` reports every mistake in a manifest with its position, and accepts a
//! valid one.

use regex::Regex;
use vnf_tests::Vnf;

/// Two mistakes: an unknown port mode and a queue count that is not a number.
const BROKEN: &str = "\
workers: { count: 1, poll: adaptive }
ports:
  - name: vm0
    type: vhost-user
    socket: /tmp/vnf-validate/vm0.sock
    queue_pairs: 1
    mode: sever
  - name: vm1
    type: vhost-user
    socket: /tmp/vnf-validate/vm1.sock
    mode: server
    queue_pairs: many
cross_connects:
  - [vm0, vm1]
";

const VALID: &str = "\
workers: { count: 1, poll: adaptive }
ports:
  - { name: vm0, type: vhost-user, socket: /tmp/vnf-validate/vm0.sock, mode: server, queue_pairs: 1 }
  - { name: vm1, type: vhost-user, socket: /tmp/vnf-validate/vm1.sock, mode: client, queue_pairs: 1 }
cross_connects:
  - [vm0, vm1]
";

#[test]
fn validate_reports_every_mistake_with_its_position() {
    let result = Vnf::validate(BROKEN);
    let output = result.output();
    assert_eq!(result.status.code(), Some(1), "{output}");
    let file = result.file.display().to_string();
    let line = Regex::new(&format!(
        r"(?m)^{}:(\d+):(\d+): (\S+): (.+)$",
        regex::escape(&file)
    ))
    .unwrap();
    let errors: Vec<(u32, u32, String)> = line
        .captures_iter(&output)
        .map(|c| {
            (
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
                c[3].to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors.len(),
        2,
        "expected exactly two FILE:LINE:COL: FIELD: MESSAGE lines:\n{output}"
    );

    // Either the value's or the key's position is a fair place to point at.
    for (key, value, field) in [
        ("mode: ", "sever", "mode"),
        ("queue_pairs: ", "many", "queue_pairs"),
    ] {
        let (line, value_col) = position(BROKEN, &format!("{key}{value}"), key.len());
        let key_col = value_col - key.len() as u32;
        assert!(
            errors.iter().any(|(l, c, f)| *l == line
                && [key_col, value_col].contains(c)
                && f.contains(field)),
            "no error for {field} at {line}:{key_col} or {line}:{value_col}:\n{output}"
        );
    }
}

/// 1-based line and column of `needle` in `text`, plus `offset` columns.
fn position(text: &str, needle: &str, offset: usize) -> (u32, u32) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| {
            l.find(needle)
                .map(|c| (i as u32 + 1, (c + offset) as u32 + 1))
        })
        .expect("needle in text")
}

#[test]
fn validate_accepts_a_valid_manifest() {
    let result = Vnf::validate(VALID);
    let output = result.output();
    assert_eq!(result.status.code(), Some(0), "{output}");
    assert_eq!(
        result.stdout.trim(),
        format!("{}: ok", result.file.display()),
        "{output}"
    );
}

/// Every YAML example in the README is a manifest `vnf validate` accepts, so that a
/// reader who copies one starts from something that runs.
#[test]
fn readme_manifest_examples_validate() {
    let readme = std::fs::read_to_string(vnf_tests::paths::workspace().join("README.md"))
        .expect("read README.md");
    let blocks: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .collect();
    assert!(!blocks.is_empty(), "the README has no ```yaml example");
    for block in blocks {
        let manifest = block.replace("${SOCKDIR}", "/tmp/vnf-readme-example");
        let result = Vnf::validate(&manifest);
        assert_eq!(
            result.status.code(),
            Some(0),
            "README example rejected:\n{}\n{manifest}",
            result.output()
        );
    }
}
