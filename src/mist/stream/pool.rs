//! The set of connections: channels placed over connections of at most
//! `channels_per_connection` each, kept where they are when the wanted set changes.

use super::conn::run_conn;
use super::event::EventSink;
use super::options::StreamOptions;
use crate::telemetry::poller::StreamMetrics;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One connection's task and the channels it should carry.
struct Conn {
    channels: watch::Sender<BTreeSet<String>>,
    task: JoinHandle<()>,
}

/// The set of WebSocket connections carrying the wanted channels.
pub struct Stream {
    opts: Arc<StreamOptions>,
    sink: EventSink,
    metrics: StreamMetrics,
    cancel: CancellationToken,
    conns: Vec<Conn>,
}

impl Stream {
    /// A stream with no channels yet (no connection is opened until channels are set).
    pub fn new(
        opts: StreamOptions,
        sink: EventSink,
        metrics: StreamMetrics,
        cancel: CancellationToken,
    ) -> Self {
        let mut opts = opts;
        opts.channels_per_connection = opts.channels_per_connection.clamp(1, 2_000);
        Self { opts: Arc::new(opts), sink, metrics, cancel, conns: Vec::new() }
    }

    /// Makes the subscribed channels exactly `wanted`: unsubscribes the rest, keeps each kept
    /// channel on its connection (no churn), and places new ones where there is room.
    pub fn set_channels(&mut self, wanted: &BTreeSet<String>) {
        let mut placed: HashSet<String> = HashSet::new();
        for c in &self.conns {
            c.channels.send_if_modified(|set| {
                let before = set.len();
                set.retain(|ch| wanted.contains(ch));
                placed.extend(set.iter().cloned());
                set.len() != before
            });
        }
        let cap = self.opts.channels_per_connection;
        let mut new: Vec<&String> = wanted.iter().filter(|ch| !placed.contains(*ch)).collect();
        for c in &self.conns {
            if new.is_empty() {
                break;
            }
            c.channels.send_if_modified(|set| {
                let room = cap.saturating_sub(set.len());
                let take = room.min(new.len());
                set.extend(new.drain(..take).cloned());
                take > 0
            });
        }
        while !new.is_empty() {
            let take = cap.min(new.len());
            let set: BTreeSet<String> = new.drain(..take).cloned().collect();
            let idx = self.conns.len();
            let (tx, rx) = watch::channel(set);
            let task = tokio::spawn(run_conn(
                idx,
                rx,
                self.opts.clone(),
                self.sink.clone(),
                self.metrics.clone(),
                self.cancel.child_token(),
            ));
            self.conns.push(Conn { channels: tx, task });
        }
    }

    /// Connections that currently carry at least one channel.
    pub fn active_connections(&self) -> usize {
        self.conns.iter().filter(|c| !c.channels.borrow().is_empty()).count()
    }

    /// Stops every connection and waits for them.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for c in self.conns {
            let _ = c.task.await;
        }
    }
}
