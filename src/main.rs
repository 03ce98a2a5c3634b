//! The `mist-otel` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mist_otel::app::Config;
use mist_otel::config::process_env;
use std::path::PathBuf;

mod deadletter_cli;
mod health_cli;
mod webhook_cli;

/// Receive Juniper Mist webhooks, verify them, and export every event as OpenTelemetry logs,
/// metrics and traces over OTLP.
///
/// Configuration comes from an optional YAML file (--config) and the environment
/// (MIST_WEBHOOK_SECRET, MIST_OTEL_LISTEN, MIST_OTEL_ADMIN_LISTEN, MIST_OTEL_DATA_DIR,
/// MIST_OTEL__SECTION__KEY for any key, and the standard OTEL_* variables).
#[derive(Parser)]
#[command(name = "mist-otel", version, about, long_about)]
struct Cli {
    /// YAML configuration file (`${VAR}` and `${VAR:-default}` are expanded).
    #[arg(long, short, global = true, env = "MIST_OTEL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve webhooks (the main job) until SIGTERM/SIGINT, then flush and exit.
    Serve,
    /// Validate the configuration as `serve` would at start and print the effective result,
    /// secrets redacted.
    CheckConfig,
    /// Probe a running server's admin listener (/healthz, or /readyz with --ready); exit 0 when
    /// it answers 2xx. For container HEALTHCHECKs in images without curl.
    Health {
        /// Probe /readyz instead of /healthz.
        #[arg(long)]
        ready: bool,
        /// URL to probe instead of the configured admin listener.
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// The dead-letter store (export requests refused for good): list it, or replay it to the
    /// configured exporters once the cause is fixed.
    Deadletter {
        #[command(subcommand)]
        command: deadletter_cli::DeadletterCommand,
    },
    /// Operator helpers: post signed test deliveries, register the webhook with Mist.
    Webhook {
        #[command(subcommand)]
        command: webhook_cli::WebhookCommand,
    },
}

fn load(cli: &Cli) -> Result<Config> {
    Config::load(cli.config.as_deref(), &process_env()).context("invalid configuration")
}

/// mimalloc: fewer CPU cycles per request than glibc's allocator (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (not exported by libmimalloc-sys).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Return freed memory to the OS at once rather than after 1 s: under load the delay let
    // RSS grow past the 64 MiB budget. Set before any thread starts; the value is a plain int.
    // SAFETY: mi_option_set only stores the value; no allocation is in flight that depends on it.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Webhook { command } => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            // A failed delivery or API call is an answer for the operator, not a crash: one
            // line with the cause chain and exit status 1, no backtrace.
            if let Err(e) = rt.block_on(webhook_cli::run(command)) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Health { ready, ref url, timeout } => {
            let url = match url {
                Some(u) => u.clone(),
                None => health_cli::probe_url(&load(&cli)?, ready),
            };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            if let Err(e) = rt.block_on(health_cli::run(&url, std::time::Duration::from_secs(timeout.max(1))))
            {
                eprintln!("unhealthy: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Deadletter { ref command } => {
            let cfg = load(&cli)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(deadletter_cli::run(command, &cfg))
        }
        Command::CheckConfig => {
            let cfg = load(&cli)?;
            // The same start-time checks as `serve` (TLS files, exporters, a secret), so what
            // passes here is not refused there. A gRPC channel needs a runtime to be built in.
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async { mist_otel::app::prepare(&cfg).map(drop) })
                .context("configuration cannot be served")?;
            print!("{}", cfg.to_redacted_yaml());
            eprintln!("configuration is valid");
            Ok(())
        }
        Command::Serve => {
            let cfg = load(&cli)?;
            mist_otel::telemetry::init_logging(&cfg.log);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(serve(cfg))
        }
    }
}

async fn serve(cfg: Config) -> Result<()> {
    // Installed before anything listens: from then on no signal of these kinds can end the
    // process by its default action (tokio never restores it).
    let signals = Signals::install(cfg.ingest.tls.is_some());
    let running = mist_otel::app::start(cfg).await.context("cannot start")?;
    signals.wait_for_stop().await;
    tracing::info!("shutting down: finishing requests and flushing");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The signals `serve` answers: SIGTERM and SIGINT stop it; SIGHUP reloads the TLS certificate
/// (the TLS reloader has its own handler) and is otherwise logged and ignored, never fatal.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
    tls: bool,
}

impl Signals {
    fn install(tls: bool) -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| tracing::warn!(error = %e, "no {name} handler")).ok()
            };
            Self {
                term: install(SignalKind::terminate(), "SIGTERM"),
                int: install(SignalKind::interrupt(), "SIGINT"),
                hup: install(SignalKind::hangup(), "SIGHUP"),
                tls,
            }
        }
        #[cfg(not(unix))]
        Self { tls }
    }

    /// Waits for SIGTERM or SIGINT, answering SIGHUPs meanwhile.
    async fn wait_for_stop(mut self) {
        #[cfg(unix)]
        loop {
            tokio::select! {
                _ = recv(&mut self.term) => return,
                _ = recv(&mut self.int) => return,
                _ = recv(&mut self.hup) => {
                    if !self.tls {
                        tracing::info!("SIGHUP: nothing to reload");
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = self.tls;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The next delivery of a signal; never, if its handler could not be installed.
#[cfg(unix)]
async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
