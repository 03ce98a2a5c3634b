//! Issue 14, item 1: an OTLP/gRPC backend that accepts connections and then closes them,
//! resets them or answers bytes that are not HTTP/2 (what a TCP load balancer with no live
//! servers does). The real server (in process, loopback) exports to such a backend for a few
//! seconds, then a working receiver takes the same port: every delivery answered 200 arrives,
//! and nothing is counted as dropped.

mod otlp_support;
mod support;

use mist_otel::app::{self, Config, Running};
use mist_otel::exporter::config::{ExporterKind, Protocol};
use mist_otel::secret::Secret;
use otlp_support::{Receiver, assert_complete_and_identical, free_port, has_all, numbered_body, ts_ns};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{client, signed_post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "faults-export-secret";

/// How the broken backend treats each connection.
#[derive(Debug, Clone, Copy)]
enum Broken {
    /// Accepts and closes at once.
    Close,
    /// Accepts and resets (RST).
    Reset,
    /// Accepts, answers bytes that are not HTTP/2, and closes.
    Garbage,
    /// Reads the request, then resets the connection.
    ResetAfterRequest,
    /// Reads the request, then answers HTTP/2 GOAWAY with PROTOCOL_ERROR.
    GoAway,
}

/// Serves `mode` on `addr` until the task is aborted (which closes the listener).
async fn broken_backend(addr: SocketAddr, mode: Broken) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            match mode {
                Broken::Close => drop(conn),
                Broken::Reset => {
                    let _ = conn.set_zero_linger();
                    drop(conn);
                }
                Broken::Garbage => {
                    let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\nno").await;
                    let _ = conn.shutdown().await;
                }
                Broken::ResetAfterRequest | Broken::GoAway => {
                    let mut buf = [0u8; 4096];
                    let _ = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await;
                    if matches!(mode, Broken::GoAway) {
                        // An empty SETTINGS, then GOAWAY(last stream 0, PROTOCOL_ERROR).
                        let frames =
                            [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
                        let _ = conn.write_all(&frames).await;
                        let _ = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await;
                    }
                    let _ = conn.set_zero_linger();
                    drop(conn);
                }
            }
        }
    })
}

fn config(data: &std::path::Path, endpoint: String) -> Config {
    let mut c = Config { data_dir: data.to_owned(), ..Config::default() };
    c.ingest.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.secrets = vec![Secret::new(SECRET)];
    c.export.exporter = ExporterKind::Otlp;
    c.export.protocol = Protocol::Grpc;
    c.export.endpoint = Some(endpoint);
    c.export.timeout = Duration::from_secs(3);
    c.export.batch.logs_delay = Duration::from_millis(100);
    c.export.batch.spans_delay = Duration::from_millis(100);
    c.export.metric_interval = Duration::from_millis(300);
    c.export.retry.initial = Duration::from_millis(100);
    c.export.retry.max = Duration::from_millis(500);
    c.export.shutdown_timeout = Duration::from_secs(2);
    c
}

async fn metrics(r: &Running) -> String {
    let url = format!("http://{}/metrics", r.admin_addr);
    client().get(url).send().await.unwrap().text().await.unwrap()
}

/// Sum of the values of every series whose line starts with `prefix`.
fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Posts deliveries `first..first+count` of `per` events; asserts each is answered 200.
async fn send(r: &Running, base: u64, first: u64, count: u64, per: u64) -> Vec<u64> {
    let c = client();
    let url = format!("http://{}/mist/webhook", r.webhook_addr);
    for d in first..first + count {
        let body = numbered_body("device-events", base, d * per, per);
        let status = signed_post(&c, &url, SECRET, body).send().await.unwrap().status();
        assert_eq!(status, 200);
    }
    (first * per..(first + count) * per).map(|i| ts_ns(base, i)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_backend_that_closes_resets_or_answers_garbage_loses_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let grpc = free_port();
    let dir = tempfile::tempdir().unwrap();
    let r = app::start(config(dir.path(), format!("http://{grpc}"))).await.expect("server starts");
    let base = 1_714_000_000;
    let mut expected = Vec::new();
    let mut next = 0;
    for mode in [Broken::Close, Broken::Reset, Broken::Garbage, Broken::ResetAfterRequest, Broken::GoAway] {
        let backend = broken_backend(grpc, mode).await;
        expected.extend(send(&r, base, next, 4, 5).await);
        next += 4;
        // Long enough for several attempts against the broken backend.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        backend.abort();
        let _ = backend.await;
        let m = metrics(&r).await;
        let dropped = metric_sum(&m, "mist_otel_export_dropped_items_total{");
        assert_eq!(dropped, 0.0, "{mode:?}: acknowledged deliveries dropped:\n{m}");
        assert!(metric_sum(&m, "mist_otel_export_retries_total{") >= 1.0, "{mode:?}: no retry:\n{m}");
    }
    // A working receiver on the same port: everything answered 200 arrives.
    let rx = tokio::task::spawn_blocking(move || Receiver::start_on(grpc, free_port())).await.unwrap();
    let up = Instant::now();
    let deadline = up + Duration::from_secs(20);
    while !rx.with(|rec| has_all(rec, &expected)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rx.with(|rec| assert_complete_and_identical(rec, &expected));
    eprintln!("all {} events arrived {:?} after the receiver came up", expected.len(), up.elapsed());
    let m = metrics(&r).await;
    assert_eq!(metric_sum(&m, "mist_otel_export_dropped_items_total{"), 0.0, "{m}");
    r.shutdown().await;
    tokio::task::spawn_blocking(move || drop(rx)).await.unwrap();
}
