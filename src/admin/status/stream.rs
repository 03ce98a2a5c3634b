//! The live tail's Server-Sent Events: one event per accepted Mist event, ended on shutdown.

use super::StatusState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use tokio::sync::broadcast;

/// `/status/events`: streams the board's tail until the page leaves or the server stops.
pub(super) async fn events(State(st): State<StatusState>) -> impl IntoResponse {
    let rx = st.board.subscribe();
    let stream = futures_util::stream::unfold((rx, st.cancel), |(mut rx, cancel)| async move {
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return None,
                r = rx.recv() => r,
            };
            match next {
                Ok(ev) => {
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    let item: Result<Event, std::convert::Infallible> = Ok(Event::default().data(data));
                    return Some((item, (rx, cancel)));
                }
                // A slow page skips what it missed rather than holding memory for it.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
