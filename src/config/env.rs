//! The environment snapshot and the overrides it applies to the YAML tree: short aliases and
//! the generic `MIST_OTEL__SECTION__KEY` form.

use super::error::ConfigError;
use super::tree::{is_secret_path, set_path};
use serde_norway::Value;
use std::collections::BTreeMap;

/// Environment snapshot used while loading; tests pass their own.
pub type Env = BTreeMap<String, String>;

/// Reads the process environment into an [`Env`].
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// A short environment alias: (variable, dotted key, is a comma-separated list).
pub type Alias = (&'static str, &'static str, bool);

/// Prefix of the generic overrides; levels are separated by `__`.
const PREFIX: &str = "MIST_OTEL__";

/// Applies the aliases, then every `MIST_OTEL__…` variable, to the tree.
pub(crate) fn apply_env_overrides(tree: &mut Value, env: &Env, aliases: &[Alias]) -> Result<(), ConfigError> {
    for (var, key, is_list) in aliases {
        if let Some(val) = env.get(*var).filter(|v| !v.is_empty()) {
            let value = if *is_list { list(val) } else { Value::String(val.clone()) };
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            set_path(tree, &path, value)
                .map_err(|message| ConfigError::Env { var: (*var).into(), message })?;
        }
    }
    for (var, val) in env.range(PREFIX.to_owned()..) {
        let Some(rest) = var.strip_prefix(PREFIX) else { break };
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env { var: var.clone(), message: "empty key segment".into() });
        }
        let value = if is_secret_path(&path.join(".")) {
            // Text as given; a list key takes a comma-separated list.
            if path.last().is_some_and(|k| k == "secrets") { list(val) } else { Value::String(val.clone()) }
        } else {
            let v: Value = serde_norway::from_str(val).unwrap_or_else(|_| Value::String(val.clone()));
            if v.is_null() { Value::String(val.clone()) } else { v }
        };
        set_path(tree, &path, value).map_err(|message| ConfigError::Env { var: var.clone(), message })?;
    }
    Ok(())
}

/// A comma-separated list of secrets as a YAML sequence of strings: split only at commas,
/// every item kept exactly as given (spaces included, as in YAML); empty items dropped.
fn list(val: &str) -> Value {
    Value::Sequence(val.split(',').filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect())
}

/// An [`Env`] made of the given pairs, for tests.
#[cfg(test)]
pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Env {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
