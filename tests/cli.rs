//! The real `mist-otel` binary: --help, check-config, and serve from environment variables only.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{ServerProcess, env, sign};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mist-otel"));
    c.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    c
}

#[test]
fn help_explains_the_commands() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["serve", "check-config", "--config", "MIST_WEBHOOK_SECRET"] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
}

#[test]
fn check_config_redacts_secrets_and_names_bad_keys() {
    let out = bin()
        .arg("check-config")
        .env("MIST_WEBHOOK_SECRET", "very-secret-value,another-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!text.contains("very-secret-value") && !text.contains("another-secret"), "{text}");
    assert!(text.contains("0.0.0.0:4320"), "default listen address shown: {text}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "ingest:\n  listen: ${MIST_LISTEN_ADDR}\n").unwrap();
    let out = bin().args(["check-config", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MIST_LISTEN_ADDR") && err.contains("ingest.listen"), "{err}");

    std::fs::write(&cfg, "ingest:\n  listen: not-an-address\n").unwrap();
    let out = bin().args(["check-config", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ingest.listen"), "{err}");

    std::fs::write(&cfg, "ingest:\n  secret: x\n").unwrap();
    let out = bin().args(["check-config", "--config"]).arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `secret`"), "{err}");
}

#[test]
fn serve_refuses_to_start_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("serve")
        .env("MIST_OTEL_LISTEN", "127.0.0.1:0")
        .env("MIST_OTEL_ADMIN_LISTEN", "127.0.0.1:0")
        .env("MIST_OTEL_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MIST_WEBHOOK_SECRET"));
}

#[tokio::test]
async fn serve_from_the_four_variables_accepts_webhooks_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &env(&[("MIST_WEBHOOK_SECRET", "abc-secret")]), &[]);
    let body = std::fs::read(support::samples_dir().join("webhooks/alarms.json")).unwrap();
    let resp = support::client()
        .post(server.url())
        .header("x-mist-signature-v2", sign("abc-secret", &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A rejected delivery is logged with its request id and peer, never with the secret.
    let bad = support::client()
        .post(server.url())
        .header("x-mist-signature-v2", sign("not-the-secret", b"{}"))
        .header("x-request-id", "req-4242")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(bad.headers()["x-request-id"], "req-4242");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.logs().contains("req-4242") {
        assert!(std::time::Instant::now() < deadline, "no log line for the rejection:\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = server.logs().lines().find(|l| l.contains("req-4242")).unwrap().to_owned();
    assert!(line.contains("rejected webhook signature") && line.contains("127.0.0.1"), "{line}");
    // Without one, the server makes an id: the answer carries it and so does the log line.
    let anon = support::client()
        .post(server.url())
        .header("x-mist-signature-v2", sign("not-the-secret", b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let made = anon.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 36, "UUID-shaped: {made}");
    while !server.logs().contains(&made) {
        assert!(std::time::Instant::now() < deadline, "no log line with {made}:\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = support::client().get(server.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let status = server.terminate(Duration::from_secs(20)).expect("exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", server.logs());
    assert!(!server.logs().contains("abc-secret"), "secret must not be logged");
}
