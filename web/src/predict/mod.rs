//! What the prediction route needs besides the handler: reading inputs from
//! JSON or a PNG, verifying a paid call's envelope, and the rate limits,
//! with the state a router keeps for them.

pub(crate) mod image;
pub(crate) mod json;
pub(crate) mod rate_limit;
pub(crate) mod signed;

use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use starling_protocol::{PublicKey, Verifier};

use crate::config::WebConfig;
use rate_limit::RateLimiter;

/// The prediction route's state, one per router: the envelope verifier
/// (whose replay memory must outlive requests) and the two rate limiters.
#[derive(Debug)]
pub(crate) struct Guards {
    /// Verifies `Starling-Envelope` headers and remembers their nonces.
    pub(crate) verifier: Mutex<Verifier>,
    /// Unsigned calls per client address.
    anonymous: Mutex<RateLimiter<IpAddr>>,
    /// Signed calls per identity.
    signed: Mutex<RateLimiter<PublicKey>>,
}

impl Guards {
    /// Fresh state from the router's settings, for a router starting now:
    /// paid calls signed before now are refused (see [`signed::verifier`]).
    pub(crate) fn new(config: &WebConfig) -> Self {
        Self {
            verifier: Mutex::new(signed::verifier(config, unix_ms())),
            anonymous: Mutex::new(RateLimiter::new(config.anonymous_rate, config.rate_limit_max_clients)),
            signed: Mutex::new(RateLimiter::new(config.signed_rate, config.rate_limit_max_clients)),
        }
    }

    /// Takes one unsigned call from `address`'s bucket, or says how long to wait.
    pub(crate) fn admit_anonymous(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        self.anonymous.lock().unwrap_or_else(PoisonError::into_inner).check(client(address), now)
    }

    /// Takes one signed call from `key`'s bucket, or says how long to wait.
    pub(crate) fn admit_signed(&self, key: PublicKey, now: Instant) -> Result<(), Duration> {
        self.signed.lock().unwrap_or_else(PoisonError::into_inner).check(key, now)
    }
}

/// The server's clock in Unix milliseconds, for envelope freshness.
pub(crate) fn unix_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// The rate-limited client behind `address`: the address itself for IPv4,
/// its /64 network for IPv6 (one subscriber usually holds a whole /64, so
/// limiting single addresses there would limit nothing). IPv4 addresses
/// mapped into IPv6 count as IPv4. The coordinator's QUIC connection caps
/// count by it too.
pub fn client(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let network = v6.to_bits() & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from_bits(network))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_their_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client(a), client(b));
        assert_ne!(client(a), client(c));
        assert_eq!(client(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client(v4), v4);
        assert_eq!(client("::ffff:192.0.2.7".parse().unwrap()), v4);
    }
}
