//! The Prometheus text rendering (format 0.0.4) of the gathered families, appended to the
//! admin `/metrics` after the server's own registry.

use super::family::{Family, Kind};
use std::fmt::Write;

/// Appends Prometheus text (format 0.0.4) for the families.
pub fn render_prometheus(families: &[Family], out: &mut String) {
    for fam in families {
        let ty = match fam.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(out, "# HELP {} {}", fam.name, fam.help);
        let _ = writeln!(out, "# TYPE {} {ty}", fam.name);
        for p in &fam.points {
            out.push_str(fam.name);
            out.push('{');
            let mut first = true;
            for l in p.all_labels().filter(|l| !l.prom.is_empty()) {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(l.prom);
                out.push_str("=\"");
                escape_label(&l.value, out);
                out.push('"');
            }
            out.push_str("} ");
            write_value(p.value, out);
            out.push('\n');
        }
    }
}

fn escape_label(v: &str, out: &mut String) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        // `{}` on f64 is the shortest representation that round-trips: full precision.
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_full_precision() {
        let mut s = String::new();
        write_value(1686592607.62131, &mut s);
        assert_eq!(s, "1686592607.62131");
        let mut s = String::new();
        escape_label("a\"b\\c\nd", &mut s);
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
