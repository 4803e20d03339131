//! Attacks on a running coordinator by keys that cost nothing: each test
//! mounts one and shows it fails (issue 19's abuse suite).

mod support;

use std::time::Duration;

use burn::prelude::Device;
use starling_client::{Fetched, Transport};
use starling_coordinator::artifacts::ArtifactStore;
use starling_coordinator::round::UnixMillis;
use starling_coordinator::store::{CoordinatorStore, open_any};
use starling_models::zoo::{Model, ModelKind};
use starling_net::{Limits, Trust, client_endpoint, connect, read_frame, write_frame};
use starling_protocol::{
    ContentHash, CreateTask, ErrorCode, FetchUpdate, JoinTask, MAX_CONTROL_MESSAGE, PageRequest, ReadRequest, Request,
    Response, ResponseBody, Role, RoundInfo, RoundPhase, SubmitUpdate, TaskId, Transfer,
};
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

/// Updates are gradients, and gradients leak training data: an update is
/// readable by its trainer and the validators assigned to score it, and by
/// nobody else. A stranger can neither list the round's update hashes nor
/// download an update by its hash; the global model stays public. Before,
/// the unsigned assignments read answered for any validator key and any
/// blob was anyone's to download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_read_only_by_their_trainer_and_assigned_validators() {
    let place = Place::new("private", false).await.unwrap();
    let net = Network::start(&place, Duration::from_millis(300)).await;
    let t = net.transport();
    let (creator, trainer, validator, snoop) = (identity(1), identity(2), identity(3), identity(4));
    fund(&t, &place.admin, &creator, 1_000 * STAR, None).await;
    fund(&t, &place.admin, &trainer, 100 * STAR, Some((Role::Trainer, 50 * STAR))).await;
    fund(&t, &place.admin, &validator, 100 * STAR, Some((Role::Validator, 50 * STAR))).await;
    // Staked like any validator, but not in this task.
    fund(&t, &place.admin, &snoop, 100 * STAR, Some((Role::Validator, 50 * STAR))).await;
    let (task, _) = create_task(&t, &creator, spec(1, 100 * STAR)).await;
    call(&t, &trainer, &JoinTask { task, role: Role::Trainer }).await.unwrap();
    call(&t, &validator, &JoinTask { task, role: Role::Validator }).await.unwrap();

    let info = until_phase(&t, task, RoundPhase::Training).await;
    let update = filled(&spec(1, 100 * STAR), 0.001);
    let hash = ContentHash::of(&update);
    let submit = SubmitUpdate {
        task,
        round: info.round,
        base_model: info.global_model,
        update: hash,
        update_len: update.len() as u64,
        samples: 100,
        train_loss: 0.3,
    };
    let answer = t.upload(&sign(&trainer, &submit), &update).await.unwrap().into_result().unwrap();
    let ResponseBody::UpdateAccepted { submission } = answer else { panic!("{answer:?}") };
    let info = until_phase(&t, task, RoundPhase::Validating).await;
    let len = update.len() as u64;
    let fetch_update = FetchUpdate { task, round: info.round, submission };

    // Anyone, unsigned: the update's hash names no public blob, and the
    // retired unsigned assignments read is refused.
    let public = |hash| Request::Read(ReadRequest::FetchBlob { hash });
    let refused = |fetched: Fetched| fetched.expect_err("refused").code;
    assert_eq!(refused(t.fetch(&public(hash), hash, len).await.unwrap()), ErrorCode::UnknownBlob);
    let retired =
        ReadRequest::RetiredGetAssignments { task, round: info.round, validator: validator.public_key(), after: None };
    let answer = t.call(&Request::Read(retired)).await.unwrap();
    assert!(matches!(answer, Response::Error(ref e) if e.code == ErrorCode::UnknownKind), "{answer:?}");
    // A staked validator not assigned to it: nothing listed, nothing read.
    assert!(assignments(&t, task, info.round, &snoop).await.is_empty());
    let snooped = t.fetch(&sign(&snoop, &fetch_update), hash, len).await.unwrap();
    assert_eq!(refused(snooped), ErrorCode::Unauthorized);

    // The assigned validator sees it and reads it; so does its trainer.
    let mine = assignments(&t, task, info.round, &validator).await;
    assert_eq!(mine.iter().map(|a| (a.submission, a.update)).collect::<Vec<_>>(), [(submission, hash)]);
    for reader in [&validator, &trainer] {
        assert_eq!(t.fetch(&sign(reader, &fetch_update), hash, len).await.unwrap(), Ok(update.clone()));
    }
    // The global model stays public.
    let global = info.global_model;
    let model = t.fetch(&public(global), global, 1 << 20).await.unwrap().expect("the global model");
    assert_eq!(ContentHash::of(&model), global);
    net.kill();
}

/// Polls the task's round until it is in `phase`.
async fn until_phase(t: &starling_client::QuicTransport, task: TaskId, phase: RoundPhase) -> RoundInfo {
    for _ in 0..500 {
        if let Some(info) = round(t, task).await
            && info.phase == phase
        {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {task} never reached {phase:?}");
}

/// Signed junk from keys that hold nothing: each envelope is correctly
/// signed and fresh, so before admission came first every one took a slot
/// in the replay store, and a few hundred of them (here 64, the store's
/// size in this test) made every honest request `RateLimited`. Now a key
/// that holds no STAR and no stake is refused before its nonce is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_junk_from_keys_that_hold_nothing_takes_no_replay_slot() {
    let mut place = Place::new("junk", false).await.unwrap();
    place.max_entries = Some(64);
    let net = Network::start(&place, Duration::from_secs(5)).await;
    let t = net.transport();
    let honest = identity(1);
    fund(&t, &place.admin, &honest, 10 * STAR, None).await;
    for n in 0..300 {
        let junk = identity(10_000 + n);
        let answer = call(&t, &junk, &Transfer { to: honest.public_key(), amount: 1 }).await;
        assert_eq!(answer.expect_err("a key holding nothing is not heard").code, ErrorCode::Unauthorized, "key {n}");
    }
    // Every honest request is still heard.
    for _ in 0..20 {
        call(&t, &honest, &Transfer { to: place.admin.public_key(), amount: 1 }).await.unwrap();
    }
    let free = net.service.ledger().free_balance(&honest.public_key()).await.unwrap();
    assert_eq!(free.micro(), 10 * STAR - 20);
    net.kill();
}

/// Streams that stall: one opened with half a request frame and left
/// silent, and an upload that stops half-way. Each is let go when its time
/// is up (the request timeout; for a blob, that plus its length at 64 KiB/s)
/// instead of holding a task and its buffers for as long as the peer likes,
/// and the stalled upload stores nothing. Before, both waited for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_streams_are_let_go_when_their_time_is_up() {
    let mut place = Place::new("stalled", false).await.unwrap();
    place.request_timeout = Some(Duration::from_millis(300));
    let net = Network::start(&place, Duration::from_secs(5)).await;
    let t = net.transport();
    let creator = identity(1);
    fund(&t, &place.admin, &creator, 1_000 * STAR, None).await;
    let client =
        client_endpoint(([127, 0, 0, 1], 0).into(), Trust::Pinned(net.fingerprint()), &Limits::default()).unwrap();
    let connection = connect(&client, &net.addr.to_string()).await.unwrap();
    let patience = Duration::from_secs(10);

    // Half a frame's length prefix, then silence.
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(&[0, 0]).await.unwrap();
    let ended = tokio::time::timeout(patience, recv.read_to_end(1 << 16)).await;
    assert!(matches!(ended, Ok(Err(_))), "the silent stream was not reset: {ended:?}");

    // A signed upload whose blob stops half-way.
    let model = Model::init(ModelKind::LogReg, 5, &Device::flex()).to_payload().unwrap();
    let create =
        CreateTask { spec: spec(3, 100 * STAR), initial_model: *model.hash(), initial_model_len: model.len() as u64 };
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    write_frame(&mut send, &sign(&creator, &create).to_bytes().unwrap()).await.unwrap();
    send.write_all(&(model.len() as u64).to_le_bytes()).await.unwrap();
    send.write_all(&model.bytes()[..model.len() / 2]).await.unwrap();
    let answer = tokio::time::timeout(patience, read_frame(&mut recv, MAX_CONTROL_MESSAGE)).await;
    let answer = Response::from_bytes(&answer.expect("answered in time").unwrap(), MAX_CONTROL_MESSAGE).unwrap();
    assert!(matches!(answer, Response::Error(ref e) if e.code == ErrorCode::RateLimited), "{answer:?}");
    assert!(net.service.store().tasks(PageRequest::first(5)).await.unwrap().items.is_empty());
    assert_eq!(net.service.artifacts().len(*model.hash()).await.unwrap(), None, "nothing stored");

    // The connection still serves an honest request.
    let (task, _) = create_task(&t, &creator, spec(3, 100 * STAR)).await;
    assert!(net.service.store().task(task).await.unwrap().is_some());
    net.kill();
}

/// Connections from one address: it may hold its share and no more, so one
/// machine opening connection after connection (each one a handshake, TLS
/// state and stream buffers) cannot take every place; a closed connection
/// gives its place back, and the coordinator goes on serving. Before, there
/// was no limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_of_connections() {
    let mut place = Place::new("crowd", false).await.unwrap();
    place.max_connections_per_address = Some(3);
    let net = Network::start(&place, Duration::from_secs(5)).await;
    let client =
        client_endpoint(([127, 0, 0, 1], 0).into(), Trust::Pinned(net.fingerprint()), &Limits::default()).unwrap();
    let target = net.addr.to_string();
    let read = Request::Read(ReadRequest::GetBalance { key: identity(1).public_key() }).to_bytes().unwrap();
    let mut open = Vec::new();
    for n in 0..3 {
        let connection = connect(&client, &target).await.unwrap_or_else(|e| panic!("connection {n}: {e}"));
        starling_net::request(&connection, &read, MAX_CONTROL_MESSAGE).await.unwrap();
        open.push(connection);
    }
    let refused = connect(&client, &target).await;
    assert!(refused.is_err(), "a fourth connection from the same address was taken");
    // A closed connection gives its place back.
    let closed = open.pop().unwrap();
    closed.close(0u32.into(), b"done");
    drop(closed);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(connection) = connect(&client, &target).await {
            again = Some(connection);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = again.expect("the freed place is taken again");
    starling_net::request(&again, &read, MAX_CONTROL_MESSAGE).await.unwrap();
    net.kill();
}
