//! Cursor pagination for every list the API returns: the protocol's
//! [`Page`], [`PageRequest`] and [`Cursor`], the same types the ledger's and
//! the coordinator's stores page with, so a cursor goes from a store to a
//! client and back unchanged. `?cursor=` is parsed with [`Cursor`]'s
//! `FromStr` ([`InvalidCursor`] otherwise) and `?limit=` checked by the
//! router against [`WebConfig`](crate::WebConfig)'s limits.

pub use starling_protocol::{Cursor, InvalidCursor, Page, PageRequest};
