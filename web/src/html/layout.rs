//! The frame every dashboard page shares (header, navigation, footer, the
//! embedded stylesheet, the optional live-update script), the headers every
//! page is sent with, and the HTML error page.
//!
//! Pages carry no external asset. The one stylesheet and the scripts (the
//! live update and the market's try-it box, listed in
//! [`scripts`](crate::html::scripts)) are inline, and the
//! `Content-Security-Policy` allows exactly those by their SHA-256 hashes:
//! even if some dynamic string escaped the escaping, a script it injected
//! would not run.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};
use starling_protocol::{RoundPhase, TaskId};

use crate::error::{ApiError, keep_shape};
use crate::html::scripts::{LIVE_SCRIPT, SCRIPTS};

/// The stylesheet of every page.
const CSS: &str = "
:root { color-scheme: light; --fg: #1b1f24; --muted: #5b636e; --line: #d8dee4; --accent: #1f6feb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: var(--fg); background: #fff; }
header, main, footer { max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
header { display: flex; gap: 1.5rem; align-items: baseline; border-bottom: 1px solid var(--line); padding-top: .75rem; padding-bottom: .75rem; }
header .brand { font-weight: 700; font-size: 1.15rem; color: var(--fg); text-decoration: none; }
nav a { margin-right: 1rem; }
footer { border-top: 1px solid var(--line); margin-top: 2rem; padding-top: .75rem; padding-bottom: 1.5rem; color: var(--muted); font-size: .875rem; }
a { color: var(--accent); }
h1 { font-size: 1.5rem; margin: 1.25rem 0 .5rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; background: #f6f8fa; }
td.num, th.num { text-align: right; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1.25rem; margin: .5rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: .6rem .8rem; overflow-x: auto; }
.muted, .empty { color: var(--muted); }
.phase { display: inline-block; padding: 0 .5rem; border-radius: 1rem; background: #eef4ff; border: 1px solid #c8d9f8; }
.phase.finished { background: #f0f0f0; border-color: #ddd; }
.bad { color: #b42318; }
.good { color: #1a7f37; }
nav.pages a { margin-right: 1.25rem; }
figure.chart { margin: .5rem 0; max-width: 48rem; }
figure.chart svg { width: 100%; height: auto; }
figure.chart figcaption { color: var(--muted); font-size: .875rem; }
.key::before { content: ''; display: inline-block; width: .9rem; height: .2rem; margin-right: .35rem; vertical-align: middle; }
.key.accuracy::before { background: #1f6feb; }
.key.loss::before { background: #d1490f; }
[hidden] { display: none !important; }
.try-it { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; margin: .5rem 0; }
.try-it canvas { display: block; max-width: 100%; background: #000; border: 1px solid var(--line); touch-action: none; cursor: crosshair; }
.try-it .buttons { display: flex; gap: .5rem; margin-top: .5rem; }
.try-it button { font: inherit; padding: .25rem .9rem; }
.try-it .result { flex: 1 1 18rem; }
#prediction-label { font-size: 1.75rem; font-weight: 700; }
ol.probabilities { list-style: none; padding: 0; margin: .5rem 0; min-width: 16rem; font-variant-numeric: tabular-nums; }
ol.probabilities li { display: grid; grid-template-columns: 1.5rem 1fr 4rem; gap: .5rem; align-items: center; }
ol.probabilities li.top { font-weight: 700; }
ol.probabilities meter { width: 100%; }
ol.probabilities .num { text-align: right; }
";

/// Seconds between reloads for browsers without script, while a round runs.
const NOSCRIPT_REFRESH_SECS: u32 = 30;

/// The `Content-Security-Policy` of every page. `connect-src 'self'` lets
/// the scripts call the JSON API of the same origin.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let scripts: Vec<String> = SCRIPTS.iter().map(|script| format!("'{}'", sha256_source(script))).collect();
    let policy = format!(
        "default-src 'none'; style-src '{}'; script-src {}; connect-src 'self'; img-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        sha256_source(CSS),
        scripts.join(" ")
    );
    HeaderValue::try_from(policy).expect("ASCII")
});

/// A CSP hash source, `sha256-<base64 of the digest>`.
pub(crate) fn sha256_source(text: &str) -> String {
    format!("sha256-{}", base64(&Sha256::digest(text.as_bytes())))
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What a running task's page needs to update itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Live {
    /// The task whose JSON to poll.
    pub(crate) task: TaskId,
    /// The round shown.
    pub(crate) round: u32,
    /// The phase shown.
    pub(crate) phase: RoundPhase,
}

/// One page: its title (without the site name) and main content.
pub(crate) struct Page {
    /// Goes into `<title>` as `… · Starling`.
    pub(crate) title: String,
    /// The content of `<main>`.
    pub(crate) main: Markup,
    /// Set while a round runs: the page polls and reloads itself.
    pub(crate) live: Option<Live>,
    /// A script of its own, embedded at the end of the body; one of
    /// [`SCRIPTS`], or the policy would block it.
    pub(crate) script: Option<&'static str>,
}

impl Page {
    /// A page that does not update itself and has no script.
    pub(crate) fn new(title: impl Into<String>, main: Markup) -> Self {
        Self { title: title.into(), main, live: None, script: None }
    }

    /// The whole document.
    pub(crate) fn render(&self) -> Markup {
        debug_assert!(self.script.is_none_or(|script| SCRIPTS.contains(&script)), "a script the policy blocks");
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Starling" }
                    style { (PreEscaped(CSS)) }
                    @if self.live.is_some() {
                        noscript { meta http-equiv="refresh" content=(NOSCRIPT_REFRESH_SECS); }
                    }
                }
                body {
                    header {
                        a.brand href="/" { "Starling" }
                        nav {
                            a href="/" { "Tasks" }
                            a href="/market" { "Market" }
                            a href="/api/openapi.json" { "API" }
                        }
                    }
                    @match &self.live {
                        Some(live) => main data-poll=(format!("/api/tasks/{}", live.task)) data-round=(live.round)
                            data-phase=(live.phase) {
                            p #live .muted {
                                "This page refreshes every " (NOSCRIPT_REFRESH_SECS) " s while the round runs."
                            }
                            (self.main)
                        },
                        None => main { (self.main) },
                    }
                    footer {
                        "Starling coordinator " (env!("CARGO_PKG_VERSION")) " · JSON: "
                        a href="/api/tasks" { "/api/tasks" } " · "
                        a href="/api/openapi.json" { "OpenAPI document" } " · "
                        a href="/metrics" { "metrics" }
                    }
                    @if self.live.is_some() {
                        script { (PreEscaped(LIVE_SCRIPT)) }
                    }
                    @if let Some(script) = self.script {
                        script { (PreEscaped(script)) }
                    }
                }
            }
        }
    }
}

/// The response for `page` with `status`: `text/html; charset=utf-8`, the
/// policy above, and `no-cache` (the numbers change every round).
pub(crate) fn respond(status: StatusCode, page: &Page) -> Response {
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::CONTENT_SECURITY_POLICY, CSP.clone()),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
    ];
    let response = (status, headers, Html(page.render().into_string())).into_response();
    if status.is_client_error() || status.is_server_error() { keep_shape(response) } else { response }
}

/// An error answered as an HTML page (for the dashboard's routes): the same
/// status and message the JSON API would give, in the shared layout.
#[derive(Debug)]
pub(crate) struct HtmlError(pub(crate) ApiError);

impl From<ApiError> for HtmlError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        let main = html! {
            h1 { (status.as_u16()) " " (reason) }
            p { (self.0.message()) }
            p { a href="/" { "Back to the tasks" } }
        };
        respond(status, &Page::new(format!("{} {reason}", status.as_u16()), main))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::scripts::TRY_IT_SCRIPT;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
        assert_eq!(sha256_source(""), "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }

    #[test]
    fn the_policy_allows_exactly_the_embedded_style_and_script() {
        let policy = CSP.to_str().unwrap();
        assert!(policy.starts_with("default-src 'none'; "), "{policy}");
        assert!(policy.contains(&format!("style-src '{}'", sha256_source(CSS))), "{policy}");
        assert!(
            policy.contains(&format!(
                "script-src '{}' '{}';",
                sha256_source(LIVE_SCRIPT),
                sha256_source(TRY_IT_SCRIPT)
            )),
            "{policy}"
        );
        assert!(!policy.contains("unsafe"), "{policy}");
        // The page embeds the very texts that were hashed.
        let page = Page {
            live: Some(Live { task: TaskId::new(1), round: 0, phase: RoundPhase::Open }),
            ..Page::new("t", html! {})
        };
        let text = page.render().into_string();
        assert!(text.contains(&format!("<style>{CSS}</style>")));
        assert!(text.contains(&format!("<script>{LIVE_SCRIPT}</script>")));
    }

    #[test]
    fn every_embedded_script_is_in_the_policy_and_stays_inside_its_element() {
        let policy = CSP.to_str().unwrap();
        for script in SCRIPTS {
            assert!(policy.contains(&sha256_source(script)), "{policy}");
            assert!(!script.to_ascii_lowercase().contains("</script"), "{script}");
        }
        let page = Page { script: Some(TRY_IT_SCRIPT), ..Page::new("t", html! {}) };
        assert!(page.render().into_string().contains(&format!("<script>{TRY_IT_SCRIPT}</script>")));
        assert!(Page::new("t", html! {}).render().into_string().contains(r#"<a href="/market">Market</a>"#));
    }

    #[test]
    fn only_live_pages_poll_and_refresh() {
        let still = Page::new("t", html! { p { "x" } }).render().into_string();
        assert!(!still.contains("<script") && !still.contains("http-equiv") && !still.contains("data-poll"));
        let live = Page {
            live: Some(Live { task: TaskId::new(7), round: 3, phase: RoundPhase::Validating }),
            ..Page::new("t", html! {})
        };
        let text = live.render().into_string();
        assert!(text.contains(r#"<main data-poll="/api/tasks/7" data-round="3" data-phase="validating">"#), "{text}");
        assert!(text.contains(r#"<noscript><meta http-equiv="refresh" content="30"></noscript>"#), "{text}");
    }
}
