//! The webhook listener: HTTP(S) accept loop with limits ([`server`]), signature checks
//! ([`signature`]), and the handler that answers Mist ([`handler`]).

pub mod config;
pub mod handler;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub mod signature;

pub use handler::{IngestState, Observer, router};
pub use metrics::IngestMetrics;
