//! Pure translation of Mist events into OpenTelemetry logs, metrics and spans (no I/O; the
//! clock is passed in).

pub mod config;
