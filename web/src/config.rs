//! The HTTP side's settings, as data (STYLE §7): the coordinator embeds this
//! struct in its own configuration.

use serde::{Deserialize, Serialize};

/// Limits of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Largest request body accepted by every route but the prediction
    /// route, in bytes; longer ones get `413`. Those routes read no body, so
    /// this only stops clients from streaming junk at us.
    pub max_body_bytes: usize,
    /// Items per page when the client gives no `?limit=`.
    pub default_page_limit: u32,
    /// Most items per page; larger `?limit=` values are cut to this.
    pub max_page_limit: u32,
    /// Largest body of `POST /api/models/{id}/versions/{v}/predict`, in
    /// bytes (`413` above). The default of 4 MiB holds a JSON batch of 256
    /// inputs of 784 values written at full precision.
    pub max_predict_body_bytes: usize,
    /// Most inputs in one unsigned prediction call; more are refused with
    /// `400` (sign the request to send bigger batches).
    pub anonymous_max_inputs: u32,
    /// Prediction calls per client address for unsigned callers.
    pub anonymous_rate: RateLimit,
    /// Prediction calls per identity for signed callers.
    pub signed_rate: RateLimit,
    /// Most addresses (and, separately, identities) whose call rate is
    /// tracked at once. When full, idle entries are forgotten first, then
    /// the least recently seen; memory stays bounded whatever the traffic.
    pub rate_limit_max_clients: usize,
    /// Oldest signed prediction request accepted, in milliseconds before
    /// the server's clock; also how long its nonce is remembered.
    pub envelope_max_age_ms: u64,
    /// Newest signed prediction request accepted, in milliseconds after the
    /// server's clock: the clock skew tolerated.
    pub envelope_max_future_skew_ms: u64,
    /// Most nonces of signed prediction requests remembered at once; when
    /// full, new signed calls get `503` until old ones leave the window.
    pub replay_max_nonces: usize,
    /// Most nonces remembered for one signer, so that one key cannot fill
    /// the memory for everyone; above it the signer gets `429`.
    pub replay_max_nonces_per_signer: usize,
}

/// A token bucket: `burst` calls at once, refilled at `per_minute` calls a
/// minute. A client that finds its bucket empty gets `429 Too Many Requests`
/// with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Calls added back per minute; `0` turns the limit off.
    pub per_minute: u32,
    /// Calls a client may make at once after being idle (the bucket's size);
    /// `0` counts as 1.
    pub burst: u32,
}

impl RateLimit {
    /// No limit at all (`per_minute == 0`).
    pub const UNLIMITED: Self = Self { per_minute: 0, burst: 0 };
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            default_page_limit: 50,
            max_page_limit: 200,
            max_predict_body_bytes: 4 * 1024 * 1024,
            anonymous_max_inputs: 4,
            anonymous_rate: RateLimit { per_minute: 20, burst: 5 },
            signed_rate: RateLimit { per_minute: 120, burst: 20 },
            rate_limit_max_clients: 10_000,
            envelope_max_age_ms: 5 * 60 * 1000,
            envelope_max_future_skew_ms: 30 * 1000,
            replay_max_nonces: 100_000,
            replay_max_nonces_per_signer: 1_000,
        }
    }
}

impl WebConfig {
    /// The page size for a requested `limit`: the default when absent,
    /// capped at the maximum. The caller refuses zero before asking.
    pub(crate) fn page_limit(&self, requested: Option<u32>) -> u32 {
        let max = self.max_page_limit.max(1);
        requested.unwrap_or(self.default_page_limit).clamp(1, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits_default_and_cap() {
        let config = WebConfig::default();
        assert_eq!(config.page_limit(None), 50);
        assert_eq!(config.page_limit(Some(7)), 7);
        assert_eq!(config.page_limit(Some(10_000)), 200);
        let odd = WebConfig { max_page_limit: 0, default_page_limit: 0, ..WebConfig::default() };
        assert_eq!(odd.page_limit(None), 1);
    }

    #[test]
    fn partial_config_fills_in_defaults() {
        let config: WebConfig = serde_json::from_str(r#"{"max_page_limit": 20}"#).unwrap();
        assert_eq!(config, WebConfig { max_page_limit: 20, ..WebConfig::default() });
        assert!(serde_json::from_str::<WebConfig>(r#"{"max_page": 20}"#).is_err());
        let config: WebConfig =
            serde_json::from_str(r#"{"anonymous_rate": {"per_minute": 0, "burst": 0}, "anonymous_max_inputs": 2}"#)
                .unwrap();
        assert_eq!(config.anonymous_rate, RateLimit::UNLIMITED);
        assert_eq!(config.anonymous_max_inputs, 2);
        assert!(serde_json::from_str::<WebConfig>(r#"{"signed_rate": {"per_minute": 1}}"#).is_err());
    }
}
