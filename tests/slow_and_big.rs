//! Memory and connection slots before authentication, over the wire on loopback: big unsigned
//! bodies held open (the real binary, its RSS read from /proc), connections dripping a byte at a
//! time from one source while another delivers, and a body slower than the minimum rate.

mod support;

use mist_otel::app::{self, Config, Running};
use mist_otel::secret::Secret;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{ServerProcess, env, read_until_closed, sign};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const SECRET: &str = "slow-and-big-secret";
const BODY: &[u8] = br#"{"topic":"alarms","events":[{"type":"ap_down","timestamp":1700000000.25}]}"#;
const MIB: usize = 1024 * 1024;

/// A connection from `local` (a loopback address) to `addr`.
async fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{local}:0").parse().unwrap()).unwrap();
    s.connect(addr).await.unwrap()
}

/// Reads what the server answers until it closes or `limit` passes; (text, closed in time).
async fn read_answer(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let (got, closed) = read_until_closed(s, limit).await;
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// One valid delivery from `local` on a fresh connection; its status line.
async fn deliver_from(local: &str, addr: SocketAddr) -> String {
    let mut s = connect_from(local, addr).await;
    let head = format!(
        "POST /mist/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Mist-Signature-v2: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sign(SECRET, BODY),
        BODY.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(BODY).await.unwrap();
    let (answer, _) = read_answer(&mut s, Duration::from_secs(5)).await;
    answer.lines().next().unwrap_or_default().to_owned()
}

/// `VmHWM` (peak resident set) of a process, in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc status");
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Declares a 4 MiB body and sends `send` bytes of it, unsigned; then waits for the answer.
async fn big_unsigned(addr: SocketAddr, send: usize) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /mist/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        4 * MIB
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    // Bounded: a refused request is not read, so its socket may stop taking bytes.
    let _ = tokio::time::timeout(Duration::from_secs(4), async {
        for _ in 0..send / chunk.len() {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
    })
    .await;
    let (answer, _) = read_answer(&mut s, Duration::from_secs(2)).await;
    answer
}

/// The real binary with `ingest.max_pending_body_bytes: budget`.
fn with_budget(dir: &std::path::Path, budget: usize) -> ServerProcess {
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, format!("ingest:\n  max_pending_body_bytes: {budget}\n")).unwrap();
    ServerProcess::start(dir, &env(&[("MIST_WEBHOOK_SECRET", SECRET)]), &["--config", cfg.to_str().unwrap()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_bodies_share_a_bounded_memory_budget() {
    const BUDGET: usize = 18 * MIB;
    let dir = tempfile::tempdir().unwrap();
    // 18 MiB: four 4 MiB bodies fit, and 2 MiB stay free for small deliveries.
    let server = with_budget(dir.path(), BUDGET);
    let addr = server.webhook;
    let before = peak_rss(server.pid());
    let started = Instant::now();
    let senders: Vec<_> = (0..60).map(|_| tokio::spawn(big_unsigned(addr, 2 * MIB))).collect();
    // While they hold their connections, a small valid delivery from another source is served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let valid = deliver_from("127.0.0.2", addr).await;
    let mut refused = 0;
    for s in senders {
        let answer = s.await.unwrap();
        if answer.starts_with("HTTP/1.1 503") && answer.to_ascii_lowercase().contains("retry-after:") {
            refused += 1;
        }
    }
    let grown = peak_rss(server.pid()).saturating_sub(before);
    println!("peak RSS grew by {} MiB for 60 × 2 MiB unsigned bodies", grown / MIB);
    assert!(grown < BUDGET + 32 * MIB, "peak RSS grew by {} MiB (budget {} MiB)", grown / MIB, BUDGET / MIB);
    assert!(refused >= 50, "only {refused} of 60 over-budget requests were answered 503 + Retry-After");
    assert!(valid.starts_with("HTTP/1.1 200"), "valid delivery answered {valid:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

fn config(data: &std::path::Path) -> Config {
    let mut c = Config { data_dir: data.to_owned(), ..Config::default() };
    c.ingest.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.secrets = vec![Secret::new(SECRET)];
    c.ingest.body_timeout = Duration::from_secs(15);
    c
}

async fn start(c: Config) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    app::start(c).await.expect("server starts")
}

/// Opens a connection from 127.0.0.1 that declares a 100-byte body and sends one byte of it.
async fn dripping(addr: SocketAddr) -> TcpStream {
    let mut s = connect_from("127.0.0.1", addr).await;
    let head = "POST /mist/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_dripping_cannot_take_every_connection_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.ingest.max_connections = 48;
    c.ingest.max_connections_per_source = 32;
    let r = start(c).await;
    let addr = r.webhook_addr;
    let mut drips = Vec::new();
    for _ in 0..70 {
        drips.push(dripping(addr).await);
    }
    let t = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(2), deliver_from("127.0.0.2", addr)).await;
    let waited = t.elapsed();
    println!("delivery from 127.0.0.2 answered after {waited:?} behind 70 dripping connections");
    assert!(
        matches!(&status, Ok(s) if s.starts_with("HTTP/1.1 200")),
        "delivery from another source not answered 200 within 2 s: {status:?}"
    );
    // The connections over the per-source cap were closed at accept, without an answer.
    let mut closed = 0;
    for s in drips.iter_mut() {
        let (answer, eof) = read_answer(s, Duration::from_millis(20)).await;
        if eof && answer.is_empty() {
            closed += 1;
        }
    }
    assert!(closed >= 70 - 32, "only {closed} of the 38 connections over the per-source cap were closed");
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_slower_than_the_minimum_rate_is_answered_408_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.ingest.body_rate_grace = Duration::from_secs(1);
    let r = start(c).await;
    let mut s = dripping(r.webhook_addr).await;
    let t = Instant::now();
    let answer = loop {
        // One byte every 200 ms: 5 bytes/s, far under the default 1024.
        let _ = s.write_all(b" ").await;
        let (answer, _) = read_answer(&mut s, Duration::from_millis(200)).await;
        if !answer.is_empty() || t.elapsed() > Duration::from_secs(16) {
            break answer;
        }
    };
    let waited = t.elapsed();
    println!("dripping body answered after {waited:?}: {:?}", answer.lines().next());
    assert!(answer.starts_with("HTTP/1.1 408"), "dripping body answered {answer:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "dripping body answered after {waited:?}, expected just after the 1 s grace"
    );
    assert_eq!(deliver_from("127.0.0.1", r.webhook_addr).await, "HTTP/1.1 200 OK");
    r.shutdown().await;
}

/// Declares a 4 MiB body on one HTTP/2 stream, sends 1 MiB of it, then nothing more.
fn stalled_body() -> impl hyper::body::Body<Data = bytes::Bytes, Error = std::convert::Infallible> {
    use futures_util::StreamExt;
    let chunks = (0..16).map(|_| Ok(hyper::body::Frame::data(bytes::Bytes::from(vec![b' '; 64 * 1024]))));
    http_body_util::StreamBody::new(futures_util::stream::iter(chunks).chain(futures_util::stream::pending()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_http2_connection_cannot_hold_more_than_the_budget() {
    const BUDGET: usize = 18 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let server = with_budget(dir.path(), BUDGET);
    let before = peak_rss(server.pid());
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(server.webhook).await.unwrap());
    let (sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    let streams: Vec<_> = (0..100)
        .map(|_| {
            let mut sender = sender.clone();
            tokio::spawn(async move {
                let req = hyper::Request::post("http://x/mist/webhook")
                    .header("content-length", 4 * MIB)
                    .body(stalled_body())
                    .unwrap();
                // Streams wait for one of the 16 stream slots; under a loaded machine that takes a while.
                let answer = tokio::time::timeout(Duration::from_secs(10), async {
                    sender.ready().await.ok()?;
                    sender.send_request(req).await.ok()
                })
                .await;
                answer.ok().flatten().map(|r| r.status().as_u16())
            })
        })
        .collect();
    let mut refused = 0;
    for s in streams {
        if s.await.unwrap() == Some(503) {
            refused += 1;
        }
    }
    let grown = peak_rss(server.pid()).saturating_sub(before);
    println!("peak RSS grew by {} MiB for 100 HTTP/2 streams of 1 MiB unsigned", grown / MIB);
    assert!(grown < BUDGET + 32 * MIB, "peak RSS grew by {} MiB (budget {} MiB)", grown / MIB, BUDGET / MIB);
    // 96 are over budget; on a loaded 2-core machine some may not get a stream slot within the
    // wait, so the bound leaves room (the RSS bound above is the point of the test).
    assert!(refused >= 50, "only {refused} of 100 over-budget streams were answered 503");
}
