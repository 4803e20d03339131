//! How many QUIC connections each client, and everyone together, may hold
//! open: what the accept loop asks before it keeps any state for a peer. A
//! client is an IPv4 address or an IPv6 /64 network
//! ([`starling_web::client_network`]): one subscriber holds a whole /64, so
//! counting single IPv6 addresses would limit nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// What to do with a connection attempt.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Refuse it: its address, or the coordinator, holds as many as it may.
    Refuse,
    /// Ask the client to prove its address first (a QUIC retry): the
    /// coordinator is past half its connections and the address is unproven.
    Retry,
    /// Take it; the count is held until the guard is dropped.
    Accept(ConnectionGuard),
}

/// Open connections by address, with the limits they are held to.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    inner: Arc<Mutex<Counts>>,
    per_address: usize,
    total: usize,
}

#[derive(Debug, Default)]
struct Counts {
    by_address: HashMap<IpAddr, usize>,
    open: usize,
}

impl Connections {
    /// At most `per_address` open connections per IP address and `total`
    /// in all.
    pub(crate) fn new(per_address: usize, total: usize) -> Self {
        Self { inner: Arc::default(), per_address, total }
    }

    /// Whether a connection from `address`, which has (`validated`) or has
    /// not yet proven it owns that address, may go ahead.
    pub(crate) fn admit(&self, address: IpAddr, validated: bool) -> Admission {
        let address = starling_web::client_network(address);
        let mut counts = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = counts.by_address.get(&address).copied().unwrap_or(0);
        if mine >= self.per_address || counts.open >= self.total {
            return Admission::Refuse;
        }
        if !validated && counts.open >= self.total / 2 {
            return Admission::Retry;
        }
        counts.open += 1;
        counts.by_address.insert(address, mine + 1);
        Admission::Accept(ConnectionGuard { connections: self.clone(), address })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).open
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    connections: Connections,
    address: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self.connections.inner.lock().unwrap_or_else(PoisonError::into_inner);
        counts.open = counts.open.saturating_sub(1);
        if let Some(count) = counts.by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn accepted(admission: Admission) -> ConnectionGuard {
        match admission {
            Admission::Accept(guard) => guard,
            other => panic!("expected to accept, got {other:?}"),
        }
    }

    #[test]
    fn one_address_holds_at_most_its_share_and_a_closed_connection_frees_it() {
        let connections = Connections::new(2, 100);
        let first = accepted(connections.admit(ip(1), true));
        let _second = accepted(connections.admit(ip(1), true));
        assert!(matches!(connections.admit(ip(1), true), Admission::Refuse));
        // Other addresses are not held back by it.
        let _other = accepted(connections.admit(ip(2), true));
        drop(first);
        let _third = accepted(connections.admit(ip(1), true));
        assert_eq!(connections.open(), 3);
    }

    #[test]
    fn an_ipv6_network_counts_as_one_client() {
        let connections = Connections::new(1, 100);
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, last]);
        let _held = accepted(connections.admit(v6(1), true));
        assert!(matches!(connections.admit(v6(2), true), Admission::Refuse), "another address of the same /64");
        let _other = accepted(connections.admit(IpAddr::from([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1]), true));
    }

    #[test]
    fn past_half_the_total_an_unproven_address_must_retry_and_past_all_is_refused() {
        let connections = Connections::new(10, 4);
        let held: Vec<_> = (1..=2).map(|n| accepted(connections.admit(ip(n), false))).collect();
        assert!(matches!(connections.admit(ip(3), false), Admission::Retry));
        let mut held = held;
        held.push(accepted(connections.admit(ip(3), true)));
        held.push(accepted(connections.admit(ip(4), true)));
        assert!(matches!(connections.admit(ip(5), true), Admission::Refuse));
        held.clear();
        assert_eq!(connections.open(), 0, "every guard gave its place back");
        let _fresh = accepted(connections.admit(ip(5), false));
    }
}
