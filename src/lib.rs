//! # mist-otel
//!
//! Receives Juniper Mist webhooks, proves they came from Mist, and turns every event into
//! OpenTelemetry logs, metrics and traces pushed over OTLP. An optional poller adds live
//! device and client gauges from the Mist REST and WebSocket APIs.
//!
//! Data flows one way, and each step is a module that imports only the steps after it (checked
//! by `tests/architecture.rs`):
//!
//! ```text
//! bytes → ingest (limits, signature, envelope) → buffer (durable) → pipeline → signals → exporter
//!                                                                     ↑
//!                          poller (Mist REST/WebSocket gauges) ───────┘   admin and app on top
//! ```
//!
//! ## Map of the crate
//! Along the data path:
//! - [`ingest`]    — the webhook HTTP(S) server: accept loop, TLS reload, limits, signature, and the
//!   handler whose answer is a value (accepted or a refusal that knows its status).
//! - [`mist`]      — Mist's data: the webhook envelope, typed per-topic events, API and stream clients.
//! - [`buffer`]    — the durable buffer between the 200 and the export: segment log, index, writer
//!   and sync threads, memory mode. Its module doc is the design.
//! - [`pipeline`]  — reads the buffer, translates, batches, retries, releases what was delivered.
//! - [`signals`]   — pure translation of Mist events into OTLP logs, metrics and spans (no I/O,
//!   the clock passed in).
//! - [`deadletter`] — export requests refused for good, kept on disk (bounded) for a later replay.
//! - [`exporter`]  — the OTLP transports (gRPC, HTTP, debug), one file each, and their configuration.
//!
//! On top:
//! - [`poller`]    — optional Mist API poller: WebSocket stats and REST org figures as gauges.
//! - [`admin`]     — the admin listener: health, readiness, Prometheus `/metrics`, status page,
//!   all read from typed health snapshots.
//! - [`app`]       — the whole configuration (`app::Config`); wires the components together and runs them.
//!
//! Vocabulary every module may use (they import nothing above them):
//! - [`config`]    — configuration vocabulary: errors, durations, `${VAR}` expansion, environment
//!   overrides, the OpenTelemetry `key=value` list parser, loading.
//! - [`telemetry`] — every self-metric declared once (one file per component, typed labels) with its
//!   typed health snapshot; the registry and structured logging set-up.
//! - [`secret`]    — the `Secret` type: a string that never prints, logs or serialises in clear.
//! - [`clock`]     — the wall clock, read in one place.

pub mod admin;
pub mod app;
pub mod buffer;
pub mod clock;
pub mod config;
pub mod deadletter;
pub mod exporter;
pub mod ingest;
pub mod mist;
pub mod pipeline;
pub mod poller;
pub mod secret;
pub mod signals;
pub mod telemetry;
