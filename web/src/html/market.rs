//! `GET /market`: the marketplace's models, one page at a time, each with
//! its latest version's metrics and price.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use crate::format;
use crate::html::layout::{HtmlError, Page, respond};
use crate::html::parts;
use crate::params::{PageQuery, page_request};
use crate::state::AppState;

/// The models list, paged by `?cursor=&limit=` like `GET /api/models`.
pub(crate) async fn list(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, HtmlError> {
    let request = page_request(query, &state.config)?;
    let models = state.models(request).await?;
    let main = html! {
        h1 { "Model market" }
        p.muted {
            "Each finished task promotes its best global model here as a new version. Anyone may download a "
            "version or try it; signed calls pay per input beyond the free quota that staking earns, and the fees "
            "go to the model's creator, trainers and validators."
        }
        @if models.items.is_empty() {
            p.empty {
                @if request.after.is_some() { "No more models." }
                @else { "No model yet: a model is promoted when its task finishes." }
            }
        } @else {
            table #models-table {
                thead { tr {
                    th { "Model" } th { "Creator" } th.num { "Latest" } th.num { "Consensus accuracy" }
                    th.num { "Measured accuracy" } th.num { "Loss" } th { "Price" } th.num { "Versions" }
                } }
                tbody {
                    @for model in &models.items {
                        tr {
                            td { a href=(format!("/market/{}", model.id)) { "#" (model.id) " " (model.name) } }
                            td { (parts::identity(&model.creator)) }
                            td.num { "v" (model.latest.version) }
                            td.num { (format::accuracy(Some(model.latest.consensus_accuracy))) }
                            td.num { (format::accuracy(model.latest.accuracy)) }
                            td.num { (format::loss(model.latest.loss)) }
                            td { (parts::price(model.latest.price)) }
                            td.num { (model.version_count) }
                        }
                    }
                }
            }
        }
        (parts::pager("/market", request, models.next, state.config.default_page_limit))
    };
    Ok(respond(StatusCode::OK, &Page::new("Model market", main)))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::testing::{MemoryModel, get, send_html};

    #[tokio::test]
    async fn lists_models_with_latest_metrics_and_price() {
        let model = MemoryModel::fixture();
        let (status, page) = send_html(&model, get("/market")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<title>Model market · Starling</title>"), "{page}");
        let alice = MemoryModel::alice().to_string();
        assert!(
            page.contains(&format!(
                concat!(
                    r#"<tr><td><a href="/market/1">#1 mnist-cnn</a></td>"#,
                    r#"<td><a href="/accounts/{alice}" title="{alice}"><code>{short}…</code></a></td>"#,
                    r#"<td class="num">v2</td><td class="num">97.00%</td><td class="num">98.12%</td>"#,
                    r#"<td class="num">0.0625</td>"#,
                    r#"<td>0.001000 STAR per call + 0.000100 STAR per input</td><td class="num">2</td></tr>"#
                ),
                alice = alice,
                short = &alice[..12]
            )),
            "{page}"
        );
        // Model 4: nothing measured, one version.
        assert!(page.contains(r#"<a href="/market/4">#4 mnist-2nn</a>"#), "{page}");
        assert!(page.contains(r#"<td class="num">88.00%</td><td class="num">–</td><td class="num">–</td>"#), "{page}");
        assert!(!page.contains("rel=\"next\""), "{page}");
    }

    #[tokio::test]
    async fn pages_link_to_the_next() {
        let model = MemoryModel::fixture();
        let (_, page) = send_html(&model, get("/market?limit=1")).await;
        assert!(page.contains(r#"<a href="/market?cursor=1&amp;limit=1" rel="next">"#), "{page}");
        assert!(!page.contains("/market/4"), "{page}");
        let (_, page) = send_html(&model, get("/market?cursor=1&limit=1")).await;
        assert!(page.contains("/market/4") && !page.contains("/market/1\""), "{page}");
        assert!(page.contains(r#"<a href="/market?limit=1" rel="first">"#), "{page}");
        let (_, page) = send_html(&model, get("/market?cursor=4")).await;
        assert!(page.contains("No more models."), "{page}");
    }

    #[tokio::test]
    async fn hostile_names_and_errors() {
        let model = MemoryModel::hostile();
        let (status, page) = send_html(&model, get("/market")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("#1 &lt;script&gt;alert(&quot;market&quot;)&lt;/script&gt;"), "{page}");

        let (status, page) = send_html(&model, get("/market?limit=0")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("limit must be a positive integer"), "{page}");
        model.fail_with_unavailable("postgres at 10.0.0.7 refused");
        let (status, page) = send_html(&model, get("/market")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!page.contains("postgres"), "{page}");
    }
}
