//! Request ids: every webhook request carries an `X-Request-Id` (the sender's, or one made
//! here) that the handler's log lines name and the answer echoes.

use std::sync::Arc;

/// Request ids: taken from `X-Request-Id` or generated, and echoed back. The handler puts the id
/// (and the peer) on every line it logs about a request.
pub fn with_request_ids(router: axum::Router) -> axum::Router {
    router.layer(RequestIdLayer(RequestIds::new()))
}

/// The request-id header.
const X_REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Sets `X-Request-Id` on the request (the sender's, else a new one) for the handler's log
/// lines, and echoes it on the answer unless the answer has one: what `tower_http`'s
/// set/propagate pair does, in one layer, headers only (no request extension, no boxing).
#[derive(Clone)]
struct RequestIdLayer(RequestIds);

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner, ids: self.0.clone() }
    }
}

/// The service of [`RequestIdLayer`].
#[derive(Clone)]
struct RequestIdService<S> {
    inner: S,
    ids: RequestIds,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for RequestIdService<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = WithRequestId<S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) => v.clone(),
            None => {
                let v = self.ids.next();
                req.headers_mut().insert(X_REQUEST_ID, v.clone());
                v
            }
        };
        WithRequestId { inner: self.inner.call(req), id: Some(id) }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`RequestIdService`], with the id echoed.
    struct WithRequestId<F> {
        #[pin]
        inner: F,
        id: Option<axum::http::HeaderValue>,
    }
}

impl<F, R, E> std::future::Future for WithRequestId<F>
where
    F: std::future::Future<Output = Result<axum::http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let this = self.project();
        let mut resp = std::task::ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            resp.headers_mut().entry(X_REQUEST_ID).or_insert(id);
        }
        std::task::Poll::Ready(Ok(resp))
    }
}

/// Request ids shaped as UUIDv4 text: 74 random bits drawn once per process, then a 48-bit
/// counter. Unique within a process and across restarts (with overwhelming odds), without the
/// `getrandom` system call per request that `tower_http`'s `MakeRequestUuid` makes. They
/// count up, so they are guessable: they identify requests in logs, they are not secrets.
#[derive(Clone)]
struct RequestIds {
    base: u64,
    /// 10 more random bits, for the fourth group.
    base2: u64,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // std seeds every RandomState from the OS's random source.
        let random = || std::collections::hash_map::RandomState::new().build_hasher().finish();
        Self { base: random(), base2: random(), next: Arc::new(std::sync::atomic::AtomicU64::new(0)) }
    }

    /// The next id.
    fn next(&self) -> axum::http::HeaderValue {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xffff_ffff_ffff;
        let b = self.base;
        // xxxxxxxx-xxxx-4xxx-[89ab]xxx-<counter>: version 4, RFC 4122 variant.
        let id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{n:012x}",
            b >> 32,
            (b >> 16) & 0xffff,
            0x4000 | ((b >> 4) & 0x0fff),
            0x8000 | ((b & 0xf) << 10) | (self.base2 & 0x3ff),
        );
        // Hex digits and dashes only: always a valid header value.
        axum::http::HeaderValue::try_from(id)
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("invalid"))
    }
}

#[cfg(test)]
mod tests {
    use super::RequestIds;

    #[test]
    fn request_ids_are_distinct_uuid_v4_text() {
        let ids = RequestIds::new();
        let other = RequestIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let text = ids.next().to_str().expect("ASCII").to_owned();
            let parts: Vec<&str> = text.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{text}");
            assert!(text.chars().all(|c| c == '-' || c.is_ascii_hexdigit()), "{text}");
            assert!(parts[2].starts_with('4') && "89ab".contains(&parts[3][..1]), "{text}");
            assert!(seen.insert(text), "duplicate id");
        }
        // Another generator (another process, in effect) starts elsewhere.
        assert!(!seen.contains(other.next().to_str().expect("ASCII")));
    }
}
