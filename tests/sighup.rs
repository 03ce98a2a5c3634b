//! SIGHUP on the real binary: it reloads the TLS certificate when TLS is on, and is otherwise
//! logged and ignored; it never stops the server (issue 14 item 14: a plain-HTTP server died of
//! it, with no graceful shutdown).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{ServerProcess, client, env};

/// Polls the captured log until a line contains `what` (at most `within`).
fn wait_for_log(server: &ServerProcess, what: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if server.logs().contains(what) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_does_not_stop_a_plain_http_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut server =
        ServerProcess::start(dir.path(), &env(&[("MIST_WEBHOOK_SECRET", "sighup-test-secret")]), &[]);
    let c = client();
    for round in 1..=2 {
        let sent = Command::new("kill").arg("-HUP").arg(server.pid().to_string()).status().unwrap();
        assert!(sent.success(), "kill -HUP failed");
        let logged = wait_for_log(&server, "SIGHUP: nothing to reload", Duration::from_secs(5));
        let health = c.get(server.admin_url("/healthz")).send().await.map(|r| r.status().as_u16());
        assert!(
            matches!(health, Ok(200)),
            "after SIGHUP {round}: /healthz answered {health:?}; logged: {logged}\n{}",
            server.logs()
        );
        assert!(logged, "no 'SIGHUP: nothing to reload' line:\n{}", server.logs());
    }
    let started = Instant::now();
    let status = server.terminate(Duration::from_secs(10)).expect("exits within 10 s of SIGTERM");
    eprintln!("SIGTERM to exit after two SIGHUPs: {:?}", started.elapsed());
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.logs());
    assert!(server.logs().contains("stopped"), "no graceful shutdown:\n{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_with_tls() {
    let dir = tempfile::tempdir().unwrap();
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    // A long check interval: only the signal reloads within the test.
    let yaml = format!(
        "ingest:\n  tls:\n    cert: {}\n    key: {}\n    reload_interval: 1h\n",
        cert.display(),
        key.display()
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, yaml).unwrap();
    let data = dir.path().join("data");
    let vars = env(&[("MIST_WEBHOOK_SECRET", "sighup-test-secret")]);
    let mut server = ServerProcess::start(&data, &vars, &["--config", config.to_str().unwrap()]);
    assert!(!server.logs().contains("TLS certificate reloaded"), "{}", server.logs());
    Command::new("kill").arg("-HUP").arg(server.pid().to_string()).status().unwrap();
    assert!(wait_for_log(&server, "TLS certificate reloaded", Duration::from_secs(5)), "{}", server.logs());
    let health = client().get(server.admin_url("/healthz")).send().await.map(|r| r.status().as_u16());
    assert!(matches!(health, Ok(200)), "after SIGHUP: /healthz answered {health:?}\n{}", server.logs());
    assert!(!server.logs().contains("nothing to reload"), "{}", server.logs());
    let status = server.terminate(Duration::from_secs(10)).expect("exits within 10 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.logs());
}
