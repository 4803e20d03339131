//! `starling`: the command-line front of Starling.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod aggregate;
mod aggregate_demo;
mod aggregate_files;
mod client;
mod coordinator;
mod data;
mod demo;
mod device;
mod keys;
mod ledger;
mod market;
mod participant;
mod progress;
mod rule_flags;
mod runtime;
mod serve_config;
mod simulate;
mod task;
mod tensors;
mod train;
mod units;
mod untrusted;
mod validate;

/// Starling: federated learning with competitions.
#[derive(Debug, Parser)]
#[command(name = "starling", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a network: `starling coordinator serve`.
    #[command(subcommand)]
    Coordinator(coordinator::Command),
    /// Admin: issue STAR (signed with the coordinator's admin key).
    #[command(subcommand)]
    Admin(ledger::AdminCommand),
    /// Tasks: create one (escrowing its reward pool), show one.
    #[command(subcommand)]
    Task(task::Command),
    /// Train on your data in a task, round after round, until it ends or Ctrl-C.
    Train(Box<train::Args>),
    /// Score the submissions assigned to you in a task on held-out data.
    Validate(Box<validate::Args>),
    /// Stake STAR as a trainer or validator (optionally locked for more weight).
    Stake(ledger::StakeArgs),
    /// Return a stake whose lock has ended, less the 5% unstaking fee.
    Unstake(ledger::UnbondArgs),
    /// Stake STAR behind another node and share its rewards.
    Delegate(ledger::DelegateArgs),
    /// Return a delegation whose lock has ended, less the 5% unstaking fee.
    Undelegate(ledger::UnbondArgs),
    /// Set the commission you keep of rewards before sharing with your delegators.
    Commission(ledger::CommissionArgs),
    /// Send free STAR to another key.
    Transfer(ledger::TransferArgs),
    /// Show a key's free, staked and delegated STAR and its bonds.
    Balance(ledger::BalanceArgs),
    /// The model marketplace: list, show, pull models; classify with one (signed, paid).
    #[command(subcommand)]
    Market(market::Command),
    /// Aggregate model updates stored as safetensors files with any rule.
    Aggregate(aggregate::Args),
    /// Datasets: download MNIST, check a data directory.
    #[command(subcommand)]
    Data(data::Command),
    /// Identities: create an ed25519 key file, show its public key.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Run a whole competition on this machine: a coordinator, honest and
    /// adversarial trainers, validators (one dishonest) and delegators, all
    /// real clients over QUIC; then a summary and the dashboard.
    Demo(Box<demo::Args>),
    /// Run federated learning in this process on MNIST: sampled clients train
    /// locally, any rule aggregates, attackers optional; results as JSON.
    Simulate(Box<simulate::Args>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Coordinator(cmd) => coordinator::run(cmd),
        Command::Admin(cmd) => ledger::admin(cmd),
        Command::Task(cmd) => task::run(cmd),
        Command::Train(args) => train::run(*args),
        Command::Validate(args) => validate::run(*args),
        Command::Stake(args) => ledger::stake(args),
        Command::Unstake(args) => ledger::unstake(args),
        Command::Delegate(args) => ledger::delegate(args),
        Command::Undelegate(args) => ledger::undelegate(args),
        Command::Commission(args) => ledger::commission(args),
        Command::Transfer(args) => ledger::transfer(args),
        Command::Balance(args) => ledger::balance(args),
        Command::Market(cmd) => market::run(cmd),
        Command::Aggregate(args) => aggregate::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Simulate(args) => simulate::run(*args),
        Command::Demo(args) => demo::run(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand's arguments are well formed (clap checks them only
    /// when that subcommand is parsed, so a clash would otherwise surface
    /// as a panic in front of a user).
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
