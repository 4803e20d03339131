//! Token buckets per client (an address or an identity), in bounded memory.
//!
//! Pure bookkeeping (STYLE §1): the caller passes `now`, so the tests need
//! no clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// One client's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Calls left, at `updated`.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

/// Token buckets for at most `max_clients` keys at once.
///
/// A client first seen gets a full bucket. When the table is full, buckets
/// that have refilled completely are dropped first (forgetting them changes
/// nothing), then the least recently used eighth: those clients start over
/// with a full bucket, which under a flood of new addresses is the price of
/// bounded memory.
#[derive(Debug)]
pub(crate) struct RateLimiter<K> {
    limit: RateLimit,
    max_clients: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// An empty table with `limit` per client, tracking at most
    /// `max_clients` (at least 1) clients.
    pub(crate) fn new(limit: RateLimit, max_clients: usize) -> Self {
        Self { limit, max_clients: max_clients.max(1), buckets: HashMap::new() }
    }

    /// Takes one call from `key`'s bucket at `now`, or says how long until
    /// one is available.
    pub(crate) fn check(&mut self, key: K, now: Instant) -> Result<(), Duration> {
        if self.limit.per_minute == 0 {
            return Ok(());
        }
        let (capacity, rate) = (self.capacity(), self.per_second());
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_clients {
            self.make_room(now);
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket { tokens: capacity, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = bucket.updated.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Number of clients tracked.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Calls a full bucket holds.
    fn capacity(&self) -> f64 {
        f64::from(self.limit.burst.max(1))
    }

    /// Calls added back per second.
    fn per_second(&self) -> f64 {
        f64::from(self.limit.per_minute) / 60.0
    }

    /// Frees at least one slot: drops refilled buckets, then, if none was,
    /// the least recently used eighth of the table (at least one), so a
    /// flood of new keys costs O(1) amortised per key.
    fn make_room(&mut self, now: Instant) {
        let (capacity, rate) = (self.capacity(), self.per_second());
        self.buckets.retain(|_, bucket| {
            bucket.tokens + now.saturating_duration_since(bucket.updated).as_secs_f64() * rate < capacity
        });
        if self.buckets.len() < self.max_clients {
            return;
        }
        let evict = (self.buckets.len() / 8).max(1);
        let mut ages: Vec<Instant> = self.buckets.values().map(|bucket| bucket.updated).collect();
        let (_, &mut cutoff, _) = ages.select_nth_unstable(evict - 1);
        let mut left = evict;
        self.buckets.retain(|_, bucket| {
            let drop = left > 0 && bucket.updated <= cutoff;
            left -= usize::from(drop);
            !drop
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32, max_clients: usize) -> RateLimiter<u32> {
        RateLimiter::new(RateLimit { per_minute, burst }, max_clients)
    }

    #[test]
    fn burst_then_refill_at_the_rate() {
        let mut limiter = limiter(60, 3, 10);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(1, start), Ok(()));
        }
        let wait = limiter.check(1, start).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-9, "{wait:?}");
        // Half a second later half a token is back: still refused, half a second to go.
        let wait = limiter.check(1, start + Duration::from_millis(500)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert_eq!(limiter.check(1, start + Duration::from_secs(1)), Ok(()));
        // Other clients have their own bucket.
        assert_eq!(limiter.check(2, start), Ok(()));
        // A long pause refills to the burst, not beyond.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check(1, later), Ok(()));
        }
        assert!(limiter.check(1, later).is_err());
    }

    #[test]
    fn zero_rate_is_unlimited_and_zero_burst_is_one() {
        let mut unlimited = limiter(0, 0, 1);
        let now = Instant::now();
        for key in 0..1_000 {
            assert_eq!(unlimited.check(key % 3, now), Ok(()));
        }
        assert_eq!(unlimited.len(), 0, "nothing tracked");
        let mut one = limiter(60, 0, 10);
        assert_eq!(one.check(1, now), Ok(()));
        assert!(one.check(1, now).is_err());
    }

    #[test]
    fn memory_stays_bounded_by_evicting_the_least_recently_used() {
        // One call a minute: nothing refills during the flood.
        let mut limiter = limiter(1, 2, 16);
        let start = Instant::now();
        limiter.check(0, start).unwrap();
        limiter.check(0, start).unwrap();
        assert!(limiter.check(0, start).is_err());
        for key in 1..10_000 {
            limiter.check(key, start + Duration::from_millis(u64::from(key))).unwrap();
            assert!(limiter.len() <= 16);
        }
        // Client 0 was the least recently used, so it was forgotten: it starts over.
        assert_eq!(limiter.check(0, start + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn refilled_buckets_are_dropped_before_busy_ones() {
        let mut limiter = limiter(60, 3, 4);
        let start = Instant::now();
        // Client 1, the least recently used, empties its bucket (3 s to refill).
        for _ in 0..3 {
            limiter.check(1, start).unwrap();
        }
        // Clients 2 to 4 make one call each half a second later (refilled 1 s after).
        for key in 2..5 {
            limiter.check(key, start + Duration::from_millis(500)).unwrap();
        }
        let now = start + Duration::from_secs(2);
        limiter.check(100, now).unwrap();
        assert_eq!(limiter.len(), 2, "clients 2 to 4 were idle and dropped");
        // Client 1 kept its state: two tokens back, not three.
        assert_eq!(limiter.check(1, now), Ok(()));
        assert_eq!(limiter.check(1, now), Ok(()));
        assert!(limiter.check(1, now).is_err());
    }
}
