//! One WebSocket session: connect, subscribe every channel, then react to channel changes,
//! pings, the read deadline, the confirmation watchdog and incoming frames until the session
//! ends; the reconnect loop decides what comes next from its [`End`].

use super::event::{EventSink, StreamEvent};
use super::frame::{self, Frame};
use super::options::StreamOptions;
use super::subs::Subscriptions;
use crate::telemetry::poller::{FrameKind, StreamMetrics};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a session ended.
pub(super) enum End {
    /// Cancelled or the owner went away: stop for good.
    Stop,
    /// Every channel was taken away: close, and wait for new ones without counting a reconnect.
    Idle,
    /// Lost: reconnect. `healthy` when the session had confirmed subscriptions (resets backoff).
    Lost { reason: String, healthy: bool },
}

impl End {
    /// The reason reported with [`StreamEvent::Disconnected`].
    fn reason(&self) -> String {
        match self {
            End::Stop => "stopped".to_owned(),
            End::Idle => "no channels left".to_owned(),
            End::Lost { reason, .. } => reason.clone(),
        }
    }
}

/// Runs one session of connection `idx` carrying the channels in `rx`.
pub(super) async fn session(
    idx: usize,
    rx: &mut watch::Receiver<BTreeSet<String>>,
    opts: &StreamOptions,
    sink: &EventSink,
    metrics: &StreamMetrics,
    cancel: &CancellationToken,
) -> End {
    let ws = match connect(opts, cancel).await {
        Ok(ws) => ws,
        Err(end) => return end,
    };
    metrics.connections_up.inc();
    sink(StreamEvent::Connected(idx));
    let (write, mut read) = ws.split();
    let wanted = rx.borrow_and_update().clone();
    let mut s =
        Session { opts, sink, metrics, write, subs: Subscriptions::new(wanted, metrics), healthy: false };
    let end = match s.subscribe_all().await {
        Some(end) => end,
        None => s.run(rx, &mut read, cancel).await,
    };
    s.close(idx, end)
}

/// Opens the socket (TCP + TLS + upgrade within `connect_timeout`), authenticated by token.
async fn connect(opts: &StreamOptions, cancel: &CancellationToken) -> Result<Ws, End> {
    let mut req = match opts.url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return Err(End::Lost { reason: format!("bad stream URL: {e}"), healthy: false }),
    };
    if let Ok(mut v) = http::HeaderValue::from_str(&format!("Token {}", opts.token.expose())) {
        v.set_sensitive(true);
        req.headers_mut().insert(http::header::AUTHORIZATION, v);
    }
    let connect = tokio::time::timeout(opts.connect_timeout, tokio_tungstenite::connect_async(req));
    tokio::select! {
        _ = cancel.cancelled() => Err(End::Stop),
        r = connect => match r {
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(e)) => Err(End::Lost { reason: format!("connect: {e}"), healthy: false }),
            Err(_) => Err(End::Lost { reason: "connect timed out".into(), healthy: false }),
        },
    }
}

/// `{"subscribe": channel}` or `{"unsubscribe": channel}`.
fn subscribe_msg(verb: &str, channel: &str) -> Message {
    Message::text(serde_json::json!({ verb: channel }).to_string())
}

/// A connected session's state.
struct Session<'a> {
    opts: &'a StreamOptions,
    sink: &'a EventSink,
    metrics: &'a StreamMetrics,
    write: SplitSink<Ws, Message>,
    subs: Subscriptions<'a>,
    /// Mist confirmed a subscription during this session (the reconnect backoff resets).
    healthy: bool,
}

impl Session<'_> {
    /// The session is lost for `reason`.
    fn lost(&self, reason: String) -> End {
        End::Lost { reason, healthy: self.healthy }
    }

    /// Subscribes every wanted channel; `Some` when a send failed.
    async fn subscribe_all(&mut self) -> Option<End> {
        let channels: Vec<String> = self.subs.wanted().iter().cloned().collect();
        for ch in &channels {
            if let Some(end) = self.subscribe(ch).await {
                return Some(end);
            }
        }
        None
    }

    /// Sends a first subscription for `ch` and starts waiting for its confirmation.
    async fn subscribe(&mut self, ch: &str) -> Option<End> {
        if let Some(end) = self.send_subscribe(ch).await {
            return Some(end);
        }
        self.subs.sent(ch, Instant::now() + self.opts.subscribe_timeout);
        None
    }

    /// Sends a subscription for `ch`; `Some` when the send failed.
    async fn send_subscribe(&mut self, ch: &str) -> Option<End> {
        if self.write.send(subscribe_msg("subscribe", ch)).await.is_err() {
            return Some(self.lost("send failed while subscribing".into()));
        }
        None
    }

    /// Reacts to whatever happens first until the session ends.
    async fn run(
        &mut self,
        rx: &mut watch::Receiver<BTreeSet<String>>,
        read: &mut SplitStream<Ws>,
        cancel: &CancellationToken,
    ) -> End {
        let opts = self.opts;
        let mut last_rx = Instant::now();
        let mut ping = tokio::time::interval_at(Instant::now() + opts.ping_interval, opts.ping_interval);
        let tick = (opts.subscribe_timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let mut watchdog = tokio::time::interval(tick);
        loop {
            let end = tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = self.write.send(Message::Close(None)).await;
                    Some(End::Stop)
                }
                r = rx.changed() => match r {
                    Err(_) => Some(End::Stop),
                    Ok(()) => {
                        let now_wanted = rx.borrow_and_update().clone();
                        self.on_wanted(now_wanted).await
                    }
                },
                _ = ping.tick() => self.ping().await,
                _ = tokio::time::sleep_until(last_rx + opts.read_timeout) => Some(self.lost(format!(
                    "nothing received for {:?} (read deadline; half-open socket?)",
                    opts.read_timeout
                ))),
                _ = watchdog.tick() => self.on_watchdog().await,
                msg = read.next() => {
                    last_rx = Instant::now();
                    self.on_message(msg)
                }
            };
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// The owner changed this connection's channels: unsubscribe those removed, subscribe
    /// those added; with none left, close and go idle.
    async fn on_wanted(&mut self, now_wanted: BTreeSet<String>) -> Option<End> {
        let removed: Vec<String> = self.subs.wanted().difference(&now_wanted).cloned().collect();
        let added: Vec<String> = now_wanted.difference(self.subs.wanted()).cloned().collect();
        for ch in &removed {
            self.subs.leave(ch);
            let _ = self.write.send(subscribe_msg("unsubscribe", ch)).await;
        }
        let mut end = None;
        for ch in &added {
            end = self.subscribe(ch).await;
            if end.is_some() {
                break;
            }
        }
        self.subs.set_wanted(now_wanted);
        if self.subs.wanted().is_empty() && end.is_none() {
            let _ = self.write.send(Message::Close(None)).await;
            end = Some(End::Idle);
        }
        end
    }

    /// Pings, so a silent peer is noticed by the read deadline.
    async fn ping(&mut self) -> Option<End> {
        if self.write.send(Message::Ping(Default::default())).await.is_err() {
            return Some(self.lost("ping send failed".into()));
        }
        None
    }

    /// Re-sends overdue subscriptions (giving up after too many attempts) and asks again for
    /// refused channels whose wait is over.
    async fn on_watchdog(&mut self) -> Option<End> {
        let now = Instant::now();
        let timeout = self.opts.subscribe_timeout;
        let mut resend = self.subs.overdue(now, timeout);
        if self.subs.gave_up() {
            return Some(self.lost("subscriptions not confirmed after 3 attempts".into()));
        }
        resend.extend(self.subs.retry_refused(now, timeout));
        for ch in &resend {
            if let Some(end) = self.send_subscribe(ch).await {
                return Some(end);
            }
        }
        None
    }

    /// One read from the socket: a frame to handle, or the end of the session.
    fn on_message(&mut self, msg: Option<Result<Message, tungstenite::Error>>) -> Option<End> {
        match msg {
            None => Some(self.lost("closed".into())),
            Some(Err(e)) => Some(self.lost(e.to_string())),
            Some(Ok(Message::Close(f))) => {
                let why = f
                    .map(|f| format!("closed by Mist: {} {}", f.code, f.reason))
                    .unwrap_or_else(|| "closed by Mist".into());
                Some(self.lost(why))
            }
            Some(Ok(Message::Text(t))) => {
                self.on_frame(frame::parse(t.as_str()));
                None
            }
            Some(Ok(Message::Binary(b))) => {
                self.on_frame(frame::parse_bytes(&b));
                None
            }
            Some(Ok(_)) => None, // ping/pong: proof of life, already noted in last_rx
        }
    }

    /// Counts a frame by kind, updates the subscriptions and reports what the owner needs.
    fn on_frame(&mut self, frame: Frame) {
        let metrics = self.metrics;
        match frame {
            Frame::Invalid => metrics.frame(FrameKind::Invalid),
            Frame::Subscribed { channel } => {
                metrics.frame(FrameKind::Subscribed);
                if self.subs.confirm(&channel) {
                    (self.sink)(StreamEvent::Subscribed { channel });
                }
            }
            Frame::Refused { channel, reason } => {
                metrics.frame(FrameKind::Refused);
                metrics.refused.inc();
                tracing::warn!(channel = %channel, reason = %reason, "Mist refused a WebSocket subscription; will retry later");
                if self.subs.refuse(&channel, self.opts.refused_retry) {
                    (self.sink)(StreamEvent::Refused { channel, reason });
                }
            }
            Frame::Data { channel, data } => {
                metrics.frame(FrameKind::Data);
                // Frames for a channel we just left may still be in flight: drop them.
                if self.subs.wanted().contains(&channel) {
                    (self.sink)(StreamEvent::Data { channel, data });
                }
            }
            Frame::Other => metrics.frame(FrameKind::Other),
        }
        self.healthy |= self.subs.any_confirmed();
    }

    /// Ends the session: the connection and its confirmations no longer count; the owner
    /// learns which channels went down and why.
    fn close(self, idx: usize, end: End) -> End {
        self.metrics.connections_up.dec();
        let channels = self.subs.close();
        (self.sink)(StreamEvent::Disconnected { conn: idx, channels, reason: end.reason() });
        end
    }
}
