//! The stats block that vnf prints on SIGUSR1:
//!
//! ```text
//! stats begin
//! stats port=vm0 queue=0 state=running rx_packets=12 ...
//! stats end
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
        let record = self
            .port(port, queue)
            .unwrap_or_else(|| panic!("no stats line for port={port} queue={queue} in:\n{self}"));
        let value = record
            .get(key)
            .unwrap_or_else(|| panic!("port={port} queue={queue} has no {key} in:\n{self}"));
        value.parse().unwrap_or_else(|_| {
            panic!("port={port} queue={queue} {key}={value} is not a number in:\n{self}")
        })
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
