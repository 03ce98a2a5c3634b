//! Fault tests against the real binary: whatever the backend does (down at start, down
//! mid-stream, 503/429 with Retry-After, RESOURCE_EXHAUSTED with RetryInfo) and whatever
//! happens to the server (`kill -9`, SIGTERM), every delivery answered 200 is exported, counted by
//! the distinct timestamp of each event, and replayed copies are identical.

mod otlp_support;
mod support;

use otlp_support::{Fault, Receiver, assert_complete_and_identical, has_all, numbered_body, ts_ns};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{ServerProcess, client, env, signed_post};

const SECRET: &str = "e2e-faults-secret";

fn server_env(endpoint: &str, protocol: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut e = env(&[
        ("MIST_WEBHOOK_SECRET", SECRET),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
        ("MIST_OTEL__EXPORT__RETRY__INITIAL", "100ms"),
        ("MIST_OTEL__EXPORT__RETRY__MAX", "2s"),
    ]);
    e.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    e
}

/// Posts deliveries `first..first+count` of `per` events each; asserts every answer is 200.
async fn send(server: &ServerProcess, base: u64, first: u64, count: u64, per: u64) -> Vec<u64> {
    let c = client();
    let mut joins = Vec::new();
    for d in first..first + count {
        let body = numbered_body("device-events", base, d * per, per);
        let req = signed_post(&c, server.url(), SECRET, body);
        joins.push(tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) }));
    }
    for j in joins {
        assert_eq!(j.await.unwrap().unwrap(), 200);
    }
    (first * per..(first + count) * per).map(|i| ts_ns(base, i)).collect()
}

async fn metrics(server: &ServerProcess) -> String {
    client().get(server.admin_url("/metrics")).send().await.unwrap().text().await.unwrap()
}

/// Sum of the values of every series whose line starts with `prefix`.
fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn wait_metric(server: &ServerProcess, prefix: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = metrics(server).await;
        if metric_sum(&m, prefix) >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "{prefix} never reached {at_least}:\n{m}\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_all(rx: &Receiver, expected: &[u64], server_logs: impl Fn() -> String) {
    let ok = rx.wait_until(Duration::from_secs(40), |r| has_all(r, expected));
    rx.with(|r| {
        if !ok {
            panic!("only {} records arrived of {}\n{}", r.log_records().len(), expected.len(), server_logs());
        }
        assert_complete_and_identical(r, expected);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_at_start_then_up() {
    let mut rx = Receiver::stopped();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &server_env(&rx.grpc_url(), "grpc", &[]), &[]);
    let expected = send(&server, 1_700_000_000, 0, 4, 5).await;
    // It tried (and failed) while the backend was down.
    wait_metric(&server, "mist_otel_export_retries_total{", 1.0).await;
    rx.restart();
    wait_all(&rx, &expected, || server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_mid_stream_then_back() {
    let mut rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &server_env(&rx.grpc_url(), "grpc", &[]), &[]);
    let mut expected = send(&server, 1_700_100_000, 0, 2, 5).await;
    wait_all(&rx, &expected, || server.logs());
    rx.stop();
    expected.extend(send(&server, 1_700_100_000, 2, 3, 5).await);
    wait_metric(&server, "mist_otel_export_retries_total{", 1.0).await;
    let depth = metric_sum(&metrics(&server).await, "mist_otel_buffer_deliveries ");
    assert!(depth >= 3.0, "undelivered deliveries wait in the buffer: {depth}");
    // The oldest-undelivered age keeps being published while the pipeline is stuck retrying.
    wait_metric(&server, "mist_otel_buffer_oldest_age_seconds ", 1.0).await;
    rx.restart();
    wait_all(&rx, &expected, || server.logs());
}

/// A receiver that answers `faults` first and a server exporting to it over `protocol` (`grpc`
/// or an HTTP one); the directory holds the server's data.
fn faulty_backend(faults: &[Fault], protocol: &str) -> (Receiver, tempfile::TempDir, ServerProcess) {
    let rx = Receiver::start();
    rx.fail_next(faults);
    let dir = tempfile::tempdir().unwrap();
    let url = if protocol == "grpc" { rx.grpc_url() } else { rx.http_url() };
    let server = ServerProcess::start(dir.path(), &server_env(&url, protocol, &[]), &[]);
    (rx, dir, server)
}

/// Asserts that after each throttling answer the next attempt of that signal came no sooner
/// than the server asked.
fn assert_waited(rx: &Receiver, signal: &str, min_wait: Duration) {
    rx.with(|r| {
        let attempts: Vec<_> = r.attempts.iter().filter(|a| a.signal == signal).collect();
        let mut checked = 0;
        for w in attempts.windows(2) {
            if w[0].fault.as_ref().is_some_and(|f| !matches!(f, Fault::Slow(_))) {
                let gap = w[1].at.duration_since(w[0].at);
                assert!(gap >= min_wait, "retried after {gap:?}, asked to wait {min_wait:?}");
                checked += 1;
            }
        }
        assert!(checked >= 1, "no retry observed: {:?}", r.attempts);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_and_429_retry_after_are_honoured() {
    let faults = [Fault::Unavailable { retry_after_secs: 1 }, Fault::Throttled { retry_after_secs: 1 }];
    let (rx, _dir, server) = faulty_backend(&faults, "http/protobuf");
    let expected = send(&server, 1_700_200_000, 0, 3, 4).await;
    wait_all(&rx, &expected, || server.logs());
    // Both faults hit the first signal exported; Retry-After: 1 means ≥ 1 s between attempts
    // (the backoff alone would have retried after 50–100 ms).
    let first_signal = rx.with(|r| r.attempts[0].signal);
    assert_waited(&rx, first_signal, Duration::from_millis(950));
    let m = metrics(&server).await;
    assert!(metric_sum(&m, "mist_otel_export_retries_total{") >= 2.0, "{m}");
    assert!(m.contains("reason=\"http_503\"") && m.contains("reason=\"http_429\""), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_resource_exhausted_with_retry_info_is_retried() {
    let faults = [Fault::Throttled { retry_after_secs: 1 }, Fault::Unavailable { retry_after_secs: 0 }];
    let (rx, _dir, server) = faulty_backend(&faults, "grpc");
    let expected = send(&server, 1_700_300_000, 0, 3, 4).await;
    wait_all(&rx, &expected, || server.logs());
    rx.with(|r| {
        let w = &r.attempts;
        assert!(matches!(w[0].fault, Some(Fault::Throttled { .. })));
        assert!(w[1].at.duration_since(w[0].at) >= Duration::from_millis(950), "RetryInfo honoured");
    });
    let m = metrics(&server).await;
    assert!(m.contains("reason=\"resource_exhausted\""), "{m}");
    assert!(m.contains("reason=\"unavailable\""), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rejection_is_dropped_and_counted() {
    let (rx, _dir, server) = faulty_backend(&[Fault::BadRequest], "http/protobuf");
    send(&server, 1_700_400_000, 0, 1, 3).await;
    assert!(rx.wait_until(Duration::from_secs(20), |r| !r.attempts.is_empty()));
    wait_metric(&server, "mist_otel_export_dropped_items_total{signal=\"logs\",reason=\"http_400\"}", 3.0)
        .await;
    // The pipeline goes on with later deliveries.
    let later = send(&server, 1_700_400_000, 1, 1, 3).await;
    wait_all(&rx, &later, || server.logs());
    let m = metrics(&server).await;
    assert!(
        metric_sum(&m, "mist_otel_export_requests_total{signal=\"logs\",outcome=\"failed\"}") >= 1.0,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_partial_success_is_counted_and_not_retried() {
    let rx = Receiver::start();
    rx.fail_next(&[Fault::Partial { rejected: 2 }]);
    let dir = tempfile::tempdir().unwrap();
    // Faults go to whichever request comes first: no metric export (device events make no
    // spans) may take this one before the logs.
    let cfg = server_env(&rx.grpc_url(), "grpc", &[("OTEL_METRIC_EXPORT_INTERVAL", "600000")]);
    let server = ServerProcess::start(dir.path(), &cfg, &[]);
    let sent = send(&server, 1_700_450_000, 0, 1, 3).await;
    // The request carrying the refusal arrived whole (encoded once, decoded by tonic here).
    wait_all(&rx, &sent, || server.logs());
    wait_metric(
        &server,
        "mist_otel_export_dropped_items_total{signal=\"logs\",reason=\"partial_success\"}",
        2.0,
    )
    .await;
    // A retry would come after the backoff (100 ms): a later delivery arriving first proves
    // there was none before it.
    let mut all = sent.clone();
    all.extend(send(&server, 1_700_450_000, 1, 1, 3).await);
    wait_all(&rx, &all, || server.logs());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs_attempts = rx.with(|r| r.attempts.iter().filter(|a| a.signal == "logs").count());
    assert_eq!(logs_attempts, 2, "one request per delivery: a partial success is not retried");
    let logs = server.logs();
    assert!(logs.contains(otlp_support::PARTIAL_MESSAGE), "the backend's explanation is logged:\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_200_then_restart_delivers_everything() {
    // Both sync policies: `interval` (default) answers after the write into the OS, `always`
    // after the fdatasync; a kill -9 must lose nothing with either.
    for fsync in ["interval", "always"] {
        // Backend down: everything answered 200 is only on disk when the server dies.
        let mut rx = Receiver::stopped();
        let dir = tempfile::tempdir().unwrap();
        let cfg = server_env(&rx.grpc_url(), "grpc", &[("MIST_OTEL__BUFFER__FSYNC", fsync)]);
        let mut first = ServerProcess::start(dir.path(), &cfg, &[]);
        let expected = send(&first, 1_700_500_000, 0, 12, 5).await;
        first.kill9();
        rx.restart();
        let second = ServerProcess::start(dir.path(), &cfg, &[]);
        wait_all(&rx, &expected, || second.logs());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_exporting_replays_identical_duplicates() {
    // Backend up but slow: some deliveries are exported, some in flight, some waiting.
    let rx = Receiver::start();
    rx.fail_next(&[Fault::Slow(Duration::from_millis(300)); 3]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_env(&rx.grpc_url(), "grpc", &[("OTEL_METRIC_EXPORT_INTERVAL", "60000")]);
    let mut first = ServerProcess::start(dir.path(), &cfg, &[]);
    let mut expected = Vec::new();
    for round in 0..4 {
        expected.extend(send(&first, 1_700_600_000, round * 5, 5, 4).await);
    }
    // Let some (not necessarily all) reach the backend before the crash.
    rx.wait_until(Duration::from_secs(10), |r| !r.logs.is_empty());
    first.kill9();
    let second = ServerProcess::start(dir.path(), &cfg, &[]);
    wait_all(&rx, &expected, || second.logs());
    // With a 60 s metric interval nothing was removed before the crash, so the records that
    // had arrived before it were sent again, identical (checked by wait_all).
    assert!(second.logs().contains("replaying buffered deliveries"), "{}", second.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_before_exit() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    // Long delays: without the shutdown flush nothing would be sent for a minute.
    let cfg = server_env(
        &rx.grpc_url(),
        "grpc",
        &[("OTEL_BLRP_SCHEDULE_DELAY", "60000"), ("OTEL_METRIC_EXPORT_INTERVAL", "60000")],
    );
    let mut server = ServerProcess::start(dir.path(), &cfg, &[]);
    let expected = send(&server, 1_700_700_000, 0, 3, 4).await;
    let status = server.terminate(Duration::from_secs(30)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.logs());
    rx.with(|r| assert_complete_and_identical(r, &expected));
    assert!(server.logs().contains("deliveries_left\":0"), "{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_a_nac_permit_still_waiting_for_its_join() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_env(&rx.grpc_url(), "grpc", &[]);
    let mut server = ServerProcess::start(dir.path(), &cfg, &[]);
    // The first part of the roam scenario is a wireless NAC permit: its span waits for the join.
    let roam = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/client-roam");
    let mut files: Vec<_> = std::fs::read_dir(&roam).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let body = std::fs::read(&files[0]).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("NAC_CLIENT_PERMIT"), "fixture changed");
    let r = signed_post(&client(), server.url(), SECRET, body).send();
    assert_eq!(r.await.unwrap().status(), 200);
    let status = server.terminate(Duration::from_secs(30)).expect("exits after SIGTERM");
    assert!(status.success(), "{}", server.logs());
    let names: Vec<String> = rx.with(|r| r.spans().into_iter().map(|s| s.name).collect());
    assert!(names.iter().any(|n| n == "mist.nac.auth"), "spans at the backend: {names:?}\n{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_backend_down_leaves_the_rest_on_disk() {
    let mut rx = Receiver::stopped();
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_env(&rx.grpc_url(), "grpc", &[("MIST_OTEL__EXPORT__SHUTDOWN_TIMEOUT", "1s")]);
    let mut server = ServerProcess::start(dir.path(), &cfg, &[]);
    let expected = send(&server, 1_700_800_000, 0, 3, 4).await;
    let status = server.terminate(Duration::from_secs(30)).expect("exits within its deadline");
    assert!(status.success(), "{}", server.logs());
    assert!(rx.with(|r| r.logs.is_empty()));
    rx.restart();
    let again = ServerProcess::start(dir.path(), &cfg, &[]);
    wait_all(&rx, &expected, || again.logs());
}

fn big_body(i: u64) -> Vec<u8> {
    let pad = "x".repeat(200 * 1024);
    let body = serde_json::json!({
        "topic": "device-events",
        "events": [{ "type": "AP_CONFIGURED", "timestamp": otlp_support::ts_secs(1_700_900_000, i), "pad": pad }],
    });
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_buffer_answers_503_and_readyz_reflects_it() {
    let mut rx = Receiver::stopped();
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_env(
        &rx.grpc_url(),
        "grpc",
        &[("MIST_OTEL__BUFFER__MAX_BYTES", "1048576"), ("MIST_OTEL__INGEST__MAX_BODY_BYTES", "524288")],
    );
    let server = ServerProcess::start(dir.path(), &cfg, &[]);
    let c = client();
    let mut accepted = Vec::new();
    let mut refused = None;
    for i in 0..10 {
        let body = big_body(i);
        let r = signed_post(&c, server.url(), SECRET, body).send().await.unwrap();
        match r.status().as_u16() {
            200 => accepted.push(ts_ns(1_700_900_000, i)),
            503 => {
                refused = Some(r.headers().get("retry-after").cloned());
                break;
            }
            s => panic!("unexpected {s}"),
        }
    }
    let retry_after = refused.expect("a full buffer answers 503");
    assert!(retry_after.is_some(), "503 carries Retry-After");
    assert!(accepted.len() >= 3, "{accepted:?}");
    let ready = c.get(server.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/readyz reflects the full buffer");
    rx.restart();
    wait_all(&rx, &accepted, || server.logs());
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.get(server.admin_url("/readyz")).send().await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "ready again once drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_buffer_exports_metrics_early_so_it_drains() {
    // Deliveries leave the disk only after a metric export that follows them. With a one-minute
    // metric interval, 1.5 MB sent into a 1 MiB buffer would be refused with 503s unless the
    // pipeline exports metrics early once the buffer fills.
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = server_env(
        &rx.grpc_url(),
        "grpc",
        &[
            ("OTEL_METRIC_EXPORT_INTERVAL", "60000"),
            ("MIST_OTEL__BUFFER__MAX_BYTES", "1048576"),
            ("MIST_OTEL__INGEST__MAX_BODY_BYTES", "262144"),
        ],
    );
    let server = ServerProcess::start(dir.path(), &cfg, &[]);
    let mut expected = Vec::new();
    for round in 0..15 {
        // 10 deliveries of 50 events (~100 kB) every 250 ms; `send` asserts each answer is 200.
        expected.extend(send(&server, 1_701_000_000, round * 10, 10, 50).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_all(&rx, &expected, || server.logs());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bytes = metric_sum(&metrics(&server).await, "mist_otel_buffer_bytes ");
        if bytes < 262_144.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the buffer still holds {bytes} bytes\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
