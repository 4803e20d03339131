//! `starling data check` on the real MNIST files and on a directory without them.

use std::path::PathBuf;
use std::process::Command;

fn mnist_dir() -> PathBuf {
    std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"))
}

#[test]
fn check_verifies_mnist_and_says_what_is_missing() {
    let o = Command::new(env!("CARGO_BIN_EXE_starling"))
        .args(["data", "check", "--data"])
        .arg(mnist_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("60000 training and 10000 test images of 28×28") && out.contains("SHA-256 matches"), "{out}");

    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_starling"))
        .args(["data", "check", "--data"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot read") && err.contains("neither train-images-idx3-ubyte nor its .gz is here"),
        "{err}"
    );
}
