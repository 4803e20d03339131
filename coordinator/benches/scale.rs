//! Scale: one coordinator, 1,000 trainers and 3 validators in one round of a
//! small model (logistic regression, 7,850 parameters), every client a real
//! QUIC client in this process. Training and evaluation are left out: the
//! trainers upload precomputed updates and the validators precomputed
//! scores, so what is measured is the coordinator's own overhead per round.
//!
//! Reported, per phase: the wall time from the round opening until every
//! update is acknowledged (`CLIENTS` uploads in flight at a time), from the
//! last update until every score is acknowledged, and from the last score
//! until the round is settled (consensus, FedAvg over 1,000 updates streamed
//! from the artifact store, the ledger settlement of 1,000 trainers, the
//! round record); and the process's peak resident memory (clients included:
//! their state is a few KB each).
//!
//! `cargo bench --profile bench-fast -p starling-coordinator --bench scale` (`TRAINERS=N` to change the count)

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use starling_client::Transport;
use starling_coordinator::store::CoordinatorStore;
use starling_protocol::{
    ContentHash, JoinTask, NamedTensor, ResponseBody, Role, RoundNumber, RoundPhase, SubmitScore, SubmitUpdate,
    UpdatePayload,
};
use starling_staking::PageRequest;
use support::*;
use tokio::sync::Semaphore;

const CLIENTS: usize = 32;

/// The process's peak (`VmHWM`) or current (`VmRSS`) resident memory, in MB.
fn rss_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn run(trainers: usize) {
    let mut place = Place::new("scale", false).await.unwrap();
    place.per_signer = Some(4 * trainers + 100);
    // Every simulated client connects from 127.0.0.1.
    place.max_connections_per_address = Some(trainers + 100);
    let net = Arc::new(Network::start(&place, Duration::from_secs(3_600)).await);
    let t = net.transport();
    let mut spec = spec(1, 10_000 * STAR);
    spec.deadlines.training_secs = 3_600;
    spec.deadlines.validation_secs = 3_600;
    let creator = identity(1);
    fund(&t, &place.admin, &creator, 100_000 * STAR, None).await;
    let (task, _) = create_task(&t, &creator, spec.clone()).await;

    let setup = Instant::now();
    let keys: Vec<_> = (0..trainers).map(|i| identity(10_000 + i as u64)).collect();
    let validators: Vec<_> = (0..3).map(|i| identity(500 + i)).collect();
    let gate = Arc::new(Semaphore::new(CLIENTS));
    let mut joins = tokio::task::JoinSet::new();
    for (key, role) in keys.iter().map(|k| (k, Role::Trainer)).chain(validators.iter().map(|k| (k, Role::Validator))) {
        let (key, net, gate, admin) = (key.clone(), net.clone(), gate.clone(), place.admin.clone());
        joins.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let t = net.transport();
            fund(&t, &admin, &key, 100 * STAR, Some((role, 20 * STAR))).await;
            call(&t, &key, &JoinTask { task, role }).await.unwrap();
        });
    }
    while let Some(done) = joins.join_next().await {
        done.unwrap();
    }
    eprintln!("set-up of {trainers} trainers: {:.1} s", setup.elapsed().as_secs_f64());
    let before_round = rss_mb("VmRSS:");

    // Open the round now instead of waiting out the join window.
    let opened = Instant::now();
    let info = loop {
        if let Some(info) = round(&t, task).await
            && info.phase == RoundPhase::Training
        {
            break info;
        }
        net.service.start_now(task).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(info.sampled_trainers.len(), trainers);

    let mut uploads = tokio::task::JoinSet::new();
    for (n, key) in keys.iter().enumerate() {
        let (key, net, gate, tensors) = (key.clone(), net.clone(), gate.clone(), spec.model.tensors.clone());
        let info = info.clone();
        uploads.spawn(async move {
            // Made once the permit is held: at most `CLIENTS` payloads exist at a time.
            let _permit = gate.acquire().await.unwrap();
            let values: Vec<NamedTensor> = tensors
                .iter()
                .map(|s| {
                    let count: usize = s.shape.iter().product();
                    let v = (0..count).map(|i| ((i + n) % 97) as f32 * 1e-4).collect();
                    NamedTensor::new(s.name.clone(), s.shape.clone(), v)
                })
                .collect();
            let bytes = UpdatePayload::encode_owned(&values).unwrap().into_bytes();
            let message = SubmitUpdate {
                task,
                round: info.round,
                base_model: info.global_model,
                update: ContentHash::of(&bytes),
                update_len: bytes.len() as u64,
                samples: 600,
                train_loss: 0.1,
            };
            let answer = net.transport().upload(&sign(&key, &message), &bytes).await.unwrap();
            assert!(matches!(answer.into_result(), Ok(ResponseBody::UpdateAccepted { .. })));
        });
    }
    while let Some(done) = uploads.join_next().await {
        done.unwrap();
    }
    let trained = opened.elapsed();

    let scoring = Instant::now();
    let mut scores = tokio::task::JoinSet::new();
    for (v, key) in validators.iter().enumerate() {
        let (key, net) = (key.clone(), net.clone());
        scores.spawn(async move {
            let t = net.transport();
            let assigned = loop {
                let assigned = assignments(&t, task, RoundNumber::FIRST, &key).await;
                if !assigned.is_empty() {
                    break assigned;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            for (i, a) in assigned.iter().enumerate() {
                let score = SubmitScore {
                    task,
                    round: RoundNumber::FIRST,
                    submission: a.submission,
                    accuracy: 0.5 + ((i * 7 + v) % 40) as f64 / 100.0,
                    loss: 0.5,
                    improvement: 0.01,
                };
                call(&t, &key, &score).await.unwrap();
            }
            assigned.len()
        });
    }
    let mut total = 0;
    while let Some(done) = scores.join_next().await {
        total += done.unwrap();
    }
    assert_eq!(total, 3 * trainers);
    let scored = scoring.elapsed();

    let settling = Instant::now();
    assert!(net.service.wait_finished(task, Duration::from_secs(600)).await, "the round settles");
    let settled = settling.elapsed();
    let record = net.service.store().rounds(task, PageRequest { after: None, limit: 1 }).await.unwrap().items;
    assert_eq!(record[0].accepted as usize, trainers);

    println!(
        "{trainers} trainers, 3 validators, one round: updates {:.2} s ({:.0}/s), scores {:.2} s ({:.0}/s), \
         consensus+aggregation+settlement {:.2} s; peak RSS {:.0} MB ({:.0} MB before the round opened)",
        trained.as_secs_f64(),
        trainers as f64 / trained.as_secs_f64(),
        scored.as_secs_f64(),
        (3 * trainers) as f64 / scored.as_secs_f64(),
        settled.as_secs_f64(),
        rss_mb("VmHWM:"),
        before_round,
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let trainers = std::env::var("TRAINERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run(trainers));
}
