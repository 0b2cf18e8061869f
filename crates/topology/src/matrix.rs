//! Group-to-group delays read from a file: a whitespace matrix in milliseconds (row `i`,
//! column `j` is the one-way delay from group `i` to group `j`, groups in file order), or
//! King/Meridian style `i j latency_us` triples (0-based group indices, symmetric unless
//! both directions are given). Blank lines and `#` comments are skipped.

use crate::diag::Diagnostic;
use crate::raw::MatrixFormat;
use std::path::Path;

/// One-way delays read from a file, as `(from, to, microseconds)`.
pub type Entries = Vec<(usize, usize, u64)>;

struct Reader<'a> {
    file: &'a Path,
    errors: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, line: usize, message: String, fix: &str) {
        self.errors.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column: 1,
            path: String::new(),
            message,
            fix: fix.to_string(),
        });
    }
}

fn content_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Reads `text` (the contents of `file`) for a topology of `groups` groups.
pub fn parse(
    file: &Path,
    text: &str,
    format: MatrixFormat,
    groups: usize,
) -> Result<Entries, Vec<Diagnostic>> {
    let mut r = Reader {
        file,
        errors: Vec::new(),
    };
    let entries = match format {
        MatrixFormat::Matrix => parse_matrix(&mut r, text, groups),
        MatrixFormat::Triples => parse_triples(&mut r, text, groups),
    };
    if r.errors.is_empty() {
        Ok(entries)
    } else {
        Err(r.errors)
    }
}

fn parse_matrix(r: &mut Reader<'_>, text: &str, n: usize) -> Entries {
    let mut entries = Vec::with_capacity(n * n);
    let mut rows = 0;
    let mut last_line = 0;
    for (line, content) in content_lines(text) {
        last_line = line;
        let row = rows;
        rows += 1;
        if row >= n {
            continue;
        }
        let mut columns = 0;
        for (col, field) in content.split_whitespace().enumerate() {
            columns += 1;
            match field.parse::<f64>() {
                Ok(ms) if ms >= 0.0 && ms.is_finite() => {
                    if col < n {
                        entries.push((row, col, (ms * 1000.0).round() as u64));
                    }
                }
                _ => r.error(
                    line,
                    format!(
                        "value {} of row {} is `{field}`, not a delay in ms",
                        col + 1,
                        row + 1
                    ),
                    "write non-negative numbers of milliseconds separated by spaces",
                ),
            }
        }
        if columns != n {
            r.error(
                line,
                format!(
                    "row {} has {columns} values, expected {n} (one per group)",
                    row + 1
                ),
                "give one column per group, in the order the groups are declared",
            );
        }
    }
    if rows != n {
        r.error(
            last_line.max(1),
            format!("matrix has {rows} rows, expected {n} (one per group)"),
            "give one row per group, in the order the groups are declared",
        );
    }
    entries
}

fn parse_triples(r: &mut Reader<'_>, text: &str, n: usize) -> Entries {
    let mut entries = Vec::new();
    for (line, content) in content_lines(text) {
        let fields: Vec<&str> = content.split_whitespace().collect();
        let parsed = match fields.as_slice() {
            [i, j, us] => i.parse::<usize>().ok().zip(j.parse::<usize>().ok()).zip(
                us.parse::<f64>()
                    .ok()
                    .filter(|v| *v >= 0.0 && v.is_finite()),
            ),
            _ => None,
        };
        match parsed {
            Some(((i, j), _)) if i >= n || j >= n => r.error(
                line,
                format!(
                    "group index {} is out of range: the topology has {n} groups",
                    i.max(j)
                ),
                "use 0-based indices of the groups in declaration order",
            ),
            Some(((i, j), us)) => entries.push((i, j, us.round() as u64)),
            None => r.error(
                line,
                format!("`{content}` is not `i j latency_us`"),
                "write two 0-based group indices and a non-negative delay in microseconds",
            ),
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_matrix_in_ms() {
        let e = parse(
            Path::new("m"),
            "# delays\n0 10\n12.5 0\n",
            MatrixFormat::Matrix,
            2,
        )
        .unwrap();
        assert_eq!(
            e,
            vec![(0, 0, 0), (0, 1, 10_000), (1, 0, 12_500), (1, 1, 0)]
        );
    }

    #[test]
    fn a_matrix_of_the_wrong_shape_is_refused() {
        let err = parse(Path::new("m.txt"), "0 1 2\n1 0\n", MatrixFormat::Matrix, 3).unwrap_err();
        let text: Vec<String> = err.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            [
                "m.txt:2:1: row 2 has 2 values, expected 3 (one per group); give one column per group, in the order the groups are declared",
                "m.txt:2:1: matrix has 2 rows, expected 3 (one per group); give one row per group, in the order the groups are declared",
            ]
        );
    }

    #[test]
    fn negative_and_infinite_delays_are_refused() {
        let lines = |format, text| -> Vec<String> {
            parse(Path::new("m"), text, format, 2)
                .unwrap_err()
                .iter()
                .map(|d| format!("{}: {}", d.line, d.message))
                .collect()
        };
        assert_eq!(
            lines(MatrixFormat::Matrix, "0 -1\ninf 0\n"),
            [
                "1: value 2 of row 1 is `-1`, not a delay in ms",
                "2: value 1 of row 2 is `inf`, not a delay in ms",
            ]
        );
        assert_eq!(
            lines(MatrixFormat::Triples, "0 1 -5\n1 0 inf\n0 1\n2 0 7\n"),
            [
                "1: `0 1 -5` is not `i j latency_us`",
                "2: `1 0 inf` is not `i j latency_us`",
                "3: `0 1` is not `i j latency_us`",
                "4: group index 2 is out of range: the topology has 2 groups",
            ]
        );
    }

    #[test]
    fn extra_rows_are_counted_and_triples_round_to_microseconds() {
        let err = parse(Path::new("m"), "0 1\n1 0\n\n5 5\n", MatrixFormat::Matrix, 2).unwrap_err();
        let text: Vec<String> = err
            .iter()
            .map(|d| format!("{}: {}", d.line, d.message))
            .collect();
        assert_eq!(text, ["4: matrix has 3 rows, expected 2 (one per group)"]);
        let e = parse(
            Path::new("t"),
            "1 0 2.5\n0 0 0.4\n",
            MatrixFormat::Triples,
            2,
        )
        .unwrap();
        assert_eq!(e, vec![(1, 0, 3), (0, 0, 0)]);
        let e = parse(
            Path::new("m"),
            "0 2.0005\n0.0004 0\n",
            MatrixFormat::Matrix,
            2,
        )
        .unwrap();
        assert_eq!(e, vec![(0, 0, 0), (0, 1, 2_001), (1, 0, 0), (1, 1, 0)]);
    }

    #[test]
    fn reads_triples_and_checks_indices() {
        let e = parse(Path::new("t"), "0 1 1500\n", MatrixFormat::Triples, 2).unwrap();
        assert_eq!(e, vec![(0, 1, 1500)]);
        let err = parse(Path::new("t"), "0 5 10\nx\n", MatrixFormat::Triples, 2).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].message.contains("out of range"));
        assert_eq!(err[1].line, 2);
    }
}
