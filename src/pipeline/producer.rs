//! The source of metrics besides the translator: anything collected at each metric export.

use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;

/// Anything that supplies metrics at each collection (the translator's aggregation, the poller).
pub trait MetricsProducer: Send + Sync {
    /// The metrics as of `now_ns` (nanoseconds since the epoch).
    fn collect(&self, now_ns: u64) -> Vec<ResourceMetrics>;
}
