//! The buffer of accepted deliveries between ingest and export.
//!
//! # Storage
//! Durable mode keeps deliveries in an append-only log of segment files under
//! `<data_dir>/buffer/` (format and recovery rules in [`segment_log`]). A log fits the access
//! pattern exactly: deliveries are written once in order, read once in order and acknowledged
//! in order, so removal is a watermark record and whole-segment deletion, with no in-place
//! updates. (An embedded B-tree store did the same work with two copy-on-write commits per
//! delivery and cost about a third of the server's CPU under load.)
//!
//! # Durability: `buffer.fsync`
//! - `interval` (default): each request appends its delivery itself, one `write` into the page
//!   cache under the log's lock, and its 200 follows that write: it survives a crash or
//!   `kill -9` of the process. The `buffer-sync` thread runs `fdatasync` every
//!   `buffer.fsync_interval` (and syncs new segments and the directory), so a power loss or
//!   kernel crash can lose the last interval.
//! - `always`: one writer thread takes everything queued (up to `buffer.max_commit_batch`),
//!   writes it with **one** `write` and **one** `fdatasync`, then answers every waiting append
//!   (group commit). A 200 then also survives a power loss.
//!
//! # When deliveries are removed
//! The pipeline calls [`Buffer::remove_through`] once every signal of the deliveries up to a
//! sequence number is acknowledged (see `pipeline.rs` for the metric watermark rule).
//!
//! With `buffer.durable: false` the same API keeps deliveries in memory only.

pub mod config;
mod segment_log;

use self::config::{BufferConfig, Fsync, Overflow};
use self::segment_log::{Loc, RECORD_OVERHEAD, SegmentLog};
use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

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
    /// Bytes counted against the cap (stored frame: body, endpoint and bookkeeping).
    size: u64,
    received_at_ns: u64,
    /// Where the frame is on disk (durable mode).
    loc: Loc,
}

/// The kept deliveries in sequence order. Appends come in increasing order and removals take
/// the oldest, so a deque does it all: removing 100,000 entries under buffer pressure is a run
/// of cheap pops (a B-tree took ~100 ms for that, holding the lock that every request needs).
#[derive(Default)]
struct Index(VecDeque<(u64, Meta)>);

impl Index {
    fn push(&mut self, seq: u64, meta: Meta) {
        debug_assert!(self.0.back().is_none_or(|(last, _)| *last < seq), "sequence numbers increase");
        self.0.push_back((seq, meta));
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn first(&self) -> Option<&(u64, Meta)> {
        self.0.front()
    }

    fn last_seq(&self) -> Option<u64> {
        self.0.back().map(|(s, _)| *s)
    }

    /// Entries with sequence numbers ≥ `from`, with their positions.
    fn from(&self, from: u64) -> impl Iterator<Item = (usize, &(u64, Meta))> {
        let start = self.0.partition_point(|(s, _)| *s < from);
        self.0.range(start..).enumerate().map(move |(i, e)| (start + i, e))
    }

    fn pop_front(&mut self) -> Option<(u64, Meta)> {
        self.0.pop_front()
    }
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// Stored bytes (committed).
    bytes: u64,
    /// Bytes accepted for the next commit but not yet written.
    reserved: u64,
    index: Index,
    /// Bodies, in-memory mode only: the same deliveries as `index`, in the same order.
    mem: VecDeque<Delivery>,
    /// Open segment files by id, for readers (durable mode).
    files: BTreeMap<u64, Arc<File>>,
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
    durable: bool,
    path: String,
    store: Store,
    /// Acknowledged segment files waiting to be deleted off the request path.
    unlink: Mutex<Vec<std::path::PathBuf>>,
    max_bytes: u64,
    overflow: Overflow,
    metrics: BufferMetrics,
}

/// Who writes to the log.
enum Store {
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
struct Log {
    log: SegmentLog,
    buf: Vec<u8>,
}

/// The buffer. Cheap to clone.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
}

/// Bytes a delivery counts against the cap.
fn stored_size(endpoint: &str, body: &[u8]) -> u64 {
    (RECORD_OVERHEAD + endpoint.len().min(u16::MAX as usize) + body.len()) as u64
}

impl Buffer {
    /// Opens (or creates) the buffer. Durable mode opens `<data_dir>/buffer/`, replays what it
    /// holds (the pipeline reads it again from the start) and starts the writer thread.
    pub fn open(cfg: &BufferConfig, data_dir: &Path, registry: &mut Registry) -> Result<Buffer, BufferError> {
        let metrics = BufferMetrics::new();
        metrics.register(registry);
        let dir = data_dir.join("buffer");
        let path = dir.display().to_string();
        let mut state = State::default();
        let mut log = None;
        if cfg.durable {
            let opened = SegmentLog::open(&dir, segment_bytes(cfg.max_bytes), cfg.fsync == Fsync::Always)
                .map_err(|e| BufferError::Store { path: path.clone(), message: e.to_string() })?;
            for d in opened.deliveries {
                state.bytes += d.stored_len;
                let meta = Meta { size: d.stored_len, received_at_ns: d.received_at_ns, loc: d.loc };
                state.index.push(d.seq, meta);
            }
            state.next_seq = opened.next_seq;
            state.files = opened.log.files().collect();
            if opened.corrupt > 0 {
                metrics.dropped.get_or_create(&reason("corrupt")).inc_by(opened.corrupt);
            }
            if !state.index.is_empty() {
                tracing::info!(
                    deliveries = state.index.len(),
                    bytes = state.bytes,
                    "replaying buffered deliveries"
                );
            }
            log = Some(opened.log);
        }
        let (store, writer_rx, log) = match log {
            Some(log) if cfg.fsync == Fsync::Always => {
                let (tx, rx) = mpsc::channel(cfg.max_commit_batch.max(16) * 4);
                (Store::Writer(tx), Some(rx), Some(log))
            }
            Some(log) => (
                Store::Inline {
                    log: Mutex::new(Log { log, buf: Vec::new() }),
                    queue: Mutex::new(Vec::new()),
                },
                None,
                None,
            ),
            None => (Store::Memory, None, None),
        };
        let inline = matches!(store, Store::Inline { .. });
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            notify: Notify::new(),
            durable: cfg.durable,
            path: path.clone(),
            store,
            unlink: Mutex::new(Vec::new()),
            max_bytes: cfg.max_bytes,
            overflow: cfg.overflow,
            metrics,
        });
        inner.publish_depth(&inner.lock());
        let spawn_err = |e: std::io::Error| BufferError::Store { path: path.clone(), message: e.to_string() };
        if let (Some(rx), Some(log)) = (writer_rx, log) {
            let weak = Arc::downgrade(&inner);
            let max_batch = cfg.max_commit_batch;
            std::thread::Builder::new()
                .name("buffer-writer".into())
                .spawn(move || writer(weak, log, rx, max_batch))
                .map_err(spawn_err)?;
        } else if inline {
            let weak = Arc::downgrade(&inner);
            let every = cfg.fsync_interval;
            std::thread::Builder::new()
                .name("buffer-sync".into())
                .spawn(move || syncer(weak, every))
                .map_err(spawn_err)?;
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
            if self.inner.overflow == Overflow::Reject && st.bytes + st.reserved + size > self.inner.max_bytes
            {
                return Err(AppendError::Full);
            }
            if let Store::Memory = self.inner.store {
                // In memory: no commit to wait for.
                self.inner.make_room(&mut st, size);
                let seq = st.next_seq;
                st.next_seq += 1;
                st.bytes += size;
                st.index.push(seq, Meta { size, received_at_ns, loc: Loc::default() });
                st.mem.push_back(Delivery { seq, endpoint: endpoint.into(), received_at_ns, body });
                self.inner.publish_depth(&st);
                drop(st);
                self.inner.notify.notify_waiters();
                return Ok(seq);
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
        if self.inner.overflow == Overflow::DropOldest {
            return true;
        }
        let st = self.inner.lock();
        st.bytes + st.reserved < self.inner.max_bytes / 10 * 9
    }

    /// How full the buffer is: kept and reserved bytes over the cap (0 to about 1).
    pub fn fill(&self) -> f64 {
        let st = self.inner.lock();
        (st.bytes + st.reserved) as f64 / self.inner.max_bytes as f64
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
        let mut runs: Vec<Run> = Vec::new();
        {
            let st = self.inner.lock();
            let mut bytes = 0;
            let mut in_memory = Vec::new();
            for (n, (pos, &(seq, meta))) in st.index.from(from).enumerate() {
                if n >= max_items || (n > 0 && bytes + meta.size > max_bytes) {
                    break;
                }
                bytes += meta.size;
                if !self.inner.durable {
                    in_memory.extend(st.mem.get(pos).cloned());
                    continue;
                }
                let loc = meta.loc;
                // Frames written by one commit lie back to back: read them with one call.
                if let Some(run) = runs.last_mut()
                    && run.segment == loc.segment
                    && run.offset + run.len == loc.offset
                {
                    run.len += u64::from(loc.len);
                    run.entries.push((seq, loc.len));
                    continue;
                }
                let Some(file) = st.files.get(&loc.segment) else { continue };
                runs.push(Run {
                    file: file.clone(),
                    segment: loc.segment,
                    offset: loc.offset,
                    len: u64::from(loc.len),
                    entries: vec![(seq, loc.len)],
                });
            }
            if !self.inner.durable {
                return Ok(in_memory);
            }
        }
        // A small read is a few page-cache copies: cheaper on this thread than the hop to a
        // blocking thread and back. A large one (a backlog after an outage, perhaps no longer
        // cached) goes to a blocking thread.
        let total: u64 = runs.iter().map(|r| r.len).sum();
        if total <= INLINE_READ_BYTES {
            return read_runs(&self.inner, runs);
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || read_runs(&inner, runs))
            .await
            .map_err(|e| BufferError::Store { path: self.inner.path.clone(), message: e.to_string() })?
    }

    /// Removes every delivery with a sequence number ≤ `through` (their signals were
    /// acknowledged). Durable mode returns once the removal is written (it shares the next
    /// group commit with concurrent appends).
    /// Returns false when the removal could not be written (the deliveries stay and are
    /// exported again after a restart).
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
                let mut st = self.inner.lock();
                let removed = remove_through_index(&mut st, through);
                let bodies: Vec<Delivery> = st.mem.drain(..removed).collect();
                self.inner.publish_depth(&st);
                drop(st);
                drop(bodies);
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

/// Removes the index entries with sequence numbers ≤ `through`; returns how many.
fn remove_through_index(st: &mut State, through: u64) -> usize {
    let mut n = 0;
    while st.index.first().is_some_and(|(s, _)| *s <= through) {
        if let Some((_, m)) = st.index.pop_front() {
            st.bytes -= m.size;
            n += 1;
        }
    }
    n
}

/// Reads up to this size are done on the calling thread.
const INLINE_READ_BYTES: u64 = 256 * 1024;

/// Segment size: small enough that acknowledged space is freed soon, large enough that
/// segments are rarely started (each start costs two syncs).
fn segment_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 8).clamp(64 * 1024, 8 * 1024 * 1024)
}

fn reason(r: &str) -> Vec<(String, String)> {
    vec![("reason".into(), r.into())]
}

/// A piece of a durable read: consecutive frames of one segment. `entries`: each frame's
/// sequence number and length, from the index (not from the bytes on disk, so that one damaged
/// length cannot hide the frames after it).
struct Run {
    file: Arc<File>,
    segment: u64,
    offset: u64,
    len: u64,
    entries: Vec<(u64, u32)>,
}

/// Reads and decodes frames from disk. Bodies are slices of the read buffer, not copies. A
/// frame damaged on disk since it was written comes back with an empty body (the pipeline
/// counts it as unparseable and moves past it) and is counted here as `corrupt`.
fn read_runs(inner: &Inner, runs: Vec<Run>) -> Result<Vec<Delivery>, BufferError> {
    let mut out = Vec::new();
    for run in runs {
        let Run { file, segment, offset, len, entries } = run;
        let bytes = segment_log::read_run(&file, offset, len as usize).map_err(|e| BufferError::Store {
            path: inner.path.clone(),
            message: format!("segment {segment} at {offset}: {e}"),
        })?;
        let mut at = 0usize;
        for (seq, frame_len) in entries {
            let end = at + frame_len as usize;
            let frame = bytes.slice(at.min(bytes.len())..end.min(bytes.len()));
            at = end;
            match segment_log::decode_delivery(&frame) {
                Ok(f) if f.seq == seq => out.push(Delivery {
                    seq,
                    endpoint: f.endpoint,
                    received_at_ns: f.received_at_ns,
                    body: f.body,
                }),
                result => {
                    let error =
                        result.err().map_or_else(|| "sequence number mismatch".into(), |e| e.to_string());
                    tracing::error!(segment, seq, error, "skipping a damaged buffer record");
                    inner.metrics.dropped.get_or_create(&reason("corrupt")).inc();
                    out.push(Delivery {
                        seq,
                        endpoint: String::new(),
                        received_at_ns: 0,
                        body: Bytes::new(),
                    });
                }
            }
        }
    }
    Ok(out)
}

impl Inner {
    /// `fsync: interval`: commits a command on the caller's thread (a short `write` into the
    /// page cache), or hands it to the thread writing now; its reply is sent either way.
    ///
    /// Never waits for the log: a tokio worker blocked on the mutex while the other core writes
    /// sleeps through a context switch each time (1–2 % of the server's CPU under load). The
    /// holder writes what was queued meanwhile, in one `write`.
    fn commit_inline(&self, cmd: Cmd) {
        let Store::Inline { queue, .. } = &self.store else { return };
        queue.lock().unwrap_or_else(|p| p.into_inner()).push(cmd);
        self.write_queued();
    }

    /// Writes the queued commands unless another thread holds the log. Every holder calls this
    /// after letting go, so a command queued while the log was held is never left behind.
    ///
    /// The holder gives the log up only while it holds the queue and sees it empty: a command
    /// pushed after that finds the log free (or held by a thread that will look at the queue
    /// again). Letting go of the queue first would leave a gap in which a push fails its
    /// `try_lock` and nobody writes it until the next request or sync pass.
    fn write_queued(&self) {
        let Store::Inline { log, queue } = &self.store else { return };
        loop {
            let mut g = match log.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            };
            let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.is_empty() {
                drop(g);
                return;
            }
            let mut cmds = std::mem::take(&mut *q);
            drop(q);
            let Log { log, buf } = &mut *g;
            if let Err(e) = commit(self, log, &mut cmds, buf, false) {
                tracing::error!(error = %e, path = %self.path, "buffer write failed");
            }
            if buf.capacity() > 4 * 1024 * 1024 {
                *buf = Vec::new();
            }
            drop(g);
            self.publish_depth(&self.lock());
            self.notify.notify_waiters();
        }
    }

    /// Runs `f` on the inline log (waiting for it: for the sync thread, never a request), then
    /// writes whatever requests queued meanwhile.
    fn with_inline_log<R>(&self, f: impl FnOnce(&mut SegmentLog) -> R) -> Option<R> {
        let Store::Inline { log, .. } = &self.store else { return None };
        let r = f(&mut log.lock().unwrap_or_else(|p| p.into_inner()).log);
        self.write_queued();
        Some(r)
    }

    /// Queues segment files for deletion by the writer or sync thread.
    fn unlink_later(&self, segments: Vec<(u64, std::path::PathBuf)>) {
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
    fn unlink_pending(&self) {
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
        let age = st.index.first().map_or(0.0, |(_, m)| now_ns.saturating_sub(m.received_at_ns) as f64 / 1e9);
        self.metrics.oldest_age.set(age);
    }

    /// Drop-oldest mode, in memory: evicts the oldest deliveries until `size` more bytes fit.
    fn make_room(&self, st: &mut State, size: u64) {
        if self.overflow != Overflow::DropOldest {
            return;
        }
        while st.bytes + size > self.max_bytes {
            let Some((_, meta)) = st.index.pop_front() else { break };
            st.mem.pop_front();
            st.bytes -= meta.size;
            self.metrics.dropped.get_or_create(&reason("overflow")).inc();
        }
    }
}

/// The writer thread: group commits until every `Buffer` is dropped.
fn writer(inner: std::sync::Weak<Inner>, mut log: SegmentLog, mut rx: mpsc::Receiver<Cmd>, max_batch: usize) {
    let mut buf = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let Some(inner) = inner.upgrade() else { return };
        let mut cmds = vec![first];
        while cmds.len() < max_batch {
            match rx.try_recv() {
                Ok(c) => cmds.push(c),
                Err(_) => break,
            }
        }
        if let Err(e) = commit(&inner, &mut log, &mut cmds, &mut buf, true) {
            tracing::error!(error = %e, path = %inner.path, "buffer write failed");
        }
        inner.publish_depth(&inner.lock());
        inner.notify.notify_waiters();
        inner.unlink_pending();
        // Do not keep a large burst's buffer around.
        if buf.capacity() > 4 * 1024 * 1024 {
            buf = Vec::new();
        }
    }
}

/// `fsync: interval`: syncs what was written every `every`, until every `Buffer` is dropped
/// (the log syncs a last time when it is dropped).
fn syncer(inner: std::sync::Weak<Inner>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(inner) = inner.upgrade() else { return };
        inner.unlink_pending();
        let Some(unsynced) = inner.with_inline_log(|log| log.take_unsynced()) else { return };
        if let Err(e) = unsynced.sync() {
            tracing::error!(error = %e, path = %inner.path, "buffer sync failed");
            inner.with_inline_log(|log| log.sync_failed(unsynced));
        }
    }
}

/// Writes one batch of commands with one write (and, with `sync`, one fsync). On success every
/// append's reply carries its sequence number; on failure every append gets the error and
/// nothing changes (the sequence numbers it would have used are skipped).
fn commit(
    inner: &Inner,
    log: &mut SegmentLog,
    cmds: &mut Vec<Cmd>,
    buf: &mut Vec<u8>,
    sync: bool,
) -> std::io::Result<()> {
    // 1. Decide, under the lock, the sequence numbers and the new acknowledgement watermark:
    //    the highest removal asked for, raised by drop-oldest evictions (oldest first, so an
    //    eviction is an acknowledgement through the victim).
    let (first_seq, through, evicted) = {
        let st = inner.lock();
        let mut through: Option<u64> = cmds
            .iter()
            .filter_map(|c| match c {
                Cmd::Remove { through, .. } => Some(*through),
                Cmd::Append { .. } => None,
            })
            .max();
        let first_seq = st.next_seq;
        let mut evicted = 0u64;
        if inner.overflow == Overflow::DropOldest {
            // Lazily, from the oldest: a commit must not walk (or copy) the whole index.
            let removed: u64 = through
                .map_or(0, |t| st.index.0.iter().take_while(|(s, _)| *s <= t).map(|(_, m)| m.size).sum());
            let mut bytes = st.bytes - removed;
            let mut victims = st.index.from(through.map_or(0, |t| t + 1)).map(|(_, (k, m))| (*k, m.size));
            let mut batch: std::collections::VecDeque<(u64, u64)> = Default::default();
            let mut seq = first_seq;
            for c in cmds.iter() {
                let Cmd::Append { endpoint, body, .. } = c else { continue };
                let size = stored_size(endpoint, body);
                while bytes + size > inner.max_bytes {
                    // Kept deliveries go first; then this batch's own (answered "full", so not
                    // counted as dropped: they were never accepted).
                    let (victim, vsize, kept) = match victims.next() {
                        Some((v, size)) => (v, size, true),
                        None => match batch.pop_front() {
                            Some((v, size)) => (v, size, false),
                            None => break,
                        },
                    };
                    through = through.max(Some(victim));
                    bytes -= vsize;
                    evicted += u64::from(kept);
                }
                batch.push_back((seq, size));
                bytes += size;
                seq += 1;
            }
        }
        (first_seq, through, evicted)
    };
    // 2. Encode and write, without the lock.
    let (segment, base, new_file) = match log.prepare() {
        Ok(p) => p,
        Err(e) => return Err(fail(inner, cmds, first_seq, e)),
    };
    buf.clear();
    let mut locs = Vec::with_capacity(cmds.len());
    let mut seq = first_seq;
    for c in cmds.iter() {
        if let Cmd::Append { endpoint, received_at_ns, body, .. } = c {
            let start = buf.len();
            segment_log::encode_delivery(buf, seq, *received_at_ns, endpoint, body);
            locs.push(Loc { segment, offset: base + start as u64, len: (buf.len() - start) as u32 });
            seq += 1;
        }
    }
    let last_seq = seq.checked_sub(1).filter(|_| seq > first_seq);
    if let Some(t) = through {
        segment_log::encode_ack(buf, t);
    }
    let written = log.write(buf, last_seq, through, sync);
    let deleted = if written.is_ok() { log.take_acked() } else { Vec::new() };
    // 3. Publish.
    let mut st = inner.lock();
    if let Some(f) = new_file {
        st.files.insert(segment, f);
    }
    for (id, _) in &deleted {
        st.files.remove(id);
    }
    inner.unlink_later(deleted);
    if let Err(e) = written {
        drop(st);
        return Err(fail(inner, cmds, first_seq, e));
    }
    if let Some(t) = through {
        remove_through_index(&mut st, t);
    }
    st.next_seq = seq;
    let mut n_appends = 0u64;
    let mut locs = locs.into_iter();
    let mut seq = first_seq;
    for c in cmds.drain(..) {
        match c {
            Cmd::Remove { done, .. } => {
                let _ = done.send(());
            }
            Cmd::Append { endpoint, received_at_ns, body, reply } => {
                let loc = locs.next().unwrap_or_default();
                let size = stored_size(&endpoint, &body);
                st.reserved -= size;
                n_appends += 1;
                if through.is_none_or(|t| seq > t) {
                    st.bytes += size;
                    st.index.push(seq, Meta { size, received_at_ns, loc });
                    let _ = reply.send(Ok(seq));
                } else {
                    // Evicted within its own commit (drop-oldest with a burst larger than the
                    // cap): it was never safely kept, so the sender must retry.
                    let _ = reply.send(Err(AppendError::Full));
                }
                seq += 1;
            }
        }
    }
    drop(st);
    if evicted > 0 {
        inner.metrics.dropped.get_or_create(&reason("overflow")).inc_by(evicted);
    }
    inner.metrics.commits.inc();
    if n_appends > 0 {
        inner.metrics.commit_batch.observe(n_appends as f64);
    }
    Ok(())
}

/// Answers every command of a failed commit with the error; the sequence numbers the batch
/// would have used are skipped so that none is ever reused.
fn fail(inner: &Inner, cmds: &mut Vec<Cmd>, first_seq: u64, e: std::io::Error) -> std::io::Error {
    let mut st = inner.lock();
    let mut n = 0;
    for c in cmds.drain(..) {
        if let Cmd::Append { reply, body, endpoint, .. } = c {
            st.reserved -= stored_size(&endpoint, &body);
            n += 1;
            let _ = reply.send(Err(AppendError::Io(e.to_string())));
        }
    }
    st.next_seq = st.next_seq.max(first_seq + n);
    e
}
#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(durable: bool) -> BufferConfig {
        BufferConfig { max_bytes: 1024 * 1024, durable, ..Default::default() }
    }

    /// Both durable modes: writer thread with group commit, and inline writes.
    fn durable_cfgs() -> [BufferConfig; 2] {
        [
            BufferConfig { fsync: Fsync::Always, ..cfg(true) },
            BufferConfig { fsync: Fsync::Interval, ..cfg(true) },
        ]
    }

    #[tokio::test]
    async fn durable_survives_reopen_and_removes() {
        for c in durable_cfgs() {
            durable_survives_reopen_and_removes_with(c).await;
        }
    }

    async fn durable_survives_reopen_and_removes_with(c: BufferConfig) {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
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
            if c.fsync == Fsync::Always {
                // Group commit: the 50 concurrent appends shared commits (one fsync each).
                let commits = b.metrics().commits.get();
                assert!(commits < 50, "{commits} commits for 50 concurrent appends");
            }
            b.remove_through(9).await;
            // The removal is committed by the writer; an append after it proves ordering.
            b.append("x", 99, Bytes::from_static(b"{}")).await.unwrap();
            assert_eq!(b.depth().0, 41);
        }
        let b = reopen(&c, dir.path()).await;
        assert_eq!(b.depth().0, 41);
        let all = b.read(0, 1000, u64::MAX).await.unwrap();
        assert_eq!(all.len(), 41);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(all.last().unwrap().endpoint, "x");
        let next = b.append("default", 1, Bytes::from_static(b"{}")).await.unwrap();
        assert!(next > all.last().unwrap().seq);
    }

    /// Inline writes from several threads at once, with removals: a request that finds the log
    /// held hands its command to the holder, and none is left unwritten. A lost hand-over hangs
    /// the round's last appends (caught by the timeout); rounds give it many chances to show.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn inline_appends_from_many_threads_are_all_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let c = BufferConfig {
            fsync: Fsync::Interval,
            // Long: a sync pass also writes what is queued, which would hide a lost hand-over.
            fsync_interval: Duration::from_secs(60),
            max_bytes: 256 * 1024 * 1024,
            ..cfg(true)
        };
        let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
        // Large enough that writes take a while and overlap.
        let pad = "x".repeat(16 * 1024);
        let (rounds, tasks, per_task) = (12u64, 16u64, 20u64);
        let mut all_seqs = Vec::new();
        let mut last_round = Vec::new();
        for r in 0..rounds {
            let before = all_seqs.iter().copied().max();
            let mut joins = Vec::new();
            for t in 0..tasks {
                let (b, pad) = (b.clone(), pad.clone());
                joins.push(tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for i in 0..per_task {
                        let n = (r * tasks + t) * per_task + i;
                        let body = Bytes::from(format!("{{\"n\":{n},\"pad\":\"{pad}\"}}"));
                        seqs.push(b.append("default", n, body).await.unwrap());
                    }
                    seqs
                }));
            }
            // The previous rounds' removal goes through the same hand-over, amid the appends.
            if let Some(through) = before {
                let b = b.clone();
                joins.push(tokio::spawn(async move {
                    assert!(b.remove_through(through).await);
                    Vec::new()
                }));
            }
            let round = async {
                let mut seqs = Vec::new();
                for j in joins {
                    seqs.extend(j.await.unwrap());
                }
                seqs
            };
            let seqs = tokio::time::timeout(Duration::from_secs(10), round)
                .await
                .unwrap_or_else(|_| panic!("round {r}: an append or removal never returned"));
            last_round = ((r * tasks * per_task)..((r + 1) * tasks * per_task)).collect::<Vec<_>>();
            all_seqs.extend(seqs);
        }
        let n = all_seqs.len();
        all_seqs.sort_unstable();
        all_seqs.dedup();
        assert_eq!(all_seqs.len(), n, "a sequence number was handed out twice");
        // Exactly the last round is kept, each delivery once, and after a restart too.
        let kept = |v: Vec<Delivery>| {
            let mut ns: Vec<u64> = v.iter().map(|d| d.received_at_ns).collect();
            ns.sort_unstable();
            ns
        };
        assert_eq!(kept(b.read(0, 100_000, u64::MAX).await.unwrap()), last_round);
        drop(b);
        let b = reopen(&c, dir.path()).await;
        assert_eq!(kept(b.read(0, 100_000, u64::MAX).await.unwrap()), last_round);
    }

    #[tokio::test]
    async fn full_rejects_and_drop_oldest_evicts() {
        let [always, interval] = durable_cfgs();
        for base in [cfg(false), always, interval] {
            let durable = (base.durable, base.fsync);
            let dir = tempfile::tempdir().unwrap();
            let body = Bytes::from(vec![b'x'; 330 * 1024]);
            let b = Buffer::open(&base, dir.path(), &mut Registry::default()).unwrap();
            for _ in 0..3 {
                b.append("default", 0, body.clone()).await.unwrap();
            }
            assert!(matches!(b.append("default", 0, body.clone()).await, Err(AppendError::Full)));
            assert!(!b.has_room());
            drop(b);
            let dir = tempfile::tempdir().unwrap();
            let c = BufferConfig { overflow: Overflow::DropOldest, ..base };
            let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
            for i in 0..5 {
                b.append("default", i, body.clone()).await.unwrap();
            }
            let kept = b.read(0, 100, u64::MAX).await.unwrap();
            assert_eq!(kept.len(), 3, "{durable:?}");
            assert_eq!(kept[0].received_at_ns, 2);
            let dropped =
                b.metrics().dropped.get_or_create(&vec![("reason".into(), "overflow".into())]).get();
            assert_eq!(dropped, 2);
        }
    }

    fn segment_files(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("buffer"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg"))
            .count()
    }

    async fn reopen(c: &BufferConfig, dir: &Path) -> Buffer {
        // The writer thread exits when the last handle drops.
        for _ in 0..100 {
            if let Ok(b) = Buffer::open(c, dir, &mut Registry::default()) {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("reopen failed");
    }

    #[tokio::test]
    async fn acknowledged_segments_are_deleted_and_never_come_back() {
        for c in durable_cfgs() {
            acknowledged_segments_are_deleted_and_never_come_back_with(c).await;
        }
    }

    async fn acknowledged_segments_are_deleted_and_never_come_back_with(c: BufferConfig) {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
        let body = Bytes::from(vec![b'y'; 10_000]);
        for i in 0..60 {
            b.append("default", i, body.clone()).await.unwrap();
        }
        let many = segment_files(dir.path());
        assert!(many >= 4, "600 kB in 128 KiB segments gave {many} files");
        let read = b.read(0, 1000, u64::MAX).await.unwrap();
        assert_eq!(read.len(), 60);
        assert!(read.iter().all(|d| d.body == body));
        assert!(b.remove_through(49).await);
        // Deleted off the request path, by the writer or sync thread.
        let mut few = segment_files(dir.path());
        for _ in 0..100 {
            if few < many {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            few = segment_files(dir.path());
        }
        assert!(few < many, "{few} segment files after acknowledging 50 of 60 ({many} before)");
        drop(b);
        let b = reopen(&c, dir.path()).await;
        let left = b.read(0, 1000, u64::MAX).await.unwrap();
        assert_eq!(left.iter().map(|d| d.received_at_ns).collect::<Vec<_>>(), (50..60).collect::<Vec<_>>());
        assert_eq!(b.depth(), (10, 10 * stored_size("default", &body)));
        // Sequence numbers keep increasing across restarts, even once everything is acknowledged.
        assert!(b.remove_through(left.last().unwrap().seq).await);
        drop(b);
        let b = reopen(&c, dir.path()).await;
        assert_eq!(b.depth().0, 0);
        let seq = b.append("default", 1, Bytes::from_static(b"{}")).await.unwrap();
        assert!(seq > left.last().unwrap().seq);
        assert_eq!(segment_files(dir.path()), 1);
    }

    #[tokio::test]
    async fn drop_oldest_evictions_survive_a_restart() {
        for c in durable_cfgs() {
            let c = BufferConfig { overflow: Overflow::DropOldest, ..c };
            drop_oldest_evictions_survive_a_restart_with(c).await;
        }
    }

    async fn drop_oldest_evictions_survive_a_restart_with(c: BufferConfig) {
        let dir = tempfile::tempdir().unwrap();
        let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
        let body = Bytes::from(vec![b'z'; 300 * 1024]);
        for i in 0..7 {
            b.append("default", i, body.clone()).await.unwrap();
        }
        drop(b);
        let b = reopen(&c, dir.path()).await;
        let kept: Vec<u64> =
            b.read(0, 100, u64::MAX).await.unwrap().iter().map(|d| d.received_at_ns).collect();
        assert_eq!(kept, vec![4, 5, 6]);
    }

    #[tokio::test]
    async fn a_damaged_record_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(true);
        let b = Buffer::open(&c, dir.path(), &mut Registry::default()).unwrap();
        for i in 0..3 {
            b.append("default", i, Bytes::from(format!("{{\"body\":{i}}}"))).await.unwrap();
        }
        // Flip a byte of the second body on disk, behind the buffer's back.
        let seg = std::fs::read_dir(dir.path().join("buffer"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap();
        // Damage the length field of the second frame: the frames are found from the index, so
        // one damaged length cannot hide the frames after it.
        let mut data = std::fs::read(&seg).unwrap();
        let second = data.windows(8).position(|w| w == b"body\":1}").unwrap();
        let frame_start = second - (8 + 1 + 8 + 8 + 2 + "default".len() + 2);
        data[frame_start] ^= 0x7f;
        std::fs::write(&seg, data).unwrap();
        let read = b.read(0, 10, u64::MAX).await.unwrap();
        // Every delivery comes back, in order, so the pipeline moves past the damaged one,
        // which has an empty body and is counted.
        assert_eq!(read.len(), 3);
        assert_eq!(&read[0].body[..], b"{\"body\":0}");
        assert!(read[1].body.is_empty());
        assert_eq!(&read[2].body[..], b"{\"body\":2}");
        assert!(read.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(b.metrics().dropped.get_or_create(&reason("corrupt")).get(), 1);
    }
}
