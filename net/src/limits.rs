//! QUIC transport settings shared by servers and clients.

use std::sync::Arc;
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};

use crate::endpoint_error::EndpointError;

/// Transport limits for a Starling endpoint. [`Limits::default`] suits the
/// coordinator and its clients; every field says why its default is what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// A connection with no traffic for this long is dropped.
    ///
    /// Default 30 s, the value RFC 9308 § 3.2 recommends: long enough to ride
    /// out a brief network outage, short enough that a vanished trainer frees
    /// its state quickly. Keep-alives keep idle but healthy connections open.
    pub idle_timeout: Duration,
    /// How often an otherwise idle connection sends a keep-alive, or `None`
    /// for never.
    ///
    /// Default 10 s: a third of the idle timeout, so two lost keep-alives in a
    /// row still do not drop the connection, and well inside the ~30 s after
    /// which many NATs forget a UDP mapping (a trainer training for minutes
    /// between requests would otherwise lose its path).
    pub keep_alive_interval: Option<Duration>,
    /// How many bidirectional (request/response) streams the peer may have open at once.
    ///
    /// Default 64: control messages are small and short-lived, so this only
    /// bounds how much work one peer can queue on us.
    pub max_concurrent_bidi_streams: u32,
    /// How many unidirectional (blob) streams the peer may have open at once.
    ///
    /// Default 8: each may carry a whole model, so this bounds the memory a
    /// single peer can make us buffer to about `receive_window`.
    pub max_concurrent_uni_streams: u32,
    /// Bytes one stream may have in flight before the receiver reads them.
    ///
    /// Default 8 MiB: more than a whole 6.65 MB model update, so on a fast
    /// path (loopback, LAN) the sender never stalls waiting for flow-control
    /// credit; it is also the bandwidth-delay product of 1 Gbit/s at 64 ms.
    pub stream_receive_window: u32,
    /// Bytes all streams of one connection together may have in flight.
    ///
    /// Default 16 MiB: two full-speed blob streams, or one blob plus control
    /// traffic. Memory per connection is bounded by this, not by the number
    /// of streams.
    pub receive_window: u32,
    /// Bytes we buffer for sending per connection before writes wait.
    ///
    /// Default 16 MiB, matching `receive_window`: a larger buffer could not be
    /// sent any faster, a smaller one would stall a full-window transfer.
    pub send_window: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            keep_alive_interval: Some(Duration::from_secs(10)),
            max_concurrent_bidi_streams: 64,
            max_concurrent_uni_streams: 8,
            stream_receive_window: 8 * 1024 * 1024,
            receive_window: 16 * 1024 * 1024,
            send_window: 16 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// What a Starling coordinator accepts: [`Limits::default`], except
    /// that peers may open no unidirectional stream. The wire protocol
    /// sends every request, and any blob with it, on one bidirectional
    /// stream; a unidirectional stream would never be read, and each one a
    /// peer opened would park up to a stream window of its bytes.
    pub fn coordinator() -> Self {
        Self { max_concurrent_uni_streams: 0, ..Self::default() }
    }

    /// The quinn transport configuration these limits describe.
    pub fn transport_config(&self) -> Result<Arc<TransportConfig>, EndpointError> {
        let idle = IdleTimeout::try_from(self.idle_timeout)
            .map_err(|_| EndpointError::InvalidLimits { reason: "idle_timeout is too large" })?;
        if self.keep_alive_interval.is_some_and(|every| every >= self.idle_timeout) {
            return Err(EndpointError::InvalidLimits {
                reason: "keep_alive_interval must be shorter than idle_timeout, or idle connections drop",
            });
        }
        let mut config = TransportConfig::default();
        config
            .max_idle_timeout(Some(idle))
            .keep_alive_interval(self.keep_alive_interval)
            .max_concurrent_bidi_streams(VarInt::from_u32(self.max_concurrent_bidi_streams))
            .max_concurrent_uni_streams(VarInt::from_u32(self.max_concurrent_uni_streams))
            .stream_receive_window(VarInt::from_u32(self.stream_receive_window))
            .receive_window(VarInt::from_u32(self.receive_window))
            .send_window(self.send_window);
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_a_whole_model_update_in_one_stream_window() {
        let limits = Limits::default();
        assert!(limits.stream_receive_window as usize > 1_663_370 * 4);
        assert!(limits.receive_window >= limits.stream_receive_window);
        assert!(limits.transport_config().is_ok());
    }

    #[test]
    fn a_coordinator_takes_no_unidirectional_streams() {
        let limits = Limits::coordinator();
        assert_eq!(limits.max_concurrent_uni_streams, 0);
        assert_eq!(Limits { max_concurrent_uni_streams: 8, ..limits }, Limits::default());
        assert!(limits.transport_config().is_ok());
    }

    #[test]
    fn keep_alive_must_beat_the_idle_timeout() {
        let limits = Limits { keep_alive_interval: Some(Duration::from_secs(30)), ..Limits::default() };
        let err = limits.transport_config().unwrap_err();
        assert!(matches!(err, EndpointError::InvalidLimits { .. }), "{err}");
        let no_keep_alive = Limits { keep_alive_interval: None, ..Limits::default() };
        assert!(no_keep_alive.transport_config().is_ok());
    }
}
