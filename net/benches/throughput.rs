//! Loopback QUIC throughput for one model update: the FedAvg paper's MNIST
//! CNN, 1,663,370 `f32` = 6,653,480 bytes, sent on a unidirectional stream
//! and read into a `Vec`.
//!
//! - `raw_quinn`: `write_all` + `finish` against `read_to_end`, the baseline.
//! - `blob`: [`send_blob`] against [`recv_blob`] with the BLAKE3 hash check
//!   into a `Vec` sink — what the coordinator does for every upload.
//! - `blake3_only`: hashing the same bytes in memory, the floor of what the
//!   hash check can cost.
//!
//! Both run in the same process and runtime, over one connection, so their
//! ratio is the cost of framing and hashing. Criterion reports bytes per second.
//!
//! `cargo bench -p starling-net --bench throughput`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use starling_net::quinn::Connection;
use starling_net::{
    Limits, ServerIdentity, Trust, client_endpoint, connect_addr, recv_blob, send_blob, server_endpoint,
};
use starling_protocol::ContentHash;
use tokio::runtime::Runtime;

const PARAMETERS: usize = 1_663_370;
const BYTES: usize = PARAMETERS * 4;

/// A connected client/server pair over 127.0.0.1 with default [`Limits`].
fn pair(runtime: &Runtime) -> (Connection, Connection) {
    runtime.block_on(async {
        let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
        let identity = ServerIdentity::ephemeral().expect("certificate");
        let server = server_endpoint(localhost, &identity, &Limits::default()).expect("server");
        let addr = server.local_addr().expect("server address");
        let accepting = tokio::spawn(async move { server.accept().await.expect("incoming").await.expect("accept") });
        let client = client_endpoint(localhost, Trust::Pinned(identity.fingerprint()), &Limits::default())
            .expect("client endpoint");
        let connection = connect_addr(&client, addr, "localhost").await.expect("connect");
        (connection, accepting.await.expect("accept task"))
    })
}

/// Deterministic update-like payload: small f32 values.
fn update() -> Vec<u8> {
    (0..PARAMETERS).flat_map(|i| ((i % 1000) as f32 * 1e-4).to_le_bytes()).collect()
}

fn throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (client, server) = pair(&runtime);
    let data = update();
    let hash = ContentHash::of(&data);

    let mut group = c.benchmark_group("loopback_6.65MB");
    group.throughput(Throughput::Bytes(BYTES as u64));
    group.sample_size(20);

    group.bench_function("raw_quinn", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let send = async {
                    let mut send = client.open_uni().await.expect("open");
                    send.write_all(&data).await.expect("write");
                    send.finish().expect("finish");
                };
                let recv = async {
                    let mut recv = server.accept_uni().await.expect("accept");
                    recv.read_to_end(BYTES).await.expect("read")
                };
                let ((), received) = tokio::join!(send, recv);
                assert_eq!(received.len(), BYTES);
                black_box(received)
            })
        })
    });

    group.bench_function("blob_hash_checked", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let send = async {
                    let mut send = client.open_uni().await.expect("open");
                    send_blob(&mut send, &data).await.expect("send");
                };
                let recv = async {
                    let mut recv = server.accept_uni().await.expect("accept");
                    let mut sink = Vec::with_capacity(BYTES);
                    let (len, _) = recv_blob(&mut recv, BYTES as u64, Some(hash), &mut sink).await.expect("recv");
                    assert_eq!(len, BYTES as u64);
                    sink
                };
                let ((), received) = tokio::join!(send, recv);
                black_box(received)
            })
        })
    });

    // What the hash check alone costs, fed the way `recv_blob` feeds it.
    group.bench_function("blake3_only", |b| {
        b.iter(|| {
            let mut hasher = blake3::Hasher::new();
            for piece in data.chunks(256 * 1024) {
                hasher.update(piece);
            }
            assert_eq!(hasher.finalize().as_bytes(), hash.as_bytes());
        })
    });

    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
