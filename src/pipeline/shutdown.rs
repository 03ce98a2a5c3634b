//! The shutdown clock: once cancelled, the pipeline keeps flushing until a deadline.

use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Cancellation and the flush deadline it starts.
pub(super) struct Shutdown {
    cancel: CancellationToken,
    /// `export.shutdown_timeout`: how long the final flush may take.
    timeout: Duration,
    /// Set once cancellation is seen; past it, whatever is unsent stays on disk.
    deadline: Option<Instant>,
}

impl Shutdown {
    pub(super) fn new(cancel: CancellationToken, timeout: Duration) -> Self {
        Self { cancel, timeout, deadline: None }
    }

    /// Starts the flush deadline if cancellation has come since the last look.
    pub(super) fn observe(&mut self) {
        if self.cancel.is_cancelled() && self.deadline.is_none() {
            self.begin();
            tracing::info!(timeout = ?self.timeout, "export pipeline flushing");
        }
    }

    fn begin(&mut self) {
        self.deadline = Some(Instant::now() + self.timeout);
    }

    /// Cancelled: flushing what is left.
    pub(super) fn draining(&self) -> bool {
        self.deadline.is_some()
    }

    /// The flush deadline has passed.
    pub(super) fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The flush deadline, once draining.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Completes when cancelled.
    pub(super) async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Sleeps until `wake`; false (at once) when `wake` is past the deadline. Cancellation cuts
    /// the sleep short and starts the deadline, so a retry happens within the flush.
    pub(super) async fn sleep_until(&mut self, wake: Instant) -> bool {
        match self.deadline {
            Some(d) if wake >= d => return false,
            Some(_) => tokio::time::sleep_until(wake).await,
            None => {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = self.cancel.cancelled() => self.begin(),
                }
            }
        }
        true
    }
}
