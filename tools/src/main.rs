//! `fincore`: the command line. This crate is glue: every capability lives in the
//! library crates (`fincore-engine`, `fincore-journal`, `fincore-gateway`); here are
//! only argument parsing, wiring and printing.

mod bench;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench { target } => bench::run(target),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fincore: {error:#}");
            ExitCode::FAILURE
        }
    }
}
