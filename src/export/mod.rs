//! Everything between an accepted delivery and the backend: the durable buffer, the pipeline
//! that translates buffered deliveries into signals, batching, retries, and the OTLP exporters.

pub mod buffer;
pub mod config;
pub mod debug;
pub mod exporter;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod pipeline;

pub use buffer::{AppendError, Buffer, BufferError, Delivery};
pub use exporter::{Exporters, Payload};
pub use pipeline::{ExportMetrics, Pipeline};

use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;

/// Anything that supplies metrics at each collection (the translator's aggregation, the poller).
pub trait MetricsProducer: Send + Sync {
    /// The metrics as of `now_ns` (nanoseconds since the epoch).
    fn collect(&self, now_ns: u64) -> Vec<ResourceMetrics>;
}
