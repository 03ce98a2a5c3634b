//! `mist-otel deadletter …`: the dead-letter store of the configured data directory.
//!
//! - `list` counts the kept requests per signal and reason, with the oldest and newest time.
//! - `replay` sends each kept request once to the configured exporters, deletes what is
//!   accepted and keeps what is refused again.

use anyhow::{Context, Result};
use clap::Subcommand;
use mist_otel::app::Config;
use mist_otel::deadletter::DeadLetters;
use mist_otel::exporter::Exporters;
use mist_otel::telemetry::deadletter::DeadLetterMetrics;
use std::collections::BTreeMap;

/// `deadletter` subcommands.
#[derive(Subcommand)]
pub enum DeadletterCommand {
    /// Count the kept requests per signal and reason, with the oldest and newest time.
    List,
    /// Send every kept request once to the configured exporters; delete what is accepted, keep
    /// what is refused again. Exits non-zero if any stays.
    Replay,
}

/// Runs a `deadletter` subcommand.
pub async fn run(command: &DeadletterCommand, cfg: &Config) -> Result<()> {
    let store =
        DeadLetters::open(&cfg.data_dir, cfg.export.dead_letter_max_bytes, DeadLetterMetrics::default())
            .with_context(|| {
                format!("data_dir {}: cannot open the dead-letter store", cfg.data_dir.display())
            })?;
    let letters = store.letters().context("cannot list the dead-letter store")?;
    match command {
        DeadletterCommand::List => {
            let mut groups: BTreeMap<(&str, &str), (u64, u64, u64, u64)> = BTreeMap::new();
            for l in &letters {
                let g = groups.entry((l.signal.as_str(), &l.reason)).or_insert((0, 0, u64::MAX, 0));
                *g = (g.0 + 1, g.1 + l.bytes, g.2.min(l.at_unix_ns), g.3.max(l.at_unix_ns));
            }
            println!("{} dead letters in {}", letters.len(), store.dir().display());
            for ((signal, reason), (n, bytes, oldest, newest)) in groups {
                println!(
                    "{signal} {reason}: {n} requests, {bytes} bytes, oldest at unix {}, newest at unix {}",
                    oldest / 1_000_000_000,
                    newest / 1_000_000_000
                );
            }
            Ok(())
        }
        DeadletterCommand::Replay => {
            let exporters = Exporters::build(&cfg.export).context("cannot build the exporters")?;
            let (mut accepted, mut refused) = (0, 0);
            for l in &letters {
                let payload = store.read(l).with_context(|| format!("{}: unreadable", l.path.display()))?;
                match exporters.for_signal(l.signal).export(&payload).await {
                    Ok(_) => {
                        store.remove(l).with_context(|| format!("{}: cannot delete", l.path.display()))?;
                        accepted += 1;
                    }
                    Err(e) => {
                        eprintln!("{}: refused again: {e}", l.path.display());
                        refused += 1;
                    }
                }
            }
            println!(
                "replayed {}: {accepted} accepted (deleted), {refused} refused again (kept)",
                letters.len()
            );
            anyhow::ensure!(refused == 0, "{refused} dead letters refused again");
            Ok(())
        }
    }
}
