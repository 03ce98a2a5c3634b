//! Self-metrics of the dead-letter store (`mist_otel_deadletter_*`) and its typed health
//! snapshot ([`DeadLetterHealth`], shown on the status page within the export health).

use super::register;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// The dead-letter self-metrics. Cheap to clone (shared handles).
#[derive(Clone, Default)]
pub struct DeadLetterMetrics {
    /// Export requests kept in the store.
    pub requests: Gauge,
    /// Their bytes on disk.
    pub bytes: Gauge,
    /// Requests deleted to stay under the size cap (the oldest first), since start.
    pub dropped: Counter,
}

/// Typed health of the dead-letter store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeadLetterHealth {
    /// Export requests kept (refused for good, waiting for `mist-otel deadletter replay`).
    pub requests: u64,
    /// Their bytes on disk.
    pub bytes: u64,
    /// Requests deleted to stay under the size cap, since start.
    pub dropped: u64,
}

impl DeadLetterMetrics {
    /// Registers the metrics.
    pub fn register(&self, r: &mut Registry) {
        register!(r;
            "deadletter_requests", "Export requests refused for good and kept in the dead-letter store" => self.requests;
            "deadletter_bytes", "Bytes of the dead-letter store on disk" => self.bytes;
            "deadletter_dropped", "Dead letters deleted (oldest first) to stay under export.dead_letter_max_bytes" => self.dropped;
        );
    }

    /// Sets the gauges to what the store holds.
    pub fn held(&self, requests: u64, bytes: u64) {
        // The gauges are `i64`: saturate.
        self.requests.set(i64::try_from(requests).unwrap_or(i64::MAX));
        self.bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The health snapshot.
    pub fn health(&self) -> DeadLetterHealth {
        DeadLetterHealth {
            requests: self.requests.get().max(0) as u64,
            bytes: self.bytes.get().max(0) as u64,
            dropped: self.dropped.get(),
        }
    }
}
