//! The webhook listener: HTTP(S) accept loop with limits ([`server`]), signature checks
//! ([`signature`]), and the handler that answers Mist ([`handler`]), whose rejection lines are
//! capped by [`log_limit`].

pub mod config;
pub mod handler;
pub mod log_limit;
pub mod outcome;
pub mod ratelimit;
pub mod request_id;
pub mod server;
pub mod signature;

pub use crate::telemetry::ingest::IngestMetrics;
pub use handler::{IngestState, Observer, router};
