//! The webhook listener over the wire: the real server (in process, ephemeral ports) answering
//! signed sample deliveries and every bad case with the right status.

mod support;

use mist_otel::app::{self, Config, Running};
use mist_otel::exporter::config::ExporterKind;
use mist_otel::ingest::config::EndpointConfig;
use mist_otel::secret::Secret;
use reqwest::StatusCode;
use std::time::Duration;
use support::{client, sign, signed_post, webhook_samples};

const SECRET: &str = "s3cr3t-for-tests";

fn base_config(data: &std::path::Path) -> Config {
    let mut c = Config { data_dir: data.to_owned(), ..Config::default() };
    c.ingest.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.secrets = vec![Secret::new(SECRET)];
    // Signals go to a file: the pipeline drains the buffer and shutdown has nothing to wait for.
    c.export.exporter = ExporterKind::Debug;
    c.export.debug_path = Some(data.join("signals.jsonl"));
    c
}

async fn start(c: Config) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    app::start(c).await.expect("server starts")
}

fn url(r: &Running) -> String {
    format!("http://{}/mist/webhook", r.webhook_addr)
}

async fn post(r: &Running, body: &[u8], headers: &[(&str, String)]) -> reqwest::Response {
    let mut req = client().post(url(r)).header("content-type", "application/json").body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

async fn metrics(r: &Running) -> String {
    client().get(format!("http://{}/metrics", r.admin_addr)).send().await.unwrap().text().await.unwrap()
}

async fn assert_healthy(r: &Running) {
    let h = client().get(format!("http://{}/healthz", r.admin_addr)).send().await.unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    let body = br#"{"topic":"alarms","events":[{"timestamp":1700000000.5}]}"#;
    let ok = post(r, body, &[("x-mist-signature-v2", sign(SECRET, body))]).await;
    assert_eq!(ok.status(), StatusCode::OK, "server still accepts valid deliveries");
}

#[tokio::test]
async fn every_sample_signed_as_mist_signs_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(base_config(dir.path())).await;
    let samples = webhook_samples();
    for (path, body) in &samples {
        let resp = post(&r, body, &[("x-mist-signature-v2", sign(SECRET, body))]).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", path.display());
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["status"], "accepted", "{}", path.display());
    }
    let m = metrics(&r).await;
    let accepted: f64 = m
        .lines()
        .filter(|l| l.starts_with("mist_otel_ingest_requests_total{") && l.contains("outcome=\"accepted\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(accepted as usize, samples.len());
    // spec 2509 topics with underscores count under the hyphenated name.
    assert!(m.contains("topic=\"device-events\""), "{m}");
    assert!(!m.contains("device_events"));
    assert!(!m.contains(SECRET));

    // The pipeline translates every stored delivery; the translator's bounded state is visible.
    let stored = samples.iter().filter(|(p, _)| !p.ends_with("ping.json")).count();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = metrics(&r).await;
        if metric_value(&m, "mist_otel_export_deliveries_total") >= stored as f64 {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "deliveries not translated:\n{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metric_value(&m, "mist_otel_signal_metric_series") > 0.0, "{m}");
    assert!(m.contains("\nmist_otel_correlation_entries "), "{m}");
    r.shutdown().await;
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn signature_failures_answer_401_and_never_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(base_config(dir.path())).await;
    let body = br#"{"topic":"alarms","events":[{"type":"x"}]}"#;
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("missing", vec![]),
        ("wrong", vec![("x-mist-signature-v2", sign("other", body))]),
        ("malformed", vec![("x-mist-signature-v2", "not-hex".into())]),
        (
            "sha1 only, disabled",
            vec![("x-mist-signature", mist_otel::ingest::signature::sign_v1(SECRET, body))],
        ),
        (
            "wrong v2 with valid sha1",
            vec![
                ("x-mist-signature-v2", sign("other", body)),
                ("x-mist-signature", mist_otel::ingest::signature::sign_v1(SECRET, body)),
            ],
        ),
    ];
    for (name, headers) in cases {
        let resp = post(&r, body, &headers).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{name}");
        let text = resp.text().await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].is_string(), "{name}: {text}");
        assert!(!text.contains(SECRET));
    }
    let m = metrics(&r).await;
    for reason in ["missing", "mismatch", "malformed", "sha1_disabled"] {
        assert!(m.contains(&format!("reason=\"{reason}\"")), "no {reason} in {m}");
    }
    assert_healthy(&r).await;
    r.shutdown().await;
}

#[tokio::test]
async fn sha1_is_opt_in_and_rotation_reports_the_secret_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = base_config(dir.path());
    c.ingest.secrets = vec![Secret::new("old-secret"), Secret::new("new-secret")];
    c.ingest.allow_sha1 = true;
    let r = start(c).await;
    let body = br#"{"topic":"audits","events":[{"id":"1"}]}"#;
    let resp = post(&r, body, &[("x-mist-signature-v2", sign("new-secret", body))]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v1 = mist_otel::ingest::signature::sign_v1("old-secret", body);
    let resp = post(&r, body, &[("x-mist-signature", v1)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let m = metrics(&r).await;
    assert!(m.contains(r#"scheme="v2",secret_index="1""#), "{m}");
    assert!(m.contains(r#"scheme="v1",secret_index="0""#), "{m}");
    r.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_answer_400_with_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(base_config(dir.path())).await;
    let cases: &[(&[u8], &str)] = &[
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (br#"{"events":[]}"#, "topic"),
        (br#"{"topic":"alarms"}"#, "events"),
        (br#"{"topic":"alarms","events":[1]}"#, "events[0]"),
        (b"\xff\xfe\x00", "not valid JSON"),
    ];
    for (body, needle) in cases {
        let resp = post(&r, body, &[("x-mist-signature-v2", sign(SECRET, body))]).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let v: serde_json::Value = resp.json().await.unwrap();
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg} should mention {needle}");
    }
    assert_healthy(&r).await;
    r.shutdown().await;
}

#[tokio::test]
async fn oversize_bodies_answer_413_declared_or_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = base_config(dir.path());
    c.ingest.max_body_bytes = 4096;
    let r = start(c).await;
    let big = vec![b' '; 10_000];
    let resp = post(&r, &big, &[("x-mist-signature-v2", sign(SECRET, &big))]).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked: no Content-Length, the limit still holds while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..10).map(|_| Ok(vec![b' '; 1000])).collect();
    let resp = client()
        .post(url(&r))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_healthy(&r).await;
    r.shutdown().await;
}

#[tokio::test]
async fn wrong_method_is_405_and_unknown_endpoint_404() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(base_config(dir.path())).await;
    let resp = client().get(url(&r)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body = b"{}";
    let resp =
        signed_post(&client(), format!("{}/nobody", url(&r)), SECRET, body.to_vec()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_healthy(&r).await;
    r.shutdown().await;
}

#[tokio::test]
async fn named_endpoints_have_their_own_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = base_config(dir.path());
    c.ingest.endpoints = vec![EndpointConfig {
        name: "acme".into(),
        secrets: vec![Secret::new("acme-secret")],
        allow_sha1: None,
        attributes: [("mist.org.name".to_string(), "ACME".to_string())].into(),
    }];
    let r = start(c).await;
    let body = br#"{"topic":"device-updowns","events":[{"type":"AP_DISCONNECTED"}]}"#;
    let acme = format!("{}/acme", url(&r));
    let ok = signed_post(&client(), &acme, "acme-secret", body.to_vec()).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let cross = signed_post(&client(), &acme, SECRET, body.to_vec()).send().await.unwrap();
    assert_eq!(cross.status(), StatusCode::UNAUTHORIZED, "the default secret is not valid for acme");
    let m = metrics(&r).await;
    assert!(m.contains(r#"endpoint="acme",topic="device-updowns",outcome="accepted""#), "{m}");
    r.shutdown().await;
}

#[tokio::test]
async fn ping_answers_200() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(base_config(dir.path())).await;
    let body = std::fs::read(support::samples_dir().join("webhooks/ping.json")).unwrap();
    let resp = post(&r, &body, &[("x-mist-signature-v2", sign(SECRET, &body))]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    r.shutdown().await;
}

#[tokio::test]
async fn slow_body_gets_408_and_request_ids_are_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = base_config(dir.path());
    c.ingest.body_timeout = Duration::from_millis(300);
    let r = start(c).await;
    let slow = futures_util::stream::unfold(0u8, |n| async move {
        if n >= 20 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(vec![b' ']), n + 1))
    });
    let resp = client().post(url(&r)).body(reqwest::Body::wrap_stream(slow)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(resp.headers().contains_key("x-request-id"));
    let resp = client().post(url(&r)).header("x-request-id", "abc-123").body("{}").send().await.unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    assert_healthy(&r).await;
    r.shutdown().await;
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(base_config(dir.path())).await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let body = br#"{"topic":"zone","events":[{}]}"#;
    let resp = signed_post(&h2, url(&r), SECRET, body.to_vec()).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    r.shutdown().await;
}

#[tokio::test]
async fn refuses_to_start_without_a_secret_unless_unsigned_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = base_config(dir.path());
    c.ingest.secrets.clear();
    let err = app::start(c.clone()).await.err().expect("must refuse").to_string();
    assert!(err.contains("MIST_WEBHOOK_SECRET"), "{err}");
    c.ingest.allow_unsigned = true;
    let r = start(c).await;
    let resp = post(&r, br#"{"topic":"alarms","events":[]}"#, &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    r.shutdown().await;
}

#[tokio::test]
async fn full_buffer_answers_503_with_retry_after_and_readyz_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = base_config(dir.path());
    c.buffer.max_bytes = 1024 * 1024;
    c.ingest.max_body_bytes = 900 * 1024;
    c.ingest.retry_after_secs = 7;
    // Nothing listens on this port: deliveries stay buffered.
    c.export.exporter = ExporterKind::Otlp;
    c.export.endpoint = Some("http://127.0.0.1:9".into());
    c.export.shutdown_timeout = Duration::from_millis(500);
    let r = start(c).await;
    let filler = "x".repeat(500 * 1024);
    let body = format!(r#"{{"topic":"audits","events":[{{"message":"{filler}"}}]}}"#).into_bytes();
    for _ in 0..2 {
        let ok = post(&r, &body, &[("x-mist-signature-v2", sign(SECRET, &body))]).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let second = post(&r, &body, &[("x-mist-signature-v2", sign(SECRET, &body))]).await;
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers()["retry-after"], "7");
    let ready = client().get(format!("http://{}/readyz", r.admin_addr)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().await.unwrap().contains("buffer full"));
    assert!(metrics(&r).await.contains(r#"outcome="busy""#));
    r.shutdown().await;
}

#[tokio::test]
async fn per_source_rate_limit_answers_429() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = base_config(dir.path());
    c.ingest.rate_limit_per_source = 3;
    let r = start(c).await;
    let body = br#"{"topic":"alarms","events":[]}"#;
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(post(&r, body, &[("x-mist-signature-v2", sign(SECRET, body))]).await.status());
    }
    let elapsed = started.elapsed().as_secs_f64();
    // A burst of 3, then 3 per second: however slow the machine, no more than that gets through,
    // and the first three always do.
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(ok + refused, statuses.len(), "{statuses:?}");
    assert!(statuses[..3].iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert!(ok as f64 <= 3.0 + (elapsed * 3.0).ceil(), "{ok} passed in {elapsed:.2} s: {statuses:?}");
    assert!(refused >= 1, "{statuses:?}");
    assert!(metrics(&r).await.contains(&format!("mist_otel_ingest_rate_limited_total {refused}")));
    r.shutdown().await;
}
