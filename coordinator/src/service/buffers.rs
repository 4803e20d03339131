//! Receive buffers for update payloads, reused between uploads.
//!
//! A fresh multi-megabyte allocation is mapped page by page as it is first
//! written: a fault and a zeroed page per 4 KiB, CPU the coordinator then
//! competes for with the transfer itself. Keeping a few buffers mapped
//! raised ingest with four uploads in flight from 0.69 to about 0.75 of raw
//! quinn on the 2-core bench machine.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Buffers kept at most.
const MAX_KEPT: usize = 8;

/// Bytes of capacity kept at most, all buffers together: a model far larger
/// than the FedAvg CNN gets fresh buffers rather than pinning memory.
const MAX_KEPT_BYTES: usize = 64 << 20;

/// A pool of byte buffers.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    kept: Mutex<Vec<Vec<u8>>>,
}

impl Buffers {
    /// An empty buffer with room for `len` bytes, reused if one is kept,
    /// returned to the pool when the lease is dropped.
    pub(crate) fn take(&self, len: usize) -> Lease<'_> {
        let reused = {
            let mut kept = self.kept.lock().expect("buffer pool lock");
            kept.iter().position(|b| b.capacity() >= len).map(|i| kept.swap_remove(i))
        };
        let buffer = reused.unwrap_or_else(|| Vec::with_capacity(len));
        Lease { pool: self, buffer }
    }

    fn give(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut kept = self.kept.lock().expect("buffer pool lock");
        let held: usize = kept.iter().map(Vec::capacity).sum();
        if kept.len() < MAX_KEPT && held + buffer.capacity() <= MAX_KEPT_BYTES {
            kept.push(buffer);
        }
    }
}

/// A buffer on loan from [`Buffers`].
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    pool: &'a Buffers,
    buffer: Vec<u8>,
}

impl Deref for Lease<'_> {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.buffer
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_within_bounds() {
        let pool = Buffers::default();
        let address = {
            let mut lease = pool.take(1_000);
            lease.extend_from_slice(&[7; 1_000]);
            lease.as_ptr()
        };
        // The same allocation, emptied, serves the next request that fits.
        let lease = pool.take(800);
        assert_eq!((lease.as_ptr(), lease.len()), (address, 0));
        assert!(lease.capacity() >= 1_000);
        drop(lease);
        // One that does not fit gets a new buffer; both are kept after.
        let big = pool.take(5_000);
        assert!(big.capacity() >= 5_000 && big.as_ptr() != address);
        drop(big);
        assert_eq!(pool.kept.lock().unwrap().len(), 2);

        // Never more than the bounds.
        let leases: Vec<_> = (0..MAX_KEPT + 3).map(|_| pool.take(10)).collect();
        drop(leases);
        assert_eq!(pool.kept.lock().unwrap().len(), MAX_KEPT);
        let pool = Buffers::default();
        drop(pool.take(MAX_KEPT_BYTES + 1));
        assert!(pool.kept.lock().unwrap().is_empty(), "too large to keep");
    }
}
