//! Where each field of a YAML document sits: a map from field paths (`groups[2].profile`)
//! to line and column, built from yaml-rust2's marked events. serde gives values but no
//! positions, so the validator asks this map where to point its messages. The same walk
//! finds keys repeated in a mapping, which serde would let the last one win silently.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Positions (1-based line, 1-based column) of the values in one document.
#[derive(Debug, Default)]
pub struct Spans {
    at: HashMap<String, (usize, usize)>,
    repeated: Vec<Repeated>,
}

/// A key given a second time in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated {
    /// Field path of the repeated key (`profiles.p`).
    pub path: String,
    /// Where it is repeated.
    pub at: (usize, usize),
    /// Line of its first occurrence.
    pub first_line: usize,
}

enum Frame {
    /// `placed` turns true once the mapping's own position is set from its first key
    /// (yaml-rust2 marks a block mapping's start after that key).
    Map {
        path: String,
        key: Option<String>,
        placed: bool,
        /// The keys seen so far and the line of each.
        seen: HashMap<String, usize>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Collector {
    stack: Vec<Frame>,
    spans: Spans,
}

/// The path of field `key` of the mapping at `parent`.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Collector {
    /// The path the next value takes, or `None` when the next scalar is a mapping key.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map { path, key, .. }) => Some(join(path, &key.take().unwrap_or_default())),
            Some(Frame::Seq { path, next }) => {
                *next += 1;
                Some(format!("{path}[{}]", *next - 1))
            }
        }
    }

    /// Values take their own position; a key only stands in until its value arrives.
    fn record(&mut self, path: &str, mark: Marker, is_key: bool) {
        let at = (mark.line(), mark.col() + 1);
        if is_key {
            self.spans.at.entry(path.to_string()).or_insert(at);
        } else {
            self.spans.at.insert(path.to_string(), at);
        }
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => match self.next_value_path() {
                Some(path) => self.record(&path, mark, false),
                None => {
                    if let Some(Frame::Map {
                        path,
                        key,
                        placed,
                        seen,
                    }) = self.stack.last_mut()
                    {
                        let at = join(path, &text);
                        if let Some(&first_line) = seen.get(&text) {
                            self.spans.repeated.push(Repeated {
                                path: at.clone(),
                                at: (mark.line(), mark.col() + 1),
                                first_line,
                            });
                        } else {
                            seen.insert(text.clone(), mark.line());
                        }
                        *key = Some(text);
                        let first = !std::mem::replace(placed, true);
                        let own = path.clone();
                        if first {
                            self.record(&own, mark, false);
                        }
                        self.record(&at, mark, true);
                    }
                }
            },
            Event::Alias(_) => {
                self.next_value_path();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.next_value_path().unwrap_or_default();
                self.record(&path, mark, true);
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map {
                        path,
                        key: None,
                        placed: false,
                        seen: HashMap::new(),
                    }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Spans {
    /// Collects positions; a document yaml-rust2 cannot scan gives an empty map (serde then
    /// reports the syntax error with its own position).
    pub fn of(source: &str) -> Spans {
        let mut collector = Collector::default();
        let _ = Parser::new_from_str(source).load(&mut collector, false);
        collector.spans
    }

    /// The keys repeated in a mapping, in file order.
    pub fn repeated(&self) -> &[Repeated] {
        &self.repeated
    }

    /// Position of `path`, or of its nearest recorded ancestor, or the start of the file.
    pub fn find(&self, path: &str) -> (usize, usize) {
        let mut path = path;
        loop {
            if let Some(&at) = self.at.get(path) {
                return at;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.at.get("").copied().unwrap_or((1, 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_fields() {
        let src = "profiles:\n  fast:\n    up: 2mbit\ngroups:\n  - name: a\n    nodes: 3\n  - name: b\n    profile: fast\n";
        let spans = Spans::of(src);
        assert_eq!(spans.find("profiles.fast.up"), (3, 9));
        assert_eq!(spans.find("groups[1].profile"), (8, 14));
        assert_eq!(spans.find("groups[0].nodes"), (6, 12));
        // a missing field points at its parent
        assert_eq!(spans.find("groups[1].prefix"), (7, 5));
    }

    #[test]
    fn repeated_keys_are_found_in_every_mapping() {
        let src = "profiles:\n  p: {up: 1, up: 2}\n  p: {}\ngroups: []\n";
        let spans = Spans::of(src);
        let found: Vec<_> = spans
            .repeated()
            .iter()
            .map(|r| (r.path.as_str(), r.at, r.first_line))
            .collect();
        assert_eq!(
            found,
            [("profiles.p.up", (2, 14), 2), ("profiles.p", (3, 3), 2)]
        );
    }

    #[test]
    fn an_alias_takes_its_place_like_any_value() {
        let src = "a: &x 1\nb: *x\nc: 2\nd:\n  - *x\n  - 3\n";
        let spans = Spans::of(src);
        assert_eq!(spans.find("c"), (3, 4));
        assert_eq!(spans.find("d[1]"), (6, 5));
    }
}
