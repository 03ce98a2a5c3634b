//! OTLP/HTTP exporter: protobuf (or JSON) bodies POSTed to `/v1/{signal}`.
//!
//! Per the OTLP specification 429, 502, 503 and 504 are retryable (honouring `Retry-After` in
//! seconds), as are connection failures and timeouts. Beyond the specification, because every
//! item was acknowledged to Mist: any other 5xx but 501 is a [`ExportError::ServerError`]
//! (retried a bounded number of times) and 413 is [`ExportError::TooLarge`] (sent again in
//! halves). Any other non-2xx answer is permanent. A 2xx whose body does not decode is accepted,
//! and logged.

use super::config::{Compression, Protocol, SignalTarget, shown_url};
use super::request::{Accepted, BuildError, ExportError, Payload, header_map, read_pem};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::io::Write;
use std::time::Duration;

/// Exports one signal over HTTP. Cheap to clone.
#[derive(Clone)]
pub struct HttpExporter {
    client: reqwest::Client,
    url: String,
    json: bool,
    gzip: bool,
    headers: http::HeaderMap,
}

impl HttpExporter {
    /// Builds the client (reads TLS files).
    pub fn new(target: &SignalTarget) -> Result<Self, BuildError> {
        let key = |k: &str| format!("{}.{k}", target.signal.as_str());
        let mut b = reqwest::Client::builder()
            .timeout(target.timeout)
            .connect_timeout(target.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(ca) = &target.tls.ca_file {
            let pem = read_pem("tls.ca_file", ca)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| BuildError {
                key: "tls.ca_file".into(),
                message: format!("not a PEM certificate: {e}"),
            })?;
            b = b.tls_certs_merge(certs);
        }
        if let (Some(cert), Some(k)) = (&target.tls.cert_file, &target.tls.key_file) {
            let mut pem = read_pem("tls.cert_file", cert)?;
            pem.push(b'\n');
            pem.extend(read_pem("tls.key_file", k)?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| BuildError {
                key: "tls.cert_file".into(),
                message: format!("client certificate/key unusable: {e}"),
            })?;
            b = b.identity(id);
        }
        let client = b
            .build()
            .map_err(|e| BuildError { key: key("endpoint"), message: format!("HTTP client: {e}") })?;
        let headers = header_map(target)?;
        Ok(Self {
            client,
            url: target.url.clone(),
            json: target.protocol == Protocol::HttpJson,
            gzip: target.compression == Compression::Gzip,
            headers,
        })
    }

    /// Sends one request.
    pub async fn export(&self, payload: &Payload) -> Result<Accepted, ExportError> {
        let (body, ctype) = self.body(payload)?;
        let mut req = self.client.post(&self.url).headers(self.headers.clone()).header("content-type", ctype);
        if self.gzip {
            req = req.header("content-encoding", "gzip");
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                let reason = if e.is_timeout() { "timeout" } else { "connect" };
                // Neither the URL's query nor reqwest's copy of the URL: either may carry a key.
                tracing::debug!(url = %shown_url(&self.url), error = %e.without_url(), "OTLP/HTTP request failed");
                return Err(ExportError::Retryable {
                    reason: reason.into(),
                    retry_after: None,
                    message: String::new(),
                });
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let json_answer = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = resp.bytes().await.unwrap_or_default();
        self.answer(payload, status, retry_after, json_answer, &bytes)
    }

    /// The request body (protobuf or JSON, gzipped when configured) and its content type.
    fn body(&self, payload: &Payload) -> Result<(Vec<u8>, &'static str), ExportError> {
        let (body, ctype) = if self.json {
            (payload.to_json().into_bytes(), "application/json")
        } else {
            (payload.encode(), "application/x-protobuf")
        };
        if !self.gzip {
            return Ok((body, ctype));
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zipped = enc
            .write_all(&body)
            .and_then(|_| enc.finish())
            .map_err(|e| ExportError::Permanent { reason: format!("gzip: {e}"), message: String::new() })?;
        Ok((zipped, ctype))
    }

    /// What an answer means: accepted (perhaps in part), retry, split, or refused for good.
    fn answer(
        &self,
        payload: &Payload,
        status: u16,
        retry_after: Option<Duration>,
        json: bool,
        bytes: &[u8],
    ) -> Result<Accepted, ExportError> {
        match status {
            200..=299 => Ok(partial(payload, bytes, json).unwrap_or_else(|| {
                tracing::warn!(
                    url = %shown_url(&self.url),
                    status,
                    body_bytes = bytes.len(),
                    "OTLP/HTTP backend answered success with a body that does not decode; taken as accepted"
                );
                Accepted::default()
            })),
            429 | 502 | 503 | 504 => Err(ExportError::Retryable {
                reason: format!("http_{status}"),
                retry_after,
                message: String::new(),
            }),
            413 => Err(ExportError::TooLarge { reason: format!("http_{status}") }),
            500..=599 if status != 501 => Err(ExportError::ServerError {
                reason: format!("http_{status}"),
                retry_after,
                message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
            }),
            _ => Err(ExportError::Permanent { reason: format!("http_{status}"), message: String::new() }),
        }
    }
}

/// Reads `partial_success` from a 2xx answer; an empty body is a full success, an undecodable
/// one (garbage, truncated) is `None`.
fn partial(payload: &Payload, bytes: &[u8], json: bool) -> Option<Accepted> {
    use prost::Message;
    if bytes.is_empty() {
        return Some(Accepted::default());
    }
    let found = match payload {
        Payload::Logs(_) => {
            let r: ExportLogsServiceResponse =
                if json { serde_json::from_slice(bytes).ok()? } else { Message::decode(bytes).ok()? };
            r.partial_success.map(|p| (p.rejected_log_records as u64, p.error_message))
        }
        Payload::Metrics(_) => {
            let r: ExportMetricsServiceResponse =
                if json { serde_json::from_slice(bytes).ok()? } else { Message::decode(bytes).ok()? };
            r.partial_success.map(|p| (p.rejected_data_points as u64, p.error_message))
        }
        Payload::Traces(_) => {
            let r: ExportTraceServiceResponse =
                if json { serde_json::from_slice(bytes).ok()? } else { Message::decode(bytes).ok()? };
            r.partial_success.map(|p| (p.rejected_spans as u64, p.error_message))
        }
    };
    Some(found.map(|(rejected, message)| Accepted { rejected, message }).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsPartialSuccess, ExportLogsServiceRequest,
    };
    use prost::Message;

    #[test]
    fn partial_success_is_read_from_protobuf_and_json_answers() {
        let p = Payload::Logs(ExportLogsServiceRequest::default());
        let answer = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 3,
                error_message: "too old".into(),
            }),
        };
        let got = partial(&p, &answer.encode_to_vec(), false);
        assert_eq!(got, Some(Accepted { rejected: 3, message: "too old".into() }));
        let json = serde_json::to_vec(&answer).unwrap();
        assert_eq!(partial(&p, &json, true).unwrap().rejected, 3);
        // Empty bodies are plain successes; garbage is told apart (the caller logs it and
        // accepts), never a panic.
        assert_eq!(partial(&p, b"", false), Some(Accepted::default()));
        assert_eq!(partial(&p, b"\xff\x00garbage", false), None);
        assert_eq!(partial(&p, b"{not json", true), None);
        let truncated = answer.encode_to_vec();
        assert_eq!(partial(&p, &truncated[..truncated.len() - 2], false), None);
    }
}
