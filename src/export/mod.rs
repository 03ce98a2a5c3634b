//! Everything between an accepted delivery and the backend: the durable buffer, the pipeline
//! that translates buffered deliveries into signals, batching, retries, and the OTLP exporters.

pub mod buffer;
pub mod config;

pub use buffer::{AppendError, Buffer, Delivery};

use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;

/// Anything that supplies metrics at each collection (the translator's aggregation, the poller).
pub trait MetricsProducer: Send + Sync {
    /// The metrics as of `now_ns` (nanoseconds since the epoch).
    fn collect(&self, now_ns: u64) -> Vec<ResourceMetrics>;
}
