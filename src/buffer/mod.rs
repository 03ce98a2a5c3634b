//! The buffer of accepted deliveries between ingest and export.
//!
//! Ingest appends a delivery and answers 200 once the buffer keeps it; the pipeline reads the
//! kept deliveries in sequence order and removes them once exported. Sequence numbers only
//! ever increase, across restarts too.
//!
//! # On-disk layout
//! Durable mode keeps deliveries in an append-only log of segment files under
//! `<data_dir>/buffer/` (`<20-digit id>.seg`, plus a `lock` file so one process owns the
//! directory). A segment is a magic header, then CRC-checked frames of deliveries and
//! acknowledgements ([`record`]); recovery rules are in [`segment_log`] and [`scan`] (a damaged
//! frame loses only itself, counted as `corrupt`). A log fits the access
//! pattern exactly: deliveries are written once in order, read once in order and acknowledged
//! in order, so removal is a watermark record and whole-segment deletion, with no in-place
//! updates. (An embedded B-tree store did the same work with two copy-on-write commits per
//! delivery and cost about a third of the server's CPU under load.)
//!
//! # When a 200 is safe: `buffer.fsync`
//! - `interval` (default): each request appends its delivery itself ([`inline`]), one `write`
//!   into the page cache under the log's lock, and its 200 follows that write: it survives a
//!   crash or `kill -9` of the process. The `buffer-sync` thread ([`sync`]) runs `fdatasync`
//!   every `buffer.fsync_interval` (and syncs new segments and the directory), so a power loss
//!   or kernel crash can lose the last interval.
//! - `always`: one writer thread ([`writer`]) takes everything queued (up to
//!   `buffer.max_commit_batch`), writes it with **one** `write` and **one** `fdatasync`, then
//!   answers every waiting append (group commit, [`commit`]). A 200 then also survives a power
//!   loss.
//!
//! # Size cap, eviction and overflow
//! Every delivery counts its stored frame against `buffer.max_bytes` ([`index`]); appends in
//! flight reserve their bytes first, so concurrent requests cannot overshoot the cap. At the
//! cap, `overflow: reject` refuses the append ([`AppendError::Full`], ingest answers 503) and
//! `drop_oldest` evicts the oldest kept deliveries, counted as dropped: durably, an eviction is
//! an acknowledgement written in the same commit as the append that needed the room.
//!
//! # When deliveries are removed
//! The pipeline calls [`Buffer::remove_through`] once every signal of the deliveries up to a
//! sequence number is acknowledged (see `pipeline` for the metric watermark rule). Segments
//! whose deliveries are all acknowledged are deleted by the writer or sync thread, never on a
//! request's thread.
//!
//! # Disk full
//! A failed write (no space left) fails the appends of its commit (ingest answers 503, never
//! a false 200) and is recorded as the buffer's storage error (`/readyz` answers 503 while
//! it is set). Removals in that commit still apply in memory: the acknowledgement watermark
//! runs ahead of the disk and every segment it finishes is deleted, so the buffer frees the
//! disk its own data filled as the backend drains it. The next segment started carries the
//! watermark in its header; until then a crash re-exports acknowledged deliveries of the
//! segments left (never loses one). While writes fail, the buffer's thread retries starting a
//! segment every interval and clears the error once one starts. `open` on a full disk deletes
//! finished segments to make room and, if a segment still cannot be started, opens anyway.
//!
//! # Memory mode
//! With `buffer.durable: false` the same API keeps deliveries in memory only ([`memory`]):
//! no thread, no files, lost on a crash or restart.
//!
//! # Threads
//! At most one: `buffer-writer` (`fsync: always`) or `buffer-sync` (`fsync: interval`). Both
//! hold the shared state weakly and stop when the last [`Buffer`] handle is dropped.
//!
//! Self-metrics and the health snapshot are declared in [`crate::telemetry::buffer`].

mod command;
mod commit;
pub mod config;
mod delivery;
mod errors;
mod index;
mod inline;
mod inner;
mod memory;
mod open;
mod reader;
mod record;
mod scan;
mod segment_log;
mod sync;
mod writer;

pub use self::delivery::Delivery;
pub use self::errors::{AppendError, BufferError};
pub use crate::telemetry::buffer::{BufferHealth, BufferMetrics, BufferMode};

use self::command::Cmd;
use self::config::{BufferConfig, Overflow};
use self::index::stored_size;
use self::inner::{Inner, Store};
use bytes::Bytes;
use prometheus_client::registry::Registry;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The buffer. Cheap to clone.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
}

impl Buffer {
    /// Opens (or creates) the buffer. Durable mode opens `<data_dir>/buffer/`, replays what it
    /// holds (the pipeline reads it again from the start) and starts the writer thread.
    pub fn open(cfg: &BufferConfig, data_dir: &Path, registry: &mut Registry) -> Result<Buffer, BufferError> {
        open::open(cfg, data_dir, registry).map(|inner| Buffer { inner })
    }

    /// An in-memory buffer (tests and `buffer.durable: false`).
    pub fn new(cfg: &BufferConfig) -> Self {
        let cfg = BufferConfig { durable: false, ..cfg.clone() };
        Self::open(&cfg, Path::new("."), &mut Registry::default()).expect("in-memory buffer cannot fail")
    }

    /// The buffer's metrics (for the status page).
    pub fn metrics(&self) -> &BufferMetrics {
        &self.inner.metrics
    }

    /// A typed snapshot of the buffer's state, for health reports: read from the index and the
    /// metric handles under one short lock, never from rendered metrics.
    pub fn health(&self) -> BufferHealth {
        let now_ns = crate::clock::now_ns();
        let (deliveries, bytes, held, oldest_age_seconds) = {
            let st = self.inner.lock();
            (st.index.len(), st.bytes, st.held(), Inner::oldest_age(&st, now_ns))
        };
        let durable = self.inner.durable;
        BufferHealth {
            deliveries,
            bytes,
            max_bytes: self.inner.max_bytes,
            oldest_age_seconds,
            mode: if durable { BufferMode::Durable } else { BufferMode::Memory },
            fsync: durable.then(|| self.inner.fsync.as_str()),
            dropped: self.inner.metrics.dropped_total(),
            has_room: self.room_at(held),
            storage_error: self.inner.storage_error(),
        }
    }

    /// Stores a delivery; returns its sequence number once it is safely kept (written and
    /// fsynced in durable mode).
    pub async fn append(&self, endpoint: &str, received_at_ns: u64, body: Bytes) -> Result<u64, AppendError> {
        let size = stored_size(endpoint, &body);
        if size > self.inner.max_bytes {
            return Err(AppendError::Full);
        }
        // Writer thread: take a slot in its queue *before* reserving bytes. The wait for the
        // slot may be cancelled (the client hangs up); nothing is reserved yet at that point,
        // and from the reservation to the hand-over below there is no await to cancel.
        let permit = match &self.inner.store {
            Store::Writer(tx) => {
                Some(tx.reserve().await.map_err(|_| AppendError::Io("buffer writer stopped".into()))?)
            }
            Store::Memory | Store::Inline { .. } => None,
        };
        {
            let mut st = self.inner.lock();
            if self.inner.overflow == Overflow::Reject && st.held() + size > self.inner.max_bytes {
                return Err(AppendError::Full);
            }
            if let Store::Memory = self.inner.store {
                // In memory: no commit to wait for.
                return Ok(self.inner.append_in_memory(st, endpoint, received_at_ns, body, size));
            }
            st.reserved += size;
        }
        let (reply, rx) = oneshot::channel();
        let cmd = Cmd::Append { endpoint: endpoint.into(), received_at_ns, body, reply };
        match permit {
            Some(permit) => permit.send(cmd),
            None => self.inner.commit_inline(cmd),
        }
        // Cancelling this wait is harmless: the writer commits and releases the reservation.
        rx.await.unwrap_or_else(|_| Err(AppendError::Io("buffer writer stopped".into())))
    }

    /// True while the buffer is below 90% of its cap (readiness: a load balancer should send
    /// elsewhere before deliveries start being refused).
    pub fn has_room(&self) -> bool {
        self.room_at(self.inner.lock().held())
    }

    /// The rule of [`Buffer::has_room`] for `held` kept and reserved bytes.
    fn room_at(&self, held: u64) -> bool {
        self.inner.overflow == Overflow::DropOldest || held < self.inner.max_bytes / 10 * 9
    }

    /// How full the buffer is: kept and reserved bytes over the cap (0 to about 1).
    pub fn fill(&self) -> f64 {
        self.inner.lock().held() as f64 / self.inner.max_bytes as f64
    }

    /// Number of deliveries and bytes kept.
    pub fn depth(&self) -> (usize, u64) {
        let st = self.inner.lock();
        (st.index.len(), st.bytes)
    }

    /// Sequence number of the last delivery kept, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.inner.lock().index.last_seq()
    }

    /// Waits up to `wait` until a delivery with a sequence number ≥ `from` is kept.
    pub async fn wait_for(&self, from: u64, wait: Duration) -> bool {
        tokio::time::timeout(wait, async {
            loop {
                let notified = self.inner.notify.notified();
                if self.inner.lock().index.last_seq().is_some_and(|s| s >= from) {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }

    /// Reads, in order, up to `max_items` deliveries (and about `max_bytes`; at least one) with
    /// sequence numbers ≥ `from`. Nothing is removed.
    pub async fn read(
        &self,
        from: u64,
        max_items: usize,
        max_bytes: u64,
    ) -> Result<Vec<Delivery>, BufferError> {
        reader::read(&self.inner, from, max_items, max_bytes).await
    }

    /// Removes every delivery with a sequence number ≤ `through` (their signals were
    /// acknowledged). Durable mode returns once the removal is written (it shares the next
    /// group commit with concurrent appends).
    /// When the removal cannot be written (a full disk) it still applies in memory and
    /// finished segments are deleted (see "Disk full" below); false only when the writer
    /// thread is gone.
    pub async fn remove_through(&self, through: u64) -> bool {
        match &self.inner.store {
            Store::Writer(tx) => {
                let (done, rx) = oneshot::channel();
                tx.send(Cmd::Remove { through, done }).await.is_ok() && rx.await.is_ok()
            }
            Store::Inline { .. } => {
                let (done, rx) = oneshot::channel();
                self.inner.commit_inline(Cmd::Remove { through, done });
                rx.await.is_ok()
            }
            Store::Memory => {
                self.inner.remove_in_memory(through);
                true
            }
        }
    }

    /// Refreshes the oldest-age gauge (called periodically).
    pub fn refresh_age(&self, now_ns: u64) {
        let st = self.inner.lock();
        self.inner.publish_age(&st, now_ns);
    }
}

#[cfg(test)]
mod tests;
