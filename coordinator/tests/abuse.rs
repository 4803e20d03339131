//! Attacks on a running coordinator by keys that cost nothing: each test
//! mounts one and shows it fails (issue 19's abuse suite).

mod support;

use std::time::Duration;

use burn::prelude::Device;
use starling_client::Transport;
use starling_coordinator::artifacts::ArtifactStore;
use starling_coordinator::round::UnixMillis;
use starling_coordinator::store::{CoordinatorStore, open_any};
use starling_models::zoo::{Model, ModelKind};
use starling_protocol::{CreateTask, ErrorCode, PageRequest, Response, ResponseBody};
use starling_staking::{Amount, LedgerStore, Operation, Params, Timestamp};
use support::*;

/// Two creations racing for one balance: both pass the balance precheck, only
/// one pool can be escrowed. The loser leaves no task row and no stored model
/// (escrow first, store second), and the winner's pool is the only money that
/// moved. With the store written before the escrow, the loser left a
/// "finished" task and its model behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_racing_for_one_balance_leave_only_the_funded_task() {
    let place = Place::new("race", false).await.unwrap();
    let net = Network::start(&place, Duration::from_secs(5)).await;
    let t = net.transport();
    let creator = identity(1);
    fund(&t, &place.admin, &creator, 150 * STAR, None).await;

    for attempt in 0..3u64 {
        // Distinct models, so each creation would store its own blob.
        let models: Vec<_> = (0..2u64)
            .map(|n| Model::init(ModelKind::LogReg, 10 * attempt + n, &Device::flex()).to_payload().unwrap())
            .collect();
        let requests: Vec<_> = models
            .iter()
            .map(|model| {
                let create = CreateTask {
                    spec: spec(3, 100 * STAR),
                    initial_model: *model.hash(),
                    initial_model_len: model.len() as u64,
                };
                sign(&creator, &create)
            })
            .collect();
        let (a, b) = tokio::join!(t.upload(&requests[0], models[0].bytes()), t.upload(&requests[1], models[1].bytes()));
        let answers = [a.unwrap(), b.unwrap()];
        let won: Vec<_> = answers
            .iter()
            .zip(&models)
            .filter_map(|(answer, model)| match answer {
                Response::Ok(ResponseBody::TaskCreated { task }) => Some((*task, *model.hash())),
                _ => None,
            })
            .collect();
        for (answer, model) in answers.iter().zip(&models) {
            let stored = net.service.artifacts().len(*model.hash()).await.unwrap();
            match answer {
                Response::Ok(ResponseBody::TaskCreated { .. }) => assert!(stored.is_some(), "the winner's model"),
                Response::Error(error) => {
                    assert_eq!(error.code, ErrorCode::InsufficientBalance, "attempt {attempt}: {error:?}");
                    assert_eq!(stored, None, "attempt {attempt}: the loser's model was stored");
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        let tasks = net.service.store().tasks(PageRequest::first(10)).await.unwrap().items;
        let expected = usize::from(attempt == 0);
        assert_eq!(won.len(), expected, "attempt {attempt}: only the first pair can pay one pool");
        assert_eq!(tasks.len(), 1, "attempt {attempt}: one task row in all, the funded one");
        if let Some((task, hash)) = won.first() {
            assert_eq!((tasks[0].id, tasks[0].initial_model), (*task, *hash));
        }
    }
    let free = net.service.ledger().free_balance(&creator.public_key()).await.unwrap();
    assert_eq!(free.micro(), 50 * STAR, "only the one escrow moved money");
    net.kill();
}

/// A coordinator that died after escrowing a pool but before storing its task
/// leaves a reservation; the next start refunds the pool to its creator and
/// forgets the reservation, and the id never becomes a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_cut_short_after_its_escrow_is_refunded_at_the_next_start() {
    let place = Place::new("cut_short", false).await.unwrap();
    let admin = place.admin.public_key();
    let creator = identity(1).public_key();
    let task = {
        let store = open_any(&place.database_url).await.unwrap();
        let ledger = starling_staking::open_any(&place.database_url, admin, Params::default()).await.unwrap();
        let at = Timestamp(1);
        let issue = Operation::Issue { by: admin, to: creator, amount: Amount::from_micro(100 * STAR) };
        ledger.apply("issue", &issue, at).await.unwrap();
        // The request's first two steps, then the crash.
        let task = store.reserve_task(&creator, UnixMillis::new(1_000)).await.unwrap();
        let fund =
            Operation::FundTask { funder: creator, task, amount: Amount::from_micro(60 * STAR), total_rounds: 3 };
        ledger.apply(&format!("fund:{task}"), &fund, at).await.unwrap();
        assert_eq!(ledger.free_balance(&creator).await.unwrap().micro(), 40 * STAR);
        task
    };

    let net = Network::start(&place, Duration::from_secs(5)).await;
    let ledger = net.service.ledger();
    assert_eq!(ledger.free_balance(&creator).await.unwrap().micro(), 100 * STAR, "the pool came back");
    let pool = ledger.pool(task).await.unwrap().expect("the pool's record stays");
    assert_eq!((pool.balance.micro(), pool.rounds_left()), (0, 0), "closed");
    let store = net.service.store();
    assert_eq!(store.reservations(UnixMillis::new(u64::MAX >> 1)).await.unwrap(), [], "forgotten");
    assert_eq!(store.task(task).await.unwrap(), None);
    assert!(store.tasks(PageRequest::first(5)).await.unwrap().items.is_empty());
    let audit = ledger.audit().await.unwrap();
    assert_eq!((audit.held, audit.issued.micro()), (audit.issued, 100 * STAR), "nothing created or lost");
    net.kill();
}
