//! The network commands against a real `starling coordinator serve` child
//! process on loopback: config layering, the admin and ledger commands,
//! refusals as people read them, and one whole task trained and validated
//! by `starling train` and `starling validate`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `starling` with a private HOME and none of the caller's STARLING_* settings.
fn starling(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_starling"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STARLING_") || name == "XDG_CONFIG_HOME" || name == "XDG_DATA_HOME" {
            command.env_remove(name);
        }
    }
    command.env("HOME", home).env("XDG_CACHE_HOME", home.join("cache")).env("NO_COLOR", "1");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "failed:\nstdout: {}\nstderr: {}", text(&output.stdout), text(&output.stderr));
    text(&output.stdout)
}

fn failed(output: Output) -> String {
    assert!(!output.status.success(), "succeeded unexpectedly:\nstdout: {}", text(&output.stdout));
    text(&output.stderr)
}

fn mnist_dir() -> PathBuf {
    std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"))
}

/// A scratch place with identities in it.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Creates the identity `name` and returns its public key.
    fn key(&self, name: &str) -> String {
        let path = self.key_path(name);
        ok(starling(self.path()).args(["keys", "new", "--key", path.to_str().unwrap()]).output().unwrap())
            .trim()
            .to_owned()
    }

    fn key_path(&self, name: &str) -> PathBuf {
        self.path().join(format!("{name}.key"))
    }
}

/// A running `starling coordinator serve`, stopped when dropped.
struct Server {
    child: Child,
    quic: String,
    fingerprint: String,
    /// The HTTP API's base URL, when it serves one (`--http-addr`).
    api: Option<String>,
    stdout: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Server {
    fn start(place: &Place, admin: &str, extra: &[&str]) -> Self {
        Self::start_at(place, admin, "127.0.0.1:0", extra)
    }

    /// A coordinator on `quic` (a restarted one takes its predecessor's port).
    fn start_at(place: &Place, admin: &str, quic: &str, extra: &[&str]) -> Self {
        let data = place.path().join("coordinator");
        let http = if extra.contains(&"--http-addr") { &[][..] } else { &["--http-addr", "off"][..] };
        let mut child = starling(place.path())
            .args(["coordinator", "serve", "--data-dir", data.to_str().unwrap(), "--admin-key", admin])
            .args(["--quic-addr", quic, "--join-window-secs", "1", "--tick-ms", "50"])
            .args(http)
            .args(extra)
            .env("STARLING_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all);
            all
        });
        let (mut quic, mut fingerprint, mut api) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the coordinator exited ({status}): {}", stderr.join().unwrap());
                }
                continue;
            };
            if let Some(addr) = line.strip_prefix("quic: ") {
                quic = Some(addr.to_owned());
            } else if let Some(hex) = line.strip_prefix("fingerprint: ") {
                fingerprint = Some(hex.to_owned());
            } else if let Some(url) = line.strip_prefix("http: ") {
                api = Some(url.to_owned());
            } else if line.starts_with("ready:") {
                break;
            }
        }
        let (Some(quic), Some(fingerprint)) = (quic, fingerprint) else { panic!("the coordinator did not start") };
        Self { child, quic, fingerprint, api, stdout: lines, stderr }
    }

    /// `starling ARGS --coordinator … --fingerprint … --key KEY`.
    fn client(&self, place: &Place, key: &str, args: &[&str]) -> Command {
        let mut command = starling(place.path());
        command.args(args).args(["--coordinator", &self.quic, "--fingerprint", &self.fingerprint]);
        command.args(["--key", place.key_path(key).to_str().unwrap()]);
        command
    }

    fn run(&self, place: &Place, key: &str, args: &[&str]) -> Output {
        self.client(place, key, args).output().unwrap()
    }

    /// Ctrl-C, then the rest of stdout and all of stderr once it has exited.
    fn interrupt(mut self) -> (bool, String, String) {
        let killed = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the coordinator ignored Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        };
        let rest: Vec<String> = self.stdout.try_iter().collect();
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new)).join().unwrap();
        (status.success(), rest.join("\n"), stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line of `output` that starts with `prefix`, without it.
fn line<'a>(output: &'a str, prefix: &str) -> &'a str {
    output.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no `{prefix}` in:\n{output}")).trim()
}

#[test]
fn print_config_layers_file_then_environment_then_flags() {
    let place = Place::new();
    let file = place.path().join("coordinator.toml");
    std::fs::write(
        &file,
        "quic_addr = \"127.0.0.1:1001\"\nhttp_addr = \"127.0.0.1:2001\"\njoin_window_secs = 11\ntick_ms = 31\n\
         database_url = \"postgres://starling:hunter2@db.internal:5432/starling\"\n",
    )
    .unwrap();
    let printed = ok(starling(place.path())
        .args(["coordinator", "serve", "--print-config", "--config", file.to_str().unwrap()])
        .args(["--quic-addr", "127.0.0.1:1003"])
        .env("STARLING_QUIC_ADDR", "127.0.0.1:1002")
        .env("STARLING_HTTP_ADDR", "127.0.0.1:2002")
        .env("STARLING_JOIN_WINDOW_SECS", "12")
        .output()
        .unwrap());
    // Flag over environment over file over default, each saying where it came from.
    assert!(printed.contains("quic_addr = \"127.0.0.1:1003\"  # flag --quic-addr\n"), "{printed}");
    assert!(printed.contains("http_addr = \"127.0.0.1:2002\"  # env STARLING_HTTP_ADDR\n"), "{printed}");
    assert!(printed.contains("join_window_secs = 12  # env STARLING_JOIN_WINDOW_SECS\n"), "{printed}");
    assert!(printed.contains("tick_ms = 31  # file\n"), "{printed}");
    let home = place.path().join(".local/share/starling");
    assert!(printed.contains(&format!("data_dir = \"{}\"  # default\n", home.display())), "{printed}");
    assert!(
        printed.contains(&format!("store_url = \"{}\"  # default\n", home.join("artifacts").display())),
        "{printed}"
    );
    assert!(printed.contains("# admin_key = (not set: required to serve)"), "{printed}");
    // No secrets.
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("postgres://starling:***@db.internal:5432/starling"), "{printed}");

    // What it printed is a config file that gives the same configuration.
    let again = place.path().join("again.toml");
    std::fs::write(&again, printed.replace("hunter2", "").replace("***", "x")).unwrap();
    let reprinted = ok(starling(place.path())
        .args(["coordinator", "serve", "--print-config", "--config"])
        .arg(&again)
        .output()
        .unwrap());
    assert!(reprinted.contains("quic_addr = \"127.0.0.1:1003\"  # file\n"), "{reprinted}");

    // STARLING_HOME moves every default.
    let moved = ok(starling(place.path())
        .args(["coordinator", "serve", "--print-config"])
        .env("STARLING_HOME", "/srv/starling")
        .output()
        .unwrap());
    assert!(moved.contains("database_url = \"sqlite:///srv/starling/starling.db?mode=rwc\"  # default\n"), "{moved}");

    // Mistakes are named.
    std::fs::write(&file, "quic_port = 7700\n").unwrap();
    let err = failed(
        starling(place.path())
            .args(["coordinator", "serve", "--print-config", "--config"])
            .arg(&file)
            .output()
            .unwrap(),
    );
    assert!(err.contains("quic_port"), "{err}");
    let err = failed(
        starling(place.path()).args(["coordinator", "serve", "--store-url", "ftp://models/starling"]).output().unwrap(),
    );
    assert!(err.contains("unknown scheme `ftp://`"), "{err}");
    let err = failed(starling(place.path()).args(["coordinator", "serve", "--store-url", "s3:///x"]).output().unwrap());
    assert!(err.contains("no bucket named"), "{err}");
    let s3 = ok(starling(place.path())
        .args(["coordinator", "serve", "--print-config", "--store-url", "s3://models/starling"])
        .output()
        .unwrap());
    assert!(s3.contains("store_url = \"s3://models/starling\"  # flag --store-url\n"), "{s3}");
    let err =
        failed(starling(place.path()).args(["coordinator", "serve", "--quic-addr", "127.0.0.1:0"]).output().unwrap());
    assert!(err.contains("--admin-key"), "{err}");
}

#[test]
fn bad_key_files_are_refused_before_anything_is_sent() {
    let place = Place::new();
    let target = ["--coordinator", "127.0.0.1:9", "--fingerprint", &"ab".repeat(32)];
    let garbage = place.path().join("garbage.key");
    std::fs::write(&garbage, "not a key\n").unwrap();
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = failed(starling(place.path()).args(["balance", "--key"]).arg(&garbage).args(target).output().unwrap());
    assert!(err.contains("is not a Starling identity file"), "{err}");

    place.key("open");
    std::fs::set_permissions(place.key_path("open"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = failed(
        starling(place.path())
            .args(["stake", "--role", "trainer", "--amount", "1", "--key"])
            .arg(place.key_path("open"))
            .args(target)
            .output()
            .unwrap(),
    );
    assert!(err.contains("chmod 600"), "{err}");

    let err = failed(starling(place.path()).args(["balance"]).args(target).output().unwrap());
    assert!(err.contains("starling keys new"), "{err}");

    // Amounts are STAR with at most six decimals, checked before anything is signed.
    place.key("me");
    let err = failed(
        starling(place.path())
            .args(["stake", "--role", "trainer", "--amount", "0.0000001", "--key"])
            .arg(place.key_path("me"))
            .args(target)
            .output()
            .unwrap(),
    );
    assert!(err.contains("more than 6 decimals"), "{err}");
}

#[test]
fn ledger_commands_against_a_running_coordinator() {
    let place = Place::new();
    let admin = place.key("admin");
    let alice = place.key("alice");
    let server = Server::start(&place, &admin, &[]);

    let issued = ok(server.run(&place, "admin", &["admin", "issue", "--to", &alice, "--amount", "100.5"]));
    assert_eq!(issued.trim(), format!("issued 100.500000 STAR to {alice}"));
    let balance = ok(server.run(&place, "alice", &["balance"]));
    assert_eq!(line(&balance, "account"), alice);
    assert_eq!(line(&balance, "free"), "100.500000 STAR");
    assert_eq!(line(&balance, "staked"), "0.000000 STAR");

    // Only the admin key issues.
    let err = failed(server.run(&place, "alice", &["admin", "issue", "--to", &alice, "--amount", "1"]));
    assert!(err.contains("issue refused by the coordinator [unauthorized]"), "{err}");

    let staked =
        ok(server.run(&place, "alice", &["stake", "--role", "trainer", "--amount", "10.25", "--lock-days", "30"]));
    let bond = line(&staked, "bond").split(':').next().unwrap().to_owned();
    assert!(staked.contains("10.250000 STAR staked as trainer, locked 30 days"), "{staked}");
    let balance = ok(server.run(&place, "alice", &["balance"]));
    assert_eq!(line(&balance, "free"), "90.250000 STAR");
    assert_eq!(line(&balance, "staked"), "10.250000 STAR");
    assert!(balance.contains(&format!("bond {bond}: 10.250000 STAR staked as trainer, locked 30 days, unlocks in")));
    let json: serde_json::Value =
        serde_json::from_str(&ok(server.run(&place, "admin", &["balance", "--of", &alice, "--json"]))).unwrap();
    assert_eq!(json["free"], 90_250_000);
    assert_eq!(json["staked"], 10_250_000);

    // Unstaking before the lock ends is refused, and says when it ends.
    let err = failed(server.run(&place, "alice", &["unstake", "--bond", &bond]));
    assert!(err.contains(&format!("bond {bond} is still locked: it unlocks in 30 d 0 h")), "{err}");
    assert!(err.contains("unstake refused by the coordinator [locked]"), "{err}");
    let err = failed(server.run(&place, "alice", &["unstake", "--bond", "999"]));
    assert!(err.contains("[unknown_bond]"), "{err}");

    // A stake with no lock-up comes back at once, less the 5% fee.
    let staked = ok(server.run(&place, "alice", &["stake", "--role", "validator", "--amount", "20"]));
    let free_bond = line(&staked, "bond").split(':').next().unwrap().to_owned();
    let unstaked = ok(server.run(&place, "alice", &["unstake", "--bond", &free_bond]));
    assert_eq!(
        unstaked.trim(),
        format!("bond {free_bond} returned: 19.000000 STAR to your free balance (1.000000 STAR fee)")
    );

    let sent = ok(server.run(&place, "alice", &["transfer", "--to", &admin, "--amount", "0.000001"]));
    assert_eq!(sent.trim(), format!("sent 0.000001 STAR to {admin}"));
    let err = failed(server.run(&place, "alice", &["transfer", "--to", &admin, "--amount", "1000"]));
    assert!(err.contains("[insufficient_balance]"), "{err}");
    ok(server.run(&place, "alice", &["commission", "--role", "trainer", "12.5%"]));
    let balance = ok(server.run(&place, "alice", &["balance"]));
    assert_eq!(line(&balance, "free"), format!("{} STAR", "89.249999"));

    // Without --fingerprint the first certificate is trusted and remembered, then held to.
    let known_hosts = place.path().join("known_hosts");
    let tofu = |place: &Place| {
        starling(place.path())
            .args(["balance", "--of", &alice, "--coordinator", &server.quic, "--known-hosts"])
            .arg(&known_hosts)
            .output()
            .unwrap()
    };
    let first = tofu(&place);
    assert!(text(&first.stderr).contains(&format!("trusting its certificate {}", server.fingerprint)));
    assert_eq!(line(&ok(first), "free"), "89.249999 STAR");
    let second = tofu(&place);
    assert!(!text(&second.stderr).contains("trusting"), "{}", text(&second.stderr));
    ok(second);
    assert!(std::fs::read_to_string(&known_hosts).unwrap().contains(&server.fingerprint));
    let err = failed(
        starling(place.path())
            .args(["balance", "--of", &alice, "--coordinator", &server.quic, "--fingerprint", &"00".repeat(32)])
            .output()
            .unwrap(),
    );
    assert!(err.contains("balance: no answer from the coordinator"), "{err}");

    // Ctrl-C stops it cleanly.
    let (clean, stdout, stderr) = server.interrupt();
    assert!(clean, "{stderr}");
    assert!(stdout.ends_with("stopped"), "{stdout}\n{stderr}");
}

#[test]
fn a_one_round_task_is_trained_and_validated_end_to_end() {
    let mnist = mnist_dir();
    let place = Place::new();
    let admin = place.key("admin");
    let trainer = place.key("trainer");
    let validator = place.key("validator");
    let server = Server::start(&place, &admin, &["--http-addr", "127.0.0.1:0"]);
    for (who, key) in [("trainer", &trainer), ("validator", &validator), ("admin", &admin)] {
        ok(server.run(&place, "admin", &["admin", "issue", "--to", key, "--amount", "50"]));
        if who != "admin" {
            ok(server.run(&place, who, &["stake", "--role", who, "--amount", "20"]));
        }
    }
    let task_args = [
        "task",
        "create",
        "--model",
        "logreg",
        "--rounds",
        "1",
        "--lr",
        "0.05",
        "--reward-pool",
        "10",
        "--training-secs",
        "300",
        "--validation-secs",
        "300",
    ];
    let created = server.run(&place, "admin", &task_args);
    assert!(text(&created.stderr).contains("reward pool 10.000000 STAR escrowed"), "{}", text(&created.stderr));
    let task = ok(created).trim().to_owned();
    let balance = ok(server.run(&place, "admin", &["balance"]));
    assert_eq!(line(&balance, "free"), "40.000000 STAR");

    let participate = |who: &str, samples: &str| {
        let cache = place.path().join(format!("{who}-cache"));
        server
            .client(&place, who, &[if who == "trainer" { "train" } else { "validate" }, "--task", &task])
            .args(["--samples", samples, "--max-poll-secs", "0.2", "--retries", "5", "--seed", "7"])
            .arg("--data")
            .arg(&mnist)
            .arg("--cache")
            .arg(cache)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let training = participate("trainer", "600");
    let validating = participate("validator", "1000");
    let trained = training.wait_with_output().unwrap();
    let validated = validating.wait_with_output().unwrap();
    let trained = ok(trained);
    let validated = ok(validated);
    assert!(trained.contains("round 0: update "), "{trained}");
    assert!(trained.contains(&format!("task {task} finished: 1 update(s) accepted")), "{trained}");
    assert!(validated.contains("round 0: submission "), "{validated}");
    assert!(validated.contains(&format!("task {task} finished: 1 score(s) accepted")), "{validated}");

    // The round paid out the whole pool: trainers and validators got it all.
    let json = |key: &str| -> serde_json::Value {
        serde_json::from_str(&ok(server.run(&place, "admin", &["balance", "--of", key, "--json"]))).unwrap()
    };
    let paid = |v: &serde_json::Value| v["free"].as_u64().unwrap() + v["staked"].as_u64().unwrap();
    let (t, v) = (json(&trainer), json(&validator));
    assert!(paid(&t) > 50_000_000 && paid(&v) > 50_000_000, "{t}\n{v}");
    assert_eq!(paid(&t) + paid(&v), 110_000_000, "{t}\n{v}");

    let shown = ok(server.run(&place, "admin", &["task", "show", "--task", &task]));
    assert!(shown.contains("task finished"), "{shown}");

    market(&place, &server, &task);
}

/// `starling market` against the finished task's promoted model: listed,
/// shown, pulled (and checked), and used for signed inference, free within a
/// staker's quota and paid by a caller without stake.
fn market(place: &Place, server: &Server, task: &str) {
    let api = server.api.clone().expect("the coordinator serves HTTP");
    let market = |key: &str, args: &[&str]| {
        starling(place.path())
            .arg("market")
            .args(args)
            .args(["--api", &api])
            .env("STARLING_KEY", place.key_path(key))
            .output()
            .unwrap()
    };
    let listed = ok(market("admin", &["list"]));
    assert!(listed.contains("mnist-logreg"), "{listed}");
    let listed: serde_json::Value = serde_json::from_str(&ok(market("admin", &["list", "--json"]))).unwrap();
    let model = listed[0]["id"].as_u64().unwrap().to_string();
    assert_eq!(listed[0]["latest"]["task"].as_u64().unwrap().to_string(), task);
    let shown = ok(market("admin", &["show", &model]));
    assert!(shown.contains(&format!("version 1 (task {task}, round 0 of 1")), "{shown}");
    assert!(shown.contains("trainer") && shown.contains("validator"), "the lineage names both: {shown}");

    let file = place.path().join("pulled.safetensors");
    let pulled = ok(market("admin", &["pull", &model, "--out", file.to_str().unwrap()]));
    let hash = listed[0]["latest"]["hash"].as_str().unwrap();
    assert!(pulled.contains(hash), "{pulled}");
    assert_eq!(blake3::hash(&std::fs::read(&file).unwrap()).to_hex().as_str(), hash);
    assert!(failed(market("admin", &["pull", &model, "--version", "2"])).contains("has no version 2"));

    // Three MNIST-like inputs (blank images are valid inputs too).
    let inputs = place.path().join("inputs.json");
    let blank = vec![0.0f32; 784];
    std::fs::write(&inputs, serde_json::json!({ "inputs": [blank, blank, blank] }).to_string()).unwrap();
    let input = inputs.to_str().unwrap();
    let free = ok(market("trainer", &["predict", &model, "--inputs", input]));
    assert!(
        free.contains("input 2: ")
            && free.contains("charged 0.000000 STAR (3 inputs free; 197 free inputs left today)"),
        "{free}"
    );
    let before = ok(server.run(place, "admin", &["balance"]));
    let paid = ok(market("admin", &["predict", &model, "--inputs", input, "--json"]));
    let paid: serde_json::Value = serde_json::from_str(&paid).unwrap();
    assert_eq!(paid["charged"], 1_300, "0.001 STAR a call + 0.0001 STAR an input, nothing free without stake");
    assert_eq!(paid["predictions"].as_array().unwrap().len(), 3);
    let after = ok(server.run(place, "admin", &["balance"]));
    let free_of = |b: &str| line(b, "free").trim_end_matches(" STAR").replace('.', "").parse::<u64>().unwrap();
    // The admin created the task, so the creator's 20% came back to it.
    assert_eq!(free_of(&before) - free_of(&after), 1_300 - 260, "{before}\n{after}");
    let refused = failed(market("admin", &["predict", &model, "--inputs", input, "--max-fee", "0.0001"]));
    assert!(refused.contains("402") && refused.contains("payment_required"), "{refused}");
    assert_eq!(free_of(&ok(server.run(place, "admin", &["balance"]))), free_of(&after), "a refused call costs nothing");
}

#[test]
fn a_coordinator_killed_mid_round_resumes_and_pays_once() {
    let mnist = mnist_dir();
    let place = Place::new();
    let admin = place.key("admin");
    let keys: Vec<(&str, String)> =
        ["quick", "slow", "validator"].into_iter().map(|who| (who, place.key(who))).collect();
    let server = Server::start(&place, &admin, &[]);
    ok(server.run(&place, "admin", &["admin", "issue", "--to", &admin, "--amount", "50"]));
    for (who, key) in &keys {
        ok(server.run(&place, "admin", &["admin", "issue", "--to", key, "--amount", "50"]));
        let role = if *who == "validator" { "validator" } else { "trainer" };
        ok(server.run(&place, who, &["stake", "--role", role, "--amount", "20"]));
    }
    let task_args = ["task", "create", "--model", "logreg", "--rounds", "2", "--lr", "0.05", "--reward-pool", "10"];
    let task = ok(server.run(
        &place,
        "admin",
        &[&task_args[..], &["--training-secs", "300", "--validation-secs", "300"]].concat(),
    ))
    .trim()
    .to_owned();

    let participate = |who: &str, samples: &str| {
        let command = if who == "validator" { "validate" } else { "train" };
        server
            .client(&place, who, &[command, "--task", &task])
            .args(["--samples", samples, "--max-poll-secs", "0.2", "--retries", "12", "--seed", "7"])
            .arg("--data")
            .arg(&mnist)
            .arg("--cache")
            .arg(place.path().join(format!("{who}-cache")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The quick trainer's first update is in while the slow one still trains:
    // the coordinator dies holding a record its saved machine does not have.
    let mut quick = participate("quick", "300");
    let slow = participate("slow", "6000");
    let validating = participate("validator", "1000");
    let mut quick_out = BufReader::new(quick.stdout.take().unwrap()).lines();
    let mut quick_lines = Vec::new();
    for line in quick_out.by_ref() {
        let line = line.unwrap();
        let uploaded = line.contains("round 0: update ");
        quick_lines.push(line);
        if uploaded {
            break;
        }
    }
    let port = server.quic.rsplit(':').next().unwrap().to_owned();
    let killed = Command::new("kill").args(["-KILL", &server.child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    drop(server);
    let server = Server::start_at(&place, &admin, &format!("127.0.0.1:{port}"), &[]);

    quick_lines.extend(quick_out.map(Result::unwrap));
    let quick = quick.wait_with_output().unwrap();
    assert!(quick.status.success(), "{}\n{}", quick_lines.join("\n"), text(&quick.stderr));
    let quick = quick_lines.join("\n");
    let slow = ok(slow.wait_with_output().unwrap());
    let validated = ok(validating.wait_with_output().unwrap());
    assert!(quick.contains(&format!("task {task} finished: 2 update(s) accepted")), "{quick}");
    assert!(slow.contains(&format!("task {task} finished: 2 update(s) accepted")), "{slow}");
    assert!(validated.contains(&format!("task {task} finished: 4 score(s) accepted")), "{validated}");

    // Paid exactly once: the participants' money is their 3 × 50 STAR plus
    // the 10 STAR pool, less the few µSTAR of rounding the ledger leaves in
    // the task's escrow. Paying a round twice would add millions of µSTAR.
    let json = |key: &str| -> serde_json::Value {
        serde_json::from_str(&ok(server.run(&place, "admin", &["balance", "--of", key, "--json"]))).unwrap()
    };
    let held: u64 = keys
        .iter()
        .map(|(_, key)| {
            let v = json(key);
            v["free"].as_u64().unwrap() + v["staked"].as_u64().unwrap()
        })
        .sum();
    assert!((160_000_000 - 10..=160_000_000).contains(&held), "{held} µSTAR");
    let shown = ok(server.run(&place, "admin", &["task", "show", "--task", &task]));
    assert!(shown.contains("task finished"), "{shown}");
}
