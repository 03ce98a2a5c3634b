//! Load generator and reference servers for `bench/load.sh` (loopback only, bounded in time).
//!
//! - `loadgen run`: signs real Mist webhook bodies and drives N keep-alive HTTP/1.1 connections
//!   for a fixed time, closed-loop (as fast as answers come) or paced (`--rate`); reports
//!   deliveries/s, events/s, p50/p99/max latency, answers by status, and the target process's
//!   CPU time per event and peak RSS (from `/proc/<pid>`).
//! - `loadgen sink`: a minimal OTLP receiver (gRPC and/or HTTP/protobuf) that answers OK and
//!   counts what it got, so the exporter is never the bottleneck.
//! - `loadgen bare`: a bare axum handler answering 200 to any POST after reading the body: the
//!   HTTP stack's own limit on this machine.
//! - `loadgen table`: renders the JSON lines written by `run --out` as a table.
//! - `loadgen ports N` / `loadgen wait ADDR`: helpers for the script.

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "support/samples.rs"]
#[allow(dead_code)] // `samples_dir` serves the other examples
mod samples;

/// Longest run accepted: the benchmark must stop by itself.
const MAX_DURATION_SECS: f64 = 600.0;

#[derive(Parser)]
#[command(name = "loadgen", about = "Load generator and reference servers for bench/load.sh")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Drive load at a webhook URL and report.
    Run(RunArgs),
    /// A fast OTLP receiver that answers OK and counts what it receives.
    Sink {
        /// gRPC listen address.
        #[arg(long)]
        grpc: Option<SocketAddr>,
        /// HTTP/protobuf listen address.
        #[arg(long)]
        http: Option<SocketAddr>,
    },
    /// A bare axum handler answering 200 to any POST.
    Bare {
        /// Listen address.
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Prints a table of the JSON result lines in these files.
    Table { files: Vec<PathBuf> },
    /// Prints N free loopback ports, one a line.
    Ports { n: usize },
    /// Waits (at most 30 s) until ADDR accepts TCP connections.
    Wait { addr: SocketAddr },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Webhook URL, `http://127.0.0.1:PORT/path` (loopback only).
    #[arg(long)]
    url: String,
    /// Secret used to sign every body (X-Mist-Signature-v2).
    #[arg(long, env = "MIST_WEBHOOK_SECRET")]
    secret: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Total deliveries per second, paced evenly over the connections; unpaced when absent.
    /// Latency is then measured from each request's scheduled time (no coordinated omission).
    #[arg(long)]
    rate: Option<f64>,
    /// Directories of webhook bodies (`*.json`, not recursive).
    #[arg(long = "samples", required = true)]
    samples: Vec<PathBuf>,
    /// Process whose CPU time and peak RSS to report (the server under test).
    #[arg(long)]
    pid: Option<u32>,
    /// Name of this configuration in the report.
    #[arg(long, default_value = "target")]
    label: String,
    /// Appends the result as one JSON line to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One signed delivery, ready to send.
struct Sample {
    body: Bytes,
    signature: String,
    events: u64,
}

/// The result of one `run`.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    label: String,
    connections: usize,
    rate: Option<f64>,
    seconds: f64,
    deliveries_per_s: f64,
    events_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    statuses: BTreeMap<String, u64>,
    cpu_us_per_event: Option<f64>,
    cpu_cores: Option<f64>,
    peak_rss_mib: Option<f64>,
    loadgen_cpu_cores: f64,
    samples: usize,
}

#[derive(Default)]
struct WorkerStats {
    ok: u64,
    events: u64,
    latencies_us: Vec<u32>,
    statuses: BTreeMap<String, u64>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.cmd {
        Cmd::Run(a) => rt.block_on(run(a)),
        Cmd::Sink { grpc, http } => rt.block_on(sink(grpc, http)),
        Cmd::Bare { listen } => rt.block_on(bare(listen)),
        Cmd::Table { files } => table(&files),
        Cmd::Ports { n } => {
            // Bind all first so the N ports differ; the OS will not reuse them at once.
            let ls: Vec<_> =
                (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
            for l in ls {
                println!("{}", l.local_addr()?.port());
            }
            Ok(())
        }
        Cmd::Wait { addr } => {
            let start = Instant::now();
            while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                anyhow::ensure!(start.elapsed() < Duration::from_secs(30), "{addr} is not listening");
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        }
    }
}

fn load_samples(dirs: &[PathBuf], secret: &str) -> anyhow::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for dir in dirs {
        for p in samples::json_files(dir) {
            let body = std::fs::read(&p)?;
            // Only bodies the server accepts: a benchmark of 400s would measure nothing useful.
            let Ok(env) = mist_otel::mist::envelope::Envelope::parse(&body) else { continue };
            let signature = mist_otel::ingest::signature::sign_v2(secret, &body);
            out.push(Sample { body: body.into(), signature, events: env.events.len() as u64 });
        }
    }
    anyhow::ensure!(!out.is_empty(), "no webhook bodies found in {dirs:?}");
    Ok(out)
}

async fn run(a: RunArgs) -> anyhow::Result<()> {
    let uri: http::Uri = a.url.parse()?;
    let authority = uri.authority().ok_or_else(|| anyhow::anyhow!("URL needs host:port"))?.clone();
    let addr: SocketAddr = authority.as_str().parse()?;
    anyhow::ensure!(addr.ip().is_loopback(), "loopback targets only");
    anyhow::ensure!(a.duration > 0.0 && a.duration + a.warmup <= MAX_DURATION_SECS, "duration out of range");
    anyhow::ensure!(a.connections > 0 && a.connections <= 4096, "connections out of range");
    let samples = Arc::new(load_samples(&a.samples, &a.secret)?);
    let path = uri.path().to_owned();
    let interval = a.rate.map(|r| Duration::from_secs_f64(a.connections as f64 / r.max(0.001)));

    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let end = measure_from + Duration::from_secs_f64(a.duration);

    let cpu_before = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        (a.pid.and_then(proc_cpu_ticks), proc_cpu_ticks(std::process::id()))
    });
    let mut workers = Vec::new();
    for id in 0..a.connections {
        let samples = samples.clone();
        let path = path.clone();
        let host = authority.to_string();
        let offset = interval.map(|i| i.mul_f64(id as f64 / a.connections as f64)).unwrap_or_default();
        workers.push(tokio::spawn(async move {
            worker(id, addr, host, path, samples, start + offset, measure_from, end, interval).await
        }));
    }
    let mut total = WorkerStats::default();
    for w in workers {
        let s = w.await?;
        total.ok += s.ok;
        total.events += s.events;
        total.latencies_us.extend(s.latencies_us);
        for (k, v) in s.statuses {
            *total.statuses.entry(k).or_default() += v;
        }
    }
    let (target_before, self_before) = cpu_before.await?;
    let (target_after, self_after) = (a.pid.and_then(proc_cpu_ticks), proc_cpu_ticks(std::process::id()));
    let tck = clock_ticks();
    total.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        let v = &total.latencies_us;
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i] as f64 / 1000.0
    };
    let cpu_secs = match (target_before, target_after) {
        (Some(b), Some(e)) => Some((e - b) as f64 / tck),
        _ => None,
    };
    let report = Report {
        label: a.label,
        connections: a.connections,
        rate: a.rate,
        seconds: a.duration,
        deliveries_per_s: total.ok as f64 / a.duration,
        events_per_s: total.events as f64 / a.duration,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        statuses: total.statuses,
        cpu_us_per_event: cpu_secs.filter(|_| total.events > 0).map(|s| s * 1e6 / total.events as f64),
        cpu_cores: cpu_secs.map(|s| s / a.duration),
        peak_rss_mib: a.pid.and_then(peak_rss_kib).map(|k| k as f64 / 1024.0),
        loadgen_cpu_cores: match (self_before, self_after) {
            (Some(b), Some(e)) => (e - b) as f64 / tck / a.duration,
            _ => 0.0,
        },
        samples: samples.len(),
    };
    let line = serde_json::to_string(&report)?;
    println!("{line}");
    if let Some(out) = a.out {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(out)?;
        writeln!(f, "{line}")?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    id: usize,
    addr: SocketAddr,
    host: String,
    path: String,
    samples: Arc<Vec<Sample>>,
    first: Instant,
    measure_from: Instant,
    end: Instant,
    interval: Option<Duration>,
) -> WorkerStats {
    let mut st = WorkerStats::default();
    let mut next = first;
    let mut k = id;
    tokio::time::sleep_until(first.into()).await;
    'connect: while Instant::now() < end {
        let stream = match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(_) => {
                *st.statuses.entry("connect_error".into()).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
            continue;
        };
        tokio::spawn(conn);
        loop {
            if interval.is_some() {
                if next >= end {
                    break 'connect;
                }
                tokio::time::sleep_until(next.into()).await;
            }
            let now = Instant::now();
            if now >= end {
                break 'connect;
            }
            // Paced: measure from the schedule, so a slow answer also delays (and counts against)
            // the requests queued behind it.
            let t0 = if interval.is_some() { next } else { now };
            if let Some(i) = interval {
                next += i;
            }
            let s = &samples[k % samples.len()];
            k += 1;
            let req = http::Request::post(path.as_str())
                .header(http::header::HOST, host.as_str())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header("x-mist-signature-v2", s.signature.as_str())
                .body(Full::new(s.body.clone()))
                .expect("valid request");
            if sender.ready().await.is_err() {
                continue 'connect;
            }
            let res = match sender.send_request(req).await {
                Ok(r) => {
                    let status = r.status();
                    match r.into_body().collect().await {
                        Ok(_) => Ok(status),
                        Err(_) => Err(()),
                    }
                }
                Err(_) => Err(()),
            };
            let t1 = Instant::now();
            if t1 < measure_from || t1 >= end {
                if res.is_err() {
                    continue 'connect;
                }
                continue;
            }
            match res {
                Ok(status) => {
                    *st.statuses.entry(status.as_u16().to_string()).or_default() += 1;
                    st.latencies_us.push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
                    if status.is_success() {
                        st.ok += 1;
                        st.events += s.events;
                    }
                }
                Err(()) => {
                    *st.statuses.entry("io_error".into()).or_default() += 1;
                    continue 'connect;
                }
            }
        }
    }
    st
}

/// utime + stime of a process, in clock ticks.
fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// VmHWM (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// What the sink received.
#[derive(Default)]
struct SinkCounts {
    requests: AtomicU64,
    log_records: AtomicU64,
    spans: AtomicU64,
    metric_points: AtomicU64,
}

#[derive(Clone, Default)]
struct Sink(Arc<SinkCounts>);

impl Sink {
    fn logs(&self, r: &ExportLogsServiceRequest) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        let n: usize =
            r.resource_logs.iter().flat_map(|rl| &rl.scope_logs).map(|sl| sl.log_records.len()).sum();
        self.0.log_records.fetch_add(n as u64, Ordering::Relaxed);
    }
    fn traces(&self, r: &ExportTraceServiceRequest) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        let n: usize = r.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum();
        self.0.spans.fetch_add(n as u64, Ordering::Relaxed);
    }
    fn metrics(&self, r: &ExportMetricsServiceRequest) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        let n: usize =
            r.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).map(|sm| sm.metrics.len()).sum();
        self.0.metric_points.fetch_add(n as u64, Ordering::Relaxed);
    }
    fn summary(&self) -> String {
        let c = &self.0;
        format!(
            "sink: requests={} log_records={} spans={} metrics={}",
            c.requests.load(Ordering::Relaxed),
            c.log_records.load(Ordering::Relaxed),
            c.spans.load(Ordering::Relaxed),
            c.metric_points.load(Ordering::Relaxed)
        )
    }
}

/// Implements one OTLP gRPC service for [`Sink`]: the request tallied by `$count`, an empty
/// answer.
macro_rules! sink_service {
    ($service:ident, $req:ty, $resp:ty, $count:ident) => {
        #[tonic::async_trait]
        impl $service for Sink {
            async fn export(&self, r: tonic::Request<$req>) -> Result<tonic::Response<$resp>, tonic::Status> {
                self.$count(r.get_ref());
                Ok(tonic::Response::new(<$resp>::default()))
            }
        }
    };
}

sink_service!(LogsService, ExportLogsServiceRequest, ExportLogsServiceResponse, logs);
sink_service!(TraceService, ExportTraceServiceRequest, ExportTraceServiceResponse, traces);
sink_service!(MetricsService, ExportMetricsServiceRequest, ExportMetricsServiceResponse, metrics);

async fn sink(grpc: Option<SocketAddr>, http: Option<SocketAddr>) -> anyhow::Result<()> {
    anyhow::ensure!(grpc.is_some() || http.is_some(), "give --grpc and/or --http");
    let sink = Sink::default();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = grpc {
        let s = sink.clone();
        let svc = tonic::transport::Server::builder()
            .add_service(
                LogsServiceServer::new(s.clone()).accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .add_service(
                TraceServiceServer::new(s.clone()).accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .add_service(
                MetricsServiceServer::new(s).accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            );
        tasks.spawn(async move { svc.serve(addr).await.map_err(anyhow::Error::from) });
    }
    if let Some(addr) = http {
        let app = http_sink_router(sink.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        tasks.spawn(async move { axum::serve(listener, app).await.map_err(anyhow::Error::from) });
    }
    println!("sink listening grpc={grpc:?} http={http:?}");
    tokio::select! {
        _ = shutdown_signal() => {}
        Some(r) = tasks.join_next() => r??,
    }
    println!("{}", sink.summary());
    Ok(())
}

fn http_sink_router(sink: Sink) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::routing::post;
    fn decode<M: Message + Default>(headers: &HeaderMap, body: &[u8]) -> Option<M> {
        let gz = headers.get(header::CONTENT_ENCODING).is_some_and(|v| v == "gzip");
        if gz {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut raw).ok()?;
            M::decode(raw.as_slice()).ok()
        } else {
            M::decode(body).ok()
        }
    }
    fn answer<M: Message>(m: M) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], m.encode_to_vec())
    }
    /// A route that decodes `Req`, has `count` tally it and answers an empty `Resp`.
    fn export<Req: Message + Default + 'static, Resp: Message + Default>(
        sink: Sink,
        count: fn(&Sink, &Req),
    ) -> axum::routing::MethodRouter {
        post(move |h: HeaderMap, b: Bytes| async move {
            match decode::<Req>(&h, &b) {
                Some(r) => {
                    count(&sink, &r);
                    Ok(answer(Resp::default()))
                }
                None => Err(StatusCode::BAD_REQUEST),
            }
        })
    }
    axum::Router::new()
        .route("/v1/logs", export::<_, ExportLogsServiceResponse>(sink.clone(), Sink::logs))
        .route("/v1/traces", export::<_, ExportTraceServiceResponse>(sink.clone(), Sink::traces))
        .route("/v1/metrics", export::<_, ExportMetricsServiceResponse>(sink, Sink::metrics))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
}

async fn bare(listen: SocketAddr) -> anyhow::Result<()> {
    // Reads the whole body (as the real handler must) and answers a small JSON, like mist-otel.
    let app = axum::Router::new()
        .fallback(axum::routing::post(|body: Bytes| async move {
            let n = body.len();
            (
                axum::http::StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                format!("{{\"status\":\"accepted\",\"bytes\":{n}}}"),
            )
        }))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("bare listening on {}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn table(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(f)?.lines().filter(|l| !l.trim().is_empty()) {
            rows.push(serde_json::from_str::<Report>(line)?);
        }
    }
    println!(
        "| {:<22} | {:>5} | {:>7} | {:>10} | {:>10} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>9} | {:>8} | {:<24} |",
        "config",
        "conns",
        "rate",
        "deliv/s",
        "events/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "CPU µs/ev",
        "cores",
        "RSS MiB",
        "lg cores",
        "answers"
    );
    println!("|{}|", ["-"; 13].map(|_| "---").join("|"));
    for r in &rows {
        let answers: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        println!(
            "| {:<22} | {:>5} | {:>7} | {:>10.0} | {:>10.0} | {:>8.2} | {:>8.2} | {:>8.2} | {:>8} | {:>8} | {:>9} | {:>8.2} | {:<24} |",
            r.label,
            r.connections,
            r.rate.map(|x| format!("{x:.0}")).unwrap_or_else(|| "max".into()),
            r.deliveries_per_s,
            r.events_per_s,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.cpu_us_per_event.map(|x| format!("{x:.1}")).unwrap_or_default(),
            r.cpu_cores.map(|x| format!("{x:.2}")).unwrap_or_default(),
            r.peak_rss_mib.map(|x| format!("{x:.1}")).unwrap_or_default(),
            r.loadgen_cpu_cores,
            answers.join(" ")
        );
    }
    // The headline figure: mist-otel's full-speed throughput over the bare handler's, per run
    // and of each other configuration (rows are paired in order: the n-th unpaced "bare" with
    // the n-th unpaced row of that label).
    println!();
    let full = |label: &str| -> Vec<f64> {
        rows.iter().filter(|r| r.label == label && r.rate.is_none()).map(|r| r.deliveries_per_s).collect()
    };
    let bare = full("bare");
    let mut labels: Vec<&str> = Vec::new();
    for r in &rows {
        if r.label != "bare" && !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    for label in labels {
        let ratios: Vec<f64> =
            full(label).iter().zip(&bare).filter(|(_, b)| **b > 0.0).map(|(a, b)| a / b).collect();
        if ratios.is_empty() {
            continue;
        }
        let min = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().cloned().fold(0.0, f64::max);
        let list: Vec<String> = ratios.iter().map(|r| format!("{:.0}%", r * 100.0)).collect();
        println!(
            "ratio {label}/bare (deliveries/s, per run): {} (range {:.0}%–{:.0}%, target ≥ 75%)",
            list.join(", "),
            min * 100.0,
            max * 100.0
        );
    }
    Ok(())
}
