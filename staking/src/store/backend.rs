//! Which database a configured URL names: the one reading of a database URL
//! that the ledger and the coordinator's store (which share the database)
//! both use to pick their backend.

use thiserror::Error;

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: `sqlite:…` (a file, or `sqlite::memory:`).
    Sqlite,
    /// PostgreSQL: `postgres://…` or `postgresql://…`.
    Postgres,
}

/// A URL whose scheme names no backend this build knows. Only the scheme is
/// kept: the rest of a URL may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unsupported database URL scheme `{0}` (use sqlite: or postgres://)")]
pub struct UnsupportedScheme(pub String);

impl Backend {
    /// The backend `url` names.
    pub fn of(url: &str) -> Result<Self, UnsupportedScheme> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
            Err(UnsupportedScheme(scheme.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_name_backends_and_errors_keep_only_the_scheme() {
        assert_eq!(Backend::of("sqlite::memory:"), Ok(Backend::Sqlite));
        assert_eq!(Backend::of("sqlite:///var/lib/starling.db"), Ok(Backend::Sqlite));
        assert_eq!(Backend::of("postgres://u:p@h/db"), Ok(Backend::Postgres));
        assert_eq!(Backend::of("postgresql://h/db"), Ok(Backend::Postgres));
        let refused = Backend::of("mysql://u:secret@h/db").unwrap_err();
        assert_eq!(refused, UnsupportedScheme("mysql".into()));
        assert!(!refused.to_string().contains("secret"));
        assert_eq!(Backend::of("no-scheme").unwrap_err().0, "no-scheme");
    }
}
