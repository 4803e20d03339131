//! Keyset pagination, for every list the stores read and the API returns.
//!
//! A [`Cursor`] names the last item of a page and the next page continues
//! strictly after it, so a page stays correct while new rows are written and
//! costs the same however deep it is. The ledger's lists, the coordinator's
//! and the HTTP API's are the same [`Page`]s, so a cursor travels from a
//! store to a client and back unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use thiserror::Error;

/// The most items a store puts in one page; larger requests are cut to this.
pub const MAX_PAGE: u32 = 1_000;

/// Where a page ends: pass it back (in [`PageRequest::after`], or as
/// `?cursor=` over HTTP) for the next page.
///
/// Opaque: its value means nothing outside the list it came from (a task
/// id, a journal entry's sequence number). It travels as a decimal string
/// (in JSON too, so JavaScript clients never round it through a float).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(u64);

impl Cursor {
    /// Wraps a list's raw position.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw position, to continue after.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The text is not a cursor a list handed out.
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

/// Which page of a list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Start strictly after this cursor; `None` for the first page.
    pub after: Option<Cursor>,
    /// Items wanted. Stores read `1 ..= MAX_PAGE` of them
    /// ([`PageRequest::clamped_limit`]: zero counts as one, more as
    /// [`MAX_PAGE`]); the HTTP router refuses zero and caps it at its own
    /// configured maximum first.
    pub limit: u32,
}

impl PageRequest {
    /// The first `limit` items.
    pub const fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }

    /// The `limit` items after `cursor`.
    pub const fn after(cursor: Cursor, limit: u32) -> Self {
        Self { after: Some(cursor), limit }
    }

    /// The limit clamped to `1 ..= MAX_PAGE`.
    pub fn clamped_limit(self) -> u32 {
        self.limit.clamp(1, MAX_PAGE)
    }
}

/// One page of a list, serialised as `{"items": [...], "next_cursor": "42" | null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` when this page is the last.
    #[serde(rename = "next_cursor")]
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page with no items and nothing after it.
    pub fn empty() -> Self {
        Self { items: Vec::new(), next: None }
    }

    /// Cuts `rows`, each with its position and fetched with one row more
    /// than `limit`, to a page: the extra row only says that another page
    /// exists, and the last row kept is where the next one starts.
    pub fn from_rows(mut rows: Vec<(u64, T)>, limit: u32) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(|(position, _)| Cursor(*position)) } else { None };
        Self { items: rows.into_iter().map(|(_, item)| item).collect(), next }
    }

    /// Converts every item, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next: self.next }
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
        let page = Page { items: vec![1, 2], next: Some(Cursor::new(u64::MAX)) };
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
        let page = Page { items: vec![1, 2], next: Some(Cursor::new(7)) }.map(|n| n * 10);
        assert_eq!(page, Page { items: vec![10, 20], next: Some(Cursor::new(7)) });
    }

    #[test]
    fn rows_past_the_limit_only_say_more_follow() {
        let rows = |n: u64| (1..=n).map(|i| (i * 10, i)).collect::<Vec<_>>();
        assert_eq!(Page::from_rows(rows(3), 2), Page { items: vec![1, 2], next: Some(Cursor::new(20)) });
        assert_eq!(Page::from_rows(rows(2), 2), Page { items: vec![1, 2], next: None });
        assert_eq!(Page::<u64>::from_rows(Vec::new(), 2), Page::empty());
        assert_eq!(PageRequest::first(0).clamped_limit(), 1);
        assert_eq!(PageRequest::after(Cursor::new(3), 5_000).clamped_limit(), MAX_PAGE);
    }
}
