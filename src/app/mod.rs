//! Wires the components together: buffer, ingest listener, export pipeline, poller and admin
//! listener; runs them until shutdown, then flushes.

pub mod config;

pub use config::Config;

use crate::admin::{self, AdminState, ReadyCheck};
use crate::buffer::Buffer;
use crate::exporter::Exporters;
use crate::ingest::handler::DEFAULT_ENDPOINT;
use crate::ingest::server::{self, ConnLimits, TlsReloader};
use crate::ingest::{self, IngestMetrics, IngestState};
use crate::pipeline::{ExportMetrics, MetricsProducer, Pipeline};
use crate::signals::Translator;
use crate::telemetry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: std::io::Error },
    /// TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] server::TlsError),
    /// The configuration cannot serve anything.
    #[error("{0}")]
    Config(String),
    /// The data directory or buffer could not be opened.
    #[error("data directory {path}: {message}")]
    DataDir { path: String, message: String },
}

/// A running server.
pub struct Running {
    /// Where the webhook listener is bound.
    pub webhook_addr: SocketAddr,
    /// Where the admin listener is bound.
    pub admin_addr: SocketAddr,
    cancel: CancellationToken,
    pipeline_cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    pipeline: JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets requests finish, flushes (within `export.shutdown_timeout`; what
    /// is not exported by then stays on disk), and returns when everything stopped.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        // Only now, with no request left in flight, may the pipeline drain and stop: a delivery
        // accepted during the listener's grace period is then still exported (which matters
        // most for `buffer.durable: false`, where nothing is replayed).
        self.pipeline_cancel.cancel();
        let _ = self.pipeline.await;
    }
}

/// Starts every component and returns once the listeners are bound.
pub async fn start(cfg: Config) -> Result<Running, StartError> {
    start_with_producers(cfg, Vec::new()).await
}

/// Like [`start`], with extra metric sources (e.g. the poller) collected at every metric export
/// alongside the translator's aggregation.
pub async fn start_with_producers(
    cfg: Config,
    mut producers: Vec<Arc<dyn MetricsProducer>>,
) -> Result<Running, StartError> {
    if cfg.ingest.default_endpoint_unusable() && cfg.ingest.endpoints.is_empty() {
        return Err(StartError::Config(
            "no webhook secret configured: set MIST_WEBHOOK_SECRET (or ingest.secrets), \
             or set ingest.allow_unsigned: true to accept unsigned deliveries"
                .into(),
        ));
    }
    if cfg.ingest.secrets.is_empty() && cfg.ingest.allow_unsigned {
        tracing::warn!(
            "ingest.allow_unsigned is on: deliveries are NOT verified; anyone who can reach the listener can inject events"
        );
    }
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| StartError::DataDir {
        path: cfg.data_dir.display().to_string(),
        message: e.to_string(),
    })?;

    let cancel = CancellationToken::new();
    let mut registry = telemetry::new_registry();
    let ingest_metrics = IngestMetrics::register(&mut registry);
    let buffer = Buffer::open(&cfg.buffer, &cfg.data_dir, &mut registry).map_err(|e| {
        StartError::DataDir { path: cfg.data_dir.display().to_string(), message: e.to_string() }
    })?;
    let exporters = Exporters::build(&cfg.export).map_err(|e| StartError::Config(e.to_string()))?;
    let export_metrics = ExportMetrics::register(&mut registry);

    let tls = cfg.ingest.tls.clone().map(TlsReloader::new).transpose()?;
    let webhook_listener = TcpListener::bind(cfg.ingest.listen).await.map_err(|source| StartError::Bind {
        what: "webhooks",
        addr: cfg.ingest.listen,
        source,
    })?;
    let admin_listener = TcpListener::bind(cfg.admin.listen).await.map_err(|source| StartError::Bind {
        what: "admin",
        addr: cfg.admin.listen,
        source,
    })?;
    let webhook_addr = webhook_listener.local_addr().map_err(|source| StartError::Bind {
        what: "webhooks",
        addr: cfg.ingest.listen,
        source,
    })?;
    let admin_addr = admin_listener.local_addr().map_err(|source| StartError::Bind {
        what: "admin",
        addr: cfg.admin.listen,
        source,
    })?;

    let mut tasks = Vec::new();
    let mut extra_metrics: Vec<admin::MetricsSource> = Vec::new();
    if cfg.poller.enabled {
        let poller = crate::poller::start(&cfg.poller, &mut registry, cancel.clone())
            .await
            .map_err(|e| StartError::Config(e.to_string()))?;
        extra_metrics.push(poller.metrics_source());
        // The same gauges go out over OTLP at every metric export.
        producers.push(poller.producer(&cfg.signals));
        tasks.push(tokio::spawn(poller.join()));
    }
    // The status page watches every request outcome through the ingest observer hook.
    let status_board = Arc::new(admin::status::StatusBoard::new());
    let state = IngestState::new(&cfg.ingest, buffer.clone(), ingest_metrics.clone())
        .with_observer(status_board.clone());
    let router = with_request_ids(ingest::router(&cfg.ingest.path, state));
    if let Some(t) = tls.clone() {
        tasks.push(tokio::spawn(t.watch(cancel.clone())));
    }
    let limits =
        ConnLimits { max_connections: cfg.ingest.max_connections, header_timeout: cfg.ingest.header_timeout };
    tasks.push(tokio::spawn(server::serve(
        webhook_listener,
        router,
        tls,
        limits,
        ingest_metrics,
        cancel.clone(),
        Duration::from_secs(10),
    )));

    let mut attributes = HashMap::new();
    attributes.insert(DEFAULT_ENDPOINT.to_owned(), cfg.ingest.attributes.clone());
    for ep in &cfg.ingest.endpoints {
        attributes.insert(ep.name.clone(), ep.attributes.clone());
    }
    let pipeline = Pipeline::new(
        buffer.clone(),
        Translator::new(&cfg.signals),
        exporters,
        cfg.export.clone(),
        attributes,
        producers,
        export_metrics,
    );
    let pipeline_cancel = CancellationToken::new();
    let pipeline = tokio::spawn(pipeline.run(pipeline_cancel.clone()));
    // The oldest-undelivered age must keep growing while the pipeline is stuck retrying, so it
    // is refreshed here rather than by the pipeline.
    let (age_buffer, age_cancel) = (buffer.clone(), cancel.clone());
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => age_buffer.refresh_age(crate::clock::now_ns()),
                _ = age_cancel.cancelled() => break,
            }
        }
    }));

    let ready_buffer = buffer.clone();
    let ready: Vec<ReadyCheck> =
        vec![Arc::new(move || if ready_buffer.has_room() { Ok(()) } else { Err("buffer full".into()) })];
    let registry = Arc::new(registry);
    let status_router = admin::status::router(status_board, registry.clone(), cancel.clone());
    let admin_state = AdminState { registry, extra_metrics, ready };
    let admin_router = admin::router(admin_state).merge(status_router);
    let admin_cancel = cancel.clone();
    tasks.push(tokio::spawn(async move {
        let r = axum::serve(admin_listener, admin_router)
            .with_graceful_shutdown(async move { admin_cancel.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "admin listener failed");
        }
    }));

    tracing::info!(webhooks = %webhook_addr, admin = %admin_addr, path = %cfg.ingest.path, tls = cfg.ingest.tls.is_some(), "mist-otel listening");
    Ok(Running { webhook_addr, admin_addr, cancel, pipeline_cancel, tasks, pipeline })
}

/// Request ids: taken from `X-Request-Id` or generated, and echoed back. The handler puts the id
/// (and the peer) on every line it logs about a request.
fn with_request_ids(router: axum::Router) -> axum::Router {
    router.layer(RequestIdLayer(RequestIds::new()))
}

/// The request-id header.
const X_REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Sets `X-Request-Id` on the request (the sender's, else a new one) for the handler's log
/// lines, and echoes it on the answer unless the answer has one: what `tower_http`'s
/// set/propagate pair does, in one layer, headers only (no request extension, no boxing).
#[derive(Clone)]
struct RequestIdLayer(RequestIds);

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner, ids: self.0.clone() }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Clone)]
struct RequestIdService<S> {
    inner: S,
    ids: RequestIds,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for RequestIdService<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = WithRequestId<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) => v.clone(),
            None => {
                let v = self.ids.next();
                req.headers_mut().insert(X_REQUEST_ID, v.clone());
                v
            }
        };
        WithRequestId { inner: self.inner.call(req), id: Some(id) }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`RequestIdService`], with the id echoed.
    struct WithRequestId<F> {
        #[pin]
        inner: F,
        id: Option<axum::http::HeaderValue>,
    }
}

impl<F, R, E> std::future::Future for WithRequestId<F>
where
    F: std::future::Future<Output = Result<axum::http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let this = self.project();
        let mut resp = std::task::ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            resp.headers_mut().entry(X_REQUEST_ID).or_insert(id);
        }
        std::task::Poll::Ready(Ok(resp))
    }
}

/// Request ids shaped as UUIDv4 text: 74 random bits drawn once per process, then a 48-bit
/// counter. Unique within a process and across restarts (with overwhelming odds), without the
/// `getrandom` system call per request that `tower_http`'s `MakeRequestUuid` makes. They
/// count up, so they are guessable: they identify requests in logs, they are not secrets.
#[derive(Clone)]
struct RequestIds {
    base: u64,
    /// 10 more random bits, for the fourth group.
    base2: u64,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // std seeds every RandomState from the OS's random source.
        let random = || std::collections::hash_map::RandomState::new().build_hasher().finish();
        Self { base: random(), base2: random(), next: Arc::new(std::sync::atomic::AtomicU64::new(0)) }
    }

    /// The next id.
    fn next(&self) -> axum::http::HeaderValue {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xffff_ffff_ffff;
        let b = self.base;
        // xxxxxxxx-xxxx-4xxx-[89ab]xxx-<counter>: version 4, RFC 4122 variant.
        let id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{n:012x}",
            b >> 32,
            (b >> 16) & 0xffff,
            0x4000 | ((b >> 4) & 0x0fff),
            0x8000 | ((b & 0xf) << 10) | (self.base2 & 0x3ff),
        );
        // Hex digits and dashes only: always a valid header value.
        axum::http::HeaderValue::try_from(id)
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("invalid"))
    }
}

#[cfg(test)]
mod tests {
    use super::RequestIds;

    #[test]
    fn request_ids_are_distinct_uuid_v4_text() {
        let ids = RequestIds::new();
        let other = RequestIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let text = ids.next().to_str().expect("ASCII").to_owned();
            let parts: Vec<&str> = text.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{text}");
            assert!(text.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{text}");
            assert!(parts[2].starts_with('4') && "89ab".contains(&parts[3][..1]), "{text}");
            assert!(seen.insert(text), "duplicate id");
        }
        // Another generator (another process, in effect) starts elsewhere.
        assert!(!seen.contains(other.next().to_str().expect("ASCII")));
    }
}
