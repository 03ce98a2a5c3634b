//! Acknowledgement bookkeeping: through which buffer sequence number each signal is done, and
//! so through which the buffer may release deliveries.

use crate::exporter::config::Signal;

/// Watermarks by buffer sequence number (`None`: nothing yet). A delivery may leave the buffer
/// once all three signals are acknowledged through it.
#[derive(Default)]
pub(super) struct Acks {
    /// The last delivery translated.
    translated: Option<u64>,
    /// Log batches acknowledged through here.
    logs: Option<u64>,
    /// Span batches acknowledged through here.
    spans: Option<u64>,
    /// A metric export that collected after this delivery succeeded.
    metrics: Option<u64>,
    /// Released from the buffer through here.
    removed: Option<u64>,
}

impl Acks {
    /// Records that the delivery `seq` was translated (or dropped while translating).
    pub(super) fn translated(&mut self, seq: u64) {
        self.translated = Some(seq);
    }

    /// The last delivery translated: what a flush started now acknowledges once it succeeds.
    pub(super) fn through(&self) -> Option<u64> {
        self.translated
    }

    /// Acknowledges `signal` through `through` (from [`Acks::through`] before sending).
    pub(super) fn ack(&mut self, signal: Signal, through: Option<u64>) {
        match signal {
            Signal::Logs => self.logs = through,
            Signal::Traces => self.spans = through,
            Signal::Metrics => self.metrics = through,
        }
    }

    /// Signals with nothing pending are acknowledged through everything translated.
    pub(super) fn idle(&mut self, logs_empty: bool, spans_empty: bool) {
        if logs_empty {
            self.logs = self.translated;
        }
        if spans_empty {
            self.spans = self.translated;
        }
    }

    /// The metric watermark is behind the log and span watermarks.
    pub(super) fn metrics_behind(&self) -> bool {
        self.metrics < self.logs.min(self.spans)
    }

    /// Through which sequence number the buffer may release now, if further than before.
    pub(super) fn releasable(&self) -> Option<u64> {
        let acked = [self.logs, self.spans, self.metrics].into_iter().min().flatten();
        acked.filter(|a| self.removed.is_none_or(|r| *a > r))
    }

    /// Records that the buffer released through `through`.
    pub(super) fn released(&mut self, through: u64) {
        self.removed = Some(through);
    }
}
