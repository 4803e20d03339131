//! The HTTP side's settings, as data (STYLE §7): the coordinator embeds this
//! struct in its own configuration.

use serde::{Deserialize, Serialize};

/// Limits of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Largest request body accepted, in bytes; longer ones get `413`. The
    /// API is read-only today, so this only stops clients from streaming
    /// junk at us.
    pub max_body_bytes: usize,
    /// Items per page when the client gives no `?limit=`.
    pub default_page_limit: u32,
    /// Most items per page; larger `?limit=` values are cut to this.
    pub max_page_limit: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self { max_body_bytes: 64 * 1024, default_page_limit: 50, max_page_limit: 200 }
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
    }
}
