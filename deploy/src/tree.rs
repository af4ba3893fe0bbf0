//! A YAML document as a tree in which every node remembers where it starts.
//!
//! serde_yaml reports only the first problem and drops positions once a value is
//! deserialized, so the manifest is first read into this tree from yaml-rust2's event
//! stream (which carries a position per event) and validated from there.

use std::str::Chars;

use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Event;

use crate::diagnostic::{Pos, Report};
use crate::scalar::Scalar;

/// The manifest schema is six levels deep (`bridges[0].members[0].trunk[0]`); anything
/// much deeper is a mistake or an attack, and the builder recurses, so refuse it before
/// the stack suffers.
const MAX_DEPTH: usize = 32;

#[derive(Debug)]
pub(crate) struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug)]
pub(crate) enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
    /// Stands in for an alias, which was already reported; checks skip it so that one
    /// mistake does not produce a second, confusing diagnostic.
    Unsupported,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub key: Node,
    pub value: Node,
}

impl Node {
    /// How the node reads to a user, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.value {
            Value::Scalar(s) => s.describe(),
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
            Value::Unsupported => "an alias",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.is_null())
    }
}

pub(crate) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Reads `text` into a tree. Returns `None` when the text cannot be read as a single
/// YAML document; the reason is already in `report`.
pub(crate) fn build(text: &str, report: &mut Report<'_>) -> Option<Node> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        report,
    };
    builder.document().ok()
}

/// The problem was reported already; parsing cannot go on past it.
struct Fatal;

struct Builder<'t, 'r, 'f> {
    parser: Parser<Chars<'t>>,
    report: &'r mut Report<'f>,
}

fn pos_of(mark: &Marker) -> Pos {
    // yaml-rust2 counts lines from 1 but columns from 0.
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

impl Builder<'_, '_, '_> {
    fn next(&mut self, path: &str) -> Result<(Event, Pos), Fatal> {
        match self.parser.next_token() {
            Ok((event, mark)) => Ok((event, pos_of(&mark))),
            Err(e) => {
                let message = format!("YAML syntax error: {}", e.info());
                self.report.error(pos_of(e.marker()), path, message);
                Err(Fatal)
            }
        }
    }

    fn document(&mut self) -> Result<Node, Fatal> {
        let (event, pos) = self.next("")?;
        if event != Event::StreamStart {
            return self.unexpected(pos, "", &event);
        }
        let (event, pos) = self.next("")?;
        let root = match event {
            Event::StreamEnd => {
                // A file with nothing but comments; point at its start rather than its end.
                let start = Pos { line: 1, column: 1 };
                return Ok(Node {
                    pos: start,
                    value: Value::Scalar(Scalar::null()),
                });
            }
            Event::DocumentStart => {
                let (event, pos) = self.next("")?;
                self.node(event, pos, "", 0)?
            }
            other => return self.unexpected(pos, "", &other),
        };
        loop {
            let (event, pos) = self.next("")?;
            match event {
                Event::DocumentEnd => continue,
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart => {
                    self.report.error(
                        pos,
                        "",
                        "a manifest is a single YAML document; found a second one",
                    );
                    return Err(Fatal);
                }
                other => return self.unexpected(pos, "", &other),
            }
        }
    }

    fn unexpected<T>(&mut self, pos: Pos, path: &str, event: &Event) -> Result<T, Fatal> {
        // The parser promises well-formed event sequences; if that ever breaks, say so
        // instead of panicking on user input.
        self.report.error(
            pos,
            path,
            format!("YAML parser produced an unexpected {event:?}"),
        );
        Err(Fatal)
    }

    fn node(&mut self, event: Event, pos: Pos, path: &str, depth: usize) -> Result<Node, Fatal> {
        if depth > MAX_DEPTH {
            self.report.error(
                pos,
                path,
                format!("nesting is deeper than {MAX_DEPTH} levels"),
            );
            return Err(Fatal);
        }
        let value = match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.reject_extras(pos, path, anchor, tag.is_some());
                Value::Scalar(Scalar::new(text, style == TScalarStyle::Plain))
            }
            Event::Alias(_) => {
                self.report
                    .error(pos, path, "YAML aliases (*name) are not supported");
                Value::Unsupported
            }
            Event::SequenceStart(anchor, tag) => {
                self.reject_extras(pos, path, anchor, tag.is_some());
                Value::Seq(self.sequence(path, depth)?)
            }
            Event::MappingStart(anchor, tag) => {
                self.reject_extras(pos, path, anchor, tag.is_some());
                let entries = self.mapping(path, depth)?;
                // For block mappings yaml-rust2 marks the mapping after its first key, so
                // the first key is the better answer to "where does this mapping start".
                let pos = entries.first().map_or(pos, |e| pos.min(e.key.pos));
                return Ok(Node {
                    pos,
                    value: Value::Map(entries),
                });
            }
            other => return self.unexpected(pos, path, &other),
        };
        Ok(Node { pos, value })
    }

    fn reject_extras(&mut self, pos: Pos, path: &str, anchor: usize, tagged: bool) {
        if anchor != 0 {
            self.report
                .error(pos, path, "YAML anchors (&name) are not supported");
        }
        if tagged {
            self.report
                .error(pos, path, "YAML tags (!tag) are not supported");
        }
    }

    fn sequence(&mut self, path: &str, depth: usize) -> Result<Vec<Node>, Fatal> {
        let mut items = Vec::new();
        loop {
            let item_path = join_index(path, items.len());
            let (event, pos) = self.next(&item_path)?;
            if event == Event::SequenceEnd {
                return Ok(items);
            }
            items.push(self.node(event, pos, &item_path, depth + 1)?);
        }
    }

    fn mapping(&mut self, path: &str, depth: usize) -> Result<Vec<Entry>, Fatal> {
        let mut entries = Vec::new();
        loop {
            let (event, pos) = self.next(path)?;
            if event == Event::MappingEnd {
                return Ok(entries);
            }
            let key = self.node(event, pos, path, depth + 1)?;
            let value_path = match &key.value {
                Value::Scalar(s) => join_key(path, &s.text),
                _ => join_key(path, "?"),
            };
            let (event, pos) = self.next(&value_path)?;
            let mut value = self.node(event, pos, &value_path, depth + 1)?;
            if matches!(&value.value, Value::Scalar(s) if s.is_absent()) {
                // `key:` with nothing after it is marked at the next token, often on a
                // later line; the key is where the user needs to look.
                value.pos = key.pos;
            }
            entries.push(Entry { key, value });
        }
    }
}
