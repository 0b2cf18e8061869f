//! Diagnostics: every problem found in a topology, placed at a file, line, column and
//! field path, with what would fix it. Validation gathers all of them before failing.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path such as `groups[2].profile`; empty for the whole file.
    pub path: String,
    pub message: String,
    /// What the user should change.
    pub fix: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

/// All problems found in one load, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// A single problem that concerns a whole file (unreadable, not YAML, ...).
    pub fn file(file: &Path, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Diagnostics(vec![Diagnostic {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            path: String::new(),
            message: message.into(),
            fix: fix.into(),
        }])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diagnostic `bad` in `t.yaml` at column 3 of `line`.
    fn at(line: usize, path: &str, fix: &str) -> Diagnostic {
        Diagnostic {
            file: PathBuf::from("t.yaml"),
            line,
            column: 3,
            path: path.into(),
            message: "bad".into(),
            fix: fix.into(),
        }
    }

    #[test]
    fn a_diagnostic_leaves_out_an_empty_path_and_fix() {
        assert_eq!(
            at(2, "groups[0]", "fix it").to_string(),
            "t.yaml:2:3: groups[0]: bad; fix it"
        );
        assert_eq!(at(2, "", "").to_string(), "t.yaml:2:3: bad");
    }

    #[test]
    fn diagnostics_print_one_per_line() {
        let all = Diagnostics(vec![at(1, "a", "x"), at(4, "", "y")]);
        assert_eq!(all.to_string(), "t.yaml:1:3: a: bad; x\nt.yaml:4:3: bad; y");
        assert_eq!((all.len(), all.is_empty()), (2, false));
        assert_eq!(all.iter().map(|d| d.line).collect::<Vec<_>>(), [1, 4]);
        assert!(Diagnostics::default().is_empty());
        let file = Diagnostics::file(Path::new("x.yaml"), "unreadable", "check it");
        assert_eq!(file.to_string(), "x.yaml:1:1: unreadable; check it");
    }
}
