//! Health as the admin listener reports it: each component's typed snapshot, taken when asked
//! (`/readyz`, the status page, `/status.json`), never parsed back out of `/metrics`.

use crate::buffer::Buffer;
use crate::telemetry::buffer::BufferHealth;
use crate::telemetry::export::{ExportHealth, ExportMetrics};
use crate::telemetry::poller::{PollerHealth, PollerHealthSource};
use serde::Serialize;

/// Where each component's health is read from. A component that is off has no source.
#[derive(Clone, Default)]
pub struct HealthSources {
    /// The durable buffer.
    pub buffer: Option<Buffer>,
    /// The export pipeline's counters and last results.
    pub export: Option<ExportMetrics>,
    /// The Mist API poller (only when `poller.enabled`).
    pub poller: Option<PollerHealthSource>,
}

/// One component's health: whether it runs, and its snapshot when it does.
#[derive(Debug, Clone, Serialize)]
pub struct Component<T> {
    /// Whether the component is running.
    pub enabled: bool,
    /// Its snapshot (absent when not enabled).
    #[serde(flatten)]
    pub state: Option<T>,
}

impl<T> Component<T> {
    fn of<S>(source: Option<&S>, read: impl FnOnce(&S) -> T) -> Self {
        Component { enabled: source.is_some(), state: source.map(read) }
    }
}

/// Every component's health at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSnapshot {
    /// Export pipeline.
    pub export: Component<ExportHealth>,
    /// Buffer.
    pub buffer: Component<BufferHealth>,
    /// Poller.
    pub poller: Component<PollerHealth>,
}

impl HealthSources {
    /// Reads every source now.
    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            export: Component::of(self.export.as_ref(), ExportMetrics::health),
            buffer: Component::of(self.buffer.as_ref(), Buffer::health),
            poller: Component::of(self.poller.as_ref(), PollerHealthSource::health),
        }
    }

    /// `Err(reasons)` when the server should not be sent deliveries now: writes to the buffer's
    /// storage fail (a full disk), or the buffer is near its cap, so a load balancer sends
    /// elsewhere before deliveries are refused.
    pub fn ready(&self) -> Result<(), String> {
        let Some(h) = self.buffer.as_ref().map(Buffer::health) else { return Ok(()) };
        if let Some(e) = h.storage_error {
            return Err(format!("buffer storage failing: {}", e.error));
        }
        if !h.has_room {
            return Err("buffer full".into());
        }
        Ok(())
    }
}
