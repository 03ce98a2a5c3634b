//! OTLP/gRPC exporter (a tonic client sending each request as encoded bytes, with
//! `opentelemetry-proto`'s messages and the OTLP services' method paths).
//!
//! Status codes follow the OTLP specification: `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`,
//! `OUT_OF_RANGE`, `UNAVAILABLE` and `DATA_LOSS` are retryable; `RESOURCE_EXHAUSTED` is
//! retryable only when the server says when (a `google.rpc.RetryInfo` detail); everything else
//! is permanent — except a transport failure. A connection that is closed, reset or answered
//! with bytes that are not HTTP/2 (a TCP load balancer with no live server behind it) reaches
//! us as `UNKNOWN` or `INTERNAL` too, but no backend said anything: tonic keeps the
//! transport's error as the status' source, while a status the backend sent (`grpc-status`)
//! has none. Those are retried with reason `transport`; a real `UNKNOWN`/`INTERNAL` answer
//! stays permanent. (An HTTP/2 answer without any `grpc-status` is still taken as the
//! backend's answer, as tonic maps it.)

use super::config::{Compression, SignalTarget};
use super::request::{Accepted, BuildError, ExportError, Payload, header_map, read_pem};
use bytes::{BufMut, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::codec::{Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};
use tonic_prost::ProstDecoder;

/// Makes a fresh channel to the configured endpoint.
type Connect = Arc<dyn Fn() -> Channel + Send + Sync>;

/// Exports one signal over gRPC. Cheap to clone (the channel is shared).
#[derive(Clone)]
pub struct GrpcExporter {
    /// Shared by the clones; replaced when it can no longer send (see [`GrpcExporter::export`]).
    channel: Arc<Mutex<Channel>>,
    connect: Connect,
    metadata: MetadataMap,
    gzip: bool,
    timeout: Duration,
}

impl GrpcExporter {
    /// Builds a lazily connecting channel to `target.url`.
    pub fn new(target: &SignalTarget) -> Result<Self, BuildError> {
        Self::build(target, Endpoint::connect_lazy)
    }

    /// As [`GrpcExporter::new`], with the channel made by `connect` from the configured endpoint.
    fn build(
        target: &SignalTarget,
        connect: impl Fn(&Endpoint) -> Channel + Send + Sync + 'static,
    ) -> Result<Self, BuildError> {
        let key = format!("{}.endpoint", target.signal.as_str());
        let bad = |message: String| BuildError { key: key.clone(), message };
        let mut ep = Endpoint::from_shared(target.url.clone())
            .map_err(|e| bad(format!("`{}` is not a URL: {e}", target.url)))?
            .timeout(target.timeout)
            .connect_timeout(target.timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(false);
        let tls = &target.tls;
        if target.url.starts_with("https://") || tls.ca_file.is_some() || tls.cert_file.is_some() {
            let mut c = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &tls.ca_file {
                c = c.ca_certificate(Certificate::from_pem(read_pem("tls.ca_file", ca)?));
            }
            if let (Some(cert), Some(k)) = (&tls.cert_file, &tls.key_file) {
                c = c.identity(Identity::from_pem(
                    read_pem("tls.cert_file", cert)?,
                    read_pem("tls.key_file", k)?,
                ));
            }
            ep = ep.tls_config(c).map_err(|e| bad(format!("TLS set-up failed: {e}")))?;
        }
        let headers = header_map(target)?;
        let connect: Connect = Arc::new(move || connect(&ep));
        Ok(Self {
            channel: Arc::new(Mutex::new(connect())),
            connect,
            metadata: MetadataMap::from_headers(headers),
            gzip: target.compression == Compression::Gzip,
            timeout: target.timeout,
        })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        *req.metadata_mut() = self.metadata.clone();
        req.set_timeout(self.timeout);
        req
    }

    /// Sends one request.
    ///
    /// The payload is encoded here (once per attempt) and sent as bytes: the generated clients
    /// take the message by value, so every attempt would first cost a deep copy of every
    /// record.
    ///
    /// A channel that is not ready answers UNAVAILABLE (retried: the deliveries stay on disk)
    /// rather than the generated clients' UNKNOWN (dropped for good), and is replaced: with a
    /// lazily connecting channel (connection errors come with the call instead) that error
    /// means its worker task has stopped, and every later call on it would fail the same way.
    pub async fn export(&self, payload: &Payload) -> Result<Accepted, ExportError> {
        let channel = self.channel.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(16 << 20);
        if self.gzip {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        let result = async {
            if let Err(e) = grpc.ready().await {
                *self.channel.lock().unwrap_or_else(|p| p.into_inner()) = (self.connect)();
                return Err(Status::unavailable(format!("channel not ready: {e}")));
            }
            let req = self.request(Bytes::from(payload.encode()));
            Ok::<_, Status>(
                match payload {
                    Payload::Logs(_) => unary::<ExportLogsServiceResponse>(&mut grpc, req, LOGS_EXPORT)
                        .await?
                        .partial_success
                        .map(|p| (p.rejected_log_records as u64, p.error_message)),
                    Payload::Metrics(_) => {
                        unary::<ExportMetricsServiceResponse>(&mut grpc, req, METRICS_EXPORT)
                            .await?
                            .partial_success
                            .map(|p| (p.rejected_data_points as u64, p.error_message))
                    }
                    Payload::Traces(_) => unary::<ExportTraceServiceResponse>(&mut grpc, req, TRACES_EXPORT)
                        .await?
                        .partial_success
                        .map(|p| (p.rejected_spans as u64, p.error_message)),
                }
                .unwrap_or_default(),
            )
        }
        .await;
        match result {
            Ok((rejected, message)) => Ok(Accepted { rejected, message }),
            Err(status) => Err(classify(&status)),
        }
    }
}

/// The OTLP services' export methods (opentelemetry-proto's `collector/*/v1/*_service.proto`).
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const TRACES_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Calls one export method with an encoded request; `U` is the method's answer.
async fn unary<U: prost::Message + Default + Send + 'static>(
    grpc: &mut tonic::client::Grpc<Channel>,
    req: tonic::Request<Bytes>,
    path: &'static str,
) -> Result<U, Status> {
    let answer = grpc.unary(req, PathAndQuery::from_static(path), PreEncoded::<U>::default()).await?;
    Ok(answer.into_inner())
}

/// A codec that sends an already encoded protobuf message as is and decodes the answer `U`.
struct PreEncoded<U>(PhantomData<U>);

impl<U> Default for PreEncoded<U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<U: prost::Message + Default + Send + 'static> Codec for PreEncoded<U> {
    type Encode = Bytes;
    type Decode = U;
    type Encoder = RawEncoder;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<U> {
        ProstDecoder::default()
    }
}

/// Copies encoded bytes into the gRPC frame.
struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

/// Maps a gRPC status to retryable or permanent; the message (with the transport's errors,
/// if any) goes with it for the log.
pub fn classify(status: &Status) -> ExportError {
    let reason = code_label(status.code());
    let retry_after = retry_info(status.details());
    let message = describe(status);
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => ExportError::Retryable { reason, retry_after, message },
        Code::ResourceExhausted if retry_after.is_some() => {
            ExportError::Retryable { reason, retry_after, message }
        }
        Code::Unknown | Code::Internal if transport_failure(status) => {
            ExportError::Retryable { reason: "transport".into(), retry_after, message }
        }
        _ => ExportError::Permanent { reason, message },
    }
}

/// The status came from the connection failing (its source is a transport or HTTP error),
/// not from an answer of the backend.
fn transport_failure(status: &Status) -> bool {
    std::iter::successors(std::error::Error::source(status), |e| e.source())
        .any(|e| e.is::<tonic::transport::Error>() || e.is::<hyper::Error>() || e.is::<std::io::Error>())
}

/// The status message followed by its chain of causes (`transport error: connection closed`).
fn describe(status: &Status) -> String {
    let mut out = status.message().to_string();
    for e in std::iter::successors(std::error::Error::source(status), |e| e.source()) {
        let cause = e.to_string();
        if !out.contains(&cause) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&cause);
        }
    }
    out
}

fn code_label(code: Code) -> String {
    let s = format!("{code:?}");
    // `DeadlineExceeded` → `deadline_exceeded`.
    let mut out = String::with_capacity(s.len() + 4);
    for (i, ch) in s.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// `google.rpc.Status`, as carried in the `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// The status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    /// Type URL, e.g. `type.googleapis.com/google.rpc.RetryInfo`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// Encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// How long to wait.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    /// Seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The delay in a `google.rpc.RetryInfo` detail, if the status details carry one. Never panics
/// on malformed bytes.
pub fn retry_info(details: &[u8]) -> Option<Duration> {
    use prost::Message;
    if details.is_empty() {
        return None;
    }
    let st = RpcStatus::decode(details).ok()?;
    st.details.iter().filter(|a| a.type_url.ends_with("google.rpc.RetryInfo")).find_map(|a| {
        let d = RetryInfo::decode(a.value.as_slice()).ok()?.retry_delay?;
        let secs = u64::try_from(d.seconds).ok()?;
        let nanos = u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000).unwrap_or(0);
        Some(Duration::new(secs, nanos))
    })
}

/// Encodes a status-details blob with a RetryInfo (for test receivers).
pub fn retry_info_details(delay: Duration) -> Vec<u8> {
    use prost::Message;
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    RpcStatus {
        code: Code::ResourceExhausted as i32,
        message: "slow down".into(),
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let r = classify(&Status::unavailable("down"));
        assert!(
            matches!(r, ExportError::Retryable { ref reason, retry_after: None, .. } if reason == "unavailable")
        );
        assert!(matches!(classify(&Status::resource_exhausted("x")), ExportError::Permanent { .. }));
        let st = Status::with_details(
            Code::ResourceExhausted,
            "x",
            retry_info_details(Duration::from_millis(1500)).into(),
        );
        assert_eq!(
            classify(&st),
            ExportError::Retryable {
                reason: "resource_exhausted".into(),
                retry_after: Some(Duration::from_millis(1500)),
                message: "x".into(),
            }
        );
        assert_eq!(
            classify(&Status::invalid_argument("bad")),
            ExportError::Permanent { reason: "invalid_argument".into(), message: "bad".into() }
        );
        assert!(matches!(classify(&Status::deadline_exceeded("t")), ExportError::Retryable { .. }));
    }

    #[test]
    fn transport_failures_are_retryable_and_real_unknown_or_internal_answers_permanent() {
        let broken = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stream closed");
        let st = Status::from_error(Box::new(broken));
        assert_eq!(st.code(), Code::Unknown);
        assert_eq!(
            classify(&st),
            ExportError::Retryable {
                reason: "transport".into(),
                retry_after: None,
                message: "stream closed".into()
            }
        );
        // What a backend answered in `grpc-status` has no source.
        assert!(
            matches!(classify(&Status::unknown("boom")), ExportError::Permanent { ref reason, ref message } if reason == "unknown" && message == "boom")
        );
        assert!(
            matches!(classify(&Status::internal("bug")), ExportError::Permanent { ref reason, .. } if reason == "internal")
        );
    }

    /// Connects over TCP and counts connections; its readiness fails once when asked to. Tower's
    /// buffer (inside every tonic channel) stops its worker for good on a readiness error: the
    /// "dead channel" the exporter must replace.
    #[derive(Clone, Default)]
    struct BreakableConnector {
        fail_ready: Arc<std::sync::atomic::AtomicBool>,
        connects: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl tower::Service<http::Uri> for BreakableConnector {
        type Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
        type Error = std::io::Error;
        type Future =
            std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>>;

        fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
            use std::sync::atomic::Ordering::SeqCst;
            std::task::Poll::Ready(match self.fail_ready.swap(false, SeqCst) {
                true => Err(std::io::Error::other("connector broke")),
                false => Ok(()),
            })
        }

        fn call(&mut self, uri: http::Uri) -> Self::Future {
            self.connects.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                let addr = format!("{}:{}", uri.host().unwrap_or_default(), uri.port_u16().unwrap_or(80));
                Ok(hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await?))
            })
        }
    }

    struct AcceptAll;

    #[tonic::async_trait]
    impl opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService for AcceptAll {
        async fn export(
            &self,
            _: tonic::Request<opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest>,
        ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
            Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
        }
    }

    #[tokio::test]
    async fn a_channel_whose_worker_stopped_is_replaced() {
        use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsServiceServer;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(LogsServiceServer::new(AcceptAll))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let cfg = crate::exporter::config::ExportConfig { endpoint: Some(url), ..Default::default() };
        let conn = BreakableConnector::default();
        let exporter = GrpcExporter::build(&cfg.target(crate::exporter::config::Signal::Logs), {
            let conn = conn.clone();
            move |ep| ep.connect_with_connector_lazy(conn.clone())
        })
        .unwrap();
        let payload = Payload::Logs(Default::default());
        let unavailable = |r: Result<Accepted, ExportError>| matches!(r, Err(ExportError::Retryable { ref reason, .. }) if reason == "unavailable");
        // The connector fails its readiness once: the first call gets the error and the
        // channel's worker stops; the next attempt finds the channel not ready. Both are
        // retryable, and the second replaces the channel...
        conn.fail_ready.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(unavailable(exporter.export(&payload).await));
        assert!(unavailable(exporter.export(&payload).await));
        assert_eq!(conn.connects.load(std::sync::atomic::Ordering::SeqCst), 0);
        // ...so the one after goes out, over a new connection (the old channel would answer
        // "not ready" for ever).
        assert_eq!(exporter.export(&payload).await, Ok(Accepted::default()));
        assert_eq!(conn.connects.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_info_never_panics_on_garbage() {
        assert_eq!(retry_info(b"\xff\xff\xff"), None);
        assert_eq!(retry_info(&[0x1a, 0x02, 0x0a]), None);
    }
}
