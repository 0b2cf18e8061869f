//! A fixed-size line buffer for the shim's log and error lines: formatting into it never
//! allocates, and overlong lines are cut rather than failing.

use std::fmt;

const LINE_MAX: usize = 256;

/// One line of text on the stack.
pub struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    pub fn new() -> Self {
        Self {
            buf: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Formats `args` after the `p2plab-shim[pid]: ` prefix and ends the line.
    pub fn format(pid: i32, args: fmt::Arguments<'_>) -> Self {
        let mut line = Self::new();
        // Writing into a `Line` never fails: it truncates instead.
        let _ = fmt::write(&mut line, format_args!("p2plab-shim[{pid}]: {args}"));
        line.end();
        line
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Ends the line with a newline, replacing the last byte when full.
    fn end(&mut self) {
        self.len = self.len.min(LINE_MAX - 1);
        if let Some(b) = self.buf.get_mut(self.len) {
            *b = b'\n';
            self.len += 1;
        }
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE_MAX.saturating_sub(self.len);
        let take = s.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            s.as_bytes().get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_one_line() {
        let line = Line::format(
            42,
            format_args!("bind {} -> {}", "0.0.0.0:80", "10.0.3.7:80"),
        );
        assert_eq!(
            line.as_bytes(),
            b"p2plab-shim[42]: bind 0.0.0.0:80 -> 10.0.3.7:80\n"
        );
    }

    #[test]
    fn long_lines_are_cut_and_still_end() {
        let long = "x".repeat(1000);
        let line = Line::format(1, format_args!("{long}"));
        assert_eq!(line.as_bytes().len(), LINE_MAX);
        assert_eq!(line.as_bytes().last(), Some(&b'\n'));
    }
}
