//! The poller never holds the server hostage (issue 14, items 15 and 16): shutdown finishes
//! promptly while the poller waits out a long 429, and start-up does not wait on a Mist that
//! accepts and never answers, while a token Mist refuses still fails the start loudly.
//! In process, over loopback, against the fake Mist.

mod fake_mist;
mod support;

use fake_mist::{FakeMist, TOKEN, site, site_id};
use mist_otel::app::{self, Config, Running};
use mist_otel::exporter::config::ExporterKind;
use mist_otel::secret::Secret;
use std::time::{Duration, Instant};

fn config(data: &std::path::Path, fake: &FakeMist) -> Config {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut c = Config { data_dir: data.to_owned(), ..Config::default() };
    c.ingest.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.secrets = vec![Secret::new("lifecycle-test-secret")];
    c.export.exporter = ExporterKind::Debug;
    c.poller.enabled = true;
    c.poller.token = Secret::new(TOKEN);
    c.poller.cloud = fake.base();
    c.poller.request_timeout = Duration::from_secs(2);
    c.poller.stream.backoff_min = Duration::from_millis(50);
    c.poller.stream.backoff_max = Duration::from_millis(400);
    c
}

/// Polls `cond` every 25 ms until it holds or `within` passes.
async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn healthz(r: &Running) -> reqwest::StatusCode {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    c.get(format!("http://{}/healthz", r.admin_addr)).send().await.expect("/healthz answers").status()
}

/// A fake Mist answering every org call 429 + `Retry-After: retry_after` (`/self` answers).
async fn throttled_fake(retry_after: u32) -> FakeMist {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    fake.with(|i| {
        i.throttled_paths = vec!["/api/v1/orgs/".into()];
        i.retry_after = retry_after;
    });
    fake
}

/// Starts the server with every org call answered 429 + `Retry-After: retry_after`, waits until
/// the poller saw one, then times `shutdown`.
async fn shutdown_during_429(retry_after: u32) -> Duration {
    let fake = throttled_fake(retry_after).await;
    let dir = tempfile::tempdir().unwrap();
    let running = app::start(config(dir.path(), &fake)).await.expect("server starts");
    eventually("a 429 from Mist", Duration::from_secs(5), || fake.with(|i| i.rate_limited_answers > 0)).await;
    // Let the poller settle into its wait (Retry-After sleep or paused budget).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(healthz(&running).await, reqwest::StatusCode::OK);
    let started = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(10), running.shutdown()).await;
    let took = started.elapsed();
    assert!(
        stopped.is_ok(),
        "shutdown did not finish within 10 s while the poller waited out a {retry_after} s 429"
    );
    eprintln!("shutdown during a Retry-After: {retry_after} wait took {took:?}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_while_the_poller_waits_out_retry_after_600() {
    let took = shutdown_during_429(600).await;
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_while_the_poller_sleeps_through_retry_after_25() {
    let took = shutdown_during_429(25).await;
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_and_flushes_while_the_poller_waits_out_retry_after_600() {
    let fake = throttled_fake(600).await;
    let dir = tempfile::tempdir().unwrap();
    let env = support::env(&[
        ("MIST_WEBHOOK_SECRET", "webhook-secret"),
        ("MIST_API_TOKEN", TOKEN),
        ("MIST_CLOUD", &fake.base()),
        ("MIST_OTEL_EXPORTER", "debug"),
        ("MIST_OTEL__POLLER__ENABLED", "true"),
    ]);
    let data = dir.path().join("data");
    let mut server =
        tokio::task::spawn_blocking(move || support::ServerProcess::start(&data, &env, &[])).await.unwrap();
    eventually("a 429 from Mist", Duration::from_secs(10), || fake.with(|i| i.rate_limited_answers > 0))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, took, server) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let status = server.terminate(Duration::from_secs(10));
        (status, started.elapsed(), server)
    })
    .await
    .unwrap();
    eprintln!("SIGTERM to exit during a Retry-After: 600 wait took {took:?}");
    let status = status.unwrap_or_else(|| panic!("no exit within 10 s of SIGTERM; logs:\n{}", server.logs()));
    assert!(status.success(), "{status:?}; logs:\n{}", server.logs());
    // "stopped" is logged once the final flush returned.
    assert!(server.logs().contains("\"stopped\""), "the flush never finished; logs:\n{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_does_not_wait_on_a_mist_that_never_answers() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    fake.with(|i| i.self_delay = Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), &fake);
    // A generous per-request timeout: start-up must not be bounded by it.
    cfg.poller.request_timeout = Duration::from_secs(15);
    let started = Instant::now();
    let running = tokio::time::timeout(Duration::from_secs(8), app::start(cfg))
        .await
        .expect("app::start returned within 8 s although /self never answers")
        .expect("server starts");
    let took = started.elapsed();
    eprintln!("app::start with a silent /self took {took:?}");
    assert!(took < Duration::from_secs(5), "start-up waited {took:?} on Mist");
    assert_eq!(healthz(&running).await, reqwest::StatusCode::OK);
    // Once Mist answers, the poller catches up in the background.
    fake.with(|i| i.self_delay = Duration::ZERO);
    let channel = format!("/sites/{}/stats/devices", site_id(1));
    eventually("background org discovery and subscription", Duration::from_secs(25), || {
        fake.subscribed(&channel)
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), running.shutdown()).await.expect("shutdown");
}

/// A loopback port free now (bound and released), for a listener whose address the test must
/// know before `app::start` returns.
fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_serve_at_once_while_mist_is_silent() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    fake.with(|i| i.self_delay = Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), &fake);
    cfg.admin.listen = free_port();
    let healthz = format!("http://{}/healthz", cfg.admin.listen);
    let started = Instant::now();
    let start = tokio::spawn(app::start(cfg));
    // While start-up still waits (at most 3 s) on Mist's /self, the admin listener answers.
    let client = reqwest::Client::new();
    let mut answered = None;
    while started.elapsed() < Duration::from_millis(2_500) {
        if let Ok(r) = client.get(&healthz).timeout(Duration::from_millis(200)).send().await {
            answered = Some((r.status(), started.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, after) = answered.expect("/healthz did not answer while the poller waited on Mist");
    eprintln!("/healthz answered {status} {after:?} after start, /self silent");
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(!start.is_finished() || after < Duration::from_secs(1), "answered only after start-up returned");
    let running = start.await.unwrap().expect("server starts");
    tokio::time::timeout(Duration::from_secs(10), running.shutdown()).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_still_fails_the_start_with_its_reason() {
    let fake = FakeMist::start(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), &fake);
    cfg.poller.token = Secret::new("refused-token-do-not-print");
    let err = tokio::time::timeout(Duration::from_secs(8), app::start(cfg))
        .await
        .expect("an answered 401 is reported at once")
        .err()
        .expect("a refused token fails the start");
    let msg = err.to_string();
    assert!(msg.contains("HTTP 401") && msg.contains("invalid or expired"), "{msg}");
    assert!(!msg.contains("refused-token-do-not-print"), "{msg}");
}
