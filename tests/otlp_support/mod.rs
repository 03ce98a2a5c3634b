//! An in-process OTLP receiver for the tests: gRPC (opentelemetry-proto's tonic service traits)
//! and HTTP (axum, protobuf or JSON, gzip), recording every decoded request with its headers,
//! and able to fail on demand: stopped (connection refused), 503/429 with Retry-After,
//! RESOURCE_EXHAUSTED with RetryInfo, 400/INVALID_ARGUMENT, or slow.
//!
//! The receiver runs on its own Tokio runtime in a thread, so [`Receiver::stop`] really closes
//! every connection (the runtime is dropped) and [`Receiver::restart`] binds the same ports again.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::codec::CompressionEncoding;

/// How the receiver answers the next request(s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// HTTP 503 + Retry-After / gRPC UNAVAILABLE.
    Unavailable { retry_after_secs: u64 },
    /// HTTP 429 + Retry-After / gRPC RESOURCE_EXHAUSTED with a RetryInfo detail.
    Throttled { retry_after_secs: u64 },
    /// HTTP 400 / gRPC INVALID_ARGUMENT (permanent).
    BadRequest,
    /// HTTP 500 / gRPC INTERNAL.
    ServerError,
    /// Wait, then accept.
    Slow(Duration),
    /// Accept, answering that `rejected` items were refused (`partial_success`; gRPC only).
    Partial { rejected: i64 },
}

/// Which transport a request came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// gRPC.
    Grpc,
    /// HTTP protobuf.
    HttpProtobuf,
    /// HTTP JSON.
    HttpJson,
}

/// One request attempt (answered with a fault or accepted).
#[derive(Debug, Clone)]
pub struct Attempt {
    /// `logs`, `metrics`, `traces`.
    pub signal: &'static str,
    /// When it arrived.
    pub at: Instant,
    /// The fault served, if any.
    pub fault: Option<Fault>,
}

/// Everything accepted so far.
#[derive(Default)]
pub struct Recorded {
    /// Accepted log requests with their headers (lowercase names).
    pub logs: Vec<(Transport, BTreeMap<String, String>, ExportLogsServiceRequest)>,
    /// Accepted metric requests.
    pub metrics: Vec<(Transport, BTreeMap<String, String>, ExportMetricsServiceRequest)>,
    /// Accepted trace requests.
    pub traces: Vec<(Transport, BTreeMap<String, String>, ExportTraceServiceRequest)>,
    /// Every attempt, in arrival order.
    pub attempts: Vec<Attempt>,
    /// Faults still to serve, in order.
    pub faults: VecDeque<Fault>,
    /// OTLP/HTTP: requests with more items (log records, spans, metrics) than this are
    /// answered 413.
    pub max_items: Option<usize>,
}

impl Recorded {
    /// Every log record accepted (with duplicates).
    pub fn log_records(&self) -> Vec<LogRecord> {
        self.logs
            .iter()
            .flat_map(|(_, _, r)| &r.resource_logs)
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| s.log_records.iter().cloned())
            .collect()
    }

    /// Every span accepted (with duplicates).
    pub fn spans(&self) -> Vec<Span> {
        self.traces
            .iter()
            .flat_map(|(_, _, r)| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.iter().cloned())
            .collect()
    }
}

type Shared = Arc<Mutex<Recorded>>;

/// A running (or stopped) receiver.
pub struct Receiver {
    /// gRPC address.
    pub grpc: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    /// What arrived.
    pub recorded: Shared,
    runtime: Option<tokio::runtime::Runtime>,
    /// gRPC over TLS requiring a client certificate from the test CA.
    tls: Option<TestPki>,
}

/// A throw-away CA, a server certificate for `localhost` and a client certificate (PEM).
#[derive(Clone)]
pub struct TestPki {
    /// CA certificate.
    pub ca: String,
    /// Server certificate (for `localhost`).
    pub server_cert: String,
    /// Server key.
    pub server_key: String,
    /// Client certificate.
    pub client_cert: String,
    /// Client key.
    pub client_key: String,
}

impl TestPki {
    /// Generates the material.
    pub fn generate() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "mist-otel test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf("localhost");
        let (client_cert, client_key) = leaf("mist-otel-client");
        TestPki { ca: ca.pem(), server_cert, server_key, client_cert, client_key }
    }
}

/// A free loopback port (bound and released; the tests bind it again right away).
pub fn free_port() -> SocketAddr {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

impl Receiver {
    /// Starts on fresh loopback ports.
    pub fn start() -> Receiver {
        Self::start_on(free_port(), free_port())
    }

    /// A receiver that is not running yet (the backend is down); [`Receiver::restart`] starts it.
    pub fn stopped() -> Receiver {
        Receiver {
            grpc: free_port(),
            http: free_port(),
            recorded: Default::default(),
            runtime: None,
            tls: None,
        }
    }

    /// Starts on the given addresses.
    pub fn start_on(grpc: SocketAddr, http: SocketAddr) -> Receiver {
        let mut r = Receiver { grpc, http, recorded: Default::default(), runtime: None, tls: None };
        r.restart();
        r
    }

    /// Starts with gRPC over mutual TLS (server certificate for `localhost`).
    pub fn start_tls(pki: &TestPki) -> Receiver {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut r = Receiver {
            grpc: free_port(),
            http: free_port(),
            recorded: Default::default(),
            runtime: None,
            tls: Some(pki.clone()),
        };
        r.restart();
        r
    }

    /// `http://<grpc>`.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://<http>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// (Re)starts serving on the same ports, keeping what was recorded.
    pub fn restart(&mut self) {
        self.stop();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let shared = self.recorded.clone();
        let (grpc, http) = (self.grpc, self.http);
        // Binding may race with the previous runtime's sockets closing: retry briefly.
        let bind = |addr: SocketAddr| {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match StdListener::bind(addr) {
                    Ok(l) => {
                        l.set_nonblocking(true).unwrap();
                        return l;
                    }
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("cannot bind {addr}: {e}"),
                }
            }
        };
        let gl = bind(grpc);
        let hl = bind(http);
        let tls = self.tls.clone();
        rt.spawn({
            let shared = shared.clone();
            async move {
                let listener = tokio::net::TcpListener::from_std(gl).unwrap();
                let svc = Svc(shared);
                let mut builder = tonic::transport::Server::builder();
                if let Some(pki) = tls {
                    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
                    builder = builder
                        .tls_config(
                            ServerTlsConfig::new()
                                .identity(Identity::from_pem(&pki.server_cert, &pki.server_key))
                                .client_ca_root(Certificate::from_pem(&pki.ca)),
                        )
                        .unwrap();
                }
                builder
                    .add_service(
                        LogsServiceServer::new(svc.clone()).accept_compressed(CompressionEncoding::Gzip),
                    )
                    .add_service(
                        MetricsServiceServer::new(svc.clone()).accept_compressed(CompressionEncoding::Gzip),
                    )
                    .add_service(TraceServiceServer::new(svc).accept_compressed(CompressionEncoding::Gzip))
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                    .await
                    .unwrap();
            }
        });
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(hl).unwrap();
            let app = axum::Router::new()
                .route("/v1/logs", axum::routing::post(http_logs))
                .route("/v1/metrics", axum::routing::post(http_metrics))
                .route("/v1/traces", axum::routing::post(http_traces))
                .with_state(shared);
            axum::serve(listener, app).await.unwrap();
        });
        self.runtime = Some(rt);
    }

    /// Stops serving: every listener and connection is closed (connection refused from now on).
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    /// Queues faults served to the next requests, in order.
    pub fn fail_next(&self, faults: &[Fault]) {
        self.recorded.lock().unwrap().faults.extend(faults.iter().copied());
    }

    /// Runs `f` on the recorded data.
    pub fn with<T>(&self, f: impl FnOnce(&Recorded) -> T) -> T {
        f(&self.recorded.lock().unwrap())
    }

    /// Polls until `cond` holds on the recorded data or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&Recorded) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(&self.recorded.lock().unwrap()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Takes the next fault (recording the attempt) and sleeps for a `Slow` one.
async fn next_fault(shared: &Shared, signal: &'static str) -> Option<Fault> {
    let fault = {
        let mut r = shared.lock().unwrap();
        let f = r.faults.pop_front();
        r.attempts.push(Attempt { signal, at: Instant::now(), fault: f });
        f
    };
    match fault {
        Some(Fault::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        other => other,
    }
}

/// What a gRPC service answers next: a failure, or acceptance with `Some(n)` items refused.
async fn grpc_answer(shared: &Shared, signal: &'static str) -> Result<Option<i64>, tonic::Status> {
    match next_fault(shared, signal).await {
        Some(Fault::Partial { rejected }) => Ok(Some(rejected)),
        Some(f) => Err(grpc_fault(f)),
        None => Ok(None),
    }
}

fn grpc_fault(f: Fault) -> tonic::Status {
    match f {
        Fault::Unavailable { .. } => tonic::Status::unavailable("test receiver is unavailable"),
        Fault::Throttled { retry_after_secs } => tonic::Status::with_details(
            tonic::Code::ResourceExhausted,
            "test receiver is throttling",
            mist_otel::exporter::otlp_grpc::retry_info_details(Duration::from_secs(retry_after_secs)).into(),
        ),
        Fault::BadRequest => tonic::Status::invalid_argument("test receiver rejects this"),
        Fault::ServerError => tonic::Status::internal("test receiver failed"),
        Fault::Slow(_) | Fault::Partial { .. } => unreachable!("served by accepting"),
    }
}

/// The explanation sent with a [`Fault::Partial`] answer.
pub const PARTIAL_MESSAGE: &str = "test receiver refused some items";

fn metadata(m: &tonic::metadata::MetadataMap) -> BTreeMap<String, String> {
    m.clone()
        .into_headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect()
}

#[derive(Clone)]
struct Svc(Shared);

/// Where accepted requests of one signal are recorded.
type Store<T> = fn(&mut Recorded) -> &mut Vec<(Transport, BTreeMap<String, String>, T)>;

/// One gRPC export: the next fault or acceptance, the request recorded, then `respond` builds
/// the answer from the count of items refused (`Some` for a partial success).
async fn grpc_export<T, R>(
    shared: &Shared,
    signal: &'static str,
    req: tonic::Request<T>,
    store: Store<T>,
    respond: impl FnOnce(Option<i64>) -> R,
) -> Result<tonic::Response<R>, tonic::Status> {
    let rejected = grpc_answer(shared, signal).await?;
    let h = metadata(req.metadata());
    store(&mut shared.lock().unwrap()).push((Transport::Grpc, h, req.into_inner()));
    Ok(tonic::Response::new(respond(rejected)))
}

/// Implements one OTLP gRPC service for [`Svc`] through [`grpc_export`].
macro_rules! grpc_service {
    ($service:ident, $req:ty, $resp:ty, $signal:literal, $field:ident, $respond:expr) => {
        #[tonic::async_trait]
        impl $service for Svc {
            async fn export(
                &self,
                req: tonic::Request<$req>,
            ) -> Result<tonic::Response<$resp>, tonic::Status> {
                grpc_export(&self.0, $signal, req, |r| &mut r.$field, $respond).await
            }
        }
    };
}

grpc_service!(LogsService, ExportLogsServiceRequest, ExportLogsServiceResponse, "logs", logs, |rejected| {
    ExportLogsServiceResponse {
        partial_success: rejected.map(|n| ExportLogsPartialSuccess {
            rejected_log_records: n,
            error_message: PARTIAL_MESSAGE.into(),
        }),
    }
});

grpc_service!(
    MetricsService,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    "metrics",
    metrics,
    |rejected| ExportMetricsServiceResponse {
        partial_success: rejected.map(|n| ExportMetricsPartialSuccess {
            rejected_data_points: n,
            error_message: PARTIAL_MESSAGE.into(),
        }),
    }
);

grpc_service!(
    TraceService,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    "traces",
    traces,
    |rejected| {
        ExportTraceServiceResponse {
            partial_success: rejected.map(|n| ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: PARTIAL_MESSAGE.into(),
            }),
        }
    }
);

fn http_fault(f: Fault) -> Response {
    match f {
        Fault::Unavailable { retry_after_secs } => {
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", retry_after_secs.to_string())], "down")
                .into_response()
        }
        Fault::Throttled { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry_after_secs.to_string())], "slow down")
                .into_response()
        }
        Fault::BadRequest => (StatusCode::BAD_REQUEST, "bad").into_response(),
        Fault::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Fault::Slow(_) => unreachable!("slow faults are served by sleeping"),
        Fault::Partial { .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "the test receiver answers partial success over gRPC only")
                .into_response()
        }
    }
}

/// Decodes an OTLP/HTTP body (gzip, protobuf or JSON).
fn decode_http<T: Message + Default + serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Transport, BTreeMap<String, String>, T), String> {
    let mut raw = body.to_vec();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body).read_to_end(&mut out).map_err(|_| "bad gzip".to_owned())?;
        raw = out;
    }
    let json = headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let msg = if json {
        serde_json::from_slice(&raw).map_err(|e| e.to_string())?
    } else {
        T::decode(raw.as_slice()).map_err(|e| e.to_string())?
    };
    let h = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    Ok((if json { Transport::HttpJson } else { Transport::HttpProtobuf }, h, msg))
}

fn proto_ok<T: Message>(m: T) -> Response {
    ([("content-type", "application/x-protobuf")], m.encode_to_vec()).into_response()
}

/// One OTLP/HTTP export: the next fault, 413 when it has more than `max_items` items (counted
/// by `items`), or the decoded request recorded and an empty `R`.
async fn http_export<T: Message + Default + serde::de::DeserializeOwned, R: Message + Default>(
    s: &Shared,
    signal: &'static str,
    (headers, body): (&HeaderMap, &[u8]),
    store: Store<T>,
    items: fn(&T) -> usize,
) -> Response {
    if let Some(f) = next_fault(s, signal).await {
        return http_fault(f);
    }
    match decode_http::<T>(headers, body) {
        Ok(rec) if s.lock().unwrap().max_items.is_some_and(|max| items(&rec.2) > max) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "smaller, please").into_response()
        }
        Ok(rec) => {
            store(&mut s.lock().unwrap()).push(rec);
            proto_ok(R::default())
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn http_logs(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let items = |r: &ExportLogsServiceRequest| {
        r.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum()
    };
    http_export::<_, ExportLogsServiceResponse>(&s, "logs", (&headers, &body), |r| &mut r.logs, items).await
}

async fn http_metrics(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let items = |r: &ExportMetricsServiceRequest| {
        r.resource_metrics.iter().flat_map(|r| &r.scope_metrics).map(|s| s.metrics.len()).sum()
    };
    http_export::<_, ExportMetricsServiceResponse>(
        &s,
        "metrics",
        (&headers, &body),
        |r| &mut r.metrics,
        items,
    )
    .await
}

async fn http_traces(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let items = |r: &ExportTraceServiceRequest| {
        r.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
    };
    http_export::<_, ExportTraceServiceResponse>(&s, "traces", (&headers, &body), |r| &mut r.traces, items)
        .await
}

/// A synthetic webhook body with `n` events, each with a distinct timestamp
/// (`base + i` seconds plus `i` microseconds) that identifies it on the wire.
pub fn numbered_body(topic: &str, base_secs: u64, first: u64, n: u64) -> Vec<u8> {
    let events: Vec<serde_json::Value> = (first..first + n)
        .map(|i| {
            serde_json::json!({
                "type": "AP_CONNECTED",
                "id": format!("ev-{i:06}"),
                "org_id": "2818e386-8dec-2562-9ede-5b8a0fbbdc71",
                "site_id": "4ac1dcf4-9d8b-7211-65c4-057819f0862b",
                "mac": "5c5b35000001",
                "timestamp": ts_secs(base_secs, i),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "topic": topic, "events": events })).unwrap()
}

/// The timestamp (float seconds) of event `i` in [`numbered_body`].
pub fn ts_secs(base_secs: u64, i: u64) -> f64 {
    base_secs as f64 + i as f64 + (i % 1000) as f64 * 1e-6
}

/// The same timestamp in nanoseconds, as the translator stamps the log record.
pub fn ts_ns(base_secs: u64, i: u64) -> u64 {
    mist_otel::signals::secs_to_ns(ts_secs(base_secs, i))
}

/// Checks every expected timestamp arrived and that copies of a record (replays) are identical.
/// Returns the set of timestamps seen.
pub fn assert_complete_and_identical(rec: &Recorded, expected: &[u64]) {
    let mut by_key: BTreeMap<(u64, String), LogRecord> = BTreeMap::new();
    for r in rec.log_records() {
        let key = (r.time_unix_nano, r.event_name.clone());
        if let Some(prev) = by_key.get(&key) {
            assert_eq!(prev, &r, "a replayed log record differs from the first copy");
        } else {
            by_key.insert(key, r);
        }
    }
    let seen: std::collections::BTreeSet<u64> = by_key.keys().map(|k| k.0).collect();
    let missing: Vec<&u64> = expected.iter().filter(|t| !seen.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events never arrived, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
}

/// True when every expected timestamp has arrived.
pub fn has_all(rec: &Recorded, expected: &[u64]) -> bool {
    let seen: std::collections::BTreeSet<u64> = rec.log_records().iter().map(|r| r.time_unix_nano).collect();
    expected.iter().all(|t| seen.contains(t))
}
