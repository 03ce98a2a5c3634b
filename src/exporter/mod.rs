//! The OTLP exporters: one file per transport ([`otlp_grpc`], [`otlp_http`], [`debug`]), the
//! types they share ([`request`]), their configuration ([`config`], with the standard
//! `OTEL_*` variables applied in `env`), and here the per-signal exporter chosen from that
//! configuration.

pub mod config;
pub mod debug;
mod env;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod request;

pub use request::{Accepted, BuildError, ExportError, Payload};

use config::{ExportConfig, ExporterKind, Protocol, Signal};
use std::sync::Arc;

/// The exporter of one signal.
#[derive(Clone)]
pub enum SignalExporter {
    /// OTLP/gRPC.
    Grpc(otlp_grpc::GrpcExporter),
    /// OTLP/HTTP.
    Http(otlp_http::HttpExporter),
    /// JSON lines.
    Debug(Arc<debug::DebugExporter>),
}

impl SignalExporter {
    /// Sends one request.
    pub async fn export(&self, payload: &Payload) -> Result<Accepted, ExportError> {
        match self {
            SignalExporter::Grpc(e) => e.export(payload).await,
            SignalExporter::Http(e) => e.export(payload).await,
            SignalExporter::Debug(e) => e.export(payload),
        }
    }
}

/// One exporter per signal.
#[derive(Clone)]
pub struct Exporters {
    /// Logs exporter.
    pub logs: SignalExporter,
    /// Metrics exporter.
    pub metrics: SignalExporter,
    /// Traces exporter.
    pub traces: SignalExporter,
}

impl Exporters {
    /// Builds the exporters (reads TLS files; connects lazily).
    pub fn build(cfg: &ExportConfig) -> Result<Exporters, BuildError> {
        if cfg.exporter == ExporterKind::Debug {
            let d = Arc::new(debug::DebugExporter::open(cfg.debug_path.as_deref())?);
            return Ok(Exporters {
                logs: SignalExporter::Debug(d.clone()),
                metrics: SignalExporter::Debug(d.clone()),
                traces: SignalExporter::Debug(d),
            });
        }
        let one = |s: Signal| -> Result<SignalExporter, BuildError> {
            let t = cfg.target(s);
            Ok(match t.protocol {
                Protocol::Grpc => SignalExporter::Grpc(otlp_grpc::GrpcExporter::new(&t)?),
                Protocol::HttpProtobuf | Protocol::HttpJson => {
                    SignalExporter::Http(otlp_http::HttpExporter::new(&t)?)
                }
            })
        };
        Ok(Exporters {
            logs: one(Signal::Logs)?,
            metrics: one(Signal::Metrics)?,
            traces: one(Signal::Traces)?,
        })
    }

    /// The exporter of `signal`.
    pub fn for_signal(&self, signal: Signal) -> &SignalExporter {
        match signal {
            Signal::Logs => &self.logs,
            Signal::Metrics => &self.metrics,
            Signal::Traces => &self.traces,
        }
    }
}
