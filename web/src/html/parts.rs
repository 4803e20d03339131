//! Small pieces several pages use: identity links, phase badges, prices,
//! role names and the links between pages of a list.

use maud::{Markup, html};
use starling_protocol::{PublicKey, RoundPhase};

use crate::format;
use crate::page::{Cursor, PageRequest};
use crate::views::Price;

/// A key as a link to its account page, shortened, with the whole key as
/// the tooltip.
pub(crate) fn identity(key: &PublicKey) -> Markup {
    let hex = key.to_string();
    html! { a href=(format!("/accounts/{hex}")) title=(hex) { code { (format::short(&hex)) "…" } } }
}

/// The phase as a badge.
pub(crate) fn phase(phase: RoundPhase) -> Markup {
    html! { span.phase.finished[phase.is_terminal()] { (phase) } }
}

/// `0.001000 STAR per call + 0.000100 STAR per input`.
pub(crate) fn price(price: Price) -> Markup {
    html! { (format::star(price.base)) " per call + " (format::star(price.per_item)) " per input" }
}

/// Links to the first page (when this is not it) and to the next one (when
/// there is one) of the list at `path`. `?limit=` is carried along only
/// when it is not the default, so the usual links stay short.
pub(crate) fn pager(path: &str, request: PageRequest, next: Option<Cursor>, default_limit: u32) -> Markup {
    let limit = (request.limit != default_limit).then_some(request.limit);
    let link = |cursor: Option<Cursor>| {
        let mut query = Vec::new();
        if let Some(cursor) = cursor {
            query.push(format!("cursor={cursor}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) }
    };
    html! {
        @if request.after.is_some() || next.is_some() {
            nav.pages aria-label="pages" {
                @if request.after.is_some() { a href=(link(None)) rel="first" { "← First page" } }
                @if let Some(cursor) = next { a href=(link(Some(cursor))) rel="next" { "Next page →" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_links_carry_the_cursor_and_a_non_default_limit() {
        let first = PageRequest { after: None, limit: 50 };
        assert_eq!(pager("/", first, None, 50).into_string(), "");
        assert_eq!(
            pager("/", first, Some(Cursor::new(50)), 50).into_string(),
            r#"<nav class="pages" aria-label="pages"><a href="/?cursor=50" rel="next">Next page →</a></nav>"#
        );
        let later = PageRequest { after: Some(Cursor::new(2)), limit: 2 };
        assert_eq!(
            pager("/accounts/ab", later, Some(Cursor::new(4)), 50).into_string(),
            concat!(
                r#"<nav class="pages" aria-label="pages"><a href="/accounts/ab?limit=2" rel="first">← First page</a>"#,
                r#"<a href="/accounts/ab?cursor=4&amp;limit=2" rel="next">Next page →</a></nav>"#
            )
        );
    }
}
