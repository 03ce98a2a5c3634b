//! HTTPS with a certificate generated in the test, and reload without restart.

mod support;

use mist_otel::app::Config;
use mist_otel::ingest::config::TlsConfig;
use mist_otel::secret::Secret;
use std::time::{Duration, Instant};

fn cert(name: &str) -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec![name.to_string(), "localhost".to_string()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn client_trusting(pem: &str) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_serves_and_reloads_a_replaced_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = cert("first.test");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_a).unwrap();
    std::fs::write(&key_path, &key_a).unwrap();

    let mut c = Config { data_dir: dir.path().join("data"), ..Config::default() };
    c.ingest.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.secrets = vec![Secret::new("k")];
    c.export.exporter = mist_otel::exporter::config::ExporterKind::Debug;
    c.export.debug_path = Some(dir.path().join("signals.jsonl"));
    c.ingest.tls = Some(TlsConfig {
        cert: cert_path.clone(),
        key: key_path.clone(),
        reload_interval: Duration::from_millis(100),
    });
    let r = mist_otel::app::start(c).await.unwrap();
    let url = format!("https://localhost:{}/mist/webhook", r.webhook_addr.port());
    let body = br#"{"topic":"alarms","events":[{"timestamp":1}]}"#;

    let resp =
        support::signed_post(&client_trusting(&cert_a), &url, "k", body.to_vec()).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Plain HTTP to a TLS port does not get an answer.
    let plain = support::client()
        .post(format!("http://127.0.0.1:{}/mist/webhook", r.webhook_addr.port()))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    // A broken replacement keeps the old certificate in service.
    std::fs::write(&cert_path, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let still =
        support::signed_post(&client_trusting(&cert_a), &url, "k", body.to_vec()).send().await.unwrap();
    assert_eq!(still.status(), 200);

    // A good replacement is picked up without restart.
    let (cert_b, key_b) = cert("second.test");
    std::fs::write(&key_path, &key_b).unwrap();
    std::fs::write(&cert_path, &cert_b).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r2 = support::signed_post(&client_trusting(&cert_b), &url, "k", body.to_vec()).send().await;
        if let Ok(resp) = r2 {
            assert_eq!(resp.status(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "new certificate never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The old one is no longer trusted for new connections.
    let old = client_trusting(&cert_a).post(&url).body(body.to_vec()).send().await;
    assert!(old.is_err(), "old certificate still served");
    r.shutdown().await;
}
