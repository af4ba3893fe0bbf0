//! Addressing of test guests, and reading busybox ping's results.
//!
//! Guest `n` (1-based) gets MAC 52:54:00:00:00:n, 10.0.0.n/24 and fd00::n/64: private
//! addresses on a wire that only the test's own guests share.

use crate::guest::{GuestConfig, Nic};
use regex::Regex;
use std::sync::OnceLock;

pub fn mac(n: u8) -> String {
    format!("52:54:00:00:00:{n:02x}")
}

pub fn ipv4(n: u8) -> String {
    format!("10.0.0.{n}")
}

pub fn ipv6(n: u8) -> String {
    format!("fd00::{n:x}")
}

/// `ipv4(n)` with its prefix, for [`crate::GuestConfig::addr`].
pub fn ipv4_cidr(n: u8) -> String {
    format!("{}/24", ipv4(n))
}

pub fn ipv6_cidr(n: u8) -> String {
    format!("{}/64", ipv6(n))
}

/// The tag type of a VLAN tag: what a trunk member sends and accepts in the manifest,
/// and what a guest's VLAN interface puts on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tpid {
    /// 0x8100, an IEEE 802.1Q customer tag.
    Dot1q,
    /// 0x88a8, an IEEE 802.1ad service tag (the outer tag of QinQ).
    Dot1ad,
}

impl Tpid {
    /// As the manifest's `tpid:` and `ip link add ... type vlan proto` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Tpid::Dot1q => "802.1q",
            Tpid::Dot1ad => "802.1ad",
        }
    }
}

/// An address `10.<subnet>.0.<host>/24`, for guests that share a VLAN but not the
/// standard 10.0.0.0/24.
pub fn subnet_cidr(subnet: u8, host: u8) -> String {
    format!("10.{subnet}.0.{host}/24")
}

/// The address of [`subnet_cidr`] without its prefix.
pub fn subnet_ip(subnet: u8, host: u8) -> String {
    format!("10.{subnet}.0.{host}")
}

/// Shell snippet: the value of one of `dev`'s interface counters, e.g. `tx_packets`.
pub fn dev_counter(dev: &str, counter: &str) -> String {
    format!("cat /sys/class/net/{dev}/statistics/{counter}")
}

/// Shell snippet that prints the guest's IP fragmentation counters as one line,
/// `FRAG creates=N reasm=N` (from /proc/net/snmp: FragCreates, ReasmReqds).
pub fn frag_counters() -> &'static str {
    "awk '/^Ip:/{if(!h){for(i=1;i<=NF;i++)c[$i]=i;h=1}else print \"FRAG creates=\" $c[\"FragCreates\"] \" reasm=\" $c[\"ReasmReqds\"]}' /proc/net/snmp"
}

/// Reads the line printed by [`frag_counters`]: `(FragCreates, ReasmReqds)`.
pub fn parse_frag_counters(text: &str) -> Option<(u64, u64)> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("FRAG creates="))?;
    let mut values = line
        .split_whitespace()
        .filter_map(|w| w.split_once('=').map(|(_, v)| v.parse::<u64>()));
    let creates = values.next()?.ok()?;
    let reasm = values.next()?.ok()?;
    Some((creates, reasm))
}

/// Guest number `n` named `name`, with its standard addresses on eth0 = `nic`.
pub fn numbered_guest(name: &str, n: u8, nic: Nic) -> GuestConfig {
    GuestConfig::new(name)
        .nic(nic)
        .addr(0, &ipv4_cidr(n))
        .addr(0, &ipv6_cidr(n))
}

/// Shell snippet that waits (up to about two minutes) until `addr` answers a ping.
///
/// A guest that starts pinging before its peer has booted loses those pings, which is
/// right but says nothing about the switch; counted runs start after this.
pub fn await_peer(addr: &str) -> String {
    let v6 = if addr.contains(':') { "-6 " } else { "" };
    format!("for i in $(seq 120); do ping {v6}-c 1 -W 1 {addr} >/dev/null && break; done")
}

/// Shell snippet: [`await_peer`] for each address in turn.
pub fn await_peers(addrs: &[String]) -> String {
    let waits: Vec<String> = addrs.iter().map(|a| await_peer(a)).collect();
    waits.join("; ")
}

/// Shell snippet: a quiet run of `count` pings 20 ms apart, IPv6 if `addr` has a ':'.
pub fn ping_run(addr: &str, count: u32) -> String {
    let v6 = if addr.contains(':') { "-6 " } else { "" };
    format!("ping {v6}-q -c {count} -i 0.02 {addr}")
}

/// Shell snippet: a quiet run of `count` pings 0.2 s apart that is expected to go
/// unanswered (it waits one second at the end, not ten).
pub fn unanswered_run(addr: &str, count: u32) -> String {
    let v6 = if addr.contains(':') { "-6 " } else { "" };
    format!("ping {v6}-q -c {count} -i 0.2 -W 1 {addr}")
}

/// Shell snippet: one quiet ping run per vCPU, each pinned to its CPU, all at once.
///
/// virtio_net maps transmit queue N to CPU N (XPS) when it has a queue pair per CPU,
/// so each run leaves on its own queue.
pub fn pinned_pings(addr: &str, cpus: u32, count: u32) -> String {
    let runs: Vec<String> = (0..cpus)
        .map(|cpu| {
            format!(
                "taskset {:x} ping -q -c {count} -i 0.01 {addr} &",
                1u32 << cpu
            )
        })
        .collect();
    format!("{} wait", runs.join(" "))
}

/// The closing line of a busybox ping run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingSummary {
    pub transmitted: u32,
    pub received: u32,
}

impl PingSummary {
    pub fn lossless(&self, count: u32) -> bool {
        self.transmitted == count && self.received == count
    }
}

/// Matches the summary line, e.g. `500 packets transmitted, 500 packets received, 0% packet loss`.
pub fn summary_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(\d+) packets transmitted, (\d+) packets received").unwrap())
}

/// Every summary in `text`, in order.
pub fn summaries(text: &str) -> Vec<PingSummary> {
    summary_regex()
        .captures_iter(text)
        .map(|c| PingSummary {
            transmitted: c[1].parse().unwrap(),
            received: c[2].parse().unwrap(),
        })
        .collect()
}

/// Replies in `text` from `from` (lines like `64 bytes from 10.0.0.2: seq=7 ...`),
/// returning their sequence numbers.
pub fn reply_seqs(text: &str, from: &str) -> Vec<u32> {
    let needle = format!("bytes from {from}: seq=");
    text.lines()
        .filter_map(|l| l.split_once(&needle))
        .filter_map(|(_, rest)| rest.split(' ').next()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_busybox_ping_output() {
        let text = "PING 10.0.0.2 (10.0.0.2): 56 data bytes\n\
            64 bytes from 10.0.0.2: seq=0 ttl=64 time=1.316 ms\n\
            64 bytes from 10.0.0.2: seq=1 ttl=64 time=0.870 ms\n\
            \n--- 10.0.0.2 ping statistics ---\n\
            2 packets transmitted, 2 packets received, 0% packet loss\n\
            500 packets transmitted, 498 packets received, 0% packet loss\n";
        let found = summaries(text);
        assert_eq!(found.len(), 2);
        assert!(found[0].lossless(2));
        assert!(!found[1].lossless(500));
        assert_eq!(reply_seqs(text, "10.0.0.2"), vec![0, 1]);
        assert!(reply_seqs(text, "10.0.0.3").is_empty());
    }

    #[test]
    fn reads_fragmentation_counters() {
        let text = "noise\nFRAG creates=0 reasm=3\n";
        assert_eq!(parse_frag_counters(text), Some((0, 3)));
        assert_eq!(parse_frag_counters("FRAG creates=x reasm=1\n"), None);
        assert_eq!(parse_frag_counters(""), None);
    }

    #[test]
    fn numbers_guests() {
        assert_eq!(mac(1), "52:54:00:00:00:01");
        assert_eq!(ipv6_cidr(2), "fd00::2/64");
        assert_eq!(ipv4_cidr(12), "10.0.0.12/24");
    }
}
