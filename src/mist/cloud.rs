//! Mist's regional clouds: REST and WebSocket hosts by cloud name.

/// (name, REST API host) for every Mist cloud.
///
/// Checked against the cloud list of Juniper's `mistapi` Python package (`__api_session.py`,
/// `CLOUDS`: Global 01–05, EMEA 01–04, APAC 01–03) and the `mistapi-go` environments; the
/// WebSocket host is the REST host with `api.` replaced by `api-ws.` in both.
pub const CLOUDS: &[(&str, &str)] = &[
    ("global01", "api.mist.com"),
    ("global02", "api.gc1.mist.com"),
    ("global03", "api.ac2.mist.com"),
    ("global04", "api.gc2.mist.com"),
    ("global05", "api.gc4.mist.com"),
    ("emea01", "api.eu.mist.com"),
    ("emea02", "api.gc3.mist.com"),
    ("emea03", "api.ac6.mist.com"),
    ("emea04", "api.gc6.mist.com"),
    ("apac01", "api.ac5.mist.com"),
    ("apac02", "api.gc5.mist.com"),
    ("apac03", "api.gc7.mist.com"),
];

/// Why a cloud could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "unknown Mist cloud `{0}` (expected one of global01..05, emea01..04, apac01..03, or a base URL such as https://api.mist.com)"
)]
pub struct UnknownCloud(pub String);

/// The REST base URL (`https://host`) for a cloud name, a bare host, or a URL (used as is).
pub fn rest_base(cloud: &str) -> Result<String, UnknownCloud> {
    let c = cloud.trim().trim_end_matches('/');
    if c.starts_with("http://") || c.starts_with("https://") {
        return Ok(c.to_owned());
    }
    if c.is_empty() {
        return Ok("https://api.mist.com".into());
    }
    let lower = c.to_ascii_lowercase();
    // `Global 01`, `global_01` and `global-01` are how Mist's docs and SDKs spell the names.
    let compact: String = lower.chars().filter(|ch| !matches!(ch, ' ' | '_' | '-')).collect();
    if let Some((_, host)) = CLOUDS.iter().find(|(n, h)| *n == compact || *h == lower) {
        return Ok(format!("https://{host}"));
    }
    Err(UnknownCloud(cloud.to_owned()))
}

/// The WebSocket stream URL derived from a REST base: `https://api.X` → `wss://api-ws.X/api-ws/v1/stream`.
/// A plain `http://` base (a local fake) maps to `ws://` on the same host.
pub fn stream_url(rest_base: &str) -> String {
    if let Some(rest) = rest_base.strip_prefix("https://") {
        let host = rest.split('/').next().unwrap_or(rest);
        let ws_host =
            host.strip_prefix("api.").map(|h| format!("api-ws.{h}")).unwrap_or_else(|| host.to_owned());
        format!("wss://{ws_host}/api-ws/v1/stream")
    } else {
        let rest = rest_base.strip_prefix("http://").unwrap_or(rest_base);
        let host = rest.split('/').next().unwrap_or(rest);
        format!("ws://{host}/api-ws/v1/stream")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_clouds() {
        assert_eq!(rest_base("global01").unwrap(), "https://api.mist.com");
        assert_eq!(rest_base("EMEA01").unwrap(), "https://api.eu.mist.com");
        assert_eq!(rest_base("Global 05").unwrap(), "https://api.gc4.mist.com");
        assert_eq!(rest_base("apac_03").unwrap(), "https://api.gc7.mist.com");
        assert_eq!(rest_base("api.gc6.mist.com").unwrap(), "https://api.gc6.mist.com");
        assert_eq!(stream_url("https://api.gc7.mist.com"), "wss://api-ws.gc7.mist.com/api-ws/v1/stream");
        assert_eq!(rest_base("http://127.0.0.1:9/").unwrap(), "http://127.0.0.1:9");
        assert!(rest_base("mars01").is_err());
        assert_eq!(stream_url("https://api.eu.mist.com"), "wss://api-ws.eu.mist.com/api-ws/v1/stream");
        assert_eq!(stream_url("http://127.0.0.1:9"), "ws://127.0.0.1:9/api-ws/v1/stream");
    }
}
