//! Limits under abuse, over the wire against the real server (in process, loopback, ephemeral
//! ports): idle connections beyond the connection cap, slowloris headers, slow bodies, a flood
//! of bad signatures, and one source flooding while another keeps delivering. Each case checks
//! that valid deliveries keep being answered 200. Every loop is bounded in count and time.

mod support;

use mist_otel::app::{self, Config, Running};
use mist_otel::secret::Secret;
use reqwest::StatusCode;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{client, read_until_closed, sign, signed_post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "abuse-test-secret";
const BODY: &[u8] = br#"{"topic":"alarms","events":[{"type":"ap_down","timestamp":1700000000.25}]}"#;

fn config(data: &std::path::Path) -> Config {
    let mut c = Config { data_dir: data.to_owned(), ..Config::default() };
    c.ingest.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.secrets = vec![Secret::new(SECRET)];
    c
}

async fn start(c: Config) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    app::start(c).await.expect("server starts")
}

fn url(r: &Running) -> String {
    format!("http://{}/mist/webhook", r.webhook_addr)
}

/// One valid delivery on a fresh connection; returns its status.
async fn deliver(r: &Running) -> StatusCode {
    // A new client per call: a fresh connection, not one kept alive from earlier.
    client()
        .post(url(r))
        .header("content-type", "application/json")
        .header("x-mist-signature-v2", sign(SECRET, BODY))
        .body(BODY)
        .send()
        .await
        .expect("valid delivery answered")
        .status()
}

async fn metrics(r: &Running) -> String {
    client().get(format!("http://{}/metrics", r.admin_addr)).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_cap_are_shed_and_deliveries_still_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.ingest.max_connections = 4;
    c.ingest.header_timeout = Duration::from_millis(500);
    let r = start(c).await;

    // Three times the cap of connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(TcpStream::connect(r.webhook_addr).await.unwrap());
    }
    // The cap is full of idle sockets; the header deadline frees the slots, so a valid delivery
    // waiting behind them is served (the client's own 20 s timeout bounds the wait).
    assert_eq!(deliver(&r).await, StatusCode::OK);

    // Every idle connection is eventually closed by the server, those waiting in the backlog
    // included (each gets a slot in turn, then its own header deadline).
    for (i, s) in idle.iter_mut().enumerate() {
        let (_, closed) = read_until_closed(s, Duration::from_secs(15)).await;
        assert!(closed, "idle connection {i} was never closed");
    }
    assert_eq!(deliver(&r).await, StatusCode::OK);
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off_while_deliveries_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.ingest.max_connections = 16;
    c.ingest.header_timeout = Duration::from_millis(700);
    let r = start(c).await;
    let addr = r.webhook_addr;

    // Four senders trickle a header byte every 100 ms, for at most 10 s each.
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(tokio::spawn(async move { slowloris(addr).await }));
    }
    // Meanwhile valid deliveries are answered.
    for _ in 0..5 {
        assert_eq!(deliver(&r).await, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in slow {
        let (sent, cut_off) = s.await.unwrap();
        assert!(cut_off, "a slowloris sender was never cut off (sent {sent} bytes)");
    }
    r.shutdown().await;
}

/// Sends request headers one byte at a time; returns the bytes sent and whether the server cut
/// the connection off (write failed or EOF/answer) before 10 s.
async fn slowloris(addr: SocketAddr) -> (usize, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = b"POST /mist/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Padding: ";
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if s.write_all(&[byte]).await.is_err() {
            return (sent, true);
        }
        sent += 1;
        // Anything the server says (a 408, or EOF) means it gave up on us.
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            let _ = r;
            return (sent, true);
        }
    }
    (sent, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_while_deliveries_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.ingest.body_timeout = Duration::from_millis(800);
    let r = start(c).await;
    let sig = sign(SECRET, BODY);

    let mut slow = Vec::new();
    for _ in 0..4 {
        let addr = r.webhook_addr;
        let sig = sig.clone();
        slow.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /mist/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 X-Mist-Signature-v2: {sig}\r\nContent-Length: {}\r\n\r\n",
                BODY.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            // A tenth of the body, then nothing.
            s.write_all(&BODY[..BODY.len() / 10]).await.unwrap();
            read_until_closed(&mut s, Duration::from_secs(10)).await
        }));
    }
    for _ in 0..5 {
        assert_eq!(deliver(&r).await, StatusCode::OK);
    }
    for s in slow {
        let (answer, _) = s.await.unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "slow body answered: {text:?}");
    }
    assert!(metrics(&r).await.contains(r#"outcome="timeout""#));
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_signatures_does_not_stop_valid_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(config(dir.path())).await;
    const BAD: usize = 1000;
    const SENDERS: usize = 8;

    let flood: Vec<_> = (0..SENDERS)
        .map(|t| {
            let url = url(&r);
            tokio::spawn(async move {
                let c = client();
                let mut unauthorized = 0;
                for i in 0..BAD / SENDERS {
                    // Well-formed but wrong: signed with another secret, so the MAC is computed.
                    let body = format!(r#"{{"topic":"alarms","events":[{{"n":{t}{i}}}]}}"#);
                    let resp = signed_post(&c, &url, "not-the-secret", body).send().await.unwrap();
                    if resp.status() == StatusCode::UNAUTHORIZED {
                        unauthorized += 1;
                    }
                }
                unauthorized
            })
        })
        .collect();
    // Valid deliveries interleaved with the flood, on their own keep-alive connection.
    let good = client();
    let mut ok = 0;
    for _ in 0..50 {
        let resp = signed_post(&good, url(&r), SECRET, BODY).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        ok += 1;
    }
    let mut unauthorized = 0;
    for f in flood {
        unauthorized += f.await.unwrap();
    }
    assert_eq!(ok, 50);
    assert_eq!(unauthorized, BAD);
    let m = metrics(&r).await;
    assert!(
        m.lines().any(|l| l.starts_with("mist_otel_ingest_signature_failures_total")
            && l.contains(r#"reason="mismatch""#)
            && l.ends_with(&format!(" {BAD}"))),
        "{m}"
    );
    assert!(!m.contains(SECRET));
    r.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flooding_source_does_not_limit_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.ingest.rate_limit_per_source = 5;
    let r = start(c).await;

    // Source A (127.0.0.1) sends 40 requests back to back: past its burst it is refused.
    let a = client();
    let mut refused = 0;
    for _ in 0..40 {
        let resp = signed_post(&a, url(&r), SECRET, BODY).send().await.unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(resp.headers()["retry-after"], "1");
            refused += 1;
        } else {
            assert_eq!(resp.status(), StatusCode::OK);
        }
    }
    assert!(refused > 0, "40 back-to-back requests at 5/s were never refused");

    // Source B, another loopback address, has its own bucket: its deliveries all pass while A is
    // still over its limit.
    let b = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for _ in 0..3 {
        let resp = signed_post(&b, url(&r), SECRET, BODY).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    r.shutdown().await;
}
