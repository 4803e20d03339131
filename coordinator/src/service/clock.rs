//! Where the service reads the time.
//!
//! The round machine never reads a clock: the service hands it `now`. The
//! service itself reads this [`Clock`], passed in through
//! [`ServiceConfig::clock`](super::ServiceConfig::clock), so a test can run
//! whole rounds in memory on a [`ManualClock`] it moves by hand (deadlines
//! pass when the test says so, not after a sleep), and a production
//! coordinator reads the system clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::round::UnixMillis;

/// The service's source of time.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The operating system's wall clock.
    #[default]
    System,
    /// A clock that stands still until its [`ManualClock`] moves it.
    Manual(ManualClock),
}

impl Clock {
    /// Milliseconds since the Unix epoch, now. A system clock set before
    /// 1970 reads as the epoch.
    pub fn now(&self) -> UnixMillis {
        match self {
            Self::System => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                UnixMillis::new(ms)
            }
            Self::Manual(clock) => clock.now(),
        }
    }
}

/// A clock moved by hand; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: UnixMillis) -> Self {
        Self(Arc::new(AtomicU64::new(at.get())))
    }

    /// The time it shows.
    pub fn now(&self) -> UnixMillis {
        UnixMillis::new(self.0.load(Ordering::SeqCst))
    }

    /// Moves it forward by `by` (saturating at the end of time).
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| Some(now.saturating_add(ms)));
    }

    /// The service clock that reads this one.
    pub fn clock(&self) -> Clock {
        Clock::Manual(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let manual = ManualClock::new(UnixMillis::new(1_000));
        let clock = manual.clock();
        assert_eq!(clock.now(), UnixMillis::new(1_000));
        manual.advance(Duration::from_millis(250));
        assert_eq!(clock.now(), UnixMillis::new(1_250));
        manual.clone().advance(Duration::from_secs(u64::MAX));
        assert_eq!(clock.now(), UnixMillis::new(u64::MAX));
    }

    #[test]
    fn the_system_clock_reads_the_present() {
        // 2024-01-01T00:00:00Z: any machine running this is past it.
        assert!(Clock::System.now() > UnixMillis::new(1_704_067_200_000));
    }
}
