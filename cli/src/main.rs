//! `starling`: the command-line front of Starling.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod aggregate;
mod data;
mod demo;
mod device;
mod keys;
mod progress;
mod simulate;
mod tensors;

/// Starling: federated learning with competitions.
#[derive(Debug, Parser)]
#[command(name = "starling", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Aggregate model updates stored as safetensors files with any rule.
    Aggregate(aggregate::Args),
    /// Datasets: download MNIST, check a data directory.
    #[command(subcommand)]
    Data(data::Command),
    /// Identities: create an ed25519 key file, show its public key.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Run federated learning in this process on MNIST: sampled clients train
    /// locally, any rule aggregates, attackers optional; results as JSON.
    Simulate(Box<simulate::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Aggregate(args) => aggregate::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Simulate(args) => simulate::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
