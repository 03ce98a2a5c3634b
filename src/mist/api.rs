//! Mist REST API client: token auth, any cloud, pagination on every list, a call budget (token
//! bucket) below Mist's 5,000 calls/hour/token, 429 + `Retry-After` handling and timeouts.
//!
//! The token lives in a [`Secret`] and in a header marked sensitive; it never appears in logs,
//! errors or `Debug` output (reqwest errors carry the URL, which never holds the token).
//!
//! Every call is cancel-safe: dropping it ends a `Retry-After` sleep, a budget wait (paused up
//! to an hour by a 429) or a request in flight; the poller relies on this to stop at once.

use crate::mist::cloud;
use crate::secret::Secret;
use crate::telemetry::poller::ApiMetrics;
use serde_json::Value;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Mist's documented ceiling per token; the configured budget must stay below it.
pub const MIST_HOURLY_LIMIT: u32 = 5_000;

/// Why an API call failed. Messages name the endpoint, never the token.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The cloud name or URL is unusable.
    #[error(transparent)]
    Cloud(#[from] cloud::UnknownCloud),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// Connection, TLS or timeout failure.
    #[error("Mist API {endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    /// Mist answered with an error status.
    #[error("Mist API {endpoint}: HTTP {status}{hint}")]
    Status { endpoint: String, status: u16, hint: &'static str },
    /// Still rate limited after the allowed retries.
    #[error("Mist API {endpoint}: rate limited (429), retry after {retry_after:?}")]
    RateLimited { endpoint: String, retry_after: Duration },
    /// The body is not the JSON we expect.
    #[error("Mist API {endpoint}: unexpected body: {message}")]
    Body { endpoint: String, message: String },
    /// `/self` lists no organisation for this token.
    #[error(
        "the API token has access to no organisation (GET /api/v1/self lists none); set poller.org_id (MIST_ORG_ID) or use an org-level token"
    )]
    NoOrg,
    /// `/self` lists several organisations; the user must choose.
    #[error("the API token has access to several organisations; set poller.org_id (MIST_ORG_ID) to one of: {}", .0.join(", "))]
    SeveralOrgs(Vec<String>),
}

impl ApiError {
    /// True when retrying cannot help (bad token, unknown org, ambiguous org, bad cloud).
    pub fn is_permanent(&self) -> bool {
        match self {
            ApiError::Cloud(_) | ApiError::Client(_) | ApiError::NoOrg | ApiError::SeveralOrgs(_) => true,
            ApiError::Status { status, .. } => matches!(status, 401 | 403 | 404),
            _ => false,
        }
    }
}

/// A token bucket holding the call budget: `per_hour` calls refill evenly; up to `burst` may be
/// spent at once. A 429 pauses every caller until `Retry-After` has passed.
#[derive(Debug)]
pub struct Budget {
    per_sec: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

impl Budget {
    /// A bucket refilling `per_hour` calls per hour, holding at most `burst`. Starts full.
    pub fn new(per_hour: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_sec: f64::from(per_hour.max(1)) / 3600.0,
            burst,
            state: Mutex::new(BucketState { tokens: burst, last: Instant::now(), paused_until: None }),
        }
    }

    fn refill(&self, s: &mut BucketState, now: Instant) {
        let dt = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + dt * self.per_sec).min(self.burst);
        s.last = now;
    }

    /// Takes one call, or says how long to wait before asking again.
    pub fn try_take(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = s.paused_until {
            if until > now {
                return Err(until - now);
            }
            s.paused_until = None;
        }
        self.refill(&mut s, now);
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - s.tokens) / self.per_sec))
        }
    }

    /// Waits until a call may be made, then takes it.
    pub async fn take(&self) {
        while let Err(wait) = self.try_take() {
            tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
        }
    }

    /// Stops all calls until `until` (after a 429).
    pub fn pause_until(&self, until: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
    }

    /// Calls available right now.
    pub fn remaining(&self) -> f64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refill(&mut s, Instant::now());
        s.tokens
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Calls per hour the bucket refills (≤ [`MIST_HOURLY_LIMIT`]).
    pub calls_per_hour: u32,
    /// Calls that may be spent at once.
    pub burst: u32,
    /// Items asked per page (Mist caps `limit` at 1000).
    pub page_limit: u32,
    /// 429 answers tolerated per call before giving up.
    pub max_429_retries: u32,
    /// Longest `Retry-After` honoured by waiting inside a call; longer ones fail the call
    /// (the budget stays paused, so the next scheduled call waits instead).
    pub max_retry_wait: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            calls_per_hour: 4_000,
            burst: 60,
            page_limit: 1000,
            max_429_retries: 3,
            max_retry_wait: Duration::from_secs(120),
        }
    }
}

/// An organisation the token can see, from `/api/v1/self`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrgRef {
    /// Organisation id.
    pub id: String,
    /// Organisation name (may be empty).
    pub name: String,
}

/// A site from `/api/v1/orgs/{org}/sites`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRef {
    /// Site id.
    pub id: String,
    /// Site name.
    pub name: String,
    /// Country code, when set.
    pub country_code: String,
    /// Time zone, when set.
    pub timezone: String,
}

/// The Mist REST client. Cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
    opts: ApiOptions,
    budget: Arc<Budget>,
    metrics: ApiMetrics,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient").field("base", &self.base).field("token", &self.token).finish()
    }
}

impl ApiClient {
    /// A client for `cloud` (a cloud name such as `emea01`, a host, or a base URL).
    pub fn new(cloud: &str, token: Secret, opts: ApiOptions, metrics: ApiMetrics) -> Result<Self, ApiError> {
        let base = cloud::rest_base(cloud)?;
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("mist-otel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Client(e.to_string()))?;
        let budget = Arc::new(Budget::new(opts.calls_per_hour.min(MIST_HOURLY_LIMIT), opts.burst));
        metrics.budget_remaining.set(budget.remaining());
        Ok(Self { http, base, token, opts, budget, metrics })
    }

    /// The REST base URL (`https://api.mist.com`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The shared call budget.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// One GET of `path` (relative to the base, query included), within the budget, retrying 429s.
    /// `endpoint` is a fixed label for metrics and errors.
    pub async fn get(
        &self,
        endpoint: &str,
        path: &str,
    ) -> Result<(Value, reqwest::header::HeaderMap), ApiError> {
        let url = format!("{}{}", self.base, path);
        let auth = self.auth_header()?;
        let mut attempts_429 = 0;
        loop {
            let resp = self.send(endpoint, &url, &auth).await?;
            let status = resp.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                attempts_429 += 1;
                self.rate_limited(endpoint, resp.headers(), attempts_429)?;
                continue;
            }
            if !status.is_success() {
                return Err(status_error(endpoint, status));
            }
            return json_body(endpoint, resp).await;
        }
    }

    /// `Authorization: Token …`, marked sensitive so it never shows in logs or `Debug`.
    fn auth_header(&self) -> Result<reqwest::header::HeaderValue, ApiError> {
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Token {}", self.token.expose()))
            .map_err(|_| {
                ApiError::Client("the API token contains characters not allowed in a header".into())
            })?;
        auth.set_sensitive(true);
        Ok(auth)
    }

    /// One request once the budget allows it, counted as answered (with its status) or failed.
    async fn send(
        &self,
        endpoint: &str,
        url: &str,
        auth: &reqwest::header::HeaderValue,
    ) -> Result<reqwest::Response, ApiError> {
        self.budget.take().await;
        self.metrics.budget_remaining.set(self.budget.remaining());
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        match resp {
            Ok(r) => {
                self.metrics.answered(endpoint, r.status().as_str());
                Ok(r)
            }
            Err(e) => {
                self.metrics.failed(endpoint);
                Err(ApiError::Transport { endpoint: endpoint.into(), message: describe(&e) })
            }
        }
    }

    /// After the `attempts`-th 429: pauses every caller for `Retry-After` (60 s when absent),
    /// and says whether this call may wait and retry or must give up.
    fn rate_limited(
        &self,
        endpoint: &str,
        headers: &reqwest::header::HeaderMap,
        attempts: u32,
    ) -> Result<(), ApiError> {
        self.metrics.rate_limited.inc();
        let wait = retry_after(headers).unwrap_or(Duration::from_secs(60));
        self.budget.pause_until(Instant::now() + wait);
        tracing::warn!(endpoint, retry_after_s = wait.as_secs_f64(), "Mist API rate limited (429)");
        if attempts > self.opts.max_429_retries || wait > self.opts.max_retry_wait {
            return Err(ApiError::RateLimited { endpoint: endpoint.into(), retry_after: wait });
        }
        Ok(())
    }

    /// Every item of a list endpoint, following Mist's pagination: `limit`/`page` with the
    /// `X-Page-Total`/`X-Page-Limit` headers for arrays, or the `next` link of search bodies.
    pub async fn get_list(&self, endpoint: &str, path: &str) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        let mut next_path: Option<String> = None;
        // A hard stop so a misbehaving server cannot keep us paging forever.
        for _ in 0..10_000 {
            let p = match next_path.take() {
                Some(n) => n,
                None => with_query(
                    path,
                    &[("limit", self.opts.page_limit.to_string()), ("page", page.to_string())],
                ),
            };
            let (body, headers) = self.get(endpoint, &p).await?;
            let (items, next) = page_items(endpoint, body)?;
            let n = items.len();
            out.extend(items);
            if let Some(next) = next {
                next_path = Some(self.relative(&next));
                continue;
            }
            if self.last_page(&headers, n, out.len()) {
                return Ok(out);
            }
            page += 1;
        }
        Ok(out)
    }

    /// Whether a `limit`/`page` answer of `n` items (`seen` in all so far) was the last page:
    /// `X-Page-Total` reached, else a short page; an empty page always ends.
    fn last_page(&self, headers: &reqwest::header::HeaderMap, n: usize, seen: usize) -> bool {
        let total = header_u64(headers, "x-page-total");
        let limit = header_u64(headers, "x-page-limit").unwrap_or(u64::from(self.opts.page_limit));
        match total {
            Some(t) => seen as u64 >= t || n == 0,
            None => (n as u64) < limit || n == 0,
        }
    }

    /// A `next` link as a path relative to the base (Mist sends paths; tolerate full URLs).
    fn relative(&self, next: &str) -> String {
        if let Some(rest) = next.strip_prefix(&self.base) {
            rest.to_owned()
        } else if let Some(pos) = next.find("://").and_then(|i| next[i + 3..].find('/').map(|j| i + 3 + j)) {
            next[pos..].to_owned()
        } else if next.starts_with('/') {
            next.to_owned()
        } else {
            format!("/{next}")
        }
    }

    /// The organisation of a token: the single org in `/api/v1/self`'s privileges.
    pub async fn discover_org(&self) -> Result<String, ApiError> {
        let (v, _) = self.get("self", "/api/v1/self").await?;
        let orgs = orgs_in_self(&v);
        match orgs.as_slice() {
            [] => Err(ApiError::NoOrg),
            [one] => Ok(one.id.clone()),
            many => Err(ApiError::SeveralOrgs(
                many.iter()
                    .map(|o| if o.name.is_empty() { o.id.clone() } else { format!("{} ({})", o.id, o.name) })
                    .collect(),
            )),
        }
    }

    /// Every site of an organisation.
    pub async fn org_sites(&self, org_id: &str) -> Result<Vec<SiteRef>, ApiError> {
        let items = self.get_list("org_sites", &format!("/api/v1/orgs/{org_id}/sites")).await?;
        Ok(items
            .iter()
            .filter_map(|s| {
                let id = s.get("id")?.as_str()?.to_owned();
                let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                Some(SiteRef {
                    name: text("name"),
                    country_code: text("country_code"),
                    timezone: text("timezone"),
                    id,
                })
            })
            .collect())
    }

    /// A `…/count?distinct=KEY` endpoint as (value of KEY, count) pairs.
    pub async fn count_by(
        &self,
        endpoint: &str,
        path: &str,
        distinct: &str,
    ) -> Result<Vec<(String, f64)>, ApiError> {
        let p = with_query(path, &[("distinct", distinct.to_owned()), ("limit", "1000".into())]);
        let (v, _) = self.get(endpoint, &p).await?;
        let results = v.get("results").and_then(Value::as_array).ok_or_else(|| ApiError::Body {
            endpoint: endpoint.into(),
            message: "count answer without `results`".into(),
        })?;
        Ok(results
            .iter()
            .filter_map(|r| {
                let count = r.get("count")?.as_f64()?;
                let key = r.get(distinct).or_else(|| r.get("property"))?;
                let key = match key {
                    Value::String(s) => s.clone(),
                    Value::Null => return None,
                    other => other.to_string(),
                };
                Some((key, count))
            })
            .collect())
    }
}

/// The organisations named in a `/self` body (privileges with an `org_id`), deduplicated.
pub fn orgs_in_self(v: &Value) -> Vec<OrgRef> {
    let mut orgs: Vec<OrgRef> = v
        .get("privileges")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    let id = p.get("org_id")?.as_str()?.to_owned();
                    let name = p
                        .get("org_name")
                        .or_else(|| {
                            (p.get("scope").and_then(Value::as_str) == Some("org"))
                                .then(|| p.get("name"))
                                .flatten()
                        })
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    Some(OrgRef { id, name })
                })
                .collect()
        })
        .unwrap_or_default();
    orgs.sort();
    orgs.dedup_by(|a, b| {
        if a.id == b.id {
            if b.name.is_empty() {
                b.name = std::mem::take(&mut a.name);
            }
            true
        } else {
            false
        }
    });
    orgs
}

/// The error of a non-success answer, with a hint for the statuses a user can fix.
fn status_error(endpoint: &str, status: reqwest::StatusCode) -> ApiError {
    let hint = match status.as_u16() {
        401 => " (the API token is invalid or expired)",
        403 => " (the API token lacks access to this organisation)",
        404 => " (unknown organisation or site id?)",
        _ => "",
    };
    ApiError::Status { endpoint: endpoint.into(), status: status.as_u16(), hint }
}

/// A success answer's JSON body, with its headers (pagination reads them).
async fn json_body(
    endpoint: &str,
    resp: reqwest::Response,
) -> Result<(Value, reqwest::header::HeaderMap), ApiError> {
    let headers = resp.headers().clone();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| ApiError::Transport { endpoint: endpoint.into(), message: describe(&e) })?;
    let v = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Body { endpoint: endpoint.into(), message: e.to_string() })?;
    Ok((v, headers))
}

/// One page's items and, for search bodies, the `next` link: a list answer is a JSON array,
/// a search answer an object with `results` (and `next` while more remain).
fn page_items(endpoint: &str, body: Value) -> Result<(Vec<Value>, Option<String>), ApiError> {
    match body {
        Value::Array(items) => Ok((items, None)),
        Value::Object(mut m) => {
            let items = match m.remove("results") {
                Some(Value::Array(a)) => a,
                _ => {
                    return Err(ApiError::Body {
                        endpoint: endpoint.into(),
                        message: "expected an array or an object with `results`".into(),
                    });
                }
            };
            let next = m.get("next").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
            Ok((items, next))
        }
        _ => Err(ApiError::Body { endpoint: endpoint.into(), message: "expected a JSON list".into() }),
    }
}

/// `path` with query pairs appended (values are plain tokens, no escaping needed).
fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let mut p = path.to_owned();
    for (k, v) in pairs {
        p.push(if p.contains('?') { '&' } else { '?' });
        p.push_str(k);
        p.push('=');
        p.push_str(v);
    }
    p
}

fn header_u64(h: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Retry-After` as seconds (Mist sends seconds; an HTTP date falls back to the caller's default).
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let s = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = s.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// A reqwest error without its source chain noise; the URL never holds the token.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut msg = kind.to_owned();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refills_and_pauses() {
        let b = Budget::new(3600, 2);
        assert!(b.try_take().is_ok());
        assert!(b.try_take().is_ok());
        let wait = b.try_take().unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        b.pause_until(Instant::now() + Duration::from_secs(30));
        assert!(b.try_take().unwrap_err() > Duration::from_secs(20));
    }

    #[test]
    fn orgs_from_self_samples() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/mist-samples/rest");
        let Ok(text) = std::fs::read_to_string(dir.join("self.mistclient-testdata.json")) else { return };
        let v: Value = serde_json::from_str(&text).unwrap();
        let orgs = orgs_in_self(&v);
        assert_eq!(orgs.len(), 1);
        assert_eq!(orgs[0].id, "9ff00eec-24f0-44d7-bda4-6238c81376ee");
        assert_eq!(orgs[0].name, "TestCompany");
    }

    #[test]
    fn debug_hides_token() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let c = ApiClient::new(
            "http://127.0.0.1:9",
            Secret::new("tok-sekrit"),
            ApiOptions::default(),
            ApiMetrics::default(),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("sekrit"));
    }

    #[test]
    fn query_building() {
        assert_eq!(with_query("/a", &[("limit", "5".into()), ("page", "2".into())]), "/a?limit=5&page=2");
        assert_eq!(with_query("/a?x=1", &[("page", "2".into())]), "/a?x=1&page=2");
    }
}
