//! Ed25519 identity key files: the key a trainer, validator or coordinator
//! signs its envelopes with.
//!
//! The file is two lines of text:
//!
//! ```text
//! starling-ed25519-secret-key v1
//! <64 lower-case hex digits: the 32-byte secret>
//! ```
//!
//! It is created with mode 0600 and refused on load if group or others may
//! read it, like an SSH private key.

use std::fmt;
use std::path::{Path, PathBuf};

use starling_protocol::{PublicKey, SigningKey};
use thiserror::Error;

use crate::secret_file::{self, SecretFileError};

/// First line of every identity file; the version lets the format change later.
pub const IDENTITY_FILE_HEADER: &str = "starling-ed25519-secret-key v1";

/// Why an identity file could not be created or loaded.
#[derive(Debug, Error)]
pub enum IdentityError {
    /// The file could not be created or read, or its permissions are too open.
    #[error(transparent)]
    File(#[from] SecretFileError),
    /// The file exists but is not an identity file in the expected format.
    #[error(
        "{path} is not a Starling identity file: {reason}. Expected the line `{IDENTITY_FILE_HEADER}` \
         followed by 64 hex digits; restore the file from a backup or create a new identity"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        reason: String,
    },
}

/// An ed25519 signing identity.
///
/// `Debug` shows the public key only; the secret never reaches logs.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// A fresh identity from a cryptographically secure `rng` (for example
    /// `rand::rng()`; tests pass a seeded ChaCha generator).
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self { key: SigningKey::generate(rng) }
    }

    /// Wraps an existing signing key.
    pub fn from_signing_key(key: SigningKey) -> Self {
        Self { key }
    }

    /// Generates a new identity from the operating system's generator and
    /// writes it to `path` (mode 0600, atomically).
    ///
    /// Refuses to overwrite an existing file: losing a staked identity loses
    /// the stake.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, IdentityError> {
        let identity = Self::generate(&mut rand::rng());
        identity.save_new(path)?;
        Ok(identity)
    }

    /// Writes this identity to a new file at `path` (mode 0600, atomically),
    /// refusing to overwrite an existing file.
    pub fn save_new(&self, path: impl AsRef<Path>) -> Result<(), IdentityError> {
        let text = format!("{IDENTITY_FILE_HEADER}\n{}\n", hex::encode(self.key.to_bytes()));
        secret_file::create(path.as_ref(), text.as_bytes())?;
        Ok(())
    }

    /// Loads the identity stored at `path`.
    ///
    /// Refuses a file that group or others may access (the error says which
    /// `chmod` fixes it) and anything that is not exactly the two-line format.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, IdentityError> {
        let path = path.as_ref();
        let contents = secret_file::read(path)?;
        let malformed = |reason: &str| IdentityError::Malformed { path: path.to_owned(), reason: reason.to_owned() };
        let text = std::str::from_utf8(&contents).map_err(|_| malformed("it is not UTF-8 text"))?;
        let mut lines = text.lines();
        if lines.next() != Some(IDENTITY_FILE_HEADER) {
            return Err(malformed("the first line is not the identity header"));
        }
        let secret = lines.next().ok_or_else(|| malformed("the secret key line is missing"))?;
        if lines.next().is_some() {
            return Err(malformed("there is more than the header and the secret key line"));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(secret, &mut bytes)
            .map_err(|_| malformed("the secret key line is not exactly 64 hex digits"))?;
        Ok(Self { key: SigningKey::from_bytes(&bytes) })
    }

    /// The public key that identifies this node to everyone else.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::of(&self.key)
    }

    /// The signing key, for signing envelopes.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("public_key", &self.public_key()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn seeded() -> Identity {
        Identity::generate(&mut ChaCha20Rng::seed_from_u64(7))
    }

    #[test]
    fn generation_is_driven_by_the_rng() {
        assert_eq!(seeded().public_key(), seeded().public_key());
        let other = Identity::generate(&mut ChaCha20Rng::seed_from_u64(8));
        assert_ne!(seeded().public_key(), other.public_key());
    }

    #[test]
    fn save_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trainer.key");
        let identity = seeded();
        identity.save_new(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(IDENTITY_FILE_HEADER), "{text}");
        let loaded = Identity::load(&path).unwrap();
        assert_eq!(loaded.public_key(), identity.public_key());
        assert_eq!(loaded.signing_key().to_bytes(), identity.signing_key().to_bytes());
    }

    #[test]
    fn create_makes_a_fresh_key_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let first = Identity::create(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let err = Identity::create(&path).unwrap_err();
        assert!(matches!(err, IdentityError::File(SecretFileError::AlreadyExists { .. })), "{err}");
        assert_eq!(Identity::load(&path).unwrap().public_key(), first.public_key(), "the first key survives");
    }

    #[test]
    fn a_world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        seeded().save_new(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load(&path).unwrap_err();
        assert!(matches!(err, IdentityError::File(SecretFileError::TooOpen { mode: 0o644, .. })), "{err}");
        let message = err.to_string();
        assert!(message.contains(&format!("chmod 600 {}", path.display())), "{message}");
    }

    #[test]
    fn malformed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good_secret = "ab".repeat(32);
        let cases = [
            ("empty", String::new()),
            ("wrong header", format!("ssh-ed25519 v1\n{good_secret}\n")),
            ("missing secret", format!("{IDENTITY_FILE_HEADER}\n")),
            ("short secret", format!("{IDENTITY_FILE_HEADER}\n{}\n", "ab".repeat(31))),
            ("not hex", format!("{IDENTITY_FILE_HEADER}\n{}\n", "zz".repeat(32))),
            ("trailing line", format!("{IDENTITY_FILE_HEADER}\n{good_secret}\nextra\n")),
        ];
        for (name, contents) in cases {
            let path = dir.path().join(name.replace(' ', "-"));
            secret_file::create(&path, contents.as_bytes()).unwrap();
            let err = Identity::load(&path).unwrap_err();
            assert!(matches!(err, IdentityError::Malformed { .. }), "{name}: {err}");
            assert!(err.to_string().contains(&path.display().to_string()), "{name}: {err}");
        }
        // The same secret in a well-formed file loads.
        let path = dir.path().join("good");
        secret_file::create(&path, format!("{IDENTITY_FILE_HEADER}\n{good_secret}\n").as_bytes()).unwrap();
        assert_eq!(Identity::load(&path).unwrap().signing_key().to_bytes(), [0xab; 32]);
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let identity = seeded();
        let debug = format!("{identity:?}");
        assert!(!debug.contains(&hex::encode(identity.signing_key().to_bytes())), "{debug}");
        assert!(debug.contains(&identity.public_key().to_string()), "{debug}");
    }
}
