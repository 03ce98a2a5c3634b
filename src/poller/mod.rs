//! Optional Mist API poller: live device, radio and client gauges from the WebSocket stream
//! and org figures from REST.
//!
//! REST cost is O(1) per refresh per org, independent of scrapes and of the number of sites:
//! the site list (one page of 1,000 sites) every `site_refresh_interval`, and four org-level
//! count calls (alarms by type, tickets by status, devices and clients by site) every
//! `org_interval`. Scrapes and OTLP collections only read memory.
//!
//! Design: stream frames and REST answers go into one [`state::State`] behind a mutex; readers
//! gather it into metric families and render them as Prometheus text or OTLP. Files:
//! - [`config`] — settings; [`state`] — what is known, merged per MAC, forgotten after a TTL;
//! - [`events`] — the stream's sink; [`run`] — the refresh loop (discovery, sites, org, prune);
//! - [`catalog`] — the Go exporter's family definitions; [`family`] — the neutral model;
//! - [`gather`] — state → families; [`prometheus`] and [`otlp`] — the two renderings;
//! - [`producer`] — the readers behind `/metrics` and the OTLP export.
//!
//! Invariants: the state lock is held only to merge one frame, apply one refresh or gather —
//! never across an await or while rendering; family names, label names and values are the Go
//! exporter's (shipped dashboards query them); entries not updated for `series_ttl` are left
//! out of every reading, and sites that leave the list take their series with them.
//! The poller never holds the server hostage: start-up waits at most [`START_DISCOVERY_WAIT`]
//! on Mist, every REST wait ends when the cancellation token fires, and [`PollerHandle::stop`]
//! bounds what shutdown waits for.
//!
//! Self-metrics and the typed health snapshot live in [`crate::telemetry::poller`].

pub mod catalog;
pub mod config;
pub mod events;
pub mod family;
pub mod gather;
pub mod otlp;
pub mod producer;
pub mod prometheus;
pub mod run;
pub mod state;

use crate::mist::api::{ApiClient, ApiError, ApiOptions};
use crate::mist::cloud;
use crate::mist::stream::{Stream, StreamOptions};
use crate::pipeline::MetricsProducer;
use crate::signals::SignalsConfig;
use crate::telemetry::poller::{PollerHealthSource, PollerMetrics};
use config::PollerConfig;
use prometheus_client::registry::Registry;
use state::{SharedState, State};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the poller could not start.
#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    /// A permanent API problem (bad token, no or several orgs, unknown cloud).
    #[error("poller: {0}")]
    Api(#[from] ApiError),
}

/// A running poller.
pub struct PollerHandle {
    shared: SharedState,
    health: PollerHealthSource,
    task: JoinHandle<()>,
}

impl PollerHandle {
    /// A source for the admin `/metrics`: the Go exporter's families as Prometheus text.
    pub fn metrics_source(&self) -> crate::telemetry::MetricsSource {
        producer::metrics_source(self.shared.clone())
    }

    /// The same figures for the OTLP export pipeline, on the resources the webhook signals
    /// use (`signals.service_name`, `signals.resource_attributes`, org and site).
    pub fn producer(&self, signals: &SignalsConfig) -> Arc<dyn MetricsProducer> {
        Arc::new(producer::Producer { shared: self.shared.clone(), signals: signals.clone() })
    }

    /// The poller's typed health (per-site subscriptions, refreshes, API calls), for the
    /// status page: clone the source and call `health()` whenever needed.
    pub fn health_source(&self) -> PollerHealthSource {
        self.health.clone()
    }

    /// Waits for the poller to stop (after its cancellation token fired).
    pub async fn join(self) {
        let _ = self.task.await;
    }

    /// Waits at most `within` for the poller to stop (after its cancellation token fired),
    /// then aborts it, so a stalled Mist never delays the server's shutdown. Returns whether
    /// it stopped by itself.
    pub async fn stop(mut self, within: Duration) -> bool {
        if tokio::time::timeout(within, &mut self.task).await.is_ok() {
            return true;
        }
        self.task.abort();
        tracing::warn!(waited_s = within.as_secs_f64(), "Mist poller did not stop in time; aborted");
        false
    }
}

/// How long start-up waits for Mist's `/self` (org discovery, token check) before the server
/// comes up without it and discovery continues in the background.
pub const START_DISCOVERY_WAIT: Duration = Duration::from_secs(3);

/// Starts the poller: [`prepare`], then [`PreparedPoller::start`].
pub async fn start(
    cfg: &PollerConfig,
    registry: &mut Registry,
    cancel: CancellationToken,
) -> Result<PollerHandle, PollerError> {
    prepare(cfg, registry, cancel)?.start().await
}

/// Registers the poller's self-metrics and builds its client and state, without asking Mist
/// anything: its `/metrics` source, OTLP producer and health exist before the server's
/// listeners start, and [`PreparedPoller::start`] talks to Mist after they serve.
pub fn prepare(
    cfg: &PollerConfig,
    registry: &mut Registry,
    cancel: CancellationToken,
) -> Result<PreparedPoller, PollerError> {
    let metrics = PollerMetrics::register(registry);
    let opts = ApiOptions {
        timeout: cfg.request_timeout,
        calls_per_hour: cfg.calls_per_hour,
        ..ApiOptions::default()
    };
    let api = ApiClient::new(&cfg.cloud, cfg.token.clone(), opts, metrics.api.clone())?;
    let org_id = cfg.org_id.trim().to_owned();
    let shared = Arc::new(Mutex::new(State::new(org_id, cfg.max_clients, cfg.series_ttl)));
    Ok(PreparedPoller { cfg: cfg.clone(), api, metrics, shared, cancel })
}

/// A poller with its metrics and readers in place that has not started talking to Mist.
pub struct PreparedPoller {
    cfg: PollerConfig,
    api: ApiClient,
    metrics: PollerMetrics,
    shared: SharedState,
    cancel: CancellationToken,
}

impl PreparedPoller {
    /// A source for the admin `/metrics`, as [`PollerHandle::metrics_source`].
    pub fn metrics_source(&self) -> crate::telemetry::MetricsSource {
        producer::metrics_source(self.shared.clone())
    }

    /// The OTLP producer, as [`PollerHandle::producer`].
    pub fn producer(&self, signals: &SignalsConfig) -> Arc<dyn MetricsProducer> {
        Arc::new(producer::Producer { shared: self.shared.clone(), signals: signals.clone() })
    }

    /// The typed health, as [`PollerHandle::health_source`].
    pub fn health_source(&self) -> PollerHealthSource {
        self.metrics.health_source()
    }

    /// Resolves the org (from `/self` when `org_id` is empty, waiting at most
    /// [`START_DISCOVERY_WAIT`]; a token Mist refuses or that sees zero or several orgs is an
    /// error naming the choices), then runs site discovery, the stream and org figures until
    /// the cancellation token fires.
    pub async fn start(self) -> Result<PollerHandle, PollerError> {
        let PreparedPoller { cfg, api, metrics, shared, cancel } = self;
        let org_id = resolve_org(&cfg, &api).await?;
        if !org_id.is_empty() {
            state::lock(&shared).org_id = org_id;
        }
        let sink = events::sink(shared.clone(), metrics.poller.clone());
        let stream =
            Stream::new(stream_options(&cfg, &api), sink, metrics.stream.clone(), cancel.child_token());
        let poller = run::Poller { cfg, api, shared: shared.clone(), tele: metrics.poller.clone(), stream };
        let task = tokio::spawn(poller.run(cancel));
        Ok(PollerHandle { shared, health: metrics.health_source(), task })
    }
}

/// The configured org, or the token's single org from `/self`. A token that Mist answers
/// with zero or several orgs, or refuses, fails the start with a clear message. Mist being
/// unreachable, rate limiting or not answering within [`START_DISCOVERY_WAIT`] does not: the
/// webhook path must come up at once, so discovery goes on in the background (an empty id here).
async fn resolve_org(cfg: &PollerConfig, api: &ApiClient) -> Result<String, PollerError> {
    if !cfg.org_id.trim().is_empty() {
        return Ok(cfg.org_id.trim().to_owned());
    }
    match tokio::time::timeout(START_DISCOVERY_WAIT, api.discover_org()).await {
        Ok(Ok(org)) => {
            tracing::info!(org_id = %org, "Mist organisation discovered from /self");
            Ok(org)
        }
        Ok(Err(e)) if e.is_permanent() => Err(e.into()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Mist organisation discovery failed; retrying in the background");
            Ok(String::new())
        }
        Err(_) => {
            tracing::warn!(
                waited_s = START_DISCOVERY_WAIT.as_secs_f64(),
                "Mist did not answer /self in time; starting without it, discovery goes on in the background"
            );
            Ok(String::new())
        }
    }
}

fn stream_options(cfg: &PollerConfig, api: &ApiClient) -> StreamOptions {
    let url = if cfg.stream.url.is_empty() { cloud::stream_url(api.base()) } else { cfg.stream.url.clone() };
    StreamOptions {
        url,
        token: cfg.token.clone(),
        ping_interval: cfg.stream.ping_interval,
        read_timeout: cfg.stream.read_timeout,
        subscribe_timeout: cfg.stream.subscribe_timeout,
        refused_retry: cfg.stream.refused_retry,
        connect_timeout: cfg.request_timeout,
        backoff_min: cfg.stream.backoff_min,
        backoff_max: cfg.stream.backoff_max,
        channels_per_connection: cfg.stream.channels_per_connection,
    }
}
