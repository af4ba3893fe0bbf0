//! The bridge's datapath, driven without QEMU: our virtio-user frontend attaches to
//! every port of a vnf bridge and sends hand-made frames, and each test checks exactly
//! which ports receive what, with which tags, and which counters move.

use std::time::{Duration, Instant};

use vnf_tests::rig::{Rig, SETTLE};
use vnf_tests::{serial, Stats};

/// The bridge's expectations: each frame sent must reach exactly the ports listed.
trait Expect {
    /// Sends `frame` and asserts that exactly the ports in `to` received one frame
    /// each, equal to the frame given for that port.
    fn expect(&mut self, from: &str, frame: &[u8], to: &[(&str, Vec<u8>)]);

    /// `expect`, sending on queue pair `pair`.
    fn expect_on(&mut self, from: &str, pair: usize, frame: &[u8], to: &[(&str, Vec<u8>)]);
}

impl Expect for Rig {
    fn expect(&mut self, from: &str, frame: &[u8], to: &[(&str, Vec<u8>)]) {
        self.expect_on(from, 0, frame, to)
    }

    fn expect_on(&mut self, from: &str, pair: usize, frame: &[u8], to: &[(&str, Vec<u8>)]) {
        let got = self.send_on(from, pair, &[frame]);
        if let Some(m) = got.mismatch(to) {
            let stats = self.stats();
            panic!(
                "frame from {from} ({}): port {} received {:02x?}, expected {:02x?}\n{stats}",
                describe(frame),
                m.port,
                m.have.iter().map(|f| describe(f)).collect::<Vec<_>>(),
                m.want.iter().map(|f| describe(f)).collect::<Vec<_>>()
            );
        }
    }
}

/// A frame's length and first 22 bytes: addresses, two tags and the EtherType.
fn describe(f: &[u8]) -> String {
    format!("{} bytes {:02x?}", f.len(), &f[..f.len().min(22)])
}

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// An Ethernet frame from `src` to `dst` with `tags` ((TPID, TCI), outermost first) and
/// `len` bytes of payload marked with `mark`.
fn frame(dst: [u8; 6], src: [u8; 6], tags: &[(u16, u16)], len: usize, mark: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len).map(|i| mark.wrapping_add(i as u8)));
    f
}

const BCAST: [u8; 6] = [0xff; 6];
const Q: u16 = 0x8100;
const AD: u16 = 0x88a8;

/// A value of a `stats bridge=... member=...` line.
fn member_counter(stats: &Stats, bridge: &str, member: &str, key: &str) -> u64 {
    let text = stats.to_string();
    let head = format!("stats bridge={bridge} member={member} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("no `{head}` line in:\n{text}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in `{line}`"))
        .parse()
        .unwrap()
}

/// The `stats bridge=... mac=...` lines, as (mac, vlan, interface, type).
fn mac_entries(stats: &Stats, bridge: &str) -> Vec<(String, u16, String, String)> {
    let text = stats.to_string();
    let head = format!("stats bridge={bridge} mac=");
    text.lines()
        .filter(|l| l.starts_with(&head))
        .map(|l| {
            let get = |k: &str| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            (
                get("mac"),
                get("vlan").parse().unwrap(),
                get("interface"),
                get("type"),
            )
        })
        .collect()
}

fn drops(stats: &Stats, port: &str, reason: &str) -> u64 {
    stats.counter_or_zero(port, "all", &format!("drop_{reason}"))
}

#[test]
fn learning_flooding_and_moves() {
    let _serial = serial();
    let mut r = Rig::start(
        "l2-learn",
        &[("a", ""), ("b", ""), ("c", "")],
        "bridges:\n  - { name: br0, members: [a, b, c] }\n",
    );
    let (ma, mb) = (mac(0xa), mac(0xb));
    // Unknown destination: flooded to every other member.
    let f = frame(mb, ma, &[], 50, 1);
    r.expect("a", &f, &[("b", f.clone()), ("c", f.clone())]);
    // The reply goes to a alone: its address was learned.
    let f = frame(ma, mb, &[], 50, 2);
    r.expect("b", &f, &[("a", f.clone())]);
    // Now both are known: unicast both ways.
    let f = frame(mb, ma, &[], 50, 3);
    r.expect("a", &f, &[("b", f.clone())]);
    // Broadcast always floods.
    let f = frame(BCAST, ma, &[], 50, 4);
    r.expect("a", &f, &[("b", f.clone()), ("c", f.clone())]);
    // a's address shows up on c: it moves, and traffic to it follows.
    let f = frame(BCAST, ma, &[], 50, 5);
    r.expect("c", &f, &[("a", f.clone()), ("b", f.clone())]);
    let f = frame(ma, mb, &[], 50, 6);
    r.expect("b", &f, &[("c", f.clone())]);
    // A frame to the interface it came from is not sent back.
    let f = frame(mb, mac(0xd), &[], 50, 7);
    r.expect("b", &f, &[]);
    // A group source address is invalid.
    let f = frame(mb, BCAST, &[], 50, 8);
    r.expect("a", &f, &[]);

    let s = r.stats();
    assert_eq!(member_counter(&s, "br0", "a", "learned"), 1, "{s}");
    assert_eq!(member_counter(&s, "br0", "b", "learned"), 2, "{s}");
    assert_eq!(member_counter(&s, "br0", "c", "moved"), 1, "{s}");
    assert_eq!(member_counter(&s, "br0", "a", "flooded"), 2, "{s}");
    assert_eq!(member_counter(&s, "br0", "c", "flooded"), 1, "{s}");
    assert_eq!(drops(&s, "b", "same_interface"), 1, "{s}");
    assert_eq!(drops(&s, "a", "bad_source"), 1, "{s}");
    let mut entries = mac_entries(&s, "br0");
    entries.sort();
    assert_eq!(
        entries,
        vec![
            ("02:00:00:00:00:0a".into(), 1, "c".into(), "learned".into()),
            ("02:00:00:00:00:0b".into(), 1, "b".into(), "learned".into()),
            ("02:00:00:00:00:0d".into(), 1, "b".into(), "learned".into()),
        ],
        "{s}"
    );
    r.vnf.assert_running();
}

/// Every decision of the bridge inside one burst (the batch path decides a batch in
/// stages, not frame by frame): several sources learned, known and unknown destinations,
/// a frame to its own sender's member, each port receiving its frames in order.
#[test]
fn one_burst_mixing_every_decision() {
    let _serial = serial();
    let mut r = Rig::start(
        "l2-burst-mix",
        &[("a", ""), ("b", ""), ("c", "")],
        "bridges:\n  - { name: br0, members: [a, b, c] }\n",
    );
    // b and c announce themselves; a's senders are new to the bridge.
    r.send("b", &[frame(BCAST, mac(0xb), &[], 46, 0)]);
    r.send("c", &[frame(BCAST, mac(0xc), &[], 46, 0)]);
    // (destination, source) of each frame, all sent from a in one burst.
    let plan: Vec<([u8; 6], [u8; 6])> = (0..32u8)
        .map(|i| match i % 4 {
            0 => (mac(0xb), mac(0xa0 + i % 3)),
            1 => (mac(0xc), mac(0xa0 + i % 3)),
            // Unknown: flooded to b and c.
            2 => (mac(0x55), mac(0xa0)),
            // a0 was learned on a by the frames before: not sent back to a.
            _ => (mac(0xa0), mac(0xa1)),
        })
        .collect();
    let frames: Vec<Vec<u8>> = plan
        .iter()
        .enumerate()
        .map(|(i, (d, s))| frame(*d, *s, &[], 46, i as u8))
        .collect();
    let got = r.send("a", &frames);
    let want = |to: u8| -> Vec<Vec<u8>> {
        (0..32)
            .filter(|i| i % 4 == 2 || (to == 0xb && i % 4 == 0) || (to == 0xc && i % 4 == 1))
            .map(|i| frames[i].clone())
            .collect()
    };
    assert!(
        got.on("a").is_empty(),
        "a received {} frames",
        got.on("a").len()
    );
    assert!(got.on("b") == want(0xb), "b: {:02x?}", got.on("b"));
    assert!(got.on("c") == want(0xc), "c: {:02x?}", got.on("c"));
    let s = r.stats();
    assert_eq!(member_counter(&s, "br0", "a", "learned"), 3, "{s}");
    assert_eq!(member_counter(&s, "br0", "a", "rx_packets"), 32, "{s}");
    assert_eq!(member_counter(&s, "br0", "a", "flooded"), 8, "{s}");
    assert_eq!(
        member_counter(&s, "br0", "b", "tx_packets"),
        8 + 8 + 1,
        "{s}"
    );
    assert_eq!(drops(&s, "a", "same_interface"), 8, "{s}");
    r.vnf.assert_running();
}

#[test]
fn mac_limit_and_static_entries() {
    let _serial = serial();
    let mut r = Rig::start(
        "l2-limit",
        &[("a", ""), ("b", "")],
        "bridges:\n  - name: br0\n    mac_limit: 3\n    members: [a, b]\n    static_macs:\n      - { mac: \"02:00:00:00:00:99\", interface: b }\n",
    );
    // Five new sources; only three are learned.
    for n in 1..=5 {
        let f = frame(BCAST, mac(n), &[], 40, n);
        r.expect("a", &f, &[("b", f.clone())]);
    }
    // The static entry steers traffic and does not move when its address shows up on a.
    let f = frame(BCAST, mac(0x99), &[], 40, 9);
    r.expect("a", &f, &[("b", f.clone())]);
    let f = frame(mac(0x99), mac(1), &[], 40, 10);
    r.expect("a", &f, &[("b", f.clone())]);
    let s = r.stats();
    assert_eq!(member_counter(&s, "br0", "a", "learned"), 3, "{s}");
    assert_eq!(member_counter(&s, "br0", "a", "limit_hits"), 2, "{s}");
    assert_eq!(member_counter(&s, "br0", "all", "macs"), 4, "{s}");
    assert!(
        mac_entries(&s, "br0").contains(&(
            "02:00:00:00:00:99".into(),
            1,
            "b".into(),
            "static".into()
        )),
        "{s}"
    );
}

#[test]
fn access_trunk_and_native_vlans() {
    let _serial = serial();
    let mut r = Rig::start(
        "l2-vlan",
        &[("t", ""), ("a10", ""), ("b20", ""), ("c1", "")],
        "bridges:\n  - name: br0\n    members:\n      - { interface: t, trunk: [10, 20], native: 1 }\n      - { interface: a10, access: 10 }\n      - { interface: b20, access: 20 }\n      - c1\n",
    );
    let (mt, ma) = (mac(1), mac(2));
    // Tagged 10 from the trunk reaches only the VLAN 10 access port, untagged; the
    // priority bits do not matter to the access side.
    r.expect(
        "t",
        &frame(BCAST, mt, &[(Q, 0x6000 | 10)], 46, 1),
        &[("a10", frame(BCAST, mt, &[], 46, 1))],
    );
    // The reply from the access port leaves the trunk tagged 10 (unicast: learned).
    r.expect(
        "a10",
        &frame(mt, ma, &[], 46, 2),
        &[("t", frame(mt, ma, &[(Q, 10)], 46, 2))],
    );
    // Untagged on the trunk is the native VLAN 1.
    r.expect(
        "t",
        &frame(BCAST, mt, &[], 46, 3),
        &[("c1", frame(BCAST, mt, &[], 46, 3))],
    );
    // And VLAN 1 leaves the trunk untagged.
    r.expect(
        "c1",
        &frame(BCAST, mac(3), &[], 46, 4),
        &[("t", frame(BCAST, mac(3), &[], 46, 4))],
    );
    // VLAN 20 broadcast from its access port: the trunk only, tagged.
    r.expect(
        "b20",
        &frame(BCAST, mac(4), &[], 46, 5),
        &[("t", frame(BCAST, mac(4), &[(Q, 20)], 46, 5))],
    );
    // Not allowed on the trunk; tagged frames on an access port; truncated tag; VID 4095.
    r.expect("t", &frame(BCAST, mt, &[(Q, 30)], 46, 6), &[]);
    r.expect("a10", &frame(BCAST, ma, &[(Q, 10)], 46, 7), &[]);
    let mut cut = frame(BCAST, mt, &[], 0, 0);
    cut.truncate(14);
    cut[12..14].copy_from_slice(&Q.to_be_bytes());
    r.expect("t", &cut, &[]);
    r.expect("t", &frame(BCAST, mt, &[(Q, 4095)], 46, 8), &[]);
    let s = r.stats();
    assert_eq!(drops(&s, "t", "vlan_filtered"), 1, "{s}");
    assert_eq!(drops(&s, "a10", "vlan_filtered"), 1, "{s}");
    assert_eq!(drops(&s, "t", "bad_tag"), 2, "{s}");
    // The trunk's address is known in two VLANs, separately.
    let entries = mac_entries(&s, "br0");
    let vlans: Vec<u16> = entries
        .iter()
        .filter(|e| e.0 == "02:00:00:00:00:01")
        .map(|e| e.1)
        .collect();
    assert_eq!(vlans.len(), 2, "{entries:?}");
    assert!(vlans.contains(&1) && vlans.contains(&10), "{entries:?}");
}

#[test]
fn qinq_trunks_and_subinterfaces() {
    let _serial = serial();
    let mut r = Rig::start(
        "l2-qinq",
        &[("s1", ""), ("s2", ""), ("d", ""), ("u", "")],
        "bridges:\n  - name: br0\n    members:\n      - { interface: s1, trunk: [100], tpid: 802.1ad }\n      - { interface: s2, trunk: [100], tpid: 802.1ad }\n      - { interface: d.300.400, access: 7 }\n      - { interface: u.5, access: 7 }\n",
    );
    // An S-tagged frame with a C-tag inside crosses between service trunks intact.
    let f = frame(BCAST, mac(1), &[(AD, 100), (Q, 200)], 46, 1);
    r.expect("s1", &f, &[("s2", f.clone())]);
    // A plain 802.1Q frame is untagged to a service trunk without native VLAN: dropped.
    r.expect("s1", &frame(BCAST, mac(1), &[(Q, 100)], 46, 2), &[]);
    // Double-tagged subinterface to single-tagged one: tags swapped.
    r.expect(
        "d",
        &frame(BCAST, mac(2), &[(AD, 300), (Q, 400)], 46, 3),
        &[("u", frame(BCAST, mac(2), &[(Q, 5)], 46, 3))],
    );
    // The outer tag may also be 802.1Q on receive; on transmit it is 802.1ad.
    r.expect(
        "u",
        &frame(mac(2), mac(3), &[(Q, 5)], 46, 4),
        &[("d", frame(mac(2), mac(3), &[(AD, 300), (Q, 400)], 46, 4))],
    );
    r.expect(
        "d",
        &frame(mac(3), mac(2), &[(Q, 300), (Q, 400)], 46, 5),
        &[("u", frame(mac(3), mac(2), &[(Q, 5)], 46, 5))],
    );
    // Frames matching no subinterface reach the port itself, which is in no bridge.
    r.expect(
        "d",
        &frame(BCAST, mac(2), &[(AD, 300), (Q, 401)], 46, 6),
        &[],
    );
    let s = r.stats();
    assert_eq!(drops(&s, "s1", "vlan_filtered"), 1, "{s}");
    assert_eq!(drops(&s, "d", "no_destination"), 1, "{s}");
}

#[test]
fn mtu_on_receive_and_transmit() {
    let _serial = serial();
    let mut r = Rig::start(
        "l2-mtu",
        &[("big", ", mtu: 9000"), ("small", ""), ("t", ", mtu: 1500")],
        "bridges:\n  - name: br0\n    members: [big, small, { interface: t, trunk: [1] }]\n",
    );
    // 1500 bytes of payload fit everywhere, even with the trunk's tag.
    let f = frame(BCAST, mac(1), &[], 1500, 1);
    r.expect(
        "big",
        &f,
        &[
            ("small", f.clone()),
            ("t", frame(BCAST, mac(1), &[(Q, 1)], 1500, 1)),
        ],
    );
    // 1501 fit only the jumbo port: dropped on the way to each of the others.
    r.expect("big", &frame(BCAST, mac(1), &[], 1501, 2), &[]);
    // The jumbo port takes 9000 (the small one learns where it is first)...
    let f = frame(BCAST, mac(2), &[], 10, 3);
    r.expect(
        "small",
        &f,
        &[
            ("big", f.clone()),
            ("t", frame(BCAST, mac(2), &[(Q, 1)], 10, 3)),
        ],
    );
    let f = frame(mac(2), mac(1), &[], 9000, 4);
    r.expect("big", &f, &[]);
    // ... but not 9001, and neither does the small port take 1501 in.
    r.expect("big", &frame(mac(2), mac(1), &[], 9001, 5), &[]);
    r.expect("small", &frame(mac(1), mac(2), &[], 1501, 6), &[]);
    // A tag does not count against the MTU.
    let f = frame(mac(1), mac(3), &[(Q, 1)], 1500, 7);
    r.expect("t", &f, &[("big", frame(mac(1), mac(3), &[], 1500, 7))]);
    let s = r.stats();
    // 1501 to two small ports, 9000 to one.
    assert_eq!(drops(&s, "big", "mtu_exceeded"), 3, "{s}");
    assert_eq!(drops(&s, "big", "oversize"), 1, "{s}");
    assert_eq!(drops(&s, "small", "oversize"), 1, "{s}");
}

/// Bursts through the bridge: one conversation (which takes the whole-batch path) and
/// interleaved destinations (the per-frame path) arrive complete and in order.
#[test]
fn bursts_arrive_complete_and_in_order() {
    let _serial = serial();
    let mut r = Rig::start(
        "l2-bursts",
        &[("a", ""), ("b", ""), ("c", "")],
        "bridges:\n  - { name: br0, members: [a, b, c] }\n",
    );
    // Everyone announces itself so that all addresses are known.
    for (p, n) in [("a", 1), ("b", 2), ("c", 3)] {
        r.send(p, &[frame(BCAST, mac(n), &[], 46, 0)]);
    }
    const TOTAL: u32 = 20_000;
    // Frame i goes to b when `to_b(i)`, else to c; its payload starts with i.
    let run = |r: &mut Rig, to_b: &dyn Fn(u32) -> bool| {
        let mut sent = 0u32;
        let mut next = [0u32; 2];
        let mut got = [Vec::new(), Vec::new()];
        let deadline = Instant::now() + Duration::from_secs(30);
        while (next[0] as usize + next[1] as usize) < TOTAL as usize && Instant::now() < deadline {
            // Keep well under the receivers' ring size in flight.
            let in_flight = sent - got[0].len() as u32 - got[1].len() as u32;
            let room = (256u32.saturating_sub(in_flight)).min(TOTAL - sent).min(32);
            let n = r.pair("a", 0).tx.send(room as usize, |i, buf| {
                let seq = sent + i as u32;
                let dst = if to_b(seq) { mac(2) } else { mac(3) };
                let f = frame(dst, mac(1), &[], 46, 0);
                buf[..f.len()].copy_from_slice(&f);
                buf[14..18].copy_from_slice(&seq.to_be_bytes());
                f.len()
            });
            sent += n as u32;
            for (k, port) in ["b", "c"].into_iter().enumerate() {
                r.pair(port, 0).rx.recv(64, |f| {
                    got[k].push(u32::from_be_bytes(f[14..18].try_into().unwrap()));
                });
                next[k] = got[k].len() as u32;
            }
        }
        let want_b: Vec<u32> = (0..TOTAL).filter(|&i| to_b(i)).collect();
        let want_c: Vec<u32> = (0..TOTAL).filter(|&i| !to_b(i)).collect();
        assert!(
            got[0] == want_b,
            "b got {} frames, first wrong at {:?}",
            got[0].len(),
            got[0].iter().zip(&want_b).position(|(x, y)| x != y)
        );
        assert!(
            got[1] == want_c,
            "c got {} frames, first wrong at {:?}",
            got[1].len(),
            got[1].iter().zip(&want_c).position(|(x, y)| x != y)
        );
    };
    run(&mut r, &|_| true);
    run(&mut r, &|i| i % 3 != 0);
    let s = r.stats();
    // The two announcements from a and c, then both runs.
    let to_b = u64::from(TOTAL) + (0..TOTAL).filter(|i| i % 3 != 0).count() as u64;
    assert_eq!(
        member_counter(&s, "br0", "b", "tx_packets"),
        2 + to_b,
        "{s}"
    );
    assert_eq!(s.counter_or_zero("a", "all", "drops"), 0, "{s}");
    assert!(r.collect_for(SETTLE).total() == 0);
}

/// An address learned by one worker steers the frames another worker forwards: ports
/// with two queue pairs and two workers, pair 0 of every port on worker 0 and pair 1 on
/// worker 1.
#[test]
fn addresses_learned_on_one_worker_serve_the_other() {
    let _serial = serial();
    let mut r = Rig::start_with(
        "l2-workers",
        2,
        2,
        &[("a", ""), ("b", ""), ("c", "")],
        "bridges:\n  - { name: br0, members: [a, b, c] }\n",
    );
    let (ma, mb) = (mac(0xa), mac(0xb));
    // Worker 0 learns a (from a's pair 0); the frame is flooded.
    let f = frame(BCAST, ma, &[], 46, 1);
    r.expect_on("a", 0, &f, &[("b", f.clone()), ("c", f.clone())]);
    // Worker 1 forwards b's pair 1 to a only, using what worker 0 learned, and learns b.
    let f = frame(ma, mb, &[], 46, 2);
    r.expect_on("b", 1, &f, &[("a", f.clone())]);
    // Worker 0 uses what worker 1 learned.
    let f = frame(mb, ma, &[], 46, 3);
    r.expect_on("a", 0, &f, &[("b", f.clone())]);
    // And a move seen by worker 1 is followed by worker 0.
    let f = frame(BCAST, ma, &[], 46, 4);
    r.expect_on("c", 1, &f, &[("a", f.clone()), ("b", f.clone())]);
    let f = frame(ma, mb, &[], 46, 5);
    r.expect_on("b", 0, &f, &[("c", f.clone())]);
    let s = r.stats();
    assert_eq!(member_counter(&s, "br0", "all", "learned"), 2, "{s}");
    assert_eq!(member_counter(&s, "br0", "c", "moved"), 1, "{s}");
}
