//! [`S3Artifacts`] against a real S3 API: moto's S3 server, started on a
//! free loopback port for each test (`pip install 'moto[server]'`;
//! `./test.sh` installs it). Uploads are checked the way S3 itself sees
//! them: the bucket's objects, and its unfinished multipart uploads. And a
//! whole competition runs with its models and updates in a bucket.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt as _;
use starling_coordinator::artifacts::object_store::{ObjectStore as _, ObjectStoreExt as _, PutPayload};
use starling_coordinator::artifacts::{
    AnyArtifacts, ArtifactError, ArtifactLocation, ArtifactStore, ArtifactUpload, MIN_PART_SIZE, S3Artifacts, Stored,
};
use starling_coordinator::store::{CoordinatorStore as _, MarketStore as _};
use starling_models::train::Features;
use starling_net::Identity;
use starling_protocol::{ContentHash, Role, RoundNumber};
use starling_staking::PageRequest;
use support::*;
use tokio::io::AsyncReadExt as _;

/// moto's S3 server, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the S3 tests run moto's S3 server with python3 (./test.sh installs it)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "moto's S3 server exited ({status}): install it with pip install 'moto[server]' (./test.sh does)"
                );
            }
            assert!(Instant::now() < deadline, "moto's S3 server did not start listening in 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, endpoint: format!("http://{addr}") }
    }

    /// Creates `bucket` (moto takes unsigned requests).
    fn bucket(&self, bucket: &str) {
        ureq::put(&format!("{}/{bucket}", self.endpoint)).send_empty().expect("creating the bucket");
    }

    /// A store in a new `bucket`, under `prefix`.
    fn store(&self, bucket: &str, prefix: &str) -> S3Artifacts {
        self.bucket(bucket);
        S3Artifacts::open(&format!("s3://{bucket}/{prefix}"), self.options()).unwrap()
    }

    fn options(&self) -> [(&str, &str); 5] {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", "starling-test"),
            ("aws_secret_access_key", "starling-test-secret"),
        ]
    }

    /// The bucket's multipart uploads begun and neither completed nor aborted.
    fn unfinished_uploads(&self, bucket: &str) -> usize {
        let listing = ureq::get(&format!("{}/{bucket}?uploads", self.endpoint))
            .call()
            .expect("listing multipart uploads")
            .into_body()
            .read_to_string()
            .unwrap();
        listing.matches("<UploadId>").count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every object key in the store's bucket.
async fn keys(store: &S3Artifacts) -> Vec<String> {
    let mut keys: Vec<String> =
        store.client().list(None).map_ok(|meta| meta.location.to_string()).try_collect().await.unwrap();
    keys.sort();
    keys
}

/// `len` bytes of a simple pattern.
fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ (i >> 16) as u8)).collect()
}

#[tokio::test]
async fn a_large_upload_streams_in_parts_and_lands_under_its_sharded_key() {
    let moto = Moto::start();
    let store = moto.store("large", "models/v1").with_part_size(MIN_PART_SIZE);
    let bytes = blob(12 << 20, 1);
    let hash = ContentHash::of(&bytes);
    let mut upload = store.begin(hash, bytes.len() as u64).await.unwrap();
    for chunk in bytes.chunks(64 << 10) {
        upload.feed(bytes::Bytes::copy_from_slice(chunk)).unwrap();
    }
    assert_eq!(upload.written(), bytes.len() as u64);
    // Two full parts are on their way before the commit: it is a multipart upload.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(moto.unfinished_uploads("large"), 1);
    assert_eq!(upload.commit().await.unwrap(), Stored::Written);

    let hex = hash.to_string();
    assert_eq!(keys(&store).await, [format!("models/v1/{}/{}/{hex}", &hex[..2], &hex[2..4])]);
    assert_eq!(moto.unfinished_uploads("large"), 0);
    assert!(store.contains(hash).await.unwrap());
    assert_eq!(store.len(hash).await.unwrap(), Some(bytes.len() as u64));
    assert_eq!(store.get(hash).await.unwrap(), bytes);
    let mut streamed = Vec::new();
    store.open(hash).await.unwrap().read_to_end(&mut streamed).await.unwrap();
    assert_eq!(streamed, bytes);
}

#[tokio::test]
async fn a_small_upload_is_one_put_and_storing_it_again_is_harmless() {
    let moto = Moto::start();
    let store = moto.store("small", "");
    let bytes = blob(100_000, 2);
    let hash = ContentHash::of(&bytes);
    let mut upload = store.begin(hash, 1 << 20).await.unwrap();
    for chunk in bytes.chunks(7_000) {
        upload.write(chunk).await.unwrap();
    }
    assert_eq!(upload.commit().await.unwrap(), Stored::Written);
    let hex = hash.to_string();
    assert_eq!(keys(&store).await, [format!("{}/{}/{hex}", &hex[..2], &hex[2..4])]);

    assert_eq!(store.put(hash, &bytes).await.unwrap(), Stored::AlreadyPresent);
    let mut again = store.begin(hash, 1 << 20).await.unwrap();
    again.write(&bytes).await.unwrap();
    assert_eq!(again.commit().await.unwrap(), Stored::AlreadyPresent);
    let other = blob(5_000, 3);
    assert_eq!(store.put(ContentHash::of(&other), &other).await.unwrap(), Stored::Written);
    assert_eq!(keys(&store).await.len(), 2);
    assert_eq!(store.get(hash).await.unwrap(), bytes);
    assert_eq!(moto.unfinished_uploads("small"), 0);
}

#[tokio::test]
async fn bytes_that_do_not_match_their_hash_leave_nothing_not_even_parts() {
    let moto = Moto::start();
    let store = moto.store("mismatch", "p").with_part_size(MIN_PART_SIZE);
    let bytes = blob(11 << 20, 4);
    let claimed = ContentHash::of(b"something else");
    let mut upload = store.begin(claimed, bytes.len() as u64).await.unwrap();
    for chunk in bytes.chunks(1 << 20) {
        upload.write(chunk).await.unwrap();
    }
    match upload.commit().await {
        Err(ArtifactError::HashMismatch { expected, actual }) => {
            assert_eq!(expected, claimed);
            assert_eq!(actual, ContentHash::of(&bytes));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(keys(&store).await.is_empty());
    assert_eq!(moto.unfinished_uploads("mismatch"), 0);

    let small = blob(10, 5);
    assert!(matches!(store.put(claimed, &small).await, Err(ArtifactError::HashMismatch { .. })));
    assert!(keys(&store).await.is_empty());
}

#[tokio::test]
async fn an_oversized_upload_is_refused_at_once_and_its_parts_are_aborted() {
    let moto = Moto::start();
    let store = moto.store("oversized", "p").with_part_size(MIN_PART_SIZE);
    let bytes = blob(12 << 20, 6);
    let limit = 6 << 20;
    let mut upload = store.begin(ContentHash::of(&bytes), limit).await.unwrap();
    let mut refused = None;
    for (i, chunk) in bytes.chunks(1 << 20).enumerate() {
        if let Err(error) = upload.feed(bytes::Bytes::copy_from_slice(chunk)) {
            refused = Some((i, error));
            break;
        }
    }
    match refused {
        Some((6, ArtifactError::TooLarge { max_len, received })) => {
            assert_eq!(max_len, limit);
            assert_eq!(received, 7 << 20);
        }
        other => panic!("expected the 7th MiB to be refused as too large, got {other:?}"),
    }
    assert!(matches!(upload.feed(bytes::Bytes::from_static(b"more")), Err(ArtifactError::Discarded)));
    assert!(matches!(upload.commit().await, Err(ArtifactError::Discarded)));
    assert!(keys(&store).await.is_empty());
    assert_eq!(moto.unfinished_uploads("oversized"), 0);
}

#[tokio::test]
async fn aborted_and_dropped_uploads_leave_nothing() {
    let moto = Moto::start();
    let store = moto.store("abandoned", "p").with_part_size(MIN_PART_SIZE);
    let bytes = blob(11 << 20, 7);
    let hash = ContentHash::of(&bytes);

    let mut aborted = store.begin(hash, bytes.len() as u64).await.unwrap();
    aborted.write(&bytes[..(6 << 20)]).await.unwrap();
    aborted.abort().await;
    assert_eq!(moto.unfinished_uploads("abandoned"), 0);

    let mut dropped = store.begin(hash, bytes.len() as u64).await.unwrap();
    dropped.write(&bytes[..(6 << 20)]).await.unwrap();
    drop(dropped);
    // A dropped upload is aborted behind the caller.
    let deadline = Instant::now() + Duration::from_secs(10);
    while moto.unfinished_uploads("abandoned") > 0 {
        assert!(Instant::now() < deadline, "the dropped upload was not aborted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(keys(&store).await.is_empty());
    assert!(!store.contains(hash).await.unwrap());
}

#[tokio::test]
async fn a_tampered_object_is_reported_not_returned_and_a_missing_one_is_not_found() {
    let moto = Moto::start();
    let store = moto.store("tampered", "p");
    let bytes = blob(4_000, 8);
    let hash = ContentHash::of(&bytes);
    store.put(hash, &bytes).await.unwrap();
    store.client().put(&store.key(&hash), PutPayload::from(blob(4_000, 9))).await.unwrap();
    match store.get(hash).await {
        Err(ArtifactError::Corrupt { hash: named, actual }) => {
            assert_eq!(named, hash);
            assert_eq!(actual, ContentHash::of(&blob(4_000, 9)));
        }
        other => panic!("expected a corrupt blob, got {other:?}"),
    }

    let missing = ContentHash::of(b"never stored");
    assert!(matches!(store.get(missing).await, Err(ArtifactError::NotFound(h)) if h == missing));
    assert!(matches!(store.open(missing).await, Err(ArtifactError::NotFound(h)) if h == missing));
    assert_eq!(store.len(missing).await.unwrap(), None);
    assert!(!store.contains(missing).await.unwrap());
}

#[tokio::test]
async fn writing_to_a_missing_bucket_is_a_store_error() {
    let moto = Moto::start();
    // No such bucket: a store error, never "not stored".
    let store = S3Artifacts::open("s3://no-such-bucket/p", moto.options()).unwrap();
    let hash = ContentHash::of(b"x");
    assert!(matches!(store.put(hash, b"x").await, Err(ArtifactError::Store { .. })), "put");
}

#[test]
fn bad_store_urls_and_settings_are_named() {
    for (url, why) in [
        ("s3://", "no bucket named"),
        ("s3:///models", "no bucket named"),
        ("ftp://bucket/models", "unknown scheme `ftp://`"),
    ] {
        let error = ArtifactLocation::parse(url).unwrap_err().to_string();
        assert!(error.contains(why), "{url}: {error}");
    }
    assert_eq!(ArtifactLocation::parse("s3://bucket/p").unwrap(), ArtifactLocation::S3("s3://bucket/p".into()));
    let error = S3Artifacts::open("s3://bucket", [("aws_colour", "blue")]).unwrap_err().to_string();
    assert!(error.contains("unknown S3 setting `aws_colour`"), "{error}");
    let error = S3Artifacts::open("gs://bucket", []).unwrap_err().to_string();
    assert!(error.contains("starts with s3://"), "{error}");
}

#[tokio::test]
async fn any_artifacts_opens_the_store_a_url_names() {
    let dir = tempfile::tempdir().unwrap();
    let location = ArtifactLocation::parse(&format!("file://{}", dir.path().join("a").display())).unwrap();
    let store = AnyArtifacts::open(&location).await.unwrap();
    assert!(matches!(store, AnyArtifacts::Local(_)));
    let bytes = blob(1_000, 10);
    assert_eq!(store.put(ContentHash::of(&bytes), &bytes).await.unwrap(), Stored::Written);
    let mut read = Vec::new();
    store.open(ContentHash::of(&bytes)).await.unwrap().read_to_end(&mut read).await.unwrap();
    assert_eq!(read, bytes);

    let moto = Moto::start();
    moto.bucket("any");
    let s3 = AnyArtifacts::S3(S3Artifacts::open("s3://any/p", moto.options()).unwrap());
    let mut upload = s3.begin(ContentHash::of(&bytes), 10_000).await.unwrap();
    upload.write(&bytes).await.unwrap();
    assert_eq!(upload.commit().await.unwrap(), Stored::Written);
    let mut read = Vec::new();
    s3.open(ContentHash::of(&bytes)).await.unwrap().read_to_end(&mut read).await.unwrap();
    assert_eq!(read, bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_competition_keeps_its_models_and_updates_in_the_bucket() {
    const ROUNDS: u32 = 2;
    let moto = Moto::start();
    let bucket = moto.store("competition", "starling");
    let mut place = Place::new("s3", false).await.unwrap();
    place.artifacts = Some(AnyArtifacts::S3(bucket.clone()));
    let net = Network::start(&place, Duration::from_secs(2)).await;
    let transport = net.transport();

    let creator = identity(1);
    let trainers: Vec<Identity> = (10..12).map(identity).collect();
    let validator = identity(20);
    fund(&transport, &place.admin, &creator, 10_000 * STAR, None).await;
    for t in &trainers {
        fund(&transport, &place.admin, t, 1_000 * STAR, Some((Role::Trainer, 100 * STAR))).await;
    }
    fund(&transport, &place.admin, &validator, 1_000 * STAR, Some((Role::Validator, 100 * STAR))).await;
    let (task, initial) = create_task(&transport, &creator, spec(ROUNDS, 1_000 * STAR)).await;

    let mnist = mnist();
    let mut parts = shards(&mnist.train, 2, 600).into_iter();
    let held_out = Features::new(&mnist.test.subset(&(0..1_000).collect::<Vec<_>>()));
    let [t0, t1] = trainers.try_into().map_err(|_| ()).unwrap();
    let run = async {
        tokio::join!(
            honest_trainer(net.transport(), t0, task, parts.next().unwrap(), 1, ROUNDS),
            honest_trainer(net.transport(), t1, task, parts.next().unwrap(), 2, ROUNDS),
            honest_validator(net.transport(), validator, task, held_out, 3),
        )
    };
    tokio::time::timeout(Duration::from_secs(300), run).await.expect("the task finishes within 5 minutes");
    assert!(net.service.wait_finished(task, Duration::from_secs(10)).await);

    // The initial model, both rounds' updates and global models are objects
    // in the bucket, and nothing else is: no directory store was written.
    let store = net.service.store();
    let mut expected = vec![ContentHash::of(&initial)];
    for r in 0..ROUNDS {
        let submissions = store.submissions(task, RoundNumber::new(r)).await.unwrap();
        assert_eq!(submissions.len(), 2);
        expected.extend(submissions.iter().map(|s| s.update));
    }
    let rounds = store.rounds(task, PageRequest { after: None, limit: 10 }).await.unwrap().items;
    assert_eq!(rounds.len(), ROUNDS as usize);
    expected.extend(rounds.iter().map(|r| r.global_model));
    let mut expected: Vec<String> = expected.iter().map(|h| bucket.key(h).to_string()).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(keys(&bucket).await, expected);
    assert!(!place.dir.path().join("artifacts").exists());
    assert!(rounds.iter().all(|r| r.accepted == 2), "{rounds:?}");

    // The finished task's model was promoted, and its file is read back from
    // the bucket, whole.
    let (model, versions) = store.market_model(1).await.unwrap().expect("the task's model was promoted");
    assert_eq!(model.creator, creator.public_key());
    assert_eq!(versions[0].task, task);
    let promoted = versions[0].hash;
    assert!(expected.contains(&bucket.key(&promoted).to_string()));
    let mut read = Vec::new();
    net.service.artifacts().open(promoted).await.unwrap().read_to_end(&mut read).await.unwrap();
    assert_eq!(ContentHash::of(&read), promoted);
    assert_eq!(moto.unfinished_uploads("competition"), 0);
    net.kill();
}
