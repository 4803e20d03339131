//! Running the router on a socket the caller bound (STYLE §3), so tests and
//! the coordinator can bind port 0 and read the address back.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting and waits for requests in flight to finish.
///
/// Each request carries its peer's `ConnectInfo<SocketAddr>`, by which the
/// prediction route limits unsigned callers per address.
///
/// Returns only when shut down, or with the listener's error.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "HTTP API listening");
    }
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
