//! What a request asks of the log: the unit the writer thread and inline writers commit.

use super::errors::AppendError;
use bytes::Bytes;
use tokio::sync::oneshot;

/// One change to the log, answered once it is committed (or failed).
pub(super) enum Cmd {
    /// Store a delivery; the reply carries its sequence number.
    Append {
        endpoint: String,
        received_at_ns: u64,
        body: Bytes,
        reply: oneshot::Sender<Result<u64, AppendError>>,
    },
    /// Acknowledge every delivery with a sequence number ≤ `through`.
    Remove { through: u64, done: oneshot::Sender<()> },
}
