//! Inline writes (`fsync: interval`): a request appends its delivery itself, one `write` into
//! the page cache under the log's lock, with no thread hop; the sync thread makes it durable.

use super::command::Cmd;
use super::commit::commit;
use super::inner::{Inner, Log, Store};
use super::segment_log::SegmentLog;

impl Inner {
    /// Commits a command on the caller's thread (a short `write` into the page cache), or hands
    /// it to the thread writing now; its reply is sent either way.
    ///
    /// Never waits for the log: a tokio worker blocked on the mutex while the other core writes
    /// sleeps through a context switch each time (1–2 % of the server's CPU under load). The
    /// holder writes what was queued meanwhile, in one `write`.
    pub(super) fn commit_inline(&self, cmd: Cmd) {
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
            Log::shrink(buf);
            drop(g);
            self.committed();
        }
    }

    /// Runs `f` on the inline log (waiting for it: for the sync thread, never a request), then
    /// writes whatever requests queued meanwhile.
    pub(super) fn with_inline_log<R>(&self, f: impl FnOnce(&mut SegmentLog) -> R) -> Option<R> {
        let Store::Inline { log, .. } = &self.store else { return None };
        let r = f(&mut log.lock().unwrap_or_else(|p| p.into_inner()).log);
        self.write_queued();
        Some(r)
    }
}
