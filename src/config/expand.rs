//! `${VAR}` and `${VAR:-default}` expansion in the string scalars of the YAML tree.

use super::error::ConfigError;
use super::{env::Env, tree::is_secret_path};
use serde_norway::Value;

/// Replaces `${VAR}` and `${VAR:-default}` in every string scalar. A scalar that is exactly one
/// reference is re-read as YAML so `port: ${PORT}` yields a number.
pub(crate) fn expand_vars(v: &mut Value, key: &str, env: &Env) -> Result<(), ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::env::from_pairs as env;

    #[test]
    fn expands_vars_and_defaults() {
        let e = env(&[("A", "x")]);
        assert_eq!(expand_str("${A}-${B:-y}-$$", "k", &e).unwrap(), "x-y-$");
        let err = expand_str("${NOPE}", "ingest.listen", &e).unwrap_err().to_string();
        assert!(err.contains("NOPE") && err.contains("ingest.listen"), "{err}");
    }
}
