//! `GET /`: the tasks, one page at a time, each linking to its own page.

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

/// The tasks list, paged by `?cursor=&limit=` like `GET /api/tasks`.
pub(crate) async fn list(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, HtmlError> {
    let request = page_request(query, &state.config)?;
    let tasks = state.tasks(request).await?;
    let main = html! {
        h1 { "Tasks" }
        @if tasks.items.is_empty() {
            p.empty { @if request.after.is_some() { "No more tasks." } @else { "No tasks yet." } }
        } @else {
            table {
                thead { tr {
                    th { "Task" } th { "Model" } th { "Dataset" } th { "Phase" }
                    th.num title="Rounds count from 0" { "Round" } th.num { "Participants" } th.num { "Pool left" }
                } }
                tbody {
                    @for task in &tasks.items {
                        tr {
                            td { a href=(format!("/tasks/{}", task.id)) { "#" (task.id) } }
                            td { (task.model) }
                            td { (task.dataset) }
                            td { (parts::phase(task.phase)) }
                            td.num { (task.round) " of " (task.rounds) }
                            td.num { (task.participants) }
                            td.num { (format::star(task.pool_left)) }
                        }
                    }
                }
            }
        }
        (parts::pager("/", request, tasks.next, state.config.default_page_limit))
    };
    Ok(respond(StatusCode::OK, &Page::new("Tasks", main)))
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};

    use crate::testing::{MemoryModel, get, send_html};

    #[tokio::test]
    async fn lists_tasks_with_links_and_amounts_in_star() {
        let model = MemoryModel::fixture();
        let (status, page) = send_html(&model, get("/")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<title>Tasks · Starling</title>"), "{page}");
        for id in model.task_ids() {
            assert!(page.contains(&format!(r##"<a href="/tasks/{id}">#{id}</a>"##)), "{id}: {page}");
        }
        // Task 1: 800 STAR left, round 2 of 10, training.
        assert!(page.contains("<td class=\"num\">800.000000 STAR</td>"), "{page}");
        assert!(page.contains("<td class=\"num\">2 of 10</td>"), "{page}");
        assert!(page.contains(r#"<span class="phase">training</span>"#), "{page}");
        assert!(page.contains(r#"<span class="phase finished">finished</span>"#), "{page}");
        assert!(!page.contains("rel=\"next\""), "five tasks fit on the default page: {page}");
    }

    #[tokio::test]
    async fn pagination_links_walk_every_task_once() {
        let model = MemoryModel::fixture();
        let mut uri = "/?limit=2".to_owned();
        let mut seen = Vec::new();
        loop {
            let (status, page) = send_html(&model, get(&uri)).await;
            assert_eq!(status, StatusCode::OK);
            seen.extend(model.task_ids().into_iter().filter(|id| page.contains(&format!("href=\"/tasks/{id}\""))));
            if uri != "/?limit=2" {
                assert!(page.contains(r#"<a href="/?limit=2" rel="first">"#), "{page}");
            }
            match page.split_once(r#"rel="next""#) {
                Some((before, _)) => {
                    let href = before.rsplit_once("href=\"").unwrap().1.split_once('"').unwrap().0;
                    uri = href.replace("&amp;", "&");
                }
                None => break,
            }
        }
        assert_eq!(seen, model.task_ids());
        assert_eq!(uri, "/?cursor=5&limit=2", "the last link followed");
    }

    #[tokio::test]
    async fn hostile_names_are_escaped() {
        let model = MemoryModel::hostile();
        let (status, page) = send_html(&model, get("/")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&quot;model&quot;)&lt;/script&gt;"), "{page}");
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"), "{page}");
    }

    #[tokio::test]
    async fn empty_list_bad_cursor_and_store_failure_are_html() {
        let model = MemoryModel::with_many_tasks(0);
        let (status, page) = send_html(&model, get("/")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("No tasks yet."), "{page}");

        let model = MemoryModel::fixture();
        let (status, page) = send_html(&model, get("/?cursor=abc")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("<h1>400 Bad Request</h1>") && page.contains("not a cursor returned by this API"));

        model.fail_with_unavailable("postgres at 10.0.0.7 refused");
        let response = crate::testing::send(&model, get("/")).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let (_, page) = send_html(&model, get("/")).await;
        assert!(page.contains("service unavailable; try again later") && !page.contains("postgres"), "{page}");
    }
}
