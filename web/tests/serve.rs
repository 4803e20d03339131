//! The router served on a real socket: bind port 0, fetch `/healthz` over
//! TCP with a hand-written HTTP/1.1 request, call the prediction route (which
//! reads the peer's address), shut down gracefully.

use std::sync::Arc;

use starling_protocol::{PublicKey, TaskId};
use starling_web::{
    AccountView, BoxFuture, ModelBlob, ModelDetail, ModelSummary, Page, PageRequest, PredictCall, PredictError,
    Prediction, ReadError, ReadModel, TaskDetail, TaskSummary, router, serve,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A coordinator with nothing in it, healthy.
struct Empty;

impl ReadModel for Empty {
    fn list_tasks(&self, _: PageRequest) -> BoxFuture<'_, Result<Page<TaskSummary>, ReadError>> {
        Box::pin(async { Ok(Page::empty()) })
    }

    fn task(&self, _: TaskId) -> BoxFuture<'_, Result<Option<TaskDetail>, ReadError>> {
        Box::pin(async { Ok(None) })
    }

    fn model(&self, _: TaskId) -> BoxFuture<'_, Result<Option<ModelBlob>, ReadError>> {
        Box::pin(async { Ok(None) })
    }

    fn account(&self, _: PublicKey, _: PageRequest) -> BoxFuture<'_, Result<Option<AccountView>, ReadError>> {
        Box::pin(async { Ok(None) })
    }

    fn list_models(&self, _: PageRequest) -> BoxFuture<'_, Result<Page<ModelSummary>, ReadError>> {
        Box::pin(async { Ok(Page::empty()) })
    }

    fn market_model(&self, _: u64) -> BoxFuture<'_, Result<Option<ModelDetail>, ReadError>> {
        Box::pin(async { Ok(None) })
    }

    fn model_version_file(&self, _: u64, _: u32) -> BoxFuture<'_, Result<Option<ModelBlob>, ReadError>> {
        Box::pin(async { Ok(None) })
    }

    fn predict(&self, _: PredictCall) -> BoxFuture<'_, Result<Prediction, PredictError>> {
        Box::pin(async { Err(PredictError::NotFound) })
    }

    fn metrics(&self) -> BoxFuture<'_, Result<String, ReadError>> {
        Box::pin(async { Ok(String::new()) })
    }

    fn healthy(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Sends one GET with `Connection: close` and returns the whole answer.
async fn fetch(address: std::net::SocketAddr, path: &str) -> String {
    exchange(address, format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")).await
}

/// Sends `request` as is and returns the whole answer.
async fn exchange(address: std::net::SocketAddr, request: String) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn healthz_over_tcp_then_graceful_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(router(Arc::new(Empty)), listener, async {
        let _ = stopped.await;
    }));

    let answer = fetch(address, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: text/plain; charset=utf-8\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nok"), "{answer}");

    let answer = fetch(address, "/api/tasks/7").await;
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    assert!(answer.ends_with(r#"{"error":{"code":"not_found","message":"no task 7"}}"#), "{answer}");

    // The prediction route finds the peer's address (the model has no model 1).
    let body = r#"{"inputs": [[0.5]]}"#;
    let request = format!(
        "POST /api/models/1/versions/1/predict HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(address, request).await;
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    assert!(answer.ends_with(r#"{"error":{"code":"not_found","message":"model 1 has no version 1"}}"#), "{answer}");

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
}
