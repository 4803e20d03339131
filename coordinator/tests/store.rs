//! One suite for every `CoordinatorStore`: each test runs on SQLite (in
//! memory) always, and on PostgreSQL as an ignored test (run with
//! `--include-ignored` and `DATABASE_URL` naming a server; each test
//! in a fresh schema). Tests that need a file (restart, sharing with the
//! ledger) are SQLite-only.

use std::sync::Arc;

use starling_coordinator::round::{
    Event, Participants, PayloadCheck, RoundConfig, RoundMachine, RoundVerdicts, ScoreValues, SubmissionVerdict,
    UnixMillis, ValidatorVerdict, VerdictOutcome,
};
use starling_coordinator::store::{
    AnyCoordinatorStore, CoordinatorStore, Cursor, Duplicate, Join, NewTask, PageRequest, PostgresCoordinatorStore,
    Promotion, Recorded, RoundRecord, ScoreRecord, SqliteCoordinatorStore, StoreError, SubmissionRecord, open_any,
};
use starling_protocol::{
    ContentHash, DataSpec, ModelSpec, PublicKey, Role, RoundNumber, SubmissionId, TaskId, TaskSpec, TensorSpec,
};

fn key(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

fn r(n: u32) -> RoundNumber {
    RoundNumber::new(n)
}

fn ms(n: u64) -> UnixMillis {
    UnixMillis::new(n)
}

fn spec(name: &str) -> TaskSpec {
    let model = ModelSpec { name: name.into(), tensors: vec![TensorSpec::new("w", [4])] };
    let data = DataSpec { dataset: "toy".into(), input_shape: vec![4], num_classes: 2 };
    TaskSpec::builder(model, data).rounds(3).training(1, 1, 0.1).min_stakes(10, 10).deadlines(60, 30).build().unwrap()
}

fn new_task(n: u8) -> NewTask {
    NewTask {
        creator: key(n),
        spec: spec(&format!("model-{n}")),
        initial_model: ContentHash::of(&[b'm', n]),
        created_at: ms(1_700_000_000_000 + u64::from(n)),
    }
}

/// Registers `task` the way the coordinator does: reserve an id, then store
/// the task under it.
async fn create<S: CoordinatorStore>(store: &S, task: &NewTask) -> TaskId {
    let id = store.reserve_task(&task.creator, task.created_at).await.unwrap();
    store.create_task(id, task).await.unwrap();
    id
}

fn submission(task: TaskId, round: RoundNumber, trainer: u8) -> SubmissionRecord {
    let update = ContentHash::of(&[b'u', trainer, round.get() as u8]);
    SubmissionRecord {
        task,
        round,
        trainer: key(trainer),
        id: SubmissionId::derive(task, round, &key(trainer), &update),
        update,
        len: 1_000 + u64::from(trainer),
        samples: 600,
        train_loss: Some(0.25),
        check: PayloadCheck::Passed,
        envelope: vec![trainer; 10],
        received_at: ms(5_000 + u64::from(trainer)),
    }
}

fn score(of: &SubmissionRecord, validator: u8) -> ScoreRecord {
    ScoreRecord {
        task: of.task,
        round: of.round,
        submission: of.id,
        validator: key(validator),
        values: ScoreValues { accuracy: 0.875, loss: 0.5, improvement: -0.125 },
        envelope: vec![validator; 7],
        received_at: ms(9_000 + u64::from(validator)),
    }
}

fn round_record(task: TaskId, round: u32) -> RoundRecord {
    RoundRecord {
        task,
        round: r(round),
        global_model: ContentHash::of(&round.to_le_bytes()),
        accuracy: Some(0.5 + f64::from(round) / 100.0),
        loss: if round.is_multiple_of(2) { Some(1.0 / f64::from(round + 1)) } else { None },
        accepted: round,
        rejected: 1,
        settled_at: ms(10_000 * u64::from(round + 1)),
    }
}

async fn sqlite() -> SqliteCoordinatorStore {
    SqliteCoordinatorStore::open("sqlite::memory:").await.expect("open sqlite")
}

/// A PostgreSQL store in a schema of its own, on the server `DATABASE_URL`
/// names.
async fn postgres(test: &str) -> PostgresCoordinatorStore {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names a PostgreSQL server");
    let (_, options) = starling_staking::scratch_schema(&url, &format!("c_{test}")).await.expect("a schema of its own");
    PostgresCoordinatorStore::connect_with(options).await.expect("open postgres")
}

/// Two tests of the generic async fn `$check`: `$name::on_sqlite` (in
/// memory) and `$name::on_postgres`, ignored unless run with
/// `--include-ignored`, and then needing `DATABASE_URL`. `$arg`s go to
/// `#[tokio::test(..)]`.
macro_rules! on_every_store {
    ($name:ident: $check:ident $(, $($arg:tt)*)?) => {
        mod $name {
            use super::*;

            #[tokio::test$(($($arg)*))?]
            async fn on_sqlite() {
                $check(Arc::new(sqlite().await)).await;
            }

            #[tokio::test$(($($arg)*))?]
            #[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored (./test.sh does when it is set)"]
            async fn on_postgres() {
                $check(Arc::new(postgres(stringify!($check)).await)).await;
            }
        }
    };
}
async fn tasks_round_trip<S: CoordinatorStore>(store: Arc<S>) {
    let first = create(store.as_ref(), &new_task(1)).await;
    let second = create(store.as_ref(), &new_task(2)).await;
    assert!(second > first, "ids count up");
    let stored = store.task(first).await.unwrap().expect("task exists");
    assert_eq!(stored.id, first);
    assert_eq!(stored.creator, key(1));
    assert_eq!(stored.spec, new_task(1).spec);
    assert_eq!(stored.initial_model, new_task(1).initial_model);
    assert_eq!(stored.created_at, new_task(1).created_at);
    assert_eq!(store.task(TaskId::new(second.get() + 100)).await.unwrap(), None);
    // A new task has no state yet and is unfinished.
    let state = store.load_state(first).await.unwrap();
    assert_eq!((state.version, state.state, state.finished), (0, None, false));
    assert_eq!(store.unfinished_tasks().await.unwrap(), [first, second]);
}

on_every_store!(tasks_are_created_and_read_back: tasks_round_trip);

async fn reservations<S: CoordinatorStore>(store: Arc<S>) {
    let task = new_task(1);
    let at = task.created_at;
    let first = store.reserve_task(&key(1), at).await.unwrap();
    let second = store.reserve_task(&key(2), at).await.unwrap();
    assert!(second > first, "reserved ids count up");
    // Only the reservation's own creator can store a task under it, once.
    assert!(matches!(store.create_task(second, &task).await, Err(StoreError::UnknownTask(id)) if id == second));
    assert!(matches!(store.create_task(TaskId::new(999), &task).await, Err(StoreError::UnknownTask(_))));
    store.create_task(first, &task).await.unwrap();
    assert!(matches!(store.create_task(first, &task).await, Err(StoreError::UnknownTask(_))));
    assert_eq!(store.task(first).await.unwrap().unwrap().creator, key(1));
    // Left behind: listed once older than the cut-off, never the spent one.
    let later = ms(at.get() + 1);
    assert_eq!(store.reservations(at).await.unwrap(), []);
    assert_eq!(store.reservations(later).await.unwrap(), [(second, key(2))]);
    // Abandoned: listed whatever its age, and never a task.
    let third = store.reserve_task(&key(1), later).await.unwrap();
    store.abandon_reservation(third).await.unwrap();
    assert_eq!(store.reservations(at).await.unwrap(), [(third, key(1))]);
    assert!(matches!(store.create_task(third, &task).await, Err(StoreError::UnknownTask(_))));
    store.release_reservation(second).await.unwrap();
    store.release_reservation(third).await.unwrap();
    store.release_reservation(third).await.unwrap();
    assert_eq!(store.reservations(later).await.unwrap(), []);
    // Ids are never reused, nor any task stored under a released one.
    assert!(store.reserve_task(&key(1), later).await.unwrap() > third);
    assert_eq!(store.task(second).await.unwrap(), None);
    assert_eq!(store.unfinished_tasks().await.unwrap(), [first]);
}

on_every_store!(a_task_is_stored_only_under_its_creators_live_reservation: reservations);

async fn public_models<S: CoordinatorStore>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    let update = submission(task, r(0), 2);
    store.record_submission(&update).await.unwrap();
    store.record_round(&round_record(task, 0)).await.unwrap();
    assert!(store.is_public_model(new_task(1).initial_model).await.unwrap(), "the initial model");
    assert!(store.is_public_model(round_record(task, 0).global_model).await.unwrap(), "a round's model");
    assert!(!store.is_public_model(update.update).await.unwrap(), "an update is private");
    assert!(!store.is_public_model(ContentHash::of(b"nothing")).await.unwrap());
}

on_every_store!(models_are_public_and_updates_are_not: public_models);

async fn tasks_page<S: CoordinatorStore>(store: Arc<S>) {
    let mut ids = Vec::new();
    for n in 1..=7 {
        ids.push(create(store.as_ref(), &new_task(n)).await);
    }
    ids.reverse(); // newest first
    let mut seen = Vec::new();
    let mut request = PageRequest::first(3);
    loop {
        let page = store.tasks(request).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|t| t.id));
        match page.next {
            Some(cursor) => request = PageRequest::after(cursor, 3),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // An exact fit has no next page; a cursor survives a round trip as a number.
    let all = store.tasks(PageRequest::first(7)).await.unwrap();
    assert_eq!((all.items.len(), all.next), (7, None));
    let cursor = store.tasks(PageRequest::first(2)).await.unwrap().next.unwrap();
    let rest = store.tasks(PageRequest::after(Cursor::new(cursor.get()), 100)).await.unwrap();
    assert_eq!(rest.items.iter().map(|t| t.id).collect::<Vec<_>>(), ids[2..]);
    // Zero counts as one.
    assert_eq!(store.tasks(PageRequest::first(0)).await.unwrap().items.len(), 1);
}

on_every_store!(tasks_are_listed_newest_first_in_pages: tasks_page);

async fn state_cas<S: CoordinatorStore>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    let other = create(store.as_ref(), &new_task(2)).await;
    assert_eq!(store.save_state(task, 0, b"one", false).await.unwrap(), 1);
    assert_eq!(store.save_state(task, 1, b"two", false).await.unwrap(), 2);
    // A second coordinator that loaded version 1 cannot overwrite version 2.
    match store.save_state(task, 1, b"stale", false).await {
        Err(StoreError::StateConflict { task: t, expected: 1, actual: 2 }) => assert_eq!(t, task),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(store.save_state(task, 5, b"ahead", false).await, Err(StoreError::StateConflict { .. })));
    let state = store.load_state(task).await.unwrap();
    assert_eq!((state.version, state.state.as_deref(), state.finished), (2, Some(&b"two"[..]), false));
    // Finishing takes the task off the resume list.
    assert_eq!(store.save_state(task, 2, b"done", true).await.unwrap(), 3);
    assert_eq!(store.unfinished_tasks().await.unwrap(), [other]);
    assert!(store.load_state(task).await.unwrap().finished);
    let missing = TaskId::new(other.get() + 1);
    assert!(matches!(store.save_state(missing, 0, b"x", false).await, Err(StoreError::UnknownTask(t)) if t == missing));
    assert!(matches!(store.load_state(missing).await, Err(StoreError::UnknownTask(_))));
}

on_every_store!(state_saves_compare_and_set_their_version: state_cas);

async fn open_tasks<S: CoordinatorStore>(store: Arc<S>) {
    let first = create(store.as_ref(), &new_task(1)).await;
    create(store.as_ref(), &NewTask { spec: spec("second"), ..new_task(1) }).await;
    create(store.as_ref(), &new_task(2)).await;
    assert_eq!(store.open_tasks_of(&key(1)).await.unwrap(), 2);
    assert_eq!(store.open_tasks_of(&key(2)).await.unwrap(), 1);
    assert_eq!(store.open_tasks_of(&key(3)).await.unwrap(), 0);
    // A finished task no longer counts.
    store.save_state(first, 0, b"done", true).await.unwrap();
    assert_eq!(store.open_tasks_of(&key(1)).await.unwrap(), 1);
}

on_every_store!(open_tasks_are_counted_per_creator: open_tasks);

async fn racing_saves<S: CoordinatorStore + 'static>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    // Eight coordinators all try to advance version 0: exactly one wins.
    let attempts: Vec<_> = (0..8u8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.save_state(task, 0, &[n], false).await })
        })
        .collect();
    let mut wins = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(1) => wins += 1,
            Err(StoreError::StateConflict { actual: 1, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
}

on_every_store!(only_one_of_racing_saves_wins: racing_saves, flavor = "multi_thread", worker_threads = 4);

async fn machine_round_trip<S: CoordinatorStore>(store: Arc<S>) {
    // The shell's loop: persist the machine after every transition.
    let new = new_task(1);
    let task = create(store.as_ref(), &new).await;
    let mut machine = RoundMachine::new(task, new.spec.clone(), RoundConfig::new(7)).unwrap();
    let participants = Participants {
        trainers: [(key(1), 100), (key(2), 100)].into_iter().collect(),
        validators: [(key(101), 50)].into_iter().collect(),
    };
    let version = store.save_state(task, 0, &machine.to_bytes(), false).await.unwrap();
    machine.handle(ms(1_000), Event::TaskStarted { initial_model: new.initial_model, participants }).unwrap();
    store.save_state(task, version, &machine.to_bytes(), machine.is_finished()).await.unwrap();
    let state = store.load_state(task).await.unwrap();
    let loaded = RoundMachine::from_bytes(state.state.as_deref().unwrap()).unwrap();
    assert_eq!(loaded, machine);
    assert_eq!(loaded.round(), Some(RoundNumber::FIRST));
}

on_every_store!(a_round_machine_survives_a_save_and_load: machine_round_trip);

async fn joins_once<S: CoordinatorStore>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    let other = create(store.as_ref(), &new_task(2)).await;
    let join = |k: u8, role, at| Join { task, participant: key(k), role, joined_at: ms(at) };
    assert_eq!(store.record_join(&join(5, Role::Trainer, 10)).await.unwrap(), Recorded::Inserted);
    assert_eq!(store.record_join(&join(3, Role::Validator, 11)).await.unwrap(), Recorded::Inserted);
    // The same key may hold both roles; joining again keeps the first time.
    assert_eq!(store.record_join(&join(3, Role::Trainer, 12)).await.unwrap(), Recorded::Inserted);
    assert_eq!(store.record_join(&join(5, Role::Trainer, 99)).await.unwrap(), Recorded::AlreadyRecorded);
    assert_eq!(
        store.joins(task).await.unwrap(),
        [join(3, Role::Trainer, 12), join(3, Role::Validator, 11), join(5, Role::Trainer, 10)]
    );
    assert_eq!(store.joins(other).await.unwrap(), []);
    let missing = TaskId::new(other.get() + 100);
    let unknown = Join { task: missing, ..join(1, Role::Trainer, 1) };
    assert!(matches!(store.record_join(&unknown).await, Err(StoreError::UnknownTask(t)) if t == missing));
}

on_every_store!(joins_are_recorded_once_per_key_and_role: joins_once);

async fn submissions_once<S: CoordinatorStore>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    let first = submission(task, r(0), 1);
    assert_eq!(store.record_submission(&first).await.unwrap(), Recorded::Inserted);
    // A retry after a lost acknowledgement: same content, a re-signed
    // envelope, a later arrival. The first record stays.
    let retry = SubmissionRecord { envelope: vec![9; 3], received_at: ms(99_999), ..first.clone() };
    assert_eq!(store.record_submission(&retry).await.unwrap(), Recorded::AlreadyRecorded);
    assert_eq!(store.record_submission(&first).await.unwrap(), Recorded::AlreadyRecorded);
    // A different submission by the same trainer to the same round.
    let update = ContentHash::of(b"other");
    let other = SubmissionRecord { id: SubmissionId::derive(task, r(0), &key(1), &update), update, ..first.clone() };
    match store.record_submission(&other).await {
        Err(StoreError::Duplicate(Duplicate::Submission { task: t, round, trainer })) => {
            assert_eq!((t, round, trainer), (task, r(0), key(1)));
        }
        got => panic!("expected a duplicate, got {got:?}"),
    }
    let claims_more = SubmissionRecord { samples: 601, ..first.clone() };
    assert!(matches!(store.record_submission(&claims_more).await, Err(StoreError::Duplicate(_))));
    // Rejected ones count as the trainer's one submission too, and keep their reason.
    let rejected = SubmissionRecord {
        check: PayloadCheck::Failed { reason: "tensor w: NaN at 3".into() },
        train_loss: None,
        ..submission(task, r(0), 2)
    };
    assert_eq!(store.record_submission(&rejected).await.unwrap(), Recorded::Inserted);
    // The same trainer may submit to the next round.
    let next = submission(task, r(1), 1);
    assert_eq!(store.record_submission(&next).await.unwrap(), Recorded::Inserted);

    assert_eq!(store.submission_of(task, r(0), &key(1)).await.unwrap(), Some(first.clone()));
    assert_eq!(store.submission_of(task, r(0), &key(3)).await.unwrap(), None);
    assert_eq!(store.submission_of(task, r(2), &key(1)).await.unwrap(), None);
    assert_eq!(store.submissions(task, r(0)).await.unwrap(), [first, rejected]);
    assert_eq!(store.submissions(task, r(1)).await.unwrap(), [next]);
    assert_eq!(store.submissions(task, r(2)).await.unwrap(), []);
    let missing = TaskId::new(task.get() + 1);
    assert!(matches!(
        store.record_submission(&submission(missing, r(0), 1)).await,
        Err(StoreError::UnknownTask(t)) if t == missing
    ));
    let nan = SubmissionRecord { train_loss: Some(f64::NAN), ..submission(task, r(3), 1) };
    assert!(matches!(store.record_submission(&nan).await, Err(StoreError::NotFinite { field: "train loss" })));
    let huge = SubmissionRecord { len: u64::MAX, ..submission(task, r(3), 1) };
    assert!(matches!(store.record_submission(&huge).await, Err(StoreError::OutOfRange { field: "len", .. })));
}

on_every_store!(one_submission_per_trainer_and_round_with_idempotent_retries: submissions_once);

async fn racing_submissions<S: CoordinatorStore + 'static>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    // The same upload arrives on several connections at once, plus one
    // different upload: the first wins, its copies are retries, and the
    // different one is refused only if it lost.
    let attempts: Vec<_> = (0..6)
        .map(|n| {
            let store = store.clone();
            let mut record = submission(task, r(0), 1);
            if n == 5 {
                record.update = ContentHash::of(b"different");
                record.id = SubmissionId::derive(task, r(0), &key(1), &record.update);
            }
            tokio::spawn(async move { store.record_submission(&record).await })
        })
        .collect();
    let mut inserted = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(Recorded::Inserted) => inserted += 1,
            Ok(Recorded::AlreadyRecorded) | Err(StoreError::Duplicate(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(inserted, 1);
    assert_eq!(store.submissions(task, r(0)).await.unwrap().len(), 1);
}

on_every_store!(racing_submissions_insert_once: racing_submissions, flavor = "multi_thread", worker_threads = 4);

async fn scores_once<S: CoordinatorStore>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    let a = submission(task, r(0), 1);
    let b = submission(task, r(0), 2);
    store.record_submission(&a).await.unwrap();
    store.record_submission(&b).await.unwrap();
    let mut expected = Vec::new();
    for s in [&a, &b] {
        for v in [101, 102] {
            let score = score(s, v);
            assert_eq!(store.record_score(&score).await.unwrap(), Recorded::Inserted);
            expected.push(score);
        }
    }
    let retry = ScoreRecord { envelope: vec![1], received_at: ms(1), ..score(&a, 101) };
    assert_eq!(store.record_score(&retry).await.unwrap(), Recorded::AlreadyRecorded);
    let changed = ScoreRecord { values: ScoreValues { accuracy: 0.5, ..score(&a, 101).values }, ..score(&a, 101) };
    match store.record_score(&changed).await {
        Err(StoreError::Duplicate(Duplicate::Score { submission, validator, .. })) => {
            assert_eq!((submission, validator), (a.id, key(101)));
        }
        got => panic!("expected a duplicate, got {got:?}"),
    }
    // Scores of a submission that was never recorded (or of another round) are refused.
    let ghost = score(&submission(task, r(0), 3), 101);
    assert!(matches!(store.record_score(&ghost).await, Err(StoreError::UnknownSubmission { .. })));
    let wrong_round = ScoreRecord { round: r(1), ..score(&a, 103) };
    assert!(matches!(store.record_score(&wrong_round).await, Err(StoreError::UnknownSubmission { .. })));
    let infinite =
        ScoreRecord { values: ScoreValues { loss: f64::INFINITY, ..score(&a, 103).values }, ..score(&a, 103) };
    assert!(matches!(store.record_score(&infinite).await, Err(StoreError::NotFinite { field: "loss" })));

    expected.sort_by_key(|s| (s.submission, s.validator));
    assert_eq!(store.scores(task, r(0)).await.unwrap(), expected);
    assert_eq!(store.scores(task, r(1)).await.unwrap(), []);
}

on_every_store!(one_score_per_validator_and_submission_with_idempotent_retries: scores_once);

async fn rounds_history<S: CoordinatorStore>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    let other = create(store.as_ref(), &new_task(2)).await;
    for round in 0..5 {
        assert_eq!(store.record_round(&round_record(task, round)).await.unwrap(), Recorded::Inserted);
    }
    store.record_round(&round_record(other, 0)).await.unwrap();
    // Recording a settlement again (after a crash) is fine whatever the time;
    // different results are not.
    let again = RoundRecord { settled_at: ms(1), ..round_record(task, 2) };
    assert_eq!(store.record_round(&again).await.unwrap(), Recorded::AlreadyRecorded);
    let different = RoundRecord { accepted: 99, ..round_record(task, 2) };
    assert!(matches!(
        store.record_round(&different).await,
        Err(StoreError::Duplicate(Duplicate::Round { task: t, round })) if t == task && round == r(2)
    ));
    let first = store.rounds(task, PageRequest::first(2)).await.unwrap();
    assert_eq!(first.items, [round_record(task, 0), round_record(task, 1)]);
    let second = store.rounds(task, PageRequest::after(first.next.unwrap(), 2)).await.unwrap();
    assert_eq!(second.items, [round_record(task, 2), round_record(task, 3)]);
    let last = store.rounds(task, PageRequest::after(second.next.unwrap(), 2)).await.unwrap();
    assert_eq!((last.items, last.next), (vec![round_record(task, 4)], None));
    assert_eq!(store.rounds(other, PageRequest::first(10)).await.unwrap().items, [round_record(other, 0)]);
    let missing = TaskId::new(other.get() + 1);
    assert!(matches!(store.record_round(&round_record(missing, 0)).await, Err(StoreError::UnknownTask(_))));
}

on_every_store!(settled_rounds_are_recorded_once_and_listed_in_pages: rounds_history);

async fn leases<S: CoordinatorStore>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    assert_eq!(store.lease(task).await.unwrap(), None);
    assert!(store.acquire_lease(task, "a", ms(1_000), ms(0)).await.unwrap());
    // Exclusive while it lasts.
    assert!(!store.acquire_lease(task, "b", ms(5_000), ms(999)).await.unwrap());
    assert!(!store.renew_lease(task, "b", ms(5_000), ms(500)).await.unwrap());
    assert!(!store.release_lease(task, "b").await.unwrap());
    // The holder renews (and may re-acquire its own).
    assert!(store.renew_lease(task, "a", ms(2_000), ms(900)).await.unwrap());
    assert!(store.acquire_lease(task, "a", ms(2_500), ms(1_000)).await.unwrap());
    assert!(!store.acquire_lease(task, "b", ms(5_000), ms(2_499)).await.unwrap());
    let lease = store.lease(task).await.unwrap().unwrap();
    assert_eq!((lease.task, lease.owner.as_str(), lease.expires_at), (task, "a", ms(2_500)));
    // Once expired, another coordinator takes it, and the old holder can
    // neither renew nor release it.
    assert!(!store.renew_lease(task, "a", ms(9_000), ms(2_500)).await.unwrap());
    assert!(store.acquire_lease(task, "b", ms(5_000), ms(2_500)).await.unwrap());
    assert!(!store.renew_lease(task, "a", ms(9_000), ms(2_600)).await.unwrap());
    assert!(!store.release_lease(task, "a").await.unwrap());
    assert_eq!(store.lease(task).await.unwrap().unwrap().owner, "b");
    // Released, it is free at once.
    assert!(store.release_lease(task, "b").await.unwrap());
    assert_eq!(store.lease(task).await.unwrap(), None);
    assert!(store.acquire_lease(task, "a", ms(6_000), ms(3_000)).await.unwrap());
    // Leases are per task.
    let other = create(store.as_ref(), &new_task(2)).await;
    assert!(store.acquire_lease(other, "b", ms(6_000), ms(3_000)).await.unwrap());
    let missing = TaskId::new(other.get() + 1);
    assert!(matches!(store.acquire_lease(missing, "a", ms(1), ms(0)).await, Err(StoreError::UnknownTask(_))));
}

on_every_store!(leases_are_exclusive_until_they_expire: leases);

async fn racing_leases<S: CoordinatorStore + 'static>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    // An expired lease, and eight coordinators after it at once.
    assert!(store.acquire_lease(task, "old", ms(100), ms(0)).await.unwrap());
    let attempts: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.acquire_lease(task, &format!("c{n}"), ms(10_000), ms(200)).await })
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        winners += usize::from(attempt.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
}

on_every_store!(one_of_racing_coordinators_gets_the_lease: racing_leases, flavor = "multi_thread", worker_threads = 4);

#[tokio::test]
async fn open_any_picks_the_backend_by_scheme() {
    let store = open_any("sqlite::memory:").await.unwrap();
    assert!(matches!(store, AnyCoordinatorStore::Sqlite(_)));
    tasks_round_trip(Arc::new(store)).await;
    assert!(matches!(open_any("mysql://u:secret@h/db").await, Err(StoreError::UnsupportedUrl(s)) if s == "mysql"));
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored (./test.sh does when it is set)"]
async fn open_any_opens_postgres_urls_on_postgres() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names a PostgreSQL server");
    assert!(matches!(open_any(&url).await.unwrap(), AnyCoordinatorStore::Postgres(_)));
}

#[tokio::test]
async fn a_reopened_sqlite_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("coordinator.db").display());
    let (task, sub) = {
        let store = SqliteCoordinatorStore::open(&url).await.unwrap();
        let task = create(&store, &new_task(1)).await;
        store.save_state(task, 0, b"machine", false).await.unwrap();
        let sub = submission(task, r(0), 1);
        store.record_submission(&sub).await.unwrap();
        store.record_score(&score(&sub, 101)).await.unwrap();
        store.record_round(&round_record(task, 0)).await.unwrap();
        store.acquire_lease(task, "a", ms(1_000), ms(0)).await.unwrap();
        (task, sub)
    };
    // A restart; migrations run again on an up-to-date schema.
    let store = SqliteCoordinatorStore::open(&url).await.unwrap();
    assert_eq!(store.task(task).await.unwrap().unwrap().spec, new_task(1).spec);
    let state = store.load_state(task).await.unwrap();
    assert_eq!((state.version, state.state.as_deref()), (1, Some(&b"machine"[..])));
    assert_eq!(store.unfinished_tasks().await.unwrap(), [task]);
    assert_eq!(store.submissions(task, r(0)).await.unwrap(), std::slice::from_ref(&sub));
    assert_eq!(store.scores(task, r(0)).await.unwrap(), [score(&sub, 101)]);
    assert_eq!(store.rounds(task, PageRequest::first(5)).await.unwrap().items, [round_record(task, 0)]);
    assert_eq!(store.lease(task).await.unwrap().unwrap().owner, "a");
    // Retries after the restart are still recognised.
    assert_eq!(store.record_submission(&sub).await.unwrap(), Recorded::AlreadyRecorded);
    // Ids are never reused.
    assert!(create(&store, &new_task(2)).await > task);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored (./test.sh does when it is set)"]
async fn migrations_run_twice_on_postgres() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names a PostgreSQL server");
    let (_, options) = starling_staking::scratch_schema(&url, "c_twice").await.unwrap();
    let task = {
        let store = PostgresCoordinatorStore::connect_with(options.clone()).await.unwrap();
        create(&store, &new_task(1)).await
    };
    let store = PostgresCoordinatorStore::connect_with(options).await.unwrap();
    assert!(store.task(task).await.unwrap().is_some());
}

/// The ledger migrated first, then the coordinator: works with both
/// migrators as they are (the coordinator's ignores the ledger's versions).
#[tokio::test]
async fn the_coordinator_migrates_a_database_the_ledger_created() {
    use starling_staking::{LedgerStore, Params, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let ledger = SqliteStore::open(&url, key(0), Params::default()).await.unwrap();
    let coordinator = SqliteCoordinatorStore::open(&url).await.unwrap();
    let task = create(&coordinator, &new_task(1)).await;
    assert_eq!(ledger.audit().await.unwrap().issued.micro(), 0);
    // The coordinator restarts with the ledger still open: fine.
    drop(coordinator);
    let coordinator = SqliteCoordinatorStore::open(&url).await.unwrap();
    assert!(coordinator.task(task).await.unwrap().is_some());
}

/// The same on PostgreSQL, in one schema.
#[tokio::test]
#[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored (./test.sh does when it is set)"]
async fn the_coordinator_migrates_a_postgres_database_the_ledger_created() {
    use starling_staking::{LedgerStore, Params, PostgresStore};
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names a PostgreSQL server");
    let (_, options) = starling_staking::scratch_schema(&url, "c_shared").await.unwrap();
    let ledger = PostgresStore::connect(options.clone(), key(0), Params::default()).await.unwrap();
    let coordinator = PostgresCoordinatorStore::connect_with(options.clone()).await.unwrap();
    let task = create(&coordinator, &new_task(1)).await;
    assert_eq!(ledger.audit().await.unwrap().issued.micro(), 0);
    let coordinator = PostgresCoordinatorStore::connect_with(options).await.unwrap();
    assert!(coordinator.task(task).await.unwrap().is_some());
}

/// The coordinator migrated first (or at all), then the ledger opens the
/// same database: staking's migrator tolerates versions it does not know
/// (`set_ignore_missing`); without that sqlx refuses with `VersionMissing(100)`.
#[tokio::test]
async fn the_ledger_opens_a_database_the_coordinator_migrated() {
    use starling_staking::{LedgerStore, Params, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let coordinator = SqliteCoordinatorStore::open(&url).await.unwrap();
    let task = create(&coordinator, &new_task(1)).await;
    let ledger = SqliteStore::open(&url, key(0), Params::default()).await.expect("the ledger tolerates version 100");
    assert_eq!(ledger.audit().await.unwrap().issued.micro(), 0);
    drop((coordinator, ledger));
    // Both restart, in either order.
    let ledger = SqliteStore::open(&url, key(0), Params::default()).await.unwrap();
    let coordinator = SqliteCoordinatorStore::open(&url).await.unwrap();
    assert!(coordinator.task(task).await.unwrap().is_some());
    assert_eq!(ledger.audit().await.unwrap().issued.micro(), 0);
}

fn promotion(task: TaskId, creator: u8, name: &str, hash: u8) -> Promotion {
    Promotion {
        task,
        creator: key(creator),
        name: name.into(),
        round: r(2),
        hash: ContentHash::of(&[b'p', hash]),
        size_bytes: 1_000 + u64::from(hash),
        consensus_accuracy: 0.9,
        accuracy: Some(0.91),
        loss: None,
        at: ms(5_000 + u64::from(hash)),
    }
}

async fn market_versions<S: CoordinatorStore>(store: Arc<S>) {
    let mut tasks = Vec::new();
    for n in [1, 1, 2, 1] {
        tasks.push(create(store.as_ref(), &new_task(n)).await);
    }
    assert_eq!(store.market_models(PageRequest::first(10)).await.unwrap().items, vec![]);
    let first = store.promote(&promotion(tasks[0], 1, "toy-a", 1)).await.unwrap();
    assert_eq!((first.model, first.version, first.task), (1, 1, tasks[0]));
    assert_eq!(
        (first.hash, first.size_bytes, first.accuracy, first.loss),
        (ContentHash::of(&[b'p', 1]), 1_001, Some(0.91), None)
    );
    // Promoting a task again returns its version, whatever the new promotion says.
    assert_eq!(store.promote(&promotion(tasks[0], 1, "toy-a", 9)).await.unwrap(), first);
    // The same creator and name: the next version; another name or creator: another model.
    let second = store.promote(&promotion(tasks[1], 1, "toy-a", 2)).await.unwrap();
    assert_eq!((second.model, second.version), (1, 2));
    let other_creator = store.promote(&promotion(tasks[2], 2, "toy-a", 3)).await.unwrap();
    let other_name = store.promote(&promotion(tasks[3], 1, "toy-b", 4)).await.unwrap();
    assert_eq!((other_creator.version, other_name.version), (1, 1));
    assert!(other_creator.model != 1 && other_name.model != other_creator.model);

    // Listed in id order, each with its newest version, in pages.
    let page = store.market_models(PageRequest::first(2)).await.unwrap();
    let listed: Vec<_> =
        page.items.iter().map(|(m, v)| (m.id, m.name.as_str(), m.versions, v.version, v.task)).collect();
    assert_eq!(listed, vec![(1, "toy-a", 2, 2, tasks[1]), (other_creator.model, "toy-a", 1, 1, tasks[2])]);
    let rest = store.market_models(PageRequest { after: page.next, limit: 2 }).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].0.creator, key(1));
    assert!(rest.next.is_none());

    let (model, versions) = store.market_model(1).await.unwrap().expect("model 1");
    assert_eq!((model.creator, model.name.as_str(), model.versions, model.created_at), (key(1), "toy-a", 2, ms(5_001)));
    assert_eq!(versions, vec![second, first], "newest first");
    assert!(store.market_model(99).await.unwrap().is_none());
    assert!(store.market_model(u64::MAX).await.unwrap().is_none());

    // Finished tasks without a version are the ones left to promote.
    let unpromoted = create(store.as_ref(), &new_task(3)).await;
    store.save_state(unpromoted, 0, b"done", true).await.unwrap();
    store.save_state(tasks[0], 0, b"done", true).await.unwrap();
    assert_eq!(store.finished_unpromoted().await.unwrap(), [unpromoted]);
    let mut bad = promotion(unpromoted, 3, "toy-c", 5);
    bad.consensus_accuracy = f64::NAN;
    assert!(matches!(store.promote(&bad).await, Err(StoreError::NotFinite { .. })));
    assert_eq!(store.finished_unpromoted().await.unwrap(), [unpromoted], "a refused promotion writes nothing");
}

on_every_store!(promotions_make_numbered_versions_once_per_task: market_versions);

async fn free_quota<S: CoordinatorStore + 'static>(store: Arc<S>) {
    assert_eq!(store.free_items_used(&key(1), 20_000).await.unwrap(), 0);
    assert!(store.set_free_items_used(&key(1), 20_000, 0, 30).await.unwrap());
    assert!(!store.set_free_items_used(&key(1), 20_000, 0, 5).await.unwrap(), "stale: 30 are used now");
    assert_eq!(store.free_items_used(&key(1), 20_000).await.unwrap(), 30);
    assert_eq!(store.free_items_used(&key(1), 20_001).await.unwrap(), 0, "a new day starts afresh");
    assert_eq!(store.free_items_used(&key(2), 20_000).await.unwrap(), 0, "per identity");
    // Racing spenders of the same count: exactly one moves it.
    let racers: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.set_free_items_used(&key(1), 20_000, 30, 31 + n).await })
        })
        .collect();
    let mut moved = 0;
    for racer in racers {
        moved += usize::from(racer.await.unwrap().unwrap());
    }
    assert_eq!(moved, 1);
}

on_every_store!(free_quota_use_is_compare_and_set_per_identity_and_day: free_quota, flavor = "multi_thread", worker_threads = 4);

fn verdicts(task: TaskId, round: u32) -> RoundVerdicts {
    let sub = submission(task, r(round), 1);
    RoundVerdicts {
        task,
        round: r(round),
        kappa_ppm: 500_000,
        harm_threshold: Some(0.25),
        submissions: vec![
            SubmissionVerdict {
                submission: sub.id,
                trainer: key(1),
                samples: 600,
                consensus: Some(0.875),
                outcome: VerdictOutcome::Accepted,
            },
            SubmissionVerdict {
                submission: submission(task, r(round), 2).id,
                trainer: key(2),
                samples: 0,
                consensus: None,
                outcome: VerdictOutcome::Rejected { reason: "non_finite: tensor w holds NaN".into() },
            },
            SubmissionVerdict {
                submission: submission(task, r(round), 3).id,
                trainer: key(3),
                samples: 40,
                consensus: None,
                outcome: VerdictOutcome::Unresolved,
            },
        ],
        validators: vec![
            // Past a signed 64-bit integer: a year's lock triples a large bond.
            ValidatorVerdict {
                validator: key(101),
                stake: 3 * u128::from(u64::MAX),
                scores: 2,
                agreement_ppm: Some(1_000_000),
            },
            ValidatorVerdict { validator: key(102), stake: 7, scores: 0, agreement_ppm: None },
        ],
    }
}

async fn verdicts_once<S: CoordinatorStore>(store: Arc<S>) {
    let task = create(store.as_ref(), &new_task(1)).await;
    assert_eq!(store.round_verdicts(task, r(0)).await.unwrap(), None);
    let first = verdicts(task, 0);
    assert_eq!(store.record_verdicts(&first).await.unwrap(), Recorded::Inserted);
    assert_eq!(store.record_verdicts(&first).await.unwrap(), Recorded::AlreadyRecorded);
    assert_eq!(store.round_verdicts(task, r(0)).await.unwrap(), Some(first.clone()));

    // A different verdict for the same round is refused, and changes nothing.
    let mut other = first.clone();
    other.submissions[0].outcome = VerdictOutcome::Rejected { reason: "changed my mind".into() };
    assert!(matches!(store.record_verdicts(&other).await, Err(StoreError::Duplicate(_))));
    assert_eq!(store.round_verdicts(task, r(0)).await.unwrap(), Some(first.clone()));

    let second = RoundVerdicts { harm_threshold: None, ..verdicts(task, 1) };
    store.record_verdicts(&second).await.unwrap();
    let all = store.validator_verdicts(task).await.unwrap();
    let expected: Vec<_> = first
        .validators
        .iter()
        .map(|v| (r(0), v.clone()))
        .chain(second.validators.iter().map(|v| (r(1), v.clone())))
        .collect();
    assert_eq!(all, expected, "by round, then validator");

    let unknown = verdicts(TaskId::new(999), 0);
    assert!(matches!(store.record_verdicts(&unknown).await, Err(StoreError::UnknownTask(_))));
}

on_every_store!(a_rounds_verdict_is_recorded_once_with_every_submission_and_validator: verdicts_once);
