//! Typed reads of tree nodes, each reporting what it finds wrong and yielding `None`
//! so the caller can carry on and find the next problem.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use crate::diagnostic::{Pos, Report};
use crate::scalar::ScalarKind;
use crate::suggest;
use crate::tree::{join_key, Node, Value};

/// A mapping whose keys have been checked: all are names and none repeats.
pub(crate) struct Fields<'n> {
    pos: Pos,
    path: String,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

pub(crate) fn mapping<'n>(
    node: &'n Node,
    path: &str,
    report: &mut Report<'_>,
) -> Option<Fields<'n>> {
    let Value::Map(entries) = &node.value else {
        type_error(node, path, "a mapping", report);
        return None;
    };
    let mut first_seen: HashMap<&str, Pos> = HashMap::new();
    let mut kept = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Scalar(key) = &entry.key.value else {
            if !matches!(entry.key.value, Value::Unsupported) {
                report.error(
                    entry.key.pos,
                    path,
                    format!("mapping keys must be names, found {}", entry.key.describe()),
                );
            }
            continue;
        };
        let name = key.text.as_str();
        if let Some(first) = first_seen.get(name) {
            report.error(
                entry.key.pos,
                &join_key(path, name),
                format!(
                    "duplicate key `{name}`; it is first given at line {}",
                    first.line
                ),
            );
            continue;
        }
        first_seen.insert(name, entry.key.pos);
        kept.push((name, &entry.key, &entry.value));
    }
    Some(Fields {
        pos: node.pos,
        path: path.to_owned(),
        entries: kept,
    })
}

impl<'n> Fields<'n> {
    pub fn path(&self, key: &str) -> String {
        join_key(&self.path, key)
    }

    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _, _)| *name == key)
            .map(|(_, _, value)| *value)
    }

    /// Like [`Fields::get`], but a missing key is an error, placed at the mapping
    /// because there is no node for the key to point at.
    pub fn require(&self, key: &str, report: &mut Report<'_>) -> Option<&'n Node> {
        let found = self.get(key);
        if found.is_none() {
            report.error(
                self.pos,
                &self.path(key),
                format!("missing required field `{key}`"),
            );
        }
        found
    }

    pub fn reject_unknown(&self, allowed: &[&str], report: &mut Report<'_>) {
        for (name, key, _) in &self.entries {
            if allowed.contains(name) {
                continue;
            }
            let hint = match suggest::closest(name, allowed) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("expected one of {}", quoted_list(allowed)),
            };
            report.error(
                key.pos,
                &self.path(name),
                format!("unknown key `{name}`; {hint}"),
            );
        }
    }
}

pub(crate) fn string<'n>(node: &'n Node, path: &str, report: &mut Report<'_>) -> Option<&'n str> {
    match &node.value {
        Value::Scalar(s) if s.kind() == ScalarKind::Str => Some(s.text.as_str()),
        _ => {
            type_error(node, path, "a string", report);
            None
        }
    }
}

pub(crate) fn integer(
    node: &Node,
    path: &str,
    range: RangeInclusive<u64>,
    report: &mut Report<'_>,
) -> Option<u64> {
    let Value::Scalar(s) = &node.value else {
        type_error(node, path, "an integer", report);
        return None;
    };
    if s.kind() != ScalarKind::Int {
        type_error(node, path, "an integer", report);
        return None;
    }
    // Digits too many for u64 are simply out of range; so are negative numbers.
    let value = s
        .text
        .strip_prefix('+')
        .unwrap_or(&s.text)
        .parse::<u64>()
        .ok();
    match value {
        Some(v) if range.contains(&v) => Some(v),
        _ => {
            report.error(
                node.pos,
                path,
                format!(
                    "{} is out of range; expected {} to {}",
                    s.text,
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }
}

pub(crate) fn sequence<'n>(
    node: &'n Node,
    path: &str,
    report: &mut Report<'_>,
) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        _ => {
            type_error(node, path, "a sequence", report);
            None
        }
    }
}

/// A string that must be one of a fixed set of words, such as a poll mode.
pub(crate) fn keyword<T: Copy>(
    node: &Node,
    path: &str,
    what: &str,
    choices: &[(&str, T)],
    report: &mut Report<'_>,
) -> Option<T> {
    let text = string(node, path, report)?;
    if let Some((_, value)) = choices.iter().find(|(word, _)| *word == text) {
        return Some(*value);
    }
    let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
    let hint = match suggest::closest(text, &words) {
        Some(near) => format!("did you mean `{near}`?"),
        None => format!("expected {}", quoted_list(&words)),
    };
    report.error(node.pos, path, format!("unknown {what} `{text}`; {hint}"));
    None
}

pub(crate) fn type_error(node: &Node, path: &str, expected: &str, report: &mut Report<'_>) {
    let message = match &node.value {
        // The alias itself was reported when the tree was built.
        Value::Unsupported => return,
        Value::Scalar(s) if s.is_absent() => format!("expected {expected}, but no value is given"),
        Value::Scalar(s) if !s.plain && expected == "an integer" => format!(
            "expected an integer, found the quoted string \"{}\"; integers are written without quotes",
            s.text
        ),
        Value::Scalar(s) if s.kind() != ScalarKind::Null => {
            format!("expected {expected}, found {} `{}`", node.describe(), s.text)
        }
        _ => format!("expected {expected}, found {}", node.describe()),
    };
    report.error(node.pos, path, message);
}

fn quoted_list(words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}
