//! The poller against a local fake Mist serving the real sample payloads: one test per
//! behaviour (streaming, merging, half-open sockets, reconnects, refusals, site removal,
//! expiry, pagination, 429, org discovery, cardinality cap, connection sharding, OTLP).

mod fake_mist;

use fake_mist::{FakeMist, TOKEN, sample, site, site_id};
use mist_otel::poller::config::{PollerConfig, StreamConfig};
use mist_otel::poller::{self, PollerHandle};
use mist_otel::secret::Secret;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const ORG: &str = "9ff00eec-24f0-44d7-bda4-6238c81376ee";

fn cfg(fake: &FakeMist) -> PollerConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    PollerConfig {
        enabled: true,
        token: Secret::new(TOKEN),
        cloud: fake.base(),
        site_refresh_interval: Duration::from_secs(3600),
        org_interval: Duration::from_secs(3600),
        series_ttl: Duration::from_secs(60),
        request_timeout: Duration::from_secs(5),
        stream: StreamConfig {
            ping_interval: Duration::from_millis(200),
            read_timeout: Duration::from_millis(1000),
            subscribe_timeout: Duration::from_millis(1000),
            refused_retry: Duration::from_secs(60),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            ..StreamConfig::default()
        },
        ..PollerConfig::default()
    }
}

struct Running {
    handle: PollerHandle,
    registry: Registry,
    cancel: CancellationToken,
    /// Stops the poller if a test fails before `stop`.
    _guard: tokio_util::sync::DropGuard,
}

impl Running {
    async fn start(cfg: &PollerConfig) -> Running {
        let mut registry = mist_otel::telemetry::new_registry();
        let cancel = CancellationToken::new();
        let handle = poller::start(cfg, &mut registry, cancel.clone()).await.expect("poller starts");
        Running { handle, registry, _guard: cancel.clone().drop_guard(), cancel }
    }

    /// The poller's `/metrics` text: Mist families plus self-telemetry.
    fn text(&self) -> String {
        let mut s = mist_otel::telemetry::render(&self.registry);
        (self.handle.metrics_source())(&mut s);
        s
    }

    async fn stop(self) {
        self.cancel.cancel();
        let handle = self.handle;
        tokio::time::timeout(Duration::from_secs(10), handle.join()).await.expect("poller stops");
    }
}

/// Polls `cond` every 25 ms until it holds or `within` passes.
async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn devices(i: usize) -> String {
    format!("/sites/{}/stats/devices", site_id(i))
}

fn clients(i: usize) -> String {
    format!("/sites/{}/stats/clients", site_id(i))
}

fn ap() -> Value {
    sample("stats/ap_stats.json")[0].clone()
}

fn client() -> Value {
    sample("stats/client_stats.json")[0].clone()
}

/// A line of the text with this metric name containing every fragment.
fn line<'a>(text: &'a str, metric: &str, fragments: &[&str]) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(&format!("{metric}{{")) && fragments.iter().all(|f| l.contains(f)))
}

async fn wait_subscribed(fake: &FakeMist, channels: &[String]) {
    for ch in channels {
        eventually(&format!("subscription to {ch}"), Duration::from_secs(10), || fake.subscribed(ch)).await;
    }
}

#[tokio::test]
async fn discovers_org_and_streams_go_exporter_series() {
    let fake = FakeMist::start(vec![site(&site_id(1), "Mist Office")]).await;
    let run = Running::start(&cfg(&fake)).await;
    wait_subscribed(&fake, &[devices(1), clients(1)]).await;
    fake.push(&devices(1), &ap(), true);
    fake.push(&clients(1), &client(), false);
    eventually("client series", Duration::from_secs(10), || run.text().contains("mist_client_rssi_dbm{"))
        .await;
    eventually("device series", Duration::from_secs(10), || {
        run.text().contains("mist_device_radio_channel{")
    })
    .await;
    let t = run.text();
    let dev = format!(
        "org_id=\"{ORG}\",site_id=\"{}\",site_name=\"Mist Office\",device_id=\"00000000-0000-0000-1000-5c5b35d0077b\",device_name=\"Phoenix\",device_type=\"ap\",device_model=\"AP43\",device_hw_rev=\"C02\"",
        site_id(1)
    );
    assert!(t.contains(&format!("mist_device_radio_channel{{{dev},radio=\"5GHz\"}} 36")), "{t}");
    assert!(t.contains(&format!("mist_device_radio_channel{{{dev},radio=\"2.4GHz\"}} 11")), "{t}");
    assert!(t.contains(&format!("mist_device_last_seen_timestamp_seconds{{{dev}}} 1720595866")), "{t}");
    assert!(t.contains(&format!("mist_device_status_code{{{dev}}} 1")), "{t}");
    assert!(
        t.contains(&format!("mist_device_port_receive_bytes_total{{{dev},port=\"eth0\"}} 1284143195")),
        "{t}"
    );
    assert!(t.contains(&format!("mist_device_memory_used_bytes{{{dev}}} {}", 202096 * 1024)), "{t}");
    assert!(t.contains("# TYPE mist_device_radio_receive_bytes_total counter"), "{t}");
    assert!(t.contains("# TYPE mist_device_radio_clients_total gauge"), "{t}");
    let c = line(&t, "mist_client_transmit_rate_mbps", &["client_mac=\"dadbfc123456\""]).expect(&t);
    for frag in [
        "client_hostname=\"android-9b228dc33690\"",
        "client_os=\"Android 10\"",
        "device_id=\"00000000-0000-0000-1000-5c5b35963d70\"",
        "proto=\"ac\"",
        "radio=\"5GHz\"",
        "ssid=\"Live_demo_only\"",
    ] {
        assert!(c.contains(frag), "{frag} missing in {c}");
    }
    assert!(c.ends_with(" 173.3"), "{c}");
    assert!(line(&t, "mist_client_receive_packets_total", &["dadbfc123456"]).unwrap().ends_with(" 44175"));
    assert!(t.contains("# TYPE mist_client_transmit_retries_total counter"), "{t}");
    assert!(t.contains(&format!("mist_org_sites_total{{org_id=\"{ORG}\"}} 1")), "{t}");
    assert!(t.contains("mist_otel_poller_ws_connections_up 1"), "{t}");
    assert!(t.contains("mist_otel_poller_ws_subscriptions 2"), "{t}");
    assert_eq!(fake.with(|i| i.bad_auth), 0);
    assert_eq!(fake.calls_to("/api/v1/self"), 1);
    run.stop().await;
}

#[tokio::test]
async fn partial_frames_merge_per_mac_with_string_or_object_data() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    let run = Running::start(&cfg(&fake)).await;
    wait_subscribed(&fake, &[devices(1)]).await;
    fake.push(&devices(1), &ap(), false);
    eventually("full device", Duration::from_secs(10), || run.text().contains("mist_device_uptime_seconds{"))
        .await;
    // The captured partial frame (data as a JSON string), aimed at the same AP.
    let captured = sample("stats/websocket_message_stats_devices.json");
    let mut partial: Value = serde_json::from_str(captured["data"].as_str().unwrap()).unwrap();
    partial["mac"] = json!("5c5b35d0077b");
    fake.push(&devices(1), &partial, true);
    eventually("merged uptime", Duration::from_secs(10), || {
        line(&run.text(), "mist_device_uptime_seconds", &[]).is_some_and(|l| l.ends_with(" 6259614"))
    })
    .await;
    let t = run.text();
    // Fields the partial frame did not carry are kept from the earlier one.
    assert!(line(&t, "mist_device_radio_channel", &["radio=\"5GHz\""]).unwrap().ends_with(" 36"), "{t}");
    assert!(
        line(&t, "mist_device_last_seen_timestamp_seconds", &[]).unwrap().ends_with(" 1686592607"),
        "{t}"
    );
    assert!(line(&t, "mist_device_ble_receive_bytes_total", &[]).unwrap().ends_with(" 2772782221"), "{t}");
    assert_eq!(t.matches("mist_device_uptime_seconds{").count(), 1, "one device, not two");
    run.stop().await;
}

#[tokio::test]
async fn half_open_socket_is_replaced_within_read_deadline() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    let run = Running::start(&cfg(&fake)).await;
    wait_subscribed(&fake, &[devices(1), clients(1)]).await;
    assert_eq!(fake.with(|i| i.connections), 1);
    fake.go_silent();
    // read_timeout is 1 s, backoff at most 400 ms: a new connection must subscribe well within 5 s.
    eventually("a second connection", Duration::from_secs(5), || fake.with(|i| i.connections) >= 2).await;
    wait_subscribed(&fake, &[devices(1), clients(1)]).await;
    let t = run.text();
    assert!(t.contains("mist_otel_poller_ws_reconnects_total 1"), "{t}");
    fake.push(&devices(1), &ap(), true);
    eventually("data on the new connection", Duration::from_secs(5), || {
        run.text().contains("mist_device_uptime_seconds{")
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn dropped_socket_reconnects_and_resubscribes() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    let run = Running::start(&cfg(&fake)).await;
    wait_subscribed(&fake, &[devices(1), clients(1)]).await;
    fake.drop_sockets();
    eventually("reconnect", Duration::from_secs(5), || fake.with(|i| i.connections) >= 2).await;
    wait_subscribed(&fake, &[devices(1), clients(1)]).await;
    assert_eq!(fake.with(|i| i.subscribes.len()), 4, "each channel subscribed once per connection");
    eventually("gauges back", Duration::from_secs(5), || {
        let t = run.text();
        t.contains("mist_otel_poller_ws_connections_up 1")
            && t.contains("mist_otel_poller_ws_subscriptions 2")
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn refused_subscription_is_reported_and_retried() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    fake.with(|i| i.refuse.insert(clients(1)));
    let mut c = cfg(&fake);
    c.stream.refused_retry = Duration::from_millis(500);
    let run = Running::start(&c).await;
    wait_subscribed(&fake, &[devices(1)]).await;
    // Channels are subscribed in name order, so the clients refusal can be counted before the
    // devices confirmation arrives: wait for both (seen failing under load otherwise).
    eventually("refusal counted and devices confirmed", Duration::from_secs(5), || {
        let t = run.text();
        t.contains("mist_otel_poller_ws_subscribe_refused_total 1")
            && t.contains("mist_otel_poller_ws_subscriptions 1")
    })
    .await;
    let t = run.text();
    let sid = site_id(1);
    assert!(
        t.contains(&format!("mist_otel_poller_site_subscribed{{site_id=\"{sid}\",channel=\"clients\"}} 0")),
        "{t}"
    );
    assert!(
        t.contains(&format!("mist_otel_poller_site_subscribed{{site_id=\"{sid}\",channel=\"devices\"}} 1")),
        "{t}"
    );
    // The other channel on the same connection keeps working.
    fake.push(&devices(1), &ap(), true);
    eventually("device data", Duration::from_secs(5), || run.text().contains("mist_device_uptime_seconds{"))
        .await;
    assert_eq!(fake.with(|i| i.connections), 1, "a refusal does not tear the connection down");
    // Once Mist accepts, the retry subscribes it.
    fake.with(|i| i.refuse.clear());
    wait_subscribed(&fake, &[clients(1)]).await;
    eventually("clients subscribed", Duration::from_secs(5), || {
        run.text()
            .contains(&format!("mist_otel_poller_site_subscribed{{site_id=\"{sid}\",channel=\"clients\"}} 1"))
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn removed_site_stops_and_its_series_disappear() {
    let fake = FakeMist::start(vec![site(&site_id(1), "Keep"), site(&site_id(2), "Gone")]).await;
    let mut c = cfg(&fake);
    c.site_refresh_interval = Duration::from_millis(300);
    let run = Running::start(&c).await;
    wait_subscribed(&fake, &[devices(1), devices(2), clients(2)]).await;
    let mut other = ap();
    other["mac"] = json!("5c5b35000002");
    fake.push(&devices(1), &ap(), true);
    fake.push(&devices(2), &other, true);
    fake.push(&clients(2), &client(), true);
    let gone = format!("site_id=\"{}\"", site_id(2));
    eventually("both sites' series", Duration::from_secs(5), || {
        let t = run.text();
        line(&t, "mist_device_uptime_seconds", &[&gone]).is_some()
            && line(&t, "mist_client_rssi_dbm", &[&gone]).is_some()
    })
    .await;
    fake.with(|i| i.sites.retain(|s| s["id"] != json!(site_id(2))));
    eventually("removed site's series gone", Duration::from_secs(5), || !run.text().contains(&gone)).await;
    eventually("unsubscribed", Duration::from_secs(5), || {
        !fake.subscribed(&devices(2)) && !fake.subscribed(&clients(2))
    })
    .await;
    let t = run.text();
    assert!(
        line(&t, "mist_device_uptime_seconds", &[&format!("site_id=\"{}\"", site_id(1))]).is_some(),
        "{t}"
    );
    assert!(t.contains(&format!("mist_org_sites_total{{org_id=\"{ORG}\"}} 1")), "{t}");
    assert!(fake.with(|i| i.unsubscribes.contains(&devices(2))));
    run.stop().await;
}

#[tokio::test]
async fn departed_client_series_expire_after_ttl() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    let mut c = cfg(&fake);
    c.series_ttl = Duration::from_millis(800);
    let run = Running::start(&c).await;
    wait_subscribed(&fake, &[devices(1), clients(1)]).await;
    fake.push(&clients(1), &client(), true);
    eventually("client present", Duration::from_secs(5), || {
        run.text().contains("client_mac=\"dadbfc123456\"")
    })
    .await;
    // The AP keeps reporting; the client does not (it left).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        fake.push(&devices(1), &ap(), true);
        let t = run.text();
        if !t.contains("dadbfc123456") && t.contains("mist_device_uptime_seconds{") {
            break;
        }
        assert!(Instant::now() < deadline, "client series did not expire: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("tracked gauge drops", Duration::from_secs(5), || {
        run.text().contains("mist_otel_poller_tracked{kind=\"client\"} 0")
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn site_list_is_paginated_and_filtered() {
    let sites: Vec<Value> = (1..=5).map(|i| site(&site_id(i), &format!("Site {i}"))).collect();
    let fake = FakeMist::start(sites).await;
    fake.with(|i| i.page_cap = 2);
    let mut c = cfg(&fake);
    c.exclude_sites = vec!["Site 3".into()];
    let run = Running::start(&c).await;
    wait_subscribed(&fake, &[devices(1), devices(2), devices(4), clients(5)]).await;
    eventually("4 sites", Duration::from_secs(5), || run.text().contains("mist_otel_poller_sites 4")).await;
    let pages: Vec<String> =
        fake.with(|i| i.calls.iter().filter(|c| c.contains("/sites?")).cloned().collect());
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages[2].contains("page=3"), "{pages:?}");
    assert!(!fake.with(|i| i.subscribes.contains(&devices(3))), "excluded site subscribed");
    run.stop().await;
}

#[tokio::test]
async fn rate_limited_answer_waits_for_retry_after() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    fake.with(|i| {
        i.rate_limit = 1;
        i.retry_after = 1;
    });
    let started = Instant::now();
    let run = Running::start(&cfg(&fake)).await;
    wait_subscribed(&fake, &[devices(1)]).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "the 429's Retry-After was not honoured");
    let t = run.text();
    assert!(t.contains("mist_otel_poller_api_rate_limited_total 1"), "{t}");
    assert!(t.contains("mist_otel_poller_api_calls_total{endpoint=\"self\",status=\"429\"} 1"), "{t}");
    assert!(t.contains("mist_otel_poller_api_calls_total{endpoint=\"self\",status=\"200\"} 1"), "{t}");
    assert!(t.contains("mist_otel_poller_api_budget_remaining"), "{t}");
    run.stop().await;
}

#[tokio::test]
async fn org_discovery_errors_name_the_choices() {
    let fake = FakeMist::start(vec![]).await;
    fake.with(|i| i.self_body = json!({"email": "x@example.com", "privileges": []}));
    let mut reg = Registry::default();
    let err = poller::start(&cfg(&fake), &mut reg, CancellationToken::new())
        .await
        .err()
        .expect("no org is an error");
    assert!(err.to_string().contains("no organisation"), "{err}");

    let fake = FakeMist::start(vec![]).await;
    fake.with(|i| {
        i.self_body = json!({"privileges": [
            {"scope": "org", "org_id": "11111111-1111-1111-1111-111111111111", "name": "Alpha", "role": "admin"},
            {"scope": "site", "org_id": "22222222-2222-2222-2222-222222222222", "org_name": "Beta", "site_id": "s", "role": "read"}
        ]})
    });
    let err = poller::start(&cfg(&fake), &mut Registry::default(), CancellationToken::new())
        .await
        .err()
        .expect("ambiguous");
    let msg = err.to_string();
    assert!(
        msg.contains("11111111-1111-1111-1111-111111111111 (Alpha)")
            && msg.contains("22222222-2222-2222-2222-222222222222 (Beta)"),
        "{msg}"
    );
    assert!(msg.contains("MIST_ORG_ID"), "{msg}");
}

#[tokio::test]
async fn token_never_appears_in_errors_or_metrics() {
    let fake = FakeMist::start(vec![]).await;
    let mut c = cfg(&fake);
    c.token = Secret::new("wrong-token-do-not-print");
    let err = poller::start(&c, &mut Registry::default(), CancellationToken::new()).await.err().expect("401");
    let msg = format!("{err} {err:?} {c:?}");
    assert!(msg.contains("401"), "{msg}");
    assert!(!msg.contains("wrong-token-do-not-print"), "{msg}");
    let run = Running::start(&cfg(&fake)).await;
    assert!(!run.text().contains(TOKEN));
    run.stop().await;
}

#[tokio::test]
async fn org_figures_come_from_rest_on_their_own_interval() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    let run = Running::start(&cfg(&fake)).await;
    eventually("org figures", Duration::from_secs(5), || run.text().contains("mist_org_tickets_total{"))
        .await;
    for _ in 0..20 {
        let _ = run.text();
    }
    let t = run.text();
    assert!(t.contains(&format!("mist_org_alarms_total{{org_id=\"{ORG}\",type=\"device_down\"}} 1")), "{t}");
    assert!(t.contains(&format!("mist_org_tickets_total{{org_id=\"{ORG}\",status=\"open\"}} 12")), "{t}");
    assert!(line(&t, "mist_site_devices_total", &[&site_id(1)]).unwrap().ends_with(" 3"), "{t}");
    assert!(line(&t, "mist_site_clients_total", &[&site_id(1)]).unwrap().ends_with(" 7"), "{t}");
    assert!(
        line(&t, "mist_site_info", &["site_name=\"HQ\"", "timezone=\"America/Los_Angeles\""]).is_some(),
        "{t}"
    );
    for ep in ["alarms/count", "tickets/count", "devices/count", "clients/count"] {
        assert_eq!(
            fake.with(|i| i.calls.iter().filter(|c| c.contains(ep)).count()),
            1,
            "{ep} polled per scrape"
        );
    }
    run.stop().await;
}

#[tokio::test]
async fn client_series_cap_counts_what_is_left_out() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    let mut c = cfg(&fake);
    c.max_clients = 1;
    let run = Running::start(&c).await;
    wait_subscribed(&fake, &[clients(1)]).await;
    let mut second = client();
    second["mac"] = json!("0a0b0c0d0e0f");
    fake.push(&clients(1), &client(), true);
    eventually("first client", Duration::from_secs(5), || run.text().contains("dadbfc123456")).await;
    fake.push(&clients(1), &second, true);
    eventually("drop counted", Duration::from_secs(5), || {
        run.text().contains("mist_otel_poller_series_dropped_total{kind=\"client\"} 1")
    })
    .await;
    assert!(!run.text().contains("0a0b0c0d0e0f"));
    run.stop().await;
}

#[tokio::test]
async fn channels_are_spread_over_connections_by_limit() {
    let sites: Vec<Value> = (1..=3).map(|i| site(&site_id(i), &format!("S{i}"))).collect();
    let fake = FakeMist::start(sites).await;
    let mut c = cfg(&fake);
    c.stream.channels_per_connection = 4;
    let run = Running::start(&c).await;
    let all: Vec<String> = (1..=3).flat_map(|i| [devices(i), clients(i)]).collect();
    wait_subscribed(&fake, &all).await;
    assert_eq!(fake.with(|i| i.connections), 2, "6 channels at 4 per connection");
    eventually("2 connections up", Duration::from_secs(5), || {
        run.text().contains("mist_otel_poller_ws_connections_up 2")
    })
    .await;
    run.stop().await;
}

#[tokio::test]
async fn otlp_producer_carries_the_same_set_with_resource_attributes() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as AV;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let fake = FakeMist::start(vec![site(&site_id(1), "Mist Office")]).await;
    let run = Running::start(&cfg(&fake)).await;
    wait_subscribed(&fake, &[devices(1), clients(1)]).await;
    fake.push(&devices(1), &ap(), true);
    fake.push(&clients(1), &client(), true);
    eventually("series", Duration::from_secs(5), || {
        let t = run.text();
        t.contains("mist_client_rssi_dbm{") && t.contains("mist_device_uptime_seconds{")
    })
    .await;
    // The resource is the webhook signals' one: configured service name and static attributes.
    let signals = mist_otel::signals::SignalsConfig {
        service_name: "mist-otel-test".into(),
        resource_attributes: [("deployment.environment".to_owned(), "test".to_owned())].into(),
        ..Default::default()
    };
    let rms = run.handle.producer(&signals).collect(1_700_000_000_000_000_000);
    let attr = |kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue], k: &str| {
        kvs.iter().find(|kv| kv.key == k).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AV::StringValue(s) => Some(s.clone()),
            _ => None,
        })
    };
    let site_rm = rms
        .iter()
        .find(|rm| attr(&rm.resource.as_ref().unwrap().attributes, "mist.site.id") == Some(site_id(1)))
        .expect("a resource per site");
    let res = &site_rm.resource.as_ref().unwrap().attributes;
    assert_eq!(attr(res, "service.name").as_deref(), Some("mist-otel-test"));
    assert_eq!(attr(res, "deployment.environment").as_deref(), Some("test"));
    assert_eq!(attr(res, "mist.org.id").as_deref(), Some(ORG));
    assert_eq!(attr(res, "mist.site.name").as_deref(), Some("Mist Office"));
    let metrics = &site_rm.scope_metrics[0].metrics;
    let rx = metrics.iter().find(|m| m.name == "mist_device_radio_receive_bytes_total").unwrap();
    let Some(Data::Sum(sum)) = &rx.data else { panic!("radio bytes must be a sum") };
    assert!(sum.is_monotonic && sum.aggregation_temporality == 2);
    let p =
        sum.data_points.iter().find(|p| attr(&p.attributes, "mist.band").as_deref() == Some("5")).unwrap();
    assert_eq!(attr(&p.attributes, "mist.device.mac").as_deref(), Some("5c5b35d0077b"));
    assert_eq!(attr(&p.attributes, "mist.device.name").as_deref(), Some("Phoenix"));
    assert_eq!(attr(&p.attributes, "mist.device.type").as_deref(), Some("ap"));
    assert_eq!(attr(&p.attributes, "mist.device.model").as_deref(), Some("AP43"));
    assert!(p.start_time_unix_nano > 0 && p.time_unix_nano == 1_700_000_000_000_000_000);
    let rssi = metrics.iter().find(|m| m.name == "mist_client_rssi_dbm").unwrap();
    let Some(Data::Gauge(g)) = &rssi.data else { panic!("rssi must be a gauge") };
    let p = &g.data_points[0];
    assert_eq!(attr(&p.attributes, "mist.client.mac").as_deref(), Some("dadbfc123456"));
    assert_eq!(attr(&p.attributes, "mist.client.hostname").as_deref(), Some("android-9b228dc33690"));
    assert_eq!(attr(&p.attributes, "mist.ssid").as_deref(), Some("Live_demo_only"));
    assert_eq!(attr(&p.attributes, "mist.band").as_deref(), Some("5"));
    assert_eq!(attr(&p.attributes, "mist.ap.mac").as_deref(), Some("5c5b358e6fea"));
    run.stop().await;
}

#[tokio::test]
async fn rest_calls_do_not_grow_with_sites_or_scrapes() {
    let sites: Vec<Value> = (1..=100).map(|i| site(&site_id(i), &format!("Site {i}"))).collect();
    let fake = FakeMist::start(sites).await;
    let run = Running::start(&cfg(&fake)).await;
    let all: Vec<String> = (1..=100).flat_map(|i| [devices(i), clients(i)]).collect();
    wait_subscribed(&fake, &all).await;
    eventually("org figures", Duration::from_secs(5), || run.text().contains("mist_org_alarms_total{")).await;
    for _ in 0..50 {
        let _ = run.text();
        let _ = run.handle.producer(&Default::default()).collect(1);
    }
    let calls = fake.with(|i| i.calls.clone());
    // /self once, the site list in one page, four org-level counts: 6, whatever the site count.
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert_eq!(fake.with(|i| i.connections), 1, "200 channels fit one connection");
    run.stop().await;
}

#[tokio::test]
async fn api_client_follows_next_links_of_search_endpoints() {
    use mist_otel::mist::api::{ApiClient, ApiOptions};
    use mist_otel::telemetry::poller::ApiMetrics;
    let fake = FakeMist::start(vec![]).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = ApiClient::new(&fake.base(), Secret::new(TOKEN), ApiOptions::default(), ApiMetrics::default())
        .unwrap();
    let items = api.get_list("alarms_search", &format!("/api/v1/orgs/{ORG}/alarms/search")).await.unwrap();
    let ids: Vec<&str> = items.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alarm-0", "alarm-1", "alarm-2", "alarm-3", "alarm-4", "alarm-5"]);
    assert_eq!(fake.calls_to(&format!("/api/v1/orgs/{ORG}/alarms/search")), 3);
}

#[tokio::test]
async fn unreachable_self_at_start_is_retried_in_the_background() {
    let fake = FakeMist::start(vec![site(&site_id(1), "HQ")]).await;
    fake.with(|i| i.fail_next = 2);
    let run = Running::start(&cfg(&fake)).await;
    wait_subscribed(&fake, &[devices(1), clients(1)]).await;
    let t = run.text();
    assert!(t.contains("mist_otel_poller_api_calls_total{endpoint=\"self\",status=\"503\"} 2"), "{t}");
    assert!(t.contains(&format!("mist_org_sites_total{{org_id=\"{ORG}\"}} 1")), "{t}");
    run.stop().await;
}
