//! Mist's data: the webhook envelope, typed per-topic events, and (for the poller) the REST
//! API and WebSocket stream clients.

pub mod api;
pub mod cloud;
pub mod envelope;
pub mod events;
pub mod stream;

pub use envelope::{Envelope, EnvelopeError, normalize_topic};
