//! The router served on a real socket: bind port 0, fetch `/healthz` over
//! TCP with a hand-written HTTP/1.1 request, shut down gracefully.

use std::sync::Arc;

use starling_protocol::{PublicKey, TaskId};
use starling_web::{
    AccountView, BoxFuture, ModelBlob, Page, PageRequest, ReadError, ReadModel, TaskDetail, TaskSummary, router, serve,
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

    fn metrics(&self) -> BoxFuture<'_, Result<String, ReadError>> {
        Box::pin(async { Ok(String::new()) })
    }

    fn healthy(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// Sends one request with `Connection: close` and returns the whole answer.
async fn fetch(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
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

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server).await.unwrap().unwrap().unwrap();
}
