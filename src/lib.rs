//! # mist-otel
//!
//! Receives Juniper Mist webhooks, proves they came from Mist, and turns every event into
//! OpenTelemetry logs, metrics and traces pushed over OTLP. An optional poller adds live
//! device and client gauges from the Mist REST and WebSocket APIs.
//!
//! Data flows one way:
//! `bytes → verified envelope → typed events → signals → buffer → exporter`.
//!
//! ## Map of the crate
//! - [`config`]    — configuration vocabulary: errors, durations, `${VAR}` expansion, environment overrides, loading.
//! - [`secret`]    — the `Secret` type: a string that never prints, logs or serialises in clear.
//! - [`ingest`]    — the webhook HTTP(S) server: accept loop, TLS reload, limits, signature, responses.
//! - [`mist`]      — Mist's data: the webhook envelope, typed per-topic events, API and stream clients.
//! - [`signals`]   — pure translation of Mist events into OTLP logs, metrics and spans (no I/O).
//! - [`export`]    — durable buffer, batching, retries and the OTLP gRPC/HTTP/debug exporters.
//! - [`poller`]    — optional Mist API poller: WebSocket stats and REST org figures as gauges.
//! - [`admin`]     — the admin listener: health, readiness, Prometheus `/metrics`, status page.
//! - [`telemetry`] — the server's own metrics registry and structured logging set-up.
//! - [`app`]       — the whole configuration (`app::Config`); wires the components together and runs them.

pub mod admin;
pub mod app;
pub mod buffer;
pub mod clock;
pub mod config;
pub mod exporter;
pub mod ingest;
pub mod mist;
pub mod pipeline;
pub mod poller;
pub mod secret;
pub mod signals;
pub mod telemetry;
