//! What every transport shares: the payload of one export request, the answer, the two kinds
//! of failure (retryable, permanent), and the set-up errors and helpers (headers, PEM files).

use super::config::Signal;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::time::Duration;

/// One export request.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Logs.
    Logs(ExportLogsServiceRequest),
    /// Metrics.
    Metrics(ExportMetricsServiceRequest),
    /// Spans.
    Traces(ExportTraceServiceRequest),
}

impl Payload {
    /// Which signal this is.
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Logs(_) => Signal::Logs,
            Payload::Metrics(_) => Signal::Metrics,
            Payload::Traces(_) => Signal::Traces,
        }
    }

    /// Log records, data points or spans in the request.
    pub fn items(&self) -> u64 {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        match self {
            Payload::Logs(r) => {
                r.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len() as u64).sum()
            }
            Payload::Traces(r) => {
                r.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum()
            }
            Payload::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
                .map(|m| match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len() as u64,
                    Some(Data::Sum(s)) => s.data_points.len() as u64,
                    Some(Data::Histogram(h)) => h.data_points.len() as u64,
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len() as u64,
                    Some(Data::Summary(s)) => s.data_points.len() as u64,
                    None => 0,
                })
                .sum(),
        }
    }

    /// The protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message;
        match self {
            Payload::Logs(r) => r.encode_to_vec(),
            Payload::Metrics(r) => r.encode_to_vec(),
            Payload::Traces(r) => r.encode_to_vec(),
        }
    }

    /// Decodes the protobuf encoding of a `signal` request.
    pub fn decode(signal: Signal, bytes: &[u8]) -> Result<Payload, prost::DecodeError> {
        use prost::Message;
        Ok(match signal {
            Signal::Logs => Payload::Logs(Message::decode(bytes)?),
            Signal::Metrics => Payload::Metrics(Message::decode(bytes)?),
            Signal::Traces => Payload::Traces(Message::decode(bytes)?),
        })
    }

    /// The OTLP JSON encoding.
    pub fn to_json(&self) -> String {
        let r = match self {
            Payload::Logs(r) => serde_json::to_string(r),
            Payload::Metrics(r) => serde_json::to_string(r),
            Payload::Traces(r) => serde_json::to_string(r),
        };
        r.unwrap_or_else(|e| format!("{{\"error\":\"cannot encode: {e}\"}}"))
    }
}

/// The backend accepted the request (possibly only in part).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accepted {
    /// Items the backend rejected (`partial_success`); they are not retried.
    pub rejected: u64,
    /// The backend's explanation of the rejection.
    pub message: String,
}

/// Why an export failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ExportError {
    /// Try again later (backend down, overloaded, timed out).
    #[error("retryable: {reason}")]
    Retryable {
        /// Short reason, used as a metric label (`unavailable`, `http_503`…).
        reason: String,
        /// The server's requested delay (Retry-After or gRPC RetryInfo).
        retry_after: Option<Duration>,
        /// What went wrong, for the log (a gRPC status message; may be empty).
        message: String,
    },
    /// The backend failed (HTTP 5xx other than 501): retried, but at most
    /// `export.retry.max_attempts_5xx` times, since a backend that fails on one request may fail
    /// on it for ever.
    #[error("server error: {reason}")]
    ServerError {
        /// Short reason, used as a metric label (`http_500`…).
        reason: String,
        /// The server's requested delay (Retry-After).
        retry_after: Option<Duration>,
        /// What went wrong, for the log (may be empty).
        message: String,
    },
    /// The backend refused the request as too large (HTTP 413): send it again in smaller parts;
    /// a single item refused this way is refused for good.
    #[error("too large: {reason}")]
    TooLarge {
        /// Short reason, used as a metric label (`http_413`).
        reason: String,
    },
    /// The backend will never accept this request; it is dropped and counted.
    #[error("permanent: {reason}")]
    Permanent {
        /// Short reason, used as a metric label (`invalid_argument`, `http_400`…).
        reason: String,
        /// What went wrong, for the log (a gRPC status message; may be empty).
        message: String,
    },
}

/// Why an exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("export.{key}: {message}")]
pub struct BuildError {
    /// The configuration key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// The configured headers as an HTTP header map (used for gRPC metadata and HTTP headers alike).
/// Values are secrets: errors name the header, never its value.
pub(crate) fn header_map(target: &super::config::SignalTarget) -> Result<http::HeaderMap, BuildError> {
    let mut headers = http::HeaderMap::new();
    for (k, v) in &target.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| BuildError {
            key: "headers".into(),
            message: format!("invalid header name `{k}`"),
        })?;
        let value = http::HeaderValue::from_str(v.expose()).map_err(|_| BuildError {
            key: "headers".into(),
            message: format!("invalid value for header `{k}`"),
        })?;
        // Tokens and passwords: keep them out of any Debug print of the map.
        let mut value = value;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Reads a PEM file named by a configuration key.
pub(crate) fn read_pem(key: &str, path: &std::path::Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|e| BuildError {
        key: key.into(),
        message: format!("cannot read {}: {e} (expected a PEM file)", path.display()),
    })
}
