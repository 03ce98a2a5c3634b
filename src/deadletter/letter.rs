//! One dead letter's file name: `<unix ns>-<sequence>-<signal>-<reason>.pb`. Zero-padded
//! numbers make name order the order of arrival.

use crate::exporter::config::Signal;
use std::path::PathBuf;

/// The extension of a dead letter (a temporary file has another until renamed).
pub(crate) const EXTENSION: &str = "pb";

/// One kept request, as listed from its file name.
#[derive(Debug, Clone, PartialEq)]
pub struct Letter {
    /// Its file.
    pub path: PathBuf,
    /// When it was refused, Unix nanoseconds.
    pub at_unix_ns: u64,
    /// Which signal the request carries.
    pub signal: Signal,
    /// The backend's short reason (`http_400`, `invalid_argument`…).
    pub reason: String,
    /// The file's size.
    pub bytes: u64,
}

/// The file name of a letter (the reason reduced to `[a-z0-9_]`).
pub(crate) fn file_name(at_unix_ns: u64, seq: u64, signal: Signal, reason: &str) -> String {
    let reason: String = reason
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    format!("{at_unix_ns:020}-{seq:08}-{}-{reason}.{EXTENSION}", signal.as_str())
}

/// Reads a letter's name; `None` for any other file.
pub(crate) fn parse(name: &str) -> Option<(u64, Signal, String)> {
    let stem = name.strip_suffix(&format!(".{EXTENSION}"))?;
    let mut parts = stem.splitn(4, '-');
    let at = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    let signal = match parts.next()? {
        "logs" => Signal::Logs,
        "metrics" => Signal::Metrics,
        "traces" => Signal::Traces,
        _ => return None,
    };
    Some((at, signal, parts.next()?.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_time() {
        let a = file_name(1_700_000_000_000_000_000, 1, Signal::Logs, "http_400");
        let b = file_name(1_700_000_000_000_000_001, 0, Signal::Traces, "Bad Thing/../x");
        assert!(a < b);
        assert_eq!(parse(&a), Some((1_700_000_000_000_000_000, Signal::Logs, "http_400".into())));
        assert_eq!(parse(&b).unwrap().2, "bad_thing____x");
        assert_eq!(parse("notes.txt"), None);
        assert_eq!(parse("x.pb.tmp"), None);
    }
}
