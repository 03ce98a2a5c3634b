//! `mist-otel webhook send` against the real server, and `webhook register` (dry run, and
//! against a small fake of Mist's webhooks API written here).

mod support;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::process::Output;
use std::sync::{Arc, Mutex};
use support::{ServerProcess, env, samples_dir};

const SECRET: &str = "cli-test-secret-5e0a1f";
const TOKEN: &str = "api-token-93b7c2d8";

/// Runs the real binary with a clean environment plus `envs`.
async fn mist_otel(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mist-otel"));
    cmd.env_clear();
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", p);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), cmd.args(args).output())
        .await
        .expect("mist-otel did not finish in 60 s")
        .expect("run mist-otel")
}

/// Runs the binary like [`mist_otel`], asserts it succeeded, and returns what it printed.
async fn mist_otel_ok(args: &[&str], envs: &[(&str, &str)]) -> String {
    let r = mist_otel(args, envs).await;
    let out = text(&r);
    assert!(r.status.success(), "{out}");
    out
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn sample_paths(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| samples_dir().join("webhooks").join(n).display().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_like_mist_and_reports_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &env(&[("MIST_WEBHOOK_SECRET", SECRET)]), &[]);
    let url = server.url();
    let files =
        sample_paths(&["alarms.json", "device-updowns.json", "nac-events.json", "client-sessions.json"]);

    let mut args = vec!["webhook", "send", "--url", url.as_str(), "--secret", SECRET];
    args.extend(files.iter().map(String::as_str));
    let out = mist_otel_ok(&args, &[]).await;
    assert!(out.contains("[1/4] alarms.json → 200"), "{out}");
    assert!(out.contains("[4/4] client-sessions.json → 200"), "{out}");
    assert!(out.contains("4 of 4 accepted"), "{out}");

    // The server saw them as verified deliveries of those topics.
    let v: Value =
        support::client().get(server.admin_url("/status.json")).send().await.unwrap().json().await.unwrap();
    for topic in ["alarms", "device-updowns", "nac-events", "client-sessions"] {
        assert_eq!(v["topics"][topic]["accepted"], 1, "{topic}: {v}");
    }

    // The secret from the environment, with the SHA-1 header as well: still accepted.
    let one = sample_paths(&["audits.json"]);
    let ok =
        mist_otel(&["webhook", "send", "--sha1", "--url", &url, &one[0]], &[("MIST_WEBHOOK_SECRET", SECRET)])
            .await;
    assert!(ok.status.success(), "{}", text(&ok));

    // A wrong secret: 401 reported per file, non-zero exit, and no secret echoed.
    let wrong = "wrong-secret-value-1";
    let mut args = vec!["webhook", "send", "--url", url.as_str(), "--secret", wrong];
    args.extend(files[..2].iter().map(String::as_str));
    let bad = mist_otel(&args, &[]).await;
    let out = text(&bad);
    assert!(!bad.status.success(), "{out}");
    assert!(out.contains("[1/2] alarms.json → 401 Unauthorized"), "{out}");
    assert!(out.contains("signature does not match"), "{out}");
    assert!(out.contains("2 of 2 deliveries failed"), "{out}");
    assert!(!out.contains(wrong) && !out.contains(SECRET), "{out}");

    // A directory stands for its .json files, in name order.
    let batch = tempfile::tempdir().unwrap();
    for n in ["b-zone.json", "a-ping.json"] {
        let src = if n.ends_with("zone.json") { "zone.json" } else { "ping.json" };
        std::fs::copy(samples_dir().join("webhooks").join(src), batch.path().join(n)).unwrap();
    }
    std::fs::write(batch.path().join("notes.txt"), "not a payload").unwrap();
    let d = batch.path().display().to_string();
    let out = mist_otel_ok(&["webhook", "send", "--url", &url, "--secret", SECRET, &d], &[]).await;
    assert!(out.contains("[1/2] a-ping.json → 200") && out.contains("[2/2] b-zone.json → 200"), "{out}");

    // A missing file is reported and fails the run without stopping the others.
    let missing = dir.path().join("nope.json").display().to_string();
    let r =
        mist_otel(&["webhook", "send", "--url", &url, "--secret", SECRET, &missing, &files[0]], &[]).await;
    let out = text(&r);
    assert!(!r.status.success());
    assert!(
        out.contains("[1/2] nope.json → cannot read") && out.contains("[2/2] alarms.json → 200"),
        "{out}"
    );
}

#[tokio::test]
async fn register_dry_run_shows_the_request_without_secrets() {
    let args = [
        "webhook",
        "register",
        "--site",
        "site-1",
        "--url",
        "https://otel.example.com/mist/webhook",
        "--name",
        "mist-otel",
        "--topics",
        "alarms,device_updowns",
        "--secret",
        SECRET,
        "--cloud",
        "emea01",
        "--dry-run",
    ];
    let out = mist_otel_ok(&args, &[]).await;
    assert!(out.contains("POST https://api.eu.mist.com/api/v1/sites/site-1/webhooks"), "{out}");
    assert!(out.contains("Authorization: Token <redacted>"), "{out}");
    assert!(out.contains("\"secret\": \"<redacted>\""), "{out}");
    assert!(out.contains("\"device-updowns\""), "topics normalised: {out}");
    assert!(!out.contains(SECRET), "{out}");

    // Without --dry-run and without a token: refused, nothing sent.
    let r = mist_otel(&args[..args.len() - 1], &[]).await;
    assert!(!r.status.success());
    assert!(text(&r).contains("MIST_API_TOKEN is not set"), "{}", text(&r));
}

/// A fake of Mist's org webhooks API: list, create, update; checks the token.
#[derive(Default)]
struct FakeMist {
    hooks: Vec<Value>,
    posts: usize,
    puts: usize,
}

type Shared = Arc<Mutex<FakeMist>>;

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Token {TOKEN}"))
}

async fn list(State(s): State<Shared>, Path(org): Path<String>, h: HeaderMap) -> (StatusCode, Json<Value>) {
    if !authorized(&h) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Authentication credentials were not provided."})),
        );
    }
    let hooks = s.lock().unwrap().hooks.iter().filter(|w| w["org_id"] == org).cloned().collect();
    (StatusCode::OK, Json(Value::Array(hooks)))
}

async fn create(
    State(s): State<Shared>,
    Path(org): Path<String>,
    h: HeaderMap,
    Json(mut body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&h) {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    }
    let mut st = s.lock().unwrap();
    st.posts += 1;
    body["id"] = json!(format!("wh-{}", st.hooks.len() + 1));
    body["org_id"] = json!(org);
    st.hooks.push(body.clone());
    (StatusCode::OK, Json(body))
}

async fn update(
    State(s): State<Shared>,
    Path((_org, id)): Path<(String, String)>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorized(&h) {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    }
    let mut st = s.lock().unwrap();
    st.puts += 1;
    let Some(w) = st.hooks.iter_mut().find(|w| w["id"] == id.as_str()) else {
        return (StatusCode::NOT_FOUND, Json(json!({"detail": "not found"})));
    };
    for (k, v) in body.as_object().unwrap() {
        w[k] = v.clone();
    }
    let w = w.clone();
    (StatusCode::OK, Json(w))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_creates_then_updates_one_webhook() {
    let state: Shared = Default::default();
    // Someone else's webhook in the same org must be left alone.
    state
        .lock()
        .unwrap()
        .hooks
        .push(json!({"id": "wh-0", "org_id": "org-1", "name": "splunk", "topics": ["audits"]}));
    let app = Router::new()
        .route("/api/v1/orgs/{org}/webhooks", get(list).post(create))
        .route("/api/v1/orgs/{org}/webhooks/{id}", put(update))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let run = |topics: &'static str| {
        let base = base.clone();
        async move {
            let args = [
                "webhook",
                "register",
                "--org",
                "org-1",
                "--url",
                "https://otel.example.com/mist/webhook",
                "--name",
                "mist-otel",
                "--topics",
                topics,
                "--api-url",
                &base,
            ];
            mist_otel_ok(&args, &[("MIST_API_TOKEN", TOKEN), ("MIST_WEBHOOK_SECRET", SECRET)]).await
        }
    };

    let out = run("alarms,device-updowns").await;
    assert!(
        out.contains("no webhook named `mist-otel`") && out.contains("created webhook `mist-otel`"),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !out.contains(TOKEN), "{out}");

    let out = run("alarms,device-updowns,nac-events").await;
    assert!(out.contains("found webhook `mist-otel` (id wh-2)") && out.contains("updated webhook"), "{out}");

    {
        let st = state.lock().unwrap();
        assert_eq!((st.posts, st.puts), (1, 1));
        let ours: Vec<&Value> = st.hooks.iter().filter(|w| w["name"] == "mist-otel").collect();
        assert_eq!(ours.len(), 1, "exactly one webhook: {:?}", st.hooks);
        assert_eq!(ours[0]["topics"], json!(["alarms", "device-updowns", "nac-events"]));
        assert_eq!(ours[0]["secret"], SECRET);
        assert_eq!(ours[0]["type"], "http-post");
        assert_eq!(ours[0]["url"], "https://otel.example.com/mist/webhook");
        assert_eq!(st.hooks.len(), 2);
    }

    // Dry run with a token: looks up (read-only) and shows the update it would make.
    let args = [
        "webhook",
        "register",
        "--org",
        "org-1",
        "--url",
        "https://x/mist/webhook",
        "--name",
        "mist-otel",
        "--topics",
        "alarms",
        "--api-url",
        &base,
        "--secret",
        SECRET,
        "--dry-run",
    ];
    let out = mist_otel_ok(&args, &[("MIST_API_TOKEN", TOKEN)]).await;
    assert!(out.contains(&format!("PUT {base}/api/v1/orgs/org-1/webhooks/wh-2")), "{out}");
    assert!(!out.contains(SECRET) && !out.contains(TOKEN), "{out}");
    {
        let st = state.lock().unwrap();
        assert_eq!((st.posts, st.puts), (1, 1), "a dry run changed something");
    }

    // A wrong token (the same request without --dry-run): the API's refusal is reported,
    // non-zero exit, token not echoed.
    let r = mist_otel(&args[..args.len() - 1], &[("MIST_API_TOKEN", "bad-token-77")]).await;
    let out = text(&r);
    assert!(!r.status.success(), "{out}");
    assert!(out.contains("401") && !out.contains("bad-token-77"), "{out}");
}
