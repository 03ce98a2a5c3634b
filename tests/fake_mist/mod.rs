//! A local fake Mist: REST (`/api/v1/...`) and the WebSocket stream (`/api-ws/v1/stream`) on
//! one loopback port, serving the real sample payloads from `../shared/mist-samples`, and able
//! to misbehave on demand: drop sockets, go silent (half-open), refuse subscriptions, answer
//! 429 with `Retry-After` (once or on every call to some paths), stall `/self`, paginate,
//! remove sites.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The token the fake accepts.
pub const TOKEN: &str = "fake-token-9f3b2c71";

/// `../shared/mist-samples` (or `MIST_SAMPLES_DIR`).
pub fn samples_dir() -> PathBuf {
    std::env::var_os("MIST_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/mist-samples"))
}

/// A sample file as JSON.
pub fn sample(rel: &str) -> Value {
    let p = samples_dir().join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// A site built from the real `org_sites.json` entry with its id and name replaced.
pub fn site(id: &str, name: &str) -> Value {
    let mut s = sample("rest/org_sites.json")[0].clone();
    s["id"] = json!(id);
    s["name"] = json!(name);
    s
}

/// Site id number `i` (UUID-shaped).
pub fn site_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// What the fake does and saw.
#[derive(Default)]
pub struct Inner {
    /// Body of `/api/v1/self`.
    pub self_body: Value,
    /// Sites listed by `/orgs/{id}/sites`.
    pub sites: Vec<Value>,
    /// Most items per page, whatever `limit` asks.
    pub page_cap: usize,
    /// The next N REST requests get 429.
    pub rate_limit: u32,
    /// The next N REST requests get 503.
    pub fail_next: u32,
    /// `Retry-After` seconds for 429s.
    pub retry_after: u32,
    /// REST paths (prefixes) answered 429 every time, as when the token's budget is spent.
    pub throttled_paths: Vec<String>,
    /// 429 answers sent so far.
    pub rate_limited_answers: u32,
    /// How long `/api/v1/self` waits before answering (a Mist that accepts and stalls).
    pub self_delay: Duration,
    /// Channels to refuse.
    pub refuse: HashSet<String>,
    /// Every REST path+query requested, in order.
    pub calls: Vec<String>,
    /// Every subscribe request received.
    pub subscribes: Vec<String>,
    /// Every unsubscribe request received.
    pub unsubscribes: Vec<String>,
    /// WebSocket connections accepted.
    pub connections: u32,
    /// Authorization headers that were wrong.
    pub bad_auth: u32,
    /// Live sessions and their subscribed channels, by session number.
    pub live: HashMap<u32, HashSet<String>>,
}

/// Control handle.
pub struct Ctl {
    /// Shared state.
    pub inner: Mutex<Inner>,
    frames: broadcast::Sender<(String, String)>,
    kill: broadcast::Sender<()>,
    silence: broadcast::Sender<()>,
}

/// A running fake Mist.
pub struct FakeMist {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Control.
    pub ctl: Arc<Ctl>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMist {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeMist {
    /// Starts a fake with `sites` and the single-org `/self` sample.
    pub async fn start(sites: Vec<Value>) -> FakeMist {
        let (frames, _) = broadcast::channel(1024);
        let (kill, _) = broadcast::channel(4);
        let (silence, _) = broadcast::channel(4);
        let inner = Inner {
            self_body: sample("rest/self.mistclient-testdata.json"),
            sites,
            page_cap: 1000,
            retry_after: 1,
            ..Default::default()
        };
        let ctl = Arc::new(Ctl { inner: Mutex::new(inner), frames, kill, silence });
        let app = Router::new()
            .route("/api/v1/self", get(self_handler))
            .route("/api/v1/orgs/{org}/sites", get(sites_handler))
            .route(
                "/api/v1/orgs/{org}/alarms/count",
                gated_json(|_| sample("rest/org_alarms_count.mistclient-testdata.json")),
            )
            .route(
                "/api/v1/orgs/{org}/tickets/count",
                gated_json(|_| sample("rest/org_tickets_count.mistclient-testdata.json")),
            )
            .route("/api/v1/orgs/{org}/devices/count", gated_json(|c| per_site_counts(c, 3)))
            .route("/api/v1/orgs/{org}/clients/count", gated_json(|c| per_site_counts(c, 7)))
            .route("/api/v1/orgs/{org}/alarms/search", get(alarms_search))
            .route("/api-ws/v1/stream", get(ws_handler))
            .with_state(ctl.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeMist { addr, ctl, task }
    }

    /// `http://127.0.0.1:port` — the poller's `cloud`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `f` on the state.
    pub fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.ctl.inner.lock().unwrap())
    }

    /// Sends a `data` frame on `channel` to every session subscribed to it; `data` goes as a
    /// JSON string (as Mist's stats channels do) or as an object.
    pub fn push(&self, channel: &str, data: &Value, as_string: bool) {
        let d = if as_string { Value::String(data.to_string()) } else { data.clone() };
        let frame = json!({"event": "data", "channel": channel, "data": d}).to_string();
        let _ = self.ctl.frames.send((channel.to_owned(), frame));
    }

    /// Drops every open socket without a close frame.
    pub fn drop_sockets(&self) {
        let _ = self.ctl.kill.send(());
    }

    /// Every open socket goes half-open: TCP stays up, nothing is sent, pings are ignored.
    /// Sockets opened afterwards behave normally.
    pub fn go_silent(&self) {
        let _ = self.ctl.silence.send(());
    }

    /// Whether some live session has `channel` subscribed.
    pub fn subscribed(&self, channel: &str) -> bool {
        self.with(|i| i.live.values().any(|s| s.contains(channel)))
    }

    /// Number of REST calls whose path starts with `prefix`.
    pub fn calls_to(&self, prefix: &str) -> usize {
        self.with(|i| i.calls.iter().filter(|c| c.starts_with(prefix)).count())
    }
}

/// Auth, call log and 429s, common to every REST route.
fn gate(ctl: &Ctl, headers: &HeaderMap, uri: &axum::http::Uri) -> Option<Response> {
    let mut i = ctl.inner.lock().unwrap();
    i.calls.push(uri.path_and_query().map(|p| p.to_string()).unwrap_or_default());
    let ok =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(&format!("Token {TOKEN}"));
    if !ok {
        i.bad_auth += 1;
        return Some(
            (StatusCode::UNAUTHORIZED, "{\"detail\":\"Authentication credentials were not provided.\"}")
                .into_response(),
        );
    }
    if i.fail_next > 0 {
        i.fail_next -= 1;
        return Some((StatusCode::SERVICE_UNAVAILABLE, "{\"detail\":\"maintenance\"}").into_response());
    }
    let path = uri.path();
    let throttled = i.throttled_paths.iter().any(|p| path.starts_with(p.as_str()));
    if throttled || i.rate_limit > 0 {
        if !throttled {
            i.rate_limit -= 1;
        }
        i.rate_limited_answers += 1;
        let ra = i.retry_after.to_string();
        return Some(
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, ra)], "{\"detail\":\"throttled\"}")
                .into_response(),
        );
    }
    None
}

/// A GET route behind [`gate`] that answers with the JSON `body` makes of the fake's state.
fn gated_json(body: fn(&Ctl) -> Value) -> MethodRouter<Arc<Ctl>> {
    get(move |State(ctl): State<Arc<Ctl>>, req: Request| async move {
        if let Some(r) = gate(&ctl, req.headers(), req.uri()) {
            return r;
        }
        axum::Json(body(&ctl)).into_response()
    })
}

/// `/api/v1/self`, after `self_delay`.
async fn self_handler(State(ctl): State<Arc<Ctl>>, req: Request) -> Response {
    let delay = ctl.inner.lock().unwrap().self_delay;
    tokio::time::sleep(delay).await;
    if let Some(r) = gate(&ctl, req.headers(), req.uri()) {
        return r;
    }
    axum::Json(ctl.inner.lock().unwrap().self_body.clone()).into_response()
}

async fn sites_handler(
    State(ctl): State<Arc<Ctl>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    if let Some(r) = gate(&ctl, req.headers(), req.uri()) {
        return r;
    }
    let i = ctl.inner.lock().unwrap();
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100).min(i.page_cap).max(1);
    let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let items: Vec<Value> = i.sites.iter().skip((page - 1) * limit).take(limit).cloned().collect();
    (
        [
            ("X-Page-Total", i.sites.len().to_string()),
            ("X-Page-Limit", limit.to_string()),
            ("X-Page-Page", page.to_string()),
        ],
        axum::Json(Value::Array(items)),
    )
        .into_response()
}

/// A search endpoint paged by `next` links (3 pages of 2 alarms), as Mist's `/search` ones are.
async fn alarms_search(
    State(ctl): State<Arc<Ctl>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    if let Some(r) = gate(&ctl, req.headers(), req.uri()) {
        return r;
    }
    let page: usize = q.get("search_after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let results: Vec<Value> =
        (0..2).map(|k| json!({"id": format!("alarm-{}", page * 2 + k), "type": "device_down"})).collect();
    let mut body = json!({"results": results, "limit": 2, "total": 6});
    if page < 2 {
        let org = req.uri().path().split('/').nth(4).unwrap_or_default().to_owned();
        body["next"] = json!(format!("/api/v1/orgs/{org}/alarms/search?limit=2&search_after={}", page + 1));
    }
    axum::Json(body).into_response()
}

fn per_site_counts(ctl: &Ctl, n: u64) -> Value {
    let i = ctl.inner.lock().unwrap();
    let results: Vec<Value> = i.sites.iter().map(|s| json!({"site_id": s["id"], "count": n})).collect();
    let mut v = sample("rest/count.json");
    v["distinct"] = json!("site_id");
    v["total"] = json!(results.len());
    v["results"] = Value::Array(results);
    v
}

/// The WebSocket upgrade done by hand on hyper's upgrade (no extra axum feature needed).
async fn ws_handler(State(ctl): State<Arc<Ctl>>, mut req: Request) -> Response {
    let ok = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        == Some(&format!("Token {TOKEN}"));
    if !ok {
        ctl.inner.lock().unwrap().bad_auth += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(key) = req.headers().get("sec-websocket-key").map(|k| k.as_bytes().to_vec()) else {
        return (StatusCode::BAD_REQUEST, "not a websocket upgrade").into_response();
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let c = ctl.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        session(c, ws).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-accept", accept)
        .body(Body::empty())
        .unwrap()
}

async fn session<S>(ctl: Arc<Ctl>, mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut frames = ctl.frames.subscribe();
    let mut kill = ctl.kill.subscribe();
    let mut silence = ctl.silence.subscribe();
    let id = {
        let mut i = ctl.inner.lock().unwrap();
        i.connections += 1;
        let id = i.connections;
        i.live.insert(id, HashSet::new());
        id
    };
    loop {
        tokio::select! {
            _ = kill.recv() => break,
            _ = silence.recv() => {
                // Half-open: keep the socket, never read (so pings go unanswered), never write.
                ctl.inner.lock().unwrap().live.remove(&id);
                tokio::select! {
                    _ = kill.recv() => {}
                    _ = tokio::time::sleep(Duration::from_secs(120)) => {}
                }
                break;
            }
            f = frames.recv() => {
                let Ok((channel, text)) = f else { continue };
                let subscribed = ctl.inner.lock().unwrap().live.get(&id).is_some_and(|s| s.contains(&channel));
                if subscribed && ws.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            m = ws.next() => {
                let Some(Ok(m)) = m else { break };
                let Message::Text(t) = m else { continue };
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                if let Some(ch) = v.get("subscribe").and_then(Value::as_str) {
                    let reply = {
                        let mut i = ctl.inner.lock().unwrap();
                        i.subscribes.push(ch.to_owned());
                        if i.refuse.contains(ch) {
                            json!({"event": "subscribe_failed", "channel": ch, "reason": "not authorized for this site"})
                        } else {
                            i.live.entry(id).or_default().insert(ch.to_owned());
                            json!({"event": "channel_subscribed", "channel": ch})
                        }
                    };
                    if ws.send(Message::text(reply.to_string())).await.is_err() {
                        break;
                    }
                } else if let Some(ch) = v.get("unsubscribe").and_then(Value::as_str) {
                    let mut i = ctl.inner.lock().unwrap();
                    i.unsubscribes.push(ch.to_owned());
                    if let Some(s) = i.live.get_mut(&id) {
                        s.remove(ch);
                    }
                }
            }
        }
    }
    ctl.inner.lock().unwrap().live.remove(&id);
}
