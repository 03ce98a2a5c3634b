//! The one error type of configuration loading.

use std::path::PathBuf;

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
