//! The `cross_connects` section: pairs of ports that forward every frame to each other.

use std::collections::{HashMap, HashSet};

use super::fields::{sequence, string};
use super::FirstUse;
use crate::diagnostic::Report;
use crate::manifest::CrossConnect;
use crate::tree::{join_index, Node, Value};

const PATH: &str = "cross_connects";

/// What the section yielded: the pairs when every one is valid, and the ports seen in
/// them either way, so bridges can refuse those ports.
pub(crate) struct CrossConnects {
    pub pairs: Option<Vec<CrossConnect>>,
    /// Each port named by a pair, with the pair that names it (the first, if several do).
    pub connected: HashMap<String, FirstUse>,
}

/// `known` holds the port names defined, or is `None` when the ports section was
/// unreadable; then every name would look unknown and the messages would only be noise.
pub(crate) fn cross_connects(
    node: Option<&Node>,
    known: Option<&HashSet<&str>>,
    report: &mut Report<'_>,
) -> CrossConnects {
    // A port owns its rx queues outright; feeding them to two destinations would need
    // replication, which a cross-connect does not do.
    let mut connected: HashMap<String, FirstUse> = HashMap::new();
    // An empty `cross_connects:` is read as "none", the same as leaving it out.
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return CrossConnects {
            pairs: Some(Vec::new()),
            connected,
        };
    };
    let Some(entries) = sequence(node, PATH, report) else {
        return CrossConnects {
            pairs: None,
            connected,
        };
    };
    let mut pairs = Some(Vec::with_capacity(entries.len()));
    for (i, entry) in entries.iter().enumerate() {
        let pair = cross_connect(entry, &join_index(PATH, i), known, &mut connected, report);
        pairs = pairs.zip(pair).map(|(mut all, one)| {
            all.push(one);
            all
        });
    }
    CrossConnects { pairs, connected }
}

fn cross_connect(
    entry: &Node,
    path: &str,
    known: Option<&HashSet<&str>>,
    connected: &mut HashMap<String, FirstUse>,
    report: &mut Report<'_>,
) -> Option<CrossConnect> {
    let ends = match &entry.value {
        Value::Seq(ends) if ends.len() == 2 => ends,
        Value::Unsupported => return None,
        Value::Seq(ends) => {
            report.error(
                entry.pos,
                path,
                format!(
                    "expected a pair of port names like `[vm0, vm1]`, found a list of {}",
                    match ends.len() {
                        1 => "one".to_owned(),
                        n => n.to_string(),
                    }
                ),
            );
            return None;
        }
        _ => {
            report.error(
                entry.pos,
                path,
                format!(
                    "expected a pair of port names like `[vm0, vm1]`, found {}",
                    entry.describe()
                ),
            );
            return None;
        }
    };
    let texts: Vec<Option<&str>> = ends
        .iter()
        .enumerate()
        .map(|(j, end)| string(end, &join_index(path, j), report))
        .collect();
    let mut names = Vec::with_capacity(2);
    for (j, (end, text)) in ends.iter().zip(&texts).enumerate() {
        let Some(name) = *text else { continue };
        let problem = if known.is_some_and(|known| !known.contains(name)) {
            Some(format!("unknown port `{name}`"))
        } else if j == 1 && texts[0] == Some(name) {
            Some(format!("port `{name}` is connected to itself"))
        } else {
            connected
                .get(name)
                .map(|first| format!("port `{name}` is already cross-connected by {first}"))
        };
        match problem {
            Some(problem) => report.error(end.pos, &join_index(path, j), problem),
            None => names.push(name),
        }
    }
    // Recorded even when the other end is wrong: a port in two pairs is its own mistake.
    for name in &names {
        connected.insert(
            (*name).to_owned(),
            FirstUse {
                path: path.to_owned(),
                pos: entry.pos,
            },
        );
    }
    if names.len() != 2 {
        return None;
    }
    Some(CrossConnect {
        a: names[0].to_owned(),
        b: names[1].to_owned(),
    })
}
