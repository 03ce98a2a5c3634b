//! The writer thread (`fsync: always`): group commit. It takes everything queued (up to
//! `buffer.max_commit_batch`), writes it with one `write` and one `fdatasync`, then answers
//! every waiting append, so concurrent requests share one sync.

use super::command::Cmd;
use super::commit::{commit, retry_storage};
use super::inner::{Inner, Log};
use super::segment_log::SegmentLog;
use std::sync::Weak;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

/// How often the idle writer retries the storage while writes fail.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// Starts the writer thread; it stops when every `Buffer` is dropped.
pub(super) fn spawn(
    inner: Weak<Inner>,
    log: SegmentLog,
    rx: mpsc::Receiver<Cmd>,
    max_batch: usize,
) -> std::io::Result<()> {
    // A timer for the waits while writes fail (a plain sleep would not notice the last
    // `Buffer` going, and would hold the log's directory lock past a shutdown).
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    std::thread::Builder::new()
        .name("buffer-writer".into())
        .spawn(move || writer(inner, log, rx, max_batch, rt))
        .map(drop)
}

/// The writer thread: group commits until every `Buffer` is dropped.
fn writer(
    inner: Weak<Inner>,
    mut log: SegmentLog,
    mut rx: mpsc::Receiver<Cmd>,
    max_batch: usize,
    rt: Runtime,
) {
    let mut buf = Vec::new();
    while let Some(first) = next_cmd(&rt, &inner, &mut log, &mut rx) {
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
        inner.committed();
        inner.unlink_pending();
        Log::shrink(&mut buf);
    }
}

/// Waits for the next command. While writes fail it wakes every [`RETRY_EVERY`] instead, to
/// delete acknowledged segments and try the storage again, so the buffer recovers (and
/// readiness with it) even when no request comes.
fn next_cmd(
    rt: &Runtime,
    inner: &Weak<Inner>,
    log: &mut SegmentLog,
    rx: &mut mpsc::Receiver<Cmd>,
) -> Option<Cmd> {
    loop {
        if inner.upgrade()?.storage_error().is_none() {
            return rx.blocking_recv();
        }
        if let Ok(cmd) = rt.block_on(async { tokio::time::timeout(RETRY_EVERY, rx.recv()).await }) {
            return cmd;
        }
        let inner = inner.upgrade()?;
        inner.unlink_pending();
        retry_storage(&inner, log);
    }
}
