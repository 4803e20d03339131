//! The whole competition over loopback QUIC: a coordinator, five trainers
//! on a non-IID MNIST split (three honest, one uploading NaNs, one uploading
//! a huge-norm update), three validators (two honest, one scoring at
//! random), three rounds; and in every round after the first, last round's
//! signed upload of an honest trainer replayed. On SQLite always; on
//! PostgreSQL (`DATABASE_URL`) as an ignored test, run with
//! `--include-ignored`, which `./test.sh` passes when `DATABASE_URL` is set.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use starling_client::Transport;
use starling_coordinator::round::PayloadCheck;
use starling_coordinator::service::Evaluator;
use starling_coordinator::store::CoordinatorStore;
use starling_models::train::Features;
use starling_net::Identity;
use starling_protocol::{ErrorCode, PublicKey, Request, Role, RoundNumber, SignedEnvelope, TaskId};
use starling_staking::{EntryKind, LedgerStore, PageRequest};
use support::*;

const ROUNDS: u32 = 3;

/// Replays, in every round after the first, `victim`'s upload of the round
/// before, exactly as it was signed and sent, as soon as it sees the round
/// (in whatever phase: a replay is refused before the phase is looked at,
/// and a training phase can be over between two polls). Returns the answers.
async fn replayer(net: &Network, task: TaskId, victim: PublicKey) -> Vec<ErrorCode> {
    let transport = net.transport();
    let mut answers = Vec::new();
    let mut replayed = std::collections::HashSet::new();
    loop {
        let Some(info) = round(&transport, task).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if info.task_finished {
            return answers;
        }
        if info.round.get() > 0 && replayed.insert(info.round) {
            let previous = RoundNumber::new(info.round.get() - 1);
            let submissions = net.service.store().submissions(task, previous).await.unwrap();
            let old = submissions.iter().find(|s| s.trainer == victim).expect("the victim submitted last round");
            let envelope: SignedEnvelope = postcard::from_bytes(&old.envelope).unwrap();
            let blob = net.service.blob(old.update).await.unwrap();
            let answer = transport.upload(&Request::Signed(envelope), &blob).await.unwrap();
            answers.push(answer.into_result().expect_err("a replay is refused").code);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn story(postgres: bool) {
    let place = Place::new("story", postgres).await.expect("DATABASE_URL names a PostgreSQL server");
    let net = Network::start(&place, Duration::from_secs(3)).await;
    let transport = net.transport();
    let admin = &place.admin;

    let creator = identity(1);
    let trainers: Vec<Identity> = (10..15).map(identity).collect();
    let validators: Vec<Identity> = (20..23).map(identity).collect();
    fund(&transport, admin, &creator, 10_000 * STAR, None).await;
    for t in &trainers {
        fund(&transport, admin, t, 1_000 * STAR, Some((Role::Trainer, 100 * STAR))).await;
    }
    for v in &validators {
        fund(&transport, admin, v, 1_000 * STAR, Some((Role::Validator, 100 * STAR))).await;
    }
    let spec = spec(ROUNDS, 3_000 * STAR);
    let (task, initial) = create_task(&transport, &creator, spec.clone()).await;

    let mnist = mnist();
    let mut parts = shards(&mnist.train, 5, 600).into_iter();
    let held_out: Vec<Features> =
        [0..1_000, 1_000..2_000].map(|r| Features::new(&mnist.test.subset(&r.collect::<Vec<_>>()))).into();
    let key = |i: &Identity| i.public_key();
    let (nan, huge) = (key(&trainers[3]), key(&trainers[4]));
    let (victim, random) = (key(&trainers[0]), key(&validators[2]));

    let [t0, t1, t2, t3, t4] = trainers.clone().try_into().map_err(|_| ()).unwrap();
    let [v0, v1, v2] = validators.clone().try_into().map_err(|_| ()).unwrap();
    let (d0, d1, d2) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let (h0, h1) = (held_out[0].clone(), held_out[1].clone());
    let run = async {
        tokio::join!(
            honest_trainer(net.transport(), t0, task, d0, 1, ROUNDS),
            honest_trainer(net.transport(), t1, task, d1, 2, ROUNDS),
            honest_trainer(net.transport(), t2, task, d2, 3, ROUNDS),
            poisoner(net.transport(), t3, task, spec.clone(), Poison::NaN),
            poisoner(net.transport(), t4, task, spec.clone(), Poison::HugeNorm),
            honest_validator(net.transport(), v0, task, h0, 4),
            honest_validator(net.transport(), v1, task, h1, 5),
            random_validator(net.transport(), v2, task, 6),
            replayer(&net, task, victim),
        )
    };
    let (_, _, _, nan_answers, huge_answers, _, _, random_scored, replays) =
        tokio::time::timeout(Duration::from_secs(600), run).await.expect("the task finishes within 10 minutes");
    assert!(net.service.wait_finished(task, Duration::from_secs(10)).await);

    // Every poisoned upload was refused for what it was, and recorded as the
    // trainer's invalid submission of the round.
    assert_eq!(nan_answers.len(), ROUNDS as usize);
    assert!(
        nan_answers.iter().all(|(_, a)| a.as_ref().is_err_and(|e| e.code == ErrorCode::NonFinite)),
        "{nan_answers:?}"
    );
    assert!(huge_answers.iter().all(|(_, a)| a.as_ref().is_err_and(|e| e.code == ErrorCode::NormTooLarge)));
    assert_eq!(huge_answers.len(), ROUNDS as usize);
    // Replays were refused as replays and changed nothing.
    assert_eq!(replays, vec![ErrorCode::Replay; ROUNDS as usize - 1]);
    assert!(random_scored > 0);

    let store = net.service.store();
    for r in 0..ROUNDS {
        let submissions = store.submissions(task, RoundNumber::new(r)).await.unwrap();
        assert_eq!(submissions.len(), 5, "one submission per trainer in round {r}");
        for s in &submissions {
            let failed = matches!(s.check, PayloadCheck::Failed { .. });
            assert_eq!(failed, s.trainer == nan || s.trainer == huge, "{s:?}");
        }
    }

    // The global model learned: the coordinator's own measure of each round's
    // model, against the initial model on the same held-out images.
    let rounds = store.rounds(task, PageRequest { after: None, limit: 10 }).await.unwrap().items;
    assert_eq!(rounds.len(), ROUNDS as usize);
    let held = mnist.test.subset(&(5_000..7_000).collect::<Vec<_>>());
    let evaluator = starling_coordinator::service::ModelEvaluator::new("mnist", &held);
    let (initial_accuracy, _) = evaluator.evaluate(&spec, &initial).unwrap().unwrap();
    let accuracy: Vec<f64> = rounds.iter().map(|r| r.accuracy.expect("measured")).collect();
    eprintln!("initial accuracy {initial_accuracy:.3}, per round {accuracy:?}");
    assert!(accuracy[ROUNDS as usize - 1] > initial_accuracy + 0.3, "{initial_accuracy} → {accuracy:?}");
    assert!(rounds.iter().all(|r| r.accepted == 3 && r.rejected == 2), "{rounds:?}");

    // Who was paid and who was slashed, from the ledger's own history.
    let ledger = net.service.ledger();
    let mut slashes: BTreeMap<PublicKey, u64> = BTreeMap::new();
    let mut rewards: BTreeMap<PublicKey, u64> = BTreeMap::new();
    for who in trainers.iter().chain(&validators).map(key) {
        let history = ledger.identity_history(&who, PageRequest { after: None, limit: 500 }).await.unwrap().items;
        for entry in history {
            let kind = entry.kind;
            let bucket =
                if matches!(kind, EntryKind::SlashToPool | EntryKind::SlashBurn) { &mut slashes } else { &mut rewards };
            *bucket.entry(who).or_default() += entry.amount.micro();
        }
    }
    eprintln!("rewards {rewards:?}\nslashes {slashes:?}");
    for bad in [nan, huge, random] {
        assert!(slashes.get(&bad).copied().unwrap_or(0) > 0, "{bad} was slashed");
    }
    for good in [key(&trainers[0]), key(&trainers[1]), key(&trainers[2]), key(&validators[0]), key(&validators[1])] {
        assert_eq!(slashes.get(&good), None, "{good} was not slashed");
        assert!(rewards.get(&good).copied().unwrap_or(0) > 0, "{good} was paid");
    }
    assert_eq!(rewards.get(&nan), None);
    assert_eq!(rewards.get(&huge), None);
    // Slashes hit stake: the bad trainers' bonds shrank, the good ones' did not.
    let stake = |k: PublicKey, role| async move {
        let bonds = ledger.bonds_of_node(&k, role).await.unwrap();
        bonds.iter().map(|b| b.amount.micro()).sum::<u64>()
    };
    assert!(stake(nan, Role::Trainer).await < 100 * STAR);
    assert_eq!(stake(victim, Role::Trainer).await, 100 * STAR);
    assert!(stake(random, Role::Validator).await < 100 * STAR);
    let audit = ledger.audit().await.unwrap();
    assert_eq!(audit.held, audit.issued, "the ledger balances: {audit:?}");
    net.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_competition_runs_end_to_end_on_sqlite() {
    story(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored (./test.sh does both in CI)"]
async fn a_competition_runs_end_to_end_on_postgres() {
    story(true).await;
}
