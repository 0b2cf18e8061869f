//! The building blocks of the report's HTML pages (`report.html` and a comparison's
//! page): escaping, tables, figures with their legends, human units for bytes and rates.

use crate::charts::{Figure, Key, Mark};
use crate::Error;
use std::fmt::Write;

pub(crate) const STYLE: &str = "body{font-family:sans-serif;margin:1.5em auto;max-width:1000px;color:#222}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}tr.total{font-weight:bold}.failed{color:#b34700}\
svg{max-width:100%;height:auto}p.meta{color:#555}figure{margin:1em 0}\
figcaption{font-size:90%}.entry{white-space:nowrap}.key{display:inline-block;width:20px;margin:0 4px 0 14px;vertical-align:middle}\
code{background:#f4f4f4;padding:1px 4px;word-break:break-all}";

/// The page's head and title.
pub(crate) fn open(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n",
        title = esc(title)
    )
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table row of already-escaped cells.
pub(crate) fn row(out: &mut String, class: &str, cells: &[String]) {
    if class.is_empty() {
        out.push_str("<tr>");
    } else {
        let _ = write!(out, "<tr class=\"{class}\">");
    }
    for c in cells {
        let _ = write!(out, "<td>{c}</td>");
    }
    out.push_str("</tr>\n");
}

/// A table row of cells still to be escaped.
pub(crate) fn escaped_row(out: &mut String, class: &str, cells: &[String]) {
    row(
        out,
        class,
        &cells.iter().map(|c| esc(c)).collect::<Vec<_>>(),
    );
}

/// Opens a table with its header row.
pub(crate) fn head(out: &mut String, cells: &[&str]) {
    out.push_str("<table><tr>");
    for c in cells {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr>\n");
}

fn hex(key: &Key) -> String {
    let c = key.color;
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// A chart with the element id `id` and its legend below it (`name` says which chart
/// could not be drawn).
pub(crate) fn figure(
    out: &mut String,
    id: &str,
    name: &str,
    drawn: Result<Figure, String>,
) -> Result<(), Error> {
    let figure = drawn.map_err(|message| Error::Draw {
        chart: name.to_string(),
        message,
    })?;
    let _ = write!(
        out,
        "<figure id=\"{id}\">{}<figcaption>",
        svg_with_id(&figure.svg, id)
    );
    for key in &figure.legend {
        let color = hex(key);
        let style = match key.mark {
            Mark::Line => format!("border-top:3px solid {color}"),
            Mark::Dashed => format!("border-top:2px dashed {color}"),
            Mark::Area => format!("height:10px;background:{color}"),
            Mark::Cross => format!("color:{color};width:auto"),
        };
        let mark = if key.mark == Mark::Cross { "×" } else { "" };
        let _ = write!(
            out,
            "<span class=\"entry\"><span class=\"key\" style=\"{style}\">{mark}</span>{}</span> ",
            esc(&key.label)
        );
    }
    out.push_str("</figcaption></figure>\n");
    Ok(())
}

/// The SVG with `id-svg` as its element id, so that a reader (or a test) can find it.
fn svg_with_id(svg: &str, id: &str) -> String {
    match svg.find("<svg") {
        Some(at) => format!("{}<svg id=\"{id}-svg\"{}", &svg[..at], &svg[at + 4..]),
        None => svg.to_string(),
    }
}

/// `bytes` in SI units: `950 B`, `16.0 MB`, `1.25 GB`.
pub(crate) fn bytes(bytes: u64) -> String {
    scaled(bytes as f64, &["B", "kB", "MB", "GB", "TB"])
}

/// A rate in bit/s in SI units: `128 kbit/s`, `2 Mbit/s`.
pub(crate) fn rate(bits_per_s: u64) -> String {
    scaled(
        bits_per_s as f64,
        &["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"],
    )
}

/// `x` divided by 1000 until below 1000, with three significant digits.
fn scaled(x: f64, units: &[&str]) -> String {
    let mut x = x;
    let mut unit = 0;
    while x >= 1000.0 && unit + 1 < units.len() {
        x /= 1000.0;
        unit += 1;
    }
    let digits = match x {
        _ if unit == 0 || x >= 100.0 || x.fract() == 0.0 => 0,
        _ if x >= 10.0 => 1,
        _ => 2,
    };
    format!("{x:.digits$} {}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(bytes(950), "950 B");
        assert_eq!(bytes(16_000_000), "16 MB");
        assert_eq!(bytes(16_012_345), "16.0 MB");
        assert_eq!(bytes(1_250_000_000), "1.25 GB");
        assert_eq!(rate(128_000), "128 kbit/s");
        assert_eq!(rate(2_000_000), "2 Mbit/s");
    }
}
