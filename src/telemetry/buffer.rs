//! Self-metrics of the buffer (`mist_otel_buffer_*`) and its typed health snapshot.

use super::register;
use crate::telemetry::label_enum;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::sync::atomic::AtomicU64;

label_enum! {
    /// Why deliveries left the buffer without being exported.
    pub enum DropReason {
        /// A record damaged on disk (found at start-up or when read).
        Corrupt => "corrupt",
        /// Evicted to make room (`overflow: drop_oldest`).
        Overflow => "overflow",
    }
}

/// Labels of a dropped delivery.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DroppedLabels {
    /// Why it was dropped.
    pub reason: DropReason,
}

/// The buffer's self-metrics.
#[derive(Clone)]
pub struct BufferMetrics {
    /// Undelivered deliveries kept.
    pub depth: Gauge,
    /// Undelivered bytes kept (bodies plus bookkeeping).
    pub depth_bytes: Gauge,
    /// Age of the oldest undelivered delivery, in seconds (0 when empty).
    pub oldest_age: Gauge<f64, AtomicU64>,
    /// Commits (each one fsync in durable mode).
    pub commits: Counter,
    /// Appends per commit.
    pub commit_batch: Histogram,
    /// Deliveries dropped from the buffer, by reason.
    pub dropped: Family<DroppedLabels, Counter>,
}

impl BufferMetrics {
    /// Creates and registers the metrics.
    pub fn register(r: &mut Registry) -> Self {
        let m = Self {
            depth: Gauge::default(),
            depth_bytes: Gauge::default(),
            oldest_age: Gauge::default(),
            commits: Counter::default(),
            commit_batch: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0]),
            dropped: Family::default(),
        };
        register!(r;
            "buffer_deliveries", "Undelivered webhook deliveries kept in the buffer" => m.depth;
            "buffer_bytes", "Undelivered bytes kept in the buffer" => m.depth_bytes;
            "buffer_oldest_age_seconds", "Age of the oldest undelivered delivery" => m.oldest_age;
            "buffer_commits", "Buffer commits (one fsync each when durable)" => m.commits;
            "buffer_commit_batch_size", "Appends written by one commit" => m.commit_batch;
            "buffer_dropped", "Deliveries dropped from the buffer, by reason" => m.dropped;
        );
        m
    }

    /// Counts `n` deliveries dropped for `reason`.
    pub fn drop_count(&self, reason: DropReason, n: u64) {
        self.dropped.get_or_create(&DroppedLabels { reason }).inc_by(n);
    }

    /// Deliveries dropped so far, all reasons together. Reads the series without creating the
    /// ones never used (that would add zero-valued lines to `/metrics`).
    pub fn dropped_total(&self) -> u64 {
        [DropReason::Corrupt, DropReason::Overflow]
            .into_iter()
            .filter_map(|reason| self.dropped.get(&DroppedLabels { reason }).map(|c| c.get()))
            .sum()
    }
}

/// Where the buffer keeps deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferMode {
    /// On disk, in the segment log (`buffer.durable: true`).
    Durable,
    /// In memory only (`buffer.durable: false`): lost on a crash or restart.
    Memory,
}

/// What an operator needs to know about the buffer, read from its own state (see
/// `Buffer::health`).
#[derive(Debug, Clone, Serialize)]
pub struct BufferHealth {
    /// Undelivered deliveries kept.
    pub deliveries: usize,
    /// Undelivered bytes kept (bodies plus bookkeeping).
    pub bytes: u64,
    /// The cap on `bytes` (`buffer.max_bytes`).
    pub max_bytes: u64,
    /// Age of the oldest undelivered delivery, in seconds (`None` when empty).
    pub oldest_age_seconds: Option<f64>,
    /// Durable or in memory.
    pub mode: BufferMode,
    /// `buffer.fsync` (`always` or `interval`) in durable mode; `None` in memory.
    pub fsync: Option<&'static str>,
    /// Deliveries dropped so far (damaged on disk, or evicted by `overflow: drop_oldest`).
    pub dropped: u64,
    /// Below 90 % of the cap (or `overflow: drop_oldest`): readiness, so a load balancer sends
    /// elsewhere before deliveries start being refused.
    pub has_room: bool,
    /// Set while writes to the buffer's storage fail (a full disk): appends are refused until
    /// a write succeeds again. `None` when the last write succeeded, and in memory mode.
    pub storage_error: Option<StorageError>,
}

/// The last failed write to the buffer's storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageError {
    /// The operating system's error, e.g. "No space left on device (os error 28)".
    pub error: String,
    /// When it last failed (Unix seconds).
    pub at_unix: u64,
}
