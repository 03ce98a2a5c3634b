//! The webhook handler: limits → signature → envelope → buffer → answer.
//!
//! Order matters: the signature is checked over the raw bytes before any parsing, so an
//! unauthenticated sender cannot make the server parse JSON. [`accept`] runs the steps and
//! returns a value ([`Accepted`] or a [`Refusal`]); one place counts, logs and answers it.

use super::body::BodyLimits;
use super::config::IngestConfig;
use super::log_limit::{Admit, RejectionLogs};
use super::outcome::{Accepted, Refusal, RetryAfter};
use super::ratelimit::RateLimiter;
use super::server::PeerAddr;
use super::signature::{self, HEADER_V1, HEADER_V2, Rejection, Verdict};
use crate::buffer::{AppendError, Buffer};
use crate::clock::now_ns;
use crate::mist::envelope::{Envelope, topic_label};
use crate::secret::Secret;
use crate::telemetry::ingest::{IngestMetrics, Scheme};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

/// Name of the endpoint at the configured path itself.
pub const DEFAULT_ENDPOINT: &str = "default";

/// One receiving endpoint and what it trusts.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Name (`default` or the configured name).
    pub name: String,
    /// Secrets; any may match.
    pub secrets: Vec<Secret>,
    /// Accept SHA-1 when v2 is absent.
    pub allow_sha1: bool,
    /// Accept unsigned deliveries (only when no secret is configured).
    pub allow_unsigned: bool,
}

/// Something that wants to know about every request's outcome (the status page).
pub trait Observer: Send + Sync {
    /// Called once per request. `topic` is `None` when the body was never parsed; `reason` says
    /// why a request was rejected (never contains a secret).
    fn observe(&self, endpoint: &str, topic: Option<&str>, status: u16, events: usize, reason: Option<&str>);
    /// Called with an accepted delivery's topic and raw, verified body (for the live tail). The
    /// body is a cheap reference-counted view; parse it only when needed.
    fn accepted(&self, _endpoint: &str, _topic: &str, _body: &Bytes, _received_at_ns: u64) {}
}

/// Shared state of the handler.
#[derive(Clone)]
pub struct IngestState {
    endpoints: Arc<HashMap<String, Endpoint>>,
    buffer: Buffer,
    metrics: IngestMetrics,
    body: BodyLimits,
    retry_after: HeaderValue,
    observers: Arc<[Arc<dyn Observer>]>,
    limiter: Option<Arc<RateLimiter>>,
    rejection_logs: Arc<RejectionLogs>,
}

impl IngestState {
    /// Builds the state from configuration.
    pub fn new(cfg: &IngestConfig, buffer: Buffer, metrics: IngestMetrics) -> Self {
        let mut endpoints = HashMap::new();
        endpoints.insert(
            DEFAULT_ENDPOINT.to_owned(),
            Endpoint {
                name: DEFAULT_ENDPOINT.into(),
                secrets: cfg.secrets.clone(),
                allow_sha1: cfg.allow_sha1,
                allow_unsigned: cfg.allow_unsigned,
            },
        );
        for ep in &cfg.endpoints {
            endpoints.insert(
                ep.name.clone(),
                Endpoint {
                    name: ep.name.clone(),
                    secrets: ep.secrets.clone(),
                    allow_sha1: ep.allow_sha1.unwrap_or(cfg.allow_sha1),
                    allow_unsigned: cfg.allow_unsigned,
                },
            );
        }
        let rejection_logs = Arc::new(RejectionLogs::new(endpoints.keys().map(String::as_str)));
        Self {
            endpoints: Arc::new(endpoints),
            buffer,
            metrics,
            body: BodyLimits::new(cfg),
            retry_after: HeaderValue::from(cfg.retry_after_secs),
            observers: Arc::new([]),
            limiter: (cfg.rate_limit_per_source > 0)
                .then(|| Arc::new(RateLimiter::new(cfg.rate_limit_per_source))),
            rejection_logs,
        }
    }

    /// Adds an observer of request outcomes.
    pub fn with_observer(mut self, o: Arc<dyn Observer>) -> Self {
        self.observers = self.observers.iter().cloned().chain(std::iter::once(o)).collect();
        self
    }

    fn observe(
        &self,
        ep: &str,
        topic: Option<&str>,
        status: StatusCode,
        events: usize,
        reason: Option<&str>,
    ) {
        for o in self.observers.iter() {
            o.observe(ep, topic, status.as_u16(), events, reason);
        }
    }
}

/// The webhook routes: `{path}` and `{path}/{name}`.
pub fn router(path: &str, state: IngestState) -> Router {
    Router::new()
        .route(path, post(default_endpoint))
        .route(&format!("{path}/{{name}}"), post(named_endpoint))
        // Behind one Arc: axum clones the state for every request, and cloning the fields
        // (a dozen reference counts shared by both cores) cost 1.5 % of the server's CPU.
        .with_state(Arc::new(state))
}

async fn default_endpoint(State(st): State<Arc<IngestState>>, req: Request<Body>) -> Response {
    receive(&st, DEFAULT_ENDPOINT, req).await
}

async fn named_endpoint(
    State(st): State<Arc<IngestState>>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Response {
    if name == DEFAULT_ENDPOINT || !st.endpoints.contains_key(&name) {
        return json_error(StatusCode::NOT_FOUND, &Refusal::NoSuchEndpoint.message());
    }
    receive(&st, &name, req).await
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    let body = serde_json::json!({ "error": msg }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn receive(st: &IngestState, name: &str, req: Request<Body>) -> Response {
    let Some(ep) = st.endpoints.get(name) else {
        return json_error(StatusCode::NOT_FOUND, &Refusal::NoSuchEndpoint.message());
    };
    let received_at_ns = now_ns();
    let (parts, body) = req.into_parts();
    match accept(st, ep, &parts, body, received_at_ns).await {
        Ok(delivery) => st.answer_accepted(name, delivery, received_at_ns),
        Err(refusal) => st.answer_refused(name, refusal, &parts),
    }
}

/// Limits → signature → envelope → buffer. Order matters: nothing is parsed before the
/// signature has been checked over the raw bytes.
async fn accept(
    st: &IngestState,
    ep: &Endpoint,
    parts: &Parts,
    body: Body,
    received_at_ns: u64,
) -> Result<Accepted, Refusal> {
    // Per-source rate limit, before reading anything.
    if let (Some(rl), Some(peer)) = (&st.limiter, parts.extensions.get::<PeerAddr>())
        && !rl.allow(peer.0.ip(), std::time::Instant::now())
    {
        return Err(Refusal::RateLimited);
    }
    // The budget permits are held until the request is answered.
    let (body, _held) = st.body.read(&parts.headers, body).await?;
    let (scheme, index) = match verify(ep, &parts.headers, &body) {
        Verdict::V2(i) => (Scheme::V2, Some(i)),
        Verdict::V1(i) => (Scheme::V1, Some(i)),
        Verdict::Unsigned => (Scheme::Unsigned, None),
        Verdict::Rejected(r) => return Err(Refusal::Unauthorized(r)),
    };
    st.metrics.signature_match(&ep.name, scheme, index);
    // A validation pass suffices (same verdict as the full parse, no per-field allocation);
    // the pipeline parses in full later, and the status page only when viewed.
    let summary = Envelope::validate(&body).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    let delivery = Accepted {
        topic_label: topic_label(&summary.topic),
        topic: summary.topic,
        events: summary.events,
        body,
    };
    // Answer 200 only once the delivery is kept (`ping` is answered, not kept).
    if delivery.topic != "ping" {
        store(st, &ep.name, parts, &delivery, received_at_ns).await?;
    }
    Ok(delivery)
}

/// Appends the delivery to the buffer; a full buffer or a failed write refuses it.
async fn store(
    st: &IngestState,
    name: &str,
    parts: &Parts,
    d: &Accepted,
    received_at_ns: u64,
) -> Result<(), Refusal> {
    let refused = |full: bool| {
        let (topic_label, topic, events) = (d.topic_label, d.topic.clone(), d.events);
        if full {
            Refusal::Busy { topic_label, topic, events }
        } else {
            Refusal::StorageFailed { topic_label, topic, events }
        }
    };
    match st.buffer.append(name, received_at_ns, d.body.clone()).await {
        Ok(_) => Ok(()),
        Err(AppendError::Full) => Err(refused(true)),
        Err(e) => {
            let (request_id, peer) = request_context(parts);
            tracing::error!(endpoint = name, request_id, %peer, error = %e, "cannot store delivery");
            Err(refused(false))
        }
    }
}

impl IngestState {
    /// Counts, shows and answers an accepted delivery.
    fn answer_accepted(&self, name: &str, d: Accepted, received_at_ns: u64) -> Response {
        self.metrics.accepted(name, d.topic_label, d.body.len() as u64, d.events as u64);
        self.observe(name, Some(&d.topic), StatusCode::OK, d.events, None);
        for o in self.observers.iter() {
            o.accepted(name, &d.topic, &d.body, received_at_ns);
        }
        // Written directly: a `json!` value would cost a map and several allocations per delivery.
        let body = format!(r#"{{"status":"accepted","events":{}}}"#, d.events);
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }

    /// Counts, logs, shows and answers a refusal.
    fn answer_refused(&self, name: &str, r: Refusal, parts: &Parts) -> Response {
        if let Some(outcome) = r.outcome() {
            self.metrics.outcome(name, r.topic_label(), outcome);
        }
        match &r {
            Refusal::RateLimited => {
                self.metrics.rate_limited.inc();
            }
            Refusal::Unauthorized(reason) => {
                self.metrics.signature_failure(name, *reason);
                self.log_rejection(name, *reason, parts);
            }
            _ => {}
        }
        if let Some(reason) = r.reason() {
            let (topic, events) = r.parsed().map_or((None, 0), |(t, n)| (Some(t), n));
            self.observe(name, topic, r.status(), events, Some(&reason));
        }
        let mut resp = json_error(r.status(), &r.message());
        let retry_after = match r.retry_after() {
            RetryAfter::No => None,
            RetryAfter::OneSecond => Some(HeaderValue::from_static("1")),
            RetryAfter::Configured => Some(self.retry_after.clone()),
        };
        if let Some(v) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl IngestState {
    /// Logs a rejected signature, a few lines per second per endpoint and reason: one line per
    /// request let an unauthenticated sender fill the disk. The counter keeps the exact number.
    fn log_rejection(&self, name: &str, reason: Rejection, parts: &Parts) {
        let Admit::Log(suppressed) = self.rejection_logs.admit(name, reason, std::time::Instant::now())
        else {
            return;
        };
        let reason = reason.as_str();
        if let Some(s) = suppressed {
            tracing::warn!(
                endpoint = name,
                reason,
                suppressed = s.lines,
                seconds = s.seconds,
                "rejected webhook signatures not logged"
            );
        }
        let (request_id, peer) = request_context(parts);
        tracing::warn!(endpoint = name, request_id, %peer, reason, "rejected webhook signature");
    }
}

fn verify(ep: &Endpoint, headers: &HeaderMap, body: &Bytes) -> Verdict {
    signature::verify(
        &ep.secrets,
        ep.allow_sha1,
        ep.allow_unsigned,
        body,
        headers.get(HEADER_V2).map(HeaderValue::as_bytes),
        headers.get(HEADER_V1).map(HeaderValue::as_bytes),
    )
}

/// The request id (set or propagated by the id layer) and the peer, for log lines. Logged per
/// line rather than through a per-request span: a span costs every request, a field only the
/// requests that log.
fn request_context(parts: &Parts) -> (&str, String) {
    let id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0.to_string()).unwrap_or_default();
    (id, peer)
}
