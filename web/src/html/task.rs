//! `GET /tasks/{id}`: one task's page: summary, settings, the accuracy and
//! loss chart with its table, the leaderboard, the current round's
//! submissions, the payouts and the model download.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use starling_protocol::TaskSpec;

use crate::format;
use crate::html::layout::{HtmlError, Live, Page, respond};
use crate::html::leaderboard::standings;
use crate::html::{chart, parts};
use crate::params::task_id;
use crate::state::AppState;
use crate::views::{SubmissionOutcome, TaskDetail};

/// The task's page; it polls and reloads itself while the task runs.
pub(crate) async fn detail(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HtmlError> {
    let task = state.task(task_id(path)?).await?;
    let summary = &task.summary;
    let live = (!summary.phase.is_terminal()).then_some(Live {
        task: summary.id,
        round: summary.round.get(),
        phase: summary.phase,
    });
    let title = format!("Task {} · {}", summary.id, summary.model);
    let main = html! {
        h1 { "Task " (summary.id) ": " (summary.model) " on " (summary.dataset) }
        (overview(&task))
        h2 #settings { "Settings" }
        (settings(&task.spec))
        h2 #progress { "Accuracy and loss" }
        (chart::round_chart(&task.history))
        (rounds(&task))
        h2 #leaderboard { "Leaderboard" }
        (leaderboard(&task))
        h2 #validators { "Validators" }
        (validators(&task))
        h2 #submissions { "Submissions to round " (summary.round) }
        (submissions(&task))
        h2 #payouts { "Payouts" }
        (payouts(&task))
    };
    Ok(respond(StatusCode::OK, &Page { title, main, live, script: None }))
}

/// Where the task stands, and the model download.
fn overview(task: &TaskDetail) -> Markup {
    let summary = &task.summary;
    let latest = task.history.iter().rev().find_map(|record| record.global_model);
    html! {
        dl.facts {
            dt { "Phase" } dd { (parts::phase(summary.phase)) }
            dt { "Round" } dd { (summary.round) " of " (summary.rounds) span.muted { " (rounds count from 0)" } }
            dt { "Participants" } dd { (plural(summary.participants as usize, "trainer")) " sampled" }
            dt { "Reward pool left" } dd { (format::star(summary.pool_left)) " of " (format::star(task.spec.reward_pool)) }
            dt { "Global model" }
            dd {
                a href=(format!("/api/tasks/{}/model", summary.id)) download { "Download (safetensors)" }
                @if let Some(hash) = latest {
                    " " span.muted { "latest aggregate " code title=(hash) { (format::short(&hash.to_string())) "…" } }
                }
            }
        }
    }
}

/// The rule and settings from the task's spec.
fn settings(spec: &TaskSpec) -> Markup {
    html! {
        dl.facts {
            dt { "Aggregation rule" } dd { (format::rule(&spec.aggregation.rule)) }
            dt { "Norm clipping" } dd { (spec.aggregation.norm_clip.map_or_else(|| "none".to_owned(), |clip| format!("L2 ≤ {clip}"))) }
            dt { "Server optimizer" } dd { (format::optimizer(&spec.aggregation)) }
            dt { "Trainer fraction C" } dd { (spec.fraction) }
            dt { "Local epochs E" } dd { (spec.local_epochs) }
            dt { "Batch size B" } dd { (spec.batch_size) }
            dt { "Learning rate" } dd { (spec.learning_rate) }
            dt { "Training deadline" } dd { (format::seconds(spec.deadlines.training_secs)) }
            dt { "Validation deadline" } dd { (format::seconds(spec.deadlines.validation_secs)) }
            dt { "Reward pool" } dd { (format::star(spec.reward_pool)) }
            dt { "Minimum trainer stake" } dd { (format::star(spec.min_trainer_stake)) " effective" }
            dt { "Minimum validator stake" } dd { (format::star(spec.min_validator_stake)) " effective" }
            dt { "Update norm limit" } dd { (spec.max_update_norm.map_or_else(|| "none".to_owned(), |norm| format!("L2 ≤ {norm} (larger updates are rejected)"))) }
            dt { "Payload limit" } dd { (spec.payload_limit) " bytes" }
            dt { "Model" }
            dd {
                (spec.model.name) ": " (plural(spec.model.tensors.len(), "tensor")) ", "
                (spec.parameter_count().map_or_else(|_| "too many".to_owned(), |n| n.to_string())) " parameters"
            }
            dt { "Data" }
            dd {
                (spec.data.dataset) ", inputs "
                (spec.data.input_shape.iter().map(ToString::to_string).collect::<Vec<_>>().join("×"))
                ", " (spec.data.num_classes) " classes"
            }
        }
    }
}

/// `1 tensor`, `2 tensors`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// One row per round, the chart's numbers in writing.
fn rounds(task: &TaskDetail) -> Markup {
    html! {
        @if !task.history.is_empty() {
            table #rounds {
                thead { tr {
                    th.num { "Round" } th.num { "Accuracy" } th.num { "Loss" }
                    th.num { "Accepted" } th.num { "Rejected" } th { "Global model" }
                } }
                tbody {
                    @for record in &task.history {
                        tr {
                            td.num { (record.round) }
                            td.num { (format::accuracy(record.accuracy)) }
                            td.num { (format::loss(record.loss)) }
                            td.num { (record.accepted) }
                            td.num { (record.rejected) }
                            td {
                                @match &record.global_model {
                                    Some(hash) => code title=(hash) { (format::short(&hash.to_string())) "…" },
                                    None => span.muted { "not aggregated yet" },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Trainers (and everyone paid) ranked by reward.
fn leaderboard(task: &TaskDetail) -> Markup {
    let standings = standings(&task.submissions, &task.payouts);
    html! {
        @if standings.is_empty() {
            p.empty { "Nobody has submitted or been paid yet." }
        } @else {
            p.muted {
                "Rewards and slashes cover the whole task; submissions and scores cover round "
                (task.summary.round) " only. Identities without a submission here are validators, "
                "delegators or trainers of earlier rounds."
            }
            table #leaderboard-table {
                thead { tr {
                    th.num { "#" } th { "Identity" } th.num { "Accepted" } th.num { "Rejected" } th.num { "Pending" }
                    th.num { "Best score" } th.num { "Score sum" } th.num { "Rewarded" } th.num { "Slashed" }
                } }
                tbody {
                    @for (rank, standing) in standings.iter().enumerate() {
                        tr {
                            td.num { (rank + 1) }
                            td { (parts::identity(&standing.identity)) }
                            td.num { (standing.accepted) }
                            td.num { (standing.rejected) }
                            td.num { (standing.pending) }
                            td.num { (format::score(standing.best_score)) }
                            td.num { (format::score(standing.score_sum)) }
                            td.num.good[standing.rewarded > 0] { (format::star(standing.rewarded)) }
                            td.num.bad[standing.slashed > 0] { (format::star(standing.slashed)) }
                        }
                    }
                }
            }
        }
    }
}

/// The current round's submissions.
fn submissions(task: &TaskDetail) -> Markup {
    html! {
        @if task.submissions.is_empty() {
            p.empty { "No submission yet." }
        } @else {
            table {
                thead { tr {
                    th { "Submission" } th { "Trainer" } th.num { "Samples" } th.num { "Consensus score" } th { "Outcome" }
                } }
                tbody {
                    @for submission in &task.submissions {
                        tr {
                            td { code title=(submission.id) { (format::short(&submission.id.to_string())) "…" } }
                            td { (parts::identity(&submission.trainer)) }
                            td.num { (submission.samples) }
                            td.num { (format::score(submission.consensus_score)) }
                            td {
                                @match &submission.outcome {
                                    SubmissionOutcome::Pending => span.muted { "pending" },
                                    SubmissionOutcome::Accepted => span.good { "accepted" },
                                    SubmissionOutcome::Rejected { reason } => span.bad { "rejected: " (reason) },
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The validators by agreement: how much of their score mass survived
/// clipping to the consensus, which decides their share and their slashes.
fn validators(task: &TaskDetail) -> Markup {
    html! {
        @if task.validators.is_empty() {
            p.empty { "No scores yet." }
        } @else {
            table #validators-table {
                thead { tr {
                    th.num { "#" } th { "Validator" } th.num { "Scores" } th.num { "Rounds" }
                    th.num { "Mean agreement" } th.num { "Last round" } th.num { "Rewarded" } th.num { "Slashed" }
                } }
                tbody {
                    @for (rank, standing) in task.validators.iter().enumerate() {
                        tr {
                            td.num { (rank + 1) }
                            td { (parts::identity(&standing.validator)) }
                            td.num { (standing.scores) }
                            td.num { (standing.rounds) }
                            td.num { (format!("{:.1}%", standing.agreement * 100.0)) }
                            td.num { (format!("{:.1}%", standing.last_agreement * 100.0)) }
                            td.num { (format::star(standing.rewarded)) }
                            td.num { (format::star(standing.slashed)) }
                        }
                    }
                }
            }
            p.muted { "With the default parameters, agreement below 50% in a round slashes 5% of the validator's stake." }
        }
    }
}

/// Rewards and slashes per identity, as the coordinator reports them.
fn payouts(task: &TaskDetail) -> Markup {
    html! {
        @if task.payouts.is_empty() {
            p.empty { "Nothing paid or slashed yet." }
        } @else {
            table #payouts-table {
                thead { tr { th { "Identity" } th.num { "Rewarded" } th.num { "Slashed" } } }
                tbody {
                    @for payout in &task.payouts {
                        tr {
                            td { (parts::identity(&payout.identity)) }
                            td.num { (format::star(payout.rewarded)) }
                            td.num { (format::star(payout.slashed)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::testing::{MemoryModel, get, send_html};

    /// The part of `page` from the element with `id` to the next `<h2`.
    fn section<'a>(page: &'a str, id: &str) -> &'a str {
        let start = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {page}"));
        let rest = &page[start..];
        let end = rest[1..].find("<h2").map_or(rest.len(), |i| i + 1);
        &rest[..end]
    }

    /// The rows of the first table in `html`, each as its cells' text.
    fn rows(html: &str) -> Vec<Vec<String>> {
        let body = html.split_once("<tbody>").unwrap().1.split_once("</tbody>").unwrap().0;
        body.split("<tr>")
            .skip(1)
            .map(|row| {
                row.split("<td")
                    .skip(1)
                    .map(|cell| {
                        let inner = cell.split_once('>').unwrap().1.split("</td>").next().unwrap();
                        // Drop tags, keep text.
                        let mut text = String::new();
                        let mut in_tag = false;
                        for c in inner.chars() {
                            match c {
                                '<' => in_tag = true,
                                '>' => in_tag = false,
                                c if !in_tag => text.push(c),
                                _ => {}
                            }
                        }
                        text
                    })
                    .collect()
            })
            .collect()
    }

    #[tokio::test]
    async fn task_page_shows_summary_settings_and_download() {
        let model = MemoryModel::fixture();
        let (status, page) = send_html(&model, get("/tasks/1")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<title>Task 1 · mnist-cnn · Starling</title>"), "{page}");
        assert!(page.contains("<h1>Task 1: mnist-cnn on mnist</h1>"), "{page}");
        assert!(page.contains(r#"<a href="/api/tasks/1/model" download>Download (safetensors)</a>"#), "{page}");
        assert!(page.contains("<dd>800.000000 STAR of 1000.000000 STAR</dd>"), "{page}");
        let settings = section(&page, "settings");
        for fact in [
            "<dt>Aggregation rule</dt><dd>fedavg</dd>",
            "<dt>Trainer fraction C</dt><dd>0.5</dd>",
            "<dt>Local epochs E</dt><dd>1</dd>",
            "<dt>Batch size B</dt><dd>32</dd>",
            "<dt>Learning rate</dt><dd>0.05</dd>",
            "<dt>Training deadline</dt><dd>600 s (10 min)</dd>",
            "<dt>Validation deadline</dt><dd>300 s (5 min)</dd>",
            "<dt>Reward pool</dt><dd>1000.000000 STAR</dd>",
            "<dt>Minimum trainer stake</dt><dd>1.000000 STAR effective</dd>",
            "<dt>Minimum validator stake</dt><dd>5.000000 STAR effective</dd>",
            "<dt>Model</dt><dd>mnist-cnn: 1 tensor, 7840 parameters</dd>",
        ] {
            assert!(settings.contains(fact), "{fact}: {settings}");
        }
    }

    #[tokio::test]
    async fn accuracy_appears_in_the_chart_and_the_round_table() {
        let model = MemoryModel::fixture();
        let (_, page) = send_html(&model, get("/tasks/1")).await;
        let progress = section(&page, "progress");
        assert!(progress.contains("<svg"), "{progress}");
        assert!(progress.contains("<title>round 1: accuracy 75.00%</title>"), "{progress}");
        assert!(progress.contains("<title>round 0: loss 1.2500</title>"), "{progress}");
        let table = rows(progress);
        assert_eq!(table.len(), 3);
        assert_eq!(table[1][..5], ["1", "75.00%", "0.5000", "2", "1"]);
        assert_eq!(table[2][..3], ["2", "–", "–"]);
        assert_eq!(table[2][5], "not aggregated yet");
    }

    #[tokio::test]
    async fn leaderboard_ranks_by_reward_and_shows_slashes() {
        let model = MemoryModel::fixture();
        let (_, page) = send_html(&model, get("/tasks/1")).await;
        let board = rows(section(&page, "leaderboard"));
        let alice = &MemoryModel::alice().to_string()[..12];
        let bob = &MemoryModel::bob().to_string()[..12];
        // Rank, identity, accepted, rejected, pending, best, sum, rewarded, slashed.
        assert_eq!(
            board[0],
            ["1", &format!("{alice}…"), "1", "0", "0", "0.1250", "0.1250", "150.000000 STAR", "0.000000 STAR"]
        );
        assert_eq!(
            board[1][1..],
            [
                &format!("{}…", &MemoryModel::victor().to_string()[..12]),
                "0",
                "0",
                "0",
                "–",
                "–",
                "20.000000 STAR",
                "0.000000 STAR"
            ]
        );
        assert_eq!(
            board.last().unwrap()[1..],
            [&format!("{bob}…"), "0", "1", "0", "-2.5000", "-2.5000", "0.000000 STAR", "1.000000 STAR"]
        );
        assert_eq!(board.len(), 4, "alice, victor, carol (pending), bob");

        let submissions = section(&page, "submissions");
        assert!(submissions.starts_with("id=\"submissions\">Submissions to round 2</h2>"), "{submissions}");
        assert!(submissions.contains("rejected: score below the harm threshold"), "{submissions}");
        let payouts = rows(section(&page, "payouts"));
        assert_eq!(payouts[0][1..], ["150.000000 STAR", "0.000000 STAR"]);
        assert_eq!(payouts.len(), 3);
    }

    #[tokio::test]
    async fn running_tasks_poll_and_finished_ones_do_not() {
        let model = MemoryModel::fixture();
        let (_, page) = send_html(&model, get("/tasks/1")).await;
        assert!(page.contains(r#"<main data-poll="/api/tasks/1" data-round="2" data-phase="training">"#), "{page}");
        assert!(page.contains("<script>"), "{page}");

        let (status, page) = send_html(&model, get("/tasks/5")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("data-poll") && !page.contains("<script"), "{page}");
        // No rounds recorded: a sentence instead of the chart, no empty tables.
        assert!(page.contains("No round has been measured yet") && !page.contains("<svg"), "{page}");
        assert!(page.contains("No submission yet.") && page.contains("Nothing paid or slashed yet."), "{page}");
    }

    #[tokio::test]
    async fn unknown_and_malformed_tasks_are_html_errors() {
        let model = MemoryModel::fixture();
        let (status, page) = send_html(&model, get("/tasks/4")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            page.contains("<title>404 Not Found · Starling</title>") && page.contains("<p>no task 4</p>"),
            "{page}"
        );
        let (status, page) = send_html(&model, get("/tasks/abc")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("task id must be a decimal number below 2^64"), "{page}");
        model.fail_with_internal("row 17 has a NULL phase");
        let (status, page) = send_html(&model, get("/tasks/1")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(page.contains("internal server error") && !page.contains("NULL"), "{page}");
    }

    #[tokio::test]
    async fn hostile_strings_are_escaped_on_the_task_page() {
        let model = MemoryModel::hostile();
        let (status, page) = send_html(&model, get("/tasks/1")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page.matches("<script>").count(), 1, "only the live-update script: {page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("<title>Task 1 · &lt;script&gt;alert(&quot;model&quot;)&lt;/script&gt; · Starling</title>")
        );
        assert!(page.contains("rejected: &lt;/td&gt;&lt;script&gt;alert(&quot;reason&quot;)&lt;/script&gt;"), "{page}");
    }
}
