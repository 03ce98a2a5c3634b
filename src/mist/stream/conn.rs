//! One connection's life: sessions one after another, with capped exponential backoff plus
//! jitter between lost ones, until cancelled; idle (no channels) without reconnecting.

use super::event::EventSink;
use super::options::StreamOptions;
use super::session::{End, session};
use crate::telemetry::poller::StreamMetrics;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Runs connection `idx` for the channels in `rx` until `cancel` fires or the owner goes away.
pub(super) async fn run_conn(
    idx: usize,
    mut rx: watch::Receiver<BTreeSet<String>>,
    opts: Arc<StreamOptions>,
    sink: EventSink,
    metrics: StreamMetrics,
    cancel: CancellationToken,
) {
    let mut backoff = opts.backoff_min;
    let mut attempt = 0u64;
    loop {
        if !wait_for_channels(&mut rx, &cancel).await {
            return;
        }
        if attempt > 0 {
            metrics.reconnects.inc();
        }
        attempt += 1;
        match session(idx, &mut rx, &opts, &sink, &metrics, &cancel).await {
            End::Stop => return,
            End::Idle => {
                attempt = 0;
                backoff = opts.backoff_min;
                continue;
            }
            End::Lost { reason, healthy } => {
                tracing::warn!(conn = idx, reason = %reason, "Mist WebSocket connection lost; reconnecting");
                if healthy {
                    backoff = opts.backoff_min;
                }
            }
        }
        // Full jitter on the upper half: many exporters restarting together do not stampede.
        let jitter = 0.5 + rand::random::<f64>() * 0.5;
        let delay = backoff.mul_f64(jitter);
        backoff = (backoff * 2).min(opts.backoff_max);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// An idle connection (all its channels removed) stays closed until it gets channels; false
/// when it should stop instead (cancelled, or the owner went away).
async fn wait_for_channels(rx: &mut watch::Receiver<BTreeSet<String>>, cancel: &CancellationToken) -> bool {
    while rx.borrow().is_empty() {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            r = rx.changed() => if r.is_err() { return false },
        }
    }
    true
}
