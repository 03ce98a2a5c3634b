//! The buffer of accepted deliveries. (In-memory placeholder; the export work makes it durable.)

use crate::config::BufferConfig;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// One accepted webhook delivery, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Position in the buffer; increases with every append.
    pub seq: u64,
    /// Name of the endpoint that received it.
    pub endpoint: String,
    /// Receipt time, nanoseconds since the Unix epoch.
    pub received_at_ns: u64,
    /// The raw, verified body.
    pub body: Bytes,
}

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The buffer is at its size cap; the sender should retry later.
    #[error("buffer full")]
    Full,
    /// Storage failed.
    #[error("buffer storage error: {0}")]
    Io(String),
}

#[derive(Default)]
struct State {
    next_seq: u64,
    bytes: u64,
    queue: VecDeque<Delivery>,
}

/// The buffer. Cheap to clone.
#[derive(Clone)]
pub struct Buffer {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    max_bytes: u64,
}

impl Buffer {
    /// Creates an empty buffer.
    pub fn new(cfg: &BufferConfig) -> Self {
        Self { state: Default::default(), notify: Default::default(), max_bytes: cfg.max_bytes }
    }

    /// Stores a delivery; returns its sequence number once it is safely kept.
    pub async fn append(&self, endpoint: &str, received_at_ns: u64, body: Bytes) -> Result<u64, AppendError> {
        let mut st = self.state.lock().map_err(|_| AppendError::Io("poisoned".into()))?;
        if st.bytes + body.len() as u64 > self.max_bytes {
            return Err(AppendError::Full);
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.bytes += body.len() as u64;
        st.queue.push_back(Delivery { seq, endpoint: endpoint.into(), received_at_ns, body });
        drop(st);
        self.notify.notify_one();
        Ok(seq)
    }

    /// True while the buffer is below 90% of its cap (readiness: a load balancer should send
    /// elsewhere before deliveries start being refused).
    pub fn has_room(&self) -> bool {
        self.state.lock().map(|s| s.bytes < self.max_bytes / 10 * 9).unwrap_or(false)
    }

    /// Waits up to `wait` for deliveries and removes up to `max` of them.
    pub async fn take(&self, max: usize, wait: Duration) -> Vec<Delivery> {
        let _ = tokio::time::timeout(wait, async {
            loop {
                let notified = self.notify.notified();
                if self.state.lock().map(|s| !s.queue.is_empty()).unwrap_or(true) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        let Ok(mut st) = self.state.lock() else { return Vec::new() };
        let n = st.queue.len().min(max);
        let out: Vec<Delivery> = st.queue.drain(..n).collect();
        st.bytes -= out.iter().map(|d| d.body.len() as u64).sum::<u64>();
        out
    }
}
