//! Configuration of the buffer and the exporters.
//!
//! YAML keys live under `buffer:` and `export:`; the standard OpenTelemetry variables
//! (`OTEL_EXPORTER_OTLP_*` and their per-signal forms, `OTEL_METRIC_EXPORT_INTERVAL`,
//! `OTEL_BSP_*`, `OTEL_BLRP_*`) are applied on top by [`ExportConfig::apply_env`].

use crate::config::{ConfigError, Env, duration};
use crate::secret::Secret;
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

impl Protocol {
    fn parse(key: &str, v: &str) -> Result<Protocol, ConfigError> {
        match v.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" | "http" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            other => Err(ConfigError::Invalid {
                key: key.into(),
                message: format!("`{other}` (expected grpc, http/protobuf or http/json)"),
            }),
        }
    }
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

impl Compression {
    fn parse(key: &str, v: &str) -> Result<Compression, ConfigError> {
        match v.trim() {
            "none" | "" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            other => Err(ConfigError::Invalid {
                key: key.into(),
                message: format!("`{other}` (expected none or gzip)"),
            }),
        }
    }
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
    #[serde(with = "opt_duration")]
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
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { initial: Duration::from_millis(500), max: Duration::from_secs(30) }
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
        let url = match (&o.endpoint, protocol) {
            (Some(e), _) => e.clone(),
            (None, Protocol::Grpc) => self.endpoint.clone().unwrap_or_else(|| "http://localhost:4317".into()),
            (None, _) => {
                let base = self.endpoint.clone().unwrap_or_else(|| "http://localhost:4318".into());
                format!("{}/v1/{}", base.trim_end_matches('/'), signal.as_str())
            }
        };
        let mut headers: BTreeMap<String, Secret> =
            self.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
        if let Some(b) = &self.basic_auth {
            let token = base64_encode(format!("{}:{}", b.username, b.password.expose()).as_bytes());
            headers.insert("authorization".into(), Secret::new(format!("Basic {token}")));
        }
        for (k, v) in &o.headers {
            headers.insert(k.to_ascii_lowercase(), v.clone());
        }
        SignalTarget {
            signal,
            protocol,
            url,
            headers: headers.into_iter().collect(),
            compression: o.compression.unwrap_or(self.compression),
            timeout: o.timeout.unwrap_or(self.timeout),
            tls: o.tls.clone().unwrap_or_else(|| self.tls.clone()),
        }
    }

    fn override_for(&self, signal: Signal) -> &SignalOverride {
        match signal {
            Signal::Logs => &self.logs,
            Signal::Metrics => &self.metrics,
            Signal::Traces => &self.traces,
        }
    }

    fn override_mut(&mut self, signal: Signal) -> &mut SignalOverride {
        match signal {
            Signal::Logs => &mut self.logs,
            Signal::Metrics => &mut self.metrics,
            Signal::Traces => &mut self.traces,
        }
    }

    /// Applies the standard `OTEL_EXPORTER_OTLP_*` variables and the batch/interval ones.
    pub fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(v) = get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            self.protocol = Protocol::parse("OTEL_EXPORTER_OTLP_PROTOCOL", v)?;
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            self.endpoint = Some(v.to_owned());
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_HEADERS") {
            self.headers.extend(parse_headers("OTEL_EXPORTER_OTLP_HEADERS", v)?);
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_COMPRESSION") {
            self.compression = Compression::parse("OTEL_EXPORTER_OTLP_COMPRESSION", v)?;
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            self.timeout = millis("OTEL_EXPORTER_OTLP_TIMEOUT", v)?;
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_CERTIFICATE") {
            self.tls.ca_file = Some(v.into());
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE") {
            self.tls.cert_file = Some(v.into());
        }
        if let Some(v) = get("OTEL_EXPORTER_OTLP_CLIENT_KEY") {
            self.tls.key_file = Some(v.into());
        }
        for signal in Signal::ALL {
            let p = format!("OTEL_EXPORTER_OTLP_{}_", signal.as_str().to_ascii_uppercase());
            let base_tls = self.tls.clone();
            let o = self.override_mut(signal);
            if let Some(v) = get(&format!("{p}PROTOCOL")) {
                o.protocol = Some(Protocol::parse(&format!("{p}PROTOCOL"), v)?);
            }
            if let Some(v) = get(&format!("{p}ENDPOINT")) {
                o.endpoint = Some(v.to_owned());
            }
            if let Some(v) = get(&format!("{p}HEADERS")) {
                o.headers.extend(parse_headers(&format!("{p}HEADERS"), v)?);
            }
            if let Some(v) = get(&format!("{p}COMPRESSION")) {
                o.compression = Some(Compression::parse(&format!("{p}COMPRESSION"), v)?);
            }
            if let Some(v) = get(&format!("{p}TIMEOUT")) {
                o.timeout = Some(millis(&format!("{p}TIMEOUT"), v)?);
            }
            for (suffix, which) in [("CERTIFICATE", 0), ("CLIENT_CERTIFICATE", 1), ("CLIENT_KEY", 2)] {
                if let Some(v) = get(&format!("{p}{suffix}")) {
                    let tls = o.tls.get_or_insert_with(|| base_tls.clone());
                    let slot = match which {
                        0 => &mut tls.ca_file,
                        1 => &mut tls.cert_file,
                        _ => &mut tls.key_file,
                    };
                    *slot = Some(v.into());
                }
            }
        }
        if let Some(v) = get("OTEL_METRIC_EXPORT_INTERVAL") {
            self.metric_interval = millis("OTEL_METRIC_EXPORT_INTERVAL", v)?;
        }
        if let Some(v) = get("OTEL_BLRP_SCHEDULE_DELAY") {
            self.batch.logs_delay = millis("OTEL_BLRP_SCHEDULE_DELAY", v)?;
        }
        if let Some(v) = get("OTEL_BSP_SCHEDULE_DELAY") {
            self.batch.spans_delay = millis("OTEL_BSP_SCHEDULE_DELAY", v)?;
        }
        for k in ["OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] {
            if let Some(v) = get(k) {
                let n: usize = v.parse().map_err(|_| ConfigError::Invalid {
                    key: k.into(),
                    message: format!("`{v}` (expected a positive whole number)"),
                })?;
                self.batch.max_items = self.batch.max_items.min(n.max(1));
            }
        }
        Ok(())
    }

    /// Checks the exporters' rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid { key, message };
        if self.exporter == ExporterKind::Debug {
            return Ok(());
        }
        for signal in Signal::ALL {
            let t = self.target(signal);
            let key = if self.override_for(signal).endpoint.is_some() {
                format!("export.{}.endpoint", signal.as_str())
            } else {
                "export.endpoint".into()
            };
            // user:password@ in the URL would be a working credential printed by check-config
            // and in errors; refuse it (without echoing the URL) and point to the safe keys.
            if t.url.parse::<http::Uri>().ok().and_then(|u| u.authority().map(|a| a.as_str().contains('@')))
                == Some(true)
            {
                return Err(invalid(
                    key,
                    "credentials in the endpoint URL are not allowed (URL not shown); \
                     use export.basic_auth or export.headers"
                        .into(),
                ));
            }
            if !(t.url.starts_with("http://") || t.url.starts_with("https://"))
                || t.url.parse::<http::Uri>().is_err()
            {
                return Err(invalid(key, format!("`{}` (expected an http:// or https:// URL)", t.url)));
            }
            if t.tls.cert_file.is_some() != t.tls.key_file.is_some() {
                return Err(invalid(
                    "export.tls".into(),
                    "client certificate and key must be given together (cert_file and key_file)".into(),
                ));
            }
            for (k, v) in &t.headers {
                if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || http::HeaderValue::from_str(v.expose()).is_err()
                {
                    return Err(invalid(
                        "export.headers".into(),
                        format!("header `{k}` has an invalid name or value (expected an HTTP header)"),
                    ));
                }
            }
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

/// `k1=v1,k2=v2` with percent-decoded values (W3C baggage style, as the OTLP spec says).
fn parse_headers(var: &str, v: &str) -> Result<BTreeMap<String, Secret>, ConfigError> {
    let mut out = BTreeMap::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, val)) = pair.split_once('=') else {
            return Err(ConfigError::Invalid {
                key: var.into(),
                message: "an entry without `=` (expected key=value,key2=value2)".into(),
            });
        };
        out.insert(percent_decode(k.trim()), Secret::new(percent_decode(val.trim())));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(b[i + 1]) * 16 + hex(b[i + 2]));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn millis(var: &str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<u64>().map(Duration::from_millis).map_err(|_| ConfigError::Invalid {
        key: var.into(),
        message: format!("`{v}` (expected a whole number of milliseconds)"),
    })
}

fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Option<Duration>` with the same text format as [`duration`].
mod opt_duration {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "duration")] Duration);
        Option::<W>::deserialize(d).map(|o| o.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn default_is_grpc_localhost() {
        let c = ExportConfig::default();
        let t = c.target(Signal::Logs);
        assert_eq!(t.protocol, Protocol::Grpc);
        assert_eq!(t.url, "http://localhost:4317");
        c.validate().unwrap();
    }

    #[test]
    fn standard_env_and_per_signal_forms() {
        let mut c = ExportConfig::default();
        c.apply_env(&env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example/otlp/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc,X-Scope-OrgID=tenant1"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://m.example/api/v1/otlp/v1/metrics"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example:4317"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "300"),
        ]))
        .unwrap();
        c.validate().unwrap();
        let logs = c.target(Signal::Logs);
        assert_eq!(logs.url, "https://otlp.example/otlp/v1/logs");
        assert_eq!(logs.compression, Compression::Gzip);
        assert_eq!(logs.timeout, Duration::from_millis(2500));
        let h: BTreeMap<_, _> =
            logs.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_owned())).collect();
        assert_eq!(h["authorization"], "Bearer abc");
        assert_eq!(h["x-scope-orgid"], "tenant1");
        assert_eq!(c.target(Signal::Metrics).url, "https://m.example/api/v1/otlp/v1/metrics");
        let tr = c.target(Signal::Traces);
        assert_eq!((tr.protocol, tr.url.as_str()), (Protocol::Grpc, "https://t.example:4317"));
        assert_eq!(c.metric_interval, Duration::from_secs(15));
        assert_eq!(c.batch.spans_delay, Duration::from_millis(200));
        assert_eq!(c.batch.logs_delay, Duration::from_millis(300));
    }

    #[test]
    fn credentials_in_the_endpoint_are_refused_without_echo() {
        let env: Env =
            [("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), "https://alice:s3cret@h.example".to_string())]
                .into();
        let err = crate::config::Config::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("export.endpoint") && !err.contains("s3cret"), "{err}");
    }

    #[test]
    fn errors_name_key_and_value() {
        let mut c = ExportConfig::default();
        let e = c.apply_env(&env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")])).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && s.contains("carrier-pigeon"), "{s}");
        let mut c = ExportConfig { endpoint: Some("localhost:4317".into()), ..Default::default() };
        let s = c.validate().unwrap_err().to_string();
        assert!(s.contains("export.endpoint") && s.contains("localhost:4317"), "{s}");
        let e = c.apply_env(&env(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")])).unwrap_err().to_string();
        assert!(e.contains("OTEL_EXPORTER_OTLP_TIMEOUT") && e.contains("10s"), "{e}");
    }

    #[test]
    fn exporter_alias_and_yaml_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(
            &p,
            "ingest:\n  secrets: [s]\nexport:\n  protocol: http/protobuf\n  endpoint: https://x.example\n  \
             headers:\n    X-Scope-OrgID: t1\n  traces:\n    endpoint: https://t.example/v1/traces\n\
             buffer:\n  overflow: drop_oldest\n",
        )
        .unwrap();
        let c = crate::config::Config::load(Some(&p), &env(&[("MIST_OTEL_EXPORTER", "debug")])).unwrap();
        assert_eq!(c.export.exporter, ExporterKind::Debug);
        assert_eq!(c.buffer.overflow, crate::buffer::config::Overflow::DropOldest);
        assert_eq!(c.export.target(Signal::Traces).url, "https://t.example/v1/traces");
        assert_eq!(c.export.target(Signal::Metrics).url, "https://x.example/v1/metrics");
        assert!(!c.to_redacted_yaml().contains("t1"), "header values never print");
        let e = crate::config::Config::load(Some(&p), &env(&[("MIST_OTEL_EXPORTER", "kafka")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("export.exporter") && e.contains("kafka"), "{e}");
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
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%"), "%");
    }
}
