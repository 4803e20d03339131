//! `starling keys`: make and show ed25519 identities.

use std::path::PathBuf;

use anyhow::{Context, Result};
use starling_net::Identity;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Create a new identity (mode 0600; never overwrites an existing file).
    New {
        /// Where to write it. Default: $STARLING_KEY, else ~/.config/starling/identity.key.
        #[arg(long, env = "STARLING_KEY")]
        key: Option<PathBuf>,
    },
    /// Print an identity's public key (refuses a key file others can read).
    Show {
        /// The key file. Default: $STARLING_KEY, else ~/.config/starling/identity.key.
        #[arg(long, env = "STARLING_KEY")]
        key: Option<PathBuf>,
    },
}

/// `~/.config/starling/identity.key` (or under `$XDG_CONFIG_HOME`).
pub(crate) fn default_key_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set: pass --key")?)
            .join(".config"),
    };
    Ok(base.join("starling").join("identity.key"))
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::New { key } => {
            let path = match key {
                Some(p) => p,
                None => default_key_path()?,
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let identity = Identity::create(&path)?;
            println!("{}", identity.public_key());
            eprintln!("new identity in {} (keep it secret and backed up: it holds your stake)", path.display());
        }
        Command::Show { key } => {
            let path = match key {
                Some(p) => p,
                None => default_key_path()?,
            };
            println!("{}", Identity::load(&path)?.public_key());
        }
    }
    Ok(())
}
