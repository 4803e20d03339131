//! A coordinator stopped in the middle of a round's training or validation
//! and started again over the same database, artifacts and address finishes
//! the task with exactly the settlement of a run that never stopped: same
//! rewards, same slashes, same global models, nothing paid twice. Each stop
//! comes right after a record the saved machine does not hold yet (the
//! first update, the first score), so the restart must re-deliver it.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use starling_coordinator::store::CoordinatorStore;
use starling_models::train::Features;
use starling_protocol::{ContentHash, PublicKey, Role, RoundNumber, RoundPhase};
use starling_staking::{EntryKind, LedgerStore, PageRequest};
use support::*;

const ROUNDS: u32 = 2;

/// What a run settled, without the times at which it did.
#[derive(Debug, PartialEq)]
struct Settled {
    /// Every reward and slash of the task: (round, identity, kind, amount).
    history: Vec<(u32, PublicKey, EntryKind, u64)>,
    /// Each participant's free balance at the end.
    balances: BTreeMap<PublicKey, u64>,
    /// Each round's global model.
    models: Vec<ContentHash>,
}

/// Runs the competition, stopping and restarting the coordinator once in
/// round 0 when `crash` names a phase.
async fn competition(crash: Option<RoundPhase>) -> Settled {
    let name = match crash {
        None => "calm",
        Some(RoundPhase::Training) => "crash-training",
        Some(_) => "crash-validating",
    };
    let place = Place::new(name, false).await.unwrap();
    let net = Network::start(&place, Duration::from_secs(2)).await;
    let transport = net.transport();
    let admin = &place.admin;
    let creator = identity(1);
    let trainers: Vec<_> = (10..14).map(identity).collect();
    let validators: Vec<_> = (20..22).map(identity).collect();
    fund(&transport, admin, &creator, 10_000 * STAR, None).await;
    for t in &trainers {
        fund(&transport, admin, t, 1_000 * STAR, Some((Role::Trainer, 100 * STAR))).await;
    }
    for v in &validators {
        fund(&transport, admin, v, 1_000 * STAR, Some((Role::Validator, 100 * STAR))).await;
    }
    let spec = spec(ROUNDS, 2_000 * STAR);
    let (task, _) = create_task(&transport, &creator, spec.clone()).await;

    let mnist = mnist();
    let parts = shards(&mnist.train, 3, 600);
    let held_out = |r: std::ops::Range<usize>| Features::new(&mnist.test.subset(&r.collect::<Vec<_>>()));
    let mut parts = parts.into_iter();
    let [t0, t1, t2, t3] = trainers.clone().try_into().map_err(|_| ()).unwrap();
    let [v0, v1] = validators.clone().try_into().map_err(|_| ()).unwrap();
    let mut transports: Vec<_> = (0..6).map(|_| net.transport()).collect();
    let mut next = move || transports.pop().unwrap();
    let stop = async {
        let Some(phase) = crash else { return net };
        // Stop the coordinator as soon as the first update (the poisoner's:
        // it does not train) or the first score of round 0 is recorded.
        let first = RoundNumber::FIRST;
        let store = net.service.store();
        loop {
            let recorded = match phase {
                RoundPhase::Training => store.submissions(task, first).await.unwrap().len(),
                _ => store.scores(task, first).await.unwrap().len(),
            };
            if recorded > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let machine = net.service.machine(task).await.unwrap();
        assert_eq!(machine.progress(), Some((first, phase)), "stopped in the phase named");
        let addr = net.addr;
        net.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        Network::start_at(&place, Duration::from_secs(2), addr).await
    };
    let run = async {
        tokio::join!(
            stop,
            honest_trainer(next(), t0, task, parts.next().unwrap(), 0, ROUNDS),
            honest_trainer(next(), t1, task, parts.next().unwrap(), 1, ROUNDS),
            honest_trainer(next(), t2, task, parts.next().unwrap(), 2, ROUNDS),
            poisoner(next(), t3, task, spec.clone(), Poison::NaN),
            honest_validator(next(), v0, task, held_out(0..1_000), 10),
            honest_validator(next(), v1, task, held_out(1_000..2_000), 11),
        )
    };
    let (net, ..) = tokio::time::timeout(Duration::from_secs(300), run).await.expect("the task finishes");
    assert!(net.service.wait_finished(task, Duration::from_secs(10)).await);

    let ledger = net.service.ledger();
    let page = PageRequest { after: None, limit: 1_000 };
    let mut history: Vec<_> = ledger
        .task_history(task, page)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| (e.round.get(), e.identity, e.kind, e.amount.micro()))
        .collect();
    history.sort_by(|a, b| (a.0, a.1, format!("{:?}", a.2), a.3).cmp(&(b.0, b.1, format!("{:?}", b.2), b.3)));
    let mut balances = BTreeMap::new();
    for who in trainers.iter().chain(&validators).chain([&creator]) {
        balances.insert(who.public_key(), ledger.free_balance(&who.public_key()).await.unwrap().micro());
    }
    let models = net.service.store().rounds(task, page).await.unwrap().items.iter().map(|r| r.global_model).collect();
    let audit = ledger.audit().await.unwrap();
    assert_eq!(audit.held, audit.issued, "{audit:?}");
    net.kill();
    Settled { history, balances, models }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_during_training_or_validation_settles_exactly_as_an_uninterrupted_run() {
    let calm = competition(None).await;
    assert_eq!(calm.models.len(), ROUNDS as usize);
    assert!(calm.history.iter().any(|e| e.2 == EntryKind::Reward));
    assert!(calm.history.iter().any(|e| e.2 == EntryKind::SlashBurn), "the poisoner was slashed");
    assert_eq!(competition(Some(RoundPhase::Training)).await, calm, "restarted while training");
    assert_eq!(competition(Some(RoundPhase::Validating)).await, calm, "restarted while validating");
}
