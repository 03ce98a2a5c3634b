//! Opening the buffer: replaying the segment log into the index (durable mode), choosing who
//! writes (writer thread, inline writers or nobody) and starting the buffer's thread.

use super::command::Cmd;
use super::config::{BufferConfig, Fsync};
use super::errors::BufferError;
use super::index::{Meta, State};
use super::inner::{Inner, Log, Store};
use super::segment_log::SegmentLog;
use super::{sync, writer};
use crate::telemetry::buffer::{BufferMetrics, DropReason};
use prometheus_client::registry::Registry;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// Opens (or creates) the buffer's shared state and starts its thread.
pub(super) fn open(
    cfg: &BufferConfig,
    data_dir: &Path,
    registry: &mut Registry,
) -> Result<Arc<Inner>, BufferError> {
    let metrics = BufferMetrics::register(registry);
    let dir = data_dir.join("buffer");
    let path = dir.display().to_string();
    let store_err = |e: std::io::Error| BufferError::Store { path: path.clone(), message: e.to_string() };
    let mut state = State::default();
    let (log, start_error) = if cfg.durable {
        let (log, e) = replay(cfg, &dir, &mut state, &metrics).map_err(store_err)?;
        (Some(log), e)
    } else {
        (None, None)
    };
    let (store, writer_parts) = store(cfg, log);
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
        fsync: cfg.fsync,
        metrics,
        storage_error: Mutex::new(None),
    });
    if let Some(e) = start_error {
        inner.storage_failed(&e);
    }
    inner.publish_depth(&inner.lock());
    let weak = Arc::downgrade(&inner);
    if let Some((rx, log)) = writer_parts {
        writer::spawn(weak, log, rx, cfg.max_commit_batch).map_err(store_err)?;
    } else if inline {
        sync::spawn(weak, cfg.fsync_interval).map_err(store_err)?;
    }
    Ok(inner)
}

/// Opens the segment log in `dir` and loads what it holds into `state` (the pipeline reads
/// it again from the start). Also returns why no segment for appends could be started, if so
/// (a full disk: the buffer opens anyway and refuses appends until there is room).
fn replay(
    cfg: &BufferConfig,
    dir: &Path,
    state: &mut State,
    metrics: &BufferMetrics,
) -> std::io::Result<(SegmentLog, Option<std::io::Error>)> {
    let opened = SegmentLog::open(dir, segment_bytes(cfg.max_bytes), cfg.fsync == Fsync::Always)?;
    for d in opened.deliveries {
        state.bytes += d.stored_len;
        let meta = Meta { size: d.stored_len, received_at_ns: d.received_at_ns, loc: d.loc };
        state.index.push(d.seq, meta);
    }
    state.next_seq = opened.next_seq;
    state.files = opened.log.files().collect();
    if opened.corrupt > 0 {
        metrics.drop_count(DropReason::Corrupt, opened.corrupt);
    }
    if !state.index.is_empty() {
        tracing::info!(deliveries = state.index.len(), bytes = state.bytes, "replaying buffered deliveries");
    }
    Ok((opened.log, opened.start_error))
}

/// Who writes: with `fsync: always` the writer thread (returned with its queue's receiving
/// end and the log it owns), with `fsync: interval` the requests themselves, in memory nobody.
fn store(cfg: &BufferConfig, log: Option<SegmentLog>) -> (Store, Option<(mpsc::Receiver<Cmd>, SegmentLog)>) {
    match log {
        Some(log) if cfg.fsync == Fsync::Always => {
            let (tx, rx) = mpsc::channel(cfg.max_commit_batch.max(16) * 4);
            (Store::Writer(tx), Some((rx, log)))
        }
        Some(log) => (
            Store::Inline { log: Mutex::new(Log { log, buf: Vec::new() }), queue: Mutex::new(Vec::new()) },
            None,
        ),
        None => (Store::Memory, None),
    }
}

/// Segment size: small enough that acknowledged space is freed soon, large enough that
/// segments are rarely started (each start costs two syncs).
fn segment_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 8).clamp(64 * 1024, 8 * 1024 * 1024)
}
