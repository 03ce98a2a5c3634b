//! The deployment files (docker-compose.yml, otel-collector.yaml, Dockerfile, Grafana
//! dashboards) agree with each other and with what the server actually reads. Docker is not
//! available here, so they are checked by parsing; the health probe the images use is run for
//! real against the binary.

mod support;

use mist_otel::app::{Config, config::ALIASES};
use mist_otel::config::Env;
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use support::{ServerProcess, client, env, sign};

/// The standard OpenTelemetry variables the server honours (see the mission's export contract).
const OTEL_STANDARD: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_METRIC_EXPORT_INTERVAL",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p).unwrap_or_else(|| panic!("missing key {}", path.join(".")));
    }
    cur
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence().unwrap_or_else(|| panic!("not a list: {v:?}")).iter().map(str_of).collect()
}

/// `.env.example` as a map (the values compose would read from `.env`).
fn env_example() -> BTreeMap<String, String> {
    read(".env.example")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!(".env.example: bad line {l}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// Compose-style interpolation: `${V}`, `${V:-default}`, `${V-default}`, `${V:?message}`.
/// Returns the value and the variables referenced.
fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("${") {
        out.push_str(&rest[..pos]);
        let body = &rest[pos + 2..];
        let end = body.find('}').unwrap_or_else(|| panic!("unterminated ${{ in {text}"));
        let inner = &body[..end];
        let name_end = inner.find([':', '-', '?']).unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_end);
        used.push(name.to_owned());
        let val = vars.get(name).filter(|v| !v.is_empty()).cloned();
        let resolved = if let Some(d) = op.strip_prefix(":-").or_else(|| op.strip_prefix('-')) {
            val.unwrap_or_else(|| d.to_owned())
        } else if op.starts_with(":?") {
            val.unwrap_or_else(|| panic!("compose would refuse to start: {name} unset ({op})"))
        } else {
            val.unwrap_or_default()
        };
        out.push_str(&resolved);
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    (out, used)
}

/// `host:port` → port.
fn port_of(addr: &str) -> u16 {
    let a = addr.trim_start_matches("http://").trim_start_matches("https://");
    let a = a.split('/').next().unwrap();
    a.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or_else(|| panic!("no port in {addr}"))
}

fn host_of(addr: &str) -> String {
    let a = addr.trim_start_matches("http://").trim_start_matches("https://");
    a.split('/').next().unwrap().rsplit_once(':').unwrap().0.to_owned()
}

/// The mist-otel service's environment, interpolated with `.env.example`.
fn mist_otel_env(compose: &Value) -> (Env, BTreeMap<String, String>) {
    let vars = env_example();
    let mut raw = BTreeMap::new();
    let mut resolved = Env::new();
    for (k, v) in s(compose, &["services", "mist-otel", "environment"]).as_mapping().unwrap() {
        let k = str_of(k);
        let v = str_of(v);
        resolved.insert(k.clone(), interpolate(&v, &vars).0);
        raw.insert(k, v);
    }
    (resolved, raw)
}

/// `container` side of a `host:container` port mapping.
fn container_ports(service: &Value) -> Vec<u16> {
    service
        .get("ports")
        .map(strings)
        .unwrap_or_default()
        .iter()
        .map(|p| p.rsplit(':').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn compose_environment_is_what_the_server_reads() {
    let compose = yaml("docker-compose.yml");
    let (env, raw) = mist_otel_env(&compose);
    let aliases: BTreeSet<&str> = ALIASES.iter().map(|(v, _, _)| *v).collect();
    for name in env.keys() {
        let known = aliases.contains(name.as_str())
            || name.starts_with("MIST_OTEL__")
            || OTEL_STANDARD.contains(&name.as_str());
        assert!(known, "docker-compose.yml sets {name}, which mist-otel does not read");
    }
    // The server accepts this environment as its whole configuration (unknown MIST_OTEL__ keys
    // and bad values would fail here, as they would in the container).
    let cfg = Config::load(None, &env).unwrap_or_else(|e| panic!("compose environment rejected: {e}"));

    // Secrets are never literals in the compose file: they come from .env.
    for secret in ["MIST_WEBHOOK_SECRET", "MIST_API_TOKEN"] {
        assert!(raw[secret].starts_with("${"), "{secret} must come from .env, not be written in compose");
    }
    assert!(read(".gitignore").lines().any(|l| l.trim() == ".env"), ".env must be git-ignored");
    let example = env_example();
    for raw_value in raw.values() {
        for var in interpolate(raw_value, &example).1 {
            assert!(example.contains_key(&var), "compose uses ${{{var}}} but .env.example does not list it");
        }
    }

    // Ports: what the server binds is what compose publishes and the healthcheck probes.
    let svc = s(&compose, &["services", "mist-otel"]);
    let ports = container_ports(svc);
    assert!(ports.contains(&cfg.ingest.listen.port()), "webhook port {} not published", cfg.ingest.listen);
    assert!(ports.contains(&cfg.admin.listen.port()), "admin port {} not published", cfg.admin.listen);
    let admin_published =
        strings(&svc["ports"]).into_iter().find(|p| p.ends_with(&format!(":{}", cfg.admin.listen.port())));
    assert!(
        admin_published.unwrap().starts_with("127.0.0.1:"),
        "the admin port must stay on the host's loopback"
    );
    let hc = strings(s(svc, &["healthcheck", "test"])).join(" ");
    assert!(hc.contains("mist-otel health"), "{hc}");
    assert!(hc.contains(&format!("127.0.0.1:{}/healthz", cfg.admin.listen.port())), "{hc}");

    // The buffer directory is a named volume.
    let data_dir = cfg.data_dir.display().to_string();
    let mounts = strings(&svc["volumes"]);
    let vol = mounts.iter().find(|m| m.ends_with(&format!(":{data_dir}"))).expect("data dir volume");
    let vol_name = vol.split(':').next().unwrap();
    assert!(s(&compose, &["volumes"]).get(vol_name).is_some(), "volume {vol_name} not declared");

    // OTLP goes to the collector service on the port of the protocol it speaks.
    let endpoint = &env["OTEL_EXPORTER_OTLP_ENDPOINT"];
    assert_eq!(host_of(endpoint), "otel-collector");
    assert!(compose["services"].get("otel-collector").is_some());
    let collector = yaml("otel-collector.yaml");
    let proto = env.get("OTEL_EXPORTER_OTLP_PROTOCOL").map(String::as_str).unwrap_or("grpc");
    let receiver = if proto == "grpc" { "grpc" } else { "http" };
    let recv = str_of(s(&collector, &["receivers", "otlp", "protocols", receiver, "endpoint"]));
    assert_eq!(
        port_of(endpoint),
        port_of(&recv),
        "mist-otel sends {proto} to {endpoint}, collector listens on {recv}"
    );
    let exposed: Vec<u16> = s(&compose, &["services", "otel-collector", "expose"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| str_of(p).parse().unwrap())
        .collect();
    assert!(exposed.contains(&port_of(&recv)));
}

#[test]
fn collector_pipelines_reference_defined_components() {
    let c = yaml("otel-collector.yaml");
    let text = read("otel-collector.yaml");
    let names = |section: &str| -> BTreeSet<String> {
        c.get(section).and_then(Value::as_mapping).map(|m| m.keys().map(str_of).collect()).unwrap_or_default()
    };
    let (receivers, processors, exporters, connectors, extensions) = (
        names("receivers"),
        names("processors"),
        names("exporters"),
        names("connectors"),
        names("extensions"),
    );
    for ext in strings(s(&c, &["service", "extensions"])) {
        assert!(extensions.contains(&ext), "extension {ext} not defined");
    }
    let pipelines = s(&c, &["service", "pipelines"]).as_mapping().unwrap();
    assert!(["traces", "metrics", "logs"].iter().all(|p| pipelines.contains_key(*p)));
    let mut spanmetrics_in = false;
    let mut spanmetrics_out = false;
    for (name, p) in pipelines {
        let name = str_of(name);
        for r in strings(&p["receivers"]) {
            assert!(receivers.contains(&r) || connectors.contains(&r), "{name}: receiver {r} not defined");
            spanmetrics_in |= r == "spanmetrics" && name.starts_with("metrics");
        }
        let procs = strings(&p["processors"]);
        assert_eq!(
            procs.first().map(String::as_str),
            Some("memory_limiter"),
            "{name}: memory_limiter must be first"
        );
        assert!(procs.contains(&"batch".to_owned()), "{name}: no batch");
        for pr in &procs {
            assert!(processors.contains(pr), "{name}: processor {pr} not defined");
        }
        for e in strings(&p["exporters"]) {
            assert!(exporters.contains(&e) || connectors.contains(&e), "{name}: exporter {e} not defined");
            spanmetrics_out |= e == "spanmetrics" && name.starts_with("traces");
        }
    }
    assert!(spanmetrics_in && spanmetrics_out, "spanmetrics must turn the traces pipeline into metrics");
    assert_eq!(port_of(&str_of(s(&c, &["receivers", "otlp", "protocols", "grpc", "endpoint"]))), 4317);
    assert_eq!(port_of(&str_of(s(&c, &["receivers", "otlp", "protocols", "http", "endpoint"]))), 4318);

    // Every ${env:VAR} — active or in the commented alternatives — is passed by compose and
    // listed in .env.example (or has a default), so switching backends is editing one file.
    let compose = yaml("docker-compose.yml");
    let passed: BTreeSet<String> = s(&compose, &["services", "otel-collector", "environment"])
        .as_mapping()
        .unwrap()
        .keys()
        .map(str_of)
        .collect();
    let example = env_example();
    let mut rest = text.as_str();
    let mut seen = 0;
    while let Some(pos) = rest.find("${env:") {
        let body = &rest[pos + 6..];
        let end = body.find('}').unwrap();
        let (var, default) = match body[..end].split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (&body[..end], None),
        };
        assert!(passed.contains(var), "collector uses {var} but compose does not pass it");
        assert!(default.is_some() || example.contains_key(var), "{var} missing from .env.example");
        seen += 1;
        rest = &body[end..];
    }
    assert!(seen >= 8, "expected the Grafana Cloud and xScaler alternatives to use env vars");
    for header in
        ["Authorization: \"Bearer ${env:XSCALER_TOKEN}\"", "X-Scope-OrgID", "traces_endpoint", "basicauth"]
    {
        assert!(text.contains(header), "collector alternatives lack {header}");
    }

    // The exporter reaches the LGTM service on its OTLP gRPC port, and the self-metrics scrape
    // reaches mist-otel's admin listener.
    let vars = BTreeMap::new();
    let lgtm = str_of(s(&c, &["exporters", "otlp/lgtm", "endpoint"])).replace("${env:", "${");
    let lgtm = interpolate(&lgtm, &vars).0;
    assert_eq!(host_of(&lgtm), "lgtm");
    assert!(compose["services"].get("lgtm").is_some());
    assert_eq!(port_of(&lgtm), 4317);
    let scrape = &s(&c, &["receivers", "prometheus/mist_otel", "config", "scrape_configs"])[0];
    let target = strings(&scrape["static_configs"][0]["targets"])[0].replace("${env:", "${");
    let target = interpolate(&target, &vars).0;
    let (menv, _) = mist_otel_env(&compose);
    let cfg = Config::load(None, &menv).unwrap_or_else(|e| panic!("compose environment rejected: {e}"));
    assert_eq!(target, format!("mist-otel:{}", cfg.admin.listen.port()));
    assert_eq!(
        str_of(s(&compose, &["services", "otel-collector", "environment", "MIST_OTEL_ADMIN_TARGET"])),
        target
    );

    // Compose mounts this file where the collector is told to read it.
    let svc = s(&compose, &["services", "otel-collector"]);
    let config_arg =
        strings(&svc["command"]).into_iter().find_map(|a| a.strip_prefix("--config=").map(str::to_owned));
    let config_path = config_arg.expect("--config=");
    assert!(
        strings(&svc["volumes"])
            .iter()
            .any(|m| m.starts_with("./otel-collector.yaml:") && m.contains(&config_path))
    );
    assert!(str_of(&svc["image"]).starts_with("otel/opentelemetry-collector-contrib:"));
    assert!(str_of(s(&compose, &["services", "lgtm", "image"])).starts_with("grafana/otel-lgtm:"));
    assert!(s(&compose, &["services", "lgtm"]).get("healthcheck").is_some());
    for m in
        strings(&svc["volumes"]).iter().chain(strings(s(&compose, &["services", "lgtm", "volumes"])).iter())
    {
        if let Some(src) = m.strip_prefix("./") {
            let src = src.split(':').next().unwrap();
            assert!(root().join(src).exists(), "compose mounts ./{src}, which does not exist");
        }
    }
}

/// Dockerfile instructions with continuation lines joined: (KEYWORD, arguments).
fn instructions(df: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in df.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (k, v) = cur.split_once(' ').unwrap_or((&cur, ""));
        out.push((k.to_ascii_uppercase(), v.trim().to_owned()));
        cur.clear();
    }
    out
}

#[test]
fn dockerfile_matches_compose_and_server() {
    let ins = instructions(&read("Dockerfile"));
    let all = |k: &str| ins.iter().filter(|(i, _)| i == k).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let froms = all("FROM");
    assert!(
        froms.len() >= 2 && froms[0].to_ascii_lowercase().ends_with(" as builder"),
        "multi-stage build expected"
    );
    let copies = all("COPY");
    let binary = copies
        .iter()
        .find(|c| c.starts_with("--from=builder"))
        .expect("runtime stage copies from the builder");
    let user = all("USER").pop().expect("USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "0" && uid != "root", "the image must not run as root");

    // ENV: only variables the server reads, and the same addresses as compose.
    let mut denv = Env::new();
    for e in all("ENV") {
        for tok in e.split_whitespace() {
            let (k, v) = tok.split_once('=').unwrap_or_else(|| panic!("ENV {e}: use KEY=value"));
            denv.insert(k.to_owned(), v.to_owned());
        }
    }
    assert!(!denv.is_empty(), "Dockerfile sets no ENV");
    for k in denv.keys() {
        assert!(
            ALIASES.iter().any(|(a, _, _)| a == k) || k.starts_with("MIST_OTEL__"),
            "Dockerfile sets {k}, unread"
        );
    }
    let cfg = Config::load(None, &denv).unwrap();
    let compose = yaml("docker-compose.yml");
    let (cenv, _) = mist_otel_env(&compose);
    for (k, v) in &denv {
        if let Some(c) = cenv.get(k) {
            assert_eq!(c, v, "{k} differs between Dockerfile and compose");
        }
    }
    let expose: Vec<u16> =
        all("EXPOSE").iter().flat_map(|l| l.split_whitespace().map(|p| p.parse::<u16>().unwrap())).collect();
    assert!(
        expose.contains(&cfg.ingest.listen.port()) && expose.contains(&cfg.admin.listen.port()),
        "{expose:?}"
    );
    let volume = all("VOLUME").pop().expect("VOLUME");
    assert!(volume.contains(&cfg.data_dir.display().to_string()), "{volume}");
    let hc = all("HEALTHCHECK").pop().expect("HEALTHCHECK");
    let cmd = hc.split_once("CMD ").expect("HEALTHCHECK CMD").1;
    let argv: Vec<String> = serde_json::from_str(cmd).expect("HEALTHCHECK CMD in exec (JSON) form");
    assert_eq!(argv[1], "health", "{argv:?}");
    assert!(
        binary.ends_with(&format!(" {}", argv[0])),
        "probe runs {}, binary copied by `{binary}`",
        argv[0]
    );
    assert!(all("ENTRYPOINT").pop().unwrap().contains(&argv[0]));
}

fn dashboards() -> Vec<(PathBuf, serde_json::Value)> {
    let dir = root().join("deploy/grafana/dashboards");
    let mut out: Vec<(PathBuf, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", p.display()));
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn dashboards_are_valid_and_provisioned_by_compose() {
    let compose = yaml("docker-compose.yml");
    let lgtm_mounts = strings(s(&compose, &["services", "lgtm", "volumes"]));
    let provider = yaml("deploy/grafana/provisioning/mist-otel.yaml");
    let provider_path = str_of(s(&provider, &["providers"])[0].get("options").unwrap().get("path").unwrap());
    assert!(
        lgtm_mounts.iter().any(
            |m| m.starts_with("./deploy/grafana/dashboards:") && m.contains(&format!(":{provider_path}"))
        ),
        "the dashboards directory must be mounted where the provider reads ({provider_path})"
    );
    assert!(lgtm_mounts.iter().any(|m| m.starts_with("./deploy/grafana/provisioning/mist-otel.yaml:")));

    let all = dashboards();
    assert!(all.len() >= 3, "expected network, clients and server-health dashboards");
    let mut uids = BTreeSet::new();
    let mut text = String::new();
    for (p, d) in &all {
        let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{}: no uid", p.display()));
        assert!(uids.insert(uid.to_owned()), "duplicate uid {uid}");
        let panels = d["panels"].as_array().unwrap();
        assert!(!panels.is_empty(), "{}: no panels", p.display());
        for panel in panels {
            let ds = panel["datasource"]["uid"].as_str().unwrap_or("");
            assert!(
                ["prometheus", "loki", "tempo"].contains(&ds),
                "{}: unknown datasource {ds}",
                p.display()
            );
            assert!(!panel["targets"].as_array().unwrap().is_empty(), "{}: panel without query", p.display());
        }
        text.push_str(&d.to_string());
    }
    // What the issue asks the dashboards to cover.
    for needle in [
        "mist_device_up_ratio",
        "mist_alarms_total",
        "mist_nac_events_total",
        "mist_client_joins_total",
        "mist_client_roams_total",
        "mist_client_session_duration_seconds_bucket",
        "mist_site_sle_ratio",
        "mist_client_latency_seconds",
        "mist_session_calls_total",
        "traceql",
        "mist_otel_ingest_requests_total",
    ] {
        assert!(text.contains(needle), "no dashboard shows {needle}");
    }
}

/// An OTLP name or attribute key as Prometheus spells it (invalid characters → `_`, runs of
/// `_` collapsed), as the Prometheus OTLP receiver does.
fn prom_tokens(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_ascii_alphanumeric() && c != ':')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The Prometheus series names of an OTLP metric under the OTLP translation with suffixes
/// (prometheus/otlptranslator `normalizeName`): unit suffix (`{…}` units add none, `1` only
/// `_ratio` on gauges, unknown units are kept as they are), `_total` for monotonic counters,
/// `_bucket`/`_sum`/`_count` for histograms.
fn prom_names(name: &str, unit: &str, kind: &str) -> Vec<String> {
    let map = |u: &str, per: bool| -> String {
        let u = u.trim();
        if u.is_empty() || u.contains(['{', '}']) {
            return String::new();
        }
        let known: &[(&str, &str)] = if per {
            &[
                ("s", "second"),
                ("m", "minute"),
                ("h", "hour"),
                ("d", "day"),
                ("w", "week"),
                ("mo", "month"),
                ("y", "year"),
            ]
        } else {
            &[
                ("d", "days"),
                ("h", "hours"),
                ("min", "minutes"),
                ("s", "seconds"),
                ("ms", "milliseconds"),
                ("us", "microseconds"),
                ("ns", "nanoseconds"),
                ("By", "bytes"),
                ("Cel", "celsius"),
                ("Hz", "hertz"),
                ("1", ""),
                ("%", "percent"),
            ]
        };
        let m = known.iter().find(|(k, _)| *k == u).map_or(u, |(_, v)| v);
        prom_tokens(m).join("_")
    };
    let mut tokens = prom_tokens(name);
    let (main, per) = unit.split_once('/').unwrap_or((unit, ""));
    let (main, per) = (map(main, false), map(per, true));
    for suffix in [main, if per.is_empty() { per } else { format!("per_{per}") }] {
        if !suffix.is_empty() && !tokens.contains(&suffix) {
            tokens.push(suffix);
        }
    }
    let mut add_last = |t: &str| {
        tokens.retain(|x| x != t);
        tokens.push(t.to_owned());
    };
    match kind {
        "counter" => add_last("total"),
        "gauge" if unit == "1" => add_last("ratio"),
        _ => {}
    }
    let base = tokens.join("_");
    match kind {
        "histogram" => ["bucket", "sum", "count"].iter().map(|s| format!("{base}_{s}")).collect(),
        _ => vec![base],
    }
}

/// `mist_*` metric and label names in a PromQL expression: label names are inside `{…}` and
/// in the parentheses after `by`, `without`, `on`, `ignoring`, `group_left/right`; strings and
/// range durations are skipped; identifiers followed by `(` are functions.
fn promql_names(expr: &str) -> (Vec<String>, Vec<String>) {
    let (mut metrics, mut labels) = (Vec::new(), Vec::new());
    let b: Vec<char> = expr.chars().collect();
    let (mut i, mut braces, mut label_list, mut after_grouping) = (0, false, false, false);
    while i < b.len() {
        let c = b[i];
        if c == '"' || c == '\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
        } else if c == '[' {
            while i < b.len() && b[i] != ']' {
                i += 1;
            }
        } else if c == '{' || c == '}' {
            braces = c == '{';
        } else if c == '(' {
            label_list = after_grouping;
            after_grouping = false;
        } else if c == ')' {
            label_list = false;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_' || b[i] == ':') {
                i += 1;
            }
            let word: String = b[start..i].iter().collect();
            let next = b[i..].iter().find(|c| !c.is_whitespace());
            if braces || label_list {
                labels.push(word);
            } else if ["by", "without", "on", "ignoring", "group_left", "group_right"]
                .contains(&word.as_str())
            {
                after_grouping = true;
            } else if next != Some(&'(') {
                metrics.push(word);
            }
            continue;
        }
        i += 1;
    }
    let mist = |v: Vec<String>| v.into_iter().filter(|n| n.starts_with("mist_")).collect();
    (mist(metrics), mist(labels))
}

#[test]
fn dashboards_query_metrics_that_exist() {
    use mist_otel::signals::{METRICS, attrs, metrics::Kind};
    // Event metrics as the collector's Prometheus backend names them.
    let mut known: BTreeSet<String> = BTreeSet::new();
    for m in METRICS {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
        };
        known.extend(prom_names(m.name, m.unit, kind));
    }
    // The translation itself, on the cases the dashboards rely on.
    assert_eq!(prom_names("mist.alarms", "{alarm}", "counter"), ["mist_alarms_total"]);
    assert_eq!(prom_names("mist.device.up", "1", "gauge"), ["mist_device_up_ratio"]);
    assert_eq!(prom_names("mist.client.latency", "s", "gauge"), ["mist_client_latency_seconds"]);
    assert_eq!(prom_names("a.b", "By/s", "gauge"), ["a_b_bytes_per_second"]);
    assert!(known.contains("mist_client_session_duration_seconds_bucket"), "{known:?}");
    assert!(known.contains("mist_minis_application_latency_milliseconds"), "{known:?}");
    // Spanmetrics: `<namespace>.calls` (counter) and `<namespace>.duration` (histogram).
    let c = yaml("otel-collector.yaml");
    let sm = s(&c, &["connectors", "spanmetrics"]);
    let ns = sm.get("namespace").map_or("traces.span.metrics".to_owned(), str_of);
    let unit = sm.get("histogram").and_then(|h| h.get("unit")).map_or("ms".to_owned(), str_of);
    known.extend(prom_names(&format!("{ns}.calls"), "", "counter"));
    known.extend(prom_names(&format!("{ns}.duration"), &unit, "histogram"));
    // The poller's Go exporter names (scraped from /metrics as they are).
    let poller = read("src/poller/catalog.rs");
    for lit in poller.split('"').skip(1).step_by(2).filter(|l| l.starts_with("mist_") && !l.contains(' ')) {
        known.insert(lit.to_owned());
    }
    assert!(known.contains("mist_device_cpu_temperature_celsius") && known.contains("mist_site_info"));
    // Labels: attribute keys as Prometheus spells them; resource attributes only where the
    // collector copies them onto the data points.
    let label_of = |k: &str| prom_tokens(k).join("_");
    let resource_only = [attrs::ORG_ID, attrs::SITE_ID, attrs::SITE_NAME, attrs::WEBHOOK_ENDPOINT];
    let metrics_procs = strings(s(&c, &["service", "pipelines", "metrics", "processors"]));
    let copied = |k: &str| {
        metrics_procs.iter().filter(|p| p.starts_with("transform")).any(|p| {
            let proc = serde_json::to_string(&c["processors"][p.as_str()].clone()).unwrap_or_default();
            proc.contains(&format!(r#"set(attributes[\"{k}\"], resource.attributes[\"{k}\"])"#))
        })
    };
    let labels: BTreeSet<String> =
        attrs::ALL.iter().filter(|k| !resource_only.contains(k) || copied(k)).map(|k| label_of(k)).collect();
    assert!(labels.contains("mist_site_id"), "the collector must copy mist.site.id onto data points");
    // Spanmetrics series carry their dimensions whatever the resource.
    let span_names = [format!("{}_calls_total", label_of(&ns)), format!("{}_duration", label_of(&ns))];
    let span_labels: BTreeSet<String> =
        sm["dimensions"].as_sequence().unwrap().iter().map(|d| label_of(&str_of(&d["name"]))).collect();

    let mut checked = 0;
    for (p, d) in dashboards() {
        let targets = d["panels"].as_array().unwrap().iter().flat_map(|panel| {
            let ds = panel["datasource"]["uid"].as_str() == Some("prometheus");
            panel["targets"].as_array().unwrap().iter().filter(move |_| ds).filter_map(|t| t["expr"].as_str())
        });
        let vars =
            d["templating"]["list"].as_array().unwrap().iter().filter_map(|v| v["query"]["query"].as_str());
        for expr in targets.chain(vars) {
            // `label_values(metric, label)` (Grafana's variable query).
            let expr = match expr.strip_prefix("label_values(").and_then(|e| e.rsplit_once(',')) {
                Some((m, l)) => format!("{m}{{{}}}", l.trim().trim_end_matches(')')),
                None => expr.to_owned(),
            };
            let (metrics, used) = promql_names(&expr);
            for m in metrics.iter().filter(|m| !m.starts_with("mist_otel_")) {
                assert!(known.contains(m), "{}: `{expr}` queries {m}, which nothing produces", p.display());
                checked += 1;
            }
            let spans = metrics.iter().any(|m| span_names.iter().any(|n| m.starts_with(n.as_str())));
            for l in used {
                assert!(
                    labels.contains(&l) || (spans && span_labels.contains(&l)),
                    "{}: `{expr}` uses label {l}, which no metric carries",
                    p.display()
                );
            }
        }
    }
    assert!(checked >= 10, "only {checked} event metric queries found");
}

/// The self-metrics the health dashboard queries exist on the real server's /metrics, and the
/// probe the container HEALTHCHECK runs works against the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probe_and_dashboard_self_metrics_against_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    // The debug exporter succeeds without a backend, so the export self-metrics get samples.
    let server = ServerProcess::start(
        dir.path(),
        &env(&[
            ("MIST_WEBHOOK_SECRET", "deploy-secret"),
            ("MIST_OTEL_EXPORTER", "debug"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ]),
        &[],
    );
    let body = br#"{"topic":"alarms","events":[{"type":"x","timestamp":1700000000}]}"#.to_vec();
    let c = client();
    let ok =
        c.post(server.url()).header("x-mist-signature-v2", sign("deploy-secret", &body)).body(body.clone());
    assert_eq!(ok.send().await.unwrap().status(), 200);
    let bad = c.post(server.url()).header("x-mist-signature-v2", sign("other", &body)).body(body);
    assert_eq!(bad.send().await.unwrap().status(), 401);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let metrics = loop {
        let m = c.get(server.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
        if m.contains("\nmist_otel_export_requests_total") || std::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    // Every self-metric a dashboard queries must exist, for each component this build runs
    // (a component that is not wired in yet exposes no `mist_otel_<component>_` line at all).
    let text: String = dashboards().iter().map(|(_, d)| d.to_string()).collect();
    let mut checked = 0;
    for (i, _) in text.match_indices("mist_otel_") {
        let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let component = name.split('_').nth(2).unwrap_or_default();
        if !metrics.contains(&format!("\nmist_otel_{component}_")) {
            continue;
        }
        // A labelled family with no sample yet (e.g. export requests before the first export)
        // is still declared by its `# TYPE` line.
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            metrics.contains(&format!("\n{name}")) || metrics.contains(&format!("# TYPE {family} ")),
            "dashboard queries {name}, the server does not expose it"
        );
        checked += 1;
    }
    assert!(checked >= 3);

    let bin = env!("CARGO_BIN_EXE_mist-otel");
    let run = |args: &[&str], envs: &[(&str, String)]| {
        let mut cmd = Command::new(bin);
        cmd.env_clear().args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let admin = server.admin.to_string();
    // As the Dockerfile runs it: address from the environment.
    let out = run(&["health"], &[("MIST_OTEL_ADMIN_LISTEN", admin.clone())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // As compose runs it: explicit URL; and readiness.
    let out = run(&["health", "--url", &server.admin_url("/healthz")], &[]);
    assert!(out.status.success());
    let out = run(&["health", "--ready"], &[("MIST_OTEL_ADMIN_LISTEN", admin)]);
    assert!(out.status.success());
    // Nothing listening: non-zero and says why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let out = run(&["health"], &[("MIST_OTEL_ADMIN_LISTEN", closed)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
}

#[test]
fn kubernetes_hints_agree_with_the_server() {
    use serde::Deserialize;
    let text = read("deploy/kubernetes/mist-otel.yaml");
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("valid YAML"))
        .collect();
    let sts = docs.iter().find(|d| d["kind"] == "StatefulSet").expect("a StatefulSet");
    let container = &s(sts, &["spec", "template", "spec", "containers"])[0];
    let mut kenv = Env::new();
    for e in container["env"].as_sequence().unwrap() {
        let name = str_of(&e["name"]);
        if let Some(v) = e.get("value") {
            kenv.insert(name, str_of(v));
        }
    }
    let aliases: BTreeSet<&str> = ALIASES.iter().map(|(v, _, _)| *v).collect();
    for k in kenv.keys().filter(|k| k.as_str() != "POD_NAME") {
        assert!(
            aliases.contains(k.as_str()) || OTEL_STANDARD.contains(&k.as_str()),
            "{k} is not read by mist-otel"
        );
    }
    let cfg = Config::load(None, &kenv).unwrap_or_else(|e| panic!("kubernetes environment rejected: {e}"));
    let port = |name: &str| -> u16 {
        let p = container["ports"].as_sequence().unwrap().iter().find(|p| p["name"] == name).expect(name);
        str_of(&p["containerPort"]).parse().unwrap()
    };
    assert_eq!(port("admin"), cfg.admin.listen.port());
    assert_eq!(port("webhook"), cfg.ingest.listen.port());
    assert_eq!(str_of(s(container, &["readinessProbe", "httpGet", "path"])), "/readyz");
    assert_eq!(str_of(s(container, &["livenessProbe", "httpGet", "path"])), "/healthz");
    assert_eq!(str_of(s(container, &["readinessProbe", "httpGet", "port"])), "admin");
    // One claim per replica, mounted where the buffer lives.
    let claim = str_of(&s(sts, &["spec", "volumeClaimTemplates"])[0]["metadata"]["name"]);
    let mount = container["volumeMounts"].as_sequence().unwrap().iter().find(|m| str_of(&m["name"]) == claim);
    assert_eq!(str_of(&mount.expect("claim mounted")["mountPath"]), cfg.data_dir.display().to_string());
    // The poller's token is not handed to every webhook replica.
    assert!(!kenv.contains_key("MIST_API_TOKEN"));
}

#[test]
fn interpolation_helper_follows_compose_rules() {
    let vars: BTreeMap<String, String> = [("A".to_owned(), "x".to_owned())].into();
    assert_eq!(interpolate("${A}-${B:-d}-${C-e}", &vars).0, "x-d-e");
    assert_eq!(interpolate("${A:?need A}", &vars).1, vec!["A".to_owned()]);
    assert_eq!(port_of("http://otel-collector:4317"), 4317);
    assert_eq!(host_of("otel-collector:4317"), "otel-collector");
}
