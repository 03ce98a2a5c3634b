//! The status page as a person sees it: Debian's headless Chromium loads the admin page of the
//! real binary after signed deliveries and a rejected one. Chromium is installed by
//! `scripts/deps/chromium.sh`; without it these tests fail rather than skip.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{ServerProcess, client, env, samples_dir, sign};

const SECRET: &str = "status-page-secret-7c41d9";

/// The Chromium binary, or a failure that says how to install it.
fn chromium() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/bin"]) {
        for name in ["chromium", "chromium-browser"] {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium not found: run scripts/deps/chromium.sh (installs Debian's chromium) and retry");
}

/// Headless Chromium with the flags that work on a closed network, its own empty profile.
fn chromium_command(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// Runs headless Chromium on `url` and returns its stdout.
fn chromium_run(extra: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = chromium_command(profile.path())
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// The page's text as a reader sees it: tags become spaces, entities are decoded, runs of
/// whitespace collapse.
fn visible_text(dom: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut in_script = false;
    let mut rest = dom;
    while let Some(c) = rest.chars().next() {
        if !in_tag && rest.starts_with("<script") {
            in_script = true;
        }
        if in_script && rest.starts_with("</script>") {
            in_script = false;
        }
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag && !in_script => out.push(c),
            _ => {}
        }
        rest = &rest[c.len_utf8()..];
    }
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(samples_dir().join("webhooks").join(name)).unwrap()
}

async fn post(url: &str, body: Vec<u8>, signature: &str) -> u16 {
    client()
        .post(url)
        .header("content-type", "application/json")
        .header("x-mist-signature-v2", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Markup inside an event: must be shown as text, never become an element.
const HOSTILE: &str = r#"{"topic":"audits","events":[{"message":"<img src=x onerror=alert(1)> & co","timestamp":1700000000.5}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_shows_deliveries_rejections_and_tail() {
    let chromium_path = chromium();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &env(&[("MIST_WEBHOOK_SECRET", SECRET)]), &[]);
    let url = server.url();

    for name in ["alarms.json", "device-updowns.json", "nac-events.json"] {
        let body = sample(name);
        assert_eq!(post(&url, body.clone(), &sign(SECRET, &body)).await, 200, "{name}");
    }
    // A second alarms delivery so the page must count, not just list.
    let alarms = sample("alarms.json");
    assert_eq!(post(&url, alarms.clone(), &sign(SECRET, &alarms)).await, 200);
    let hostile = HOSTILE.as_bytes().to_vec();
    assert_eq!(post(&url, hostile.clone(), &sign(SECRET, &hostile)).await, 200);
    // Signed with another secret: rejected.
    let body = sample("device-events.json");
    assert_eq!(post(&url, body.clone(), &sign("not-the-secret", &body)).await, 401);

    let page = server.admin_url("/");
    assert!(chromium_path.is_file());
    let dom = tokio::task::spawn_blocking(move || chromium_run(&["--dump-dom"], &page)).await.unwrap();
    let text = visible_text(&dom);

    assert!(text.contains("mist-otel status"), "{text}");
    // The topic table: topic, accepted, events, rejected, last outcome.
    assert!(text.contains("alarms 2 2 0 verified"), "alarms row missing: {text}");
    assert!(text.contains("device-updowns 1 1 0 verified"), "{text}");
    assert!(text.contains("nac-events 1 1 0 verified"), "{text}");
    assert!(text.contains("(not parsed) 0 0 1 rejected: signature does not match"), "{text}");
    // The recent deliveries list has the rejection with its status and reason.
    assert!(text.contains("default — 401 0 rejected: signature does not match"), "{text}");
    // Components not running here are shown as such, not hidden.
    assert!(text.contains("poller: not enabled"), "{text}");
    // Live tail: the events themselves, markup shown as text.
    assert!(text.contains("<img src=x onerror=alert(1)> & co"), "hostile text not shown literally: {text}");
    assert!(!dom.contains("<img"), "event markup became an element:\n{dom}");
    assert!(text.contains("device-updowns"), "{text}");
    // Never the secret.
    assert!(!dom.contains(SECRET), "secret on the page");
    let json = client().get(server.admin_url("/status.json")).send().await.unwrap().text().await.unwrap();
    assert!(!json.contains(SECRET), "secret in status.json");
    assert!(!server.logs().contains(SECRET), "secret in the server's log");
}

/// `/status.json` carries the same facts, and `/status/events` streams each accepted event to
/// an open page as it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_live_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &env(&[("MIST_WEBHOOK_SECRET", SECRET)]), &[]);
    let mut stream = client().get(server.admin_url("/status/events")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));

    let body = sample("client-join.json");
    assert_eq!(post(&server.url(), body.clone(), &sign(SECRET, &body)).await, 200);

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while !seen.contains("\"topic\":\"client-join\"") {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no client-join event on the stream; got: {seen}");
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(left, stream.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("data: "), "{seen}");

    let v: serde_json::Value =
        client().get(server.admin_url("/status.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["topics"]["client-join"]["accepted"], 1);
    assert_eq!(v["deliveries"][0]["outcome"], "verified");
    assert_eq!(v["health"]["poller"]["enabled"], false);
    assert_eq!(v["events"][0]["topic"], "client-join");
}

/// A page open in headless Chromium, driven over the DevTools protocol (to watch the page
/// change after it loaded, which `--dump-dom` cannot).
struct LivePage {
    child: std::process::Child,
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl LivePage {
    async fn open(url: &str) -> LivePage {
        use std::io::BufRead;
        let profile = tempfile::tempdir().unwrap();
        let mut child = chromium_command(profile.path())
            .arg("--remote-debugging-port=0")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        // Chromium prints "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…".
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("DevTools listening on ws://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
            }
        });
        let Ok(host) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("chromium did not open its DevTools port");
        };
        // The page target opened with the URL.
        let deadline = Instant::now() + Duration::from_secs(30);
        let ws_url = loop {
            let list: serde_json::Value =
                client().get(format!("http://{host}/json/list")).send().await.unwrap().json().await.unwrap();
            let page = list.as_array().and_then(|l| l.iter().find(|t| t["type"] == "page").cloned());
            if let Some(u) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str().map(str::to_owned)) {
                break u;
            }
            assert!(Instant::now() < deadline, "no page target in chromium");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await.expect("DevTools websocket");
        LivePage { child, ws, next_id: 1, _profile: profile }
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    async fn eval(&mut self, expr: &str) -> serde_json::Value {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let id = self.next_id;
        self.next_id += 1;
        let msg = serde_json::json!({"id": id, "method": "Runtime.evaluate",
            "params": {"expression": expr, "returnByValue": true}});
        self.ws.send(Message::Text(msg.to_string().into())).await.unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("DevTools answer in time")
                .expect("DevTools socket open")
                .unwrap();
            if let Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    return v["result"]["result"]["value"].clone();
                }
            }
        }
    }

    /// Polls `expr` until it is `true`, or fails with `what` after `secs`.
    async fn wait_for(&mut self, expr: &str, secs: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.eval(expr).await != serde_json::Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for LivePage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An open page shows events that arrive after it loaded (the live tail), as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_updates_an_open_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &env(&[("MIST_WEBHOOK_SECRET", SECRET)]), &[]);
    let mut page = LivePage::open(&server.admin_url("/")).await;
    // The target may still show about:blank before it navigates to the page.
    page.wait_for(
        "document.readyState === 'complete' && document.getElementById('tail') !== null",
        60,
        "the status page to load",
    )
    .await;
    assert_eq!(page.eval("document.getElementById('tail').children.length").await, 0);
    // The page's EventSource is connected once the server counts a live viewer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value =
            client().get(server.admin_url("/status.json")).send().await.unwrap().json().await.unwrap();
        if v["live_viewers"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the page never opened its live tail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let body = br#"{"topic":"device-events","events":[{"type":"AP_RESTARTED","ap_name":"<b>lobby-ap</b>","timestamp":1700000100}]}"#.to_vec();
    assert_eq!(post(&server.url(), body.clone(), &sign(SECRET, &body)).await, 200);
    page.wait_for(
        "document.getElementById('tail').innerText.includes('device-events type=AP_RESTARTED')",
        30,
        "the event in the live tail",
    )
    .await;
    let tail = page.eval("document.getElementById('tail').innerText").await;
    assert!(tail.as_str().unwrap().contains("ap_name=<b>lobby-ap</b>"), "{tail}");
    // Shown as text: the markup did not become an element.
    assert_eq!(page.eval("document.querySelectorAll('#tail b').length").await, 0);
}
