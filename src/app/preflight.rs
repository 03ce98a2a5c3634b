//! What `serve` checks in the configuration before it starts anything, in one place, so that
//! `check-config` runs the very same checks: a configuration that `check-config` passes is one
//! `serve` does not refuse at start. (Binding the listeners, the data directory and the
//! poller's first call to Mist depend on the machine and the network, not on the
//! configuration; only `serve` meets them.)

use super::config::Config;
use crate::exporter::{BuildError, Exporters};
use crate::ingest::server::{TlsError, TlsReloader};
use std::sync::Arc;

/// Why a configuration cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Nothing could ever be verified: every delivery would get 401.
    #[error(
        "no webhook secret configured: set MIST_WEBHOOK_SECRET (or ingest.secrets), \
         or set ingest.allow_unsigned: true to accept unsigned deliveries"
    )]
    NoSecret,
    /// The listener's certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An exporter cannot be built (unreadable CA or client certificate, bad URL, …).
    #[error(transparent)]
    Exporter(#[from] BuildError),
}

/// What the checks built, used by `serve` as is.
pub struct Prepared {
    /// The exporters of the three signals.
    pub exporters: Exporters,
    /// The listener's TLS material, when HTTPS is configured.
    pub tls: Option<Arc<TlsReloader>>,
}

/// Runs the start-time checks and builds what they check. Must run inside a Tokio runtime
/// (a gRPC channel is created, lazily connected). Warns when deliveries go unverified on
/// purpose.
pub fn prepare(cfg: &Config) -> Result<Prepared, PreflightError> {
    if cfg.ingest.default_endpoint_unusable() && cfg.ingest.endpoints.is_empty() {
        return Err(PreflightError::NoSecret);
    }
    if cfg.ingest.secrets.is_empty() && cfg.ingest.allow_unsigned {
        tracing::warn!(
            "ingest.allow_unsigned is on: deliveries are NOT verified; anyone who can reach the listener can inject events"
        );
    }
    let exporters = Exporters::build(&cfg.export)?;
    let tls = cfg.ingest.tls.clone().map(TlsReloader::new).transpose()?;
    Ok(Prepared { exporters, tls })
}
