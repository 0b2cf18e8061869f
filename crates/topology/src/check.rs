//! Checking any p2plab input file: a `Checker` places each problem at the line, column and
//! field path of the YAML it concerns, parses unit values without stopping at the first bad
//! one, and turns serde_yaml_ng's errors into the same one-line diagnostics.

use crate::diag::{Diagnostic, Diagnostics};
use crate::spans::Spans;
use crate::units::UnitError;
use serde::{Deserialize, Deserializer};
use std::path::Path;

/// A scalar kept as text, whether YAML typed it as a string or a number (`loss: 0`).
#[derive(Debug, Clone, PartialEq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            S(String),
            I(i64),
            F(f64),
        }
        Ok(Text(
            match Scalar::deserialize(d).map_err(|_| {
                serde::de::Error::custom("expected a value such as `2mbit`, `30ms` or `1%`")
            })? {
                Scalar::S(s) => s,
                Scalar::I(i) => i.to_string(),
                Scalar::F(f) => f.to_string(),
            },
        ))
    }
}

/// Gathers the diagnostics of one input file.
pub struct Checker<'a> {
    file: &'a Path,
    spans: Spans,
    /// Everything found so far.
    pub errors: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    /// A checker for `source`, the text of `file`.
    pub fn new(file: &'a Path, source: &str) -> Self {
        Checker {
            file,
            spans: Spans::of(source),
            errors: Vec::new(),
        }
    }

    /// Records a problem at the field `path`.
    pub fn error(&mut self, path: &str, message: impl Into<String>, fix: impl Into<String>) {
        let (line, column) = self.spans.find(path);
        self.errors.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            path: path.to_string(),
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// Parses an optional unit value, reporting a failure at `path`.
    pub fn value<T>(
        &mut self,
        path: &str,
        text: Option<&Text>,
        parse: fn(&str) -> Result<T, UnitError>,
        default: T,
    ) -> T {
        match text.map(|t| parse(&t.0)) {
            None => default,
            Some(Ok(v)) => v,
            Some(Err((message, fix))) => {
                self.error(path, message, fix);
                default
            }
        }
    }

    /// Everything found so far, in file order (this file first, then files it refers to),
    /// or `None` when all is well.
    pub fn take(&mut self) -> Option<Diagnostics> {
        if self.errors.is_empty() {
            return None;
        }
        let mut found = std::mem::take(&mut self.errors);
        found.sort_by_key(|d| (d.file != self.file, d.line, d.column));
        Some(Diagnostics(found))
    }

    /// Checks that `name` is a plain name (letters, digits, `-`, `_`, `.`).
    pub fn name(&mut self, path: &str, kind: &str, name: &str) {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            self.error(
                path,
                format!("{kind} name `{name}` is not a plain name"),
                "use only letters, digits, `-`, `_` and `.`",
            );
        }
    }
}

/// Lists known names for a fix message, shortened when there are many.
pub fn known(names: impl Iterator<Item = String>) -> String {
    let names: Vec<String> = names.collect();
    let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
    let more = if names.len() > 8 { ", ..." } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// Turns a serde_yaml_ng error into a diagnostic: its path, message and position.
pub fn syntax_error(file: &Path, err: &serde_yaml_ng::Error) -> Diagnostic {
    let text = err.to_string();
    let text = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    let (path, message) = match text.split_once(": ") {
        Some((p, m)) if !p.contains(' ') => (p.to_string(), m.to_string()),
        _ => (String::new(), text.to_string()),
    };
    let (line, column) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
    let fix = if message.starts_with("unknown field") {
        "remove it or correct its spelling"
    } else if message.starts_with("missing field") {
        "add it"
    } else {
        "see the format in the README"
    };
    Diagnostic {
        file: file.to_path_buf(),
        line,
        column,
        path,
        message,
        fix: fix.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checker's diagnostics as printed, taken out of it.
    fn messages(c: &mut Checker<'_>) -> Vec<String> {
        c.take()
            .map(|d| d.iter().map(|d| d.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn names_are_letters_digits_dashes_underscores_and_dots() {
        let mut c = Checker::new(Path::new("t.yaml"), "a: 1\n");
        for good in ["seed-1", "east_2.b", "Z9"] {
            c.name("a", "group", good);
        }
        assert_eq!(c.take(), None);
        for bad in ["", "a b", "é"] {
            c.name("a", "group", bad);
        }
        assert_eq!(
            messages(&mut c),
            [
                "t.yaml:1:4: a: group name `` is not a plain name; use only letters, digits, `-`, `_` and `.`",
                "t.yaml:1:4: a: group name `a b` is not a plain name; use only letters, digits, `-`, `_` and `.`",
                "t.yaml:1:4: a: group name `é` is not a plain name; use only letters, digits, `-`, `_` and `.`",
            ]
        );
    }

    #[test]
    fn problems_in_this_file_come_first_then_by_position() {
        let mut c = Checker::new(Path::new("t.yaml"), "a: 1\nb: 2\n");
        c.error("b", "second", "");
        c.errors.push(Diagnostic {
            file: "m.txt".into(),
            line: 1,
            column: 1,
            path: String::new(),
            message: "elsewhere".into(),
            fix: String::new(),
        });
        c.error("a", "first", "");
        assert_eq!(
            messages(&mut c),
            [
                "t.yaml:1:4: a: first",
                "t.yaml:2:4: b: second",
                "m.txt:1:1: elsewhere"
            ]
        );
        assert_eq!(c.take(), None, "taking empties the checker");
    }

    #[test]
    fn values_fall_back_to_their_default_after_an_error() {
        let mut c = Checker::new(Path::new("t.yaml"), "up: 2mb\n");
        let bad = Text("2mb".into());
        let good = Text("3kbit".into());
        let parse = crate::units::parse_rate;
        assert_eq!(c.value("up", Some(&good), parse, 7), 3000);
        assert_eq!(c.value("up", None, parse, 7), 7);
        assert_eq!(c.value("up", Some(&bad), parse, 7), 7);
        assert_eq!(c.errors.len(), 1);
    }

    #[test]
    fn numbers_are_kept_as_text() {
        let text = |yaml: &str| serde_yaml_ng::from_str::<Text>(yaml).map(|t| t.0);
        assert_eq!(text("0").unwrap(), "0");
        assert_eq!(text("2.5").unwrap(), "2.5");
        assert_eq!(text("2mbit").unwrap(), "2mbit");
        assert!(text("[1]")
            .unwrap_err()
            .to_string()
            .starts_with("expected a value such as `2mbit`, `30ms` or `1%`"));
    }

    #[test]
    fn known_names_are_shortened_past_eight() {
        let names = |n: usize| (1..=n).map(|i| format!("g{i}"));
        assert_eq!(known(names(8)), "g1, g2, g3, g4, g5, g6, g7, g8");
        assert_eq!(known(names(9)), "g1, g2, g3, g4, g5, g6, g7, g8, ...");
        assert_eq!(known(names(0)), "");
    }

    #[test]
    fn syntax_errors_keep_their_field_path_and_get_a_fix() {
        let error = |yaml: &str| {
            let e = serde_yaml_ng::from_str::<crate::raw::RawTopology>(yaml).unwrap_err();
            syntax_error(Path::new("t.yaml"), &e).to_string()
        };
        assert_eq!(
            error("groups: []\n"),
            "t.yaml:1:1: missing field `profiles`; add it"
        );
        assert_eq!(
            error("profiles: {}\ngroups: 3\n"),
            "t.yaml:2:9: groups: invalid type: integer `3`, expected a sequence; see the format in the README"
        );
        assert_eq!(
            error("just text\n"),
            "t.yaml:1:1: invalid type: string \"just text\", expected struct RawTopology; see the format in the README"
        );
        // Words before the first `: ` are part of the message, not a field path.
        let e = serde_yaml_ng::from_str::<crate::raw::RawTopology>("just text\n").unwrap_err();
        assert_eq!(syntax_error(Path::new("t.yaml"), &e).path, "");
    }
}
