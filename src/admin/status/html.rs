//! The few HTML pieces the page is made of: escaping, times, and tables whose every cell is
//! escaped.

use std::fmt::Write as _;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
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

/// `HH:MM:SS` UTC of a millisecond epoch time (the page is for "what just happened").
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// One table cell: its text (escaped when written) and an optional class (`ok`, `bad`).
pub struct Cell(pub String, pub Option<&'static str>);

impl<T: ToString> From<T> for Cell {
    fn from(v: T) -> Self {
        Cell(v.to_string(), None)
    }
}

/// A cell coloured `ok` or `bad`.
pub fn judged(text: impl ToString, good: bool) -> Cell {
    Cell(text.to_string(), Some(if good { "ok" } else { "bad" }))
}

/// Writes a table with a header row; every cell's text is escaped.
pub fn table(h: &mut String, id: &str, head: &[&str], rows: impl IntoIterator<Item = Vec<Cell>>) {
    let _ = write!(h, "<table id=\"{}\">", escape(id));
    // A key/value table has no header row.
    if head.iter().any(|name| !name.is_empty()) {
        h.push_str("<tr>");
        for name in head {
            let _ = write!(h, "<th>{}</th>", escape(name));
        }
        h.push_str("</tr>");
    }
    for row in rows {
        h.push_str("<tr>");
        for Cell(text, class) in row {
            match class {
                Some(c) => {
                    let _ = write!(h, "<td class=\"{c}\">{}</td>", escape(&text));
                }
                None => {
                    let _ = write!(h, "<td>{}</td>", escape(&text));
                }
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn tables_escape_every_cell_and_key_value_tables_have_no_header() {
        let mut h = String::new();
        table(&mut h, "t", &["a<b"], [vec![judged("<i>", false)]]);
        assert_eq!(
            h,
            "<table id=\"t\"><tr><th>a&lt;b</th></tr><tr><td class=\"bad\">&lt;i&gt;</td></tr></table>"
        );
        h.clear();
        table(&mut h, "kv", &[], [vec![Cell::from("k"), Cell::from(1)]]);
        assert_eq!(h, "<table id=\"kv\"><tr><td>k</td><td>1</td></tr></table>");
    }
}
