//! `fincore`: the command line. This crate is glue: every capability lives in the
//! library crates (`fincore-engine`, `fincore-journal`, `fincore-gateway`); here are
//! only argument parsing, wiring and printing.

mod bench;
mod bench_journal;
mod journal_cmd;
mod replay;
mod report;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench { target } => bench::run(target),
        Command::Replay(args) => replay::run(&args),
        Command::Journal { command } => journal_cmd::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fincore: {error:#}");
            ExitCode::FAILURE
        }
    }
}
