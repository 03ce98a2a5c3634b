//! The stream's sink: data frames merge into the state, subscription changes go to the
//! per-site telemetry. Called on the connection tasks, so it only takes the state lock briefly.

use super::state::{SharedState, lock, parse_channel};
use crate::clock::now_ns;
use crate::mist::stream::{EventSink, StreamEvent};
use crate::telemetry::poller::{DropKind, PollerTelemetry};
use std::sync::Arc;
use std::time::Instant;

/// A sink applying stream events to `shared` and `tele`.
pub fn sink(shared: SharedState, tele: PollerTelemetry) -> EventSink {
    Arc::new(move |ev: StreamEvent| on_event(&shared, &tele, ev))
}

fn on_event(shared: &SharedState, tele: &PollerTelemetry, ev: StreamEvent) {
    match ev {
        StreamEvent::Data { channel, data } => {
            let applied = lock(shared).apply(&channel, data, Instant::now(), now_ns());
            tele.dropped(DropKind::Client, applied.dropped);
            tele.dropped(DropKind::Invalid, applied.invalid);
        }
        StreamEvent::Subscribed { channel } => subscription(tele, &channel, true),
        StreamEvent::Refused { channel, .. } => subscription(tele, &channel, false),
        StreamEvent::Disconnected { channels, .. } => {
            for ch in &channels {
                subscription(tele, ch, false);
            }
        }
        StreamEvent::Connected(_) => {}
    }
}

fn subscription(tele: &PollerTelemetry, channel: &str, subscribed: bool) {
    if let Some((site, kind)) = parse_channel(channel) {
        tele.subscription(site, kind, subscribed);
    }
}
