//! The clients build without server code: no certificate generation
//! (rcgen), no SQL (sqlx), no HTTP server (axum), none of the coordinator's
//! crates. `cargo tree` resolves the client crates' own normal dependencies
//! (features as a build of that crate alone would have them).

use std::process::Command;

const SERVER_CODE: [&str; 6] = ["rcgen", "sqlx", "axum", "starling-coordinator", "starling-web", "starling-staking"];

fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--edges", "normal", "--prefix", "none", "--format", "{p}", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn no_client_crate_pulls_in_server_code() {
    for package in ["starling-client", "starling-trainer", "starling-validator"] {
        let dependencies = normal_dependencies(package);
        assert!(dependencies.iter().any(|name| name == "starling-net"), "{package}: {dependencies:?}");
        assert!(dependencies.iter().any(|name| name == "quinn"), "{package} dials over QUIC: {dependencies:?}");
        for server in SERVER_CODE {
            assert!(!dependencies.iter().any(|name| name == server), "{package} depends on {server}");
        }
    }
}

#[test]
fn the_validator_does_not_depend_on_the_trainer() {
    let dependencies = normal_dependencies("starling-validator");
    assert!(dependencies.iter().any(|name| name == "starling-client"), "{dependencies:?}");
    assert!(!dependencies.iter().any(|name| name == "starling-trainer"), "{dependencies:?}");
}
