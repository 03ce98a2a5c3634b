//! Wires the components together: buffer, ingest listener, export pipeline, poller and admin
//! listener; runs them until shutdown, then flushes.

pub mod config;
pub mod preflight;

pub use config::Config;
pub use preflight::{PreflightError, Prepared, prepare};

use crate::admin::{self, AdminState, HealthSources};
use crate::buffer::Buffer;
use crate::deadletter::DeadLetters;
use crate::exporter::Exporters;
use crate::ingest::handler::DEFAULT_ENDPOINT;
use crate::ingest::server::{self, ConnLimits, TlsReloader};
use crate::ingest::{self, IngestMetrics, IngestState};
use crate::pipeline::{ExportMetrics, MetricsProducer, Pipeline};
use crate::signals::Translator;
use crate::telemetry;
use std::collections::{BTreeMap, HashMap};
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
    /// The configuration fails a start-time check ([`prepare`]).
    #[error(transparent)]
    Preflight(#[from] PreflightError),
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
    poller: Option<crate::poller::PollerHandle>,
    pipeline: JoinHandle<()>,
}

/// How long shutdown waits for the poller before flushing regardless: its REST waits end with
/// the cancellation, so this only bounds a stalled stream close.
const POLLER_STOP_WAIT: Duration = Duration::from_secs(2);

impl Running {
    /// Starts the poller once the listeners serve: a slow or silent Mist never delays them,
    /// while a token Mist refuses still fails the start, loudly (everything started is stopped).
    async fn with_poller(mut self, poller: crate::poller::PreparedPoller) -> Result<Running, StartError> {
        match poller.start().await {
            Ok(handle) => {
                self.poller = Some(handle);
                Ok(self)
            }
            Err(e) => {
                self.shutdown().await;
                Err(StartError::Config(e.to_string()))
            }
        }
    }

    /// Stops accepting, lets requests finish, stops the poller (waiting at most 2 s, whatever
    /// Mist is doing), flushes (within `export.shutdown_timeout`; what is not exported by then
    /// stays on disk), and returns when everything stopped.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(poller) = self.poller {
            poller.stop(POLLER_STOP_WAIT).await;
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
    let Prepared { exporters, tls } = prepare(&cfg)?;
    let data_dir_error =
        |message: String| StartError::DataDir { path: cfg.data_dir.display().to_string(), message };
    std::fs::create_dir_all(&cfg.data_dir).map_err(|e| data_dir_error(e.to_string()))?;

    let cancel = CancellationToken::new();
    let mut registry = telemetry::new_registry();
    let ingest_metrics = IngestMetrics::register(&mut registry);
    let buffer =
        Buffer::open(&cfg.buffer, &cfg.data_dir, &mut registry).map_err(|e| data_dir_error(e.to_string()))?;
    let export_metrics = ExportMetrics::register(&mut registry);
    let (webhook_listener, webhook_addr) = bind("webhooks", cfg.ingest.listen).await?;
    let (admin_listener, admin_addr) = bind("admin", cfg.admin.listen).await?;

    let mut tasks = Vec::new();
    let mut extra_metrics: Vec<admin::MetricsSource> = Vec::new();
    let mut health =
        HealthSources { buffer: Some(buffer.clone()), export: Some(export_metrics.clone()), poller: None };
    // The poller's metrics and readers exist now; it talks to Mist only once the listeners
    // serve (below), so a slow or silent Mist never delays them.
    let prepared = match cfg.poller.enabled {
        true => Some(
            crate::poller::prepare(&cfg.poller, &mut registry, cancel.clone())
                .map_err(|e| StartError::Config(e.to_string()))?,
        ),
        false => None,
    };
    if let Some(p) = &prepared {
        extra_metrics.push(p.metrics_source());
        health.poller = Some(p.health_source());
        // The same gauges go out over OTLP at every metric export.
        producers.push(p.producer(&cfg.signals));
    }
    // The status page watches every request outcome through the ingest observer hook.
    let status_board = Arc::new(admin::status::StatusBoard::new());
    let webhooks =
        Webhooks { listener: webhook_listener, tls, metrics: ingest_metrics, board: status_board.clone() };
    tasks.extend(webhooks.start(&cfg, buffer.clone(), &cancel));

    let (pipeline, pipeline_cancel) =
        spawn_pipeline(&cfg, buffer.clone(), exporters, producers, export_metrics)?;
    tasks.push(tokio::spawn(refresh_buffer_age(buffer, cancel.clone())));

    let registry = Arc::new(registry);
    let status_router = admin::status::router(status_board, health.clone(), cancel.clone());
    let admin_router = admin::router(AdminState { registry, extra_metrics, health }).merge(status_router);
    tasks.push(tokio::spawn(serve_admin(admin_listener, admin_router, cancel.clone())));

    tracing::info!(webhooks = %webhook_addr, admin = %admin_addr, path = %cfg.ingest.path, tls = cfg.ingest.tls.is_some(), "mist-otel listening");
    let running =
        Running { webhook_addr, admin_addr, cancel, pipeline_cancel, tasks, poller: None, pipeline };
    match prepared {
        Some(p) => running.with_poller(p).await,
        None => Ok(running),
    }
}

/// Starts the export pipeline with its dead-letter store; returns its task and its own
/// cancellation (it stops after the listeners, see [`Running::shutdown`]).
fn spawn_pipeline(
    cfg: &Config,
    buffer: Buffer,
    exporters: Exporters,
    producers: Vec<Arc<dyn MetricsProducer>>,
    metrics: ExportMetrics,
) -> Result<(JoinHandle<()>, CancellationToken), StartError> {
    let dead_letters = open_dead_letters(cfg, &metrics)?;
    let translator = Translator::new(&cfg.signals);
    let attributes = endpoint_attributes(cfg);
    let pipeline =
        Pipeline::new(buffer, translator, exporters, cfg.export.clone(), attributes, producers, metrics)
            .with_dead_letters(dead_letters);
    let cancel = CancellationToken::new();
    Ok((tokio::spawn(pipeline.run(cancel.clone())), cancel))
}

/// Opens the dead-letter store of the data directory, its gauges among the export metrics.
fn open_dead_letters(cfg: &Config, metrics: &ExportMetrics) -> Result<Arc<DeadLetters>, StartError> {
    DeadLetters::open(&cfg.data_dir, cfg.export.dead_letter_max_bytes, metrics.dead_letters.clone())
        .map(Arc::new)
        .map_err(|e| StartError::DataDir {
            path: cfg.data_dir.display().to_string(),
            message: format!("deadletter: {e}"),
        })
}

/// What the webhook listener is started with.
struct Webhooks {
    listener: TcpListener,
    tls: Option<Arc<TlsReloader>>,
    metrics: IngestMetrics,
    board: Arc<admin::status::StatusBoard>,
}

impl Webhooks {
    /// Starts the handler (watched by the status board, behind request ids), the TLS reloader
    /// and the accept loop with its connection limits.
    fn start(self, cfg: &Config, buffer: Buffer, cancel: &CancellationToken) -> Vec<JoinHandle<()>> {
        let Webhooks { listener, tls, metrics, board } = self;
        let state = IngestState::new(&cfg.ingest, buffer, metrics.clone()).with_observer(board);
        let router = ingest::request_id::with_request_ids(ingest::router(&cfg.ingest.path, state));
        let mut tasks = Vec::new();
        if let Some(t) = tls.clone() {
            tasks.push(tokio::spawn(t.watch(cancel.clone())));
        }
        let limits = ConnLimits {
            max_connections: cfg.ingest.max_connections,
            max_connections_per_source: cfg.ingest.max_connections_per_source,
            header_timeout: cfg.ingest.header_timeout,
        };
        let grace = Duration::from_secs(10);
        tasks.push(tokio::spawn(server::serve(
            listener,
            router,
            tls,
            limits,
            metrics,
            cancel.clone(),
            grace,
        )));
        tasks
    }
}

/// Binds a listener and reads back its address (port 0 becomes the real port).
async fn bind(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let err = |source| StartError::Bind { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

/// The resource attributes each endpoint adds to its events.
fn endpoint_attributes(cfg: &Config) -> HashMap<String, BTreeMap<String, String>> {
    let mut attributes = HashMap::new();
    attributes.insert(DEFAULT_ENDPOINT.to_owned(), cfg.ingest.attributes.clone());
    for ep in &cfg.ingest.endpoints {
        attributes.insert(ep.name.clone(), ep.attributes.clone());
    }
    attributes
}

/// Keeps the oldest-undelivered age growing while the pipeline is stuck retrying (so it is
/// refreshed here rather than by the pipeline).
async fn refresh_buffer_age(buffer: Buffer, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => buffer.refresh_age(crate::clock::now_ns()),
            _ = cancel.cancelled() => break,
        }
    }
}

/// Serves the admin listener until shutdown.
async fn serve_admin(listener: TcpListener, router: axum::Router, cancel: CancellationToken) {
    let r =
        axum::serve(listener, router).with_graceful_shutdown(async move { cancel.cancelled().await }).await;
    if let Err(e) = r {
        tracing::error!(error = %e, "admin listener failed");
    }
}
