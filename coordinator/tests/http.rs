//! The coordinator's HTTP read model over a real competition on loopback
//! QUIC: two honest trainers and one uploading NaNs, two honest validators,
//! two rounds. Then every endpoint of `starling_web::router` over the
//! service, checked against the coordinator's store, machine and ledger; and
//! once more over a fresh coordinator that reads the finished task from the
//! store alone.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use starling_coordinator::store::CoordinatorStore;
use starling_models::train::Features;
use starling_net::Identity;
use starling_protocol::{ContentHash, PublicKey, Role, RoundNumber, TaskId};
use starling_staking::{EntryKind, LedgerStore, PageRequest};
use support::*;
use tower::ServiceExt;

const ROUNDS: u32 = 2;

async fn send(app: &axum::Router, request: Request<Body>) -> Response {
    app.clone().oneshot(request).await.unwrap()
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

async fn bytes(response: Response) -> Vec<u8> {
    response.into_body().collect().await.unwrap().to_bytes().to_vec()
}

/// GETs `uri` and reads the JSON answer.
async fn json(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let response = send(app, get(uri)).await;
    let status = response.status();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json", "{uri}: {status}");
    (status, serde_json::from_slice(&bytes(response).await).unwrap())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The metric's value in Prometheus text.
fn sample(text: &str, name: &str) -> u64 {
    let line = text.lines().find(|l| l.split_once(' ').is_some_and(|(n, _)| n == name));
    line.unwrap_or_else(|| panic!("no {name} in\n{text}")).rsplit_once(' ').unwrap().1.parse().unwrap()
}

/// What the ledger's task history says each identity got and lost.
async fn ledger_payouts(net: &Network, task: TaskId) -> BTreeMap<PublicKey, (u64, u64)> {
    let entries = net.service.ledger().task_history(task, PageRequest::first(1_000)).await.unwrap();
    assert!(entries.next.is_none());
    let mut payouts: BTreeMap<PublicKey, (u64, u64)> = BTreeMap::new();
    for entry in entries.items {
        let (rewarded, slashed) = payouts.entry(entry.identity).or_default();
        match entry.kind {
            EntryKind::Reward => *rewarded += entry.amount.micro(),
            _ => *slashed += entry.amount.micro(),
        }
    }
    payouts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_reads_a_finished_competition() {
    let place = Place::new("http", false).await.unwrap();
    let net = Network::start(&place, Duration::from_secs(3)).await;
    let transport = net.transport();
    let admin = &place.admin;

    let creator = identity(1);
    let trainers: Vec<Identity> = (10..13).map(identity).collect();
    let validators: Vec<Identity> = (20..22).map(identity).collect();
    fund(&transport, admin, &creator, 10_000 * STAR, None).await;
    for t in &trainers {
        fund(&transport, admin, t, 1_000 * STAR, Some((Role::Trainer, 100 * STAR))).await;
    }
    for v in &validators {
        fund(&transport, admin, v, 1_000 * STAR, Some((Role::Validator, 100 * STAR))).await;
    }
    let spec = spec(ROUNDS, 2_000 * STAR);
    let (task, initial) = create_task(&transport, &creator, spec.clone()).await;
    let app = starling_web::router(Arc::new(net.service.clone()));

    // Before its first round the task is open at round 0, and its model is
    // the initial one.
    let (status, body) = json(&app, &format!("/api/tasks/{task}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["phase"].as_str(), body["round"].as_u64()), (Some("open"), Some(0)), "{body}");
    assert_eq!(body["history"], json!([]));
    let response = send(&app, get(&format!("/api/tasks/{task}/model"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(bytes(response).await, initial);

    let mnist = mnist();
    let mut parts = shards(&mnist.train, 2, 600).into_iter();
    let held_out: Vec<Features> =
        [0..1_000, 1_000..2_000].map(|r| Features::new(&mnist.test.subset(&r.collect::<Vec<_>>()))).into();
    let key = |i: &Identity| i.public_key();
    let (honest, nan) = ([key(&trainers[0]), key(&trainers[1])], key(&trainers[2]));
    let [t0, t1, t2] = trainers.clone().try_into().map_err(|_| ()).unwrap();
    let [v0, v1] = validators.clone().try_into().map_err(|_| ()).unwrap();
    let (d0, d1) = (parts.next().unwrap(), parts.next().unwrap());
    let (h0, h1) = (held_out[0].clone(), held_out[1].clone());
    let run = async {
        tokio::join!(
            honest_trainer(net.transport(), t0, task, d0, 1, ROUNDS),
            honest_trainer(net.transport(), t1, task, d1, 2, ROUNDS),
            poisoner(net.transport(), t2, task, spec.clone(), Poison::NaN),
            honest_validator(net.transport(), v0, task, h0, 4),
            honest_validator(net.transport(), v1, task, h1, 5),
        )
    };
    tokio::time::timeout(Duration::from_secs(300), run).await.expect("the task finishes within 5 minutes");
    assert!(net.service.wait_finished(task, Duration::from_secs(10)).await);

    let store = net.service.store();
    let ledger = net.service.ledger();
    let machine = net.service.machine(task).await.unwrap();
    let global = machine.global_model().unwrap();
    let records = store.rounds(task, PageRequest::first(10)).await.unwrap().items;
    assert_eq!(records.len(), ROUNDS as usize);
    let pool_left = ledger.pool(task).await.unwrap().unwrap().balance.micro();

    // The task list.
    let (status, list) = json(&app, "/api/tasks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["next_cursor"], Value::Null);
    assert_eq!(
        list["items"],
        json!([{
            "id": task.get(),
            "model": spec.model.name,
            "dataset": "mnist",
            "phase": "finished",
            "round": ROUNDS - 1,
            "rounds": ROUNDS,
            "participants": 3,
            "pool_left": pool_left,
        }])
    );

    // The task: its rounds as the store recorded them, the last round's
    // submissions with the poisoner's rejected, the payouts as the ledger has them.
    let (status, detail) = json(&app, &format!("/api/tasks/{task}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["id"], task.get());
    assert_eq!(detail["spec"]["rounds"], ROUNDS);
    let history = detail["history"].as_array().unwrap();
    assert_eq!(history.len(), ROUNDS as usize, "{detail}");
    for (row, record) in history.iter().zip(&records) {
        assert_eq!(row["round"], record.round.get());
        let accuracy = record.accuracy.expect("the coordinator measured every round");
        assert!(close(row["accuracy"].as_f64().unwrap(), accuracy), "{row} vs {record:?}");
        assert!(close(row["loss"].as_f64().unwrap(), record.loss.unwrap()), "{row} vs {record:?}");
        assert_eq!((row["accepted"].as_u64(), row["rejected"].as_u64()), (Some(2), Some(1)), "{row}");
        assert_eq!(row["global_model"], record.global_model.to_string());
    }
    assert_eq!(history[ROUNDS as usize - 1]["global_model"], global.to_string());

    let last = RoundNumber::new(ROUNDS - 1);
    let recorded = store.submissions(task, last).await.unwrap();
    let scores = store.scores(task, last).await.unwrap();
    let submissions = detail["submissions"].as_array().unwrap();
    assert_eq!(submissions.len(), 3, "{detail}");
    for (view, record) in submissions.iter().zip(&recorded) {
        assert_eq!(view["id"], record.id.to_string());
        assert_eq!(view["round"], last.get());
        assert_eq!(view["trainer"], record.trainer.to_string());
        assert_eq!(view["samples"], record.samples);
        if record.trainer == nan {
            assert_eq!(view["status"], "rejected", "{view}");
            assert!(view["reason"].as_str().unwrap().starts_with("non_finite"), "{view}");
            assert_eq!(view["consensus_score"], Value::Null);
        } else {
            assert!(honest.contains(&record.trainer));
            assert_eq!(view["status"], "accepted", "{view}");
            // Two validators of equal stake: the stake-weighted median is
            // one of their two accuracies.
            let given: Vec<f64> =
                scores.iter().filter(|s| s.submission == record.id).map(|s| s.values.accuracy).collect();
            assert_eq!(given.len(), 2);
            let score = view["consensus_score"].as_f64().unwrap();
            assert!(given.iter().any(|&g| close(g, score)), "{score} not among {given:?}");
        }
    }

    let payouts = ledger_payouts(&net, task).await;
    let shown: BTreeMap<String, (u64, u64)> = detail["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let amounts = (p["rewarded"].as_u64().unwrap(), p["slashed"].as_u64().unwrap());
            (p["identity"].as_str().unwrap().to_owned(), amounts)
        })
        .collect();
    let expected: BTreeMap<String, (u64, u64)> = payouts.iter().map(|(k, &v)| (k.to_string(), v)).collect();
    assert_eq!(shown, expected);
    // The validators' standings: both honest ones scored both valid
    // submissions of both rounds, agreed well, and were paid what the ledger says.
    let standings = detail["validators"].as_array().unwrap();
    assert_eq!(standings.len(), 2, "{standings:?}");
    for standing in standings {
        let validator = standing["validator"].as_str().unwrap();
        assert!(validators.iter().any(|v| v.public_key().to_string() == validator));
        assert_eq!((standing["scores"].as_u64(), standing["rounds"].as_u64()), (Some(4), Some(u64::from(ROUNDS))));
        let agreement = standing["agreement"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&agreement), "{standing}");
        assert_eq!(
            (standing["rewarded"].as_u64().unwrap(), standing["slashed"].as_u64().unwrap()),
            expected[validator]
        );
    }
    assert!(standings[0]["agreement"].as_f64() >= standings[1]["agreement"].as_f64(), "highest agreement first");
    let (rewarded, slashed) = shown[&nan.to_string()];
    assert_eq!(rewarded, 0);
    assert_eq!(slashed, 10 * STAR + 9 * STAR, "10% of 100 STAR, then 10% of the 90 left");
    for good in honest.into_iter().chain(validators.iter().map(key)) {
        let (rewarded, slashed) = shown[&good.to_string()];
        assert!(rewarded > 0 && slashed == 0, "{good}: {rewarded} {slashed}");
    }

    // The model: the machine's global model, revalidated by its hash.
    let response = send(&app, get(&format!("/api/tasks/{task}/model"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{global}\""));
    let model = bytes(response).await;
    assert_eq!(ContentHash::of(&model), global);
    assert_eq!(model, net.service.blob(global).await.unwrap());
    let request = Request::get(format!("/api/tasks/{task}/model")).header(header::IF_NONE_MATCH, &etag);
    let response = send(&app, request.body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert!(bytes(response).await.is_empty());

    // An honest trainer's account: its balances, its bond and its rewards.
    let trainer = honest[0];
    let (status, account) = json(&app, &format!("/api/accounts/{trainer}")).await;
    assert_eq!(status, StatusCode::OK);
    let balances = ledger.balances(&trainer).await.unwrap();
    assert_eq!(account["balances"], json!({"free": balances.free.micro(), "staked": 100 * STAR, "delegated": 0}));
    assert_eq!(account["delegations"], json!([]));
    let stakes = account["stakes"].as_array().unwrap();
    assert_eq!(stakes.len(), 1);
    assert_eq!(
        (&stakes[0]["node"], &stakes[0]["role"], &stakes[0]["amount"], &stakes[0]["effective"]),
        (&json!(trainer.to_string()), &json!("trainer"), &json!(100 * STAR), &json!(100 * STAR))
    );
    let entries = account["history"]["items"].as_array().unwrap();
    assert_eq!(entries.len(), ROUNDS as usize, "one reward per round: {account}");
    assert!(entries.iter().all(|e| e["kind"] == "reward" && e["task"] == task.get() && e["bond"].is_null()));
    let earned: u64 = entries.iter().map(|e| e["amount"].as_u64().unwrap()).sum();
    assert_eq!(earned, payouts[&trainer].0);
    assert_eq!(balances.free.micro(), 900 * STAR + earned);
    // Paged one at a time, newest first.
    let (_, first) = json(&app, &format!("/api/accounts/{trainer}?limit=1")).await;
    assert_eq!(first["history"]["items"][0]["round"], ROUNDS - 1);
    let cursor = first["history"]["next_cursor"].as_str().unwrap();
    let (_, second) = json(&app, &format!("/api/accounts/{trainer}?limit=1&cursor={cursor}")).await;
    assert_eq!(second["history"]["items"][0]["round"], 0);
    assert_eq!(second["history"]["next_cursor"], Value::Null);
    // The poisoner's account shows both halves of each slash.
    let (_, account) = json(&app, &format!("/api/accounts/{nan}")).await;
    let kinds: Vec<&str> =
        account["history"]["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|&&k| k == "slash_to_pool").count(), ROUNDS as usize, "{account}");
    assert_eq!(kinds.iter().filter(|&&k| k == "slash_burn").count(), ROUNDS as usize, "{account}");

    // What does not exist, and what is malformed.
    let (status, body) = json(&app, "/api/tasks/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": {"code": "not_found", "message": "no task 999"}}));
    let (status, body) = json(&app, "/api/tasks/999/model").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = json(&app, "/api/accounts/not-a-key").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_public_key");
    let stranger = identity(4_242).public_key();
    let (status, body) = json(&app, &format!("/api/accounts/{stranger}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = json(&app, "/api/tasks?cursor=99999999999999999999").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_cursor");
    // A cursor beyond every id a store can hold starts from the newest task.
    let (status, body) = json(&app, &format!("/api/tasks?cursor={}", u64::MAX)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["id"], task.get());

    // Health and metrics.
    let response = send(&app, get("/healthz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(bytes(response).await, b"ok");
    let response = send(&app, get("/metrics")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(bytes(response).await).unwrap();
    let mut recorded_scores = 0;
    for r in 0..ROUNDS {
        recorded_scores += store.scores(task, RoundNumber::new(r)).await.unwrap().len() as u64;
    }
    assert_eq!(sample(&text, "starling_submissions_invalid_total"), u64::from(ROUNDS), "{text}");
    assert_eq!(sample(&text, "starling_submissions_valid_total"), 2 * u64::from(ROUNDS), "{text}");
    assert_eq!(recorded_scores, 2 * 2 * u64::from(ROUNDS), "every validator scored every valid submission");
    assert_eq!(sample(&text, "starling_scores_total"), recorded_scores, "{text}");
    assert_eq!(sample(&text, "starling_rounds_settled_total"), u64::from(ROUNDS), "{text}");
    assert_eq!(sample(&text, "starling_tasks_running"), 0, "{text}");
    assert_eq!(sample(&text, "starling_requests_total{outcome=\"non_finite\"}"), u64::from(ROUNDS), "{text}");
    assert!(sample(&text, "starling_requests_total{outcome=\"ok\"}") > 20, "{text}");

    let market = marketplace(&net, admin, task, &creator, &trainers, &validators, &records).await;
    browser(&net, task, market.id, &trainers[..2]).await;

    // A fresh coordinator over the same stores does not run the finished
    // task, and reads it from the store the same.
    net.kill();
    let response = send(&app, get("/healthz")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "a stopped coordinator is not healthy");
    let again = Network::start(&place, Duration::from_secs(3)).await;
    assert!(again.service.machine(task).await.is_none(), "not loaded at start-up");
    let fresh = starling_web::router(Arc::new(again.service.clone()));
    assert_eq!(json(&fresh, &format!("/api/tasks/{task}")).await, (StatusCode::OK, detail));
    assert_eq!(json(&fresh, "/api/tasks").await, (StatusCode::OK, list));
    let response = send(&fresh, get(&format!("/api/tasks/{task}/model"))).await;
    assert_eq!(bytes(response).await, model);
    assert!(again.service.machine(task).await.is_none(), "reading loaded nothing");
    let text = String::from_utf8(bytes(send(&fresh, get("/metrics")).await).await).unwrap();
    assert_eq!(sample(&text, "starling_submissions_invalid_total"), 0);
    // The promotion is written once: the restart added no version.
    let models =
        starling_web::ReadModel::list_models(&again.service, starling_web::PageRequest { after: None, limit: 10 })
            .await
            .unwrap();
    assert_eq!(models.items, vec![market], "the same model and version after a restart");
    again.kill();
}

/// The dashboard in real headless Chromium, driven by `web/browser/check.mjs`
/// (playwright-core; `./test.sh` installs it and Chromium): the task page's
/// accuracy chart has a point per round and the leaderboard the honest
/// trainers, the market lists the model, and a digit drawn on the model
/// page's canvas gets a prediction from the real model. Screenshots go to
/// `target/test-artifacts/browser/`.
async fn browser(net: &Network, task: TaskId, model: u64, honest: &[Identity]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let script = root.join("web/browser/check.mjs");
    assert!(
        root.join("web/browser/node_modules/playwright-core").is_dir(),
        "the browser test needs its driver: run ./test.sh, or `npm ci --prefix web/browser` (and Debian's chromium package)"
    );
    let out = root.join("target/test-artifacts/browser");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = starling_web::router(Arc::new(net.service.clone()));
    let server = tokio::spawn(starling_web::serve(app, listener, async {
        let _ = stopped.await;
    }));
    let expected = json!({
        "rounds": ROUNDS,
        "trainers": honest.iter().map(|t| t.public_key().to_string()).collect::<Vec<_>>(),
    });
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .args([format!("http://{addr}"), task.to_string(), model.to_string()])
        .arg(&out)
        .arg(expected.to_string())
        .output()
        .await
        .expect("node runs (the browser test needs Node.js)");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    println!("browser check: {summary}; screenshots in {}", out.display());
}

/// MNIST test images `range` as inputs in `[0, 1]`, with their labels.
fn images(range: std::ops::Range<usize>) -> (Vec<Vec<f32>>, Vec<u8>) {
    let mnist = mnist();
    let inputs = range.clone().map(|i| mnist.test.image(i).iter().map(|&p| f32::from(p) / 255.0).collect()).collect();
    (inputs, range.map(|i| mnist.test.labels()[i]).collect())
}

/// The finished task's best model on the marketplace: promoted once with its
/// metrics and lineage, downloadable, and priced inference that charges
/// exactly what it says, shares it as the ledger records, and charges
/// nothing when it refuses. Returns the model's list row.
async fn marketplace(
    net: &Network,
    admin: &Identity,
    task: TaskId,
    creator: &Identity,
    trainers: &[Identity],
    validators: &[Identity],
    records: &[starling_coordinator::store::RoundRecord],
) -> starling_web::ModelSummary {
    use starling_web::{Caller, PredictCall, PredictError, ReadModel};
    let service = &net.service;
    let ledger = service.ledger();

    let models = service.list_models(starling_web::PageRequest { after: None, limit: 10 }).await.unwrap();
    assert_eq!(models.items.len(), 1, "one promoted model");
    assert!(models.next.is_none());
    let model = models.items[0].clone();
    assert_eq!((model.name.as_str(), model.architecture.as_str()), ("mnist-logreg", "logreg"));
    assert_eq!((model.creator, model.version_count, model.num_classes), (creator.public_key(), 1, 10));
    assert_eq!(model.input_shape, vec![1, 28, 28]);
    let latest = &model.latest;
    assert_eq!((latest.version, latest.task), (1, task));
    // The best round's model, with the coordinator's measurement of it.
    let best = records.iter().find(|r| r.round == latest.round).expect("a recorded round");
    assert_eq!(latest.hash, best.global_model);
    assert_eq!((latest.accuracy, latest.loss), (best.accuracy, best.loss));
    assert!(latest.consensus_accuracy > 0.5 && latest.consensus_accuracy <= 1.0, "{latest:?}");

    // Lineage: exactly the identities the ledger rewarded, in their roles.
    let detail = service.market_model(model.id).await.unwrap().expect("the model");
    assert_eq!(detail.summary, model);
    assert_eq!(detail.versions.len(), 1);
    let lineage = &detail.versions[0];
    assert_eq!(lineage.rounds, ROUNDS);
    let payouts = ledger_payouts(net, task).await;
    let mut expected: Vec<(PublicKey, Role, u64)> = payouts
        .iter()
        .filter(|(_, (rewarded, _))| *rewarded > 0)
        .map(|(key, (rewarded, _))| {
            let role = if validators.iter().any(|v| v.public_key() == *key) { Role::Validator } else { Role::Trainer };
            (*key, role, *rewarded)
        })
        .collect();
    expected.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let found: Vec<_> = lineage.contributors.iter().map(|c| (c.key, c.role, c.earned)).collect();
    assert_eq!(found, expected);
    assert!(!found.iter().any(|(key, ..)| *key == trainers[2].public_key()), "the poisoner earned nothing");
    assert!(service.market_model(model.id + 1).await.unwrap().is_none());

    // The file is the version's.
    let file = service.model_version_file(model.id, 1).await.unwrap().expect("the file");
    assert_eq!(file.hash, latest.hash);
    let starling_web::ModelBody::Stream(mut stream) = file.body else { panic!("streamed") };
    let mut downloaded = Vec::new();
    while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        downloaded.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(ContentHash::of(&downloaded), latest.hash);
    assert!(service.model_version_file(model.id, 2).await.unwrap().is_none());

    // Free tier: real predictions, nothing charged.
    let (inputs, labels) = images(0..50);
    let call = |caller, inputs: Vec<Vec<f32>>| PredictCall { model: model.id, version: 1, caller, inputs };
    let answer = service.predict(call(Caller::Anonymous, inputs.clone())).await.unwrap();
    assert_eq!(answer.predictions.len(), 50);
    assert_eq!((answer.charged, answer.free_items, answer.quota_left), (0, 50, None));
    for p in &answer.predictions {
        assert_eq!(p.probabilities.len(), 10);
        assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        let top = p.probabilities.iter().cloned().fold(f32::MIN, f32::max);
        assert_eq!(p.probabilities[p.label as usize], top);
    }
    let right = answer.predictions.iter().zip(&labels).filter(|(p, l)| p.label == u32::from(**l)).count();
    assert!(right >= 30, "the trained model classifies: {right}/50 right");

    // Bad inputs are refused whoever asks.
    let mut nan = inputs[0].clone();
    nan[3] = f32::NAN;
    for bad in [vec![], vec![vec![0.5; 783]], vec![vec![1.5; 784]], vec![nan], vec![vec![0.0; 784]; 257]] {
        let refused = service.predict(call(Caller::Anonymous, bad)).await;
        assert!(matches!(refused, Err(PredictError::BadInput(_))), "{refused:?}");
    }
    let missing = PredictCall { model: model.id, version: 2, caller: Caller::Anonymous, inputs: inputs[..1].to_vec() };
    assert!(matches!(service.predict(missing).await, Err(PredictError::NotFound)));

    // A paying caller without stake: no quota, so the whole call is paid
    // and shared: 20% creator, 50% trainers and 20% validators by earnings,
    // the rest to the treasury.
    let payer = identity(40);
    fund(&net.transport(), admin, &payer, 100 * STAR, None).await;
    let fee = 1_000 + 100 * 3;
    let signed = |max_fee, request: &[u8]| Caller::Signed {
        key: payer.public_key(),
        max_fee,
        request: ContentHash::of(request),
    };
    let before = balances(ledger, &payer, creator, trainers, validators).await;
    let audit = ledger.audit().await.unwrap();
    let refused = service.predict(call(signed(fee - 1, b"too cheap"), inputs[..3].to_vec())).await;
    assert!(
        matches!(refused, Err(PredictError::PaymentRequired { fee: f, max_fee: m, .. }) if f == fee && m == fee - 1),
        "{refused:?}"
    );
    let answer = service.predict(call(signed(fee, b"one"), inputs[..3].to_vec())).await.unwrap();
    assert_eq!((answer.charged, answer.free_items, answer.quota_left), (fee, 0, Some(0)));
    let after = balances(ledger, &payer, creator, trainers, validators).await;
    assert_eq!(before.0 - after.0, fee, "the payer paid the fee");
    assert_eq!(after.1 - before.1, fee / 5, "the creator's 20%");
    let to_trainers: u64 = after.2.iter().zip(&before.2).map(|(a, b)| a - b).sum();
    let to_validators: u64 = after.3.iter().zip(&before.3).map(|(a, b)| a - b).sum();
    assert!(to_trainers <= fee / 2 && to_trainers + 2 >= fee / 2, "{to_trainers}");
    assert!(to_validators <= fee / 5 && to_validators + 2 >= fee / 5, "{to_validators}");
    assert_eq!(after.2[2], before.2[2], "the poisoner earned nothing, so it gets no share");
    let audit_after = ledger.audit().await.unwrap();
    let to_treasury = audit_after.treasury.micro() - audit.treasury.micro();
    assert_eq!(fee / 5 + to_trainers + to_validators + to_treasury, fee, "every µSTAR accounted for");
    assert_eq!((audit_after.issued, audit_after.held), (audit.issued, audit.held), "nothing created or lost");

    // The same request again is not charged twice.
    let again = service.predict(call(signed(fee, b"one"), inputs[..3].to_vec())).await.unwrap();
    assert_eq!(again.predictions, answer.predictions);
    assert_eq!(balances(ledger, &payer, creator, trainers, validators).await.0, after.0);

    // A caller who cannot pay gets 402 and is charged nothing.
    let broke = identity(41);
    let refused = service
        .predict(PredictCall {
            caller: Caller::Signed { key: broke.public_key(), max_fee: 1_000_000, request: ContentHash::of(b"broke") },
            ..call(Caller::Anonymous, inputs[..1].to_vec())
        })
        .await;
    assert!(matches!(refused, Err(PredictError::PaymentRequired { available: 0, .. })), "{refused:?}");

    // A staker's calls are free up to its daily quota (100 STAR bonded: 1,000 inputs).
    let staker = &trainers[0];
    let before = ledger.free_balance(&staker.public_key()).await.unwrap();
    let answer = service
        .predict(PredictCall {
            caller: Caller::Signed { key: staker.public_key(), max_fee: 0, request: ContentHash::of(b"staker") },
            ..call(Caller::Anonymous, inputs.clone())
        })
        .await
        .unwrap();
    assert_eq!((answer.charged, answer.free_items, answer.quota_left), (0, 50, Some(950)));
    assert_eq!(ledger.free_balance(&staker.public_key()).await.unwrap(), before);
    model
}

/// Free balances of the payer, the creator, each trainer and each validator.
async fn balances(
    ledger: &impl LedgerStore,
    payer: &Identity,
    creator: &Identity,
    trainers: &[Identity],
    validators: &[Identity],
) -> (u64, u64, Vec<u64>, Vec<u64>) {
    let free = |key: PublicKey| async move { ledger.free_balance(&key).await.unwrap().micro() };
    let mut t = Vec::new();
    for trainer in trainers {
        t.push(free(trainer.public_key()).await);
    }
    let mut v = Vec::new();
    for validator in validators {
        v.push(free(validator.public_key()).await);
    }
    (free(payer.public_key()).await, free(creator.public_key()).await, t, v)
}
