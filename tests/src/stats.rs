//! The stats block that vnf prints on SIGUSR1:
//!
//! ```text
//! stats begin
//! stats port=vm0 queue=0 state=running rx_packets=12 ...
//! stats end
//! ```
//!
//! Bridges add a line per member, a summary line (`member=all`, with `macs=` and
//! `aged=`), and a line per MAC table entry:
//!
//! ```text
//! stats bridge=br0 member=vm0 rx_packets=5 tx_packets=4 flooded=2 learned=1 moved=0 limit_hits=0
//! stats bridge=br0 member=all macs=2 rx_packets=9 ... aged=0
//! stats bridge=br0 mac=52:54:00:00:00:01 vlan=1 interface=vm0 type=learned age=3
//! ```
//!
//! The router adds a line per router interface, a summary, and a line per neighbor:
//!
//! ```text
//! stats router=vm0 rx_packets=9 tx_packets=8 drops=0 icmp_sent=1 ... arp_replies=1 ...
//! stats router=all neighbors=2 unresolved=0
//! stats neighbor=10.1.0.2 interface=vm0 mac=52:54:00:00:00:01 state=reachable age_ms=80
//! ```
//!
//! Every line is parsed into a key/value map, whatever its keys, so that counters added
//! later need no parser change.

use std::collections::BTreeMap;
use std::fmt;

pub type Record = BTreeMap<String, String>;

#[derive(Clone, Debug)]
pub struct Stats {
    pub records: Vec<Record>,
    /// The block as printed, for failure messages.
    pub raw: String,
}

impl Stats {
    /// Parses the lines between `stats begin` and `stats end` (exclusive).
    pub fn parse(block: &str) -> Result<Stats, String> {
        let mut records = Vec::new();
        for line in block.lines() {
            let line = line.trim();
            if line.is_empty() || line == "stats begin" || line == "stats end" {
                continue;
            }
            let rest = line
                .strip_prefix("stats ")
                .ok_or_else(|| format!("not a stats line: {line:?}"))?;
            let mut record = Record::new();
            for token in rest.split_whitespace() {
                let (key, value) = token
                    .split_once('=')
                    .ok_or_else(|| format!("token {token:?} is not key=value in {line:?}"))?;
                record.insert(key.to_string(), value.to_string());
            }
            records.push(record);
        }
        Ok(Stats {
            records,
            raw: block.to_string(),
        })
    }

    /// The record of one port and queue (`"0"`, `"1"`, ... or `"all"`).
    pub fn port(&self, port: &str, queue: &str) -> Option<&Record> {
        self.records.iter().find(|r| {
            r.get("port").map(String::as_str) == Some(port)
                && r.get("queue").map(String::as_str) == Some(queue)
        })
    }

    /// A counter vnf prints only when it is not zero (`drop_*`, `error_*`).
    pub fn counter_or_zero(&self, port: &str, queue: &str, key: &str) -> u64 {
        match self.port(port, queue).and_then(|r| r.get(key)) {
            Some(_) => self.counter(port, queue, key),
            None => 0,
        }
    }

    /// A numeric counter; panics, showing the block, if it is missing or not a number.
    pub fn counter(&self, port: &str, queue: &str, key: &str) -> u64 {
        let what = format!("port={port} queue={queue}");
        let record = self
            .port(port, queue)
            .unwrap_or_else(|| panic!("no stats line for {what} in:\n{self}"));
        self.number(record, key, &what)
    }

    /// The non-zero `drop_<reason>` counters of a port and queue, by reason (without
    /// the `drop_` prefix).
    pub fn drop_reasons(&self, port: &str, queue: &str) -> BTreeMap<String, u64> {
        let what = format!("port={port} queue={queue}");
        let Some(record) = self.port(port, queue) else {
            panic!("no stats line for {what} in:\n{self}");
        };
        record
            .keys()
            .filter_map(|k| k.strip_prefix("drop_").map(|r| (r, k)))
            .map(|(reason, key)| (reason.to_string(), self.number(record, key, &what)))
            .filter(|(_, n)| *n != 0)
            .collect()
    }

    /// The `drop_<reason>` counters of a port (queue `all`) that grew since `earlier`,
    /// by reason, with how much.
    pub fn drops_since(&self, earlier: &Stats, port: &str) -> BTreeMap<String, u64> {
        let before = earlier.drop_reasons(port, "all");
        self.drop_reasons(port, "all")
            .into_iter()
            .map(|(reason, n)| {
                let grew = n.saturating_sub(before.get(&reason).copied().unwrap_or(0));
                (reason, grew)
            })
            .filter(|(_, n)| *n != 0)
            .collect()
    }

    /// The line of one bridge member (an interface name such as `vm0` or `vm4.100`), or
    /// the bridge's summary with `member` = `"all"`.
    pub fn bridge_member(&self, bridge: &str, member: &str) -> Option<&Record> {
        self.records.iter().find(|r| {
            r.get("bridge").map(String::as_str) == Some(bridge)
                && r.get("member").map(String::as_str) == Some(member)
        })
    }

    /// A numeric counter of a bridge member (or of `"all"`); panics, showing the block,
    /// if the line or the key is missing or not a number.
    pub fn bridge_counter(&self, bridge: &str, member: &str, key: &str) -> u64 {
        let what = format!("bridge={bridge} member={member}");
        let record = self
            .bridge_member(bridge, member)
            .unwrap_or_else(|| panic!("no stats line for {what} in:\n{self}"));
        self.number(record, key, &what)
    }

    /// The members a bridge lists, in order, excluding the `all` summary.
    pub fn bridge_members(&self, bridge: &str) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| r.get("bridge").map(String::as_str) == Some(bridge))
            .filter_map(|r| r.get("member").filter(|m| m.as_str() != "all").cloned())
            .collect()
    }

    /// A bridge's MAC table, in the order printed; panics, showing the block, on an
    /// entry without `vlan`, `interface` or `type`.
    pub fn macs(&self, bridge: &str) -> Vec<MacEntry> {
        self.records
            .iter()
            .filter(|r| r.get("bridge").map(String::as_str) == Some(bridge))
            .filter(|r| r.contains_key("mac"))
            .map(|r| {
                let what = format!("bridge={bridge} mac={}", r["mac"]);
                let field = |key: &str| {
                    r.get(key)
                        .unwrap_or_else(|| panic!("{what} has no {key} in:\n{self}"))
                        .clone()
                };
                MacEntry {
                    mac: r["mac"].to_ascii_lowercase(),
                    vlan: self.number(r, "vlan", &what) as u16,
                    interface: field("interface"),
                    kind: field("type"),
                    age: r.get("age").map(|_| self.number(r, "age", &what)),
                }
            })
            .collect()
    }

    /// The entries of one MAC (any case) in a bridge's table, one per VLAN it was seen in.
    pub fn mac_entries(&self, bridge: &str, mac: &str) -> Vec<MacEntry> {
        let mac = mac.to_ascii_lowercase();
        self.macs(bridge)
            .into_iter()
            .filter(|e| e.mac == mac)
            .collect()
    }

    fn number(&self, record: &Record, key: &str, what: &str) -> u64 {
        let value = record
            .get(key)
            .unwrap_or_else(|| panic!("{what} has no {key} in:\n{self}"));
        value
            .parse()
            .unwrap_or_else(|_| panic!("{what} {key}={value} is not a number in:\n{self}"))
    }

    /// The line of router interface `iface`.
    pub fn router_interface(&self, iface: &str) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.get("router").map(String::as_str) == Some(iface))
    }

    /// A numeric counter of a router interface (`drop_<reason>` counters read as 0 when
    /// absent); panics, showing the block, if the line is missing.
    pub fn router_counter(&self, iface: &str, key: &str) -> u64 {
        let what = format!("router={iface}");
        let record = self
            .router_interface(iface)
            .unwrap_or_else(|| panic!("no stats line for {what} in:\n{self}"));
        if key.starts_with("drop_") && !record.contains_key(key) {
            return 0;
        }
        self.number(record, key, &what)
    }

    /// The drop reasons of a router interface with their counts (non-zero only).
    pub fn router_drops(&self, iface: &str) -> BTreeMap<String, u64> {
        self.router_interface(iface)
            .map(|r| {
                r.iter()
                    .filter_map(|(k, v)| {
                        let reason = k.strip_prefix("drop_")?;
                        Some((reason.to_string(), v.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The router's neighbor cache entries for `addr` (as vnf prints it), as
    /// `(interface, mac, state)`.
    pub fn neighbors(&self, addr: &str) -> Vec<(String, String, String)> {
        self.records
            .iter()
            .filter(|r| r.get("neighbor").map(String::as_str) == Some(addr))
            .map(|r| {
                let f = |k: &str| r.get(k).cloned().unwrap_or_default();
                (f("interface"), f("mac"), f("state"))
            })
            .collect()
    }

    /// The queue indexes listed for a port, excluding the `all` summary.
    pub fn queues(&self, port: &str) -> Vec<String> {
        self.records
            .iter()
            .filter(|r| r.get("port").map(String::as_str) == Some(port))
            .filter_map(|r| r.get("queue").filter(|q| q.as_str() != "all").cloned())
            .collect()
    }
}

/// One entry of a bridge's MAC table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacEntry {
    /// Lower case, `52:54:00:00:00:01`.
    pub mac: String,
    pub vlan: u16,
    /// The member it forwards to, e.g. `vm0` or `vm4.100`.
    pub interface: String,
    /// `learned` or `static`.
    pub kind: String,
    /// Seconds since the entry was last refreshed, if printed.
    pub age: Option<u64>,
}

impl fmt::Display for MacEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} vlan {} on {} ({})",
            self.mac, self.vlan, self.interface, self.kind
        )
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Finds the first complete block that begins at or after byte `from` of `text`.
pub fn find_block(text: &str, from: usize) -> Option<&str> {
    let mut offset = 0;
    let mut begin = None;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        if !line.ends_with('\n') {
            break;
        }
        match line.trim() {
            "stats begin" if start >= from => begin = Some(start),
            "stats end" => {
                if let Some(b) = begin {
                    return Some(&text[b..offset]);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "stats begin\n\
        stats port=vm0 queue=0 state=running rx_packets=12 rx_bytes=1200 tx_packets=11 tx_bytes=1100 drops=0\n\
        stats port=vm0 queue=1 state=detached rx_packets=0 rx_bytes=0 tx_packets=0 tx_bytes=0 drops=0 drop_no_buffers=3\n\
        stats port=vm0 queue=all rx_packets=12 rx_bytes=1200 tx_packets=11 tx_bytes=1100 drops=0\n\
        stats worker=0 polls=99\n\
        stats end\n";

    #[test]
    fn parses_ports_queues_and_unknown_keys() {
        let stats = Stats::parse(BLOCK).unwrap();
        assert_eq!(stats.records.len(), 4);
        assert_eq!(stats.counter("vm0", "0", "rx_packets"), 12);
        assert_eq!(stats.counter("vm0", "all", "tx_bytes"), 1100);
        assert_eq!(stats.counter("vm0", "1", "drop_no_buffers"), 3);
        assert_eq!(stats.port("vm0", "1").unwrap()["state"], "detached");
        assert_eq!(stats.queues("vm0"), vec!["0", "1"]);
        assert_eq!(stats.records[3]["worker"], "0");
        assert!(stats.port("vm1", "0").is_none());
    }

    const BRIDGE: &str = "stats begin\n\
        stats port=vm0 queue=all rx_packets=9 rx_bytes=900 tx_packets=7 tx_bytes=700 drops=3 drop_vlan_filtered=2 drop_bad_tag=1 drop_oversize=0\n\
        stats port=vm4 queue=all rx_packets=4 rx_bytes=400 tx_packets=5 tx_bytes=500 drops=0\n\
        stats bridge=br0 member=vm0 rx_packets=9 tx_packets=7 flooded=2 learned=1 moved=0 limit_hits=0\n\
        stats bridge=br0 member=vm4.100 rx_packets=4 tx_packets=5 flooded=1 learned=1 moved=0 limit_hits=0\n\
        stats bridge=br0 member=all macs=3 rx_packets=13 tx_packets=12 flooded=3 learned=2 moved=0 limit_hits=0 aged=0\n\
        stats bridge=br0 mac=52:54:00:00:00:01 vlan=1 interface=vm0 type=learned age=3\n\
        stats bridge=br0 mac=52:54:00:00:00:04 vlan=1 interface=vm4.100 type=learned age=0\n\
        stats bridge=br0 mac=02:00:00:00:00:0A vlan=10 interface=vm0 type=static\n\
        stats bridge=br1 member=vm9 rx_packets=1 tx_packets=1 flooded=0 learned=0 moved=0 limit_hits=0\n\
        stats bridge=br1 mac=52:54:00:00:00:01 vlan=1 interface=vm9 type=learned age=1\n\
        stats end\n";

    #[test]
    fn parses_bridge_members_and_mac_table() {
        let stats = Stats::parse(BRIDGE).unwrap();
        // Port lines are read as before.
        assert_eq!(stats.counter("vm0", "all", "rx_packets"), 9);
        assert_eq!(stats.counter_or_zero("vm4", "all", "drop_vlan_filtered"), 0);
        let reasons = stats.drop_reasons("vm0", "all");
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert_eq!(reasons["vlan_filtered"], 2);
        assert_eq!(reasons["bad_tag"], 1);

        assert_eq!(stats.bridge_counter("br0", "vm4.100", "tx_packets"), 5);
        assert_eq!(stats.bridge_counter("br0", "all", "macs"), 3);
        assert_eq!(stats.bridge_members("br0"), ["vm0", "vm4.100"]);
        assert!(stats.bridge_member("br0", "vm9").is_none());
        assert!(stats.port("br0", "all").is_none());

        let macs = stats.macs("br0");
        assert_eq!(macs.len(), 3);
        assert_eq!(
            macs[1],
            MacEntry {
                mac: "52:54:00:00:00:04".into(),
                vlan: 1,
                interface: "vm4.100".into(),
                kind: "learned".into(),
                age: Some(0),
            }
        );
        let fixed = stats.mac_entries("br0", "02:00:00:00:00:0a");
        assert_eq!(fixed.len(), 1);
        assert_eq!(
            (fixed[0].vlan, fixed[0].kind.as_str(), fixed[0].age),
            (10, "static", None)
        );
        let other = stats.mac_entries("br1", "52:54:00:00:00:01");
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].interface, "vm9");
    }

    #[test]
    #[should_panic(expected = "bridge=br0 member=vm1")]
    fn missing_bridge_member_panics_with_its_name() {
        Stats::parse(BRIDGE)
            .unwrap()
            .bridge_counter("br0", "vm1", "rx_packets");
    }

    #[test]
    fn rejects_lines_that_are_not_key_value() {
        assert!(Stats::parse("stats begin\nstats port=vm0 junk\nstats end\n").is_err());
        assert!(Stats::parse("stats begin\nrx_packets=1\nstats end\n").is_err());
    }

    #[test]
    fn finds_the_first_block_after_an_offset() {
        let text = format!("log\n{BLOCK}other\n{}", BLOCK.replace("=12 ", "=13 "));
        let first = find_block(&text, 0).unwrap();
        assert!(first.contains("rx_packets=12 "));
        let second = find_block(&text, 5).unwrap();
        assert!(second.contains("rx_packets=13 "), "{second}");
        // A block still being printed is not complete.
        assert!(find_block("stats begin\nstats port=a queue=0\n", 0).is_none());
        assert!(find_block(&text[..text.len() - 1], 5).is_none());
    }
}
