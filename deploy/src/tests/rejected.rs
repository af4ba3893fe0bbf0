//! Each kind of mistake, with the exact place it must be reported.

use super::{parse, reject};
use crate::{Diagnostic, Diagnostics};

/// A valid ports section, for tests about other sections.
const PORT: &str = "ports:\n  - {name: vm0, type: vhost-user, socket: s}\n";

/// The diagnostics as (field, line, column), sorted the way `parse` returns them.
fn places(diags: &[Diagnostic]) -> Vec<(&str, usize, usize)> {
    diags
        .iter()
        .map(|d| (d.field.as_str(), d.line, d.column))
        .collect()
}

/// Asserts the exact set of places reported and that each message mentions its needle.
fn expect(text: &str, wanted: &[(&str, usize, usize, &str)]) -> Vec<Diagnostic> {
    let diags = reject(text);
    let got = places(&diags);
    let want: Vec<(&str, usize, usize)> = wanted.iter().map(|(f, l, c, _)| (*f, *l, *c)).collect();
    assert_eq!(got, want, "\n{}", Diagnostics(diags.clone()));
    for (d, (_, _, _, needle)) in diags.iter().zip(wanted) {
        assert!(
            d.message.contains(needle),
            "message for {} should mention {needle:?}: {}",
            d.field,
            d.message
        );
        assert_eq!(d.file, "m.yaml");
    }
    diags
}

#[test]
fn yaml_syntax_error_is_reported_where_the_parser_stopped() {
    expect(
        "workers:\n  count: 1\n   poll: busy\nports: []\n",
        // The scanner has taken `1\n   poll` as one plain scalar and fails looking for
        // the next key of `workers`.
        &[("workers", 3, 8, "YAML syntax error")],
    );
}

#[test]
fn unknown_key_is_reported_at_the_key_with_a_suggestion() {
    expect(
        "ports:\n  - name: vm0\n    type: vhost-user\n    socket: /s0\n    queue_pair: 2\n",
        &[("ports[0].queue_pair", 5, 5, "did you mean `queue_pairs`?")],
    );
}

#[test]
fn unknown_top_level_key_and_missing_ports_are_both_reported() {
    expect(
        "port:\n  - name: vm0\n",
        &[
            ("port", 1, 1, "unknown key `port`"),
            ("ports", 1, 1, "missing required field `ports`"),
        ],
    );
}

#[test]
fn wrong_types_are_reported_at_the_value() {
    expect(
        "\
workers:
  count: two
  poll: 1
ports:
  - name: vm0
    type: vhost-user
    socket: /s
    queue_pairs: \"2\"
    mac: 5
",
        &[
            (
                "workers.count",
                2,
                10,
                "expected an integer, found a string `two`",
            ),
            ("workers.poll", 3, 9, "expected a string, found an integer"),
            ("ports[0].queue_pairs", 8, 18, "quoted string \"2\""),
            ("ports[0].mac", 9, 10, "expected a string"),
        ],
    );
    expect(
        "ports: {name: vm0}\n",
        &[("ports", 1, 8, "expected a sequence, found a mapping")],
    );
}

#[test]
fn missing_fields_are_reported_at_the_enclosing_mapping() {
    expect(
        "ports:\n  - name: vm0\n    type: vhost-user\n",
        &[("ports[0].socket", 2, 5, "missing required field `socket`")],
    );
    expect(
        "ports:\n  - type: vhost-user\n    socket: /s\n",
        &[("ports[0].name", 2, 5, "missing required field `name`")],
    );
    expect(
        "ports:\n  - name: vm0\n    socket: /s\n",
        &[("ports[0].type", 2, 5, "missing required field `type`")],
    );
    expect(
        "workers:\n  count: 1\n",
        &[("ports", 1, 1, "missing required field `ports`")],
    );
    // A flow mapping starts at its brace.
    expect(
        "ports: [{name: vm0, type: vhost-user}]\n",
        &[("ports[0].socket", 1, 9, "missing")],
    );
}

#[test]
fn missing_type_still_checks_the_rest_of_the_port() {
    expect(
        "ports:\n  - name: vm0\n    socket: /s\n    queue_pair: 2\n",
        &[
            ("ports[0].type", 2, 5, "missing"),
            ("ports[0].queue_pair", 4, 5, "unknown key"),
        ],
    );
}

#[test]
fn unknown_port_type_is_reported_without_guessing_its_keys() {
    expect(
        "ports:\n  - name: vm0\n    type: vfio\n    pci: 0000:01:00.0\n",
        &[("ports[0].type", 3, 11, "unknown port type `vfio`")],
    );
}

#[test]
fn out_of_range_values_name_the_range() {
    expect(
        "\
workers:
  count: 65
  cpus: [1024]
ports:
  - name: vm0
    type: vhost-user
    socket: /s
    queue_pairs: 0
  - name: vm1
    type: vhost-user
    socket: /t
    queue_pairs: 17
",
        &[
            (
                "workers.count",
                2,
                10,
                "65 is out of range; expected 1 to 64",
            ),
            (
                "workers.cpus[0]",
                3,
                10,
                "1024 is out of range; expected 0 to 1023",
            ),
            ("ports[0].queue_pairs", 8, 18, "expected 1 to 16"),
            ("ports[1].queue_pairs", 12, 18, "expected 1 to 16"),
        ],
    );
    expect(
        &format!("workers:\n  count: -1\n{PORT}"),
        &[("workers.count", 2, 10, "out of range")],
    );
    expect(
        &format!("workers:\n  count: 99999999999999999999999\n{PORT}"),
        &[("workers.count", 2, 10, "out of range")],
    );
}

#[test]
fn bad_port_names_are_rejected() {
    expect(
        "\
ports:
  - {name: 1vm, type: vhost-user, socket: a}
  - {name: abcdefghijklmnop, type: vhost-user, socket: b}
  - {name: \"vm 0\", type: vhost-user, socket: c}
  - {name: \"\", type: vhost-user, socket: d}
  - {name: 12, type: vhost-user, socket: e}
  - {name: abcdefghijklmno, type: vhost-user, socket: f}
",
        &[
            ("ports[0].name", 2, 12, "must start with a letter"),
            ("ports[1].name", 3, 12, "at most 15"),
            ("ports[2].name", 4, 12, "contains ` `"),
            ("ports[3].name", 5, 12, "empty"),
            (
                "ports[4].name",
                6,
                12,
                "expected a string, found an integer",
            ),
        ],
    );
}

#[test]
fn duplicate_port_name_is_reported_at_the_second() {
    expect(
        "ports:\n  - {name: vm0, type: vhost-user, socket: a}\n  - {name: vm0, type: vhost-user, socket: b}\n",
        &[("ports[1].name", 3, 12, "already used by ports[0] (line 2)")],
    );
}

#[test]
fn duplicate_socket_is_detected_after_expansion() {
    expect(
        "ports:\n  - {name: a, type: vhost-user, socket: \"${TMP}/a.sock\"}\n  - {name: b, type: vhost-user, socket: /tmp/a.sock}\n",
        &[("ports[1].socket", 3, 41, "`/tmp/a.sock` is already used by ports[0]")],
    );
}

#[test]
fn environment_problems_name_the_variable() {
    expect(
        "\
ports:
  - name: a
    type: vhost-user
    socket: ${NOPE}/${ALSO_NOPE}/x
  - name: b
    type: vhost-user
    socket: \"${SOCKDIR\"
  - name: c
    type: vhost-user
    socket: $HOME/x
",
        &[
            ("ports[0].socket", 4, 13, "`NOPE` is not set"),
            ("ports[0].socket", 4, 13, "`ALSO_NOPE` is not set"),
            ("ports[1].socket", 7, 13, "unterminated"),
            ("ports[2].socket", 10, 13, "must be followed by"),
        ],
    );
}

#[test]
fn bad_macs_are_rejected() {
    expect(
        "\
ports:
  - {name: a, type: vhost-user, socket: a, mac: \"52:54:00:00:00\"}
  - {name: b, type: vhost-user, socket: b, mac: \"01:00:5e:00:00:01\"}
  - {name: c, type: vhost-user, socket: c, mac: 52:54:00:00:00:0c}
",
        &[
            ("ports[0].mac", 2, 49, "not a MAC address"),
            ("ports[1].mac", 3, 49, "multicast"),
        ],
    );
}

#[test]
fn cpus_must_match_count() {
    expect(
        &format!("workers:\n  count: 2\n  cpus: [0, 1, 2]\n{PORT}"),
        &[("workers.cpus", 3, 9, "lists 3 CPUs but workers.count is 2")],
    );
    expect(
        &format!("workers:\n  cpus: [4, 5]\n{PORT}"),
        &[("workers.cpus", 2, 9, "workers.count is 1 (the default)")],
    );
}

#[test]
fn duplicate_cpu_is_reported_at_the_repeat() {
    expect(
        &format!("workers:\n  count: 3\n  cpus: [7, 8, 7]\n{PORT}"),
        &[(
            "workers.cpus[2]",
            3,
            16,
            "CPU 7 is listed twice (also workers.cpus[0])",
        )],
    );
}

const THREE_PORTS: &str = "\
ports:
  - {name: a, type: vhost-user, socket: a}
  - {name: b, type: vhost-user, socket: b}
  - {name: c, type: vhost-user, socket: c}
cross_connects:
";

#[test]
fn cross_connect_entries_must_be_pairs() {
    expect(
        &format!("{THREE_PORTS}  - [a]\n  - [a, b, c]\n  - a\n  - {{a: b}}\n"),
        &[
            ("cross_connects[0]", 6, 5, "found a list of one"),
            ("cross_connects[1]", 7, 5, "found a list of 3"),
            ("cross_connects[2]", 8, 5, "found a string"),
            ("cross_connects[3]", 9, 5, "found a mapping"),
        ],
    );
    expect(
        "ports:\n  - {name: a, type: vhost-user, socket: a}\ncross_connects: [a, a]\n",
        &[
            ("cross_connects[0]", 3, 18, "found a string"),
            ("cross_connects[1]", 3, 21, "found a string"),
        ],
    );
}

#[test]
fn cross_connect_names_must_be_known_ports() {
    expect(
        &format!("{THREE_PORTS}  - [a, zz]\n  - [b, 7]\n"),
        &[
            ("cross_connects[0][1]", 6, 9, "unknown port `zz`"),
            (
                "cross_connects[1][1]",
                7,
                9,
                "expected a string, found an integer",
            ),
        ],
    );
}

#[test]
fn port_connected_to_itself_is_rejected() {
    expect(
        &format!("{THREE_PORTS}  - [c, c]\n"),
        &[("cross_connects[0][1]", 6, 9, "`c` is connected to itself")],
    );
}

#[test]
fn port_in_two_cross_connects_is_rejected() {
    expect(
        &format!("{THREE_PORTS}  - [a, b]\n  - [c, a]\n"),
        &[(
            "cross_connects[1][1]",
            7,
            9,
            "`a` is already cross-connected by cross_connects[0]",
        )],
    );
}

#[test]
fn duplicate_keys_are_reported_at_the_repeated_key() {
    expect(
        "\
workers:
  count: 1
  count: 2
ports:
  - name: vm0
    type: vhost-user
    socket: /s
    name: vm1
ports: []
",
        &[
            (
                "workers.count",
                3,
                3,
                "duplicate key `count`; it is first given at line 2",
            ),
            ("ports[0].name", 8, 5, "duplicate key `name`"),
            ("ports", 9, 1, "duplicate key `ports`"),
        ],
    );
}

#[test]
fn anchors_aliases_and_tags_are_not_supported() {
    expect(
        "\
ports:
  - name: &n vm0
    type: !!str vhost-user
    socket: /s
  - name: *n
    type: vhost-user
    socket: /t
",
        &[
            ("ports[0].name", 2, 14, "anchors"),
            ("ports[0].type", 3, 17, "tags"),
            ("ports[1].name", 5, 11, "aliases"),
        ],
    );
}

#[test]
fn empty_value_is_reported_at_its_key() {
    expect(
        "ports:\n  - name: vm0\n    type: vhost-user\n    socket:\n    queue_pairs:\n",
        &[
            (
                "ports[0].socket",
                4,
                5,
                "expected a string, but no value is given",
            ),
            (
                "ports[0].queue_pairs",
                5,
                5,
                "expected an integer, but no value is given",
            ),
        ],
    );
}

#[test]
fn whole_document_problems() {
    expect("", &[("", 1, 1, "the manifest is empty")]);
    expect(
        "# nothing but a comment\n",
        &[("", 1, 1, "the manifest is empty")],
    );
    expect(
        "- a\n- b\n",
        &[("", 1, 1, "expected a mapping, found a sequence")],
    );
    expect(
        &format!("{PORT}---\n{PORT}"),
        &[("", 3, 1, "single YAML document")],
    );
    expect("ports: []\n", &[("ports", 1, 8, "at least one port")]);
}

#[test]
fn every_problem_in_a_file_is_reported_in_one_pass() {
    let diags = expect(
        "\
workers:
  count: 3
  cpus: [1, 1]
  poll: bussy
ports:
  - name: vm0
    type: vhost-user
    socket: ${SOCKDIR}/a.sock
    queue_pair: 2
  - name: vm0
    type: vhost-user
    socket: ${NOPE}/b.sock
    queue_pairs: \"2\"
    mac: \"01:00:00:00:00:01\"
  - name: 9bad
    type: vhost-user
    socket: /run/vnf/a.sock
    mode: server
    mode: client
cross_connects:
  - [vm0, vm0]
  - [vm1, vm9]
",
        &[
            ("workers.cpus", 3, 9, "lists 2 CPUs"),
            ("workers.cpus[1]", 3, 13, "listed twice"),
            ("workers.poll", 4, 9, "did you mean `busy`?"),
            ("ports[0].queue_pair", 9, 5, "unknown key"),
            ("ports[1].name", 10, 11, "already used"),
            ("ports[1].socket", 12, 13, "`NOPE`"),
            ("ports[1].queue_pairs", 13, 18, "quoted"),
            ("ports[1].mac", 14, 10, "multicast"),
            ("ports[2].name", 15, 11, "start with a letter"),
            (
                "ports[2].socket",
                17,
                13,
                "already used by ports[0] (line 8)",
            ),
            ("ports[2].mode", 19, 5, "duplicate key"),
            ("cross_connects[0][1]", 21, 11, "connected to itself"),
            ("cross_connects[1][0]", 22, 6, "unknown port `vm1`"),
            ("cross_connects[1][1]", 22, 11, "unknown port `vm9`"),
        ],
    );
    let positions: Vec<(usize, usize)> = diags.iter().map(|d| (d.line, d.column)).collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted, "reported in file order");
}

#[test]
fn diagnostics_display_one_per_line() {
    let d = Diagnostics(vec![
        Diagnostic {
            file: "m.yaml".into(),
            line: 3,
            column: 7,
            field: "ports[0].mode".into(),
            message: "bad".into(),
        },
        Diagnostic {
            file: "gone.yaml".into(),
            line: 0,
            column: 0,
            field: String::new(),
            message: "cannot read".into(),
        },
    ]);
    assert_eq!(d.0[0].to_string(), "m.yaml:3:7: ports[0].mode: bad");
    assert_eq!(
        d.to_string(),
        "m.yaml:3:7: ports[0].mode: bad\ngone.yaml:0:0: cannot read"
    );
    let as_error: Box<dyn std::error::Error> = Box::new(d);
    assert!(as_error.to_string().starts_with("m.yaml:3:7"));
}

#[test]
fn parse_reports_the_file_name_it_was_given() {
    let d = crate::Manifest::parse("/etc/vnf/x.yaml", "ports: []\n", &|_| None).unwrap_err();
    assert_eq!(
        d.0[0].to_string(),
        "/etc/vnf/x.yaml:1:8: ports: at least one port is required"
    );
    assert!(parse(PORT).is_ok());
}
