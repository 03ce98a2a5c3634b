//! What the real binary writes to its log under hostile or verbose conditions: a flood of bad
//! signatures is summarised rather than logged line by line (the counters keep the exact
//! numbers), and `RUST_LOG=trace` never writes the Mist API token.

mod fake_mist;
mod support;

use fake_mist::{FakeMist, TOKEN, site, site_id};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::{ServerProcess, client, env};

const SECRET: &str = "log-flood-test-secret";
const BODY: &str = r#"{"topic":"alarms","events":[{"type":"ap_down","timestamp":1700000000}]}"#;

/// The captured stderr as JSON log lines (other lines are skipped).
fn json_lines(server: &ServerProcess) -> Vec<Value> {
    server.stderr.lock().unwrap().iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

/// Sum of the values of every series whose line starts with `prefix`.
fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Posts `n` deliveries with a wrong signature, 16 at a time; each must be answered 401.
async fn bad_posts(c: &reqwest::Client, url: &str, n: usize) {
    let mut left = n;
    while left > 0 {
        let batch = left.min(16);
        let posts =
            (0..batch).map(|_| c.post(url).header("x-mist-signature-v2", "00".repeat(32)).body(BODY).send());
        for r in futures_util::future::join_all(posts).await {
            assert_eq!(r.expect("answered").status(), 401);
        }
        left -= batch;
    }
}

/// Item 8 of issue 14: one WARN per bad signature let an unauthenticated sender write 162 MB of
/// log in 20 s. Now a handful of lines per second and endpoint and reason are written, and the
/// rest are summed in one "suppressed" line; the counter stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_signatures_is_summarised_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &env(&[("MIST_WEBHOOK_SECRET", SECRET)]), &[]);
    let c = client();
    bad_posts(&c, &server.url(), 1_999).await;
    // The suppressed count of a window is written with the first rejection after it ends.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    bad_posts(&c, &server.url(), 1).await;

    let m = c.get(server.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    let failures =
        metric_sum(&m, r#"mist_otel_ingest_signature_failures_total{endpoint="default",reason="mismatch"}"#);
    assert_eq!(failures, 2_000.0, "the counter keeps the exact number:\n{m}");

    // The server's stderr is read by another thread: give the last lines a moment to arrive
    // (seen missing under load when read at once).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (lines, logged, suppressed) = loop {
        let lines = json_lines(&server);
        let logged = lines.iter().filter(|v| message(v) == "rejected webhook signature").count();
        let suppressed: u64 = lines
            .iter()
            .filter(|v| message(v) == "rejected webhook signatures not logged")
            .map(|v| v["suppressed"].as_u64().expect("suppressed count"))
            .sum();
        if logged as u64 + suppressed >= 2_000 || std::time::Instant::now() > deadline {
            break (lines, logged, suppressed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let summaries: Vec<&Value> =
        lines.iter().filter(|v| message(v) == "rejected webhook signatures not logged").collect();
    let bytes: usize = server.stderr.lock().unwrap().iter().map(|l| l.len() + 1).sum();
    eprintln!(
        "2,000 bad signatures: {logged} rejection lines, {} summaries, {bytes} bytes of log",
        summaries.len()
    );
    assert!(logged <= 50, "{logged} rejection lines for 2,000 bad signatures");
    assert!(!summaries.is_empty(), "no summary line; {logged} rejection lines");
    for s in &summaries {
        assert_eq!(
            (s["endpoint"].as_str(), s["reason"].as_str()),
            (Some("default"), Some("mismatch")),
            "{s}"
        );
    }
    assert_eq!(logged as u64 + suppressed, 2_000, "logged {logged} + suppressed {suppressed}");
}

/// Item 12 of issue 14: with `RUST_LOG=trace`, tungstenite's handshake trace wrote the request,
/// `Authorization: Token …` included. Dependency traces that can carry credentials are capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_trace_never_writes_the_api_token() {
    let fake = FakeMist::start(vec![site(&site_id(1), "one")]).await;
    let dir = tempfile::tempdir().unwrap();
    let cloud = fake.base();
    let vars = env(&[
        ("MIST_WEBHOOK_SECRET", SECRET),
        ("MIST_API_TOKEN", TOKEN),
        ("MIST_CLOUD", &cloud),
        ("MIST_OTEL__POLLER__ENABLED", "true"),
        // A more specific directive must not lift the cap either.
        ("RUST_LOG", "trace,tungstenite::handshake=trace"),
    ]);
    let server = ServerProcess::start(dir.path(), &vars, &[]);
    // Wait until the poller has made REST calls and opened its stream (the handshake traced).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(fake.with(|i| i.connections) >= 1 && fake.calls_to("/api/v1/orgs") >= 1) {
        assert!(Instant::now() < deadline, "the poller never reached the fake:\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the stream exchange a few frames under trace.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = server.logs();
    assert!(logs.lines().count() > 20, "trace logging is on: {} lines", logs.lines().count());
    // Name only the targets that leaked, never the lines themselves.
    let leaks: Vec<String> = logs
        .lines()
        .filter(|l| l.contains(TOKEN))
        .map(|l| serde_json::from_str::<Value>(l).map_or("(not JSON)".into(), |v| v["target"].to_string()))
        .collect();
    assert!(leaks.is_empty(), "{} log lines contain the API token, from targets {leaks:?}", leaks.len());
}
