//! The server's own telemetry: the Prometheus registry behind the admin `/metrics`, and the
//! structured log set-up.

use crate::config::{LogConfig, LogFormat};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Creates the registry every component registers its self-metrics into. Names get the
/// `mist_otel_` prefix.
pub fn new_registry() -> Registry {
    Registry::with_prefix("mist_otel")
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode_registry(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// A frozen registry shared by the admin listener.
pub type SharedRegistry = Arc<Registry>;

/// Installs the global tracing subscriber (JSON or text lines on stderr). `RUST_LOG` overrides
/// the configured level.
pub fn init_logging(cfg: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
