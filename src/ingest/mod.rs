//! The webhook listener: HTTP(S) accept loop with limits ([`server`], connections per source
//! capped by [`sources`]), signature checks ([`signature`]), bodies read within size, time, pace
//! and a shared memory budget before they are authenticated ([`body`]), and the handler that
//! answers Mist ([`handler`]), whose rejection lines are capped by [`log_limit`].

pub mod body;
pub mod config;
pub mod handler;
pub mod log_limit;
pub mod outcome;
pub mod ratelimit;
pub mod request_id;
pub mod server;
pub mod signature;
pub mod sources;

pub use crate::telemetry::ingest::IngestMetrics;
pub use handler::{IngestState, Observer, router};
