//! The `workers` section: how many forwarding threads, where they run, how they poll.

use std::collections::HashMap;

use super::fields::{integer, keyword, mapping, sequence};
use crate::diagnostic::Report;
use crate::manifest::{PollMode, Workers};
use crate::tree::{join_index, Node};

const KEYS: &[&str] = &["count", "cpus", "poll"];
const MAX_WORKERS: u64 = 64;
/// Matches the kernel's default `CONFIG_NR_CPUS` ceiling for common distributions;
/// a larger number is almost certainly a typo.
const MAX_CPU: u64 = 1023;
const PATH: &str = "workers";

pub(crate) fn workers(node: Option<&Node>, report: &mut Report<'_>) -> Option<Workers> {
    // `workers:` left empty reads as "no preferences", the same as leaving it out.
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return Some(Workers::default());
    };
    let fields = mapping(node, PATH, report)?;
    fields.reject_unknown(KEYS, report);

    let count_node = fields.get("count");
    let count = match count_node {
        // Bounded by MAX_WORKERS, so the cast cannot truncate.
        Some(n) => integer(n, &fields.path("count"), 1..=MAX_WORKERS, report).map(|c| c as usize),
        None => Some(1),
    };
    let cpus = match fields.get("cpus") {
        None => Some(None),
        Some(n) => {
            // Against the default when count was left out, and skipped when count is
            // itself wrong: a mismatch with a bad number tells the user nothing.
            let expected = match count_node {
                None => Some((1, " (the default)")),
                Some(_) => count.map(|c| (c, "")),
            };
            cpu_list(n, &fields.path("cpus"), expected, report).map(Some)
        }
    };
    let poll = match fields.get("poll") {
        Some(n) => keyword(
            n,
            &fields.path("poll"),
            "poll mode",
            &[("adaptive", PollMode::Adaptive), ("busy", PollMode::Busy)],
            report,
        ),
        None => Some(PollMode::Adaptive),
    };

    Some(Workers {
        count: count?,
        cpus: cpus?,
        poll: poll?,
    })
}

fn cpu_list(
    node: &Node,
    path: &str,
    expected: Option<(usize, &str)>,
    report: &mut Report<'_>,
) -> Option<Vec<usize>> {
    let items = sequence(node, path, report)?;
    let mut ok = true;
    if let Some((count, source)) = expected.filter(|(count, _)| *count != items.len()) {
        report.error(
            node.pos,
            path,
            format!(
                "lists {} CPUs but workers.count is {count}{source}; give one CPU per worker",
                items.len()
            ),
        );
        ok = false;
    }
    let mut first_index: HashMap<u64, usize> = HashMap::new();
    let mut cpus = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = join_index(path, i);
        let Some(cpu) = integer(item, &item_path, 0..=MAX_CPU, report) else {
            ok = false;
            continue;
        };
        if let Some(first) = first_index.get(&cpu) {
            // Two workers on one CPU would take turns and halve each other's throughput.
            report.error(
                item.pos,
                &item_path,
                format!(
                    "CPU {cpu} is listed twice (also {})",
                    join_index(path, *first)
                ),
            );
            ok = false;
            continue;
        }
        first_index.insert(cpu, i);
        // Bounded by MAX_CPU, so the cast cannot truncate.
        cpus.push(cpu as usize);
    }
    ok.then_some(cpus)
}
