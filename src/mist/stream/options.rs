//! The stream's settings.

use crate::secret::Secret;
use std::time::Duration;

/// Stream settings.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// `wss://api-ws.…/api-ws/v1/stream` (see [`crate::mist::cloud::stream_url`]).
    pub url: String,
    /// API token, sent as `Authorization: Token …`.
    pub token: Secret,
    /// How often to ping.
    pub ping_interval: Duration,
    /// Longest silence (no frame, no pong) before the socket is declared dead.
    pub read_timeout: Duration,
    /// How long to wait for `channel_subscribed` before re-sending the subscription.
    pub subscribe_timeout: Duration,
    /// How long a refused channel waits before it is asked for again.
    pub refused_retry: Duration,
    /// TCP + TLS + upgrade timeout.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Channels per connection (Mist's limit is 2,000).
    pub channels_per_connection: usize,
}
