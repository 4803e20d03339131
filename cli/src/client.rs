//! What every command that talks to a coordinator shares: where it is, how
//! to trust it, which identity signs, and how refusals are reported.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use starling_net::{Fingerprint, Identity, KnownHosts, Limits, Trust, client_endpoint};
use starling_protocol::{
    BalanceInfo, Message, Nonce, PublicKey, ReadRequest, Request, ResponseBody, TaskId, TaskInfo, WireError,
};
use starling_trainer::{QuicTransport, Transport};

use crate::keys::default_key_path;

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
        let (trust, first_use) = match (&self.fingerprint, &self.ca_cert) {
            (Some(fingerprint), _) => (Trust::Pinned(*fingerprint), None),
            (None, Some(pem)) => (
                Trust::ca_pem_file(pem).with_context(|| format!("reading CA certificates from {}", pem.display()))?,
                None,
            ),
            (None, None) => {
                let path = match &self.known_hosts {
                    Some(path) => path.clone(),
                    None => default_known_hosts()?,
                };
                let known = KnownHosts::new(&path);
                let host = self.coordinator.to_ascii_lowercase();
                let seen = known.lookup(&host)?;
                (Trust::TrustOnFirstUse { known_hosts: path }, seen.is_none().then_some((known, host)))
            }
        };
        // A bracketed target is an IPv6 literal; anything else is dialled over IPv4.
        let bind: SocketAddr =
            if self.coordinator.starts_with('[') { "[::]:0".parse()? } else { "0.0.0.0:0".parse()? };
        let endpoint = client_endpoint(bind, trust, &Limits::default()).context("opening a QUIC client endpoint")?;
        let transport = QuicTransport::new(endpoint, self.coordinator.clone());
        Ok(Coordinator { transport, target: self.coordinator.clone(), first_use })
    }
}

/// A coordinator to send requests to.
pub(crate) struct Coordinator {
    transport: QuicTransport,
    target: String,
    /// The known-hosts file and key when this is the first connection to
    /// the host: its fingerprint is announced once the connection is made.
    first_use: Option<(KnownHosts, String)>,
}

impl Coordinator {
    /// A coordinator reached through `transport` (already trusted), named
    /// `target` in messages.
    pub(crate) fn over(transport: QuicTransport, target: impl Into<String>) -> Self {
        Self { transport, target: target.into(), first_use: None }
    }

    /// Announces a certificate trusted on first use, once it has been.
    fn announce_first_use(&mut self) {
        if let Some((known, host)) = self.first_use.take()
            && let Ok(Some(fingerprint)) = known.lookup(&host)
        {
            eprintln!(
                "first connection to {host}: trusting its certificate {fingerprint} from now on (recorded in {}); \
                 compare it with the fingerprint the coordinator printed, or pass --fingerprint",
                known.path().display()
            );
        }
    }

    /// Sends `request` (with `blob` after it for uploads) and returns the
    /// answer or the coordinator's refusal.
    async fn exchange(
        &mut self,
        what: &str,
        request: &Request,
        blob: Option<&[u8]>,
    ) -> Result<Result<ResponseBody, WireError>> {
        let response = match blob {
            Some(blob) => self.transport.upload(request, blob).await,
            None => self.transport.call(request).await,
        }
        .with_context(|| format!("{what}: no answer from the coordinator at {}", self.target))?;
        self.announce_first_use();
        Ok(response.into_result())
    }

    /// Signs `message` as `identity` and sends it (with `blob` for uploads);
    /// a refusal is returned as such, for callers that act on its code.
    /// Sent once: a lost answer is reported, never retried with a fresh
    /// signature, which the coordinator would take as a second request.
    pub(crate) async fn try_signed<M: Message>(
        &mut self,
        what: &str,
        identity: &Identity,
        message: &M,
        blob: Option<&[u8]>,
    ) -> Result<Result<ResponseBody, WireError>> {
        let nonce = Nonce::generate(&mut rand::rng());
        let request = Request::sign(identity.signing_key(), message, nonce, starling_trainer::now_ms())
            .with_context(|| format!("signing {what}"))?;
        self.exchange(what, &request, blob).await
    }

    /// [`Coordinator::try_signed`], a refusal becoming an error naming `what`.
    pub(crate) async fn signed<M: Message>(
        &mut self,
        what: &str,
        identity: &Identity,
        message: &M,
        blob: Option<&[u8]>,
    ) -> Result<ResponseBody> {
        self.try_signed(what, identity, message, blob).await?.map_err(|error| refused(what, &error))
    }

    /// An unsigned read.
    pub(crate) async fn read(&mut self, what: &str, read: ReadRequest) -> Result<ResponseBody> {
        self.exchange(what, &Request::Read(read), None).await?.map_err(|error| refused(what, &error))
    }

    /// `key`'s balances and bonds.
    pub(crate) async fn balance(&mut self, key: PublicKey) -> Result<BalanceInfo> {
        match self.read("balance", ReadRequest::GetBalance { key }).await? {
            ResponseBody::Balance(info) => Ok(info),
            other => Err(unexpected("balance", &other)),
        }
    }

    /// A task's spec and current round.
    pub(crate) async fn task(&mut self, task: TaskId) -> Result<TaskInfo> {
        match self.read("task", ReadRequest::GetTask { task }).await? {
            ResponseBody::Task(info) => Ok(*info),
            other => Err(unexpected("task", &other)),
        }
    }

    /// The transport, for the trainer and validator clients.
    pub(crate) fn into_transport(self) -> QuicTransport {
        self.transport
    }
}

/// The coordinator's refusal of `what`, with its code and message.
pub(crate) fn refused(what: &str, error: &WireError) -> anyhow::Error {
    anyhow!("{what} refused by the coordinator [{}]: {}", error.code, error.message)
}

/// An answer that does not fit the request.
pub(crate) fn unexpected(what: &str, body: &ResponseBody) -> anyhow::Error {
    let text: String = format!("{body:?}").chars().take(120).collect();
    anyhow!("{what}: the coordinator answered with something else: {text}")
}
