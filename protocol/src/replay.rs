//! The replay guard: a time window for envelope timestamps, and a bounded
//! memory of the nonces seen inside it.
//!
//! An envelope is accepted only if its timestamp lies in
//! `[now − max_age, now + max_future_skew]` and its `(signer, nonce)` pair has
//! not been seen. A pair is remembered until its timestamp leaves the window,
//! after which the timestamp check alone refuses a replay, so memory is
//! bounded by the traffic of one window, and hard-capped on top of that.

use std::collections::{BTreeSet, HashMap, HashSet};

use thiserror::Error;

use crate::ids::Nonce;
use crate::keys::PublicKey;

/// Limits of a [`ReplayGuard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Oldest accepted timestamp, in milliseconds before `now`. Also how long
    /// a nonce is remembered.
    pub max_age_ms: u64,
    /// Newest accepted timestamp, in milliseconds after `now`: the clock skew
    /// tolerated between sender and receiver.
    pub max_future_skew_ms: u64,
    /// Most `(signer, nonce)` pairs remembered at once, over all signers.
    pub max_entries: usize,
    /// Most pairs remembered at once for a single signer, so that one busy or
    /// hostile key cannot use up [`ReplayConfig::max_entries`] for everyone.
    pub max_entries_per_signer: usize,
    /// Nothing signed before this instant (Unix ms) is accepted. A guard
    /// starts with no memory of the nonces an earlier run of the same server
    /// saw, so a server sets this to the time it started: an envelope seen
    /// before a restart cannot be replayed after it. Clients re-sign every
    /// retry, so they are not hurt. 0: no such bound.
    pub not_before_ms: u64,
}

impl Default for ReplayConfig {
    /// Five minutes of age, thirty seconds of skew, 100 000 entries (a few
    /// tens of MB at most), 1 000 per signer.
    fn default() -> Self {
        Self {
            max_age_ms: 5 * 60 * 1000,
            max_future_skew_ms: 30 * 1000,
            max_entries: 100_000,
            max_entries_per_signer: 1_000,
            not_before_ms: 0,
        }
    }
}

/// Remembers the nonces of recently accepted envelopes.
///
/// Pure bookkeeping: it never reads a clock; `now_ms` is passed in. If `now_ms`
/// goes backwards between calls, the latest value seen is used instead, so a
/// clock step back cannot reopen the window for a forgotten nonce.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    config: ReplayConfig,
    seen: HashSet<(PublicKey, Nonce)>,
    by_expiry: BTreeSet<(u64, PublicKey, Nonce)>,
    per_signer: HashMap<PublicKey, usize>,
    latest_now_ms: u64,
}

impl ReplayGuard {
    /// An empty guard with the given limits.
    pub fn new(config: ReplayConfig) -> Self {
        Self { config, seen: HashSet::new(), by_expiry: BTreeSet::new(), per_signer: HashMap::new(), latest_now_ms: 0 }
    }

    /// The guard's limits.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Number of `(signer, nonce)` pairs currently remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no pair is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Checks `timestamp_ms` against the window around `now_ms` without
    /// recording anything.
    pub fn check_timestamp(&self, timestamp_ms: u64, now_ms: u64) -> Result<(), ReplayError> {
        let now_ms = now_ms.max(self.latest_now_ms);
        if timestamp_ms.saturating_add(self.config.max_age_ms) < now_ms {
            return Err(ReplayError::Stale { timestamp_ms, now_ms, max_age_ms: self.config.max_age_ms });
        }
        if timestamp_ms < self.config.not_before_ms {
            return Err(ReplayError::SignedBeforeStart { timestamp_ms, not_before_ms: self.config.not_before_ms });
        }
        if timestamp_ms > now_ms.saturating_add(self.config.max_future_skew_ms) {
            return Err(ReplayError::FromFuture {
                timestamp_ms,
                now_ms,
                max_future_skew_ms: self.config.max_future_skew_ms,
            });
        }
        Ok(())
    }

    /// Accepts `(signer, nonce)` at `timestamp_ms` and remembers it, or says
    /// why not. Call this only once the envelope's signature has been
    /// verified, or forged envelopes could use up honest senders' nonces.
    pub fn check_and_record(
        &mut self,
        signer: &PublicKey,
        nonce: &Nonce,
        timestamp_ms: u64,
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        self.check_timestamp(timestamp_ms, now_ms)?;
        self.evict_expired(now_ms);
        let key = (*signer, *nonce);
        if self.seen.contains(&key) {
            return Err(ReplayError::Replayed { signer: *signer, nonce: *nonce });
        }
        if self.seen.len() >= self.config.max_entries {
            return Err(ReplayError::CacheFull { capacity: self.config.max_entries });
        }
        let count = self.per_signer.get(signer).copied().unwrap_or(0);
        if count >= self.config.max_entries_per_signer {
            return Err(ReplayError::SignerQuotaExceeded {
                signer: *signer,
                quota: self.config.max_entries_per_signer,
            });
        }
        self.seen.insert(key);
        self.by_expiry.insert((timestamp_ms.saturating_add(self.config.max_age_ms), *signer, *nonce));
        self.per_signer.insert(*signer, count + 1);
        Ok(())
    }

    /// Forgets every pair whose timestamp has left the window at `now_ms`.
    /// [`ReplayGuard::check_and_record`] does this itself; call it directly to
    /// release memory during quiet periods.
    pub fn evict_expired(&mut self, now_ms: u64) {
        let now_ms = now_ms.max(self.latest_now_ms);
        self.latest_now_ms = now_ms;
        // An entry expiring exactly at `now` is still inside the window.
        while let Some(&(expiry, signer, nonce)) = self.by_expiry.first() {
            if expiry >= now_ms {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&(signer, nonce));
            if let Some(count) = self.per_signer.get_mut(&signer) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_signer.remove(&signer);
                }
            }
        }
    }
}

/// Why the replay guard refused an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplayError {
    /// The timestamp is older than the window allows.
    #[error("envelope timestamp {timestamp_ms} ms is stale: now is {now_ms} ms and the limit is {max_age_ms} ms")]
    Stale {
        /// The envelope's timestamp.
        timestamp_ms: u64,
        /// The receiver's clock.
        now_ms: u64,
        /// The oldest age accepted.
        max_age_ms: u64,
    },
    /// The envelope was signed before this server started, so it may have
    /// been seen by the run before (whose nonces are forgotten).
    #[error(
        "envelope timestamp {timestamp_ms} ms is from before the server started at {not_before_ms} ms: sign it again"
    )]
    SignedBeforeStart {
        /// The envelope's timestamp.
        timestamp_ms: u64,
        /// [`ReplayConfig::not_before_ms`].
        not_before_ms: u64,
    },
    /// The timestamp is further in the future than clock skew explains.
    #[error(
        "envelope timestamp {timestamp_ms} ms is in the future: now is {now_ms} ms and at most {max_future_skew_ms} ms of skew is allowed"
    )]
    FromFuture {
        /// The envelope's timestamp.
        timestamp_ms: u64,
        /// The receiver's clock.
        now_ms: u64,
        /// The skew tolerated.
        max_future_skew_ms: u64,
    },
    /// This signer already used this nonce inside the window.
    #[error("nonce {nonce} from {signer} was already used")]
    Replayed {
        /// The signer.
        signer: PublicKey,
        /// The repeated nonce.
        nonce: Nonce,
    },
    /// The guard remembers as many nonces as it may; new envelopes are
    /// refused until old ones expire.
    #[error("replay cache is full ({capacity} entries); try again later")]
    CacheFull {
        /// [`ReplayConfig::max_entries`].
        capacity: usize,
    },
    /// This signer has sent as many envelopes inside the window as it may.
    #[error("{signer} has sent {quota} envelopes within the replay window; try again later")]
    SignerQuotaExceeded {
        /// The signer.
        signer: PublicKey,
        /// [`ReplayConfig::max_entries_per_signer`].
        quota: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: PublicKey = PublicKey::from_bytes([1; 32]);
    const BOB: PublicKey = PublicKey::from_bytes([2; 32]);

    fn nonce(n: u8) -> Nonce {
        Nonce::from_bytes([n; 16])
    }

    fn guard(max_entries: usize, per_signer: usize) -> ReplayGuard {
        ReplayGuard::new(ReplayConfig {
            max_age_ms: 1_000,
            max_future_skew_ms: 100,
            max_entries,
            max_entries_per_signer: per_signer,
            not_before_ms: 0,
        })
    }

    #[test]
    fn nothing_signed_before_the_start_is_accepted() {
        let start = 10_000;
        let mut g = ReplayGuard::new(ReplayConfig { not_before_ms: start, ..ReplayConfig::default() });
        // Inside the age window, but signed before this guard's server started:
        // the run before may have accepted it, and its nonces are gone.
        assert_eq!(
            g.check_and_record(&ALICE, &nonce(1), start - 1, start + 5),
            Err(ReplayError::SignedBeforeStart { timestamp_ms: start - 1, not_before_ms: start })
        );
        assert_eq!(g.check_and_record(&ALICE, &nonce(1), start, start + 5), Ok(()));
        assert_eq!(g.len(), 1, "only the accepted one is remembered");
    }

    #[test]
    fn window_edges() {
        let g = guard(10, 10);
        let now = 10_000;
        assert_eq!(g.check_timestamp(now - 1_000, now), Ok(()));
        assert_eq!(g.check_timestamp(now + 100, now), Ok(()));
        assert_eq!(
            g.check_timestamp(now - 1_001, now),
            Err(ReplayError::Stale { timestamp_ms: 8_999, now_ms: now, max_age_ms: 1_000 })
        );
        assert_eq!(
            g.check_timestamp(now + 101, now),
            Err(ReplayError::FromFuture { timestamp_ms: 10_101, now_ms: now, max_future_skew_ms: 100 })
        );
        // No overflow at the extremes.
        assert!(g.check_timestamp(u64::MAX, 0).is_err());
        assert_eq!(g.check_timestamp(u64::MAX, u64::MAX), Ok(()));
        assert!(g.check_timestamp(0, u64::MAX).is_err());
    }

    #[test]
    fn a_nonce_is_accepted_once_per_signer() {
        let mut g = guard(10, 10);
        assert_eq!(g.check_and_record(&ALICE, &nonce(1), 500, 500), Ok(()));
        assert_eq!(
            g.check_and_record(&ALICE, &nonce(1), 500, 600),
            Err(ReplayError::Replayed { signer: ALICE, nonce: nonce(1) })
        );
        // Another signer may use the same nonce: nonces are per key.
        assert_eq!(g.check_and_record(&BOB, &nonce(1), 500, 600), Ok(()));
        assert_eq!(g.len(), 2);
    }

    #[test]
    fn nonces_are_forgotten_once_their_timestamp_is_stale() {
        let mut g = guard(10, 10);
        g.check_and_record(&ALICE, &nonce(1), 1_000, 1_000).unwrap();
        g.evict_expired(2_000);
        assert_eq!(g.len(), 1, "still inside the window at its very edge");
        g.evict_expired(2_001);
        assert!(g.is_empty());
        // And the replay is now refused as stale instead.
        assert!(matches!(g.check_and_record(&ALICE, &nonce(1), 1_000, 2_001), Err(ReplayError::Stale { .. })));
    }

    #[test]
    fn a_clock_stepping_back_does_not_reopen_the_window() {
        let mut g = guard(10, 10);
        g.check_and_record(&ALICE, &nonce(1), 1_000, 1_000).unwrap();
        g.evict_expired(5_000);
        assert!(g.is_empty());
        assert!(matches!(g.check_and_record(&ALICE, &nonce(1), 1_000, 1_000), Err(ReplayError::Stale { .. })));
    }

    #[test]
    fn the_cache_is_capped() {
        let mut g = guard(3, 10);
        for n in 0..3 {
            g.check_and_record(&ALICE, &nonce(n), 1_000, 1_000).unwrap();
        }
        assert_eq!(g.check_and_record(&BOB, &nonce(9), 1_000, 1_000), Err(ReplayError::CacheFull { capacity: 3 }));
        // Once the old entries expire there is room again.
        assert_eq!(g.check_and_record(&BOB, &nonce(9), 2_500, 2_500), Ok(()));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn each_signer_is_capped() {
        let mut g = guard(100, 2);
        g.check_and_record(&ALICE, &nonce(1), 1_000, 1_000).unwrap();
        g.check_and_record(&ALICE, &nonce(2), 1_000, 1_000).unwrap();
        assert_eq!(
            g.check_and_record(&ALICE, &nonce(3), 1_000, 1_000),
            Err(ReplayError::SignerQuotaExceeded { signer: ALICE, quota: 2 })
        );
        assert_eq!(g.check_and_record(&BOB, &nonce(3), 1_000, 1_000), Ok(()));
        g.evict_expired(3_000);
        assert!(g.is_empty());
        assert!(g.per_signer.is_empty(), "per-signer counts are released too");
    }

    #[test]
    fn refusals_record_nothing() {
        let mut g = guard(10, 10);
        assert!(g.check_and_record(&ALICE, &nonce(1), 0, 10_000).is_err());
        assert!(g.check_and_record(&ALICE, &nonce(1), 20_000, 10_000).is_err());
        assert!(g.is_empty());
    }
}
