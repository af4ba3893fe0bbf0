//! What `expect` waits for: a plain substring or a regular expression.

use regex::Regex;

pub trait Pattern {
    /// Byte range of the first match in `text`.
    fn find_in(&self, text: &str) -> Option<(usize, usize)>;
    fn describe(&self) -> String;
}

impl Pattern for &str {
    fn find_in(&self, text: &str) -> Option<(usize, usize)> {
        text.find(*self).map(|i| (i, i + self.len()))
    }
    fn describe(&self) -> String {
        format!("{self:?}")
    }
}

impl Pattern for String {
    fn find_in(&self, text: &str) -> Option<(usize, usize)> {
        self.as_str().find_in(text)
    }
    fn describe(&self) -> String {
        self.as_str().describe()
    }
}

impl Pattern for &Regex {
    fn find_in(&self, text: &str) -> Option<(usize, usize)> {
        self.find(text).map(|m| (m.start(), m.end()))
    }
    fn describe(&self) -> String {
        format!("/{}/", self.as_str())
    }
}

impl Pattern for Regex {
    fn find_in(&self, text: &str) -> Option<(usize, usize)> {
        (&self).find_in(text)
    }
    fn describe(&self) -> String {
        (&self).describe()
    }
}
