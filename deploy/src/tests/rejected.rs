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
pub(super) fn expect(text: &str, wanted: &[(&str, usize, usize, &str)]) -> Vec<Diagnostic> {
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

#[test]
fn mtu_must_be_in_range() {
    expect(
        "\
ports:
  - {name: a, type: vhost-user, socket: a, mtu: 67}
  - {name: b, type: vhost-user, socket: b, mtu: 9217}
  - {name: c, type: vhost-user, socket: c, mtu: \"9000\"}
",
        &[
            (
                "ports[0].mtu",
                2,
                49,
                "67 is out of range; expected 68 to 9216",
            ),
            ("ports[1].mtu", 3, 49, "expected 68 to 9216"),
            ("ports[2].mtu", 4, 49, "quoted string \"9000\""),
        ],
    );
}

/// Ports vm0 to vm3 and the start of a bridges section, whose first entry is on line 7.
const BRIDGED: &str = "\
ports:
  - {name: vm0, type: vhost-user, socket: a}
  - {name: vm1, type: vhost-user, socket: b}
  - {name: vm2, type: vhost-user, socket: c}
  - {name: vm3, type: vhost-user, socket: d}
bridges:
";

#[test]
fn bridges_must_be_a_list_of_mappings() {
    expect(
        &format!("{PORT}bridges: {{name: br0}}\n"),
        &[("bridges", 3, 10, "expected a sequence, found a mapping")],
    );
    expect(
        &format!("{PORT}bridges: [br0]\n"),
        &[("bridges[0]", 3, 11, "expected a mapping, found a string")],
    );
}

#[test]
fn bridge_keys_are_checked() {
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    mac_limt: 10
    members: [vm0]
  - {{mac_limit: 5}}
"
        ),
        &[
            ("bridges[0].mac_limt", 8, 5, "did you mean `mac_limit`?"),
            ("bridges[1].name", 10, 5, "missing required field `name`"),
            (
                "bridges[1].members",
                10,
                5,
                "missing required field `members`",
            ),
        ],
    );
}

#[test]
fn bad_bridge_names_are_rejected() {
    expect(
        &format!(
            "{BRIDGED}  - {{name: 1br, members: [vm0]}}
  - {{name: bridge-number-one, members: [vm1]}}
  - {{name: \"br 0\", members: [vm2]}}
  - {{name: vm3, members: [vm3]}}
  - {{name: 1br, members: [vm3.5]}}
"
        ),
        &[
            ("bridges[0].name", 7, 12, "bridge name `1br` must start"),
            ("bridges[1].name", 8, 12, "at most 15"),
            ("bridges[2].name", 9, 12, "contains ` `"),
            (
                "bridges[3].name",
                10,
                12,
                "`vm3` is already used by ports[3] (line 5)",
            ),
            (
                "bridges[4].name",
                11,
                12,
                "`1br` is already used by bridges[0] (line 7)",
            ),
        ],
    );
}

#[test]
fn bridge_limits_name_their_range() {
    expect(
        &format!(
            "{BRIDGED}  - {{name: a, mac_aging: 1000001, mac_limit: 0, members: [vm0]}}
  - {{name: b, mac_aging: -1, mac_limit: 16777217, members: [vm1]}}
"
        ),
        &[
            (
                "bridges[0].mac_aging",
                7,
                26,
                "1000001 is out of range; expected 0 to 1000000",
            ),
            (
                "bridges[0].mac_limit",
                7,
                46,
                "0 is out of range; expected 1 to 16777216",
            ),
            ("bridges[1].mac_aging", 8, 26, "expected 0 to 1000000"),
            ("bridges[1].mac_limit", 8, 41, "expected 1 to 16777216"),
        ],
    );
}

#[test]
fn bridge_needs_members() {
    expect(
        &format!("{BRIDGED}  - name: a\n    members: []\n  - name: b\n    members:\n"),
        &[
            (
                "bridges[0].members",
                8,
                14,
                "a bridge needs at least one member",
            ),
            (
                "bridges[1].members",
                10,
                5,
                "expected a sequence, but no value",
            ),
        ],
    );
}

#[test]
fn members_are_names_or_mappings_with_known_keys() {
    let diags = expect(
        &format!(
            "{BRIDGED}  - name: br0
    members:
      - 5
      - [vm0]
      - {{access: 10}}
      - {{interface: vm1, acces: 10}}
"
        ),
        &[
            ("bridges[0].members[0]", 9, 9, "found an integer `5`"),
            ("bridges[0].members[1]", 10, 9, "found a sequence"),
            (
                "bridges[0].members[2].interface",
                11,
                9,
                "missing required field",
            ),
            (
                "bridges[0].members[3].acces",
                12,
                26,
                "did you mean `access`?",
            ),
        ],
    );
    assert!(
        diags[0].message.starts_with(
            "expected an interface name like `vm0` or a mapping like `{interface: vm0, access: 10}`"
        ),
        "{}",
        diags[0].message
    );
}

#[test]
fn member_interfaces_must_be_declared_ports() {
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    members:
      - vm9
      - vm9.100
      - {{interface: zz}}
      - {{interface: 7}}
"
        ),
        &[
            (
                "bridges[0].members[0]",
                9,
                9,
                "unknown port `vm9`; did you mean `vm0`?",
            ),
            (
                "bridges[0].members[1]",
                10,
                9,
                "unknown port `vm9` in interface `vm9.100`; did you mean `vm0.100`?",
            ),
            (
                "bridges[0].members[2].interface",
                11,
                21,
                "unknown port `zz`",
            ),
            (
                "bridges[0].members[3].interface",
                12,
                21,
                "expected a string",
            ),
        ],
    );
}

#[test]
fn subinterface_tags_are_one_or_two_vlan_ids() {
    expect(
        &format!(
            "{BRIDGED}  - name: br0\n    members: [vm0.0, vm0.4095, vm0.1.2.3, vm0.x, vm0.]\n"
        ),
        &[
            (
                "bridges[0].members[0]",
                8,
                15,
                "VLAN 0 in interface `vm0.0` is out of range",
            ),
            (
                "bridges[0].members[1]",
                8,
                22,
                "VLAN 4095 in interface `vm0.4095`",
            ),
            (
                "bridges[0].members[2]",
                8,
                32,
                "`vm0.1.2.3` has 3 VLAN tags; at most 2",
            ),
            (
                "bridges[0].members[3]",
                8,
                43,
                "`x` is not a VLAN ID of port `vm0`",
            ),
            ("bridges[0].members[4]", 8, 50, "empty VLAN tag"),
        ],
    );
}

#[test]
fn access_and_trunk_are_exclusive() {
    // Reported at whichever of the two comes second.
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    members:
      - {{interface: vm0, access: 10, trunk: [10]}}
      - {{interface: vm1, trunk: [10], access: 10}}
"
        ),
        &[
            ("bridges[0].members[0].trunk", 9, 45, "cannot both be given"),
            (
                "bridges[0].members[1].access",
                10,
                47,
                "cannot both be given",
            ),
        ],
    );
}

#[test]
fn native_and_tpid_need_a_trunk() {
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    members:
      - {{interface: vm0, native: 5}}
      - {{interface: vm1, access: 3, tpid: 802.1ad}}
"
        ),
        &[
            (
                "bridges[0].members[0].native",
                9,
                34,
                "`native` applies only to trunk",
            ),
            (
                "bridges[0].members[1].tpid",
                10,
                43,
                "`tpid` applies only to trunk",
            ),
        ],
    );
}

#[test]
fn member_vlans_and_tag_types_are_checked() {
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    members:
      - {{interface: vm0, access: 0}}
      - {{interface: vm1, access: 4095}}
      - {{interface: vm2, trunk: [5], native: 5000, tpid: 802.1Q}}
      - {{interface: vm3, trunk: [5], tpid: 0x88a8}}
"
        ),
        &[
            (
                "bridges[0].members[0].access",
                9,
                34,
                "0 is out of range; expected 1 to 4094",
            ),
            (
                "bridges[0].members[1].access",
                10,
                34,
                "4095 is out of range",
            ),
            (
                "bridges[0].members[2].native",
                11,
                46,
                "5000 is out of range",
            ),
            (
                "bridges[0].members[2].tpid",
                11,
                58,
                "`802.1Q`; did you mean `802.1q`?",
            ),
            (
                "bridges[0].members[3].tpid",
                12,
                44,
                "expected `802.1q` or `802.1ad`",
            ),
        ],
    );
}

#[test]
fn trunk_lists_hold_vlan_ids_and_ranges() {
    let trunk = |i: usize| format!("bridges[0].members[2].trunk[{i}]");
    let paths: Vec<String> = (0..6).map(trunk).collect();
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    members:
      - {{interface: vm0, trunk: []}}
      - {{interface: vm1, trunk: 10}}
      - interface: vm2
        trunk: [0, \"200-100\", \"1-5000\", a, \"10\", [1], 4094, 1-2]
"
        ),
        &[
            ("bridges[0].members[0].trunk", 9, 33, "at least one VLAN"),
            ("bridges[0].members[1].trunk", 10, 33, "expected a sequence"),
            (&paths[0], 12, 17, "0 is out of range; expected 1 to 4094"),
            (
                &paths[1],
                12,
                20,
                "`200-100` runs backwards; write it as \"100-200\"",
            ),
            (
                &paths[2],
                12,
                31,
                "VLAN 5000 in range `1-5000` is out of range",
            ),
            (&paths[3], 12, 41, "`a` is not a VLAN ID or range"),
            (&paths[4], 12, 44, "quoted string \"10\""),
            (
                &paths[5],
                12,
                50,
                "a range like \"100-200\", found a sequence",
            ),
        ],
    );
}

#[test]
fn interface_is_in_one_bridge_once() {
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    members:
      - vm0
      - vm0.5
      - {{interface: vm0, access: 2}}
  - name: br1
    members: [vm1, vm0.5, vm0.5.6]
"
        ),
        &[
            (
                "bridges[0].members[2].interface",
                11,
                21,
                "interface `vm0` is already a member of bridges[0] (line 9)",
            ),
            (
                "bridges[1].members[1]",
                13,
                20,
                "interface `vm0.5` is already a member of bridges[0] (line 10)",
            ),
        ],
    );
}

#[test]
fn cross_connected_port_cannot_be_bridged() {
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    members: [vm0, vm2, vm1.100]
cross_connects:
  - [vm0, vm1]
"
        ),
        &[
            (
                "bridges[0].members[0]",
                8,
                15,
                "port `vm0` is cross-connected by cross_connects[0] (line 10)",
            ),
            (
                "bridges[0].members[2]",
                8,
                25,
                "port `vm1` is cross-connected by cross_connects[0] (line 10)",
            ),
        ],
    );
}

/// A bridge with an access member in VLAN 10, a trunk with a native VLAN, a trunk
/// without one and a subinterface; its static_macs entries start on line 14.
const WITH_MEMBERS: &str = "  - name: br0
    members:
      - {interface: vm0, access: 10}
      - {interface: vm1, trunk: [10, 20, \"100-200\"], native: 1}
      - {interface: vm2, trunk: [30]}
      - vm3.7
    static_macs:
";

#[test]
fn static_mac_addresses_must_be_unicast() {
    expect(
        &format!(
            "{BRIDGED}{WITH_MEMBERS}      - {{mac: \"02:00:00:00:01\", interface: vm0}}
      - {{mac: \"01:00:5e:00:00:01\", interface: vm0}}
      - {{mac: \"ff:ff:ff:ff:ff:ff\", interface: vm0}}
      - {{mac: \"00:00:00:00:00:00\", interface: vm0}}
      - {{interface: vm0, vlna: 10}}
"
        ),
        &[
            ("bridges[0].static_macs[0].mac", 14, 15, "not a MAC address"),
            (
                "bridges[0].static_macs[1].mac",
                15,
                15,
                "a static entry must be unicast",
            ),
            (
                "bridges[0].static_macs[2].mac",
                16,
                15,
                "`ff:ff:ff:ff:ff:ff` is a multicast",
            ),
            ("bridges[0].static_macs[3].mac", 17, 15, "all-zero"),
            (
                "bridges[0].static_macs[4].mac",
                18,
                9,
                "missing required field `mac`",
            ),
            (
                "bridges[0].static_macs[4].vlna",
                18,
                26,
                "did you mean `vlan`?",
            ),
        ],
    );
}

#[test]
fn static_mac_interface_must_be_a_member_of_the_bridge() {
    let diags = expect(
        &format!(
            "{BRIDGED}{WITH_MEMBERS}      - {{mac: \"02:00:00:00:00:01\", interface: vm3}}
      - {{mac: \"02:00:00:00:00:01\", interface: vm3.8}}
      - {{mac: \"02:00:00:00:00:01\", interface: vm4}}
  - {{name: br1, members: [vm3]}}
"
        ),
        &[
            (
                "bridges[0].static_macs[0].interface",
                14,
                47,
                "`vm3` is not a member",
            ),
            (
                "bridges[0].static_macs[1].interface",
                15,
                47,
                "did you mean `vm3.7`?",
            ),
            (
                "bridges[0].static_macs[2].interface",
                16,
                47,
                "unknown port `vm4`",
            ),
        ],
    );
    assert_eq!(
        diags[0].message,
        "interface `vm3` is not a member of this bridge; a static entry must point at one of its members"
    );
}

#[test]
fn static_mac_vlan_must_be_carried_by_the_member() {
    let diags = expect(
        &format!(
            "{BRIDGED}{WITH_MEMBERS}      - {{mac: \"02:00:00:00:00:01\", interface: vm0, vlan: 20}}
      - {{mac: \"02:00:00:00:00:01\", interface: vm1, vlan: 30}}
      - {{mac: \"02:00:00:00:00:01\", interface: vm3.7, vlan: 7}}
      - {{mac: \"02:00:00:00:00:01\", interface: vm1, vlan: 0}}
"
        ),
        &[
            (
                "bridges[0].static_macs[0].vlan",
                14,
                58,
                "VLAN 20 is not carried by member `vm0`",
            ),
            (
                "bridges[0].static_macs[1].vlan",
                15,
                58,
                "VLAN 30 is not carried by member `vm1`",
            ),
            ("bridges[0].static_macs[2].vlan", 16, 60, "in VLAN 1"),
            (
                "bridges[0].static_macs[3].vlan",
                17,
                58,
                "expected 1 to 4094",
            ),
        ],
    );
    assert!(diags[0]
        .message
        .ends_with(": it is an access member in VLAN 10"));
    assert!(diags[1]
        .message
        .ends_with(": its trunk carries 10, 20, 100-200 and native VLAN 1"));
}

#[test]
fn static_mac_on_a_trunk_without_native_needs_a_vlan() {
    expect(
        &format!(
            "{BRIDGED}{WITH_MEMBERS}      - {{mac: \"02:00:00:00:00:01\", interface: vm2}}
      - {{mac: \"02:00:00:00:00:01\", interface: vm2, vlan: 30}}
"
        ),
        &[(
            "bridges[0].static_macs[0].vlan",
            14,
            9,
            "missing `vlan`: member `vm2` is a trunk without a native VLAN",
        )],
    );
}

#[test]
fn static_mac_is_given_once_per_vlan() {
    // The first two collide only once the first's VLAN defaults to vm0's access VLAN.
    expect(
        &format!(
            "{BRIDGED}{WITH_MEMBERS}      - {{mac: \"02:00:00:00:00:01\", interface: vm0}}
      - {{mac: \"02:00:00:00:00:01\", interface: vm1, vlan: 10}}
      - {{mac: \"02:00:00:00:00:01\", interface: vm1}}
      - {{mac: \"02:00:00:00:00:0A\", interface: vm2, vlan: 30}}
      - {{mac: \"02:00:00:00:00:0a\", interface: vm2, vlan: 30}}
"
        ),
        &[
            (
                "bridges[0].static_macs[1].mac",
                15,
                15,
                "`02:00:00:00:00:01` in VLAN 10 already has a static entry, bridges[0].static_macs[0] (line 14)",
            ),
            (
                "bridges[0].static_macs[4].mac",
                18,
                15,
                "`02:00:00:00:00:0a` in VLAN 30 already has a static entry, bridges[0].static_macs[3] (line 17)",
            ),
        ],
    );
}

#[test]
fn bridges_are_not_checked_against_unreadable_sections() {
    // With no port names to go by, every member would look unknown: only the cause is
    // reported.
    expect(
        "\
ports: 5
bridges:
  - name: br0
    members: [vm0, {interface: vm1.5, trunk: [1]}]
    static_macs: [{mac: \"02:00:00:00:00:01\", interface: vm0}]
",
        &[("ports", 1, 8, "expected a sequence")],
    );
    expect(
        &format!(
            "{BRIDGED}  - name: br0
    members: oops
    static_macs: [{{mac: \"02:00:00:00:00:01\", interface: vm0, vlan: 9}}]
"
        ),
        &[("bridges[0].members", 8, 14, "expected a sequence")],
    );
}

#[test]
fn every_bridge_problem_is_reported_in_one_pass() {
    expect(
        "\
ports:
  - {name: vm0, type: vhost-user, socket: a, mtu: 9999}
  - {name: vm1, type: vhost-user, socket: b}
  - {name: vm2, type: vhost-user, socket: c}
bridges:
  - name: vm1
    mac_limit: 0
    members:
      - vm0
      - {interface: vm1, access: 10, native: 3}
      - {interface: vm2, trunk: [\"20-10\"], tpid: 802.1x}
      - vm0
      - vm3.5
    static_macs:
      - {mac: \"03:00:00:00:00:01\", interface: vm1}
      - {mac: \"02:00:00:00:00:01\", interface: vm0, vlan: 2}
  - name: br1
    members: []
  - {name: br2, members: [vm1], colour: blue}
cross_connects: [[vm2, vm0]]
",
        &[
            ("ports[0].mtu", 2, 51, "expected 68 to 9216"),
            (
                "bridges[0].name",
                6,
                11,
                "already used by ports[1] (line 3)",
            ),
            ("bridges[0].mac_limit", 7, 16, "expected 1 to 16777216"),
            (
                "bridges[0].members[0]",
                9,
                9,
                "cross-connected by cross_connects[0] (line 20)",
            ),
            (
                "bridges[0].members[1].native",
                10,
                46,
                "applies only to trunk members",
            ),
            ("bridges[0].members[2].interface", 11, 21, "cross-connected"),
            ("bridges[0].members[2].trunk[0]", 11, 34, "runs backwards"),
            (
                "bridges[0].members[2].tpid",
                11,
                50,
                "did you mean `802.1q`?",
            ),
            ("bridges[0].members[3]", 12, 9, "cross-connected"),
            ("bridges[0].members[4]", 13, 9, "unknown port `vm3`"),
            ("bridges[0].static_macs[0].mac", 15, 15, "multicast"),
            (
                "bridges[0].static_macs[1].vlan",
                16,
                58,
                "VLAN 2 is not carried by member `vm0`",
            ),
            ("bridges[1].members", 18, 14, "at least one member"),
            (
                "bridges[2].members[0]",
                19,
                27,
                "already a member of bridges[0] (line 10)",
            ),
            ("bridges[2].colour", 19, 33, "unknown key `colour`"),
        ],
    );
}
