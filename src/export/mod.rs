//! Everything between an accepted delivery and the backend: the durable buffer, the pipeline
//! that translates buffered deliveries into signals, batching, retries, and the OTLP exporters.

pub mod buffer;
pub mod config;

pub use buffer::{AppendError, Buffer, Delivery};
