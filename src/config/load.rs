//! Loading a configuration type: file (optional), `${VAR}` expansion, environment overrides,
//! then deserialisation with errors that name the key and (unless secret or unknown) the value.

use super::env::{Alias, Env, apply_env_overrides};
use super::error::ConfigError;
use super::expand::expand_vars;
use super::tree::{is_secret_path, is_unknown_key, lookup};
use serde::de::DeserializeOwned;
use serde_norway::Value;
use std::path::Path;

/// Reads `path` (if any), expands `${VAR}`, applies `aliases` and the `MIST_OTEL__…` variables,
/// and deserialises the result. Cross-field validation is the caller's.
pub fn load<T: DeserializeOwned>(
    path: Option<&Path>,
    env: &Env,
    aliases: &[Alias],
) -> Result<T, ConfigError> {
    let mut tree = match path {
        Some(p) => read_tree(p)?,
        None => Value::Mapping(Default::default()),
    };
    expand_vars(&mut tree, "", env)?;
    apply_env_overrides(&mut tree, env, aliases)?;
    deserialize(tree)
}

/// The file as a YAML tree; an empty file is an empty map.
fn read_tree(p: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.into(), source })?;
    let v: Value = serde_norway::from_str(&text)
        .map_err(|e| ConfigError::Yaml { path: p.into(), message: e.to_string() })?;
    Ok(if v.is_null() { Value::Mapping(Default::default()) } else { v })
}

/// Deserialises the tree; an error names the key and shows the scalar that was given, unless
/// the key is secret or unknown.
fn deserialize<T: DeserializeOwned>(tree: Value) -> Result<T, ConfigError> {
    let snapshot = tree.clone();
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        if is_unknown_key(&message) {
            // Names the key and the expected ones; the value is not shown.
            return ConfigError::Invalid { key, message };
        }
        if is_secret_path(&key) {
            // serde's message may quote the value: say what is expected, never what was given.
            return ConfigError::Invalid {
                key,
                message: "invalid value for a secret setting (value not shown)".into(),
            };
        }
        let mut message = message;
        if let Some(v) =
            lookup(&snapshot, &key).filter(|v| !matches!(v, Value::Mapping(_) | Value::Sequence(_)))
        {
            let shown = serde_norway::to_string(v).unwrap_or_default();
            message = format!("{message} (got `{}`)", shown.trim());
        }
        ConfigError::Invalid { key, message }
    })
}
