//! The status page on the admin listener: what arrived recently, what was rejected and why, a
//! live tail of events, and the health of export, buffer and poller from their typed snapshots
//! ([`crate::admin::health`]).
//!
//! Routes: `/` (server-rendered HTML, a few lines of vanilla JS), `/status.json` (the same data)
//! and `/status/events` (Server-Sent Events, one per accepted event).
//!
//! Everything kept here is bounded: fixed-size rings for deliveries and events, and a cap on the
//! number of distinct topics (further unknown topics are counted as `other`), so a sender cannot
//! grow the server's memory through this page.

mod board;
mod health;
mod html;
mod page;
mod stream;
mod tail;

pub use board::{DeliveryRecord, StatusBoard, TopicStats, UNPARSED};
pub use html::escape;
pub use page::render_page;
pub use tail::TailEvent;

use super::health::{HealthSnapshot, HealthSources};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything on the page, as `/status.json` serves it.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// Server version.
    pub version: &'static str,
    /// Seconds since the board was created.
    pub uptime_secs: u64,
    /// Totals per topic.
    pub topics: BTreeMap<String, TopicStats>,
    /// Recent deliveries, newest first.
    pub deliveries: Vec<DeliveryRecord>,
    /// Recent events, newest first.
    pub events: Vec<TailEvent>,
    /// Health per component (`export`, `buffer`, `poller`).
    pub health: HealthSnapshot,
    /// Open live-tail streams (pages watching right now).
    pub live_viewers: usize,
}

#[derive(Clone)]
struct StatusState {
    pub(super) board: Arc<StatusBoard>,
    health: HealthSources,
    pub(super) cancel: CancellationToken,
}

impl StatusState {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.board.started.elapsed().as_secs(),
            topics: self.board.topics(),
            deliveries: self.board.deliveries(),
            events: self.board.events(),
            health: self.health.snapshot(),
            live_viewers: self.board.tail.receiver_count(),
        }
    }
}

/// The status routes. `cancel` ends open event streams so graceful shutdown is not held up.
pub fn router(board: Arc<StatusBoard>, health: HealthSources, cancel: CancellationToken) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/status.json", get(json))
        .route("/status/events", get(stream::events))
        .with_state(StatusState { board, health, cancel })
}

async fn json(State(st): State<StatusState>) -> impl IntoResponse {
    axum::Json(st.snapshot())
}

async fn page(State(st): State<StatusState>) -> impl IntoResponse {
    let html = render_page(&st.snapshot());
    ([(header::CACHE_CONTROL, "no-store")], Html(html))
}
