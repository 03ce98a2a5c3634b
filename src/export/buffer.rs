//! The buffer of accepted deliveries between ingest and export.
//!
//! # Why redb
//! Deliveries are kept in a [redb](https://docs.rs/redb) table (`<data_dir>/buffer.redb`,
//! key = sequence number, value = endpoint + receipt time + raw body) rather than in a
//! hand-written segment log: redb's copy-on-write B-tree with checksummed, atomically
//! committed roots gives crash consistency (a `kill -9` or power loss mid-commit leaves the
//! last committed state), in-place deletion of acknowledged deliveries without segment
//! compaction, and ordered range reads for the pipeline — all of which a log would have to
//! re-implement and test.
//!
//! # Group commit
//! One writer thread owns every write transaction. Appends (and removals) are queued to it; it
//! takes everything queued (up to `buffer.max_commit_batch`), writes it in **one** transaction
//! and commits with `Durability::Immediate` (one fsync), then answers every waiting append.
//! Under load many requests share one fsync; an idle server pays one fsync per request.
//!
//! # When deliveries are removed
//! The pipeline calls [`Buffer::remove_through`] once every signal of the deliveries up to a
//! sequence number is acknowledged (see `pipeline.rs` for the metric watermark rule).
//!
//! With `buffer.durable: false` the same API keeps deliveries in memory only.

use super::config::Overflow;
use crate::config::BufferConfig;
use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("deliveries");
/// Bytes of bookkeeping per stored record (receipt time + endpoint length), counted in the cap.
const HEADER: usize = 10;

/// redb page cache size.
const REDB_CACHE_BYTES: usize = 16 * 1024 * 1024;

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

/// Why the buffer could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// The store could not be opened, read or written.
    #[error("buffer store {path}: {message}")]
    Store {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
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
    pub dropped: Family<Vec<(String, String)>, Counter>,
}

impl BufferMetrics {
    fn new() -> Self {
        Self {
            depth: Gauge::default(),
            depth_bytes: Gauge::default(),
            oldest_age: Gauge::default(),
            commits: Counter::default(),
            commit_batch: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0]),
            dropped: Family::default(),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "buffer_deliveries",
            "Undelivered webhook deliveries kept in the buffer",
            self.depth.clone(),
        );
        r.register("buffer_bytes", "Undelivered bytes kept in the buffer", self.depth_bytes.clone());
        r.register(
            "buffer_oldest_age_seconds",
            "Age of the oldest undelivered delivery",
            self.oldest_age.clone(),
        );
        r.register("buffer_commits", "Buffer commits (one fsync each when durable)", self.commits.clone());
        r.register("buffer_commit_batch_size", "Appends written by one commit", self.commit_batch.clone());
        r.register("buffer_dropped", "Deliveries dropped from the buffer, by reason", self.dropped.clone());
    }
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    size: u64,
    received_at_ns: u64,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// Stored bytes (committed).
    bytes: u64,
    /// Bytes accepted for the next commit but not yet written.
    reserved: u64,
    index: BTreeMap<u64, Meta>,
    /// Bodies, in-memory mode only.
    mem: BTreeMap<u64, Delivery>,
}

enum Cmd {
    Append {
        endpoint: String,
        received_at_ns: u64,
        body: Bytes,
        reply: oneshot::Sender<Result<u64, AppendError>>,
    },
    Remove {
        through: u64,
        done: oneshot::Sender<()>,
    },
}

struct Inner {
    state: Mutex<State>,
    notify: Notify,
    db: Option<Arc<redb::Database>>,
    path: String,
    tx: Option<mpsc::Sender<Cmd>>,
    max_bytes: u64,
    overflow: Overflow,
    metrics: BufferMetrics,
}

/// The buffer. Cheap to clone.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
}

impl Buffer {
    /// Opens (or creates) the buffer. Durable mode opens `<data_dir>/buffer.redb`, replays what
    /// it holds (the pipeline reads it again from the start) and starts the writer thread.
    pub fn open(cfg: &BufferConfig, data_dir: &Path, registry: &mut Registry) -> Result<Buffer, BufferError> {
        let metrics = BufferMetrics::new();
        metrics.register(registry);
        let path = data_dir.join("buffer.redb");
        let path_s = path.display().to_string();
        let err =
            |e: &dyn std::fmt::Display| BufferError::Store { path: path_s.clone(), message: e.to_string() };
        let mut state = State::default();
        let (db, tx) = if cfg.durable {
            // redb's default page cache is 1 GiB; the buffer is written once and read once in
            // order, so a small cache costs little and keeps the process inside its memory budget.
            let db =
                redb::Builder::new().set_cache_size(REDB_CACHE_BYTES).create(&path).map_err(|e| err(&e))?;
            {
                let w = db.begin_write().map_err(|e| err(&e))?;
                w.open_table(TABLE).map_err(|e| err(&e))?;
                w.commit().map_err(|e| err(&e))?;
            }
            {
                let r = db.begin_read().map_err(|e| err(&e))?;
                let t = r.open_table(TABLE).map_err(|e| err(&e))?;
                for item in t.iter().map_err(|e| err(&e))? {
                    let (k, v) = item.map_err(|e| err(&e))?;
                    let v = v.value();
                    let received_at_ns =
                        v.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
                    let meta = Meta { size: v.len() as u64, received_at_ns: received_at_ns.unwrap_or(0) };
                    state.bytes += meta.size;
                    state.index.insert(k.value(), meta);
                }
            }
            state.next_seq = state.index.keys().next_back().map_or(0, |s| s + 1);
            if !state.index.is_empty() {
                tracing::info!(
                    deliveries = state.index.len(),
                    bytes = state.bytes,
                    "replaying buffered deliveries"
                );
            }
            let db = Arc::new(db);
            let (tx, rx) = mpsc::channel(cfg.max_commit_batch.max(16) * 4);
            (Some(db), Some((tx, rx)))
        } else {
            (None, None)
        };
        let (tx, rx) = match tx {
            Some((tx, rx)) => (Some(tx), Some(rx)),
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            notify: Notify::new(),
            db,
            path: path_s,
            tx,
            max_bytes: cfg.max_bytes,
            overflow: cfg.overflow,
            metrics,
        });
        inner.publish_depth(&inner.lock());
        if let Some(rx) = rx {
            let weak = Arc::downgrade(&inner);
            let max_batch = cfg.max_commit_batch;
            std::thread::Builder::new()
                .name("buffer-writer".into())
                .spawn(move || writer(weak, rx, max_batch))
                .map_err(|e| BufferError::Store {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(Buffer { inner })
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

    /// Stores a delivery; returns its sequence number once it is safely kept (committed and
    /// fsynced in durable mode).
    pub async fn append(&self, endpoint: &str, received_at_ns: u64, body: Bytes) -> Result<u64, AppendError> {
        let size = (body.len() + endpoint.len() + HEADER) as u64;
        if size > self.inner.max_bytes {
            return Err(AppendError::Full);
        }
        // Durable: take a slot in the writer's queue *before* reserving bytes. The wait for the
        // slot may be cancelled (the client hangs up); nothing is reserved yet at that point,
        // and from the reservation to the hand-over below there is no await to cancel.
        let permit = match self.inner.tx.as_ref() {
            Some(tx) => {
                Some(tx.reserve().await.map_err(|_| AppendError::Io("buffer writer stopped".into()))?)
            }
            None => None,
        };
        let permit = {
            let mut st = self.inner.lock();
            if self.inner.overflow == Overflow::Reject && st.bytes + st.reserved + size > self.inner.max_bytes
            {
                return Err(AppendError::Full);
            }
            let Some(permit) = permit else {
                // In memory: no commit to wait for.
                self.inner.make_room(&mut st, size);
                let seq = st.next_seq;
                st.next_seq += 1;
                st.bytes += size;
                st.index.insert(seq, Meta { size, received_at_ns });
                st.mem.insert(seq, Delivery { seq, endpoint: endpoint.into(), received_at_ns, body });
                self.inner.publish_depth(&st);
                drop(st);
                self.inner.notify.notify_waiters();
                return Ok(seq);
            };
            st.reserved += size;
            permit
        };
        let (reply, rx) = oneshot::channel();
        permit.send(Cmd::Append { endpoint: endpoint.into(), received_at_ns, body, reply });
        // Cancelling this wait is harmless: the writer commits and releases the reservation.
        rx.await.unwrap_or_else(|_| Err(AppendError::Io("buffer writer stopped".into())))
    }

    /// True while the buffer is below 90% of its cap (readiness: a load balancer should send
    /// elsewhere before deliveries start being refused).
    pub fn has_room(&self) -> bool {
        if self.inner.overflow == Overflow::DropOldest {
            return true;
        }
        let st = self.inner.lock();
        st.bytes + st.reserved < self.inner.max_bytes / 10 * 9
    }

    /// Number of deliveries and bytes kept.
    pub fn depth(&self) -> (usize, u64) {
        let st = self.inner.lock();
        (st.index.len(), st.bytes)
    }

    /// Sequence number of the last delivery kept, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.inner.lock().index.keys().next_back().copied()
    }

    /// Waits up to `wait` until a delivery with a sequence number ≥ `from` is kept.
    pub async fn wait_for(&self, from: u64, wait: Duration) -> bool {
        tokio::time::timeout(wait, async {
            loop {
                let notified = self.inner.notify.notified();
                if self.inner.lock().index.range(from..).next().is_some() {
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
        let Some(db) = self.inner.db.clone() else {
            let st = self.inner.lock();
            let mut out = Vec::new();
            let mut bytes = 0;
            for d in st.mem.range(from..).map(|(_, d)| d) {
                if out.len() >= max_items || (!out.is_empty() && bytes + d.body.len() as u64 > max_bytes) {
                    break;
                }
                bytes += d.body.len() as u64;
                out.push(d.clone());
            }
            return Ok(out);
        };
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || read_db(&db, from, max_items, max_bytes))
            .await
            .map_err(|e| BufferError::Store { path: path.clone(), message: e.to_string() })?
            .map_err(|message| BufferError::Store { path, message })
    }

    /// Removes every delivery with a sequence number ≤ `through` (their signals were
    /// acknowledged). Durable mode returns once the removal is committed (it shares the next
    /// group commit with concurrent appends).
    /// Returns false when the removal could not be committed (the deliveries stay and are
    /// exported again after a restart).
    pub async fn remove_through(&self, through: u64) -> bool {
        match &self.inner.tx {
            Some(tx) => {
                let (done, rx) = oneshot::channel();
                tx.send(Cmd::Remove { through, done }).await.is_ok() && rx.await.is_ok()
            }
            None => {
                let mut st = self.inner.lock();
                let keys: Vec<u64> = st.index.range(..=through).map(|(k, _)| *k).collect();
                for k in keys {
                    if let Some(m) = st.index.remove(&k) {
                        st.bytes -= m.size;
                    }
                    st.mem.remove(&k);
                }
                self.inner.publish_depth(&st);
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

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the index half-updated in a way that
        // matters more than stopping; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish_depth(&self, st: &State) {
        self.metrics.depth.set(st.index.len() as i64);
        self.metrics.depth_bytes.set(st.bytes as i64);
    }

    fn publish_age(&self, st: &State, now_ns: u64) {
        let age =
            st.index.values().next().map_or(0.0, |m| now_ns.saturating_sub(m.received_at_ns) as f64 / 1e9);
        self.metrics.oldest_age.set(age);
    }

    /// Drop-oldest mode: evicts the oldest deliveries until `size` more bytes fit.
    fn make_room(&self, st: &mut State, size: u64) {
        if self.overflow != Overflow::DropOldest {
            return;
        }
        while st.bytes + size > self.max_bytes {
            let Some((&seq, &meta)) = st.index.iter().next() else { break };
            st.index.remove(&seq);
            st.mem.remove(&seq);
            st.bytes -= meta.size;
            self.metrics.dropped.get_or_create(&vec![("reason".into(), "overflow".into())]).inc();
        }
    }
}

fn encode(endpoint: &str, received_at_ns: u64, body: &[u8]) -> Vec<u8> {
    let ep = &endpoint.as_bytes()[..endpoint.len().min(u16::MAX as usize)];
    let mut v = Vec::with_capacity(HEADER + ep.len() + body.len());
    v.extend_from_slice(&received_at_ns.to_le_bytes());
    v.extend_from_slice(&(ep.len() as u16).to_le_bytes());
    v.extend_from_slice(ep);
    v.extend_from_slice(body);
    v
}

/// Decodes a stored record; `None` for a record too short to be one (never panics).
fn decode(seq: u64, v: &[u8]) -> Option<Delivery> {
    let received_at_ns = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    let n = u16::from_le_bytes(v.get(8..10)?.try_into().ok()?) as usize;
    let endpoint = String::from_utf8_lossy(v.get(10..10 + n)?).into_owned();
    let body = Bytes::copy_from_slice(v.get(10 + n..)?);
    Some(Delivery { seq, endpoint, received_at_ns, body })
}

fn read_db(
    db: &redb::Database,
    from: u64,
    max_items: usize,
    max_bytes: u64,
) -> Result<Vec<Delivery>, String> {
    let r = db.begin_read().map_err(|e| e.to_string())?;
    let t = r.open_table(TABLE).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut bytes = 0u64;
    for item in t.range(from..).map_err(|e| e.to_string())? {
        let (k, v) = item.map_err(|e| e.to_string())?;
        let v = v.value();
        if out.len() >= max_items || (!out.is_empty() && bytes + v.len() as u64 > max_bytes) {
            break;
        }
        bytes += v.len() as u64;
        match decode(k.value(), v) {
            Some(d) => out.push(d),
            None => tracing::warn!(seq = k.value(), "skipping a corrupt buffer record"),
        }
    }
    Ok(out)
}

/// The writer thread: group commits until every `Buffer` is dropped.
fn writer(inner: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<Cmd>, max_batch: usize) {
    while let Some(first) = rx.blocking_recv() {
        let Some(inner) = inner.upgrade() else { return };
        let Some(db) = inner.db.clone() else { return };
        let mut cmds = vec![first];
        while cmds.len() < max_batch {
            match rx.try_recv() {
                Ok(c) => cmds.push(c),
                Err(_) => break,
            }
        }
        if let Err(e) = commit(&inner, &db, &mut cmds) {
            tracing::error!(error = %e, "buffer commit failed");
        }
        inner.publish_depth(&inner.lock());
        inner.notify.notify_waiters();
    }
}

/// Writes one batch of commands in one transaction. On success every append's reply carries
/// its sequence number; on failure every append gets the error and nothing changes.
fn commit(inner: &Inner, db: &redb::Database, cmds: &mut Vec<Cmd>) -> Result<(), String> {
    let fail = |cmds: &mut Vec<Cmd>, msg: String| {
        let mut st = inner.lock();
        for c in cmds.drain(..) {
            if let Cmd::Append { reply, body, endpoint, .. } = c {
                st.reserved -= (body.len() + endpoint.len() + HEADER) as u64;
                let _ = reply.send(Err(AppendError::Io(msg.clone())));
            }
        }
        msg
    };
    let mut w = match db.begin_write() {
        Ok(w) => w,
        Err(e) => return Err(fail(cmds, e.to_string())),
    };
    // redb's default, stated because the 200 answers depend on it: commit = fsync.
    if let Err(e) = w.set_durability(redb::Durability::Immediate) {
        return Err(fail(cmds, e.to_string()));
    }
    // Sequence numbers are assigned here, in commit order, so the table order is the
    // acknowledgement order.
    let mut assigned = Vec::new();
    let mut removed = Vec::new();
    {
        let mut t = match w.open_table(TABLE) {
            Ok(t) => t,
            Err(e) => return Err(fail(cmds, e.to_string())),
        };
        let st = inner.lock();
        let mut next = st.next_seq;
        // Removals first: they free room for the appends in drop-oldest mode.
        for c in cmds.iter() {
            if let Cmd::Remove { through, .. } = c {
                let keys: Vec<u64> = st.index.range(..=*through).map(|(k, _)| *k).collect();
                for k in keys {
                    if let Err(e) = t.remove(k) {
                        drop(st);
                        return Err(fail(cmds, e.to_string()));
                    }
                    removed.push(k);
                }
            }
        }
        let removed_bytes: u64 = removed.iter().filter_map(|k| st.index.get(k)).map(|m| m.size).sum();
        let mut pending_bytes = st.bytes - removed_bytes;
        let mut pending: BTreeMap<u64, Meta> = BTreeMap::new();
        for c in cmds.iter() {
            if let Cmd::Append { endpoint, received_at_ns, body, .. } = c {
                let size = (body.len() + endpoint.len() + HEADER) as u64;
                if inner.overflow == Overflow::DropOldest {
                    // Evict the oldest committed (not removed yet) deliveries to fit.
                    while pending_bytes + size > inner.max_bytes {
                        let victim = st
                            .index
                            .iter()
                            .find(|(k, _)| !removed.contains(k))
                            .map(|(k, m)| (*k, *m))
                            .or_else(|| pending.iter().next().map(|(k, m)| (*k, *m)));
                        let Some((seq, meta)) = victim else { break };
                        if t.remove(seq).is_err() {
                            break;
                        }
                        removed.push(seq);
                        pending.remove(&seq);
                        pending_bytes -= meta.size;
                        inner
                            .metrics
                            .dropped
                            .get_or_create(&vec![("reason".into(), "overflow".into())])
                            .inc();
                    }
                }
                let rec = encode(endpoint, *received_at_ns, body);
                if let Err(e) = t.insert(next, rec.as_slice()) {
                    drop(st);
                    return Err(fail(cmds, e.to_string()));
                }
                pending.insert(next, Meta { size, received_at_ns: *received_at_ns });
                pending_bytes += size;
                assigned.push(next);
                next += 1;
            }
        }
    }
    if let Err(e) = w.commit() {
        return Err(fail(cmds, e.to_string()));
    }
    let mut st = inner.lock();
    for k in &removed {
        if let Some(m) = st.index.remove(k) {
            st.bytes -= m.size;
        }
    }
    let mut i = 0;
    let mut n_appends = 0u64;
    for c in cmds.drain(..) {
        if let Cmd::Remove { done, .. } = c {
            let _ = done.send(());
        } else if let Cmd::Append { endpoint, received_at_ns, body, reply } = c {
            let seq = assigned[i];
            i += 1;
            n_appends += 1;
            let size = (body.len() + endpoint.len() + HEADER) as u64;
            st.reserved -= size;
            st.next_seq = seq + 1;
            if !removed.contains(&seq) {
                st.bytes += size;
                st.index.insert(seq, Meta { size, received_at_ns });
                let _ = reply.send(Ok(seq));
            } else {
                // Evicted within its own commit (drop-oldest with a burst larger than the
                // cap): it was never safely kept, so the sender must retry.
                let _ = reply.send(Err(AppendError::Full));
            }
        }
    }
    inner.metrics.commits.inc();
    if n_appends > 0 {
        inner.metrics.commit_batch.observe(n_appends as f64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(durable: bool) -> BufferConfig {
        BufferConfig { max_bytes: 1024 * 1024, durable, ..Default::default() }
    }

    #[tokio::test]
    async fn durable_survives_reopen_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = Buffer::open(&cfg(true), dir.path(), &mut Registry::default()).unwrap();
            let mut joins = Vec::new();
            for i in 0..50u64 {
                let b = b.clone();
                joins.push(tokio::spawn(async move {
                    b.append("default", i, Bytes::from(format!("{{\"n\":{i}}}"))).await
                }));
            }
            for j in joins {
                j.await.unwrap().unwrap();
            }
            assert_eq!(b.depth().0, 50);
            // Group commit: the 50 concurrent appends shared commits (one fsync each).
            let commits = b.metrics().commits.get();
            assert!(commits < 50, "{commits} commits for 50 concurrent appends");
            b.remove_through(9).await;
            // The removal is committed by the writer; an append after it proves ordering.
            b.append("x", 99, Bytes::from_static(b"{}")).await.unwrap();
            assert_eq!(b.depth().0, 41);
        }
        // Writer thread exits when the last handle drops; give it a moment to release the file.
        let mut reopened = None;
        for _ in 0..100 {
            match Buffer::open(&cfg(true), dir.path(), &mut Registry::default()) {
                Ok(b) => {
                    reopened = Some(b);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let b = reopened.expect("reopen");
        assert_eq!(b.depth().0, 41);
        let all = b.read(0, 1000, u64::MAX).await.unwrap();
        assert_eq!(all.len(), 41);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(all.last().unwrap().endpoint, "x");
        let next = b.append("default", 1, Bytes::from_static(b"{}")).await.unwrap();
        assert!(next > all.last().unwrap().seq);
    }

    #[tokio::test]
    async fn full_rejects_and_drop_oldest_evicts() {
        for durable in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let body = Bytes::from(vec![b'x'; 330 * 1024]);
            let b = Buffer::open(&cfg(durable), dir.path(), &mut Registry::default()).unwrap();
            for _ in 0..3 {
                b.append("default", 0, body.clone()).await.unwrap();
            }
            assert!(matches!(b.append("default", 0, body.clone()).await, Err(AppendError::Full)));
            assert!(!b.has_room());
            drop(b);
            let dir = tempfile::tempdir().unwrap();
            let c = BufferConfig { overflow: Overflow::DropOldest, ..cfg(durable) };
            let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
            for i in 0..5 {
                b.append("default", i, body.clone()).await.unwrap();
            }
            let kept = b.read(0, 100, u64::MAX).await.unwrap();
            assert_eq!(kept.len(), 3, "durable={durable}");
            assert_eq!(kept[0].received_at_ns, 2);
            let dropped =
                b.metrics().dropped.get_or_create(&vec![("reason".into(), "overflow".into())]).get();
            assert_eq!(dropped, 2);
        }
    }

    #[test]
    fn decode_never_panics() {
        assert!(decode(1, b"short").is_none());
        assert!(decode(1, &[0u8; 9]).is_none());
        let mut v = vec![0u8; 10];
        v[8] = 200;
        assert!(decode(1, &v).is_none());
        let d = decode(3, &encode("ep", 7, b"body")).unwrap();
        assert_eq!((d.endpoint.as_str(), d.received_at_ns, &d.body[..]), ("ep", 7, &b"body"[..]));
    }
}
