//! The vocabulary of configuration, shared by every component's own config section: the error
//! type, durations, the environment snapshot and its overrides, `${VAR}` expansion, the
//! OpenTelemetry `key=value` lists, and a generic [`load()`].
//!
//! This module names no section and imports nothing of the crate, so every component may use it
//! without an import circle. The whole process configuration, which assembles the sections, is
//! `crate::app::Config`.
//!
//! How a configuration is read (see [`load()`]): precedence, lowest first, is built-in defaults →
//! YAML file → environment. `${VAR}` and `${VAR:-default}` are expanded in every string of the
//! file first (an unset `VAR` without a default is an error naming it). Then every key can be
//! set from the environment as `MIST_OTEL__SECTION__KEY` (double underscores separate levels),
//! and the caller's short [`Alias`]es apply. The standard `OTEL_*` variables are applied by the
//! sections they concern, on the typed values.
//!
//! Invariants: errors name the key or variable and the offending value, except for an unknown
//! key (a misspelt key may hold a secret) and under a secret key (`headers`, or a name
//! containing `secret`, `token`, `passw` or `pwd`), whose values are never echoed nor re-typed
//! (`007` stays text).
//!
//! - [`error`] — [`ConfigError`].
//! - [`duration`] — `500ms`, `10s`, `5m` durations for serde.
//! - [`env`](mod@env) — [`Env`], [`process_env`], aliases and `MIST_OTEL__…` overrides.
//! - [`expand`] — `${VAR}` expansion.
//! - [`otel_list`] — the strict `key=value,key2=value2` parser of the `OTEL_*` variables.
//! - [`load`] — file + expansion + overrides + deserialisation with keyed errors.
//! - `tree` — paths in the YAML tree and which of them are secret.

pub mod duration;
pub mod env;
pub mod error;
pub mod expand;
mod load;
pub mod otel_list;
mod tree;

pub use env::{Alias, Env, process_env};
pub use error::ConfigError;
pub use expand::expand_str;
pub use load::load;
