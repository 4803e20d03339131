//! `starling keys new|show`: private files, no overwrites, no readable keys.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn starling(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_starling")).args(args).env_remove("STARLING_KEY").output().unwrap()
}

#[test]
fn new_makes_a_private_key_that_show_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/me.key");
    let key = path.to_str().unwrap();
    let made = starling(&["keys", "new", "--key", key]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let public = String::from_utf8(made.stdout).unwrap();
    assert_eq!(public.trim().len(), 64, "{public}");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    let shown = starling(&["keys", "show", "--key", key]);
    assert!(shown.status.success());
    assert_eq!(String::from_utf8(shown.stdout).unwrap(), public);

    // A second `new` must not destroy the first identity.
    let again = starling(&["keys", "new", "--key", key]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(String::from_utf8(starling(&["keys", "show", "--key", key]).stdout).unwrap(), public);

    // A key others can read is refused, with the fix.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = starling(&["keys", "show", "--key", key]);
    assert!(!open.status.success());
    let err = String::from_utf8_lossy(&open.stderr);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn show_without_a_key_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let o = starling(&["keys", "show", "--key", dir.path().join("none.key").to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("none.key"), "{}", String::from_utf8_lossy(&o.stderr));
}
