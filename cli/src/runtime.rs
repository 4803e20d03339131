//! The async runtime the network commands run on, and Ctrl-C.

use std::future::Future;

use anyhow::{Context, Result};
use starling_client::Shutdown;

/// Runs `work` to completion on a multi-threaded tokio runtime (training
/// moves its worker aside with `block_in_place`, which needs one).
pub(crate) fn block_on<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(work)
}

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    // Without a signal handler there is nothing to wait for: never stop.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A [`Shutdown`] that fires on the first Ctrl-C or SIGTERM: the client
/// finishes the step it is in (a training run completes, an upload is
/// answered) and leaves. A second Ctrl-C quits at once. Call inside the
/// runtime.
pub(crate) fn shutdown_on_signal() -> Shutdown {
    let (handle, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        stop_requested().await;
        eprintln!("stopping after the current step (Ctrl-C again to quit at once)");
        handle.trigger();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    shutdown
}
