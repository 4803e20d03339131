//! `GET /market/{id}`: one marketplace model: its facts, a box to try it
//! (draw a digit, see the prediction), every version with metrics,
//! download and lineage, and the CLI commands that show, pull and pay for it.
//!
//! The page reads fully without JavaScript; only the try-it box needs it,
//! and says so when it cannot run.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};

use crate::format;
use crate::html::layout::{HtmlError, Page, respond};
use crate::html::parts;
use crate::html::scripts::TRY_IT_SCRIPT;
use crate::params::model_id;
use crate::state::AppState;
use crate::views::{ModelDetail, VersionDetail};

/// How many canvas pixels stand for one input value, each way: a 28×28
/// model gets a 280×280 canvas.
const CANVAS_SCALE: usize = 10;

/// Largest input side the try-it box draws for (a bigger canvas would not fit a page).
const MAX_DRAWN_SIDE: usize = 64;

/// The model's page.
pub(crate) async fn detail(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, HtmlError> {
    let model = state.market_model(model_id(path)?).await?;
    let summary = &model.summary;
    let drawable = drawable(&summary.input_shape);
    let main = html! {
        h1 { "Model " (summary.id) ": " (summary.name) }
        (facts(&model))
        h2 #try { "Try it" }
        (try_it(&model, drawable))
        h2 #versions { "Versions" }
        (versions(&model))
        h2 #lineage { "Lineage" }
        @for version in &model.versions { (lineage(version)) }
        h2 #cli { "From the command line" }
        (commands(&model, &origin(&uri, &headers)))
    };
    let title = format!("Model {} · {}", summary.id, summary.name);
    let page = Page { script: drawable.is_some().then_some(TRY_IT_SCRIPT), ..Page::new(title, main) };
    Ok(respond(StatusCode::OK, &page))
}

/// `(height, width)` of a one-channel image input small enough to draw, or
/// `None` for any other input shape.
fn drawable(shape: &[usize]) -> Option<(usize, usize)> {
    match shape {
        [.., height, width] if shape[..shape.len() - 2].iter().all(|&d| d == 1) => {
            ((1..=MAX_DRAWN_SIDE).contains(height) && (1..=MAX_DRAWN_SIDE).contains(width)).then_some((*height, *width))
        }
        _ => None,
    }
}

/// Who made it, what it takes, what it costs.
fn facts(model: &ModelDetail) -> Markup {
    let summary = &model.summary;
    let latest = &summary.latest;
    let shape: Vec<String> = summary.input_shape.iter().map(ToString::to_string).collect();
    html! {
        dl.facts {
            dt { "Creator" } dd { (parts::identity(&summary.creator)) }
            dt { "Architecture" } dd { (summary.architecture) }
            dt { "Dataset" } dd { (summary.dataset) }
            dt { "Input" } dd { (shape.join("×")) " values in [0, 1]" }
            dt { "Classes" } dd { (summary.num_classes) }
            dt { "Latest version" }
            dd {
                "v" (latest.version) ", promoted " (format::utc(latest.promoted_at)) ": "
                (format::accuracy(Some(latest.consensus_accuracy))) " by the validators' consensus, "
                (format::accuracy(latest.accuracy)) " measured"
            }
            dt { "Price" } dd { (parts::price(latest.price)) span.muted { " (more while calls queue)" } }
        }
    }
}

/// The drawing box, or why there is none.
fn try_it(model: &ModelDetail, drawable: Option<(usize, usize)>) -> Markup {
    let summary = &model.summary;
    let Some((height, width)) = drawable else {
        return html! {
            p.empty {
                "This model takes inputs of shape " (format!("{:?}", summary.input_shape))
                ", not a one-channel image, so there is nothing to draw; call the API with JSON inputs."
            }
        };
    };
    let endpoint = format!("/api/models/{}/versions/{}/predict", summary.id, summary.latest.version);
    html! {
        p #try-it-nojs .empty {
            "Drawing a digit and asking the model needs JavaScript. Without it, send an image with "
            code { "starling market predict" } " (below) or POST to " code { (endpoint) } "."
        }
        div #try-it .try-it hidden data-predict=(endpoint) data-height=(height) data-width=(width) {
            div {
                canvas #digit width=(width * CANVAS_SCALE) height=(height * CANVAS_SCALE)
                    aria-label="Drawing area: draw a digit with the mouse or a finger" {}
                div.buttons {
                    button #predict type="button" { "Predict" }
                    button #clear type="button" { "Clear" }
                }
            }
            div.result {
                p { "Version " (summary.latest.version) " reads: " span #prediction-label { "–" } }
                ol #probabilities .probabilities aria-label="probability of each class" {}
                p #try-it-status .muted role="status" aria-live="polite" {}
                p.muted {
                    "Unsigned and free: a few tries a minute per address. The drawing is averaged down to "
                    (height) "×" (width) " values in your browser and sent as JSON."
                }
            }
        }
    }
}

/// Every version: metrics, price, file and download.
fn versions(model: &ModelDetail) -> Markup {
    let id = model.summary.id;
    html! {
        table #versions-table {
            thead { tr {
                th.num { "Version" } th { "Promoted" } th.num { "Consensus accuracy" } th.num { "Measured accuracy" }
                th.num { "Loss" } th { "Price" } th.num { "Size" } th { "File" }
            } }
            tbody {
                @for version in &model.versions {
                    @let v = &version.summary;
                    tr {
                        td.num { "v" (v.version) }
                        td { (format::utc(v.promoted_at)) }
                        td.num { (format::accuracy(Some(v.consensus_accuracy))) }
                        td.num { (format::accuracy(v.accuracy)) }
                        td.num { (format::loss(v.loss)) }
                        td { (parts::price(v.price)) }
                        td.num { (v.size_bytes) " bytes" }
                        td {
                            a href=(format!("/api/models/{id}/versions/{}/download", v.version)) download {
                                "Download"
                            }
                            " " code title=(v.hash) { (format::short(&v.hash.to_string())) "…" }
                        }
                    }
                }
            }
        }
    }
}

/// Where a version came from and who earned on it.
fn lineage(version: &VersionDetail) -> Markup {
    let v = &version.summary;
    html! {
        h3 { "Version " (v.version) }
        dl.facts {
            dt { "Task" } dd { a href=(format!("/tasks/{}", v.task)) { "#" (v.task) } }
            dt { "Rounds" } dd { (version.rounds) }
            dt { "Best round" } dd { (v.round) span.muted { " (its aggregate, chosen by the validators' consensus)" } }
        }
        @if version.contributors.is_empty() {
            p.empty { "No contributor was paid on this task." }
        } @else {
            table.contributors {
                thead { tr { th { "Contributor" } th { "Role" } th.num { "Earned on the task" } } }
                tbody {
                    @for contributor in &version.contributors {
                        tr {
                            td { (parts::identity(&contributor.key)) }
                            td { (contributor.role.as_str()) }
                            td.num { (format::star(contributor.earned)) }
                        }
                    }
                }
            }
        }
    }
}

/// The `starling market` commands (flags as the CLI spells them) for this
/// model, pointed at `api`.
fn commands(model: &ModelDetail, api: &str) -> Markup {
    let id = model.summary.id;
    let latest = model.summary.latest.version;
    html! {
        p {
            "Reading and downloading need no key. " code { "pull" } " checks the file against its BLAKE3 hash. "
            code { "predict" } " signs the call with your key (" code { "--key FILE" } " or " code { "$STARLING_KEY" }
            "), uses your free daily quota first and never pays more than " code { "--max-fee" } "."
        }
        pre { code {
            "starling market show " (id) " --api " (api) "\n"
            @for version in &model.versions {
                "starling market pull " (id) " --version " (version.summary.version) " --api " (api) "\n"
            }
            "starling market predict " (id) " --version " (latest) " --image digit.png --max-fee 0.01 --api " (api)
        } }
    }
}

/// The origin this page was asked for, `http://HOST[:PORT]`, so the
/// commands name the same server; a placeholder when the request says none.
/// The scheme is `http`: this server speaks no TLS of its own (behind a
/// TLS proxy, swap in `https`).
fn origin(uri: &Uri, headers: &HeaderMap) -> String {
    let host = uri
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .or_else(|| headers.get(header::HOST).and_then(|value| value.to_str().ok()).map(str::to_owned))
        .filter(|host| !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b'@'));
    match host {
        Some(host) => format!("http://{host}"),
        None => "http://HOST:PORT".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode, header};

    use super::*;
    use crate::testing::{MemoryModel, get, send, send_html};

    #[tokio::test]
    async fn model_page_shows_facts_versions_and_lineage() {
        let model = MemoryModel::fixture();
        let (status, page) = send_html(&model, get("/market/1")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<title>Model 1 · mnist-cnn · Starling</title>"), "{page}");
        assert!(page.contains("<h1>Model 1: mnist-cnn</h1>"), "{page}");
        for fact in [
            "<dt>Architecture</dt><dd>cnn</dd>",
            "<dt>Input</dt><dd>1×28×28 values in [0, 1]</dd>",
            "<dt>Classes</dt><dd>10</dd>",
            "<dt>Latest version</dt><dd>v2, promoted 2025-06-17 22:40:00 UTC: 97.00% by the validators' consensus, 98.12% measured</dd>",
        ] {
            assert!(page.contains(fact), "{fact}: {page}");
        }
        // Both versions, newest first, each with its download.
        let v2 = page.find(r#"<a href="/api/models/1/versions/2/download" download>"#).unwrap();
        let v1 = page.find(r#"<a href="/api/models/1/versions/1/download" download>"#).unwrap();
        assert!(v2 < v1);
        assert!(page.contains(r#"<td class="num">v1</td><td>2025-06-16 18:53:20 UTC</td><td class="num">90.00%</td><td class="num">90.00%</td><td class="num">–</td>"#), "{page}");
        // Lineage: task links, rounds, best round, contributors with role and earnings.
        assert!(page.contains(r##"<dt>Task</dt><dd><a href="/tasks/5">#5</a></dd>"##), "{page}");
        assert!(page.contains(r##"<dt>Task</dt><dd><a href="/tasks/2">#2</a></dd>"##), "{page}");
        assert!(page.contains("<dt>Best round</dt><dd>9<span"), "{page}");
        assert!(page.contains(&format!(
            r#"<td><a href="/accounts/{victor}" title="{victor}"><code>{short}…</code></a></td><td>validator</td><td class="num">20.000000 STAR</td>"#,
            victor = MemoryModel::victor(),
            short = &MemoryModel::victor().to_string()[..12]
        )), "{page}");
        assert!(page.contains("<td>trainer</td><td class=\"num\">90.000000 STAR</td>"), "{page}");
    }

    #[tokio::test]
    async fn commands_name_this_server() {
        let model = MemoryModel::fixture();
        let request = Request::get("/market/1").header(header::HOST, "203.0.113.9:7780").body(Default::default());
        let (_, page) = send_html(&model, request.unwrap()).await;
        assert!(
            page.contains(concat!(
                "<pre><code>starling market show 1 --api http://203.0.113.9:7780\n",
                "starling market pull 1 --version 2 --api http://203.0.113.9:7780\n",
                "starling market pull 1 --version 1 --api http://203.0.113.9:7780\n",
                "starling market predict 1 --version 2 --image digit.png --max-fee 0.01 --api http://203.0.113.9:7780",
                "</code></pre>"
            )),
            "{page}"
        );
        let (_, page) = send_html(&model, get("/market/1")).await;
        assert!(page.contains("starling market show 1 --api http://HOST:PORT\n"), "{page}");
        let odd = Request::get("/market/1").header(header::HOST, "evil.example/<x>").body(Default::default());
        let (_, page) = send_html(&model, odd.unwrap()).await;
        assert!(page.contains("--api http://HOST:PORT\n") && !page.contains("<x>"), "{page}");
    }

    #[tokio::test]
    async fn try_it_box_targets_the_latest_version_and_needs_script() {
        let model = MemoryModel::fixture();
        let response = send(&model, get("/market/1")).await;
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        let page = String::from_utf8(crate::testing::body_bytes(response).await).unwrap();
        assert!(
            page.contains(concat!(
                r#"<div class="try-it" id="try-it" hidden data-predict="/api/models/1/versions/2/predict" "#,
                r#"data-height="28" data-width="28">"#
            )),
            "{page}"
        );
        assert!(page.contains(r#"<canvas id="digit" width="280" height="280""#), "{page}");
        assert!(page.contains(r#"<button id="predict" type="button">Predict</button>"#), "{page}");
        assert!(page.contains(r#"<button id="clear" type="button">Clear</button>"#), "{page}");
        assert!(page.contains("needs JavaScript"), "{page}");
        // The one script on the page is the try-it script, allowed by its hash.
        assert_eq!(page.matches("<script>").count(), 1, "{page}");
        let script = page.split_once("<script>").unwrap().1.split_once("</script>").unwrap().0;
        assert_eq!(script, TRY_IT_SCRIPT);
        assert!(policy.contains(&crate::html::layout::sha256_source(script)), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
    }

    #[tokio::test]
    async fn models_without_images_get_no_drawing_box() {
        let model = MemoryModel::fixture();
        let (status, page) = send_html(&model, get("/market/4")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("takes inputs of shape [784], not a one-channel image"), "{page}");
        assert!(!page.contains("<canvas") && !page.contains("<script"), "{page}");
        assert!(page.contains("No contributor was paid on this task."), "{page}");
        assert_eq!(drawable(&[1, 28, 28]), Some((28, 28)));
        assert_eq!(drawable(&[28, 28]), Some((28, 28)));
        assert_eq!(drawable(&[3, 32, 32]), None);
        assert_eq!(drawable(&[1, 1, 28, 28]), Some((28, 28)));
        assert_eq!(drawable(&[1, 65, 28]), None);
        assert_eq!(drawable(&[0, 28]), None);
    }

    #[tokio::test]
    async fn unknown_malformed_and_hostile() {
        let model = MemoryModel::fixture();
        let (status, page) = send_html(&model, get("/market/2")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(page.contains("<p>no model 2</p>"), "{page}");
        let (status, page) = send_html(&model, get("/market/x")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("model id must be a decimal number below 2^64"), "{page}");

        let model = MemoryModel::hostile();
        let (status, page) = send_html(&model, get("/market/1")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page.matches("<script>").count(), 1, "only the try-it script: {page}");
        assert!(page.contains("<h1>Model 1: &lt;script&gt;alert(&quot;market&quot;)&lt;/script&gt;</h1>"), "{page}");
        assert!(
            page.contains("<title>Model 1 · &lt;script&gt;alert(&quot;market&quot;)&lt;/script&gt; · Starling</title>")
        );
    }
}
