//! The state shared by every `Buffer` handle and the buffer's threads: the locked index, who
//! writes the log, the segment files waiting to be deleted, and the metrics.

use super::command::Cmd;
use super::config::{Fsync, Overflow};
use super::index::State;
use super::segment_log::{self, SegmentLog};
use crate::telemetry::buffer::{BufferMetrics, StorageError};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};

/// What the handles share (behind an `Arc`; the threads hold a `Weak` and stop with the last
/// handle).
pub(super) struct Inner {
    pub state: Mutex<State>,
    /// Woken after every commit, for readers waiting for new deliveries.
    pub notify: Notify,
    pub durable: bool,
    /// The buffer directory, for messages.
    pub path: String,
    pub store: Store,
    /// Acknowledged segment files waiting to be deleted off the request path.
    pub unlink: Mutex<Vec<PathBuf>>,
    pub max_bytes: u64,
    pub overflow: Overflow,
    /// `buffer.fsync` as configured (it matters in durable mode only).
    pub fsync: Fsync,
    pub metrics: BufferMetrics,
    /// The last write failure, until a write succeeds again (health and readiness).
    pub storage_error: Mutex<Option<StorageError>>,
}

/// Who writes to the log.
pub(super) enum Store {
    /// In memory: nothing is written.
    Memory,
    /// `fsync: always`: the writer thread, which shares one sync between concurrent requests.
    Writer(mpsc::Sender<Cmd>),
    /// `fsync: interval`: requests write themselves (a `write` into the page cache, no thread
    /// hop); the sync thread syncs every interval. A request that finds the log busy leaves its
    /// command to the thread writing rather than blocking its own (see `commit_inline`).
    Inline {
        /// The log; whoever holds it writes.
        log: Mutex<Log>,
        /// Commands waiting for the current holder of `log`.
        queue: Mutex<Vec<Cmd>>,
    },
}

/// The log and its encoding buffer, reused between writes.
pub(super) struct Log {
    pub log: SegmentLog,
    pub buf: Vec<u8>,
}

impl Log {
    /// Lets go of a large burst's encoding buffer rather than keeping it around.
    pub fn shrink(buf: &mut Vec<u8>) {
        if buf.capacity() > 4 * 1024 * 1024 {
            *buf = Vec::new();
        }
    }
}

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the index half-updated in a way that
        // matters more than stopping; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn publish_depth(&self, st: &State) {
        self.metrics.depth.set(st.index.len() as i64);
        self.metrics.depth_bytes.set(st.bytes as i64);
    }

    /// Age of the oldest kept delivery at `now_ns`, in seconds (`None` when empty).
    pub fn oldest_age(st: &State, now_ns: u64) -> Option<f64> {
        st.index.first().map(|(_, m)| now_ns.saturating_sub(m.received_at_ns) as f64 / 1e9)
    }

    pub fn publish_age(&self, st: &State, now_ns: u64) {
        self.metrics.oldest_age.set(Self::oldest_age(st, now_ns).unwrap_or(0.0));
    }

    /// After a commit: publishes the depth and wakes waiting readers.
    pub fn committed(&self) {
        self.publish_depth(&self.lock());
        self.notify.notify_waiters();
    }

    /// Records that a write to the log failed (readiness turns false until one succeeds).
    pub fn storage_failed(&self, e: &std::io::Error) {
        let at_unix = crate::clock::now_ns() / 1_000_000_000;
        *self.storage_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(StorageError { error: e.to_string(), at_unix });
    }

    /// Records that a write to the log succeeded; logs the recovery after a failure.
    pub fn storage_ok(&self) {
        if let Some(e) = self.storage_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            tracing::info!(path = %self.path, previous_error = %e.error, "buffer writes succeed again");
        }
    }

    /// The last write failure, while writes fail.
    pub fn storage_error(&self) -> Option<StorageError> {
        self.storage_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Queues segment files for deletion by the writer or sync thread.
    pub fn unlink_later(&self, segments: Vec<(u64, PathBuf)>) {
        if !segments.is_empty() {
            self.unlink
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(segments.into_iter().map(|(_, p)| p));
        }
    }

    /// Deletes the oldest queued segment file (on the writer or sync thread, never a
    /// request's). One at a time: freeing a segment's cached pages costs the kernel several
    /// milliseconds of CPU, and a burst of them (the first removal under buffer pressure) held
    /// up requests for ~50 ms on two cores.
    /// More are deleted at once only when the queue grows past two, so that deletion always
    /// keeps up with ingest.
    pub fn unlink_pending(&self) {
        loop {
            let (path, more) = {
                let mut q = self.unlink.lock().unwrap_or_else(|p| p.into_inner());
                if q.is_empty() {
                    return;
                }
                let p = q.remove(0);
                (p, q.len() > 2)
            };
            segment_log::remove_files([path]);
            if !more {
                return;
            }
        }
    }
}
