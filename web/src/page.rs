//! Cursor pagination for every list the API returns.
//!
//! Keyset pagination: a [`Cursor`] names the last item of a page and the
//! read model continues strictly after it, so a page stays correct while new
//! rows are written and costs the same however deep it is. The ledger's read
//! models (`starling_staking::views`) page the same way, so their cursors map
//! one to one.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// Where a page ends: clients pass it back as `?cursor=` for the next page.
///
/// Opaque to clients: its value means nothing outside the list it came
/// from. It travels as a decimal string (in JSON too, so JavaScript clients
/// never round it through a float).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(u64);

impl Cursor {
    /// Wraps the read model's raw position (e.g. the last task id, or the
    /// last journal entry's sequence number).
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw position, for the read model to continue after.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The text is not a cursor this API handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("not a cursor returned by this API")]
pub struct InvalidCursor;

impl FromStr for Cursor {
    type Err = InvalidCursor;

    /// Reads the decimal digits [`Cursor`]'s `Display` writes; anything else
    /// (signs, spaces, overflow) is refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidCursor);
        }
        text.parse().map(Self).map_err(|_| InvalidCursor)
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Which page of a list to read. Built by the router from `?cursor=&limit=`,
/// already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Start strictly after this cursor; `None` for the first page.
    pub after: Option<Cursor>,
    /// Most items wanted, `1 ..= WebConfig::max_page_limit` (the router caps
    /// larger requests and refuses zero).
    pub limit: u32,
}

/// One page of a list, serialised as `{"items": [...], "next_cursor": "42" | null}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// At most [`PageRequest::limit`] items, in the list's order.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` when this page is the last.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page with no items and nothing after it.
    pub fn empty() -> Self {
        Self { items: Vec::new(), next_cursor: None }
    }

    /// Converts every item, keeping the cursor (e.g. from the ledger's
    /// rows to this crate's view types).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_decimal_strings() {
        assert_eq!("42".parse::<Cursor>().unwrap(), Cursor::new(42));
        assert_eq!(Cursor::new(u64::MAX).to_string().parse::<Cursor>().unwrap(), Cursor::new(u64::MAX));
        for bad in ["", "-1", "+1", "1.5", "abc", "18446744073709551616", " 1"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?} parsed");
        }
        let page = Page { items: vec![1, 2], next_cursor: Some(Cursor::new(u64::MAX)) };
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            serde_json::json!({"items": [1, 2], "next_cursor": "18446744073709551615"})
        );
        assert_eq!(
            serde_json::to_value(Page::<u8>::empty()).unwrap(),
            serde_json::json!({"items": [], "next_cursor": null})
        );
    }

    #[test]
    fn map_keeps_the_cursor() {
        let page = Page { items: vec![1, 2], next_cursor: Some(Cursor::new(7)) }.map(|n| n * 10);
        assert_eq!(page, Page { items: vec![10, 20], next_cursor: Some(Cursor::new(7)) });
    }
}
