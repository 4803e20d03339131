//! The client crate against a scripted coordinator over QUIC on 127.0.0.1:
//! a request sent once through a `Link`, typed reads and refusals, the
//! trust settings `dial` offers, and a server that lies about a length.

#[path = "support/fake_coordinator.rs"]
mod fake_coordinator;

use fake_coordinator::{FakeCoordinator, State};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use starling_client::{ClientError, Exchange, Link, Transport, TransportError, TrustSetting, dial};
use starling_models::zoo::ModelKind;
use starling_net::{Fingerprint, Identity};
use starling_protocol::{
    ErrorCode, JoinTask, PublicKey, ReadRequest, Request, ResponseBody, Role, TaskId, TaskInfo, TaskSpec,
};

fn coordinator() -> FakeCoordinator {
    let kind = ModelKind::LogReg;
    let spec = TaskSpec::builder(kind.model_spec(), kind.data_spec()).build().unwrap();
    let info = TaskInfo { task: TaskId::new(7), creator: PublicKey::from_bytes([9; 32]), spec, round: None };
    FakeCoordinator::start(State::new(info, None))
}

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_goes_once_and_reads_are_typed() {
    let server = coordinator();
    let link = Link::new(server.transport());
    let me = identity(1);
    let join = JoinTask { task: TaskId::new(7), role: Role::Trainer };

    let answer = link.signed(&me, &join, None).await.unwrap();
    assert_eq!(answer, Ok(ResponseBody::Ack));
    assert_eq!(server.state().joins, vec![(me.public_key(), join)], "signed by `me`, sent once");

    let info = link.task(TaskId::new(7)).await.unwrap();
    assert_eq!((info.task, info.spec.model.name.as_str()), (TaskId::new(7), "logreg"));

    // The scripted coordinator has no ledger: its refusal comes back typed,
    // as a read's, with its code.
    let err = link.balance(me.public_key()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { exchange: Exchange::Read, error } if error.code == ErrorCode::UnknownKind),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_with_another_certificate_gets_nothing() {
    let server = coordinator();
    let wrong = dial(&server.addr.to_string(), TrustSetting::Pinned(Fingerprint::of(b"someone else"))).unwrap();
    let link = Link::new(wrong.transport);
    let join = JoinTask { task: TaskId::new(7), role: Role::Trainer };

    let err = link.signed(&identity(1), &join, None).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err}");
    assert!(server.state().joins.is_empty(), "nothing reached the coordinator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_connection_records_the_certificate_and_later_ones_require_it() {
    let server = coordinator();
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    let target = server.addr.to_string();

    let first = dial(&target, TrustSetting::KnownHosts(known_hosts.clone())).unwrap();
    let first_use = first.first_use.expect("a host never seen is a first use");
    Link::new(first.transport).task(TaskId::new(7)).await.unwrap();
    assert_eq!(first_use.recorded(), Some(server.fingerprint()), "remembered once connected");

    let again = dial(&target, TrustSetting::KnownHosts(known_hosts)).unwrap();
    assert!(again.first_use.is_none());
    Link::new(again.transport).task(TaskId::new(7)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_the_server_announces_reserves_no_memory() {
    let server = coordinator();
    let hash = server.state().add_blob(vec![7; 1000]);
    // 2^50 bytes: reserving it up front would abort the client.
    server.state().announce_fetch_len = Some(1 << 50);
    let fetch = Request::Read(ReadRequest::FetchBlob { hash });
    let err = server.transport().fetch(&fetch, hash, u64::MAX).await.unwrap_err();
    assert!(
        matches!(err, TransportError::WrongBlob { len: 1000, .. }),
        "the real 1000 bytes do not make the announced length: {err}"
    );

    server.state().announce_fetch_len = None;
    assert_eq!(server.transport().fetch(&fetch, hash, 1000).await.unwrap(), Ok(vec![7; 1000]));
}
