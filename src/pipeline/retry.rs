//! Sending export requests: retries with capped, jittered exponential backoff (or the server's
//! delay), bounded by the shutdown deadline.

use super::batch::halve;
use super::shutdown::Shutdown;
use crate::deadletter::DeadLetters;
use crate::exporter::config::{ExportConfig, Signal, shown_url};
use crate::exporter::{Accepted, ExportError, Exporters, Payload};
use crate::telemetry::export::{ExportMetrics, SignalLabel};
use rand::RngExt;
use std::time::Duration;
use tokio::time::Instant;

/// What happened to one request after retries.
#[derive(Debug, PartialEq)]
pub(super) enum Sent {
    /// Acknowledged (fully or partly) or dropped as permanent: either way, done with it.
    Done,
    /// Shutdown deadline passed while retrying: leave its deliveries on disk.
    Abandoned,
}

/// The wait before retry `attempt` (0-based): the server's delay when it gave one (capped at
/// `retry.max`, never shorter than asked up to that cap), else full jitter over a capped
/// exponential: uniform in [base/2, base] with base = min(max, initial·2^attempt).
pub fn backoff(cfg: &ExportConfig, attempt: u32, server: Option<Duration>) -> Duration {
    if let Some(s) = server {
        return s.min(cfg.retry.max);
    }
    let base = cfg.retry.initial.saturating_mul(1u32 << attempt.min(20)).min(cfg.retry.max);
    let lo = base / 2;
    let jitter = rand::rng().random_range(0..=(base - lo).as_millis() as u64);
    lo + Duration::from_millis(jitter)
}

/// Sends requests through the exporters, counting each outcome.
pub(super) struct Sender<'a> {
    pub(super) exporters: &'a Exporters,
    /// Where requests refused for good are kept (none: they are dropped).
    pub(super) dead_letters: Option<&'a DeadLetters>,
    pub(super) cfg: &'a ExportConfig,
    pub(super) metrics: &'a ExportMetrics,
}

impl Sender<'_> {
    /// Sends the requests in order (each built when its turn comes); stops at the first one
    /// abandoned at the shutdown deadline.
    pub(super) async fn send_all(
        &self,
        shutdown: &mut Shutdown,
        requests: impl Iterator<Item = Payload>,
    ) -> Sent {
        for req in requests {
            if self.send(shutdown, req).await == Sent::Abandoned {
                return Sent::Abandoned;
            }
        }
        Sent::Done
    }

    /// Sends one request, retrying retryable failures until success, a permanent failure, or
    /// the shutdown deadline; a backend error (5xx) is retried `retry.max_attempts_5xx` times at
    /// most; a request refused as too large is sent again in two halves (boxed: it recurses).
    pub(super) fn send<'s>(
        &'s self,
        shutdown: &'s mut Shutdown,
        payload: Payload,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Sent> + Send + 's>> {
        Box::pin(self.send_one(shutdown, payload))
    }

    /// [`Sender::send`], unboxed.
    async fn send_one(&self, shutdown: &mut Shutdown, payload: Payload) -> Sent {
        let signal = payload.signal();
        let items = payload.items();
        let exporter = self.exporters.for_signal(signal);
        let mut attempt: u32 = 0;
        // 5xx answers counted on their own: retries for an unreachable backend (connect
        // errors, 503s) must not use up the 5xx budget before the backend has answered at all.
        let mut server_errors: u32 = 0;
        loop {
            let result = match shutdown.deadline() {
                Some(d) => match tokio::time::timeout_at(d, exporter.export(&payload)).await {
                    Ok(r) => r,
                    Err(_) => return Sent::Abandoned,
                },
                None => exporter.export(&payload).await,
            };
            let (reason, retry_after, message) = match result {
                Ok(acc) => {
                    self.accepted(signal, items, &acc);
                    return Sent::Done;
                }
                Err(ExportError::Permanent { reason, message }) => {
                    return self.refused(payload, &reason, &message);
                }
                Err(ExportError::TooLarge { reason }) => {
                    return self.split(shutdown, payload, &reason).await;
                }
                Err(ExportError::ServerError { reason, message, .. })
                    if server_errors >= self.cfg.retry.max_attempts_5xx =>
                {
                    return self.refused(payload, &reason, &message);
                }
                Err(ExportError::ServerError { reason, retry_after, message }) => {
                    server_errors += 1;
                    (reason, retry_after, message)
                }
                Err(ExportError::Retryable { reason, retry_after, message }) => {
                    (reason, retry_after, message)
                }
            };
            let delay = backoff(self.cfg, attempt, retry_after);
            attempt = attempt.saturating_add(1);
            self.metrics.retry(label(signal), &reason, items, attempt);
            if attempt == 1 || attempt.is_power_of_two() {
                // The URL (without its query, which may carry a key) says where it failed.
                let endpoint = shown_url(&self.cfg.target(signal).url);
                tracing::warn!(signal = signal.as_str(), endpoint = %endpoint, reason = %reason, message = %message, attempt, delay = ?delay, "export failed; retrying");
            }
            if !shutdown.sleep_until(Instant::now() + delay).await {
                return Sent::Abandoned;
            }
        }
    }

    /// Counts (and logs) a request refused for good, and keeps it in the dead-letter store.
    fn refused(&self, payload: Payload, reason: &str, message: &str) -> Sent {
        let (signal, items) = (payload.signal(), payload.items());
        self.metrics.failed(label(signal), reason, items);
        let kept = match self.dead_letters.map(|d| d.put(&payload, reason)) {
            Some(Ok(())) => "kept as a dead letter",
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot write a dead letter");
                "dropped"
            }
            None => "dropped",
        };
        tracing::error!(signal = signal.as_str(), items, reason = %reason, message = %message, "export failed permanently; {kept}");
        Sent::Done
    }

    /// Sends a request refused as too large in two halves; a single item is refused for good.
    async fn split(&self, shutdown: &mut Shutdown, payload: Payload, reason: &str) -> Sent {
        let (signal, items) = (payload.signal(), payload.items());
        if items <= 1 {
            return self.refused(payload, reason, "a single item is over the backend's size limit");
        }
        let Some((a, b)) = halve(payload.clone()) else {
            return self.refused(payload, reason, "a single item is over the backend's size limit");
        };
        self.metrics.retry(label(signal), reason, items, 1);
        tracing::info!(signal = signal.as_str(), items, reason = %reason, "backend refused the request as too large; sending it in halves");
        if self.send(shutdown, a).await == Sent::Abandoned {
            return Sent::Abandoned;
        }
        self.send(shutdown, b).await
    }

    /// Counts an accepted request: the items taken, and those rejected in a partial success.
    fn accepted(&self, signal: Signal, items: u64, acc: &Accepted) {
        if acc.rejected > 0 {
            self.metrics.rejected(label(signal), acc.rejected);
            tracing::warn!(signal = signal.as_str(), rejected = acc.rejected, message = %acc.message, "backend rejected part of an export");
        }
        self.metrics.success(label(signal), items.saturating_sub(acc.rejected));
    }
}

/// The metric label of a signal.
fn label(signal: Signal) -> SignalLabel {
    match signal {
        Signal::Logs => SignalLabel::Logs,
        Signal::Metrics => SignalLabel::Metrics,
        Signal::Traces => SignalLabel::Traces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_jittered_and_honours_the_server() {
        let cfg = ExportConfig::default();
        for attempt in 0..40 {
            let d = backoff(&cfg, attempt, None);
            assert!(d <= cfg.retry.max, "{d:?}");
            let base = cfg.retry.initial.saturating_mul(1 << attempt.min(20)).min(cfg.retry.max);
            assert!(d >= base / 2, "{d:?}");
        }
        assert_eq!(backoff(&cfg, 0, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(backoff(&cfg, 0, Some(Duration::from_secs(7000))), cfg.retry.max);
    }
}
