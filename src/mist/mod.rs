//! Mist's data: the webhook envelope, typed per-topic events, and (for the poller) the REST
//! API and WebSocket stream clients.

pub mod cloud;
pub mod envelope;
pub mod events;

pub use envelope::{Envelope, EnvelopeError, normalize_topic};
