//! Configuration of the webhook listener and its endpoints.

use crate::config::{ConfigError, duration};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The webhook listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Address to listen on (`MIST_OTEL_LISTEN`).
    pub listen: SocketAddr,
    /// Path of the default endpoint. Named endpoints live at `{path}/{name}`.
    pub path: String,
    /// Secrets of the default endpoint; any may match (rotation). `MIST_WEBHOOK_SECRET`.
    pub secrets: Vec<Secret>,
    /// Accept the legacy `X-Mist-Signature` (HMAC-SHA1) when v2 is absent.
    pub allow_sha1: bool,
    /// Accept unsigned deliveries on endpoints with no secret. Off by default.
    pub allow_unsigned: bool,
    /// Static attributes added to every signal from the default endpoint.
    pub attributes: BTreeMap<String, String>,
    /// Named endpoints (several orgs, each with its own secrets).
    pub endpoints: Vec<EndpointConfig>,
    /// Largest body accepted; larger answers 413.
    pub max_body_bytes: usize,
    /// Time allowed for a client to send request headers (also closes idle keep-alive connections).
    #[serde(with = "duration")]
    pub header_timeout: Duration,
    /// Time allowed to receive the whole body; slower answers 408.
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    /// Most simultaneous connections; more wait in the kernel backlog.
    pub max_connections: usize,
    /// Most simultaneous connections from one source address (0 = unlimited); more are closed
    /// at accept. Behind a proxy every connection has the proxy's address.
    pub max_connections_per_source: usize,
    /// Bytes that bodies not yet authenticated may hold in memory, all requests together;
    /// a request that does not fit is answered 503 with `Retry-After`. Never less than
    /// `max_body_bytes` (a smaller value is raised to it, so the largest body can be read).
    pub max_pending_body_bytes: usize,
    /// Slowest body accepted, in bytes per second over every `body_rate_grace` window
    /// (0 = no minimum); slower answers 408.
    pub min_body_bytes_per_sec: u64,
    /// Window over which a body must progress at `min_body_bytes_per_sec`.
    #[serde(with = "duration")]
    pub body_rate_grace: Duration,
    /// Seconds advertised in `Retry-After` when the buffer is full.
    pub retry_after_secs: u64,
    /// Requests per second allowed from one source address (0 = unlimited).
    pub rate_limit_per_source: u32,
    /// HTTPS; plain HTTP when absent (e.g. behind a TLS-terminating proxy).
    pub tls: Option<TlsConfig>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:4320".parse().expect("valid default address"),
            path: "/mist/webhook".into(),
            secrets: Vec::new(),
            allow_sha1: false,
            allow_unsigned: false,
            attributes: BTreeMap::new(),
            endpoints: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_source: 64,
            max_pending_body_bytes: 64 * 1024 * 1024,
            min_body_bytes_per_sec: 1024,
            body_rate_grace: Duration::from_secs(5),
            retry_after_secs: 5,
            rate_limit_per_source: 0,
            tls: None,
        }
    }
}

/// A named endpoint at `{path}/{name}` with its own secrets and attributes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// URL segment and label value: letters, digits, `-` and `_`.
    pub name: String,
    /// Secrets; any may match.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// Overrides the listener's `allow_sha1` for this endpoint.
    #[serde(default)]
    pub allow_sha1: Option<bool>,
    /// Static attributes added to every signal from this endpoint (e.g. `mist.org.name`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// PEM certificate and key; reloaded when the files change or on SIGHUP.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// How often the files are checked for changes.
    #[serde(with = "duration", default = "default_reload")]
    pub reload_interval: Duration,
}

/// Fewest characters a webhook secret may have. Mist itself takes any string; a shorter one is
/// guessable, and is most often a fragment of a value that a comma split in
/// `MIST_WEBHOOK_SECRET`.
pub const MIN_SECRET_CHARS: usize = 8;

/// Refuses a secret shorter than [`MIN_SECRET_CHARS`], naming its key, never its value.
fn check_secrets(key: &str, secrets: &[Secret]) -> Result<(), ConfigError> {
    let Some(i) = secrets.iter().position(|s| s.expose().chars().count() < MIN_SECRET_CHARS) else {
        return Ok(());
    };
    let from_env = if key == "ingest.secrets" {
        " (MIST_WEBHOOK_SECRET is split at every comma, and every part is one secret)"
    } else {
        ""
    };
    Err(ConfigError::Invalid {
        key: format!("{key}[{i}]"),
        message: format!(
            "secret is too short: {} characters, expected at least {MIN_SECRET_CHARS}{from_env}; value not shown",
            secrets[i].expose().chars().count()
        ),
    })
}

fn default_reload() -> Duration {
    Duration::from_secs(10)
}

impl IngestConfig {
    /// Checks the listener's rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid { key: key.into(), message };
        if !self.path.starts_with('/') || self.path.len() < 2 || self.path.ends_with('/') {
            return Err(invalid(
                "ingest.path",
                format!("`{}` must start with `/` and not end with `/`, e.g. /mist/webhook", self.path),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid(
                "ingest.max_body_bytes",
                format!("{} is too small (expected at least 1024)", self.max_body_bytes),
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid("ingest.max_connections", "0 (expected at least 1)".into()));
        }
        if self.min_body_bytes_per_sec > 0 && self.body_rate_grace.is_zero() {
            return Err(invalid("ingest.body_rate_grace", "0s (expected a window, e.g. 5s)".into()));
        }
        check_secrets("ingest.secrets", &self.secrets)?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, ep) in self.endpoints.iter().enumerate() {
            let key = format!("ingest.endpoints[{i}].name");
            if ep.name.is_empty()
                || !ep.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(&key, format!("`{}` (expected letters, digits, - or _)", ep.name)));
            }
            if ep.name == "default" {
                return Err(invalid(
                    &key,
                    "`default` is the name of the endpoint at ingest.path itself; choose another name".into(),
                ));
            }
            if !seen.insert(ep.name.clone()) {
                return Err(invalid(&key, format!("`{}` is used twice", ep.name)));
            }
            check_secrets(&format!("ingest.endpoints[{i}].secrets"), &ep.secrets)?;
            if ep.secrets.is_empty() && !self.allow_unsigned {
                return Err(invalid(
                    &format!("ingest.endpoints[{i}].secrets"),
                    format!("endpoint `{}` has no secret (set one, or ingest.allow_unsigned: true)", ep.name),
                ));
            }
        }
        Ok(())
    }

    /// True when the default endpoint has no secret and unsigned deliveries are not allowed:
    /// it then answers 401 to everything, which `serve` refuses to start with.
    pub fn default_endpoint_unusable(&self) -> bool {
        self.secrets.is_empty() && !self.allow_unsigned
    }
}
