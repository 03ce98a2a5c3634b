//! The server's own telemetry, declared in one place: every self-metric (name, help, typed
//! labels) of a component is in that component's file here, the way the OpenTelemetry
//! Collector's `metadata.yaml` declares a component's own telemetry once. Components hold the
//! typed handles and bump them; `/metrics`, the status page and `/readyz` read the handles or
//! the typed health snapshots declared beside them, never the rendered text.
//!
//! - [`ingest`] — the webhook listener: requests by outcome, signatures, bytes, events.
//! - [`buffer`] — the buffer: depth, bytes, oldest age, commits, drops by reason; and
//!   [`buffer::BufferHealth`], its typed health snapshot.
//! - [`export`] — the export pipeline: requests and items by outcome, retries, drops, the
//!   translator's bounds; and its typed health snapshot ([`export::ExportHealth`]).
//! - [`deadletter`] — the dead-letter store: requests and bytes kept, deleted by the cap; and
//!   its typed health snapshot (part of [`export::ExportHealth`]).
//! - [`poller`] — the Mist API poller: REST calls and budget, WebSocket connections and frames,
//!   per-site subscriptions, refresh errors; and its typed health snapshot.
//!
//! Also here: the registry behind the admin `/metrics` and the structured log set-up, with its
//! configuration ([`config`]: `LogConfig`, `LogFormat`).

pub mod buffer;
pub mod config;
pub mod deadletter;
pub mod export;
pub mod ingest;
pub mod poller;

use config::{LogConfig, LogFormat};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Creates the registry every component registers its self-metrics into. Names get the
/// `mist_otel_` prefix.
pub fn new_registry() -> Registry {
    Registry::with_prefix("mist_otel")
}

/// Renders a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode_registry(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// Declares a label-value enum: each variant with the text it is exported as. Label values are
/// a closed set by construction, so a metric's cardinality is visible in its declaration.
macro_rules! label_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        $vis enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// The label value as exported.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl prometheus_client::encoding::EncodeLabelValue for $name {
            fn encode(
                &self,
                encoder: &mut prometheus_client::encoding::LabelValueEncoder,
            ) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}
pub(crate) use label_enum;

/// Registers a component's metric handles, one `"name", "help" => handle;` line each, so the
/// component's catalog of self-metrics reads as a table. Names get the registry's `mist_otel_`
/// prefix; counters get `_total` on exposition.
macro_rules! register {
    ($registry:expr; $($name:literal, $help:literal => $handle:expr;)+) => {
        $( $registry.register($name, $help, $handle.clone()); )+
    };
}
pub(crate) use register;

/// A source of extra Prometheus text appended to `/metrics` (e.g. the poller's gauges).
pub type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

/// A frozen registry shared by the admin listener.
pub type SharedRegistry = Arc<Registry>;

/// Dependencies whose `trace` events can carry credentials, capped at `debug` whatever
/// `RUST_LOG` says: tungstenite traces the whole handshake request (the Mist API token in
/// `Authorization`), and the HTTP stacks trace headers and frames. Their `debug` lines carry no
/// header values.
const CREDENTIAL_TRACERS: [&str; 8] =
    ["tungstenite", "tokio_tungstenite", "hyper", "hyper_util", "h2", "reqwest", "rustls", "tonic"];

/// Installs the global tracing subscriber (JSON or text lines on stderr). `RUST_LOG` overrides
/// the configured level, except that [`CREDENTIAL_TRACERS`] never log below `debug`.
pub fn init_logging(cfg: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // A separate filter rather than directives added to the user's: a more specific user
    // directive (`tungstenite::handshake=trace`) would win over an added `tungstenite=debug`.
    let cap = CREDENTIAL_TRACERS.iter().fold(Targets::new().with_default(LevelFilter::TRACE), |t, target| {
        t.with_target(*target, LevelFilter::DEBUG)
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Json => builder.json().flatten_event(true).finish().with(cap).try_init(),
        LogFormat::Text => builder.finish().with(cap).try_init(),
    };
}
