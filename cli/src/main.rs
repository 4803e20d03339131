//! `starling`: the command-line front of Starling.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod aggregate;
mod data;
mod demo;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Aggregate(args) => aggregate::run(args),
        Command::Data(cmd) => data::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
