//! `fincore`: the command line. This crate is glue: every capability lives in the
//! library crates (`fincore-engine`, `fincore-journal`, `fincore-gateway`); here are
//! only argument parsing, wiring and printing.

mod bench;
mod bench_floor;
mod bench_journal;
mod bench_pipeline;
mod bench_tcp;
mod check_acks;
mod client_cmd;
mod format;
mod journal_cmd;
mod load;
mod names;
mod replay;
mod report;
mod serve;
mod stats;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "fincore", version, about = "Low-latency matching and payment core")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (with no --config: the built-in demo configuration).
    Serve(serve::ServeArgs),
    /// One-shot commands against a running server.
    Client(client_cmd::ClientArgs),
    /// Print the configuration line (`secret_hash = ...`) for a user's secret.
    HashSecret {
        /// The secret: 1 to 64 bytes.
        secret: String,
    },
    /// Open-loop load against a running server (default: the demo on 127.0.0.1:7100).
    Load(load::LoadArgs),
    /// In-process benchmarks.
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
    /// Rebuild the state of a data directory from its snapshot and journal.
    Replay(replay::ReplayArgs),
    /// Check or print a data directory's journal.
    Journal {
        #[command(subcommand)]
        command: journal_cmd::JournalCommand,
    },
    /// A running server's metrics (`serve --metrics ADDR`) on one screen, refreshing.
    Stats(stats::StatsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Client(args) => client_cmd::run(&args),
        Command::HashSecret { secret } => hash_secret(&secret),
        Command::Load(args) => load::run(&args),
        Command::Bench { target } => bench::run(target),
        Command::Replay(args) => replay::run(&args),
        Command::Journal { command } => journal_cmd::run(&command),
        Command::Stats(args) => stats::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fincore: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn hash_secret(secret: &str) -> anyhow::Result<()> {
    use fincore_gateway::wire::SECRET_LEN;
    // Either would make a configuration line that is worse than none: an empty secret
    // is anyone's, and a login carries at most SECRET_LEN bytes, so no login matches
    // the hash of a longer one.
    if secret.is_empty() {
        anyhow::bail!("the secret is empty: give the user a secret to log in with");
    }
    if secret.len() > SECRET_LEN {
        anyhow::bail!(
            "the secret is {} bytes long: a login carries at most {SECRET_LEN}, so none \
             could match",
            secret.len()
        );
    }
    let hash = fincore_gateway::auth::SecretHash::generate(secret.as_bytes())?;
    println!("secret_hash = \"{hash}\"");
    Ok(())
}
