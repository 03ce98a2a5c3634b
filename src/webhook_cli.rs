//! `mist-otel webhook …`: helpers for operators.
//!
//! - `send` signs payload files and posts them exactly as Mist does, to test a deployment.
//! - `register` creates or updates the org/site webhook through the Mist API, idempotent by name.
//!
//! Secrets and the API token are never printed: requests are shown with `<redacted>` in their
//! place, and any text echoed from a server has them blanked out too.

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args, Subcommand};
use mist_otel::ingest::signature::{HEADER_V1, HEADER_V2, sign_v1, sign_v2};
use mist_otel::mist::cloud::rest_base;
use mist_otel::mist::envelope::{KNOWN_TOPICS, normalize_topic};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// What Mist's webhook sender calls itself (as recorded in Mist's delivery logs).
pub const MIST_USER_AGENT: &str = "Mist-webhook";

const REDACTED: &str = "<redacted>";

/// `webhook` subcommands.
#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Sign payload files and POST them as Mist does (raw bytes, X-Mist-Signature-v2).
    ///
    /// Prints one line per file and exits non-zero if any delivery was not answered 2xx.
    Send(SendArgs),
    /// Create or update the org or site webhook through the Mist API, idempotent by name.
    ///
    /// The API token is read from MIST_API_TOKEN and never printed.
    Register(RegisterArgs),
}

/// Arguments of `webhook send`.
#[derive(Args)]
pub struct SendArgs {
    /// Payload files (`{"topic":..,"events":[..]}`), sent byte for byte; a directory stands for
    /// the `.json` files in it, in name order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The receiver, e.g. http://127.0.0.1:8080/mist/webhook.
    #[arg(long)]
    pub url: String,
    /// The webhook secret to sign with.
    #[arg(long, env = "MIST_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Also send the legacy SHA-1 signature header (X-Mist-Signature), as Mist does.
    #[arg(long)]
    pub sha1: bool,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// Arguments of `webhook register`.
#[derive(Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["org", "site"])))]
pub struct RegisterArgs {
    /// Organisation id (org-level webhook).
    #[arg(long)]
    pub org: Option<String>,
    /// Site id (site-level webhook).
    #[arg(long)]
    pub site: Option<String>,
    /// Where Mist should deliver, e.g. https://mist-otel.example.com/mist/webhook.
    #[arg(long)]
    pub url: String,
    /// The webhook's name; an existing webhook with this name is updated instead of duplicated.
    #[arg(long)]
    pub name: String,
    /// Comma-separated topics, e.g. alarms,device-updowns,client-sessions.
    #[arg(long, value_delimiter = ',', required = true)]
    pub topics: Vec<String>,
    /// The secret Mist signs deliveries with (the server's MIST_WEBHOOK_SECRET).
    #[arg(long, env = "MIST_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Mist cloud (global01…05, emea01…04, apac01…03).
    #[arg(long, env = "MIST_CLOUD", conflicts_with = "api_url", default_value = "global01")]
    pub cloud: String,
    /// API base URL instead of a cloud name (e.g. a proxy or a test server).
    #[arg(long)]
    pub api_url: Option<String>,
    /// Do not verify the receiver's TLS certificate (self-signed test deployments only).
    #[arg(long)]
    pub no_verify_cert: bool,
    /// Show the requests without changing anything (looks up existing webhooks when a token is set).
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs a `webhook` subcommand.
pub async fn run(cmd: WebhookCommand) -> Result<()> {
    match cmd {
        WebhookCommand::Send(a) => send(a).await,
        WebhookCommand::Register(a) => register(a, std::env::var("MIST_API_TOKEN").ok()).await,
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(MIST_USER_AGENT)
        .build()
        .context("cannot build the HTTP client")
}

/// Blanks out every secret in text that came from elsewhere before it is printed.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, REDACTED);
    }
    out
}

/// A server's answer on one line, bounded in length.
fn one_line(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        format!("{}…", flat.chars().take(200).collect::<String>())
    } else {
        flat
    }
}

/// The files to send: each argument, or the `.json` files of a directory argument (sorted).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("{} holds no .json files", p.display());
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

async fn send(a: SendArgs) -> Result<()> {
    let client = http_client(Duration::from_secs(a.timeout.max(1)))?;
    let files = expand(&a.files)?;
    let total = files.len();
    let mut failed = 0usize;
    for (i, path) in files.iter().enumerate() {
        let label = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = format!("[{}/{total}] {label}", i + 1);
        let body = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                failed += 1;
                println!("{prefix} → cannot read {}: {e}", path.display());
                continue;
            }
        };
        let mut req = client
            .post(&a.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_V2, sign_v2(&a.secret, &body));
        if a.sha1 {
            req = req.header(HEADER_V1, sign_v1(&a.secret, &body));
        }
        match req.body(body).send().await {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let answer = one_line(&scrub(&text, &[&a.secret]));
                if status.is_success() {
                    println!("{prefix} → {} {answer}", status.as_u16());
                } else {
                    failed += 1;
                    println!(
                        "{prefix} → {} {}: {answer}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("")
                    );
                }
            }
            Err(e) => {
                failed += 1;
                println!("{prefix} → error: {}", scrub(&e.to_string(), &[&a.secret]));
            }
        }
    }
    println!("{} of {total} accepted", total - failed);
    if failed > 0 {
        bail!("{failed} of {total} deliveries failed");
    }
    Ok(())
}

/// The webhook as Mist's API takes it.
fn webhook_body(a: &RegisterArgs, secret: &str) -> Value {
    json!({
        "name": a.name,
        "type": "http-post",
        "url": a.url,
        "secret": secret,
        "topics": a.topics,
        "enabled": true,
        "verify_cert": !a.no_verify_cert,
    })
}

/// How many API requests `register` makes (look up, then create or update), for its progress
/// lines.
const REGISTER_STEPS: usize = 2;

/// Creates or updates the webhook named `a.name`: looks it up by name, then PUTs it if found
/// or POSTs it if not; a dry run only shows the requests.
async fn register(mut a: RegisterArgs, token: Option<String>) -> Result<()> {
    a.topics = normalized_topics(&a.topics)?;
    let target = Target::of(&a)?;
    let token = token.filter(|t| !t.trim().is_empty());
    let secrets = [a.secret.as_str(), token.as_deref().unwrap_or("")];

    if token.is_none() && !a.dry_run {
        bail!("MIST_API_TOKEN is not set (an API token with write access to the {} is needed)", target.scope);
    }
    let client = http_client(Duration::from_secs(30))?;

    let shown = serde_json::to_string_pretty(&webhook_body(&a, REDACTED))?;
    let existing = match &token {
        Some(tok) => {
            let found = find_by_name(&client, &target.list_url, tok, &a.name, &secrets).await?;
            print_lookup(&target.list_url, &a.name, &found);
            Some(found)
        }
        None => None,
    };

    let list_url = &target.list_url;
    let (method, url) = match &existing {
        Some(Some(wid)) => (reqwest::Method::PUT, format!("{list_url}/{wid}")),
        _ => (reqwest::Method::POST, list_url.clone()),
    };
    if a.dry_run {
        print_dry_run(&a, list_url, existing.is_some(), &method, &url, &shown);
        return Ok(());
    }

    let Some(tok) = token.as_deref() else { bail!("MIST_API_TOKEN is not set") };
    let req = client
        .request(method.clone(), &url)
        .header(reqwest::header::AUTHORIZATION, format!("Token {tok}"))
        .json(&webhook_body(&a, &a.secret));
    let (status, text) = send_checked(req, &format!("{method} {url}"), &secrets).await?;
    print_written(&a, &target, &method, &url, status, &text);
    Ok(())
}

/// The topics as Mist spells them, empty ones dropped; at least one is needed. Topics
/// mist-otel does not know are kept, with a warning.
fn normalized_topics(topics: &[String]) -> Result<Vec<String>> {
    let topics: Vec<String> = topics.iter().map(|t| normalize_topic(t)).filter(|t| !t.is_empty()).collect();
    if topics.is_empty() {
        bail!("--topics needs at least one topic");
    }
    for t in &topics {
        if KNOWN_TOPICS.binary_search(&t.as_str()).is_err() {
            eprintln!("warning: `{t}` is not a topic mist-otel knows; Mist may refuse it");
        }
    }
    Ok(topics)
}

/// Where a webhook is registered: the org or the site, and its webhook list in the API.
struct Target<'a> {
    /// `org` or `site`.
    scope: &'static str,
    scope_id: &'a str,
    list_url: String,
}

impl<'a> Target<'a> {
    /// The target named by `--org`/`--site` on the API of `--api-url` or `--cloud`.
    fn of(a: &'a RegisterArgs) -> Result<Self> {
        let base = match &a.api_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => rest_base(&a.cloud)?,
        };
        let (scope, scope_id) = match (&a.org, &a.site) {
            (Some(o), _) => ("org", o.as_str()),
            (None, Some(s)) => ("site", s.as_str()),
            (None, None) => bail!("give --org or --site"),
        };
        let list_url = format!("{base}/api/v1/{scope}s/{scope_id}/webhooks");
        Ok(Target { scope, scope_id, list_url })
    }
}

/// Step 1 done: reports on one line whether a webhook named `name` was found.
fn print_lookup(list_url: &str, name: &str, found: &Option<String>) {
    println!(
        "[1/{REGISTER_STEPS}] GET {list_url} → {}",
        match found {
            Some(id) => format!("found webhook `{name}` (id {id})"),
            None => format!("no webhook named `{name}`"),
        }
    );
}

/// Shows the requests a real run would make; without a token (`looked_up` false) the
/// lookup is not done, so both possible writes are shown.
fn print_dry_run(
    a: &RegisterArgs,
    list_url: &str,
    looked_up: bool,
    method: &reqwest::Method,
    url: &str,
    shown: &str,
) {
    println!("dry run: nothing will be changed");
    if !looked_up {
        println!(
            "GET {list_url}   (looks for a webhook named `{}`; MIST_API_TOKEN is not set, so not done)",
            a.name
        );
        println!("POST {list_url}   (if none exists; otherwise PUT {list_url}/{{id}})");
    } else {
        println!("{method} {url}");
    }
    println!("Authorization: Token {REDACTED}\nContent-Type: application/json\n{shown}");
}

/// Step 2 done: reports the write and the webhook's id from the API's answer (`?` if none).
fn print_written(
    a: &RegisterArgs,
    target: &Target<'_>,
    method: &reqwest::Method,
    url: &str,
    status: reqwest::StatusCode,
    text: &str,
) {
    let id = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let verb = if method == reqwest::Method::PUT { "updated" } else { "created" };
    let (scope, scope_id) = (target.scope, target.scope_id);
    println!("[2/{REGISTER_STEPS}] {method} {url} → {}", status.as_u16());
    println!("{verb} webhook `{}` (id {id}) for {scope} {scope_id}: topics {}", a.name, a.topics.join(","));
}

/// Sends one Mist API request; its status and text when it succeeds, else an error naming the
/// request (`what`) with the answer, secrets blanked.
async fn send_checked(
    req: reqwest::RequestBuilder,
    what: &str,
    secrets: &[&str],
) -> Result<(reqwest::StatusCode, String)> {
    let resp = req.send().await.with_context(|| what.to_owned())?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what} → {}: {}", status.as_u16(), one_line(&scrub(&text, secrets)));
    }
    Ok((status, text))
}

/// The id of the one webhook named `name`, if any; several with that name is an error because
/// updating one of them would leave the others delivering.
async fn find_by_name(
    client: &reqwest::Client,
    list_url: &str,
    token: &str,
    name: &str,
    secrets: &[&str],
) -> Result<Option<String>> {
    let req = client
        .get(format!("{list_url}?limit=1000"))
        .header(reqwest::header::AUTHORIZATION, format!("Token {token}"));
    let (_, text) = send_checked(req, &format!("GET {list_url}"), secrets).await?;
    let list: Vec<Value> =
        serde_json::from_str(&text).with_context(|| format!("GET {list_url}: answer is not a JSON array"))?;
    let ids: Vec<String> = list
        .iter()
        .filter(|w| w.get("name").and_then(Value::as_str) == Some(name))
        .filter_map(|w| w.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    match ids.len() {
        0 => Ok(None),
        1 => Ok(ids.into_iter().next()),
        n => bail!("{n} webhooks are named `{name}` ({}); remove the duplicates first", ids.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_blanks_secrets() {
        assert_eq!(scrub("a s3 b s3", &["s3", ""]), "a <redacted> b <redacted>");
    }

    #[test]
    fn one_line_is_bounded() {
        assert_eq!(one_line("a\n b"), "a b");
        assert!(one_line(&"x".repeat(500)).chars().count() <= 201);
    }
}
