//! The sync thread (`fsync: interval`): every `buffer.fsync_interval` it runs `fdatasync` on
//! what inline writers wrote (and syncs new segments and the directory), and deletes
//! acknowledged segment files; while writes fail it retries the storage
//! ([`retry_storage`]). A power loss or kernel crash can lose the last interval.

use super::commit::retry_storage;
use super::inner::Inner;
use std::sync::Weak;
use std::time::Duration;

/// Starts the sync thread; it stops when every `Buffer` is dropped.
pub(super) fn spawn(inner: Weak<Inner>, every: Duration) -> std::io::Result<()> {
    std::thread::Builder::new().name("buffer-sync".into()).spawn(move || syncer(inner, every)).map(drop)
}

/// Syncs what was written every `every`, until every `Buffer` is dropped (the log syncs a last
/// time when it is dropped).
fn syncer(inner: Weak<Inner>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(inner) = inner.upgrade() else { return };
        inner.unlink_pending();
        let Some(unsynced) = inner.with_inline_log(|log| {
            retry_storage(&inner, log);
            log.take_unsynced()
        }) else {
            return;
        };
        if let Err(e) = unsynced.sync() {
            tracing::error!(error = %e, path = %inner.path, "buffer sync failed");
            inner.with_inline_log(|log| log.sync_failed(unsynced));
        }
    }
}
