//! Checking any p2plab input file: `read` and `parse` turn a file into its serde structure
//! with every structural problem at once (binary or empty files, tabs, repeated keys, unknown
//! fields, wrong types); a `Checker` then places each problem at the line, column and field
//! path of the YAML it concerns, parses unit values without stopping at the first bad one,
//! and turns serde_yaml_ng's errors into the same one-line diagnostics.

use crate::diag::{Diagnostic, Diagnostics};
use crate::spans::{join, Spans};
use crate::units::UnitError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_yaml_ng::Value;
use std::path::Path;

/// The most structural errors `parse` gathers before it stops.
const MAX_STRUCTURAL: usize = 100;

/// The text of the `kind` file (`topology`, `experiment`) at `path`; a file that is not text
/// (a NUL byte, invalid UTF-8) is refused with that cause.
pub fn read(path: &Path, kind: &str) -> Result<String, Diagnostics> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostics::file(
            path,
            format!("cannot read the {kind} file: {e}"),
            "check the path and its permissions",
        )
    })?;
    let binary = |at: usize, what: &str| {
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        let column = at
            - bytes[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |n| n + 1)
            + 1;
        Diagnostics(vec![Diagnostic {
            file: path.to_path_buf(),
            line,
            column,
            path: String::new(),
            message: format!("this is not a text file ({what}): it cannot be a {kind} file"),
            fix: format!("give the {kind}'s YAML file"),
        }])
    };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(binary(at, "it has a NUL byte"));
    }
    String::from_utf8(bytes.clone())
        .map_err(|e| binary(e.utf8_error().valid_up_to(), "it is not UTF-8"))
}

/// One segment of a serde field path: `groups[2].name` is `groups`, 2, `name`.
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(Segment::Key(key));
        }
        out.extend(pieces.filter_map(|i| i.trim_end_matches(']').parse().ok().map(Segment::Index)));
    }
    out
}

/// Removes the mapping entry at `path` from `value`; false when `path` does not end in a key
/// (removing a list entry would shift the paths of those after it).
fn remove(value: &mut Value, path: &str) -> bool {
    let mut segments = segments(path);
    let Some(Segment::Key(last)) = segments.pop() else {
        return false;
    };
    let mut node = value;
    for s in segments {
        let next = match s {
            Segment::Key(k) => node.get_mut(k),
            Segment::Index(i) => node.get_mut(i),
        };
        let Some(next) = next else { return false };
        node = next;
    }
    node.as_mapping_mut().and_then(|m| m.remove(last)).is_some()
}

/// The text between the first pair of backquotes of `message`.
fn quoted(message: &str) -> Option<&str> {
    message.split('`').nth(1)
}

/// Parses the `kind` file `source` (read from `file`) into `T`, reporting at once every
/// repeated key and every unknown field or wrong type that can be set aside to look further
/// (an entry of a list that has the wrong shape, or a missing field, stops the search).
pub fn parse<T: DeserializeOwned>(file: &Path, source: &str, kind: &str) -> Result<T, Diagnostics> {
    let spans = Spans::of(source);
    let mut errors: Vec<Diagnostic> = spans
        .repeated()
        .iter()
        .map(|r| Diagnostic {
            file: file.to_path_buf(),
            line: r.at.0,
            column: r.at.1,
            path: r.path.clone(),
            message: format!("this key is given twice (first on line {})", r.first_line),
            fix: "keep one of them: the second would replace the first".into(),
        })
        .collect();
    let mut value: Value = match serde_yaml_ng::from_str(source) {
        // Nothing but blank lines, comments or document markers.
        Ok(Value::Null) => {
            return Err(Diagnostics::file(
                file,
                format!("the file is empty: it holds no {kind}"),
                "write the file as the README's format section shows",
            ))
        }
        Ok(v) => v,
        Err(_) if !errors.is_empty() => return Err(Diagnostics(errors)),
        Err(e) => {
            errors.push(syntax_error(file, &e));
            errors.extend(tabs(file, source));
            return Err(Diagnostics(errors));
        }
    };
    let mut text = source.to_string();
    let mut set_aside: Vec<String> = Vec::new();
    while errors.len() < MAX_STRUCTURAL {
        let e = match serde_yaml_ng::from_str::<T>(&text) {
            Ok(t) if errors.is_empty() => return Ok(t),
            Ok(_) => break,
            Err(e) => e,
        };
        let d = syntax_error(file, &e);
        let field = quoted(&d.message).map(|k| join(&d.path, k));
        let unknown = d.message.starts_with("unknown field");
        // A field missing because an earlier error set it aside is no news.
        let consequence = d.message.starts_with("missing field")
            && field.as_ref().is_some_and(|f| set_aside.contains(f));
        let target = match (unknown, field) {
            (true, Some(f)) => f,
            _ => d.path.clone(),
        };
        if !consequence {
            // Past the first, serde's positions are in the text rewritten here: place the
            // error by its field instead.
            let (line, column) = if text == source {
                (d.line, d.column)
            } else {
                spans.find(&target)
            };
            errors.push(Diagnostic { line, column, ..d });
        }
        if !remove(&mut value, &target) {
            break;
        }
        set_aside.push(target);
        text = serde_yaml_ng::to_string(&value).unwrap_or_default();
    }
    errors.sort_by_key(|d| (d.line, d.column));
    errors.dedup();
    Err(Diagnostics(errors))
}

/// A hint for each line indented with a tab, which YAML does not allow.
fn tabs<'a>(file: &'a Path, source: &'a str) -> impl Iterator<Item = Diagnostic> + 'a {
    source.lines().enumerate().filter_map(move |(i, line)| {
        let indent = &line[..line.len() - line.trim_start().len()];
        let column = indent.find('\t')? + 1;
        (!line.trim().is_empty()).then(|| Diagnostic {
            file: file.to_path_buf(),
            line: i + 1,
            column,
            path: String::new(),
            message: "a tab indents this line, and YAML indents with spaces only".into(),
            fix: "replace the tab with spaces".into(),
        })
    })
}

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
    } else if message.starts_with("mapping values are not allowed") {
        "quote a value that holds `: `, e.g. `command: 'echo a: b'`"
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

    /// What `parse` says of a topology `yaml`, one diagnostic a line.
    fn parsed(yaml: &str) -> Vec<String> {
        parse::<crate::raw::RawTopology>(Path::new("t.yaml"), yaml, "topology")
            .map(|_| Vec::new())
            .unwrap_or_else(|d| d.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn structural_errors_come_all_at_once() {
        let yaml = "profiles:\n  p: {up: 1mbit, down: 1mbit, speed: 3}\ngroups:\n  - {name: a, nodes: 2, colour: red}\n  - {name: b, nodes: 2, profile: [p]}\nmtu: big\n";
        assert_eq!(
            parsed(yaml),
            [
                "t.yaml:2:31: profiles.p: unknown field `speed`, expected one of `up`, `down`, `latency`, `loss`, `queue`; remove it or correct its spelling",
                "t.yaml:4:33: groups[0]: unknown field `colour`, expected one of `name`, `nodes`, `profile`, `prefix`; remove it or correct its spelling",
                "t.yaml:5:25: groups[1].profile: invalid type: sequence, expected a string; see the format in the README",
                "t.yaml:6:6: mtu: invalid type: string \"big\", expected u32; see the format in the README",
            ]
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_wherever_it_is() {
        let yaml = "profiles:\n  p: {up: 1mbit, down: 1mbit}\n  p: {up: 2mbit, down: 2mbit}\ngroups:\n  - {name: a, nodes: 2, nodes: 3, profile: p}\n";
        assert_eq!(
            parsed(yaml),
            [
                "t.yaml:3:3: profiles.p: this key is given twice (first on line 2); keep one of them: the second would replace the first",
                "t.yaml:5:25: groups[0].nodes: this key is given twice (first on line 5); keep one of them: the second would replace the first",
            ]
        );
    }

    #[test]
    fn empty_files_and_tabs_get_their_own_hint() {
        let empty = "t.yaml:1:1: the file is empty: it holds no topology; write the file as the README's format section shows";
        assert_eq!(parsed(""), [empty]);
        assert_eq!(parsed("# nothing yet\n\n"), [empty]);
        assert_eq!(parsed("---\n...\n"), [empty]);
        let tabbed = parsed("profiles:\n\tp: {up: 1mbit, down: 1mbit}\ngroups: []\n");
        assert_eq!(
            tabbed.last().map(String::as_str),
            Some("t.yaml:2:1: a tab indents this line, and YAML indents with spaces only; replace the tab with spaces"),
            "{tabbed:?}"
        );
    }

    #[test]
    fn binary_files_are_refused_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let message = |bytes: &[u8]| {
            let path = dir.path().join("t.yaml");
            std::fs::write(&path, bytes).unwrap();
            let d = read(&path, "topology").unwrap_err();
            let d = &d.0[0];
            (d.line, d.column, d.message.clone())
        };
        assert_eq!(
            message(b"groups: []\nab\0cd"),
            (
                2,
                3,
                "this is not a text file (it has a NUL byte): it cannot be a topology file".into()
            )
        );
        assert_eq!(
            message(b"\x7fELF\xff\xfe"),
            (
                1,
                5,
                "this is not a text file (it is not UTF-8): it cannot be a topology file".into()
            )
        );
    }
}
