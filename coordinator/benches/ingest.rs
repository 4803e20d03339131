//! Ingest: signed, verified, checked and stored CNN-size updates (the FedAvg
//! paper's MNIST CNN, 1,663,370 `f32` = 6.65 MB) per second over loopback
//! QUIC, next to raw quinn moving the same bytes in the same run.
//!
//! - `ingest`: a trainer signs a `SubmitUpdate` and uploads its payload to a
//!   real coordinator (SQLite and a local artifact directory in a temporary
//!   directory). The coordinator verifies the envelope, checks the round,
//!   receives the blob with its BLAKE3 check, decodes every tensor and checks
//!   finiteness and the norm bound, writes the file to the artifact store,
//!   records the submission and saves the round machine, then answers.
//! - `raw`: `write_all` + `finish` against `read_to_end` of the same number of
//!   bytes on a fresh stream of one connection: the ceiling.
//!
//! Both run with one upload in flight at a time (the latency of one upload:
//! every file and database write is synced before the answer) and with
//! `PARALLEL` in flight (many trainers at once, as in a real round: each
//! starts when another ends, no lock-step batches); the two
//! are measured alternately, `TRIALS` times each, and the medians compared.
//! Goal: ingest at least 0.8 of raw.
//!
//! `cargo bench --profile bench-fast -p starling-coordinator --bench ingest`

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use starling_client::Transport;
use starling_models::zoo::ModelKind;
use starling_net::quinn::Connection;
use starling_net::{Limits, ServerIdentity, Trust, client_endpoint, connect_addr, server_endpoint};
use starling_protocol::{
    ContentHash, NamedTensor, ResponseBody, Role, RoundPhase, SubmitUpdate, TaskSpec, UpdatePayload,
};
use support::*;

const UPLOADS: usize = 32;
const TRIALS: usize = 7;
const PARALLEL: usize = 4;

fn cnn_spec() -> TaskSpec {
    let kind = ModelKind::Cnn;
    TaskSpec::builder(kind.model_spec(), kind.data_spec())
        .reward_pool(1_000 * STAR)
        .min_stakes(STAR, STAR)
        .deadlines(3_600, 3_600)
        .max_update_norm(Some(1e6))
        .build()
        .unwrap()
}

/// An update-like payload, different for every `n`.
fn update(spec: &TaskSpec, n: usize) -> Vec<u8> {
    let tensors: Vec<NamedTensor> = spec
        .model
        .tensors
        .iter()
        .map(|t| {
            let count: usize = t.shape.iter().product();
            let values = (0..count).map(|i| ((i + n * 7) % 1000) as f32 * 1e-5).collect();
            NamedTensor::new(t.name.clone(), t.shape.clone(), values)
        })
        .collect();
    UpdatePayload::encode_owned(&tensors).unwrap().into_bytes()
}

/// Seconds to ingest `UPLOADS` updates into a fresh coordinator.
async fn ingest(updates: &[Vec<u8>], parallel: usize) -> f64 {
    let place = Place::new("ingest", false).await.unwrap();
    let net = Network::start(&place, Duration::from_millis(300)).await;
    let t = net.transport();
    let spec = cnn_spec();
    let creator = identity(1);
    fund(&t, &place.admin, &creator, 10_000 * STAR, None).await;
    let trainers: Vec<_> = (0..updates.len()).map(|i| identity(100 + i as u64)).collect();
    let validator = identity(2);
    fund(&t, &place.admin, &validator, 100 * STAR, Some((Role::Validator, 10 * STAR))).await;
    // Everyone is funded before the task exists, so that all the joins
    // (quick) fall inside its join window even on a loaded machine.
    for trainer in &trainers {
        fund(&t, &place.admin, trainer, 100 * STAR, Some((Role::Trainer, 10 * STAR))).await;
    }
    let (task, _) = create_task_with(&t, &creator, spec.clone(), ModelKind::Cnn).await;
    call(&t, &validator, &starling_protocol::JoinTask { task, role: Role::Validator }).await.unwrap();
    for trainer in &trainers {
        call(&t, trainer, &starling_protocol::JoinTask { task, role: Role::Trainer }).await.unwrap();
    }
    let info = loop {
        if let Some(info) = round(&t, task).await
            && info.phase == RoundPhase::Training
        {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(info.sampled_trainers.len(), trainers.len(), "every trainer joined within the join window");
    // Each trainer signs its update (hashing its 6.65 MB) before the clock
    // starts, as it does once training ends: what is timed is the upload
    // and the coordinator's side.
    let upload = |trainer: &starling_net::Identity, bytes: &Vec<u8>| {
        let message = SubmitUpdate {
            task,
            round: info.round,
            base_model: info.global_model,
            update: ContentHash::of(bytes),
            update_len: bytes.len() as u64,
            samples: 600,
            train_loss: 0.1,
        };
        sign(trainer, &message)
    };
    let requests: Vec<_> = trainers.iter().zip(updates).map(|(k, b)| upload(k, b)).collect();
    let started = Instant::now();
    at_most(parallel, requests.iter().zip(updates).map(|(r, b)| upload_one(&t, r, b))).await;
    let seconds = started.elapsed().as_secs_f64();
    net.kill();
    seconds
}

/// Seconds for raw quinn to move the same bytes, one stream each.
async fn raw(updates: &[Vec<u8>], parallel: usize) -> f64 {
    let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
    let identity = ServerIdentity::ephemeral().unwrap();
    let server = server_endpoint(localhost, &identity, &Limits::default()).unwrap();
    let addr = server.local_addr().unwrap();
    let accepting = tokio::spawn(async move { server.accept().await.unwrap().await.unwrap() });
    let client = client_endpoint(localhost, Trust::Pinned(identity.fingerprint()), &Limits::default()).unwrap();
    let connection: Connection = connect_addr(&client, addr, "localhost").await.unwrap();
    let server: Connection = accepting.await.unwrap();
    let reader = tokio::spawn(async move {
        while let Ok((mut send, mut recv)) = server.accept_bi().await {
            let bytes = recv.read_to_end(usize::MAX).await.unwrap();
            send.write_all(&(bytes.len() as u64).to_le_bytes()).await.unwrap();
            send.finish().unwrap();
        }
    });
    let started = Instant::now();
    at_most(parallel, updates.iter().map(|bytes| send_one(&connection, bytes))).await;
    let seconds = started.elapsed().as_secs_f64();
    connection.close(0u32.into(), b"done");
    reader.abort();
    seconds
}

async fn upload_one(t: &starling_client::QuicTransport, request: &starling_protocol::Request, bytes: &[u8]) {
    let answer = t.upload(request, bytes).await.unwrap();
    let answer = answer.into_result();
    assert!(matches!(answer, Ok(ResponseBody::UpdateAccepted { .. })), "the upload was not accepted: {answer:?}");
}

async fn send_one(connection: &Connection, bytes: &[u8]) {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    send.finish().unwrap();
    let ack = recv.read_to_end(8).await.unwrap();
    assert_eq!(u64::from_le_bytes(ack.try_into().unwrap()), bytes.len() as u64);
}

/// Runs `jobs` on this task with at most `parallel` in flight, starting the
/// next as soon as one ends: trainers upload independently, not in
/// lock-step batches that each wait for their slowest.
async fn at_most<F: std::future::Future<Output = ()>>(parallel: usize, mut jobs: impl Iterator<Item = F>) {
    let mut running: Vec<std::pin::Pin<Box<F>>> = Vec::with_capacity(parallel);
    std::future::poll_fn(|cx| {
        loop {
            while running.len() < parallel {
                match jobs.next() {
                    Some(job) => running.push(Box::pin(job)),
                    None => break,
                }
            }
            if running.is_empty() {
                return std::task::Poll::Ready(());
            }
            let before = running.len();
            running.retain_mut(|f| f.as_mut().poll(cx).is_pending());
            if running.len() == before {
                return std::task::Poll::Pending;
            }
        }
    })
    .await;
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less args; only
    // measure under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let spec = cnn_spec();
    let updates: Vec<Vec<u8>> = (0..UPLOADS).map(|n| update(&spec, n)).collect();
    let bytes = updates.iter().map(Vec::len).sum::<usize>() as f64;
    for parallel in [1, PARALLEL] {
        let (mut ingested, mut raws) = (Vec::new(), Vec::new());
        for trial in 0..TRIALS {
            let r = runtime.block_on(raw(&updates, parallel));
            let i = runtime.block_on(ingest(&updates, parallel));
            println!(
                "{parallel} in flight, trial {trial}: raw {:.0} MB/s, ingest {:.0} MB/s ({:.1} updates/s), ratio {:.2}",
                bytes / r / 1e6,
                bytes / i / 1e6,
                UPLOADS as f64 / i,
                r / i
            );
            raws.push(r);
            ingested.push(i);
        }
        let (r, i) = (median(raws), median(ingested));
        println!(
            "{parallel} in flight, median of {TRIALS}: raw quinn {:.0} MB/s, ingest {:.0} MB/s = {:.1} CNN updates/s; \
             ingest/raw = {:.2}",
            bytes / r / 1e6,
            bytes / i / 1e6,
            UPLOADS as f64 / i,
            r / i
        );
    }
}
