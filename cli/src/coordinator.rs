//! `starling coordinator serve`: open the stores, start the coordinator
//! service, serve it over QUIC (and HTTP), stop cleanly on Ctrl-C. The
//! service itself is `starling_coordinator::service::Coordinator`; this is
//! only its wiring.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use starling_coordinator::artifacts::AnyArtifacts;
use starling_coordinator::service::{Coordinator, Evaluator, ModelEvaluator, ServiceConfig};
use starling_models::data::{Mnist, Verify};
use starling_net::{Limits, ServerIdentity, server_endpoint};
use starling_staking::Params;
use tokio::net::TcpListener;

use crate::runtime::{block_on, stop_requested};
use crate::serve_config::{HttpAddr, ServeArgs, ServeConfig, Source, Tls};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Run a coordinator: the QUIC front trainers, validators and wallets
    /// talk to, the task drivers, and the HTTP API. Settings layer defaults <
    /// --config FILE < environment < flags; Ctrl-C stops it cleanly.
    Serve(Box<ServeArgs>),
}

pub(crate) fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Serve(args) => {
            let config = ServeConfig::resolve(&args, &|name| std::env::var(name).ok())?;
            if args.print_config {
                print!("{}", config.to_toml());
                return Ok(());
            }
            init_logging();
            block_on(serve(config))
        }
    }
}

/// Log lines on stderr, filtered by `STARLING_LOG` (or `RUST_LOG`), `info` by default.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("STARLING_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

async fn serve(config: ServeConfig) -> Result<()> {
    let admin = config.admin_key.context(
        "no admin key: pass --admin-key KEY (the public key allowed to issue tokens; `starling keys show` prints \
         yours), or set STARLING_ADMIN_KEY or admin_key in the config file",
    )?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let url = config.database_url.expose();
    let store = starling_coordinator::store::open_any(url)
        .await
        .with_context(|| format!("opening the coordinator's database {}", config.database_url))?;
    let ledger = starling_staking::open_any(url, admin, Params::default())
        .await
        .with_context(|| format!("opening the ledger in {}", config.database_url))?;
    let artifacts = AnyArtifacts::open(&config.artifacts)
        .await
        .with_context(|| format!("opening the model store {}", config.artifacts))?;
    // What uploads cut short by an earlier crash left behind: none takes a day.
    let swept = artifacts
        .remove_stale_uploads(std::time::Duration::from_secs(24 * 3600))
        .await
        .with_context(|| format!("sweeping unfinished uploads in {}", config.artifacts))?;
    if swept > 0 {
        tracing::info!(swept, "removed unfinished uploads left by an earlier run");
    }
    let evaluator = match &config.eval_data {
        Some(dir) => {
            let mnist = Mnist::load(dir, Verify::ShapeOnly).with_context(|| format!("loading {}", dir.display()))?;
            Some(Arc::new(ModelEvaluator::new("mnist", &mnist.test)) as Arc<dyn Evaluator>)
        }
        None => None,
    };
    let service_config = ServiceConfig {
        join_window: config.join_window,
        tick: config.tick,
        harm_threshold: config.harm_threshold,
        max_model_bytes: config.max_model_bytes,
        max_open_tasks_per_creator: config.max_open_tasks,
        max_connections_per_address: config.max_connections_per_address,
        ..ServiceConfig::new(admin)
    };
    let service = Coordinator::start(store, ledger, artifacts, service_config, evaluator)
        .await
        .context("starting the coordinator service")?;

    let identity = match &config.tls {
        Tls::SelfSigned(dir) => ServerIdentity::load_or_create(dir)
            .with_context(|| format!("loading or creating the TLS identity in {}", dir.display()))?,
        Tls::Files { cert, key } => ServerIdentity::from_pem_files(cert, key).context("loading the TLS certificate")?,
    };
    let endpoint = server_endpoint(config.quic_addr, &identity, &Limits::coordinator())
        .with_context(|| format!("listening on {} (QUIC)", config.quic_addr))?;
    let quic_addr = endpoint.local_addr()?;
    let serving = service.clone();
    let quic = tokio::spawn(async move { serving.serve_quic(endpoint).await });

    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let http = match config.http_addr {
        HttpAddr::Off => None,
        HttpAddr::At(addr) => match http::start(&service, addr, http_stopped).await {
            Ok((local, task)) => Some((local, task)),
            // Not serving HTTP is no reason to refuse QUIC, unless it was asked for.
            Err(error) if config.source("http_addr") == Source::Default => {
                eprintln!("warning: no HTTP API: {error:#}");
                None
            }
            Err(error) => return Err(error),
        },
    };

    println!("quic: {quic_addr}");
    if let Some((addr, _)) = &http {
        println!("http: http://{addr}");
    }
    println!("fingerprint: {}", identity.fingerprint());
    println!("admin: {admin}");
    println!("data: {}", config.data_dir.display());
    println!(
        "ready: clients connect with --coordinator {} --fingerprint {}; Ctrl-C stops",
        client_address(quic_addr),
        identity.fingerprint()
    );

    stop_requested().await;
    eprintln!("stopping: no new requests; what was acknowledged is already stored");
    service.shutdown();
    stop_http.send_replace(true);
    quic.await.context("the QUIC front failed")?;
    if let Some((_, task)) = http {
        task.await.context("the HTTP API failed")?.context("the HTTP API failed")?;
    }
    println!("stopped");
    Ok(())
}

/// What a client should dial: the address itself, or loopback for a wildcard.
fn client_address(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() { format!("HOST:{}", addr.port()) } else { addr.to_string() }
}

/// The HTTP API over the coordinator's read model.
pub(crate) mod http {
    use super::*;

    pub(crate) type Service =
        Coordinator<starling_coordinator::store::AnyCoordinatorStore, starling_staking::AnyLedgerStore, AnyArtifacts>;

    /// Binds `addr` and serves the JSON API until `stop` turns true.
    pub(crate) async fn start(
        service: &Service,
        addr: SocketAddr,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the HTTP API to {addr}"))?;
        let bound = listener.local_addr()?;
        let router = starling_web::router(std::sync::Arc::new(service.clone()));
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        Ok((bound, tokio::spawn(starling_web::serve(router, listener, shutdown))))
    }
}
