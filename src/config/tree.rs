//! Paths in the YAML tree (`a.b[2].c`) and which of them hold secrets.

use serde_norway::Value;

/// Keys whose values are secrets: never re-typed, never echoed in errors.
const SECRET_KEYS: &[&str] = &["headers"];

/// Parts of a key name that mark it as a secret, so that a mistyped one (`secret`,
/// `api_token`, `passwd`) is treated like the real key and its value is never shown.
const SECRET_WORDS: &[&str] = &["secret", "token", "passw", "pwd"];

/// True when a dotted key (`a.b[2].c`) is or lies under a secret key.
pub(crate) fn is_secret_path(key: &str) -> bool {
    key.split('.').any(|seg| {
        let name = seg.split('[').next().unwrap_or(seg).to_ascii_lowercase();
        SECRET_KEYS.contains(&name.as_str()) || SECRET_WORDS.iter().any(|w| name.contains(w))
    })
}

/// True when serde's message says the key is not one of the section's: its value is then
/// never shown, whatever its name (a misspelt key may hold anything, a secret included).
pub(crate) fn is_unknown_key(message: &str) -> bool {
    message.starts_with("unknown field")
}

/// The value at a path as serde_path_to_error prints it (`a.b[2].c`).
pub(crate) fn lookup<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
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

/// Sets the value at `path`, creating the sections on the way; fails when a step is not a map.
pub(crate) fn set_path(tree: &mut Value, path: &[String], value: Value) -> Result<(), String> {
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
