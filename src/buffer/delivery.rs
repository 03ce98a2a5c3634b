//! What the buffer keeps: one accepted webhook delivery.

use bytes::Bytes;

/// One accepted webhook delivery, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Position in the buffer; increases with every append.
    pub seq: u64,
    /// Name of the endpoint that received it.
    pub endpoint: String,
    /// Receipt time, nanoseconds since the Unix epoch.
    pub received_at_ns: u64,
    /// The raw, verified body.
    pub body: Bytes,
}
