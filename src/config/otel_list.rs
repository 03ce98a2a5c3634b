//! The OpenTelemetry `key=value,key2=value2` lists of the environment
//! (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_RESOURCE_ATTRIBUTES` and their per-signal forms).
//!
//! The format is W3C Baggage without properties: entries separated by `,`, blanks around
//! entries, keys and values ignored, keys and values percent-decoded. Decoding is strict: a `%`
//! not followed by two hex digits, or bytes that are not UTF-8 once decoded, make the whole
//! list an error (the SDK specification says to discard the variable and report), rather than
//! passing through half-decoded text that would reach a backend as a wrong header or attribute.

/// Why a list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// An entry has no `=`.
    #[error("`{item}` is not key=value")]
    NoEquals {
        /// The entry as written.
        item: String,
    },
    /// An entry's key is empty.
    #[error("`{item}` has an empty key")]
    EmptyKey {
        /// The entry as written.
        item: String,
    },
    /// A key could not be decoded.
    #[error("key `{key}`: {reason}")]
    Key {
        /// The key as written.
        key: String,
        /// What is wrong with it.
        reason: DecodeError,
    },
    /// A value could not be decoded.
    #[error("value of `{key}`: {reason}")]
    Value {
        /// The decoded key of the entry.
        key: String,
        /// What is wrong with the value.
        reason: DecodeError,
    },
}

impl ListError {
    /// The error without any text of a value, for lists whose values are secrets (headers).
    pub fn without_values(&self) -> String {
        match self {
            ListError::NoEquals { .. } => "an entry without `=` (expected key=value,key2=value2)".into(),
            ListError::EmptyKey { .. } => {
                "an entry with an empty key (expected key=value,key2=value2)".into()
            }
            ListError::Key { key, reason } => format!("key `{key}`: {reason}"),
            ListError::Value { key, reason } => {
                format!("value of `{key}`: {} (value not shown)", reason.kind())
            }
        }
    }
}

/// Why one key or value could not be percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A `%` too close to the end for two hex digits.
    #[error("truncated %-escape")]
    Truncated,
    /// A `%` not followed by two hex digits.
    #[error("invalid %-escape `%{0}`")]
    Invalid(String),
    /// The decoded bytes are not UTF-8.
    #[error("not UTF-8 once decoded")]
    NotUtf8,
}

impl DecodeError {
    /// The kind of error, without the text that caused it.
    fn kind(&self) -> &'static str {
        match self {
            DecodeError::Truncated => "truncated %-escape",
            DecodeError::Invalid(_) => "invalid %-escape",
            DecodeError::NotUtf8 => "not UTF-8 once decoded",
        }
    }
}

/// Parses `k=v,k2=v2` into its decoded pairs, in order (later duplicates are the caller's).
pub fn parse(raw: &str) -> Result<Vec<(String, String)>, ListError> {
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(ListError::NoEquals { item: item.into() });
        };
        let key =
            percent_decode(k.trim()).map_err(|reason| ListError::Key { key: k.trim().into(), reason })?;
        if key.is_empty() {
            return Err(ListError::EmptyKey { item: item.into() });
        }
        let value =
            percent_decode(v.trim()).map_err(|reason| ListError::Value { key: key.clone(), reason })?;
        out.push((key, value));
    }
    Ok(out)
}

/// Decodes `%XX` escapes (RFC 3986); anything else is taken as is.
pub fn percent_decode(s: &str) -> Result<String, DecodeError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let escape = &s[i + 1..];
        let hex = bytes.get(i + 1..i + 3).ok_or(DecodeError::Truncated)?;
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(hex[0]), digit(hex[1])) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => return Err(DecodeError::Invalid(escape.chars().take(2).collect())),
        }
        i += 3;
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_trimmed_and_decoded() {
        let got = parse(" a=1 , ,b%2Ec = x%20y%2Cz ,e=").unwrap();
        let want = [("a", "1"), ("b.c", "x y,z"), ("e", "")];
        assert_eq!(got, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert_eq!(parse("k=%C3%A9").unwrap()[0].1, "é");
    }

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("a%2"), Err(DecodeError::Truncated));
        assert_eq!(percent_decode("%zz%41"), Err(DecodeError::Invalid("zz".into())));
        assert_eq!(percent_decode("%"), Err(DecodeError::Truncated));
        assert_eq!(percent_decode("%é"), Err(DecodeError::Invalid("é".into())));
        assert_eq!(percent_decode("%+1"), Err(DecodeError::Invalid("+1".into())));
        assert_eq!(percent_decode("%FF"), Err(DecodeError::NotUtf8));
    }

    #[test]
    fn errors_of_secret_lists_do_not_show_values() {
        let e = parse("authorization=Bearer%zzsecret").unwrap_err();
        assert!(e.to_string().contains("%zz"));
        let shown = e.without_values();
        assert!(shown.contains("authorization") && !shown.contains("zz"), "{shown}");
        assert!(!parse("Bearer secret").unwrap_err().without_values().contains("secret"));
        assert!(matches!(parse("=v"), Err(ListError::EmptyKey { .. })));
    }
}
