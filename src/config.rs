//! The whole configuration: one YAML file (optional), `${VAR}` expansion, environment
//! overrides, and validation that names the bad key and value.
//!
//! Precedence, lowest first: built-in defaults → YAML file → environment. Every key can be set
//! from the environment as `MIST_OTEL__SECTION__KEY` (double underscores separate levels); the
//! common ones also have short aliases (see [`ALIASES`]). The standard `OTEL_*` variables are
//! applied by the export and signals sections themselves.

use serde::{Deserialize, Serialize};
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::admin::AdminConfig;
pub use crate::buffer::config::BufferConfig;
pub use crate::exporter::config::ExportConfig;
pub use crate::ingest::config::IngestConfig;
pub use crate::poller::config::PollerConfig;
pub use crate::signals::config::SignalsConfig;

/// Environment snapshot used while loading; tests pass their own.
pub type Env = BTreeMap<String, String>;

/// Reads the process environment into an [`Env`].
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// Short environment aliases: (variable, dotted key, is a comma-separated list).
pub const ALIASES: &[(&str, &str, bool)] = &[
    ("MIST_WEBHOOK_SECRET", "ingest.secrets", true),
    ("MIST_OTEL_LISTEN", "ingest.listen", false),
    ("MIST_OTEL_ADMIN_LISTEN", "admin.listen", false),
    ("MIST_OTEL_DATA_DIR", "data_dir", false),
    ("MIST_API_TOKEN", "poller.token", false),
    ("MIST_ORG_ID", "poller.org_id", false),
    ("MIST_CLOUD", "poller.cloud", false),
    ("MIST_OTEL_EXPORTER", "export.exporter", false),
];

/// The complete configuration of a `mist-otel` process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the durable buffer and other state.
    pub data_dir: PathBuf,
    /// Webhook listener.
    pub ingest: IngestConfig,
    /// Admin listener (health, metrics, status).
    pub admin: AdminConfig,
    /// On-disk buffer between ingest and export.
    pub buffer: BufferConfig,
    /// OTLP export.
    pub export: ExportConfig,
    /// Translation of events into signals.
    pub signals: SignalsConfig,
    /// Optional Mist API poller.
    pub poller: PollerConfig,
    /// Process log output.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./mist-otel-data"),
            ingest: IngestConfig::default(),
            admin: AdminConfig::default(),
            buffer: BufferConfig::default(),
            export: ExportConfig::default(),
            signals: SignalsConfig::default(),
            poller: PollerConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// Process log output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (structured, default) or `text`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `mist_otel=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Json, level: "info".into() }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Why a configuration could not be loaded. Every variant names the offending key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not YAML.
    #[error("config file {path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    /// `${VAR}` without a default, and VAR is unset.
    #[error(
        "environment variable {var} is not set (used by key `{key}`; write ${{{var}:-default}} for a default)"
    )]
    UnsetVar { var: String, key: String },
    /// A `${` without its closing brace.
    #[error("unterminated ${{...}} in key `{key}`")]
    Unterminated { key: String },
    /// An environment override could not be applied.
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    /// A key has a wrong type or value, or is unknown.
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl Config {
    /// Loads the configuration: defaults, then `path` (if any), then the environment.
    pub fn load(path: Option<&Path>, env: &Env) -> Result<Config, ConfigError> {
        let mut tree = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|source| ConfigError::Read { path: p.into(), source })?;
                let v: Value = serde_norway::from_str(&text)
                    .map_err(|e| ConfigError::Yaml { path: p.into(), message: e.to_string() })?;
                if v.is_null() { Value::Mapping(Default::default()) } else { v }
            }
            None => Value::Mapping(Default::default()),
        };
        expand_vars(&mut tree, "", env)?;
        apply_env_overrides(&mut tree, env)?;
        let snapshot = tree.clone();
        let mut cfg: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            if is_secret_path(&key) {
                // serde's message may quote the value: say what is expected, never what was given.
                return ConfigError::Invalid {
                    key,
                    message: "invalid value for a secret setting (value not shown)".into(),
                };
            }
            let mut message = e.into_inner().to_string();
            if let Some(v) =
                lookup(&snapshot, &key).filter(|v| !matches!(v, Value::Mapping(_) | Value::Sequence(_)))
            {
                let shown = serde_norway::to_string(v).unwrap_or_default();
                message = format!("{message} (got `{}`)", shown.trim());
            }
            ConfigError::Invalid { key, message }
        })?;
        cfg.export.apply_env(env)?;
        cfg.signals.apply_env(env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks cross-field rules the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        /// Largest body: a buffer record (256 MiB) less room for its bookkeeping.
        const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024 - 64 * 1024;
        self.ingest.validate()?;
        self.admin.validate()?;
        self.buffer.validate()?;
        self.export.validate()?;
        self.poller.validate()?;
        self.signals.validate()?;
        // A body the buffer can never hold would get 503 forever and Mist would retry it forever.
        if self.ingest.max_body_bytes as u64 + 64 * 1024 > self.buffer.max_bytes {
            return Err(ConfigError::Invalid {
                key: "ingest.max_body_bytes".into(),
                message: format!(
                    "{} does not fit in buffer.max_bytes {} (expected at most buffer.max_bytes - 65536)",
                    self.ingest.max_body_bytes, self.buffer.max_bytes
                ),
            });
        }
        // One delivery is one record of the buffer's log, whose records are at most 256 MiB.
        if self.ingest.max_body_bytes as u64 > MAX_BODY_BYTES {
            return Err(ConfigError::Invalid {
                key: "ingest.max_body_bytes".into(),
                message: format!(
                    "{} is too large (expected at most {MAX_BODY_BYTES})",
                    self.ingest.max_body_bytes
                ),
            });
        }
        Ok(())
    }

    /// The effective configuration as YAML, every secret shown as `<redacted>`.
    pub fn to_redacted_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string scalar. A scalar that is exactly one
/// reference is re-read as YAML so `port: ${PORT}` yields a number.
fn expand_vars(v: &mut Value, key: &str, env: &Env) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains("${") => {
            // Secrets stay text even when they look like numbers (`007` must not become 7).
            let whole = s.starts_with("${")
                && s.ends_with('}')
                && s.matches("${").count() == 1
                && !is_secret_path(key);
            let expanded = expand_str(s, key, env)?;
            *v = if whole {
                match serde_norway::from_str::<Value>(&expanded) {
                    Ok(parsed @ (Value::Bool(_) | Value::Number(_))) => parsed,
                    _ => Value::String(expanded),
                }
            } else {
                Value::String(expanded)
            };
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                expand_vars(item, &format!("{key}[{i}]"), env)?;
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let name = k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}"));
                let child = if key.is_empty() { name } else { format!("{key}.{name}") };
                expand_vars(item, &child, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands the references in one string. `$$` is a literal `$`.
pub fn expand_str(s: &str, key: &str, env: &Env) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| ConfigError::Unterminated { key: key.to_owned() })?;
            let inner = &body[..end];
            let (var, default) = match inner.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (inner, None),
            };
            match (env.get(var).filter(|v| !v.is_empty()), default) {
                (Some(val), _) => out.push_str(val),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(ConfigError::UnsetVar { var: var.to_owned(), key: key.to_owned() });
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn apply_env_overrides(tree: &mut Value, env: &Env) -> Result<(), ConfigError> {
    for (var, key, is_list) in ALIASES {
        if let Some(val) = env.get(*var).filter(|v| !v.is_empty()) {
            let value = if *is_list {
                Value::Sequence(
                    val.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                )
            } else {
                Value::String(val.clone())
            };
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            set_path(tree, &path, value)
                .map_err(|message| ConfigError::Env { var: (*var).into(), message })?;
        }
    }
    for (var, val) in env.range("MIST_OTEL__".to_owned()..) {
        let Some(rest) = var.strip_prefix("MIST_OTEL__") else { break };
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env { var: var.clone(), message: "empty key segment".into() });
        }
        let value = if is_secret_path(&path.join(".")) {
            // Text as given; a list key takes a comma-separated list.
            if path.last().is_some_and(|k| k == "secrets") {
                Value::Sequence(
                    val.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned()))
                        .collect(),
                )
            } else {
                Value::String(val.clone())
            }
        } else {
            let v: Value = serde_norway::from_str(val).unwrap_or_else(|_| Value::String(val.clone()));
            if v.is_null() { Value::String(val.clone()) } else { v }
        };
        set_path(tree, &path, value).map_err(|message| ConfigError::Env { var: var.clone(), message })?;
    }
    Ok(())
}

/// Keys whose values are secrets: never re-typed, never echoed in errors.
const SECRET_KEYS: &[&str] = &["secrets", "token", "password", "headers"];

/// True when a dotted key (`a.b[2].c`) is or lies under a secret key.
fn is_secret_path(key: &str) -> bool {
    key.split('.').any(|seg| SECRET_KEYS.contains(&seg.split('[').next().unwrap_or(seg)))
}

/// The value at a path as serde_path_to_error prints it (`a.b[2].c`).
fn lookup<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    let mut cur = tree;
    for seg in key.split('.') {
        let (name, indices) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indices.split('[').filter(|s| !s.is_empty()) {
            cur = cur.get(idx.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(cur)
}

fn set_path(tree: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut cur = tree;
    for (i, seg) in path.iter().enumerate() {
        if cur.is_null() {
            *cur = Value::Mapping(Default::default());
        }
        let Value::Mapping(map) = cur else {
            return Err(format!("`{}` is not a section", path[..i].join(".")));
        };
        let k = Value::String(seg.clone());
        if i + 1 == path.len() {
            map.insert(k, value);
            return Ok(());
        }
        cur = map.entry(k).or_insert(Value::Null);
    }
    Ok(())
}

/// Serde helpers for durations written as `500ms`, `10s`, `5m`, `1h` or plain seconds.
pub mod duration {
    use super::*;
    use serde::{Deserializer, Serializer, de::Error};

    /// Parses `500ms`, `10s`, `5m`, `1h`, `2d` or a bare number of seconds.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 =
            num.parse().map_err(|_| format!("`{s}` is not a duration (expected e.g. 500ms, 10s, 5m, 1h)"))?;
        let secs = match unit.trim() {
            "" | "s" => n,
            "ms" => n / 1000.0,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            u => return Err(format!("unknown duration unit `{u}` in `{s}` (use ms, s, m, h or d)")),
        };
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("`{s}` is not a valid duration"));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// Formats a duration the way [`parse`] reads it.
    pub fn format(d: &Duration) -> String {
        let ms = d.as_millis();
        if !ms.is_multiple_of(1000) { format!("{ms}ms") } else { format!("{}s", d.as_secs()) }
    }

    /// Serialises as a string such as `10s`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(d))
    }

    /// Accepts a string with unit or a number of seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) if n >= 0.0 && n.is_finite() => Ok(Duration::from_secs_f64(n)),
            Raw::N(n) => Err(D::Error::custom(format!("`{n}` is not a valid duration"))),
            Raw::S(s) => parse(&s).map_err(D::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_body_limit_beyond_one_buffer_record_is_refused() {
        let mut c = Config::default();
        c.ingest.secrets = vec![crate::secret::Secret::new("x")];
        c.buffer.max_bytes = 4 * 1024 * 1024 * 1024;
        c.ingest.max_body_bytes = 300 * 1024 * 1024;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ingest.max_body_bytes") && e.contains("too large"), "{e}");
        c.ingest.max_body_bytes = 200 * 1024 * 1024;
        c.validate().unwrap();
    }

    #[test]
    fn expands_vars_and_defaults() {
        let e = env(&[("A", "x")]);
        assert_eq!(expand_str("${A}-${B:-y}-$$", "k", &e).unwrap(), "x-y-$");
        let err = expand_str("${NOPE}", "ingest.listen", &e).unwrap_err().to_string();
        assert!(err.contains("NOPE") && err.contains("ingest.listen"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration::parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration::parse("2m").unwrap(), Duration::from_secs(120));
        assert!(duration::parse("3 weeks").is_err());
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "ingest:\n  lisen: 1.2.3.4:5\n").unwrap();
        let err = Config::load(Some(&p), &Env::new()).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        std::fs::write(
            &p,
            "ingest:\n  endpoints:\n    - name: a\n      secrets: [x]\n      allow_sha1: maybe\n",
        )
        .unwrap();
        let err = Config::load(Some(&p), &Env::new()).unwrap_err().to_string();
        assert!(err.contains("ingest.endpoints[0].allow_sha1") && err.contains("maybe"), "{err}");
    }

    #[test]
    fn env_aliases_and_generic_overrides() {
        let e = env(&[
            ("MIST_WEBHOOK_SECRET", "a, b"),
            ("MIST_OTEL_LISTEN", "127.0.0.1:9"),
            ("MIST_OTEL__INGEST__MAX_BODY_BYTES", "123456"),
        ]);
        let c = Config::load(None, &e).unwrap();
        assert_eq!(c.ingest.secrets.len(), 2);
        assert_eq!(c.ingest.secrets[1].expose(), "b");
        assert_eq!(c.ingest.listen.to_string(), "127.0.0.1:9");
        assert_eq!(c.ingest.max_body_bytes, 123456);
        assert!(!c.to_redacted_yaml().contains(": a\n"));
    }

    #[test]
    fn secrets_stay_text_and_are_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "ingest:\n  secrets: [\"${S}\"]\n").unwrap();
        let c = Config::load(Some(&p), &env(&[("S", "007")])).unwrap();
        assert_eq!(c.ingest.secrets[0].expose(), "007");
        let c = Config::load(None, &env(&[("MIST_OTEL__INGEST__SECRETS", "0123,abc")])).unwrap();
        assert_eq!(c.ingest.secrets[0].expose(), "0123");
        assert_eq!(c.ingest.secrets[1].expose(), "abc");
        let c = Config::load(None, &env(&[("MIST_OTEL__POLLER__TOKEN", "123456789")])).unwrap();
        assert_eq!(c.poller.token.expose(), "123456789");
        std::fs::write(&p, "ingest:\n  secrets: {a: supersecretvalue}\n").unwrap();
        let err = Config::load(Some(&p), &Env::new()).unwrap_err().to_string();
        assert!(err.contains("ingest.secrets") && !err.contains("supersecretvalue"), "{err}");
    }

    #[test]
    fn whole_reference_becomes_typed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "ingest:\n  max_body_bytes: ${MAXB:-99999}\n").unwrap();
        let c = Config::load(Some(&p), &Env::new()).unwrap();
        assert_eq!(c.ingest.max_body_bytes, 99999);
    }
}
