//! The admin listener (loopback by default): `/healthz`, `/readyz`, `/metrics` and the status page.

pub mod config;
pub mod health;
pub mod status;

pub use config::AdminConfig;
pub use health::HealthSources;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::sync::Arc;

pub use crate::telemetry::MetricsSource;

/// What the admin handlers read.
#[derive(Clone)]
pub struct AdminState {
    /// The self-metrics registry.
    pub registry: Arc<Registry>,
    /// Extra `/metrics` text sources.
    pub extra_metrics: Vec<MetricsSource>,
    /// The components' health, which `/readyz` reads.
    pub health: HealthSources,
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
    match st.health.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
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
