//! Capped exponential backoff with seeded jitter, for retries and polling.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How long to wait between attempts: `initial · multiplier^n`, capped at
/// `max`, each delay shortened by a random share of up to `jitter` of
/// itself so that many clients knocked off by one outage do not come back
/// in lock-step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay, before jitter.
    pub max: Duration,
    /// Growth per attempt, `≥ 1`.
    pub multiplier: f64,
    /// Share of each delay that may be cut at random, in `[0, 1]`; `0`
    /// waits exactly, `1` anywhere between zero and the full delay ("full
    /// jitter").
    pub jitter: f64,
    /// Most delays handed out before giving up; `None` retries for ever.
    pub max_attempts: Option<u32>,
}

impl Backoff {
    /// Retries of failed requests: 250 ms doubling to 30 s, half jitter,
    /// 12 attempts (about four minutes): long enough to ride out a
    /// coordinator restart, short enough to report a dead one.
    pub const RETRY: Self = Self {
        initial: Duration::from_millis(250),
        max: Duration::from_secs(30),
        multiplier: 2.0,
        jitter: 0.5,
        max_attempts: Some(12),
    };

    /// Polling for a round to change: 1 s growing by half to 15 s, with
    /// jitter, for ever.
    pub const POLL: Self = Self {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(15),
        multiplier: 1.5,
        jitter: 0.3,
        max_attempts: None,
    };

    /// A fresh sequence of delays whose jitter is drawn from `seed`.
    pub fn start(&self, seed: u64) -> BackoffState {
        BackoffState { policy: *self, attempt: 0, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The `attempt`-th delay (from 0) before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(attempt.min(i32::MAX as u32) as i32);
        let secs = self.initial.as_secs_f64() * factor;
        if secs.is_finite() && secs < self.max.as_secs_f64() { Duration::from_secs_f64(secs) } else { self.max }
    }
}

/// A running sequence of [`Backoff`] delays.
#[derive(Debug, Clone)]
pub struct BackoffState {
    policy: Backoff,
    attempt: u32,
    rng: ChaCha8Rng,
}

impl BackoffState {
    /// The next delay, or `None` once [`Backoff::max_attempts`] are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.policy.max_attempts.is_some_and(|max| self.attempt >= max) {
            return None;
        }
        let base = self.policy.base_delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let jitter = self.policy.jitter.clamp(0.0, 1.0);
        let cut = if jitter > 0.0 { self.rng.random_range(0.0..jitter) } else { 0.0 };
        Some(base.mul_f64(1.0 - cut))
    }

    /// Delays handed out so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over from [`Backoff::initial`] (after a success, or a change).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXACT: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(1000),
        multiplier: 2.0,
        jitter: 0.0,
        max_attempts: Some(6),
    };

    #[test]
    fn delays_double_up_to_the_cap_then_stop() {
        let mut state = EXACT.start(1);
        let delays: Vec<u64> = std::iter::from_fn(|| state.next_delay()).map(|d| d.as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(state.attempts(), 6);
        state.reset();
        assert_eq!(state.next_delay(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn jitter_only_shortens_and_is_reproducible() {
        let policy = Backoff { jitter: 0.5, max_attempts: Some(50), ..EXACT };
        let draw = |seed| {
            let mut state = policy.start(seed);
            std::iter::from_fn(move || state.next_delay()).collect::<Vec<_>>()
        };
        let first = draw(7);
        assert_eq!(first, draw(7), "the same seed gives the same delays");
        assert_ne!(first, draw(8), "another seed gives others");
        for (n, delay) in first.iter().enumerate() {
            let base = policy.base_delay(n as u32);
            assert!(*delay <= base && *delay >= base / 2, "{delay:?} against {base:?}");
        }
    }

    #[test]
    fn unbounded_policies_never_give_up_and_never_overflow() {
        let mut state = Backoff { max_attempts: None, ..EXACT }.start(0);
        for _ in 0..10_000 {
            assert!(state.next_delay().unwrap() <= EXACT.max);
        }
        assert_eq!(Backoff::POLL.base_delay(u32::MAX), Backoff::POLL.max);
    }
}
