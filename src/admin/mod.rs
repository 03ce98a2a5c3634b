//! The admin listener (loopback by default): `/healthz`, `/readyz`, `/metrics` and the status page.

pub mod config;
pub mod status;

pub use config::AdminConfig;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// A source of extra Prometheus text appended to `/metrics` (e.g. the poller's gauges).
pub type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

/// Readiness check: `Err(reason)` when the server cannot accept deliveries now.
pub type ReadyCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// The self-metrics registry.
    pub registry: Arc<Registry>,
    /// Extra `/metrics` text sources.
    pub extra_metrics: Vec<MetricsSource>,
    /// Readiness checks; all must pass.
    pub ready: Vec<ReadyCheck>,
}

/// Builds the admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(st): State<AdminState>) -> impl IntoResponse {
    let failures: Vec<String> = st.ready.iter().filter_map(|c| c().err()).collect();
    if failures.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", failures.join("; ")))
    }
}

async fn metrics(State(st): State<AdminState>) -> impl IntoResponse {
    let mut text = crate::telemetry::render(&st.registry);
    // The registry ends with "# EOF"; Prometheus text needs the extra sources before it.
    if let Some(stripped) = text.strip_suffix("# EOF\n") {
        text.truncate(stripped.len());
    }
    for src in &st.extra_metrics {
        src(&mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}
