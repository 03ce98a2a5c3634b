//! Debian's real Prometheus scrapes the real `mist-otel` binary's admin `/metrics` while the
//! poller streams from a local fake Mist; the series are checked through Prometheus' HTTP API.
//! Needs `prometheus` on PATH: install it with `scripts/deps/prometheus.sh`.

mod fake_mist;
mod support;

use fake_mist::{FakeMist, TOKEN, sample, site, site_id};
use serde_json::Value;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_prometheus(dir: &std::path::Path, target: std::net::SocketAddr) -> Prometheus {
    let version = Command::new("prometheus").arg("--version").output();
    match version {
        Ok(o) if o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty() => {}
        _ => panic!(
            "`prometheus` is not installed: run scripts/deps/prometheus.sh (apt-get install prometheus)"
        ),
    }
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: mist-otel\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prometheus");
    Prometheus { child, url: format!("http://127.0.0.1:{port}") }
}

/// Percent-encodes a query parameter (reqwest's `query` feature is not enabled).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Instant-query results for `q` (empty on any error, so callers can poll).
async fn query(client: &reqwest::Client, prom: &Prometheus, q: &str) -> Vec<Value> {
    let Ok(r) = client.get(format!("{}/api/v1/query?query={}", prom.url, encode(q))).send().await else {
        return Vec::new();
    };
    let Ok(v) = r.json::<Value>().await else { return Vec::new() };
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

async fn eventually_series(
    client: &reqwest::Client,
    prom: &Prometheus,
    q: &str,
    within: Duration,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let r = query(client, prom, q).await;
        if !r.is_empty() {
            return r;
        }
        assert!(Instant::now() < deadline, "Prometheus has no series for `{q}` after {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_go_exporter_series_from_admin_metrics() {
    let fake = FakeMist::start(vec![site(&site_id(1), "Mist Office")]).await;
    let dir = tempfile::tempdir().unwrap();
    let env = support::env(&[
        ("MIST_WEBHOOK_SECRET", "webhook-secret"),
        ("MIST_API_TOKEN", TOKEN),
        ("MIST_CLOUD", &fake.base()),
        ("MIST_OTEL__POLLER__ENABLED", "true"),
        ("MIST_OTEL__POLLER__STREAM__PING_INTERVAL", "1s"),
        ("MIST_OTEL__POLLER__STREAM__READ_TIMEOUT", "5s"),
    ]);
    let data = dir.path().join("data");
    let server =
        tokio::task::spawn_blocking(move || support::ServerProcess::start(&data, &env, &[])).await.unwrap();
    let devices = format!("/sites/{}/stats/devices", site_id(1));
    let clients = format!("/sites/{}/stats/clients", site_id(1));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(fake.subscribed(&devices) && fake.subscribed(&clients)) {
        assert!(Instant::now() < deadline, "the binary's poller never subscribed; logs:\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.push(&devices, &sample("stats/ap_stats.json")[0], true);
    fake.push(&clients, &sample("stats/client_stats.json")[0], true);

    let prom = start_prometheus(dir.path(), server.admin);
    let client = support::client();
    let up = eventually_series(&client, &prom, "up{job=\"mist-otel\"} == 1", Duration::from_secs(60)).await;
    assert_eq!(up.len(), 1);

    let ch = eventually_series(
        &client,
        &prom,
        "mist_device_radio_channel{radio=\"5GHz\"}",
        Duration::from_secs(30),
    )
    .await;
    let m = &ch[0]["metric"];
    assert_eq!(m["device_name"], "Phoenix");
    assert_eq!(m["device_model"], "AP43");
    assert_eq!(m["site_name"], "Mist Office");
    assert_eq!(m["org_id"], "9ff00eec-24f0-44d7-bda4-6238c81376ee");
    assert_eq!(ch[0]["value"][1], "36");

    let rssi = eventually_series(
        &client,
        &prom,
        "mist_client_rssi_dbm{client_mac=\"dadbfc123456\"}",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(rssi[0]["value"][1], "-39");
    assert_eq!(rssi[0]["metric"]["ssid"], "Live_demo_only");
    for q in [
        "mist_device_radio_receive_bytes_total",
        "mist_client_transmit_bytes_total",
        "mist_org_sites_total",
        "mist_site_info",
        "mist_otel_poller_ws_connections_up == 1",
        "mist_otel_poller_ws_subscriptions == 2",
        "mist_otel_poller_api_calls_total",
    ] {
        eventually_series(&client, &prom, q, Duration::from_secs(30)).await;
    }
    // Prometheus read the counter type from the exposition.
    let meta: Value = client
        .get(format!("{}/api/v1/metadata?metric=mist_device_radio_receive_bytes_total", prom.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["data"]["mist_device_radio_receive_bytes_total"][0]["type"], "counter", "{meta}");
}
