//! Why a buffer operation failed.

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
