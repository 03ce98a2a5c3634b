//! What the stream reports to its owner, and the sink that receives it.

use serde_json::Value;
use std::sync::Arc;

/// What the stream reports.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A `data` frame; `data` decoded from a string when needed.
    Data {
        /// The channel, e.g. `/sites/{id}/stats/devices`.
        channel: String,
        /// The payload (usually one device or client object, a partial update).
        data: Value,
    },
    /// Mist confirmed a subscription.
    Subscribed {
        /// The channel.
        channel: String,
    },
    /// Mist refused a subscription.
    Refused {
        /// The channel.
        channel: String,
        /// Mist's reason, if any.
        reason: String,
    },
    /// A connection came up (index of the connection).
    Connected(usize),
    /// A connection went down, with the reason; its channels are no longer confirmed.
    Disconnected {
        /// Index of the connection.
        conn: usize,
        /// The channels it carried.
        channels: Vec<String>,
        /// Why.
        reason: String,
    },
}

/// Receives stream events; called on the connection's task, so it must be quick.
pub type EventSink = Arc<dyn Fn(StreamEvent) + Send + Sync>;
