//! The writer thread (`fsync: always`): group commit. It takes everything queued (up to
//! `buffer.max_commit_batch`), writes it with one `write` and one `fdatasync`, then answers
//! every waiting append, so concurrent requests share one sync.

use super::command::Cmd;
use super::commit::commit;
use super::inner::{Inner, Log};
use super::segment_log::SegmentLog;
use std::sync::Weak;
use tokio::sync::mpsc;

/// Starts the writer thread; it stops when every `Buffer` is dropped.
pub(super) fn spawn(
    inner: Weak<Inner>,
    log: SegmentLog,
    rx: mpsc::Receiver<Cmd>,
    max_batch: usize,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("buffer-writer".into())
        .spawn(move || writer(inner, log, rx, max_batch))
        .map(drop)
}

/// The writer thread: group commits until every `Buffer` is dropped.
fn writer(inner: Weak<Inner>, mut log: SegmentLog, mut rx: mpsc::Receiver<Cmd>, max_batch: usize) {
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
        inner.committed();
        inner.unlink_pending();
        Log::shrink(&mut buf);
    }
}
