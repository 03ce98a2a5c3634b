//! Configuration of the exporters.
//!
//! YAML keys live under `export:`; the standard OpenTelemetry variables
//! (`OTEL_EXPORTER_OTLP_*` and their per-signal forms, `OTEL_METRIC_EXPORT_INTERVAL`,
//! `OTEL_BSP_*`, `OTEL_BLRP_*`) are applied on top by [`ExportConfig::apply_env`] (in
//! `exporter/env.rs`). Each signal's settings are resolved once, by [`ExportConfig::target`].

use crate::config::{ConfigError, duration};
use crate::secret::Secret;
use base64::prelude::{BASE64_STANDARD, Engine as _};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Which exporter sends the signals.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExporterKind {
    /// OTLP over gRPC or HTTP.
    #[default]
    Otlp,
    /// OTLP JSON lines on stdout or in a file (no backend needed).
    Debug,
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317).
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    #[serde(rename = "http/json")]
    HttpJson,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain bodies.
    #[default]
    None,
    /// gzip.
    Gzip,
}

/// TLS material for the connection to the backend (PEM files).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTls {
    /// CA certificate(s) trusted for the backend, added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain for mTLS.
    pub cert_file: Option<PathBuf>,
    /// Client private key for mTLS.
    pub key_file: Option<PathBuf>,
}

/// Per-signal overrides; unset fields inherit from `export`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalOverride {
    /// Full URL for this signal (for HTTP: used as is, no `/v1/...` appended).
    pub endpoint: Option<String>,
    /// Transport for this signal.
    pub protocol: Option<Protocol>,
    /// Extra headers, added to (and overriding) the common ones.
    pub headers: BTreeMap<String, Secret>,
    /// Compression for this signal.
    pub compression: Option<Compression>,
    /// Per-request timeout for this signal.
    #[serde(with = "duration::opt")]
    pub timeout: Option<Duration>,
    /// TLS for this signal.
    pub tls: Option<ClientTls>,
}

/// Batching limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most log records or spans in one export request (`OTEL_BLRP_MAX_EXPORT_BATCH_SIZE`,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, whichever is smaller).
    pub max_items: usize,
    /// Most encoded bytes in one export request.
    pub max_bytes: usize,
    /// Longest a log record waits before it is sent (`OTEL_BLRP_SCHEDULE_DELAY`).
    #[serde(with = "duration")]
    pub logs_delay: Duration,
    /// Longest a span waits before it is sent (`OTEL_BSP_SCHEDULE_DELAY`).
    #[serde(with = "duration")]
    pub spans_delay: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_items: 512,
            // Below the 4 MiB a gRPC server accepts by default, leaving room for the envelope.
            max_bytes: 3 * 1024 * 1024,
            logs_delay: Duration::from_secs(1),
            spans_delay: Duration::from_secs(5),
        }
    }
}

/// Retry policy for retryable failures (capped exponential backoff with full jitter).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First backoff.
    #[serde(with = "duration")]
    pub initial: Duration,
    /// Backoff cap (also caps a server's Retry-After/RetryInfo).
    #[serde(with = "duration")]
    pub max: Duration,
    /// Retries of one request answered with a 5xx other than 501, 502, 503, 504 (a backend
    /// failing on it); past them the request is refused for good.
    pub max_attempts_5xx: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { initial: Duration::from_millis(500), max: Duration::from_secs(30), max_attempts_5xx: 8 }
    }
}

/// OTLP export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// `otlp` (default) or `debug` (`MIST_OTEL_EXPORTER`).
    pub exporter: ExporterKind,
    /// `grpc` (default), `http/protobuf` or `http/json` (`OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub protocol: Protocol,
    /// Base endpoint for all signals (`OTEL_EXPORTER_OTLP_ENDPOINT`). Default
    /// `http://localhost:4317` for gRPC, `http://localhost:4318` for HTTP (which appends
    /// `/v1/logs`, `/v1/metrics`, `/v1/traces`).
    pub endpoint: Option<String>,
    /// Headers on every request, e.g. `authorization: Bearer …`, `X-Scope-OrgID`
    /// (`OTEL_EXPORTER_OTLP_HEADERS`). Values never print.
    pub headers: BTreeMap<String, Secret>,
    /// Username and password sent as HTTP basic auth.
    pub basic_auth: Option<BasicAuth>,
    /// `none` or `gzip` (`OTEL_EXPORTER_OTLP_COMPRESSION`).
    pub compression: Compression,
    /// Per-request timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`, milliseconds).
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// TLS to the backend (`OTEL_EXPORTER_OTLP_CERTIFICATE`, `…_CLIENT_CERTIFICATE`, `…_CLIENT_KEY`).
    pub tls: ClientTls,
    /// Overrides for logs (`OTEL_EXPORTER_OTLP_LOGS_*`).
    pub logs: SignalOverride,
    /// Overrides for metrics (`OTEL_EXPORTER_OTLP_METRICS_*`).
    pub metrics: SignalOverride,
    /// Overrides for traces (`OTEL_EXPORTER_OTLP_TRACES_*`).
    pub traces: SignalOverride,
    /// Where the debug exporter writes; stdout when unset.
    pub debug_path: Option<PathBuf>,
    /// Batching.
    pub batch: BatchConfig,
    /// How often metrics are collected and exported (`OTEL_METRIC_EXPORT_INTERVAL`, ms).
    #[serde(with = "duration")]
    pub metric_interval: Duration,
    /// Retry policy.
    pub retry: RetryConfig,
    /// How long a graceful shutdown keeps exporting before it leaves the rest on disk.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// Cap of the dead-letter store (`<data_dir>/deadletter/`, requests refused for good);
    /// past it the oldest are deleted, counted. 0 keeps none.
    pub dead_letter_max_bytes: u64,
}

/// HTTP basic authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name (for Grafana Cloud: the instance id).
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            exporter: ExporterKind::Otlp,
            protocol: Protocol::Grpc,
            endpoint: None,
            headers: BTreeMap::new(),
            basic_auth: None,
            compression: Compression::None,
            timeout: Duration::from_secs(10),
            tls: ClientTls::default(),
            logs: SignalOverride::default(),
            metrics: SignalOverride::default(),
            traces: SignalOverride::default(),
            debug_path: None,
            batch: BatchConfig::default(),
            metric_interval: Duration::from_secs(60),
            retry: RetryConfig::default(),
            shutdown_timeout: Duration::from_secs(10),
            dead_letter_max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The three OTLP signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Log records.
    Logs,
    /// Metrics.
    Metrics,
    /// Spans.
    Traces,
}

impl Signal {
    /// `logs`, `metrics` or `traces` (metric label and OTLP/HTTP path segment).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }
    /// All three.
    pub const ALL: [Signal; 3] = [Signal::Logs, Signal::Metrics, Signal::Traces];
}

/// The settings of one signal's exporter after inheritance.
#[derive(Debug, Clone)]
pub struct SignalTarget {
    /// Which signal.
    pub signal: Signal,
    /// Transport.
    pub protocol: Protocol,
    /// For gRPC the server URL; for HTTP the full URL of the signal's path.
    pub url: String,
    /// The configuration key the URL comes from (`export.endpoint` or
    /// `export.<signal>.endpoint`), for errors.
    pub endpoint_key: String,
    /// Headers (lowercase names).
    pub headers: Vec<(String, Secret)>,
    /// Compression.
    pub compression: Compression,
    /// Per-request timeout.
    pub timeout: Duration,
    /// TLS material.
    pub tls: ClientTls,
}

impl ExportConfig {
    /// The resolved settings of one signal.
    pub fn target(&self, signal: Signal) -> SignalTarget {
        let o = self.override_for(signal);
        let protocol = o.protocol.unwrap_or(self.protocol);
        let (url, endpoint_key) = match (&o.endpoint, protocol) {
            (Some(e), _) => (e.clone(), format!("export.{}.endpoint", signal.as_str())),
            (None, Protocol::Grpc) => (
                self.endpoint.clone().unwrap_or_else(|| "http://localhost:4317".into()),
                "export.endpoint".into(),
            ),
            (None, _) => {
                let base = self.endpoint.clone().unwrap_or_else(|| "http://localhost:4318".into());
                (format!("{}/v1/{}", base.trim_end_matches('/'), signal.as_str()), "export.endpoint".into())
            }
        };
        let mut headers: BTreeMap<String, Secret> =
            self.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
        if let Some(b) = &self.basic_auth {
            let token = BASE64_STANDARD.encode(format!("{}:{}", b.username, b.password.expose()));
            headers.insert("authorization".into(), Secret::new(format!("Basic {token}")));
        }
        for (k, v) in &o.headers {
            headers.insert(k.to_ascii_lowercase(), v.clone());
        }
        SignalTarget {
            signal,
            protocol,
            url,
            endpoint_key,
            headers: headers.into_iter().collect(),
            compression: o.compression.unwrap_or(self.compression),
            timeout: o.timeout.unwrap_or(self.timeout),
            tls: o.tls.clone().unwrap_or_else(|| self.tls.clone()),
        }
    }

    pub(super) fn override_for(&self, signal: Signal) -> &SignalOverride {
        match signal {
            Signal::Logs => &self.logs,
            Signal::Metrics => &self.metrics,
            Signal::Traces => &self.traces,
        }
    }

    /// Checks the exporters' rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid { key, message };
        if self.exporter == ExporterKind::Debug {
            return Ok(());
        }
        for signal in Signal::ALL {
            self.target(signal).validate()?;
        }
        if self.timeout.is_zero() {
            return Err(invalid("export.timeout".into(), "0s (expected more than 0)".into()));
        }
        if self.metric_interval < Duration::from_millis(100) {
            return Err(invalid(
                "export.metric_interval".into(),
                format!("{} (expected at least 100ms)", duration::format(&self.metric_interval)),
            ));
        }
        if self.batch.max_items == 0 {
            return Err(invalid("export.batch.max_items".into(), "0 (expected at least 1)".into()));
        }
        if self.batch.max_bytes < 1024 {
            return Err(invalid(
                "export.batch.max_bytes".into(),
                format!("{} (expected at least 1024)", self.batch.max_bytes),
            ));
        }
        if self.retry.initial.is_zero() || self.retry.max < self.retry.initial {
            return Err(invalid(
                "export.retry".into(),
                "initial must be > 0 and max must be ≥ initial".into(),
            ));
        }
        Ok(())
    }
}

impl SignalTarget {
    /// Checks one signal's resolved settings: an http(s) URL without credentials, TLS
    /// certificate and key together, valid header names and values.
    fn validate(self) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid { key, message };
        let SignalTarget { url, endpoint_key: key, headers, tls, .. } = self;
        let uri = url.parse::<http::Uri>();
        // user:password@ in the URL would be a working credential printed by check-config
        // and in errors; refuse it (without echoing the URL) and point to the safe keys.
        if uri.as_ref().ok().and_then(|u| u.authority().map(|a| a.as_str().contains('@'))) == Some(true) {
            return Err(invalid(
                key,
                "credentials in the endpoint URL are not allowed (URL not shown); \
                 use export.basic_auth or export.headers"
                    .into(),
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) || uri.is_err() {
            return Err(invalid(key, format!("`{}` (expected an http:// or https:// URL)", shown_url(&url))));
        }
        // A port no backend can listen on would be retried forever as a connect failure.
        let port = uri.as_ref().ok().and_then(|u| u.authority()).and_then(|a| a.as_str().rsplit_once(':'));
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if let Some((_, p)) = port.filter(|(_, p)| digits(p) && !matches!(p.parse::<u64>(), Ok(1..=65535))) {
            let url = shown_url(&url);
            return Err(invalid(key, format!("`{url}` has port {p} (expected a port from 1 to 65535)")));
        }
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(invalid(
                "export.tls".into(),
                "client certificate and key must be given together (cert_file and key_file)".into(),
            ));
        }
        for (k, v) in &headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || http::HeaderValue::from_str(v.expose()).is_err()
            {
                return Err(invalid(
                    "export.headers".into(),
                    format!("header `{k}` has an invalid name or value (expected an HTTP header)"),
                ));
            }
        }
        Ok(())
    }
}

/// A URL as errors may show it: without a query (it may carry a key) and with any
/// `user:password@` replaced, even when the URL does not parse. Errors and log lines use it.
pub(crate) fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let authority = authority.rsplit_once('@').map_or(authority.to_owned(), |(_, host)| format!("…@{host}"));
    let sep = if scheme.is_empty() { "" } else { "://" };
    let slash = if path.is_empty() && !rest.contains('/') { "" } else { "/" };
    format!("{scheme}{sep}{authority}{slash}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_grpc_localhost() {
        let c = ExportConfig::default();
        let t = c.target(Signal::Logs);
        assert_eq!(t.protocol, Protocol::Grpc);
        assert_eq!(t.url, "http://localhost:4317");
        c.validate().unwrap();
    }

    #[test]
    fn basic_auth_becomes_a_header() {
        let c = ExportConfig {
            basic_auth: Some(BasicAuth { username: "Aladdin".into(), password: Secret::new("open sesame") }),
            ..Default::default()
        };
        let t = c.target(Signal::Logs);
        assert_eq!(t.headers[0].0, "authorization");
        assert_eq!(t.headers[0].1.expose(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn urls_in_errors_never_show_credentials_or_queries() {
        assert_eq!(shown_url("http://u:p w@host:0/v1?key=k"), "http://…@host:0/v1");
        assert_eq!(shown_url("ht tp://a:b@c"), "ht tp://…@c");
        assert_eq!(shown_url("http://host:99999"), "http://host:99999");
        assert_eq!(shown_url("no-scheme:pw@x?token=t"), "…@x");
    }
}
