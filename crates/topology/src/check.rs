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
