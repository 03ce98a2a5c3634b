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

use crate::secret::Secret;
use crate::telemetry::poller::{FrameKind, StreamMetrics};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

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

enum End {
    /// Cancelled or the owner went away: stop for good.
    Stop,
    /// Every channel was taken away: close, and wait for new ones without counting a reconnect.
    Idle,
    /// Lost: reconnect. `healthy` when the session had confirmed subscriptions (resets backoff).
    Lost { reason: String, healthy: bool },
}

async fn run_conn(
    idx: usize,
    mut rx: watch::Receiver<BTreeSet<String>>,
    opts: Arc<StreamOptions>,
    sink: EventSink,
    metrics: StreamMetrics,
    cancel: CancellationToken,
) {
    let mut backoff = opts.backoff_min;
    let mut attempt = 0u64;
    loop {
        // An idle connection (all its channels removed) stays closed until it gets channels.
        while rx.borrow().is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.changed() => if r.is_err() { return },
            }
        }
        if attempt > 0 {
            metrics.reconnects.inc();
        }
        attempt += 1;
        match session(idx, &mut rx, &opts, &sink, &metrics, &cancel).await {
            End::Stop => return,
            End::Idle => {
                attempt = 0;
                backoff = opts.backoff_min;
                continue;
            }
            End::Lost { reason, healthy } => {
                tracing::warn!(conn = idx, reason = %reason, "Mist WebSocket connection lost; reconnecting");
                if healthy {
                    backoff = opts.backoff_min;
                }
            }
        }
        // Full jitter on the upper half: many exporters restarting together do not stampede.
        let jitter = 0.5 + rand::random::<f64>() * 0.5;
        let delay = backoff.mul_f64(jitter);
        backoff = (backoff * 2).min(opts.backoff_max);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn subscribe_msg(verb: &str, channel: &str) -> Message {
    Message::text(serde_json::json!({ verb: channel }).to_string())
}

struct Pending {
    deadline: Instant,
    attempts: u32,
}

async fn session(
    idx: usize,
    rx: &mut watch::Receiver<BTreeSet<String>>,
    opts: &StreamOptions,
    sink: &EventSink,
    metrics: &StreamMetrics,
    cancel: &CancellationToken,
) -> End {
    let mut req = match opts.url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return End::Lost { reason: format!("bad stream URL: {e}"), healthy: false },
    };
    if let Ok(mut v) = http::HeaderValue::from_str(&format!("Token {}", opts.token.expose())) {
        v.set_sensitive(true);
        req.headers_mut().insert(http::header::AUTHORIZATION, v);
    }
    let connect = tokio::time::timeout(opts.connect_timeout, tokio_tungstenite::connect_async(req));
    let ws = tokio::select! {
        _ = cancel.cancelled() => return End::Stop,
        r = connect => match r {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return End::Lost { reason: format!("connect: {e}"), healthy: false },
            Err(_) => return End::Lost { reason: "connect timed out".into(), healthy: false },
        },
    };
    metrics.connections_up.inc();
    sink(StreamEvent::Connected(idx));
    let (mut write, mut read) = ws.split();
    let mut confirmed: HashSet<String> = HashSet::new();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut refused: HashMap<String, Instant> = HashMap::new();
    let mut healthy = false;

    let mut wanted = rx.borrow_and_update().clone();
    let mut end: Option<End> = None;
    for ch in &wanted {
        if write.send(subscribe_msg("subscribe", ch)).await.is_err() {
            end = Some(End::Lost { reason: "send failed while subscribing".into(), healthy: false });
            break;
        }
        pending
            .insert(ch.clone(), Pending { deadline: Instant::now() + opts.subscribe_timeout, attempts: 1 });
    }
    let mut last_rx = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + opts.ping_interval, opts.ping_interval);
    let tick = (opts.subscribe_timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut watchdog = tokio::time::interval(tick);

    while end.is_none() {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = write.send(Message::Close(None)).await;
                end = Some(End::Stop);
            }
            r = rx.changed() => {
                if r.is_err() {
                    end = Some(End::Stop);
                    continue;
                }
                let now_wanted = rx.borrow_and_update().clone();
                for ch in wanted.difference(&now_wanted) {
                    pending.remove(ch);
                    refused.remove(ch);
                    if confirmed.remove(ch) {
                        metrics.subscriptions.dec();
                    }
                    let _ = write.send(subscribe_msg("unsubscribe", ch)).await;
                }
                for ch in now_wanted.difference(&wanted) {
                    if write.send(subscribe_msg("subscribe", ch)).await.is_err() {
                        end = Some(End::Lost { reason: "send failed while subscribing".into(), healthy });
                        break;
                    }
                    pending.insert(ch.clone(), Pending { deadline: Instant::now() + opts.subscribe_timeout, attempts: 1 });
                }
                wanted = now_wanted;
                if wanted.is_empty() && end.is_none() {
                    let _ = write.send(Message::Close(None)).await;
                    end = Some(End::Idle);
                }
            }
            _ = ping.tick() => {
                if write.send(Message::Ping(Default::default())).await.is_err() {
                    end = Some(End::Lost { reason: "ping send failed".into(), healthy });
                }
            }
            _ = tokio::time::sleep_until(last_rx + opts.read_timeout) => {
                end = Some(End::Lost {
                    reason: format!("nothing received for {:?} (read deadline; half-open socket?)", opts.read_timeout),
                    healthy,
                });
            }
            _ = watchdog.tick() => {
                let now = Instant::now();
                let mut resend = Vec::new();
                for (ch, p) in pending.iter_mut() {
                    if p.deadline <= now {
                        metrics.subscribe_timeouts.inc();
                        p.attempts += 1;
                        p.deadline = now + opts.subscribe_timeout * p.attempts;
                        resend.push(ch.clone());
                    }
                }
                if pending.values().any(|p| p.attempts > 3) {
                    end = Some(End::Lost { reason: "subscriptions not confirmed after 3 attempts".into(), healthy });
                    continue;
                }
                let due: Vec<String> = refused.iter().filter(|(_, t)| **t <= now).map(|(c, _)| c.clone()).collect();
                for ch in due {
                    refused.remove(&ch);
                    pending.insert(ch.clone(), Pending { deadline: now + opts.subscribe_timeout, attempts: 1 });
                    resend.push(ch);
                }
                for ch in resend {
                    if write.send(subscribe_msg("subscribe", &ch)).await.is_err() {
                        end = Some(End::Lost { reason: "send failed while subscribing".into(), healthy });
                        break;
                    }
                }
            }
            msg = read.next() => {
                last_rx = Instant::now();
                match msg {
                    None => end = Some(End::Lost { reason: "closed".into(), healthy }),
                    Some(Err(e)) => end = Some(End::Lost { reason: e.to_string(), healthy }),
                    Some(Ok(Message::Close(f))) => {
                        let why = f.map(|f| format!("closed by Mist: {} {}", f.code, f.reason)).unwrap_or_else(|| "closed by Mist".into());
                        end = Some(End::Lost { reason: why, healthy });
                    }
                    Some(Ok(Message::Text(t))) => {
                        handle_text(t.as_str(), &wanted, &mut confirmed, &mut pending, &mut refused, opts, sink, metrics);
                        healthy |= !confirmed.is_empty();
                    }
                    Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                        Ok(t) => {
                            handle_text(t, &wanted, &mut confirmed, &mut pending, &mut refused, opts, sink, metrics);
                            healthy |= !confirmed.is_empty();
                        }
                        Err(_) => metrics.frame(FrameKind::Invalid),
                    },
                    Some(Ok(_)) => {} // ping/pong: proof of life, already noted in last_rx
                }
            }
        }
    }
    metrics.connections_up.dec();
    metrics.subscriptions.dec_by(confirmed.len() as i64);
    let end = end.unwrap_or(End::Stop);
    let reason = match &end {
        End::Stop => "stopped".to_owned(),
        End::Idle => "no channels left".to_owned(),
        End::Lost { reason, .. } => reason.clone(),
    };
    sink(StreamEvent::Disconnected { conn: idx, channels: wanted.into_iter().collect(), reason });
    end
}

#[allow(clippy::too_many_arguments)]
fn handle_text(
    text: &str,
    wanted: &BTreeSet<String>,
    confirmed: &mut HashSet<String>,
    pending: &mut HashMap<String, Pending>,
    refused: &mut HashMap<String, Instant>,
    opts: &StreamOptions,
    sink: &EventSink,
    metrics: &StreamMetrics,
) {
    let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(text) else {
        metrics.frame(FrameKind::Invalid);
        return;
    };
    let event = frame.get("event").and_then(Value::as_str).unwrap_or_default().to_owned();
    let channel = frame.get("channel").and_then(Value::as_str).unwrap_or_default().to_owned();
    match event.as_str() {
        "channel_subscribed" => {
            metrics.frame(FrameKind::Subscribed);
            if wanted.contains(&channel) {
                pending.remove(&channel);
                refused.remove(&channel);
                if confirmed.insert(channel.clone()) {
                    metrics.subscriptions.inc();
                }
                sink(StreamEvent::Subscribed { channel });
            }
        }
        "subscribe_failed" | "channel_subscribe_failed" | "error" if !channel.is_empty() => {
            metrics.frame(FrameKind::Refused);
            metrics.refused.inc();
            let reason = ["reason", "message", "detail", "error"]
                .iter()
                .find_map(|k| {
                    frame.get(*k).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))
                })
                .unwrap_or_default();
            tracing::warn!(channel = %channel, reason = %reason, "Mist refused a WebSocket subscription; will retry later");
            if wanted.contains(&channel) {
                pending.remove(&channel);
                if confirmed.remove(&channel) {
                    metrics.subscriptions.dec();
                }
                refused.insert(channel.clone(), Instant::now() + opts.refused_retry);
                sink(StreamEvent::Refused { channel, reason });
            }
        }
        "data" => {
            let data = match frame.remove("data") {
                Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
                    Ok(v) => v,
                    Err(_) => {
                        metrics.frame(FrameKind::Invalid);
                        return;
                    }
                },
                Some(v @ (Value::Object(_) | Value::Array(_))) => v,
                _ => {
                    metrics.frame(FrameKind::Invalid);
                    return;
                }
            };
            metrics.frame(FrameKind::Data);
            // Frames for a channel we just left may still be in flight: drop them.
            if wanted.contains(&channel) {
                sink(StreamEvent::Data { channel, data });
            }
        }
        _ => metrics.frame(FrameKind::Other),
    }
}
