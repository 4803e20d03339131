//! `GET /accounts/{key}`: one identity's balances, stakes and delegations
//! with their locks, a page of its rewards and slashes, and the CLI commands
//! that stake or delegate towards it (the browser holds no key to sign with).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use starling_protocol::{PublicKey, Role};

use crate::format;
use crate::html::layout::{HtmlError, Page, respond};
use crate::html::parts;
use crate::params::{PageQuery, page_request, public_key};
use crate::state::AppState;
use crate::views::{AccountView, BondView, HistoryKind};

/// The lock-up the suggested commands use: the shortest one that earns
/// stake weight above 1× (the CLI's `--lock-days` help says "locked longer
/// than 30 days weighs more").
const SUGGESTED_LOCK_DAYS: u16 = 30;

/// The account page, its history paged by `?cursor=&limit=`.
pub(crate) async fn get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, HtmlError> {
    let key = public_key(path)?;
    let request = page_request(query, &state.config)?;
    let account = state.account(key, request).await?;
    let hex = key.to_string();
    let main = html! {
        h1 { "Account " code { (format::short(&hex)) "…" } }
        p { "Key " code { (hex) } }
        h2 #balances { "Balances" }
        (balances(&account))
        h2 #stakes { "Stakes" }
        (bonds(&account.stakes, false, "No stake of its own."))
        h2 #delegations { "Delegations made" }
        (bonds(&account.delegations, true, "No delegation to other nodes."))
        h2 #history { "Rewards and slashes" }
        (history(&account))
        (parts::pager(&format!("/accounts/{hex}"), request, account.history.next, state.config.default_page_limit))
        h2 #cli { "Stake or delegate from the command line" }
        (commands(&account))
    };
    Ok(respond(StatusCode::OK, &Page::new(format!("Account {}…", format::short(&hex)), main)))
}

/// Free, staked, delegated and their total.
fn balances(account: &AccountView) -> Markup {
    let balances = account.balances;
    let total = u128::from(balances.free) + u128::from(balances.staked) + u128::from(balances.delegated);
    html! {
        dl.facts {
            dt { "Free" } dd { (format::star(balances.free)) }
            dt { "Staked" } dd { (format::star(balances.staked)) }
            dt { "Delegated to others" } dd { (format::star(balances.delegated)) }
            dt { "Total" } dd { (format::star_wide(total)) }
        }
    }
}

/// A table of bonds with their locks; `delegations` adds the node column.
fn bonds(bonds: &[BondView], delegations: bool, none: &str) -> Markup {
    html! {
        @if bonds.is_empty() {
            p.empty { (none) }
        } @else {
            table {
                thead { tr {
                    th.num { "Bond" }
                    @if delegations { th { "Node" } }
                    th { "Role" } th.num { "Amount" } th.num { "Effective" } th.num { "Lock" } th { "Unlocks" }
                } }
                tbody {
                    @for bond in bonds {
                        tr {
                            td.num { (bond.id) }
                            @if delegations { td { (parts::identity(&bond.node)) } }
                            td { (bond.role.as_str()) }
                            td.num { (format::star(bond.amount)) }
                            td.num { (format::star_wide(bond.effective)) }
                            td.num { @if bond.lock_days == 0 { "none" } @else { (bond.lock_days) " days" } }
                            td { (format::utc(bond.unlock_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// One page of the history, newest first.
fn history(account: &AccountView) -> Markup {
    html! {
        @if account.history.items.is_empty() {
            p.empty { "No reward or slash on this page." }
        } @else {
            table #history-table {
                thead { tr {
                    th { "When" } th { "Task" } th.num { "Round" } th { "Kind" } th.num { "Amount" } th.num { "Bond" }
                } }
                tbody {
                    @for entry in &account.history.items {
                        tr {
                            td { (format::utc(entry.at)) }
                            td { a href=(format!("/tasks/{}", entry.task)) { "#" (entry.task) } }
                            td.num { (entry.round) }
                            @match entry.kind {
                                HistoryKind::Reward => td.good { "reward" },
                                HistoryKind::SlashToPool => td.bad { "slash (to the task pool)" },
                                HistoryKind::SlashBurn => td.bad { "slash (burned)" },
                            }
                            td.num { (format::star(entry.amount)) }
                            td.num { @match entry.bond { Some(bond) => (bond), None => "–" } }
                        }
                    }
                }
            }
        }
    }
}

/// The exact `starling` commands (flag names as in the CLI's `delegate`,
/// `stake`, `unstake`, `undelegate` and `balance`) for this key.
fn commands(account: &AccountView) -> Markup {
    let key = account.key;
    let mut roles: Vec<Role> = account.stakes.iter().map(|bond| bond.role).collect();
    roles.sort_by_key(|role| role == &Role::Validator);
    roles.dedup();
    html! {
        p {
            "The browser cannot sign, so bonds are made with the " code { "starling" } " CLI, which signs with your key "
            "(" code { "--key FILE" } " or " code { "$STARLING_KEY" } ") and talks to the coordinator at "
            code { "--coordinator HOST:PORT" } " (or " code { "$STARLING_COORDINATOR" } "). Replace "
            code { "<STAR>" } " with an amount (up to 6 decimals); locks run 0 to 365 days, and stake locked longer than "
            (SUGGESTED_LOCK_DAYS) " days weighs more (3× at 365)."
        }
        h3 { "Delegate to this node" }
        @if roles.is_empty() {
            p.empty { "This key has no stake of its own, so the ledger accepts no delegation to it yet." }
        } @else {
            @for role in &roles {
                pre { code { (delegate_command(&key, *role)) } }
            }
        }
        h3 { "If this is your key" }
        pre { code {
            "starling stake --role trainer --amount <STAR> --lock-days " (SUGGESTED_LOCK_DAYS) "\n"
            "starling stake --role validator --amount <STAR> --lock-days " (SUGGESTED_LOCK_DAYS) "\n"
            @for bond in &account.stakes { "starling unstake --bond " (bond.id) "\n" }
            @for bond in &account.delegations { "starling undelegate --bond " (bond.id) "\n" }
            "starling balance --of " (key)
        } }
        @if !(account.stakes.is_empty() && account.delegations.is_empty()) {
            p.muted { "Unstaking and undelegating work once a bond's lock has ended, less the 5% unstaking fee." }
        }
    }
}

/// `starling delegate --to KEY --role ROLE --amount <STAR> --lock-days 30`.
fn delegate_command(key: &PublicKey, role: Role) -> String {
    format!("starling delegate --to {key} --role {} --amount <STAR> --lock-days {SUGGESTED_LOCK_DAYS}", role.as_str())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::testing::{MemoryModel, get, send_html};

    #[tokio::test]
    async fn account_page_shows_balances_bonds_and_history() {
        let model = MemoryModel::fixture();
        let key = MemoryModel::alice();
        let (status, page) = send_html(&model, get(&format!("/accounts/{key}"))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&format!("<title>Account {}… · Starling</title>", &key.to_string()[..12])), "{page}");
        for fact in [
            "<dt>Free</dt><dd>5.000000 STAR</dd>",
            "<dt>Staked</dt><dd>2.000000 STAR</dd>",
            "<dt>Delegated to others</dt><dd>1.000000 STAR</dd>",
            "<dt>Total</dt><dd>8.000000 STAR</dd>",
        ] {
            assert!(page.contains(fact), "{fact}: {page}");
        }
        // Alice's own stake: bond 11, 2 STAR weighing 4, locked 197 days until 2026.
        assert!(
            page.contains(concat!(
                r#"<td class="num">11</td><td>trainer</td><td class="num">2.000000 STAR</td>"#,
                r#"<td class="num">4.000000 STAR</td><td class="num">197 days</td><td>2026-01-01 00:00:00 UTC</td>"#
            )),
            "{page}"
        );
        // Her delegation to Bob links to his account.
        assert!(page.contains(&format!(r#"<a href="/accounts/{}""#, MemoryModel::bob())), "{page}");
        // Newest history first: round 4's reward, then round 3's slash of bond 11.
        let rewarded = page.find("<td class=\"good\">reward</td><td class=\"num\">0.000104 STAR</td>").unwrap();
        let slashed = page.find("<td class=\"bad\">slash (to the task pool)</td><td class=\"num\">0.000103 STAR</td><td class=\"num\">11</td>").unwrap();
        assert!(rewarded < slashed);
        assert!(page.contains("<td>2025-06-15 15:08:24 UTC</td>"), "{page}");
    }

    #[tokio::test]
    async fn history_pagination_links_walk_every_entry() {
        let model = MemoryModel::fixture();
        let key = MemoryModel::alice();
        let first = format!("/accounts/{key}?limit=2");
        let (_, page) = send_html(&model, get(&first)).await;
        assert!(page.contains(&format!(r#"<a href="/accounts/{key}?cursor=3&amp;limit=2" rel="next">"#)), "{page}");
        assert!(!page.contains("rel=\"first\""), "{page}");
        let (_, page) = send_html(&model, get(&format!("/accounts/{key}?cursor=1&limit=2"))).await;
        assert!(page.contains(&format!(r#"<a href="/accounts/{key}?limit=2" rel="first">"#)), "{page}");
        assert!(!page.contains("rel=\"next\""), "round 0 is the last entry: {page}");
        assert_eq!(page.matches("<td class=\"num\">0.000100 STAR</td>").count(), 1, "{page}");
    }

    #[tokio::test]
    async fn cli_commands_use_the_real_flags() {
        let model = MemoryModel::fixture();
        let key = MemoryModel::alice();
        let (_, page) = send_html(&model, get(&format!("/accounts/{key}"))).await;
        // Alice staked as a trainer: delegations to her count for that role.
        assert!(
            page.contains(&format!(
                "<pre><code>starling delegate --to {key} --role trainer --amount &lt;STAR&gt; --lock-days 30</code></pre>"
            )),
            "{page}"
        );
        assert!(!page.contains("--role validator --amount &lt;STAR&gt; --lock-days 30</code>"), "{page}");
        assert!(page.contains("starling stake --role trainer --amount &lt;STAR&gt; --lock-days 30\n"), "{page}");
        assert!(page.contains("starling unstake --bond 11\nstarling undelegate --bond 12\n"), "{page}");
        assert!(page.contains(&format!("starling balance --of {key}</code></pre>")), "{page}");
    }

    #[tokio::test]
    async fn unknown_and_malformed_keys_are_html_errors() {
        let model = MemoryModel::fixture();
        let stranger = "ab".repeat(32);
        let (status, page) = send_html(&model, get(&format!("/accounts/{stranger}"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(page.contains(&format!("<p>no account for key {stranger}</p>")), "{page}");
        let (status, page) = send_html(&model, get("/accounts/%3Cscript%3E")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("public key must be hex") && !page.contains("<script>"), "{page}");
        let (status, _) = send_html(&model, get(&format!("/accounts/{}?limit=0", MemoryModel::alice()))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
