//! Configuration faults (issue 14, items 10, 11 and 13), driven through the real binary:
//! a mistyped secret key never echoes its value, webhook secrets from the environment and from
//! YAML agree and short ones are refused, and `check-config` refuses whatever `serve` refuses at
//! start.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{ServerProcess, env, sign};

/// A long enough secret for the cases that are about something else.
const GOOD: &str = "config-faults-secret";

/// Runs `mist-otel <cmd>` in a clean environment (listeners on loopback port 0, a private data
/// directory) with `yaml` as its configuration file (when not empty) and `vars`; returns whether
/// it succeeded and its stderr. A `serve` that starts after all is stopped after 10 s and counts
/// as a success.
fn run(cmd: &str, yaml: &str, vars: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_mist-otel"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MIST_OTEL_LISTEN", "127.0.0.1:0")
        .env("MIST_OTEL_ADMIN_LISTEN", "127.0.0.1:0")
        .env("MIST_OTEL_DATA_DIR", dir.path().join("data"));
    if !yaml.is_empty() {
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, yaml).unwrap();
        c.arg("--config").arg(p);
    }
    c.envs(vars.iter().copied()).arg(cmd).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.is_none_or(|s| s.success()), err)
}

/// Both commands fail, and each error contains every `needle` and not `hidden`.
fn both_refuse(yaml: &str, vars: &[(&str, &str)], needles: &[&str], hidden: &str) {
    for cmd in ["check-config", "serve"] {
        let (ok, err) = run(cmd, yaml, vars);
        assert!(!ok, "{cmd} accepted {yaml:?} {vars:?}:\n{err}");
        for n in needles {
            assert!(err.contains(n), "{cmd}: the error lacks `{n}`:\n{err}");
        }
        assert!(hidden.is_empty() || !err.contains(hidden), "{cmd} printed `{hidden}`:\n{err}");
    }
}

#[test]
fn a_mistyped_secret_key_is_named_and_its_value_never_printed() {
    let v = "Hunter2-do-not-print";
    let secret_env = [("MIST_WEBHOOK_SECRET", GOOD)];
    for (yaml, key) in [
        (format!("ingest:\n  secret: {v}\n"), "ingest.secret"),
        (format!("poller:\n  api_token: {v}\n"), "poller.api_token"),
        (format!("export:\n  basic_auth:\n    username: u\n    passwd: {v}\n"), "export.basic_auth.passwd"),
        (
            format!("ingest:\n  endpoints:\n    - name: a\n      secrets: [{GOOD}]\n      secret: {v}\n"),
            "ingest.endpoints[0].secret",
        ),
        // Not a secret by its name: an unknown key's value is never shown either.
        (format!("ingest:\n  lisen: {v}\n"), "ingest.lisen"),
    ] {
        both_refuse(&yaml, &secret_env, &[key, "unknown field"], v);
    }
    both_refuse(
        "",
        &[("MIST_WEBHOOK_SECRET", GOOD), ("MIST_OTEL__INGEST__SECRET", v)],
        &["ingest.secret"],
        v,
    );
}

#[test]
fn webhook_secrets_are_kept_as_given_and_short_ones_refused() {
    // A comma separates secrets; `with` is a fragment too short to be a key.
    both_refuse(
        "",
        &[("MIST_WEBHOOK_SECRET", "first-long-secret,with,comma-long-secret")],
        &["ingest.secrets[1]", "at least 8", "MIST_WEBHOOK_SECRET"],
        ",with,",
    );
    both_refuse("ingest:\n  secrets: [\"short\"]\n", &[], &["ingest.secrets[0]", "at least 8"], "short\"");
    both_refuse(
        "ingest:\n  endpoints:\n    - name: a\n      secrets: [\"tiny\"]\n",
        &[("MIST_WEBHOOK_SECRET", GOOD)],
        &["ingest.endpoints[0].secrets[0]", "at least 8"],
        "tiny",
    );
}

#[tokio::test]
async fn spaces_around_an_env_secret_are_part_of_it_as_in_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let secret = " spaced-secret ";
    let mut server = ServerProcess::start(dir.path(), &env(&[("MIST_WEBHOOK_SECRET", secret)]), &[]);
    let body = b"{\"topic\":\"alarms\",\"events\":[]}".to_vec();
    let post = |s: &str| {
        support::client().post(server.url()).header("x-mist-signature-v2", sign(s, &body)).body(body.clone())
    };
    let literal = post(secret).send().await.unwrap().status();
    let trimmed = post(secret.trim()).send().await.unwrap().status();
    server.terminate(Duration::from_secs(20));
    assert_eq!((literal.as_u16(), trimmed.as_u16()), (200, 401), "signed with the value as given");
}

#[test]
fn check_config_refuses_what_serve_refuses_at_start() {
    // No secret at all.
    both_refuse("", &[], &["no webhook secret configured", "MIST_WEBHOOK_SECRET"], "");
    let secret = [("MIST_WEBHOOK_SECRET", GOOD)];
    // The listener's certificate is missing.
    both_refuse(
        "ingest:\n  tls:\n    cert: /nonexistent/cert.pem\n    key: /nonexistent/key.pem\n",
        &secret,
        &["TLS certificate", "/nonexistent/cert.pem"],
        "",
    );
    // The backend's CA file is missing.
    both_refuse(
        "export:\n  endpoint: https://127.0.0.1:4317\n  tls:\n    ca_file: /nonexistent/ca.pem\n",
        &secret,
        &["tls.ca_file", "/nonexistent/ca.pem"],
        "",
    );
    // Ports no backend can listen on.
    for port in ["0", "99999"] {
        let url = format!("http://127.0.0.1:{port}");
        both_refuse(
            "",
            &[secret[0], ("OTEL_EXPORTER_OTLP_ENDPOINT", &url)],
            &["export.endpoint", "port"],
            "",
        );
        let yaml = format!("export:\n  traces:\n    endpoint: {url}/v1/traces\n");
        both_refuse(&yaml, &secret, &["export.traces.endpoint", "port"], "");
    }
}
