//! `starling simulate` end to end: a short run's JSON, the target, and the
//! errors a user sees for bad settings and missing data.

use std::path::PathBuf;
use std::process::{Command, Output};

fn mnist_dir() -> PathBuf {
    std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"))
}

fn simulate(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_starling"));
    command.arg("simulate").args(["--model", "logreg", "--clients", "20", "--fraction", "0.25", "--lr", "0.05"]);
    command.arg("--data").arg(mnist_dir()).args(args).output().unwrap()
}

#[test]
fn a_short_run_writes_its_config_and_every_round() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    let o = simulate(&["--rounds", "2", "--seed", "4", "--output", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let config = &json["config"];
    assert_eq!(config["model"], "logreg");
    assert_eq!(config["parameters"], 7850);
    assert_eq!(config["clients_per_round"], 5);
    assert_eq!(config["rule"], "fedavg");
    assert_eq!(config["partition"], "iid");
    assert_eq!(config["seed"], 4);
    let rounds = json["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    for (i, round) in rounds.iter().enumerate() {
        assert_eq!(round["round"], i + 1);
        assert!(round["accuracy"].as_f64().unwrap() > 0.6, "{round}");
        assert!(round["loss"].as_f64().unwrap() > 0.0 && round["seconds"].as_f64().unwrap() > 0.0);
        assert_eq!(round["sampled"].as_array().unwrap().len(), 5);
    }
    assert!(json["rounds_to_target"].is_null());
    assert!(json["initial_accuracy"].as_f64().unwrap() < 0.25);
    // Progress goes to stderr as plain lines when it is not a terminal.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("round 1: accuracy") && err.contains("round 2: accuracy"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("final accuracy"));
}

#[test]
fn the_target_ends_the_run_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    let o = simulate(&["--rounds", "5", "--target-accuracy", "0.5", "--output", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["rounds_to_target"], 1);
    assert_eq!(json["rounds"].as_array().unwrap().len(), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("reached 50.00% in 1 rounds"));
}

#[test]
fn bad_settings_and_missing_data_say_what_to_do() {
    let err = |o: Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = err(simulate(&["--partition", "sorted"]));
    assert!(e.contains("unknown partition `sorted`"), "{e}");
    let e = err(simulate(&["--attack", "flip"]));
    assert!(e.contains("unknown attack `flip`"), "{e}");
    let e = err(simulate(&["--rule", "krum", "--byzantine", "2"]));
    assert!(e.contains("krum needs at least 7 updates per round but only 5 clients are sampled"), "{e}");
    let e = err(simulate(&["--malicious", "21"]));
    assert!(e.contains("`malicious` 21 malicious of 20 clients"), "{e}");
    let e = err(simulate(&["--device", "tpu"]));
    assert!(e.contains("unknown device `tpu`"), "{e}");

    let home = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_starling"))
        .args(["simulate", "--rounds", "1"])
        .env_remove("STARLING_DATA")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", home.path())
        .output()
        .unwrap();
    let e = err(o);
    assert!(e.contains("no MNIST found") && e.contains("starling data download"), "{e}");
}
