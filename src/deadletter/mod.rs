//! The dead-letter store: export requests a backend refused for good, kept on disk instead of
//! dropped, so that deliveries acknowledged to Mist are not lost to a backend's bad day.
//!
//! # What goes in
//! What stays refused after the pipeline's retries (`retry.rs`): HTTP 400 or gRPC
//! `INVALID_ARGUMENT`, a 413 for a single item, a 5xx past `export.retry.max_attempts_5xx`.
//! Each refused request is one file in `<data_dir>/deadletter/` holding the request's protobuf
//! encoding; its name carries when, the signal and the reason ([`letter`]), so listing needs no
//! reads. A file is written under a temporary name and renamed, so a crash leaves no half letter.
//!
//! # Bounded
//! The files total at most `export.dead_letter_max_bytes` (64 MiB): past it the oldest are
//! deleted, counted in `mist_otel_deadletter_dropped_total`. The store's content is in the
//! gauges `mist_otel_deadletter_requests` / `_bytes` and on the status page.
//!
//! # Replay
//! `mist-otel deadletter replay` sends each kept request once to the configured exporters and
//! deletes what is accepted; what is refused again stays. The directory is the truth (two
//! processes may use it: the server writing, the CLI replaying), so the store keeps no index: it
//! lists the directory when it needs to, and the server refreshes its gauges now and then.
//!
//! Data flow: the pipeline puts letters; this room imports only the exporter's `Payload` and
//! the vocabulary modules.

pub mod letter;
mod store;

pub use letter::Letter;
pub use store::DeadLetters;
