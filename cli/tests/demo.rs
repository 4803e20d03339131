//! `starling demo --rounds 2 --exit` end to end: a coordinator, honest and
//! adversarial trainers, validators (one colluding with the poisoner) and
//! delegators, all real clients over loopback QUIC in the one process; its
//! summary, printed and written as JSON, says what happened, and this test
//! checks it against what should have.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `starling` with a private HOME and none of the caller's STARLING_* settings.
fn starling(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_starling"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STARLING_") || name == "XDG_CACHE_HOME" {
            command.env_remove(name);
        }
    }
    command.env("HOME", home).env("NO_COLOR", "1");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mnist_dir() -> PathBuf {
    std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"))
}

fn run(home: &Path, args: &[&str]) -> Output {
    starling(home).args(args).output().expect("the starling binary runs")
}

/// The standing of the participant called `name`.
fn standing<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["standings"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name}"))
}

fn micro(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("{value} is not an amount"))
}

#[test]
fn a_short_demo_catches_both_adversaries_and_balances_the_ledger() {
    let home = tempfile::tempdir().unwrap();
    let json = home.path().join("summary.json");
    let data_dir = home.path().join("state");
    let output = run(
        home.path(),
        &[
            "demo",
            "--rounds",
            "2",
            "--exit",
            "--http-addr",
            "127.0.0.1:0",
            "--data",
            mnist_dir().to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--summary",
            json.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "the demo failed:\nstdout: {stdout}\nstderr: {stderr}");

    // The summary a person reads says it all.
    for line in ["global model accuracy", "slashed, and why", "delegators", "marketplace", "dashboard: http://"] {
        assert!(stdout.contains(line), "no `{line}` in the summary:\n{stdout}");
    }
    assert!(stdout.contains("poisoner            yes"), "{stdout}");
    assert!(stdout.contains("free-rider          yes"), "{stdout}");
    assert!(stdout.contains("dishonest validator yes"), "{stdout}");
    assert!(stdout.contains(": balanced"), "{stdout}");
    // The live status went to stderr, one line per phase.
    assert!(stderr.contains("round 2/2 · finished"), "{stderr}");

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["client_failures"], Value::Array(Vec::new()), "{summary:#}");

    // The global model learned: well above chance (10%) and above where it started.
    let rounds = summary["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{summary:#}");
    let start = summary["initial_accuracy"].as_f64().unwrap();
    let last = rounds[1]["accuracy"].as_f64().unwrap();
    assert!(last > 0.5 && last > start + 0.3, "accuracy {start} → {last}");
    // Five honest trainers accepted, the two adversaries rejected, each round.
    for round in rounds {
        assert_eq!((round["accepted"].as_u64(), round["rejected"].as_u64()), (Some(5), Some(2)), "{round}");
    }

    // Both adversaries caught: every update rejected, slashed, paid nothing.
    assert_eq!(summary["caught"]["poisoner"], true, "{summary:#}");
    assert_eq!(summary["caught"]["free_rider"], true, "{summary:#}");
    assert_eq!(summary["caught"]["dishonest_validator"], true, "{summary:#}");
    for bad in ["poisoner", "free-rider"] {
        let s = standing(&summary, bad);
        assert_eq!((s["submissions"].as_u64(), s["rejected"].as_u64()), (Some(2), Some(2)), "{s}");
        assert!(micro(&s["slashed"]) > 0 && micro(&s["rewarded"]) == 0, "{s}");
    }
    let slashes = summary["slashes"].as_array().unwrap();
    let reason = |name: &str| -> Vec<String> {
        slashes.iter().filter(|s| s["name"] == name).map(|s| s["reason"].as_str().unwrap().to_owned()).collect()
    };
    assert!(reason("free-rider").iter().all(|r| r.contains("empty_update")), "{slashes:?}");
    assert!(reason("poisoner").iter().all(|r| r.contains("harm threshold")), "{slashes:?}");
    assert_eq!(reason("validator-3").len(), 2, "the colluding validator is slashed each round: {slashes:?}");
    // The honest are paid and never slashed.
    for good in ["trainer-1", "trainer-2", "trainer-3", "trainer-4", "trainer-5", "validator-1", "validator-2"] {
        let s = standing(&summary, good);
        assert!(micro(&s["rewarded"]) > 0 && micro(&s["slashed"]) == 0, "{s}");
    }
    assert!(standing(&summary, "validator-1")["agreement"].as_f64().unwrap() > 0.9);
    assert!(standing(&summary, "validator-3")["agreement"].as_f64().unwrap() < 0.5);

    // Delegators share their node's fate: rewards behind the honest, a slash behind the poisoner.
    let delegators = summary["delegators"].as_array().unwrap();
    let delegator = |backs: &str| delegators.iter().find(|d| d["backs"] == backs).unwrap();
    assert!(micro(&delegator("trainer-1")["earned"]) > 0 && micro(&delegator("trainer-1")["slashed"]) == 0);
    assert!(micro(&delegator("validator-1")["earned"]) > 0);
    assert!(micro(&delegator("poisoner")["slashed"]) > 0 && micro(&delegator("poisoner")["earned"]) == 0);
    assert_eq!(delegator("poisoner")["lock_days"], 365);

    // The best round's model is in the marketplace, and nothing was created or lost.
    assert_eq!(summary["market"]["version"], 1, "{summary:#}");
    assert!(summary["market"]["accuracy"].as_f64().unwrap() > 0.5);
    let ledger = &summary["ledger"];
    assert_eq!(ledger["balanced"], true);
    assert_eq!(ledger["issued"], ledger["held"]);
    assert!(micro(&ledger["burned"]) > 0, "half of every slash is burned: {ledger}");

    // The state stayed where it was asked to.
    assert!(data_dir.join("starling.db").exists());
    assert!(data_dir.join("artifacts").is_dir());
}

#[test]
fn a_demo_without_mnist_says_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let empty = home.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = run(home.path(), &["demo", "--exit", "--data", empty.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("loading MNIST from") && stderr.contains("train-images"), "{stderr}");
}

#[test]
fn bad_demo_settings_are_refused() {
    let home = tempfile::tempdir().unwrap();
    for (args, want) in [
        (&["demo", "--rounds", "0"][..], "--rounds"),
        (&["demo", "--trainers", "0"][..], "--trainers"),
        (&["demo", "--trainers", "500"][..], "--trainers"),
    ] {
        let output = run(home.path(), args);
        assert!(!output.status.success(), "{args:?}");
        assert!(text(&output.stderr).contains(want), "{args:?}: {}", text(&output.stderr));
    }
}
