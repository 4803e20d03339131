//! What every command that talks to a coordinator shares: where it is, how
//! to trust it, which identity signs, and how refusals are reported.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use starling_client::{Answer, ClientError, Dialled, FirstUse, Link, QuicTransport, TrustSetting, dial};
use starling_net::{Fingerprint, Identity};
use starling_protocol::{BalanceInfo, Message, PublicKey, ResponseBody, TaskId, TaskInfo, WireError};

use crate::keys::default_key_path;
use crate::untrusted::printable;

/// How to reach and trust the coordinator, and who signs.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClientArgs {
    /// The coordinator's QUIC address, HOST:PORT.
    #[arg(long, env = "STARLING_COORDINATOR", value_name = "HOST:PORT", default_value = "127.0.0.1:7700")]
    coordinator: String,
    /// Accept only the coordinator whose certificate has this fingerprint (64
    /// hex digits, printed by `starling coordinator serve` at start-up).
    /// Without it (or --ca-cert), the first certificate seen for HOST:PORT is
    /// trusted and remembered in --known-hosts, and a different one refused later.
    #[arg(long, env = "STARLING_FINGERPRINT", value_name = "HEX", conflicts_with = "ca_cert")]
    fingerprint: Option<Fingerprint>,
    /// Accept a CA-issued coordinator certificate that chains to a root in this PEM file.
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// The trust-on-first-use record. Default: ~/.config/starling/known_hosts.
    #[arg(long, env = "STARLING_KNOWN_HOSTS", value_name = "FILE")]
    known_hosts: Option<PathBuf>,
    /// Your identity, which signs requests. Default: $STARLING_KEY, else ~/.config/starling/identity.key.
    #[arg(long, env = "STARLING_KEY", value_name = "FILE")]
    key: Option<PathBuf>,
}

/// `~/.config/starling/known_hosts`, beside the default identity.
fn default_known_hosts() -> Result<PathBuf> {
    Ok(default_key_path()?.with_file_name("known_hosts"))
}

impl ClientArgs {
    /// The identity that signs this command's requests.
    pub(crate) fn identity(&self) -> Result<Identity> {
        let path = match &self.key {
            Some(path) => path.clone(),
            None => default_key_path()?,
        };
        if !path.exists() {
            anyhow::bail!(
                "no identity at {}: create one with `starling keys new --key {}`, or pass --key FILE",
                path.display(),
                path.display()
            );
        }
        Identity::load(&path).with_context(|| format!("loading your identity from {}", path.display()))
    }

    /// A connection to the coordinator, dialled on first use (call inside
    /// the runtime).
    pub(crate) fn connect(&self) -> Result<Coordinator> {
        let trust = match (&self.fingerprint, &self.ca_cert) {
            (Some(fingerprint), _) => TrustSetting::Pinned(*fingerprint),
            (None, Some(pem)) => TrustSetting::CaFile(pem.clone()),
            (None, None) => TrustSetting::KnownHosts(match &self.known_hosts {
                Some(path) => path.clone(),
                None => default_known_hosts()?,
            }),
        };
        let Dialled { transport, first_use } = dial(&self.coordinator, trust)?;
        Ok(Coordinator { link: Link::new(transport), target: self.coordinator.clone(), first_use })
    }
}

/// A coordinator to send requests to, each sent once and reported: the
/// client crate's [`Link`], its errors worded for the command line.
pub(crate) struct Coordinator {
    link: Link<QuicTransport>,
    target: String,
    /// Set when this is the first connection to the host: its fingerprint
    /// is announced once the connection is made.
    first_use: Option<FirstUse>,
}

impl Coordinator {
    /// A coordinator reached through `transport` (already trusted), named
    /// `target` in messages.
    pub(crate) fn over(transport: QuicTransport, target: impl Into<String>) -> Self {
        Self { link: Link::new(transport), target: target.into(), first_use: None }
    }

    /// Announces a certificate trusted on first use, once it has been.
    fn announce_first_use(&mut self) {
        if let Some(first) = self.first_use.take()
            && let Some(fingerprint) = first.recorded()
        {
            eprintln!(
                "first connection to {}: trusting its certificate {fingerprint} from now on (recorded in {}); \
                 compare it with the fingerprint the coordinator printed, or pass --fingerprint",
                first.host(),
                first.path().display()
            );
        }
    }

    /// `answer` to `what`, or why there was none: a refusal in the
    /// coordinator's words, anything else as no answer from it.
    fn answered<A>(&mut self, what: &str, answer: Result<A, ClientError>) -> Result<A> {
        let answer = match answer {
            Ok(answer) => answer,
            Err(ClientError::Refused { error, .. }) => {
                self.announce_first_use();
                return Err(refused(what, &error));
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("{what}: no answer from the coordinator at {}", self.target)));
            }
        };
        self.announce_first_use();
        Ok(answer)
    }

    /// Signs `message` as `identity` and sends it (with `blob` for uploads);
    /// a refusal is returned as such, for callers that act on its code.
    /// Sent once: a lost answer is reported, never retried with a fresh
    /// signature, which the coordinator would take as a second request.
    pub(crate) async fn try_signed<M: Message + Sync>(
        &mut self,
        what: &str,
        identity: &Identity,
        message: &M,
        blob: Option<&[u8]>,
    ) -> Result<Answer> {
        let answer = self.link.signed(identity, message, blob).await;
        self.answered(what, answer)
    }

    /// [`Coordinator::try_signed`], a refusal becoming an error naming `what`.
    pub(crate) async fn signed<M: Message + Sync>(
        &mut self,
        what: &str,
        identity: &Identity,
        message: &M,
        blob: Option<&[u8]>,
    ) -> Result<ResponseBody> {
        self.try_signed(what, identity, message, blob).await?.map_err(|error| refused(what, &error))
    }

    /// `key`'s balances and bonds.
    pub(crate) async fn balance(&mut self, key: PublicKey) -> Result<BalanceInfo> {
        let answer = self.link.balance(key).await;
        self.answered("balance", answer)
    }

    /// A task's spec and current round.
    pub(crate) async fn task(&mut self, task: TaskId) -> Result<TaskInfo> {
        let answer = self.link.task(task).await;
        self.answered("task", answer)
    }

    /// The transport, for the trainer and validator clients.
    pub(crate) fn into_transport(self) -> QuicTransport {
        self.link.into_transport()
    }
}

/// The coordinator's refusal of `what`, with its code and message.
pub(crate) fn refused(what: &str, error: &WireError) -> anyhow::Error {
    anyhow!("{what} refused by the coordinator [{}]: {}", error.code, printable(&error.message))
}

/// An answer that does not fit the request.
pub(crate) fn unexpected(what: &str, body: &ResponseBody) -> anyhow::Error {
    let text: String = format!("{body:?}").chars().take(120).collect();
    anyhow!("{what}: the coordinator answered with something else: {text}")
}
