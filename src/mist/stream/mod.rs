//! Mist WebSocket stream client (`wss://api-ws.<cloud>/api-ws/v1/stream`).
//!
//! Many channels share one connection (up to `channels_per_connection`, Mist allows 2,000);
//! more channels open more connections. Each connection:
//! - subscribes every channel it owns, and watches for `channel_subscribed` (re-sending a
//!   subscription that is not confirmed in time, reconnecting after repeated silence);
//! - treats `subscribe_failed` as a refusal: reports it and retries that channel later;
//! - pings on an interval and enforces a read deadline, so a half-open socket (TCP alive,
//!   peer silent) is noticed within `read_timeout`, not never;
//! - reconnects with capped exponential backoff plus jitter, and resubscribes everything.
//!
//! Frames go to an [`EventSink`]; `data` is decoded whether Mist sends it as a JSON string
//! (what the stats channels do) or as an object.
//!
//! Files, one concept each: `options` (settings), `event` (what the owner hears),
//! `pool` ([`Stream`]: channels placed over connections), `conn` (one connection's reconnect loop),
//! `session` (one connected session), `subs` (its subscription bookkeeping) and `frame`
//! (decoding Mist's frames).

mod conn;
mod event;
mod frame;
mod options;
mod pool;
mod session;
mod subs;

pub use event::{EventSink, StreamEvent};
pub use options::StreamOptions;
pub use pool::Stream;
