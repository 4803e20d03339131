//! `starling stake|unstake|delegate|undelegate|commission|transfer|balance`
//! and `starling admin issue`: signed ledger requests and the balance read.
//! The ledger's rules live in the coordinator; these commands only check
//! what the protocol lets a client check before sending.

use anyhow::Result;
use starling_protocol::{
    BalanceInfo, Delegate, ErrorCode, Issue, PublicKey, ResponseBody, Role, SetCommission, Stake, Transfer, Undelegate,
    Unstake,
};

use crate::client::{ClientArgs, Coordinator, refused, unexpected};
use crate::runtime::block_on;
use crate::units::{now_ms, parse_rate_ppm, parse_star, percent, star, unlock};

/// Lock own stake in a role.
#[derive(Debug, clap::Args)]
pub(crate) struct StakeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The role the stake counts for: trainer or validator.
    #[arg(long)]
    role: Role,
    /// STAR to lock (up to 6 decimals).
    #[arg(long, value_parser = parse_star, value_name = "STAR")]
    amount: u64,
    /// Lock-up in days, 0 to 365: stake locked longer than 30 days weighs more (3× at 365).
    #[arg(long, default_value_t = 0)]
    lock_days: u16,
}

/// Return a stake or delegation whose lock has ended (less the unstaking fee).
#[derive(Debug, clap::Args)]
pub(crate) struct UnbondArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The bond, as `stake`/`delegate` or `balance` named it.
    #[arg(long)]
    bond: u64,
}

/// Lock STAR behind another node and share its rewards.
#[derive(Debug, clap::Args)]
pub(crate) struct DelegateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The node's public key (64 hex digits); it must have staked in --role.
    #[arg(long, value_name = "KEY")]
    to: PublicKey,
    /// The node's role the delegation counts for: trainer or validator.
    #[arg(long)]
    role: Role,
    /// STAR to lock (up to 6 decimals).
    #[arg(long, value_parser = parse_star, value_name = "STAR")]
    amount: u64,
    /// Lock-up in days, 0 to 365.
    #[arg(long, default_value_t = 0)]
    lock_days: u16,
}

/// Set the commission you keep, as a node, before sharing rewards with delegators.
#[derive(Debug, clap::Args)]
pub(crate) struct CommissionArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The role (today's ledger keeps one commission per node, for both roles).
    #[arg(long)]
    role: Role,
    /// The commission: a fraction (0.05) or a percentage (5%), at most one half.
    #[arg(value_parser = parse_rate_ppm, value_name = "RATE")]
    rate: u32,
}

/// Move free STAR to another key.
#[derive(Debug, clap::Args)]
pub(crate) struct TransferArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The payee's public key (64 hex digits).
    #[arg(long, value_name = "KEY")]
    to: PublicKey,
    /// STAR to send (up to 6 decimals).
    #[arg(long, value_parser = parse_star, value_name = "STAR")]
    amount: u64,
}

/// Show a key's balances and bonds.
#[derive(Debug, clap::Args)]
pub(crate) struct BalanceArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Whose balance. Default: the public key of --key.
    #[arg(long, value_name = "KEY")]
    of: Option<PublicKey>,
    /// Print the coordinator's answer as JSON (amounts in µSTAR).
    #[arg(long)]
    json: bool,
}

/// Admin commands, signed with the coordinator's admin key.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AdminCommand {
    /// Create new STAR in an account (only the coordinator's --admin-key may).
    Issue {
        #[command(flatten)]
        client: ClientArgs,
        /// Who receives it: a public key (64 hex digits).
        #[arg(long, value_name = "KEY")]
        to: PublicKey,
        /// STAR to create (up to 6 decimals).
        #[arg(long, value_parser = parse_star, value_name = "STAR")]
        amount: u64,
    },
}

pub(crate) fn stake(args: StakeArgs) -> Result<()> {
    let message = Stake { role: args.role, amount: args.amount, lock_days: args.lock_days };
    message.validate()?;
    let me = args.client.identity()?;
    block_on(async {
        let answer = args.client.connect()?.signed("stake", &me, &message, None).await?;
        let bond = bonded("stake", &answer)?;
        let lock = lock_words(args.lock_days);
        println!("bond {bond}: {} staked as {}, {lock}", star(args.amount), args.role);
        Ok(())
    })
}

pub(crate) fn delegate(args: DelegateArgs) -> Result<()> {
    let message = Delegate { node: args.to, role: args.role, amount: args.amount, lock_days: args.lock_days };
    let me = args.client.identity()?;
    message.validate_from(&me.public_key())?;
    block_on(async {
        let answer = args.client.connect()?.signed("delegate", &me, &message, None).await?;
        let bond = bonded("delegate", &answer)?;
        let lock = lock_words(args.lock_days);
        println!("bond {bond}: {} delegated to {} as {}, {lock}", star(args.amount), args.to, args.role);
        Ok(())
    })
}

pub(crate) fn unstake(args: UnbondArgs) -> Result<()> {
    unbond(args, false)
}

pub(crate) fn undelegate(args: UnbondArgs) -> Result<()> {
    unbond(args, true)
}

/// Unstakes (or undelegates, for a `delegation`); a refusal for a lock
/// still running says when it ends.
fn unbond(args: UnbondArgs, delegation: bool) -> Result<()> {
    let me = args.client.identity()?;
    let what = if delegation { "undelegate" } else { "unstake" };
    block_on(async {
        let mut coordinator = args.client.connect()?;
        let answer = if delegation {
            coordinator.try_signed(what, &me, &Undelegate { bond: args.bond }, None).await?
        } else {
            coordinator.try_signed(what, &me, &Unstake { bond: args.bond }, None).await?
        };
        match answer {
            Ok(ResponseBody::Unbonded { bond, returned, fee }) => {
                println!("bond {bond} returned: {} to your free balance ({} fee)", star(returned), star(fee));
                Ok(())
            }
            Ok(other) => Err(unexpected(what, &other)),
            Err(error) if error.code == ErrorCode::Locked => {
                let when = lock_end(&mut coordinator, me.public_key(), args.bond).await;
                Err(refused(what, &error).context(format!("bond {} is still locked: it {when}", args.bond)))
            }
            Err(error) => Err(refused(what, &error)),
        }
    })
}

/// When `bond` of `key` unlocks, in words (best effort: it is only a hint).
async fn lock_end(coordinator: &mut Coordinator, key: PublicKey, bond: u64) -> String {
    match coordinator.balance(key).await {
        Ok(info) => match info.bonds.iter().find(|b| b.bond == bond) {
            Some(found) => unlock(found.unlock_at_ms, now_ms()),
            None => "is not listed".to_owned(),
        },
        Err(_) => "could not be looked up".to_owned(),
    }
}

pub(crate) fn commission(args: CommissionArgs) -> Result<()> {
    let message = SetCommission { role: args.role, ppm: args.rate };
    message.validate()?;
    let me = args.client.identity()?;
    block_on(async {
        match args.client.connect()?.signed("commission", &me, &message, None).await? {
            ResponseBody::Ack => {
                println!("commission set to {} (applies from the next round opened)", percent(args.rate));
                Ok(())
            }
            other => Err(unexpected("commission", &other)),
        }
    })
}

pub(crate) fn transfer(args: TransferArgs) -> Result<()> {
    let message = Transfer { to: args.to, amount: args.amount };
    let me = args.client.identity()?;
    message.validate_from(&me.public_key())?;
    block_on(async {
        match args.client.connect()?.signed("transfer", &me, &message, None).await? {
            ResponseBody::Ack => {
                println!("sent {} to {}", star(args.amount), args.to);
                Ok(())
            }
            other => Err(unexpected("transfer", &other)),
        }
    })
}

pub(crate) fn admin(cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::Issue { client, to, amount } => {
            let message = Issue { to, amount };
            message.validate()?;
            let admin = client.identity()?;
            block_on(async {
                match client.connect()?.signed("issue", &admin, &message, None).await? {
                    ResponseBody::Ack => {
                        println!("issued {} to {to}", star(amount));
                        Ok(())
                    }
                    other => Err(unexpected("issue", &other)),
                }
            })
        }
    }
}

pub(crate) fn balance(args: BalanceArgs) -> Result<()> {
    let key = match args.of {
        Some(key) => key,
        None => args.client.identity()?.public_key(),
    };
    block_on(async {
        let info = args.client.connect()?.balance(key).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&info)?);
        } else {
            print!("{}", describe_balance(&info, now_ms()));
        }
        Ok(())
    })
}

/// A balance as a few lines of text.
fn describe_balance(info: &BalanceInfo, now_ms: u64) -> String {
    let mut text = format!(
        "account    {}\nfree       {}\nstaked     {}\ndelegated  {}\n",
        info.key,
        star(info.free),
        star(info.staked),
        star(info.delegated)
    );
    for bond in &info.bonds {
        let what = if bond.node == info.key {
            format!("staked as {}", bond.role)
        } else {
            format!("delegated to {} as {}", bond.node, bond.role)
        };
        let lock = unlock(bond.unlock_at_ms, now_ms);
        text += &format!("bond {}: {} {what}, {}, {lock}\n", bond.bond, star(bond.amount), lock_words(bond.lock_days));
    }
    if info.more_bonds {
        text += "(more bonds than listed)\n";
    }
    text
}

fn lock_words(days: u16) -> String {
    match days {
        0 => "no lock-up".to_owned(),
        1 => "locked 1 day".to_owned(),
        _ => format!("locked {days} days"),
    }
}

/// The bond id of a `Bonded` answer.
fn bonded(what: &str, answer: &ResponseBody) -> Result<u64> {
    match answer {
        ResponseBody::Bonded { bond } => Ok(*bond),
        other => Err(unexpected(what, other)),
    }
}

#[cfg(test)]
mod tests {
    use starling_protocol::BondInfo;

    use super::*;

    #[test]
    fn a_balance_reads_as_text() {
        let me = PublicKey::from_bytes([1; 32]);
        let node = PublicKey::from_bytes([2; 32]);
        let info = BalanceInfo {
            key: me,
            free: 90_500_000,
            staked: 10_000_000,
            delegated: 1,
            bonds: vec![
                BondInfo { bond: 1, node: me, role: Role::Trainer, amount: 10_000_000, lock_days: 30, unlock_at_ms: 0 },
                BondInfo { bond: 2, node, role: Role::Validator, amount: 1, lock_days: 0, unlock_at_ms: 90 * 60_000 },
            ],
            more_bonds: false,
        };
        let text = describe_balance(&info, 0);
        assert!(text.contains("free       90.500000 STAR\n"), "{text}");
        assert!(text.contains("bond 1: 10.000000 STAR staked as trainer, locked 30 days, unlocked\n"), "{text}");
        assert!(
            text.contains(&format!(
                "bond 2: 0.000001 STAR delegated to {node} as validator, no lock-up, unlocks in 1 h 30 min"
            )),
            "{text}"
        );
    }
}
